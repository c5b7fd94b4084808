/*
 * Fuzz target: stride-aware copies and (de)quantization (shim/tensor.c er_copy_in/er_copy_out).
 * The tensor description and the live buffer (shape, strides, byte length) come from the input,
 * as a backend could report them; the buffer and the caller's array are allocated at exactly the
 * sizes claimed, so any read or write outside them is an AddressSanitizer report.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "internal.h"

#define MAX_BYTES (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  er_tensor_desc d;
  er_tensor_buf b;
  memset(&d, 0, sizeof d);
  memset(&b, 0, sizeof b);
  d.name = "t";
  d.dtype = fuzz_u8(&in) % 14;
  b.rank = fuzz_u8(&in) % (ER_MAX_DIMS + 1);
  d.rank = b.rank;
  for (uint32_t i = 0; i < b.rank; i++) {
    b.shape[i] = d.shape[i] = fuzz_extent(&in);
    b.strides[i] = d.strides[i] = fuzz_extent(&in);
  }
  b.bytes = fuzz_u32(&in) % MAX_BYTES;
  uint8_t q = fuzz_u8(&in);
  d.quant_type = q & 1;
  d.quant_axis = (int32_t)(q >> 1) % 12 - 1;
  float scales[16];
  int32_t zps[16];
  d.scale_count = fuzz_u8(&in) % 17;
  d.zero_point_count = fuzz_u8(&in) % 17;
  for (uint32_t i = 0; i < 16; i++) {
    scales[i] = fuzz_f32(&in);
    zps[i] = fuzz_i32(&in);
  }
  d.scales = d.scale_count ? scales : NULL;
  d.zero_points = d.zero_point_count ? zps : NULL;
  uint32_t mode = fuzz_u8(&in) % 3;
  int out = fuzz_u8(&in) & 1;
  uint32_t len = fuzz_u32(&in) % MAX_BYTES;

  b.data = b.bytes ? malloc(b.bytes) : NULL;
  void *user = len ? malloc(len) : NULL;
  if ((b.bytes && !b.data) || (len && !user)) goto done;
  /* Whatever is left fills both, so values (NaN, huge, denormal) are fuzzed too. */
  for (uint64_t i = 0; i < b.bytes; i++) ((uint8_t *)b.data)[i] = in.left ? in.p[i % in.left] : 0;
  for (uint32_t i = 0; i < len; i++) ((uint8_t *)user)[i] = in.left ? in.p[(i * 7u) % in.left] : 0;
  if (out) er_copy_out(&d, &b, user, len, mode);
  else er_copy_in(&d, &b, user, len, mode);
done:
  free(b.data);
  free(user);
  return 0;
}
