/*
 * Fuzz target: er_pack_open on arbitrary file bytes with backend AUTO — file checks, format
 * sniffing (core.c detect_backend), then whatever backend it picks: hbdnn against the simulator
 * (built with the same sanitizers), whose loader, name list and tensor properties the shim then
 * describes; ort is pointed at a missing library, so ONNX-looking bytes end in a clean
 * ER_ERR_LIBRARY_NOT_FOUND rather than in ONNX Runtime's own (uninstrumented) parser.
 * Environment: EDGERUN_HBDNN_LIB_DIR = the sanitized simulator's directory (tests/fuzz/run.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgerun.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  setenv("EDGERUN_ORT_LIB", "/nonexistent/libonnxruntime.so.1", 1);
  /* No extension: the backend is chosen from the bytes. */
  snprintf(path, sizeof path, "/tmp/edgerun-fuzz-pack-%d", (int)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  if (size) fwrite(data, 1, size, f);
  fclose(f);
  er_pack *pack = NULL;
  int32_t rc = er_pack_open(path, ER_BACKEND_AUTO, NULL, &pack);
  if (rc != ER_OK) {
    if (pack) abort(); /* out must stay NULL on failure */
    if (rc != ER_ERR_INVALID_MODEL && rc != ER_ERR_LIBRARY_NOT_FOUND && rc != ER_ERR_FILE &&
        rc != ER_ERR_UNSUPPORTED && rc != ER_ERR_OUT_OF_MEMORY) {
      char err[512];
      er_last_error(err, sizeof err);
      fprintf(stderr, "er_pack_open returned %d: %s\n", rc, err);
      abort();
    } /* a loader must answer bad bytes with a model or file error */
    return 0;
  }
  uint32_t n = 0;
  er_pack_count(pack, &n);
  for (uint32_t i = 0; i < n; i++) {
    char name[300];
    uint32_t len = 0;
    if (er_pack_name(pack, i, name, sizeof name, &len) != ER_OK || len > 255) abort();
    er_model *m = NULL;
    if (er_pack_model(pack, i, &m) != ER_OK) continue;
    uint32_t counts[2];
    er_model_counts(m, counts);
    uint64_t total = 0;
    for (uint32_t io = 0; io < 2; io++)
      for (uint32_t k = 0; k < counts[io]; k++) {
        uint8_t info[ER_TENSOR_INFO_SIZE];
        if (er_model_tensor(m, io, k, info, sizeof info) != ER_OK) abort();
        uint64_t bytes;
        memcpy(&bytes, info + 176, 8);
        total += bytes;
      }
    char json[512];
    er_model_info(m, json, sizeof json, NULL);
    /* Requests allocate what the model claims: only small ones. */
    er_request *r = NULL;
    if (total <= (1u << 20) && er_request_new(m, &r) == ER_OK) er_request_free(r);
    er_model_free(m);
  }
  er_pack_free(pack);
  return 0;
}
