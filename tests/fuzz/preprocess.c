/*
 * Fuzz target: frame preprocessing (shim/preprocess.c) and er_request_write_image (shim/image.c).
 * The first byte picks the mode:
 *   0  er_resample_rgb on a fuzz-sized frame of any format (row padding, NV12's UV plane, YUYV
 *      pairs), crop, region, placement, pad, resize kernel and rotation; the result is compared
 *      whole, row padding included, with a per-pixel reference written from the specification
 *      (docs/preprocessing.md): its own taps, its own YUV decoding, one rounding per value;
 *   1  er_request_write_image on a request of the test backend of tests/fuzz/image.c (inputs whose
 *      shapes, strides, dtypes, quantization and buffer sizes come from the input), with fuzzed
 *      geometry, flags and sizes: the sanitizers check every access stays inside the buffers.
 * Every buffer is allocated at exactly the size the code is told, so a read or write past it is an
 * AddressSanitizer report. tests/fuzz/image.c is included for its test backend; its entry point is
 * renamed.
 */
#define LLVMFuzzerTestOneInput image_fuzz_one_input
#include "image.c"
#undef LLVMFuzzerTestOneInput

#include "../../shim/preprocess.h"

#pragma clang fp contract(off)

static const uint32_t bpp_of[7] = {3, 3, 4, 4, 1, 1, 2};

/* ---- reference ---- */

/* Taps of output coordinate i (n source values -> m): first index and weights (1/2048ths, sum 2048). */
static uint32_t ref_taps(uint32_t n, uint32_t m, uint32_t i, int area, int32_t *w) {
  double scale = (double)n / m;
  uint32_t count = area ? (uint32_t)ceil((double)n / m) + 1 : 2;
  if (count > n) count = n;
  for (uint32_t t = 0; t < count; t++) w[t] = 0;
  if (!area) {
    double s = (i + 0.5) * scale - 0.5;
    double k = floor(s), f = s - k;
    if (k < 0) k = 0, f = 0;
    if (k >= n - 1.0) k = n - 1.0, f = 0;
    int32_t w1 = (int32_t)floor(f * 2048 + 0.5);
    uint32_t first = (uint32_t)k < n - count ? (uint32_t)k : n - count;
    w[(uint32_t)k - first] = 2048 - w1;
    if (w1) w[(uint32_t)k + 1 - first] = w1;
    return first;
  }
  double start = i * scale, end = (i + 1) * scale;
  uint32_t k0 = (uint32_t)floor(start), k1 = (uint32_t)ceil(end);
  if (k1 > n) k1 = n;
  uint32_t first = k0 < n - count ? k0 : n - count;
  int32_t sum = 0;
  uint32_t best = 0;
  for (uint32_t k = k0; k < k1; k++) {
    double lo = start > k ? start : k, hi = end < k + 1.0 ? end : k + 1.0;
    int32_t v = (int32_t)floor((hi - lo) / scale * 2048 + 0.5);
    w[k - first] = v;
    sum += v;
    if (v > w[best]) best = k - first;
  }
  w[best] += 2048 - sum;
  return first;
}

static uint8_t ref_clamp(int32_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* Channel c of source pixel (x, y), in the order the shim resamples in. */
static uint8_t ref_pixel(const er_image_src *s, uint32_t x, uint32_t y, int c) {
  const uint8_t *row = s->data + (size_t)y * s->stride;
  int32_t yy, u, v;
  switch (s->format) {
    case ER_PIX_RGB: case ER_PIX_BGR: return row[3 * x + c];
    case ER_PIX_RGBA: case ER_PIX_BGRA: return row[4 * x + c];
    case ER_PIX_GRAY: return row[x];
    case ER_PIX_NV12: {
      const uint8_t *uv = s->data + (size_t)s->stride * s->height + (size_t)(y / 2) * s->stride + (x - x % 2);
      yy = row[x], u = uv[0], v = uv[1];
      break;
    }
    default: {
      const uint8_t *pair = row + 4 * (x / 2);
      yy = row[2 * x], u = pair[1], v = pair[3];
      break;
    }
  }
  int32_t d = u - 128, e = v - 128, base, r, g, b;
  if (s->video) base = (yy - 16) * 19077, r = base + 26149 * e, g = base - 6419 * d - 13320 * e, b = base + 33050 * d;
  else base = yy * 16384, r = base + 22970 * e, g = base - 5638 * d - 11700 * e, b = base + 29032 * d;
  int32_t out[3] = {r, g, b};
  return ref_clamp((out[c] + 8192) >> 14);
}

static uint8_t ref_value(const er_image_src *s, const uint32_t *crop, const uint32_t *inner, int mode, int rot,
                         uint32_t x, uint32_t y, int c) {
  uint32_t ix = x - inner[0], iy = y - inner[1];
  if (rot) ix = inner[2] - 1 - ix, iy = inner[3] - 1 - iy;
  int ax = mode == ER_RESIZE_AREA || (mode == ER_RESIZE_AUTO && crop[2] >= 2 * (uint64_t)inner[2]);
  int ay = mode == ER_RESIZE_AREA || (mode == ER_RESIZE_AUTO && crop[3] >= 2 * (uint64_t)inner[3]);
  int32_t wx[80], wy[80];
  uint32_t fx = ref_taps(crop[2], inner[2], ix, ax, wx), fy = ref_taps(crop[3], inner[3], iy, ay, wy);
  uint32_t nx = ax ? (uint32_t)ceil((double)crop[2] / inner[2]) + 1 : 2, ny = ay ? (uint32_t)ceil((double)crop[3] / inner[3]) + 1 : 2;
  if (nx > crop[2]) nx = crop[2];
  if (ny > crop[3]) ny = crop[3];
  int64_t acc = 0;
  for (uint32_t j = 0; j < ny; j++) {
    int64_t h = 0;
    for (uint32_t i = 0; i < nx; i++) h += (int64_t)wx[i] * ref_pixel(s, crop[0] + fx + i, crop[1] + fy + j, c);
    acc += wy[j] * h;
  }
  return (uint8_t)((acc + (1 << 21)) >> 22);
}

/* ---- kernel mode ---- */

static void fuzz_resample_kernel(void) {
  er_image_src s;
  s.format = fuzz_u8(&in) % 7;
  s.video = fuzz_u8(&in) & 1;
  uint32_t w = 1 + fuzz_u8(&in) % 64, h = 1 + fuzz_u8(&in) % 48;
  if (s.format == ER_PIX_NV12 || s.format == ER_PIX_YUYV) w += w & 1;
  if (s.format == ER_PIX_NV12) h += h & 1;
  s.width = w, s.height = h;
  s.stride = w * bpp_of[s.format] + fuzz_u8(&in) % 7;
  uint32_t crop[4];
  crop[0] = fuzz_u8(&in) % w, crop[1] = fuzz_u8(&in) % h;
  crop[2] = 1 + fuzz_u8(&in) % (w - crop[0]), crop[3] = 1 + fuzz_u8(&in) % (h - crop[1]);
  uint32_t ow = 1 + fuzz_u8(&in) % 72, oh = 1 + fuzz_u8(&in) % 56;
  uint32_t inner[4];
  inner[0] = fuzz_u8(&in) % ow, inner[1] = fuzz_u8(&in) % oh;
  inner[2] = 1 + fuzz_u8(&in) % (ow - inner[0]), inner[3] = 1 + fuzz_u8(&in) % (oh - inner[1]);
  uint8_t pad[3] = {fuzz_u8(&in), fuzz_u8(&in), fuzz_u8(&in)};
  int mode = fuzz_u8(&in) % 3, rot = fuzz_u8(&in) & 1;
  size_t dst_stride = 3 * (size_t)ow + fuzz_u8(&in) % 5;
  size_t rows = s.format == ER_PIX_NV12 ? h + h / 2 : h;
  size_t src_len = s.stride * (rows - 1) + (size_t)w * bpp_of[s.format];
  size_t dst_len = dst_stride * (oh - 1) + 3 * (size_t)ow;
  uint8_t *src = malloc(src_len), *dst = malloc(dst_len);
  if (src && dst) {
    fill_pixels(src, src_len);
    s.data = src;
    memset(dst, SENTINEL, dst_len);
    check(er_resample_rgb(&s, crop, dst, dst_stride, ow, oh, inner, pad, mode, rot) == ER_OK, "resample failed");
    for (uint32_t y = 0; y < oh; y++) {
      for (uint32_t x = 0; x < ow; x++)
        for (int c = 0; c < 3; c++) {
          int inside = x >= inner[0] && x < inner[0] + inner[2] && y >= inner[1] && y < inner[1] + inner[3];
          uint8_t want = inside ? ref_value(&s, crop, inner, mode, rot, x, y, c) : pad[c];
          check(dst[y * dst_stride + 3 * x + c] == want, "resampled pixel differs from the per-pixel reference");
        }
      if (y + 1 < oh)
        for (size_t k = 3 * (size_t)ow; k < dst_stride; k++) check(dst[y * dst_stride + k] == SENTINEL, "row padding written");
    }
  }
  free(src);
  free(dst);
}

/* ---- request mode ---- */

static void fuzz_write_image(void) {
  uint32_t g[ER_GEO_WORDS];
  uint32_t format = fuzz_u8(&in);
  g[0] = format < 240 ? format % 7 : format;
  img_w = 2 * (1 + fuzz_u8(&in) % 24), img_h = 2 * (1 + fuzz_u8(&in) % 16);
  uint32_t bpp = g[0] < 7 ? bpp_of[g[0]] : 3;
  g[1] = fuzz_u8(&in) < 230 ? img_w : fuzz_u32(&in) % 80;
  g[2] = fuzz_u8(&in) < 230 ? img_h : fuzz_u32(&in) % 80;
  g[3] = fuzz_u8(&in) < 128 ? 0 : g[1] * bpp + fuzz_u8(&in) % 9 - 2;
  for (int k = 4; k < 16; k++) {
    uint8_t b = fuzz_u8(&in);
    g[k] = b < 64 ? 0 : b < 250 ? b % 40 : fuzz_u32(&in);
  }
  g[ER_GEO_BATCH] = fuzz_u8(&in) % 3;
  g[ER_GEO_PAD] = fuzz_u32(&in);
  uint32_t flags = fuzz_u8(&in) | (uint32_t)fuzz_u8(&in) << 8;
  if (fuzz_u8(&in) < 240) flags &= 0x37f;
  uint32_t rows = g[0] == ER_PIX_NV12 ? g[2] + g[2] / 2 : g[2];
  uint32_t need = g[1] && rows ? (g[3] ? g[3] : g[1] * bpp) * (rows - 1) + g[1] * bpp : 0;
  uint8_t adj = fuzz_u8(&in);
  uint32_t len = adj < 220 ? need : adj & 1 ? need - (need > 0) : fuzz_u32(&in) % 20000;
  if (len > (1u << 20)) len = need < (1u << 20) ? need : 0;
  uint32_t i0 = fuzz_u8(&in) % 4, i1 = fuzz_u8(&in);
  i1 = i1 < 200 ? i1 % 4 : ER_NO_INPUT;
  float mean_std[6];
  int null_ms = read_mean_std(mean_std);

  er_pack *pack = NULL;
  er_model *m = NULL;
  er_request *r = NULL;
  if (open_request(&pack, &m, &r)) {
    uint8_t *image = len ? malloc(len) : NULL;
    if (image) fill_pixels(image, len);
    er_request_write_image(r, i0, i1, image, len, g, flags, null_ms ? NULL : mean_std);
    free(image);
  }
  er_request_free(r);
  er_model_free(m);
  er_pack_free(pack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in = (fuzz_input){data, size};
  if (fuzz_u8(&in) % 2 == 0) fuzz_resample_kernel();
  else fuzz_write_image();
  return 0;
}
