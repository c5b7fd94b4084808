/*
 * Frame -> packed 8-bit RGB at the model's size, in one pass over the source: format conversion
 * (RGB/BGR/RGBA/BGRA/GRAY/NV12/YUYV, any row stride), crop, separable resize, letterbox padding
 * and 180° rotation. shim/image.c then normalizes or converts that image into the input
 * (er_request_write_image), so every destination kind it supports is reached the same way.
 *
 * Arithmetic is integer and fully specified, so a plain per-pixel reference reproduces it bit
 * for bit (tests/preprocess_ref.ts, tests/fuzz/preprocess.c):
 *   - taps per output coordinate, weights in 1/2048ths summing to exactly 2048;
 *     bilinear: source position (i + 0.5) * scale - 0.5 (half-pixel centres, OpenCV's
 *     INTER_LINEAR convention), clamped at the edges; area: the overlap of each source pixel
 *     with [i * scale, (i + 1) * scale), the rounding remainder added to the largest tap;
 *   - horizontal pass into int32 (<= 255 * 2048), vertical pass (<= 255 * 2048^2 < 2^31),
 *     then (acc + 2^21) >> 22;
 *   - YUV -> RGB: BT.601 in 14-bit fixed point, full or video range, chroma of the pixel's
 *     2x2 block (NV12) or pixel pair (YUYV), no chroma interpolation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "preprocess.h"

/* The tap positions are computed in double exactly as the references compute them. */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define RS_BITS 11
#define RS_ONE (1 << RS_BITS)

uint32_t er_pix_bytes(uint32_t format) {
  switch (format) {
    case ER_PIX_RGB: case ER_PIX_BGR: return 3;
    case ER_PIX_RGBA: case ER_PIX_BGRA: return 4;
    case ER_PIX_YUYV: return 2;
    case ER_PIX_GRAY: case ER_PIX_NV12: return 1;
    default: return 0;
  }
}

uint32_t er_resample_taps(uint32_t src, uint32_t dst, int area) {
  uint32_t n = area ? (uint32_t)ceil((double)src / (double)dst) + 1 : 2;
  return n < src ? n : src;
}

void er_resample_axis(uint32_t src, uint32_t dst, int area, uint32_t n, uint32_t *first, int32_t *weights) {
  const double scale = (double)src / (double)dst;
  for (uint32_t i = 0; i < dst; i++) {
    int32_t *w = weights + (size_t)i * n;
    memset(w, 0, n * sizeof *w);
    int64_t k0;
    if (!area) {
      double s = ((double)i + 0.5) * scale - 0.5, f0 = floor(s), f = s - f0;
      k0 = (int64_t)f0;
      if (k0 < 0) k0 = 0, f = 0.0;
      if (k0 >= (int64_t)src - 1) k0 = (int64_t)src - 1, f = 0.0;
      int32_t w1 = (int32_t)floor(f * RS_ONE + 0.5);
      /* Shift the window left at the right edge: a tap never reads past the source. */
      uint32_t at = k0 + n > src ? src - n : (uint32_t)k0;
      first[i] = at;
      w[k0 - at] = RS_ONE - w1;
      if (w1) w[k0 + 1 - at] = w1;
      continue;
    }
    double start = (double)i * scale, end = (double)(i + 1) * scale;
    k0 = (int64_t)floor(start);
    int64_t k1 = (int64_t)ceil(end);
    if (k1 > (int64_t)src) k1 = src;
    uint32_t at = k0 + n > src ? src - n : (uint32_t)k0;
    first[i] = at;
    int32_t sum = 0, best = 0;
    for (int64_t k = k0; k < k1; k++) {
      double lo = start > (double)k ? start : (double)k, hi = end < (double)(k + 1) ? end : (double)(k + 1);
      int32_t v = (int32_t)floor((hi - lo) / scale * RS_ONE + 0.5);
      w[k - at] = v;
      sum += v;
      if (v > w[best]) best = (int32_t)(k - at);
    }
    w[best] += RS_ONE - sum;
  }
}

/* ---- source rows ---- */

/* BT.601 YUV -> RGB x 2^14: full range (Y 0..255) and video range (Y 16..235, C 16..240). */
static inline void yuv_rgb(int32_t y, int32_t u, int32_t v, int video, uint8_t *o) {
  int32_t c, r, g, b, d = u - 128, e = v - 128;
  if (video) {
    c = (y - 16) * 19077;
    r = c + 26149 * e, g = c - 6419 * d - 13320 * e, b = c + 33050 * d;
  } else {
    c = y << 14;
    r = c + 22970 * e, g = c - 5638 * d - 11700 * e, b = c + 29032 * d;
  }
  r = (r + 8192) >> 14, g = (g + 8192) >> 14, b = (b + 8192) >> 14;
  o[0] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
  o[1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
  o[2] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
}

/* Source row y, columns x0..x0+w-1, as 3-byte pixels (the source's own channel order). */
static void fetch_row(const er_image_src *s, uint32_t y, uint32_t x0, uint32_t w, uint8_t *restrict out) {
  const uint8_t *row = s->data + (size_t)y * s->stride;
  switch (s->format) {
    case ER_PIX_RGB:
    case ER_PIX_BGR: memcpy(out, row + 3 * (size_t)x0, 3 * (size_t)w); break;
    case ER_PIX_RGBA:
    case ER_PIX_BGRA: {
      const uint8_t *p = row + 4 * (size_t)x0;
      for (uint32_t x = 0; x < w; x++) out[3 * x] = p[4 * x], out[3 * x + 1] = p[4 * x + 1], out[3 * x + 2] = p[4 * x + 2];
      break;
    }
    case ER_PIX_GRAY: {
      const uint8_t *p = row + x0;
      for (uint32_t x = 0; x < w; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = p[x];
      break;
    }
    case ER_PIX_NV12: {
      const uint8_t *uv = s->data + (size_t)s->stride * s->height + (size_t)(y / 2) * s->stride;
      for (uint32_t x = 0; x < w; x++) {
        uint32_t sx = x0 + x, c = sx & ~1u;
        yuv_rgb(row[sx], uv[c], uv[c + 1], s->video, out + 3 * (size_t)x);
      }
      break;
    }
    case ER_PIX_YUYV:
      for (uint32_t x = 0; x < w; x++) {
        uint32_t sx = x0 + x, c = 2 * (sx & ~1u);
        yuv_rgb(row[2 * (size_t)sx], row[c + 1], row[c + 3], s->video, out + 3 * (size_t)x);
      }
      break;
  }
}

/* ---- resampling ---- */

/* One source row through the horizontal taps: 3 int32 per output pixel. */
static void horizontal(const uint8_t *restrict px, uint32_t ow, uint32_t n, const uint32_t *first,
                       const int32_t *restrict wx, int32_t *restrict out) {
  if (n == 2) { /* bilinear: the common case, two fixed taps */
    for (uint32_t i = 0; i < ow; i++) {
      const uint8_t *p = px + 3 * (size_t)first[i];
      int32_t a = wx[2 * i], b = wx[2 * i + 1];
      out[3 * i] = a * p[0] + b * p[3];
      out[3 * i + 1] = a * p[1] + b * p[4];
      out[3 * i + 2] = a * p[2] + b * p[5];
    }
    return;
  }
  for (uint32_t i = 0; i < ow; i++) {
    const uint8_t *p = px + 3 * (size_t)first[i];
    const int32_t *w = wx + (size_t)i * n;
    int32_t r = 0, g = 0, b = 0;
    for (uint32_t t = 0; t < n; t++) r += w[t] * p[3 * t], g += w[t] * p[3 * t + 1], b += w[t] * p[3 * t + 2];
    out[3 * i] = r, out[3 * i + 1] = g, out[3 * i + 2] = b;
  }
}

int32_t er_resample_rgb(const er_image_src *src, const uint32_t crop[4], uint8_t *dst, size_t dst_stride, uint32_t out_w,
                        uint32_t out_h, const uint32_t inner[4], const uint8_t pad[3], int mode, int rotate180) {
  const uint32_t cx = crop[0], cy = crop[1], cw = crop[2], ch = crop[3];
  const uint32_t ix = inner[0], iy = inner[1], iw = inner[2], ih = inner[3];
  /* Padding: every row of the region that the image does not cover. */
  for (uint32_t y = 0; y < out_h; y++) {
    uint8_t *d = dst + (size_t)y * dst_stride;
    int inside = y >= iy && y < iy + ih;
    for (uint32_t x = 0; x < out_w; x++) {
      if (inside && x == ix) x += iw;
      if (x >= out_w) break;
      d[3 * x] = pad[0], d[3 * x + 1] = pad[1], d[3 * x + 2] = pad[2];
    }
  }
  int area_x = mode == ER_RESIZE_AREA || (mode == ER_RESIZE_AUTO && cw >= 2 * (uint64_t)iw);
  int area_y = mode == ER_RESIZE_AREA || (mode == ER_RESIZE_AUTO && ch >= 2 * (uint64_t)ih);
  uint32_t nx = er_resample_taps(cw, iw, area_x), ny = er_resample_taps(ch, ih, area_y);
  uint32_t *fx = malloc(iw * sizeof *fx), *fy = malloc(ih * sizeof *fy);
  int32_t *wx = malloc((size_t)iw * nx * sizeof *wx), *wy = malloc((size_t)ih * ny * sizeof *wy);
  int32_t *rows = malloc((size_t)ny * iw * 3 * sizeof *rows);
  int64_t *tags = malloc(ny * sizeof *tags);
  uint8_t *line = malloc((size_t)cw * 3), *out = malloc((size_t)iw * 3);
  const int32_t **rowp = malloc(ny * sizeof *rowp);
  int32_t rc = ER_OK;
  if (!fx || !fy || !wx || !wy || !rows || !tags || !line || !out || !rowp) {
    rc = er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "cannot allocate resize buffers (%ux%u -> %ux%u)", cw, ch, iw, ih);
    goto done;
  }
  er_resample_axis(cw, iw, area_x, nx, fx, wx);
  er_resample_axis(ch, ih, area_y, ny, fy, wy);
  for (uint32_t t = 0; t < ny; t++) tags[t] = -1;
  for (uint32_t j = 0; j < ih; j++) {
    /* The window of source rows moves forward only: a ring of ny rows, each converted once. */
    for (uint32_t t = 0; t < ny; t++) {
      uint32_t sy = fy[j] + t;
      int32_t *slot = rows + (size_t)(sy % ny) * iw * 3;
      if (tags[sy % ny] == sy) continue;
      fetch_row(src, cy + sy, cx, cw, line);
      horizontal(line, iw, nx, fx, wx, slot);
      tags[sy % ny] = sy;
    }
    const int32_t *w = wy + (size_t)j * ny;
    for (uint32_t t = 0; t < ny; t++) rowp[t] = rows + (size_t)((fy[j] + t) % ny) * iw * 3;
    const size_t m = (size_t)iw * 3;
    if (ny == 2) {
      const int32_t a = w[0], b = w[1], *r0 = rowp[0], *r1 = rowp[1];
      for (size_t k = 0; k < m; k++) out[k] = (uint8_t)((a * r0[k] + b * r1[k] + (1 << (2 * RS_BITS - 1))) >> (2 * RS_BITS));
    } else {
      for (size_t k = 0; k < m; k++) {
        int32_t acc = 1 << (2 * RS_BITS - 1);
        for (uint32_t t = 0; t < ny; t++) acc += w[t] * rowp[t][k];
        out[k] = (uint8_t)(acc >> (2 * RS_BITS));
      }
    }
    /* Rotation by 180°: row j of the image lands on row ih-1-j, its pixels reversed. */
    uint8_t *d = dst + (size_t)(iy + (rotate180 ? ih - 1 - j : j)) * dst_stride + 3 * (size_t)ix;
    if (!rotate180) memcpy(d, out, m);
    else
      for (uint32_t x = 0; x < iw; x++) {
        const uint8_t *o = out + 3 * (size_t)(iw - 1 - x);
        d[3 * x] = o[0], d[3 * x + 1] = o[1], d[3 * x + 2] = o[2];
      }
  }
done:
  free(fx), free(fy), free(wx), free(wy), free(rows), free(tags), free(line), free(out), free((void *)rowp);
  return rc;
}
#if defined(__clang__)
#pragma clang fp contract(on)
#endif
