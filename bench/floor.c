/* The floor: libedgerun driven from a C loop, no JS at all. Prints JSON timings. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "edgerun.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: floor MODEL ITERATIONS WARMUP DIM0,DIM1,... [threads]\n");
    return 2;
  }
  const char *path = argv[1];
  int iterations = atoi(argv[2]), warmup = atoi(argv[3]);
  int64_t dims[ER_MAX_DIMS];
  uint32_t rank = 0;
  for (char *p = argv[4]; *p && rank < ER_MAX_DIMS;) {
    dims[rank++] = strtoll(p, &p, 10);
    if (*p == ',') p++;
  }
  char options[64] = "";
  if (argc > 5) snprintf(options, sizeof options, "intra_op_threads=%s", argv[5]);
  er_pack *pack;
  er_model *model;
  er_request *req;
  char err[1024];
  if (er_pack_open(path, ER_BACKEND_AUTO, options, &pack) || er_pack_model(pack, 0, &model) ||
      er_request_new(model, &req) || er_request_set_shape(req, 0, dims, rank)) {
    er_last_error(err, sizeof err);
    fprintf(stderr, "floor: %s\n", err);
    return 1;
  }
  uint64_t t[ER_REQ_TENSOR_WORDS];
  er_request_tensor(req, ER_INPUT, 0, t);
  float *input = (float *)(uintptr_t)t[0];
  for (uint64_t i = 0; i < t[1] / 4; i++) input[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  double *times = malloc(sizeof(double) * (size_t)iterations);
  for (int i = 0; i < warmup + iterations; i++) {
    double t0 = now_ms();
    if (er_request_run(req, 0, 0, 0, 0)) {
      er_last_error(err, sizeof err);
      fprintf(stderr, "floor: %s\n", err);
      return 1;
    }
    if (i >= warmup) times[i - warmup] = now_ms() - t0;
  }
  qsort(times, (size_t)iterations, sizeof *times, cmp);
  double sum = 0;
  for (int i = 0; i < iterations; i++) sum += times[i];
  printf("{\"mean\":%f,\"p50\":%f,\"p99\":%f,\"min\":%f}\n", sum / iterations, times[iterations / 2],
         times[(int)(iterations * 0.99)], times[0]);
  er_request_free(req);
  er_model_free(model);
  er_pack_free(pack);
  free(times);
  return 0;
}
