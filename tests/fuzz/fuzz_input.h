/* Reads typed values off a libFuzzer input; past the end every read gives 0. */
#ifndef EDGERUN_FUZZ_INPUT_H
#define EDGERUN_FUZZ_INPUT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fuzz_input {
  const uint8_t *p;
  size_t left;
} fuzz_input;

static inline void fuzz_take(fuzz_input *in, void *out, size_t n) {
  size_t k = n < in->left ? n : in->left;
  memset(out, 0, n);
  memcpy(out, in->p, k);
  in->p += k;
  in->left -= k;
}
static inline uint8_t fuzz_u8(fuzz_input *in) { uint8_t v; fuzz_take(in, &v, 1); return v; }
static inline uint32_t fuzz_u32(fuzz_input *in) { uint32_t v; fuzz_take(in, &v, 4); return v; }
static inline int32_t fuzz_i32(fuzz_input *in) { int32_t v; fuzz_take(in, &v, 4); return v; }
static inline int64_t fuzz_i64(fuzz_input *in) { int64_t v; fuzz_take(in, &v, 8); return v; }
static inline float fuzz_f32(fuzz_input *in) { float v; fuzz_take(in, &v, 4); return v; }
/* A small signed value, mostly in a useful range: dims and strides that make sense as often as not. */
static inline int64_t fuzz_extent(fuzz_input *in) {
  uint8_t kind = fuzz_u8(in);
  switch (kind & 3) {
    case 0: return (int64_t)(kind >> 2) - 2; /* -2..61 */
    case 1: return (int64_t)fuzz_u8(in) * ((kind >> 2) + 1);
    case 2: return fuzz_i32(in);
    default: return fuzz_i64(in);
  }
}
#endif
