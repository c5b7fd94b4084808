/*
 * Camera frames into model inputs: packed RGB/BGR u8 -> NV12 Y/UV planes, and u8 images ->
 * normalized float32/float16/quantized featuremaps. The kernels (er_rgb_to_nv12,
 * er_normalize_u8) take pointers and strides only, so they can be tested and fuzzed without a
 * request; er_request_write_nv12 / er_request_write_normalized validate a request's tensors and
 * call them on its input memory in place.
 *
 * Colour matrix: ITU-R BT.601. Horizon's toolchain converts models with input_type_rt "nv12" for
 * `input_space_and_range: regular` (its default; full range, Y/U/V 0..255) or `bt601_video`
 * (video range, Y 16..235, U/V 16..240): hb_mapper makertbin's input_parameters, and its own
 * reference transformers (horizon_tc_ui "rgb2bt601_full_range" / "rgb2bt601_video_range"). Full
 * range is the default here too; video range is a flag.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preprocess.h"

/*
 * Fixed point: BT.601 coefficients times 2^14, rounded, then nudged so each row sums exactly
 * (Y: 1 or 219/255; U, V: 0), which keeps grey grey and white at 255 (full) / 235 (video).
 * Luma is per pixel (>> 14); chroma takes the sum of a 2x2 block, i.e. 4x the mean (>> 16).
 */
#define ER_Q 14
static const int32_t K_FULL[9] = {4899, 9617, 1868, -2765, -5427, 8192, 8192, -6860, -1332};
static const int32_t K_VIDEO[9] = {4207, 8260, 1604, -2428, -4768, 7196, 7196, -6026, -1170};

static inline int32_t clamp_u8(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

/*
 * One pair of source rows -> two Y rows and one UV row. ri/bi (offsets of R and B in a pixel)
 * and the coefficient table are constants at every call site, so after inlining the loops have
 * fixed-stride loads and no branches: clang vectorizes both (interleaved loads, i32 lanes).
 */
static inline __attribute__((always_inline)) void nv12_row_pair(const uint8_t *restrict s0,
                                                               const uint8_t *restrict s1, uint32_t width,
                                                               uint8_t *restrict y0, uint8_t *restrict y1,
                                                               uint8_t *restrict uv, const int ri, const int bi,
                                                               const int32_t *k, const int32_t y_bias) {
  const int32_t yr = k[0], yg = k[1], yb = k[2];
  const int32_t y_add = (y_bias << ER_Q) + (1 << (ER_Q - 1));
  for (uint32_t x = 0; x < width; x++) {
    const uint8_t *p = s0 + 3 * (size_t)x;
    y0[x] = (uint8_t)clamp_u8((yr * p[ri] + yg * p[1] + yb * p[bi] + y_add) >> ER_Q);
  }
  for (uint32_t x = 0; x < width; x++) {
    const uint8_t *p = s1 + 3 * (size_t)x;
    y1[x] = (uint8_t)clamp_u8((yr * p[ri] + yg * p[1] + yb * p[bi] + y_add) >> ER_Q);
  }
  /*
   * Chroma is linear in R, G, B, so the 2x2 sum of per-pixel U/V terms equals U/V of the 2x2
   * sums, exactly in integers. Per-pixel terms of both rows first (stride-3 loads, like luma),
   * then each horizontal pair (stride-2 loads, interleaved UV stores): shapes that vectorize on
   * aarch64 too, unlike one loop gathering six bytes from two rows.
   */
  const int32_t c_add = (128 << (ER_Q + 2)) + (1 << (ER_Q + 1));
  enum { BLOCK = 256 };
  int32_t us[BLOCK], vs[BLOCK];
  for (uint32_t x0 = 0; x0 < width; x0 += BLOCK) {
    uint32_t n = width - x0 < BLOCK ? width - x0 : BLOCK;
    const uint8_t *a = s0 + 3 * (size_t)x0, *b = s1 + 3 * (size_t)x0;
    for (uint32_t i = 0; i < n; i++) {
      int32_t r = a[3 * i + ri] + b[3 * i + ri], g = a[3 * i + 1] + b[3 * i + 1], bl = a[3 * i + bi] + b[3 * i + bi];
      us[i] = k[3] * r + k[4] * g + k[5] * bl;
      vs[i] = k[6] * r + k[7] * g + k[8] * bl;
    }
    uint8_t *o = uv + x0;
    for (uint32_t i = 0; i < n / 2; i++) {
      o[2 * i] = (uint8_t)clamp_u8((us[2 * i] + us[2 * i + 1] + c_add) >> (ER_Q + 2));
      o[2 * i + 1] = (uint8_t)clamp_u8((vs[2 * i] + vs[2 * i + 1] + c_add) >> (ER_Q + 2));
    }
  }
}

#define NV12_VARIANT(fn, RI, BI, K, BIAS)                                                                     \
  static void fn(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t height, uint8_t *y,          \
                 size_t y_stride, uint8_t *uv, size_t uv_stride) {                                            \
    for (uint32_t row = 0; row + 1 < height; row += 2) {                                                     \
      const uint8_t *s0 = src + row * src_stride;                                                            \
      nv12_row_pair(s0, s0 + src_stride, width, y + row * y_stride, y + (row + 1) * y_stride,                \
                    uv + (row / 2) * uv_stride, RI, BI, K, BIAS);                                            \
    }                                                                                                         \
  }
NV12_VARIANT(nv12_rgb_full, 0, 2, K_FULL, 0)
NV12_VARIANT(nv12_bgr_full, 2, 0, K_FULL, 0)
NV12_VARIANT(nv12_rgb_video, 0, 2, K_VIDEO, 16)
NV12_VARIANT(nv12_bgr_video, 2, 0, K_VIDEO, 16)

void er_rgb_to_nv12(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t height, int bgr, int video,
                    uint8_t *y, size_t y_stride, uint8_t *uv, size_t uv_stride) {
  if (video) (bgr ? nv12_bgr_video : nv12_rgb_video)(src, src_stride, width, height, y, y_stride, uv, uv_stride);
  else (bgr ? nv12_bgr_full : nv12_rgb_full)(src, src_stride, width, height, y, y_stride, uv, uv_stride);
}

/* ---- normalization ---- */

/*
 * One channel of one row: v = src[3x + sc] * mul + add in float32 (no fused multiply-add, so
 * every platform gives the same bits), then stored as the tensor's type; `step` is the element
 * step between pixels in the destination (1 for NCHW planes, 3 for NHWC). One loop per dtype.
 */
#if defined(__clang__) /* gcc in -std=c11 mode does not contract across statements */
#pragma clang fp contract(off)
#endif
/*
 * Half floats: _Float16 where the compiler has it (zig's clang, on x86-64 and aarch64); clang-14 on
 * x86-64 (the fuzz build) only has the storage type __fp16, which converts from float the same way
 * (IEEE, round to nearest even).
 */
#ifdef __FLT16_MAX__
typedef _Float16 er_half;
#else
typedef __fp16 er_half;
#endif

static void norm_f32(const uint8_t *restrict s, uint32_t width, float mul, float add, float *restrict d, size_t step) {
  for (uint32_t x = 0; x < width; x++) d[x * step] = (float)s[3 * (size_t)x] * mul + add;
}

static void norm_f16(const uint8_t *restrict s, uint32_t width, float mul, float add, er_half *restrict d,
                     size_t step) {
  for (uint32_t x = 0; x < width; x++) d[x * step] = (er_half)((float)s[3 * (size_t)x] * mul + add);
}

/* Quantized: q = clamp(round_half_even(v / scale + zero_point)), as the vendor runtimes quantize. */
static void norm_q(const uint8_t *restrict s, uint32_t width, float mul, float add, float scale, float zp, float lo,
                   float hi, uint8_t *restrict d, size_t step, int is_signed) {
  for (uint32_t x = 0; x < width; x++) {
    float q = rintf(((float)s[3 * (size_t)x] * mul + add) / scale + zp);
    q = fminf(fmaxf(q, lo), hi);
    d[x * step] = is_signed ? (uint8_t)(int8_t)q : (uint8_t)q;
  }
}

void er_normalize_u8(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t height,
                     const er_norm_params *p, uint8_t *dst, size_t channel_stride, size_t row_stride, int nhwc) {
  size_t step = nhwc ? 3 : 1;
  for (uint32_t row = 0; row < height; row++) {
    const uint8_t *s = src + row * src_stride;
    for (int c = 0; c < 3; c++) {
      const uint8_t *sc = s + p->src_channel[c];
      uint8_t *d = dst + row * row_stride + (size_t)c * channel_stride;
      switch (p->dtype) {
        case ER_DTYPE_FLOAT32: norm_f32(sc, width, p->mul[c], p->add[c], (float *)(void *)d, step); break;
        case ER_DTYPE_FLOAT16: norm_f16(sc, width, p->mul[c], p->add[c], (er_half *)(void *)d, step); break;
        case ER_DTYPE_INT8:
          norm_q(sc, width, p->mul[c], p->add[c], p->scale[c], (float)p->zero_point[c], -128.0f, 127.0f, d, step, 1);
          break;
        case ER_DTYPE_UINT8:
          norm_q(sc, width, p->mul[c], p->add[c], p->scale[c], (float)p->zero_point[c], 0.0f, 255.0f, d, step, 0);
          break;
        default: return;
      }
    }
  }
}
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

/* ---- validation shared by both request-level writers ---- */

/* The source image: 3 bytes a pixel, rows stride bytes apart (0 = packed), len bytes in all. */
static int32_t check_image(const uint8_t *image, uint32_t len, uint32_t width, uint32_t height, uint32_t *stride) {
  if (width == 0 || height == 0)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image size %ux%u: width and height must be positive", width,
                   height);
  if (width > UINT32_MAX / 3) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image width %u is too large", width);
  if (*stride == 0) *stride = width * 3;
  if (*stride < width * 3)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                   "image row stride %u is shorter than a row of %u RGB pixels (%u bytes)", *stride, width, width * 3);
  uint64_t need = (uint64_t)*stride * (height - 1) + (uint64_t)width * 3;
  if (len < need)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                   "image buffer holds %u bytes; %ux%u pixels at a row stride of %u need %llu", len, width, height,
                   *stride, (unsigned long long)need);
  if (!image) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image must not be NULL");
  return ER_OK;
}

static int shape_is(const er_tensor_buf *b, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  return b->rank == 4 && b->shape[0] == d0 && b->shape[1] == d1 && b->shape[2] == d2 && b->shape[3] == d3;
}

static const char *shape_text(const er_tensor_buf *b, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "[");
  for (uint32_t i = 0; i < b->rank && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? "," : "", (long long)b->shape[i]);
  if (n < cap) snprintf(out + n, cap - n, "]");
  return out;
}

/* Every dimension known and non-empty, data present, and every element inside the buffer. */
static int32_t check_buffer(const er_tensor_desc *d, const er_tensor_buf *b) {
  for (uint32_t i = 0; i < b->rank; i++) {
    if (b->shape[i] < 0 || b->strides[i] < 0)
      return er_fail(ER_ERR_STATE, NULL, NULL, "input '%s' has a dynamic shape: set its shape first", d->name);
    if (b->shape[i] == 0) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' is empty", d->name);
  }
  return er_check_layout(d, b, er_dtype_size(d->dtype));
}

/* ---- NV12 ---- */

static int32_t check_plane(const er_tensor_desc *d, const er_tensor_buf *b, const char *role, int64_t h, int64_t w,
                           int64_t c, int64_t n) {
  char shape[128];
  if (d->dtype != ER_DTYPE_UINT8)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "NV12 %s input '%s' must be uint8, it is dtype %d", role,
                   d->name, d->dtype);
  int32_t rc = b->rank == 4 ? check_buffer(d, b) : ER_OK;
  if (rc != ER_OK) return rc;
  if (!shape_is(b, n, h, w, c)) {
    shape_text(b, shape, sizeof shape);
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "NV12 %s input '%s' has shape %s; the image needs [%lld,%lld,%lld,%lld]",
                   role, d->name, shape, (long long)n, (long long)h, (long long)w, (long long)c);
  }
  /* Pixels must be packed within a row (the S100 layout); only the row step may be padded. */
  if (b->strides[3] != 1 || b->strides[2] != c || b->strides[1] < w * c)
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL,
                   "NV12 %s input '%s' has strides [%lld,%lld,%lld,%lld]; expected packed pixels ([.., >=%lld, %lld, 1])",
                   role, d->name, (long long)b->strides[0], (long long)b->strides[1], (long long)b->strides[2],
                   (long long)b->strides[3], (long long)(w * c), (long long)c);
  return ER_OK;
}

ER_API int32_t er_request_write_nv12(er_request *request, uint32_t y_index, uint32_t uv_index, const uint8_t *image,
                                     uint32_t len, uint32_t width, uint32_t height, uint32_t stride, uint32_t format,
                                     uint32_t flags) {
  er_clear_error();
  if (format > ER_IMAGE_BGR)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown image format %u (0 RGB, 1 BGR)", format);
  if (flags > ER_NV12_VIDEO_RANGE) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown NV12 flags %u", flags);
  int32_t rc = check_image(image, len, width, height, &stride);
  if (rc != ER_OK) return rc;
  if ((width | height) & 1)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                   "NV12 needs an even width and height, got %ux%u (crop or pad the image by one pixel)", width,
                   height);
  if (y_index == uv_index)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "Y and UV must be two different inputs, got %u twice", y_index);
  const er_tensor_desc *yd, *uvd;
  er_tensor_buf *yb, *uvb;
  if ((rc = er_request_input(request, y_index, &yd, &yb)) != ER_OK) return rc;
  if ((rc = er_request_input(request, uv_index, &uvd, &uvb)) != ER_OK) return rc;
  if ((rc = check_plane(yd, yb, "Y", height, width, 1, 1)) != ER_OK) return rc;
  if ((rc = check_plane(uvd, uvb, "UV", height / 2, width / 2, 2, 1)) != ER_OK) return rc;
  er_rgb_to_nv12(image, stride, width, height, format == ER_IMAGE_BGR, flags & ER_NV12_VIDEO_RANGE, yb->data,
                 (size_t)yb->strides[1], uvb->data, (size_t)uvb->strides[1]);
  return ER_OK;
}

/* mean_std (mean[3], std[3]; NULL: 0 and 1) -> multipliers and offsets; unquantized until told otherwise. */
static int32_t norm_params(const float *mean_std, int swap, er_norm_params *p) {
  for (int c = 0; c < 3; c++) {
    float mean = mean_std ? mean_std[c] : 0.0f, std = mean_std ? mean_std[3 + c] : 1.0f;
    if (!isfinite(mean) || !isfinite(std) || std == 0.0f)
      return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                     "channel %d: mean %g and std %g must be finite and std non-zero", c, mean, std);
    p->mul[c] = 1.0f / std;
    /* A subnormal std has no finite float32 reciprocal: every value would be inf, or NaN at x = mean. */
    if (!isfinite(p->mul[c]))
      return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "channel %d: std %g is too small (1/std overflows float32)", c,
                     std);
    p->add[c] = -mean * p->mul[c];
    p->src_channel[c] = (uint8_t)(swap ? 2 - c : c);
    p->scale[c] = 1.0f;
    p->zero_point[c] = 0;
  }
  return ER_OK;
}

/* Quantization parameters of a (u)int8 input into p: per tensor, or per channel on the channel axis. */
static int32_t norm_quant(const er_tensor_desc *d, int32_t c_axis, er_norm_params *p) {
  if (d->scale_count != 1 && !(d->scale_count == 3 && d->quant_axis == c_axis))
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL,
                   "input '%s' is quantized with %u scales on axis %d; only per-tensor or per-channel scales apply",
                   d->name, d->scale_count, d->quant_axis);
  /* As er_copy_in reads them: the model file's scale and zero-point counts need not agree. */
  for (int c = 0; c < 3; c++) {
    er_quant_params(d, d->scale_count == 3 ? c : -1, &p->scale[c], &p->zero_point[c]);
    if (!(p->scale[c] > 0.0f) || !isfinite(p->scale[c]))
      return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input '%s' has a non-positive scale", d->name);
  }
  return ER_OK;
}

/* ---- normalization ---- */

ER_API int32_t er_request_write_normalized(er_request *request, uint32_t index, const uint8_t *image, uint32_t len,
                                           uint32_t width, uint32_t height, uint32_t stride, uint32_t flags,
                                           const float *mean_std) {
  er_clear_error();
  if (flags & ~(uint32_t)(3u | ER_NORM_SWAP_CHANNELS))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown normalization flags 0x%x", flags);
  uint32_t layout = flags & 3u;
  if (layout == 3u) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "layout 3 is neither NCHW (1) nor NHWC (2)");
  int32_t rc = check_image(image, len, width, height, &stride);
  if (rc != ER_OK) return rc;
  if (!mean_std) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "mean_std must not be NULL");
  er_norm_params p;
  if ((rc = norm_params(mean_std, flags & ER_NORM_SWAP_CHANNELS, &p)) != ER_OK) return rc;
  const er_tensor_desc *d;
  er_tensor_buf *b;
  if ((rc = er_request_input(request, index, &d, &b)) != ER_OK) return rc;
  p.dtype = d->dtype;
  int quantized = d->quant_type != 0 && d->scale_count > 0;
  int ok_type = d->dtype == ER_DTYPE_FLOAT32 || d->dtype == ER_DTYPE_FLOAT16 ||
                ((d->dtype == ER_DTYPE_INT8 || d->dtype == ER_DTYPE_UINT8) && quantized);
  if (!ok_type)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                   "input '%s' (dtype %d) takes no normalized image: it must be float32, float16, or int8/uint8 "
                   "with quantization parameters",
                   d->name, d->dtype);
  /* [1,3,H,W] / [1,H,W,3], or the same without the batch dimension. */
  uint32_t lead = b->rank == 4 ? 1 : 0;
  char shape[128]; /* filled only for an error message: this runs once per frame */
  if ((b->rank != 3 && b->rank != 4) || (lead && b->shape[0] != 1))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' has shape %s; an image input is [1,3,H,W] or [1,H,W,3]",
                   d->name, shape_text(b, shape, sizeof shape));
  if ((rc = check_buffer(d, b)) != ER_OK) return rc;
  const int64_t *s = b->shape + lead;
  int is_nchw = s[0] == 3 && s[1] == height && s[2] == width;
  int is_nhwc = s[2] == 3 && s[0] == height && s[1] == width;
  if (layout == ER_LAYOUT_AUTO && is_nchw && is_nhwc)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' with shape %s reads as NCHW and as NHWC: give the layout",
                   d->name, shape_text(b, shape, sizeof shape));
  int nhwc = layout == ER_LAYOUT_NHWC || (layout == ER_LAYOUT_AUTO && is_nhwc);
  if (nhwc ? !is_nhwc : !is_nchw)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' has shape %s; a %ux%u image needs %s", d->name, shape_text(b, shape, sizeof shape),
                   width, height, nhwc ? "[1,H,W,3] (NHWC)" : (layout ? "[1,3,H,W] (NCHW)" : "[1,3,H,W] or [1,H,W,3]"));
  if (quantized && (rc = norm_quant(d, (int32_t)lead + (nhwc ? 2 : 0), &p)) != ER_OK) return rc;
  const int64_t *st = b->strides + lead;
  int64_t elem = er_dtype_size(d->dtype);
  size_t channel_stride, row_stride;
  if (nhwc) {
    if (st[2] != elem || st[1] != 3 * elem)
      return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input '%s': NHWC pixels must be packed (strides .., %lld, %lld)",
                     d->name, (long long)(3 * elem), (long long)elem);
    channel_stride = (size_t)elem;
    row_stride = (size_t)st[0];
  } else {
    if (st[2] != elem)
      return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input '%s': NCHW rows must be packed (innermost stride %lld)",
                     d->name, (long long)elem);
    channel_stride = (size_t)st[0];
    row_stride = (size_t)st[1];
  }
  /* The kernels store typed elements: an odd row step for float16/32 (a model file may give one) would misalign them. */
  if (channel_stride % (size_t)elem || row_stride % (size_t)elem || (uintptr_t)b->data % (uintptr_t)elem)
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL,
                   "input '%s': row and channel strides (%zu, %zu bytes) must be multiples of its %lld-byte elements",
                   d->name, row_stride, channel_stride, (long long)elem);
  er_normalize_u8(image, stride, width, height, &p, b->data, channel_stride, row_stride, nhwc);
  return ER_OK;
}

/* ---- any frame into a region of an input (resampled by shim/preprocess.c) ---- */

/* A rectangle {x, y, w, h} inside a w x h area (a zero size meaning all of it). */
static int32_t check_rect(uint32_t *r, uint32_t w, uint32_t h, const char *what) {
  if (r[2] == 0 || r[3] == 0) r[0] = r[1] = 0, r[2] = w, r[3] = h;
  if ((uint64_t)r[0] + r[2] > w || (uint64_t)r[1] + r[3] > h)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "%s %ux%u at (%u,%u) does not fit in %ux%u", what, r[2], r[3],
                   r[0], r[1], w, h);
  return ER_OK;
}

/* Where one destination plane is: the element at (0, 0) of the batch item, its steps, its size. */
typedef struct image_dest {
  uint8_t *base, *uv_base;
  size_t channel_stride, row_stride, uv_row_stride, pixel_step;
  int64_t h, w;
  int nhwc;
} image_dest;

/* NV12 Y [N,H,W,1] and UV [N,H/2,W/2,2], uint8, pixels packed within rows. */
static int32_t nv12_dest(er_request *request, uint32_t yi, uint32_t uvi, uint32_t batch, image_dest *o) {
  const er_tensor_desc *yd, *uvd;
  er_tensor_buf *yb, *uvb;
  int32_t rc;
  if (yi == uvi)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "Y and UV must be two different inputs, got %u twice", yi);
  if ((rc = er_request_input(request, yi, &yd, &yb)) != ER_OK) return rc;
  if ((rc = er_request_input(request, uvi, &uvd, &uvb)) != ER_OK) return rc;
  if (yb->rank != 4 || uvb->rank != 4)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "NV12 inputs '%s' and '%s' must be [N,H,W,1] and [N,H/2,W/2,2]",
                   yd->name, uvd->name);
  if ((rc = check_buffer(yd, yb)) != ER_OK) return rc;
  int64_t n = yb->shape[0], h = yb->shape[1], w = yb->shape[2];
  if (h % 2 || w % 2) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "NV12 input '%s' has an odd size", yd->name);
  if ((rc = check_plane(yd, yb, "Y", h, w, 1, n)) != ER_OK) return rc;
  if ((rc = check_plane(uvd, uvb, "UV", h / 2, w / 2, 2, n)) != ER_OK) return rc;
  if (batch >= n)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "batch index %u is outside input '%s' (batch %lld)", batch,
                   yd->name, (long long)n);
  o->base = yb->data + (size_t)batch * (size_t)yb->strides[0];
  o->uv_base = uvb->data + (size_t)batch * (size_t)uvb->strides[0];
  o->row_stride = (size_t)yb->strides[1], o->uv_row_stride = (size_t)uvb->strides[1];
  o->h = h, o->w = w, o->pixel_step = 1;
  return ER_OK;
}

/* A 3-channel tensor [N,3,H,W] / [N,H,W,3] / [3,H,W] / [H,W,3] of a type the normalizer writes. */
static int32_t tensor_dest(const er_tensor_desc *d, er_tensor_buf *b, uint32_t layout, uint32_t batch, image_dest *o,
                           er_norm_params *p) {
  char shape[128];
  int32_t rc;
  if (d->dtype != ER_DTYPE_FLOAT32 && d->dtype != ER_DTYPE_FLOAT16 && d->dtype != ER_DTYPE_INT8 &&
      d->dtype != ER_DTYPE_UINT8)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL,
                   "input '%s' (dtype %d) takes no image: it must be float32, float16, int8 or uint8", d->name, d->dtype);
  if (b->rank != 3 && b->rank != 4)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' has shape %s; an image input is [N,3,H,W] or [N,H,W,3]",
                   d->name, shape_text(b, shape, sizeof shape));
  if ((rc = check_buffer(d, b)) != ER_OK) return rc;
  uint32_t lead = b->rank - 3;
  int64_t n = lead ? b->shape[0] : 1;
  const int64_t *s = b->shape + lead, *st = b->strides + lead;
  int can_nchw = s[0] == 3, can_nhwc = s[2] == 3;
  if (layout == ER_LAYOUT_AUTO && can_nchw == can_nhwc)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' with shape %s %s: give the layout", d->name,
                   shape_text(b, shape, sizeof shape), can_nchw ? "reads as NCHW and as NHWC" : "has no 3-channel axis");
  int nhwc = layout == ER_LAYOUT_NHWC || (layout == ER_LAYOUT_AUTO && can_nhwc);
  if (nhwc ? !can_nhwc : !can_nchw)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' has shape %s; %s needs 3 channels there", d->name,
                   shape_text(b, shape, sizeof shape), nhwc ? "NHWC" : "NCHW");
  if (batch >= n)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "batch index %u is outside input '%s' (batch %lld)", batch,
                   d->name, (long long)n);
  int64_t elem = er_dtype_size(d->dtype);
  if (nhwc ? st[2] != elem || st[1] != 3 * elem : st[2] != elem)
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input '%s': pixels must be packed within rows", d->name);
  o->nhwc = nhwc;
  o->h = nhwc ? s[0] : s[1], o->w = nhwc ? s[1] : s[2];
  o->channel_stride = nhwc ? (size_t)elem : (size_t)st[0];
  o->row_stride = nhwc ? (size_t)st[0] : (size_t)st[1];
  o->pixel_step = nhwc ? 3 * (size_t)elem : (size_t)elem;
  o->base = b->data + (lead ? (size_t)batch * (size_t)b->strides[0] : 0);
  if (o->channel_stride % (size_t)elem || o->row_stride % (size_t)elem || (uintptr_t)b->data % (uintptr_t)elem ||
      (lead && (size_t)b->strides[0] % (size_t)elem))
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input '%s': strides must be multiples of its %lld-byte elements",
                   d->name, (long long)elem);
  p->dtype = d->dtype;
  /* (u)int8 without quantization parameters takes the values themselves (scale 1, zero point 0). */
  if (d->quant_type != 0 && d->scale_count > 0 && (d->dtype == ER_DTYPE_INT8 || d->dtype == ER_DTYPE_UINT8))
    return norm_quant(d, (int32_t)lead + (nhwc ? 2 : 0), p);
  return ER_OK;
}

ER_API int32_t er_request_write_image(er_request *request, uint32_t index, uint32_t uv_index, const uint8_t *image,
                                      uint32_t len, uint32_t *geometry, uint32_t flags, const float *mean_std) {
  er_clear_error();
  const uint32_t known = 3u | ER_NORM_SWAP_CHANNELS | ER_IMG_NV12_VIDEO | ER_IMG_SOURCE_VIDEO | ER_IMG_LETTERBOX |
                         ER_IMG_ROTATE_180 | (3u << ER_IMG_RESIZE_SHIFT);
  if (!geometry) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "geometry must not be NULL");
  uint32_t layout = flags & 3u, mode = (flags >> ER_IMG_RESIZE_SHIFT) & 3u;
  if ((flags & ~known) || layout == 3u || mode == 3u)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown image flags 0x%x", flags);
  uint32_t *g = geometry, format = g[ER_GEO_FORMAT], width = g[1], height = g[2], stride = g[3];
  uint32_t bpp = er_pix_bytes(format);
  if (!bpp) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown pixel format %u", format);
  if (width == 0 || height == 0 || width > (1u << 16) || height > (1u << 16))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image size %ux%u: each side must be 1..65536", width, height);
  if ((format == ER_PIX_NV12 && ((width | height) & 1)) || (format == ER_PIX_YUYV && (width & 1)))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "a %s image needs an even %s, got %ux%u",
                   format == ER_PIX_NV12 ? "NV12" : "YUYV", format == ER_PIX_NV12 ? "width and height" : "width", width,
                   height);
  if (stride == 0) stride = width * bpp;
  if (stride < width * bpp)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image row stride %u is shorter than a row (%u bytes)", stride,
                   width * bpp);
  uint64_t rows = format == ER_PIX_NV12 ? height + height / 2 : height;
  uint64_t need = (uint64_t)stride * (rows - 1) + (uint64_t)width * bpp;
  if (len < need)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image buffer holds %u bytes; the %ux%u image needs %llu", len,
                   width, height, (unsigned long long)need);
  if (!image) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "image must not be NULL");
  int32_t rc = check_rect(g + ER_GEO_CROP, width, height, "crop");
  if (rc != ER_OK) return rc;

  image_dest o;
  memset(&o, 0, sizeof o);
  er_norm_params p;
  int nv12 = uv_index != ER_NO_INPUT;
  uint32_t batch = g[ER_GEO_BATCH];
  if (nv12) {
    if ((rc = nv12_dest(request, index, uv_index, batch, &o)) != ER_OK) return rc;
  } else {
    const er_tensor_desc *d;
    er_tensor_buf *b;
    if ((rc = norm_params(mean_std, flags & ER_NORM_SWAP_CHANNELS, &p)) != ER_OK) return rc;
    if ((rc = er_request_input(request, index, &d, &b)) != ER_OK) return rc;
    if ((rc = tensor_dest(d, b, layout, batch, &o, &p)) != ER_OK) return rc;
  }
  if (o.h > (1 << 16) || o.w > (1 << 16))
    return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL, "input planes larger than 65536 pixels a side are not supported");
  uint32_t *region = g + ER_GEO_REGION, *placed = g + ER_GEO_PLACED;
  if ((rc = check_rect(region, (uint32_t)o.w, (uint32_t)o.h, "region")) != ER_OK) return rc;
  if (nv12 && ((region[0] | region[1] | region[2] | region[3]) & 1))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "an NV12 region needs even x, y, width and height");
  /* Letterbox: the largest scale at which the crop fits, rounded sizes, centred (left/top on ties). */
  uint32_t cw = g[ER_GEO_CROP + 2], ch = g[ER_GEO_CROP + 3], inner[4] = {0, 0, region[2], region[3]};
  if (flags & ER_IMG_LETTERBOX) {
    double sx = (double)region[2] / cw, sy = (double)region[3] / ch, s = sx < sy ? sx : sy;
    double iw = floor(cw * s + 0.5), ih = floor(ch * s + 0.5);
    inner[2] = iw < 1 ? 1 : iw > region[2] ? region[2] : (uint32_t)iw;
    inner[3] = ih < 1 ? 1 : ih > region[3] ? region[3] : (uint32_t)ih;
    inner[0] = (region[2] - inner[2]) / 2, inner[1] = (region[3] - inner[3]) / 2;
  }
  placed[0] = region[0] + inner[0], placed[1] = region[1] + inner[1], placed[2] = inner[2], placed[3] = inner[3];

  uint8_t *rgb = malloc((size_t)region[2] * region[3] * 3);
  if (!rgb) return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "cannot allocate a %ux%u image", region[2], region[3]);
  er_image_src src = {image, format, width, height, stride, (flags & ER_IMG_SOURCE_VIDEO) != 0};
  uint32_t padv = g[ER_GEO_PAD];
  const uint8_t pad[3] = {(uint8_t)padv, (uint8_t)(padv >> 8), (uint8_t)(padv >> 16)};
  rc = er_resample_rgb(&src, g + ER_GEO_CROP, rgb, (size_t)region[2] * 3, region[2], region[3], inner, pad, (int)mode,
                       (flags & ER_IMG_ROTATE_180) != 0);
  if (rc == ER_OK) {
    size_t row = (size_t)region[2] * 3;
    int bgr = format == ER_PIX_BGR || format == ER_PIX_BGRA;
    if (nv12)
      er_rgb_to_nv12(rgb, row, region[2], region[3], bgr, (flags & ER_IMG_NV12_VIDEO) != 0,
                     o.base + region[1] * o.row_stride + region[0], o.row_stride,
                     o.uv_base + (region[1] / 2) * o.uv_row_stride + region[0], o.uv_row_stride);
    else
      er_normalize_u8(rgb, row, region[2], region[3], &p, o.base + region[1] * o.row_stride + region[0] * o.pixel_step,
                      o.channel_stride, o.row_stride, o.nhwc);
  }
  free(rgb);
  return rc;
}
