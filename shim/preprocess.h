/* Frame resampling (shim/preprocess.c): pure kernels, no request, for image.c, tests and fuzzers. */
#ifndef EDGERUN_PREPROCESS_H
#define EDGERUN_PREPROCESS_H
#include "internal.h"

/* A source frame: ER_PIX_* format, rows stride bytes apart; NV12's UV plane follows its Y plane. */
typedef struct er_image_src {
  const uint8_t *data;
  uint32_t format, width, height, stride;
  int video; /* YUV sources: video range (Y 16..235) instead of full */
} er_image_src;

/* Bytes a pixel of a row (NV12: of the Y plane); 0 for an unknown format. */
ER_INTERNAL uint32_t er_pix_bytes(uint32_t format);
/* Taps per output coordinate when src values are resized to dst (area or bilinear), at most src. */
ER_INTERNAL uint32_t er_resample_taps(uint32_t src, uint32_t dst, int area);
/* first[dst] and weights[dst * n] (1/2048ths, summing to 2048) of one axis; n from er_resample_taps. */
ER_INTERNAL void er_resample_axis(uint32_t src, uint32_t dst, int area, uint32_t n, uint32_t *first, int32_t *weights);
/*
 * crop {x, y, w, h} of src resized into inner {x, y, w, h} of an out_w x out_h packed 3-byte image
 * (dst, rows dst_stride apart), rotated by 180° if asked; the rest of the region gets pad. mode is
 * ER_RESIZE_*. Channels keep the source's order (BGR and BGRA stay BGR; YUV and GRAY give RGB).
 * Rectangles must lie inside their images (the caller checks). ER_OK or ER_ERR_OUT_OF_MEMORY.
 */
ER_INTERNAL int32_t er_resample_rgb(const er_image_src *src, const uint32_t crop[4], uint8_t *dst, size_t dst_stride,
                                    uint32_t out_w, uint32_t out_h, const uint32_t inner[4], const uint8_t pad[3],
                                    int mode, int rotate180);
#endif
