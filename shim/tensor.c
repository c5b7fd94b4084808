/* Element types, dense strides, and stride-aware copies with (de)quantization. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint32_t er_dtype_size(int32_t dtype) {
  switch (dtype) {
    case ER_DTYPE_INT8:
    case ER_DTYPE_UINT8:
    case ER_DTYPE_BOOL: return 1;
    case ER_DTYPE_FLOAT16:
    case ER_DTYPE_INT16:
    case ER_DTYPE_UINT16: return 2;
    case ER_DTYPE_FLOAT32:
    case ER_DTYPE_INT32:
    case ER_DTYPE_UINT32: return 4;
    case ER_DTYPE_FLOAT64:
    case ER_DTYPE_INT64:
    case ER_DTYPE_UINT64: return 8;
    default: return 0;
  }
}

void er_tensor_desc_clear(er_tensor_desc *d) {
  if (!d) return;
  free(d->name);
  free(d->scales);
  free(d->zero_points);
  memset(d, 0, sizeof *d);
}

uint64_t er_dense_strides(const int64_t *shape, uint32_t rank, uint32_t elem, int64_t *strides) {
  uint64_t step = elem;
  int dynamic = 0;
  for (uint32_t i = rank; i-- > 0;) {
    strides[i] = dynamic ? -1 : (int64_t)step;
    if (shape[i] < 0) dynamic = 1;
    else step *= (uint64_t)shape[i];
  }
  return dynamic ? 0 : step;
}

/* Number of elements, -1 when a dimension is unknown, -2 when the count overflows int64. */
static int64_t element_count(const er_tensor_buf *buf) {
  int64_t n = 1;
  for (uint32_t i = 0; i < buf->rank; i++) {
    if (buf->shape[i] < 0) return -1;
    if (__builtin_mul_overflow(n, buf->shape[i], &n)) return -2;
  }
  /* Byte counts (n * 8) must fit too. */
  return n > INT64_MAX / 8 ? -2 : n;
}

int32_t er_check_layout(const er_tensor_desc *desc, const er_tensor_buf *buf, uint32_t elem) {
  uint64_t last = 0, step = 0;
  for (uint32_t i = 0; i < buf->rank; i++) {
    if (buf->shape[i] == 0) return ER_OK;
    if (buf->strides[i] < 0)
      return er_fail(ER_ERR_STATE, NULL, NULL, "tensor '%s' has an unset stride in dimension %u", desc->name, i);
    if (__builtin_mul_overflow((uint64_t)(buf->shape[i] - 1), (uint64_t)buf->strides[i], &step) ||
        __builtin_add_overflow(last, step, &last) || last > UINT64_MAX - elem)
      return er_fail(ER_ERR_STATE, NULL, NULL, "tensor '%s': strides reach past 2^64 bytes", desc->name);
  }
  if (!buf->data || last + elem > buf->bytes)
    return er_fail(ER_ERR_STATE, NULL, NULL, "tensor '%s': strides reach byte %llu of a %llu-byte buffer",
                   desc->name, (unsigned long long)(last + elem), (unsigned long long)buf->bytes);
  return ER_OK;
}

/* Walks the strided layout row by row (innermost dimension), calling visit per row. */
typedef void (*row_fn)(void *ctx, uint8_t *row, int64_t first_index, int64_t axis_index, int64_t count,
                       int64_t stride);

static void walk_rows(const er_tensor_buf *buf, int32_t axis, row_fn visit, void *ctx) {
  uint32_t rank = buf->rank;
  if (rank == 0) {
    visit(ctx, buf->data, 0, 0, 1, 0);
    return;
  }
  int64_t index[ER_MAX_DIMS] = {0};
  int64_t inner = buf->shape[rank - 1];
  int64_t rows = 1;
  for (uint32_t i = 0; i + 1 < rank; i++) rows *= buf->shape[i];
  if (inner == 0) return;
  for (int64_t r = 0; r < rows; r++) {
    uint64_t offset = 0;
    for (uint32_t i = 0; i + 1 < rank; i++) offset += (uint64_t)index[i] * (uint64_t)buf->strides[i];
    /* axis_index is the row's coordinate on the quantization axis; -1 if the axis is innermost. */
    int64_t axis_index = (axis >= 0 && (uint32_t)axis + 1 < rank) ? index[axis] : -1;
    visit(ctx, (uint8_t *)buf->data + offset, r * inner, axis_index, inner, buf->strides[rank - 1]);
    for (int32_t i = (int32_t)rank - 2; i >= 0; i--) {
      if (++index[i] < buf->shape[i]) break;
      index[i] = 0;
    }
  }
}

/* ---- dense copies ---- */

typedef struct dense_ctx {
  uint8_t *dense;
  uint32_t elem;
  int to_strided;
} dense_ctx;

static void dense_row(void *p, uint8_t *row, int64_t first, int64_t axis_index, int64_t count, int64_t stride) {
  dense_ctx *c = p;
  uint8_t *dense = c->dense + (uint64_t)first * c->elem;
  if (stride == (int64_t)c->elem) {
    if (c->to_strided) memcpy(row, dense, (size_t)count * c->elem);
    else memcpy(dense, row, (size_t)count * c->elem);
    return;
  }
  for (int64_t k = 0; k < count; k++) {
    if (c->to_strided) memcpy(row + k * stride, dense + k * c->elem, c->elem);
    else memcpy(dense + k * c->elem, row + k * stride, c->elem);
  }
}

/* ---- float16 ---- */

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {
      float v = ldexpf((float)mant, -24);
      return sign ? -v : v;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return (uint16_t)half;
}

/* ---- float32 conversions with quantization ---- */

typedef struct convert_ctx {
  float *values;
  const er_tensor_desc *desc;
  int32_t dtype;
  int to_strided;
  int64_t inner_axis; /* 1 when the quantization axis is the innermost dimension */
} convert_ctx;

void er_quant_params(const er_tensor_desc *d, int64_t axis_index, float *scale, int32_t *zp) {
  int64_t i = axis_index < 0 ? 0 : axis_index;
  *scale = d->scale_count == 0 ? 1.0f : d->scales[d->scale_count == 1 ? 0 : (i < d->scale_count ? i : 0)];
  *zp = d->zero_point_count == 0 ? 0 : d->zero_points[d->zero_point_count == 1 ? 0 : (i < d->zero_point_count ? i : 0)];
}

/* NaN (a zero or NaN scale from the model) stores 0: converting NaN to an integer is undefined. */
static double clamp_round(double v, double lo, double hi) {
  if (isnan(v)) return 0;
  v = nearbyint(v);
  return v < lo ? lo : (v > hi ? hi : v);
}

static void store(uint8_t *p, int32_t dtype, double v) {
  switch (dtype) {
    case ER_DTYPE_FLOAT32: { float f = (float)v; memcpy(p, &f, 4); break; }
    case ER_DTYPE_FLOAT64: memcpy(p, &v, 8); break;
    case ER_DTYPE_FLOAT16: { uint16_t h = float_to_half((float)v); memcpy(p, &h, 2); break; }
    case ER_DTYPE_INT8: { int8_t x = (int8_t)clamp_round(v, -128, 127); memcpy(p, &x, 1); break; }
    case ER_DTYPE_UINT8: { uint8_t x = (uint8_t)clamp_round(v, 0, 255); memcpy(p, &x, 1); break; }
    case ER_DTYPE_INT16: { int16_t x = (int16_t)clamp_round(v, -32768, 32767); memcpy(p, &x, 2); break; }
    case ER_DTYPE_UINT16: { uint16_t x = (uint16_t)clamp_round(v, 0, 65535); memcpy(p, &x, 2); break; }
    case ER_DTYPE_INT32: { int32_t x = (int32_t)clamp_round(v, -2147483648.0, 2147483647.0); memcpy(p, &x, 4); break; }
    default: break;
  }
}

static double load(const uint8_t *p, int32_t dtype) {
  switch (dtype) {
    case ER_DTYPE_FLOAT32: { float f; memcpy(&f, p, 4); return f; }
    case ER_DTYPE_FLOAT64: { double d; memcpy(&d, p, 8); return d; }
    case ER_DTYPE_FLOAT16: { uint16_t h; memcpy(&h, p, 2); return half_to_float(h); }
    case ER_DTYPE_INT8: { int8_t x; memcpy(&x, p, 1); return x; }
    case ER_DTYPE_UINT8: return *p;
    case ER_DTYPE_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case ER_DTYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case ER_DTYPE_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    default: return 0;
  }
}

static void convert_row(void *p, uint8_t *row, int64_t first, int64_t axis_index, int64_t count, int64_t stride) {
  convert_ctx *c = p;
  const er_tensor_desc *d = c->desc;
  int quantized = d->quant_type != 0;
  float scale = 1.0f;
  int32_t zp = 0;
  if (quantized && !c->inner_axis) er_quant_params(d, axis_index, &scale, &zp);
  for (int64_t k = 0; k < count; k++) {
    if (quantized && c->inner_axis) er_quant_params(d, k, &scale, &zp);
    float *v = &c->values[first + k];
    uint8_t *e = row + k * stride;
    if (c->to_strided) {
      store(e, c->dtype, quantized ? (double)*v / scale + zp : (double)*v);
    } else {
      double x = load(e, c->dtype);
      *v = quantized ? (float)((x - zp) * scale) : (float)x;
    }
  }
}

static int convertible(const er_tensor_desc *d) {
  switch (d->dtype) {
    case ER_DTYPE_FLOAT32:
    case ER_DTYPE_FLOAT64:
    case ER_DTYPE_FLOAT16: return 1;
    case ER_DTYPE_INT8:
    case ER_DTYPE_UINT8:
    case ER_DTYPE_INT16:
    case ER_DTYPE_UINT16:
    case ER_DTYPE_INT32: return d->quant_type != 0;
    default: return 0;
  }
}

static int32_t copy(const er_tensor_desc *desc, const er_tensor_buf *buf, void *user, uint64_t len, uint32_t mode,
                    int to_strided) {
  uint32_t elem = er_dtype_size(desc->dtype);
  int64_t n = element_count(buf);
  if (elem == 0) return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "tensor '%s' has an unsupported dtype", desc->name);
  if (n == -2) return er_fail(ER_ERR_STATE, NULL, NULL, "tensor '%s' has more elements than fit in 64 bits", desc->name);
  if (n < 0)
    return er_fail(ER_ERR_STATE, NULL, NULL, "tensor '%s' has no concrete shape yet", desc->name);
  int32_t rc = er_check_layout(desc, buf, elem);
  if (rc != ER_OK) return rc;
  if (mode == ER_COPY_DENSE) {
    if (len != (uint64_t)n * elem)
      return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s' needs %llu bytes, got %llu", desc->name,
                     (unsigned long long)n * elem, (unsigned long long)len);
    if (n == 0) return ER_OK;
    if (!user) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s': buffer is NULL", desc->name);
    dense_ctx c = {user, elem, to_strided};
    walk_rows(buf, -1, dense_row, &c);
    return ER_OK;
  }
  if (mode != ER_COPY_FLOAT32) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown copy mode %u", mode);
  if (!convertible(desc))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s' is neither floating point nor quantized",
                   desc->name);
  if (len != (uint64_t)n * 4)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s' needs %lld float32 values (%llu bytes), got %llu bytes",
                   desc->name, (long long)n, (unsigned long long)n * 4, (unsigned long long)len);
  if (n == 0) return ER_OK;
  if (!user) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s': buffer is NULL", desc->name);
  if (to_strided) {
    /* Refuse before writing anything, so a bad feed leaves the tensor as it was. */
    const float *values = user;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(values[i]))
        return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor '%s': value at index %lld is not finite",
                       desc->name, (long long)i);
  }
  int32_t axis = desc->quant_type && desc->scale_count > 1 ? desc->quant_axis : -1;
  if (axis >= (int32_t)buf->rank) axis = -1;
  convert_ctx c = {user, desc, desc->dtype, to_strided, axis >= 0 && (uint32_t)axis + 1 == buf->rank};
  walk_rows(buf, axis, convert_row, &c);
  return ER_OK;
}

int32_t er_copy_in(const er_tensor_desc *desc, const er_tensor_buf *buf, const void *src, uint64_t len,
                   uint32_t mode) {
  return copy(desc, buf, (void *)src, len, mode, 1);
}

int32_t er_copy_out(const er_tensor_desc *desc, const er_tensor_buf *buf, void *dst, uint64_t len, uint32_t mode) {
  return copy(desc, buf, dst, len, mode, 0);
}
