/*
 * Fuzz target: the image kernels of shim/image.c and the request-level writers over them.
 * The first byte picks one of three modes:
 *   0  er_rgb_to_nv12 on a fuzz-sized frame (even sizes, padded strides, RGB/BGR, full/video);
 *   1  er_normalize_u8 (NCHW/NHWC, float32/float16/int8/uint8, any mul/add/scale/zero point);
 *   2  er_request_write_nv12 / er_request_write_normalized on a request of a test backend whose
 *      input descriptions and buffers come from the input (as tests/fuzz/core.c does).
 * Every buffer is allocated at exactly the size the code is told, so a read or write past it is an
 * AddressSanitizer report; rows and planes are padded and the padding is filled with a sentinel that
 * must survive. Outputs are compared with a plain per-pixel reference (same fixed point for NV12,
 * same float operations for normalization), NV12 additionally with the BT.601 formulas in double
 * (within 1) and, in video range, with the Y 16..235 and U/V 16..240 bounds. core.c and image.c are
 * included whole: the test backend replaces the vendor ones, and the reference uses the kernels'
 * coefficient tables.
 */
#include "../../shim/core.c"
#include "../../shim/image.c"

#include <stdlib.h>
#include <unistd.h>

#include "fuzz_input.h"

/* The reference must round like the kernels: no fused multiply-add. */
#pragma clang fp contract(off)

#define SENTINEL 0xA5

static fuzz_input in;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "image fuzz: %s\n", what);
    abort();
  }
}

/* Pixel bytes: the input's remaining bytes repeated (a fixed ramp when none are left). */
static void fill_pixels(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = in.left ? in.p[(i * 13u) % in.left] : (uint8_t)(i * 37u);
}

/* ---- NV12 ---- */

static int32_t clamp_ref(int64_t v) { return v < 0 ? 0 : (v > 255 ? 255 : (int32_t)v); }

/*
 * Checks Y and UV written from src against a per-pixel reference, and the row padding (between
 * width and the stride) against the sentinel. y/uv point at planes of the given strides.
 */
static void check_nv12(const uint8_t *src, size_t src_stride, uint32_t w, uint32_t h, int bgr, int video,
                       const uint8_t *y, size_t y_stride, const uint8_t *uv, size_t uv_stride) {
  const int32_t *k = video ? K_VIDEO : K_FULL;
  const int ri = bgr ? 2 : 0, bi = bgr ? 0 : 2;
  const double ys = video ? 219.0 / 255.0 : 1.0, cs = video ? 224.0 / 255.0 : 1.0, yb = video ? 16.0 : 0.0;
  for (uint32_t row = 0; row < h; row++) {
    for (uint32_t x = 0; x < w; x++) {
      const uint8_t *p = src + row * src_stride + 3 * (size_t)x;
      int64_t acc = (int64_t)k[0] * p[ri] + (int64_t)k[1] * p[1] + (int64_t)k[2] * p[bi];
      int32_t want = clamp_ref((acc + ((int64_t)(video ? 16 : 0) << ER_Q) + (1 << (ER_Q - 1))) >> ER_Q);
      uint8_t got = y[row * y_stride + x];
      check(got == want, "Y differs from the fixed-point reference");
      double exact = yb + ys * (0.299 * p[ri] + 0.587 * p[1] + 0.114 * p[bi]);
      check(fabs(got - exact) <= 1.0, "Y is more than 1 off BT.601");
      if (video) check(got >= 16 && got <= 235, "video-range Y outside 16..235");
    }
    if (row + 1 < h)
      for (size_t x = w; x < y_stride; x++) check(y[row * y_stride + x] == SENTINEL, "Y row padding was written");
  }
  for (uint32_t r2 = 0; r2 < h / 2; r2++) {
    for (uint32_t x2 = 0; x2 < w / 2; x2++) {
      int64_t sr = 0, sg = 0, sb = 0;
      for (uint32_t dy = 0; dy < 2; dy++)
        for (uint32_t dx = 0; dx < 2; dx++) {
          const uint8_t *p = src + (2 * r2 + dy) * src_stride + 3 * (size_t)(2 * x2 + dx);
          sr += p[ri], sg += p[1], sb += p[bi];
        }
      int64_t bias = ((int64_t)128 << (ER_Q + 2)) + (1 << (ER_Q + 1));
      int32_t want_u = clamp_ref((k[3] * sr + k[4] * sg + k[5] * sb + bias) >> (ER_Q + 2));
      int32_t want_v = clamp_ref((k[6] * sr + k[7] * sg + k[8] * sb + bias) >> (ER_Q + 2));
      uint8_t got_u = uv[r2 * uv_stride + 2 * (size_t)x2], got_v = uv[r2 * uv_stride + 2 * (size_t)x2 + 1];
      check(got_u == want_u && got_v == want_v, "U/V differ from the fixed-point reference");
      double mr = sr / 4.0, mg = sg / 4.0, mb = sb / 4.0;
      double eu = 128.0 + cs * (-0.168736 * mr - 0.331264 * mg + 0.5 * mb);
      double ev = 128.0 + cs * (0.5 * mr - 0.418688 * mg - 0.081312 * mb);
      check(fabs(got_u - eu) <= 1.0 && fabs(got_v - ev) <= 1.0, "U/V more than 1 off BT.601");
      if (video) check(got_u >= 16 && got_u <= 240 && got_v >= 16 && got_v <= 240, "video-range U/V outside 16..240");
    }
    if (r2 + 1 < h / 2)
      for (size_t x = w; x < uv_stride; x++) check(uv[r2 * uv_stride + x] == SENTINEL, "UV row padding was written");
  }
}

static void fuzz_nv12_kernel(void) {
  uint32_t w = 2 * (1 + (fuzz_u8(&in) | (uint32_t)fuzz_u8(&in) << 8) % 320); /* up to 640: several blocks */
  uint32_t h = 2 * (1 + fuzz_u8(&in) % 12);
  size_t src_stride = 3 * (size_t)w + fuzz_u8(&in) % 8;
  size_t y_stride = w + fuzz_u8(&in) % 8, uv_stride = w + fuzz_u8(&in) % 8;
  uint8_t mode = fuzz_u8(&in);
  int bgr = mode & 1, video = (mode >> 1) & 1;
  /* The last row of each plane ends the allocation: no slack past what the kernel may touch. */
  size_t src_len = src_stride * (h - 1) + 3 * (size_t)w;
  size_t y_len = y_stride * (h - 1) + w, uv_len = uv_stride * (h / 2 - 1) + w;
  uint8_t *src = malloc(src_len), *y = malloc(y_len), *uv = malloc(uv_len);
  if (src && y && uv) {
    fill_pixels(src, src_len);
    memset(y, SENTINEL, y_len);
    memset(uv, SENTINEL, uv_len);
    er_rgb_to_nv12(src, src_stride, w, h, bgr, video, y, y_stride, uv, uv_stride);
    check_nv12(src, src_stride, w, h, bgr, video, y, y_stride, uv, uv_stride);
  }
  free(src);
  free(y);
  free(uv);
}

/* ---- normalization ---- */

static size_t dtype_bytes(int32_t dtype) { return dtype == ER_DTYPE_FLOAT32 ? 4 : dtype == ER_DTYPE_FLOAT16 ? 2 : 1; }

/* The element the kernel should store for one source byte, as bytes (NaN compares by bits). */
static void norm_ref(uint8_t v, const er_norm_params *p, int c, uint8_t *out) {
  float f = (float)v * p->mul[c] + p->add[c];
  if (p->dtype == ER_DTYPE_FLOAT32) {
    memcpy(out, &f, 4);
  } else if (p->dtype == ER_DTYPE_FLOAT16) {
    er_half h = (er_half)f;
    memcpy(out, &h, 2);
  } else {
    int s = p->dtype == ER_DTYPE_INT8;
    float lo = s ? -128.0f : 0.0f, hi = s ? 127.0f : 255.0f;
    float q = rintf(f / p->scale[c] + (float)p->zero_point[c]);
    if (!(q >= lo)) q = lo; /* NaN too */
    if (q > hi) q = hi;
    out[0] = s ? (uint8_t)(int8_t)q : (uint8_t)q;
  }
}

/*
 * Writes the expected featuremap into ref (same size and strides as the kernel's dst, pre-filled
 * with the sentinel) so the two compare whole, padding included.
 */
static void norm_expect(const uint8_t *src, size_t src_stride, uint32_t w, uint32_t h, const er_norm_params *p,
                        uint8_t *ref, size_t channel_stride, size_t row_stride, int nhwc) {
  size_t e = dtype_bytes(p->dtype);
  for (uint32_t row = 0; row < h; row++)
    for (uint32_t x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        uint8_t v = src[row * src_stride + 3 * (size_t)x + p->src_channel[c]];
        size_t at = nhwc ? row * row_stride + (3 * (size_t)x + c) * e : c * channel_stride + row * row_stride + x * e;
        norm_ref(v, p, c, ref + at);
      }
}

static const int32_t norm_dtypes[4] = {ER_DTYPE_FLOAT32, ER_DTYPE_FLOAT16, ER_DTYPE_INT8, ER_DTYPE_UINT8};

static void fuzz_normalize_kernel(void) {
  uint32_t w = 1 + (fuzz_u8(&in) | (uint32_t)fuzz_u8(&in) << 8) % 300;
  uint32_t h = 1 + fuzz_u8(&in) % 8;
  size_t src_stride = 3 * (size_t)w + fuzz_u8(&in) % 5;
  uint8_t mode = fuzz_u8(&in);
  er_norm_params p;
  memset(&p, 0, sizeof p);
  p.dtype = norm_dtypes[mode & 3];
  int nhwc = (mode >> 2) & 1;
  for (int c = 0; c < 3; c++) {
    p.src_channel[c] = (uint8_t)(fuzz_u8(&in) % 3);
    p.mul[c] = fuzz_f32(&in);
    p.add[c] = fuzz_f32(&in);
    p.scale[c] = fuzz_f32(&in);
    p.zero_point[c] = fuzz_i32(&in);
  }
  size_t e = dtype_bytes(p.dtype);
  size_t row_pad = (fuzz_u8(&in) % 4) * e, chan_pad = (fuzz_u8(&in) % 4) * e;
  size_t row_stride, channel_stride, dst_len;
  if (nhwc) {
    row_stride = 3 * (size_t)w * e + row_pad;
    channel_stride = e;
    dst_len = row_stride * (h - 1) + 3 * (size_t)w * e;
  } else {
    row_stride = (size_t)w * e + row_pad;
    channel_stride = row_stride * h + chan_pad;
    dst_len = 2 * channel_stride + row_stride * (h - 1) + (size_t)w * e;
  }
  size_t src_len = src_stride * (h - 1) + 3 * (size_t)w;
  uint8_t *src = malloc(src_len), *dst = malloc(dst_len), *ref = malloc(dst_len);
  if (src && dst && ref) {
    fill_pixels(src, src_len);
    memset(dst, SENTINEL, dst_len);
    memset(ref, SENTINEL, dst_len);
    er_normalize_u8(src, src_stride, w, h, &p, dst, channel_stride, row_stride, nhwc);
    norm_expect(src, src_stride, w, h, &p, ref, channel_stride, row_stride, nhwc);
    check(memcmp(dst, ref, dst_len) == 0, "normalized featuremap differs from the reference (or padding written)");
  }
  free(src);
  free(dst);
  free(ref);
}

/* ---- request level: a test backend ---- */

/* The image the request-level call gets; chosen before the model so descriptions can match it. */
static uint32_t img_w, img_h;

static int32_t t_load(const char **version) {
  *version = "fuzz";
  return ER_OK;
}
static int32_t t_pack_open(const char *path, const char *options, void **pack, uint32_t *count) {
  *count = 1;
  *pack = &img_w;
  return ER_OK;
}
static const char *t_pack_name(void *pack, uint32_t index) { return "m"; }
static void t_pack_close(void *pack) {}

/* A dimension that is the wanted value most of the time, otherwise anything. */
static int64_t near(int64_t want) {
  uint8_t k = fuzz_u8(&in);
  if (k < 200) return want;
  if (k < 230) return want + (int64_t)(k % 5) - 2;
  return fuzz_extent(&in);
}

/*
 * One input: NV12 Y [1,H,W,1], UV [1,H/2,W/2,2], NCHW [1,3,H,W] or [3,H,W], NHWC [1,H,W,3] or
 * [H,W,3], dims mostly matching the image; a dtype from a short list; quantization parameters.
 * Strides are packed with optional padding of the row (and channel) step, or fuzzed.
 */
static void fill_desc(er_tensor_desc *d, uint32_t i) {
  static const int32_t dtypes[8] = {ER_DTYPE_UINT8, ER_DTYPE_UINT8, ER_DTYPE_FLOAT32, ER_DTYPE_FLOAT16,
                                    ER_DTYPE_INT8,  ER_DTYPE_UINT8, ER_DTYPE_FLOAT64, ER_DTYPE_INT32};
  char name[8];
  snprintf(name, sizeof name, "in%u", i);
  d->name = strdup(name);
  uint8_t kind = fuzz_u8(&in);
  d->dtype = dtypes[(kind >> 3) & 7];
  d->vendor_type = d->dtype;
  int64_t h = img_h, w = img_w, shape[4];
  switch ((kind & 7) % 6) {
    case 0: d->rank = 4, shape[0] = 1, shape[1] = near(h), shape[2] = near(w), shape[3] = near(1); break;
    case 1: d->rank = 4, shape[0] = 1, shape[1] = near(h / 2), shape[2] = near(w / 2), shape[3] = near(2); break;
    case 2: d->rank = 4, shape[0] = near(1), shape[1] = near(3), shape[2] = near(h), shape[3] = near(w); break;
    case 3: d->rank = 4, shape[0] = near(1), shape[1] = near(h), shape[2] = near(w), shape[3] = near(3); break;
    case 4: d->rank = 3, shape[0] = near(3), shape[1] = near(h), shape[2] = near(w); break;
    default: d->rank = 3, shape[0] = near(h), shape[1] = near(w), shape[2] = near(3); break;
  }
  int64_t e = er_dtype_size(d->dtype), step = e;
  uint8_t pad = fuzz_u8(&in);
  for (int32_t k = (int32_t)d->rank - 1; k >= 0; k--) {
    d->shape[k] = shape[k];
    d->strides[k] = step;
    step = step * (shape[k] > 0 && shape[k] < 4096 ? shape[k] : 1); /* no overflow in the harness */
    if (k == (int32_t)d->rank - 2 || k == (int32_t)d->rank - 3) step += (pad & 7) * e, pad >>= 3;
  }
  if (fuzz_u8(&in) >= 240) d->strides[fuzz_u8(&in) % d->rank] = fuzz_extent(&in);
  d->byte_size = (uint64_t)step;
  uint8_t q = fuzz_u8(&in);
  d->quant_type = q & 1;
  d->quant_axis = (int32_t)(q >> 1) % 6 - 1;
  d->scale_count = fuzz_u8(&in) % 5;
  d->zero_point_count = fuzz_u8(&in) % 5;
  d->scales = d->scale_count ? calloc(d->scale_count, sizeof *d->scales) : NULL;
  d->zero_points = d->zero_point_count ? calloc(d->zero_point_count, sizeof *d->zero_points) : NULL;
  for (uint32_t k = 0; d->scales && k < d->scale_count; k++) d->scales[k] = fuzz_f32(&in);
  for (uint32_t k = 0; d->zero_points && k < d->zero_point_count; k++) d->zero_points[k] = fuzz_i32(&in);
}

typedef struct t_model {
  uint32_t n_in;
  er_tensor_desc *in;
} t_model;

static int32_t t_model_open(void *pack, uint32_t index, void **model, uint32_t *n_in, er_tensor_desc **inputs,
                            uint32_t *n_out, er_tensor_desc **outputs) {
  t_model *m = calloc(1, sizeof *m);
  m->n_in = 1 + fuzz_u8(&in) % 3;
  m->in = calloc(m->n_in, sizeof *m->in);
  for (uint32_t i = 0; i < m->n_in; i++) fill_desc(&m->in[i], i);
  *model = m;
  *n_in = m->n_in;
  *inputs = m->in;
  *n_out = 0;
  *outputs = calloc(1, sizeof **outputs);
  return ER_OK;
}
static void t_model_close(void *model) { free(model); }
static int32_t t_model_info(void *model, char *buf, size_t cap, size_t *len) { return ER_OK; }

typedef struct t_request {
  t_model *model;
  er_tensor_buf *bufs;
} t_request;

/* The live buffer: the description's shape and strides, and bytes exactly where the last element ends (or fuzzed). */
static int32_t t_request_new(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **out) {
  t_request *r = calloc(1, sizeof *r);
  r->model = model;
  r->bufs = inputs;
  for (uint32_t i = 0; i < r->model->n_in; i++) {
    const er_tensor_desc *d = &r->model->in[i];
    er_tensor_buf *b = &inputs[i];
    b->rank = d->rank;
    uint64_t last = 0;
    int ok = 1;
    for (uint32_t k = 0; k < b->rank; k++) {
      b->shape[k] = d->shape[k];
      b->strides[k] = d->strides[k];
      if (b->shape[k] <= 0 || b->strides[k] < 0 || b->strides[k] > (1 << 20) || b->shape[k] > (1 << 20)) ok = 0;
      else last += (uint64_t)(b->shape[k] - 1) * (uint64_t)b->strides[k];
    }
    uint64_t bytes = ok ? last + er_dtype_size(d->dtype) : 64;
    uint8_t adj = fuzz_u8(&in);
    if (adj >= 220) bytes = adj & 1 ? bytes - (bytes > 0) : fuzz_u32(&in) % 4096;
    b->bytes = bytes < (1u << 22) ? bytes : 64;
    b->data = b->bytes ? malloc(b->bytes) : NULL;
    if (b->data) memset(b->data, SENTINEL, b->bytes);
  }
  *out = r;
  return ER_OK;
}

static void t_request_free(void *request) {
  t_request *r = request;
  for (uint32_t i = 0; i < r->model->n_in; i++) free(r->bufs[i].data);
  free(r);
}
static int32_t t_request_run(void *request, const er_sched *sched) { return ER_OK; }

/* Designated: a field added to er_backend_ops (shim/internal.h) must not shift the others. */
#define FUZZ_OPS                                                                                          \
  {.name = "fuzz", .load = t_load, .pack_open = t_pack_open, .pack_name = t_pack_name,                  \
   .pack_close = t_pack_close, .model_open = t_model_open, .model_close = t_model_close,                \
   .model_info = t_model_info, .request_new = t_request_new, .request_free = t_request_free,            \
   .request_run = t_request_run}
/* The backend table (shim/backends.c is not linked): one row, under ort's id. */
static const er_backend_ops fuzz_ops = FUZZ_OPS;
const er_backend_desc er_backends[] = {{.id = ER_BACKEND_ORT, .task_limit = 1, .default_requests = 1, .ops = &fuzz_ops}};
const uint32_t er_backend_rows = 1;

static const char *model_file(void) {
  static char path[64];
  if (!path[0]) {
    snprintf(path, sizeof path, "/tmp/edgerun-fuzz-image-%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f) fputc('x', f), fclose(f);
  }
  return path;
}

/* Mean and std as the request modes read them (a byte each, or a fuzzed float); 1: pass NULL instead. */
static int read_mean_std(float mean_std[6]) {
  for (int c = 0; c < 6; c++) {
    uint8_t k = fuzz_u8(&in);
    mean_std[c] = k < 200 ? (float)k / (c < 3 ? 1.0f : 3.0f) : fuzz_f32(&in);
  }
  return fuzz_u8(&in) == 0xFF;
}

/* A request of the test backend (its inputs read from the input); the caller frees all three. */
static int open_request(er_pack **pack, er_model **m, er_request **r) {
  return er_pack_open(model_file(), ER_BACKEND_ORT, NULL, pack) == ER_OK && er_pack_model(*pack, 0, m) == ER_OK &&
         er_request_new(*m, r) == ER_OK;
}

static void fuzz_request(void) {
  uint8_t sel = fuzz_u8(&in);
  img_w = sel & 0x80 ? fuzz_u32(&in) % 70 : 2 * (1 + fuzz_u8(&in) % 24);
  img_h = sel & 0x40 ? fuzz_u32(&in) % 70 : 2 * (1 + fuzz_u8(&in) % 12);
  uint32_t stride = fuzz_u8(&in) < 128 ? 0 : img_w * 3 + fuzz_u8(&in) % 9 - 2;
  uint32_t need = img_w && img_h ? (stride ? stride : img_w * 3) * (img_h - 1) + img_w * 3 : 0;
  uint8_t adj = fuzz_u8(&in);
  uint32_t len = adj < 220 ? need : adj & 1 ? need - (need > 0) : fuzz_u32(&in) % 20000;
  if (len > (1u << 20)) len = need < (1u << 20) ? need : 0;
  uint32_t flags = fuzz_u8(&in), format = fuzz_u8(&in);
  flags = flags < 240 ? flags % 8 : flags;
  format = format < 240 ? format % 2 : format;
  uint32_t i0 = fuzz_u8(&in) % 4, i1 = fuzz_u8(&in) % 4;
  float mean_std[6];
  int null_ms = read_mean_std(mean_std);

  er_pack *pack = NULL;
  er_model *m = NULL;
  er_request *r = NULL;
  if (open_request(&pack, &m, &r)) {
    uint8_t *image = len ? malloc(len) : NULL;
    if (image) fill_pixels(image, len);
    if (sel & 1) {
      int32_t rc = er_request_write_nv12(r, i0, i1, sel & 2 ? NULL : image, len, img_w, img_h, stride, format, flags);
      if (rc == ER_OK) {
        const er_tensor_desc *yd, *uvd;
        er_tensor_buf *yb, *uvb;
        check(er_request_input(r, i0, &yd, &yb) == ER_OK && er_request_input(r, i1, &uvd, &uvb) == ER_OK,
              "inputs vanished");
        check_nv12(image, stride ? stride : img_w * 3, img_w, img_h, format == ER_IMAGE_BGR, flags & 1, yb->data,
                   (size_t)yb->strides[1], uvb->data, (size_t)uvb->strides[1]);
      }
    } else {
      er_request_write_normalized(r, i0, sel & 2 ? NULL : image, len, img_w, img_h, stride, flags,
                                  null_ms ? NULL : mean_std);
    }
    free(image);
  }
  er_request_free(r);
  er_model_free(m);
  er_pack_free(pack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in = (fuzz_input){data, size};
  switch (fuzz_u8(&in) % 3) {
    case 0: fuzz_nv12_kernel(); break;
    case 1: fuzz_normalize_kernel(); break;
    default: fuzz_request(); break;
  }
  return 0;
}
