/*
 * The per-run floor: libedgerun's own ABI from a C loop, no JS. Each iteration writes the input
 * (er_request_write) and runs (er_request_run), as run(x) does; mode "async" submits and waits for
 * the completion instead; mode "open" times opening the model and its first request (the library
 * and vendor runtime loaded once first). Prints the best of ROUNDS rounds' mean microseconds as JSON.
 *   overhead_floor MODEL ITERATIONS ROUNDS [sync|async|open]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgerun.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int fail(const char *what) {
  char err[1024];
  er_last_error(err, sizeof err);
  fprintf(stderr, "overhead_floor: %s: %s\n", what, err);
  return 1;
}

/* Open, first request, close: what open() asks of the shim, without JS. */
static int time_open(const char *path, int iterations, int rounds) {
  double best = 1e30;
  for (int round = -1; round < rounds; round++) { /* round -1 loads the runtimes */
    double t0 = now_us();
    for (int i = 0; i < iterations; i++) {
      er_pack *pack;
      er_model *model;
      er_request *req;
      if (er_pack_open(path, ER_BACKEND_AUTO, "intra_op_threads=1", &pack) || er_pack_model(pack, 0, &model) ||
          er_request_new(model, &req))
        return fail("open");
      er_request_free(req);
      er_model_free(model);
      er_pack_free(pack);
    }
    double mean = (now_us() - t0) / iterations;
    if (round >= 0 && mean < best) best = mean;
  }
  printf("{\"us\":%f}\n", best);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: overhead_floor MODEL ITERATIONS ROUNDS [sync|async]\n");
    return 2;
  }
  int iterations = atoi(argv[2]), rounds = atoi(argv[3]);
  int async = argc > 4 && strcmp(argv[4], "async") == 0;
  if (argc > 4 && strcmp(argv[4], "open") == 0) return time_open(argv[1], iterations, rounds);
  er_pack *pack;
  er_model *model;
  er_request *req;
  if (er_pack_open(argv[1], ER_BACKEND_AUTO, "intra_op_threads=1", &pack) || er_pack_model(pack, 0, &model) ||
      er_request_new(model, &req))
    return fail("open");
  uint64_t t[ER_REQ_TENSOR_WORDS];
  if (er_request_tensor(req, ER_INPUT, 0, t)) return fail("input");
  uint32_t bytes = (uint32_t)t[1];
  float *input = calloc(1, bytes);
  for (uint32_t i = 0; i < bytes / 4; i++) input[i] = (float)(i % 7);
  double best = 1e30;
  for (int round = 0; round < rounds; round++) {
    double t0 = 0;
    for (int i = -iterations / 10; i < iterations; i++) { /* the first tenth warms up */
      if (i == 0) t0 = now_us();
      if (er_request_write(req, 0, input, bytes, ER_COPY_DENSE)) return fail("write");
      if (!async) {
        if (er_request_run(req, 0, 0, 0, 0)) return fail("run");
        continue;
      }
      if (er_request_submit(req, 0, 0, 0, 0, 1)) return fail("submit");
      uint32_t tag;
      while (er_completion_wait(&tag, 1, -1) != 1) {
      }
      if (er_request_finish(req)) return fail("finish");
    }
    double mean = (now_us() - t0) / iterations;
    if (mean < best) best = mean;
  }
  printf("{\"us\":%f}\n", best);
  er_request_free(req);
  er_model_free(model);
  er_pack_free(pack);
  free(input);
  return 0;
}
