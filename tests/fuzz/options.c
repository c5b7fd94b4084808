/* Fuzz target: the "key=value;key=value" options parser (shim/util.c er_option_int). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The first byte picks the key: one of the real keys, or a key taken from the input. */
  static const char *const keys[] = {"intra_op_threads", "inter_op_threads", "graph_optimization", "a", ""};
  if (size == 0) return 0;
  char *options = malloc(size);
  if (!options) return 0;
  memcpy(options, data + 1, size - 1);
  options[size - 1] = 0; /* NUL-terminated, like every caller's string */
  const char *key = keys[data[0] % 5];
  int64_t value = 0x5a5a5a5a;
  int32_t rc = er_option_int(options, key, &value);
  if (rc < -1 || rc > 1) abort();
  if (rc != 1 && value != 0x5a5a5a5a) abort(); /* not found or malformed: out untouched */
  er_option_int(NULL, key, &value);
  free(options);
  return 0;
}
