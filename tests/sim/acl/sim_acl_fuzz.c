/* Fuzz harness for the ACL simulator's ACLSIM1 loader (a test double, not the real runtime).
 * libFuzzer: tests/fuzz/run.sh builds it as target acl_loader (-DSIM_LIBFUZZER, with
 * sim_acl_rt.c + sim_acl_mdl.c compiled in). Standalone: `sim_acl_fuzz FILE...` runs each file once.
 *   cc -std=c11 -D_GNU_SOURCE -Itests/sim/acl tests/sim/acl/sim_acl_fuzz.c -Lzig-out/sim/acl \
 *      -lascendcl -Wl,-rpath,zig-out/sim/acl -o /tmp/sim_acl_fuzz */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_acl.h"

static void query_all(aclmdlDesc *d) {
  aclmdlIODims dims;
  size_t n = aclmdlGetNumInputs(d), m = aclmdlGetNumOutputs(d), idx = 0, gears = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name = aclmdlGetInputNameByIndex(d, i);
    /* FORMAT.md: names are 1..127 bytes; the last input of a model with gears is the gear input. */
    if (!name || !name[0] || strlen(name) > 127) abort();
    if (aclmdlGetInputDims(d, i, &dims) || strcmp(dims.name, name) || dims.dimCount > 16) abort();
    if (aclmdlGetInputIndexByName(d, name, &idx) || idx != i) abort();
    if (aclmdlGetInputDataType(d, i) == ACL_DT_UNDEFINED && aclmdlGetInputSizeByIndex(d, i)) abort();
    (void)aclmdlGetInputFormat(d, i);
  }
  for (size_t i = 0; i < m; i++) {
    if (aclmdlGetOutputDims(d, i, &dims) || aclmdlGetCurOutputDims(d, i, &dims)) abort();
    for (size_t k = 0; k < dims.dimCount; k++)
      if (dims.dims[k] < 1) abort(); /* the current dims are resolved */
    (void)aclmdlGetOutputSizeByIndex(d, i);
    (void)aclmdlGetOutputDataType(d, i);
    (void)aclmdlGetOutputNameByIndex(d, i);
  }
  aclmdlBatch b;
  aclmdlHW hw;
  if (aclmdlGetDynamicBatch(d, &b) || aclmdlGetDynamicHW(d, (size_t)-1, &hw)) abort();
  if (aclmdlGetInputDynamicGearCount(d, (size_t)-1, &gears)) abort();
  if (b.batchCount && hw.hwCount) abort(); /* one kind per model */
  if ((b.batchCount || hw.hwCount) != (n > 0 && strcmp(aclmdlGetInputNameByIndex(d, n - 1), ACL_DYNAMIC_TENSOR_NAME) == 0)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    if (aclInit(NULL) || aclrtSetDevice(0)) abort();
    ready = 1;
  }
  uint32_t id = 0;
  aclError rc = aclmdlLoadFromMem(data, size, &id);
  const char *msg = aclGetRecentErrMsg(); /* every failure leaves a message */
  if (rc == 0) {
    if (simacl_parse_model(data, size) != 0) abort();
    aclmdlDesc *d = aclmdlCreateDesc();
    if (!d || aclmdlGetDesc(d, id)) abort();
    query_all(d);
    aclGetRecentErrMsg();
    if (aclmdlDestroyDesc(d) || aclmdlUnload(id)) abort();
  } else if (rc != ACL_ERROR_PARSE_MODEL && rc != ACL_ERROR_MODEL_SIZE_INVALID && rc != ACL_ERROR_BAD_ALLOC) {
    abort(); /* only documented loader errors */
  } else if (!msg || !strstr(msg, "simulator")) {
    abort();
  }
  return 0;
}

#ifndef SIM_LIBFUZZER
int main(int argc, char **argv) {
  static uint8_t buf[1 << 24];
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
  }
  printf("sim_acl_fuzz: ran %d input(s)\n", argc - 1);
  return 0;
}
#endif
