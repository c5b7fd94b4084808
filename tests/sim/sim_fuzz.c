/* Fuzz harness for the simulator's HBSIM1 loader (libdnn.so simulator, not the real runtime).
 * libFuzzer: build with -DSIM_LIBFUZZER -fsanitize=fuzzer and link zig-out/sim/libdnn.so.
 * Standalone: `sim_fuzz FILE...` runs each file once (e.g. a corpus or crash reproducer).
 *   zig cc -std=c11 -Itests/sim tests/sim/sim_fuzz.c -Lzig-out/sim -ldnn -lhbucp \
 *          -Wl,-rpath,zig-out/sim -o /tmp/sim_fuzz */
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0x7fffffff) return 0;
  hbDNNPackedHandle_t pk = NULL;
  const void *imgs[1] = {data};
  int32_t lens[1] = {(int32_t)size};
  int32_t rc = hbDNNInitializeFromDDR(&pk, imgs, lens, 1);
  if (rc == 0) {
    /* A file that loads must also answer every query. */
    const char **names = NULL;
    int32_t n = 0;
    if (hbDNNGetModelNameList(&names, &n, pk) != 0) abort();
    for (int32_t i = 0; i < n; i++) {
      hbDNNHandle_t h = NULL;
      int32_t nin = 0, nout = 0;
      hbDNNTensorProperties p;
      if (hbDNNGetModelHandle(&h, pk, names[i]) || hbDNNGetInputCount(&nin, h) || hbDNNGetOutputCount(&nout, h))
        abort();
      for (int32_t k = 0; k < nin; k++)
        if (hbDNNGetInputTensorProperties(&p, h, k)) abort();
      for (int32_t k = 0; k < nout; k++) {
        if (hbDNNGetOutputTensorProperties(&p, h, k)) abort();
        /* FORMAT.md: alignedByteSize is >= 0 or -1; an output with a -1 dim has only -1 strides. */
        if (p.alignedByteSize < -1) abort();
        int dyn = 0;
        for (int32_t d = 0; d < p.validShape.numDimensions; d++) dyn |= p.validShape.dimensionSize[d] == -1;
        for (int32_t d = 0; d < p.validShape.numDimensions; d++)
          if ((p.stride[d] == -1) != dyn) abort();
      }
    }
    if (hbDNNRelease(pk) != 0) abort();
  } else if (rc != HB_DNN_INVALID_MODEL && rc != HB_DNN_MODEL_NUMBER_EXCEED_LIMIT && rc != HB_DNN_OUT_OF_MEMORY) {
    abort(); /* only documented loader errors */
  }
  return 0;
}

#ifndef SIM_LIBFUZZER
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) continue;
    static uint8_t buf[1 << 24];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
  }
  printf("sim_fuzz: ran %d input(s)\n", argc - 1);
  return 0;
}
#endif
