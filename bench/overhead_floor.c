/*
 * The per-run floor: libedgerun's own ABI from a C loop, no JS. Each iteration writes the input
 * (er_request_write) and runs (er_request_run), as run(x) does; mode "async" submits and waits for
 * the completion instead; mode "open" times opening the model and its first request (the library
 * and vendor runtime loaded once first); mode "hops" submits one run at a time and reports the
 * median microseconds of each hop of a submitted run (edgerun.h: the timing record); mode "wake"
 * (no model) times a thread waking another and back, the machine's floor under every hop.
 * Prints the best of ROUNDS rounds' mean microseconds as JSON (hops and wake: medians).
 *   overhead_floor MODEL ITERATIONS ROUNDS [sync|async|open|hops]
 *   overhead_floor - ITERATIONS ROUNDS wake
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
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

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return v[n / 2];
}

/* One submitted run at a time, as a control loop awaits them; the median of each hop in us. */
static int time_hops(er_request *req, const float *input, uint32_t bytes, int iterations) {
  enum { SUBMIT_START, START_DONE, DONE_POSTED, POSTED_WOKE, WOKE_COLLECTED, TOTAL, HOPS };
  static const char *names[HOPS] = {"submit_start", "start_done", "done_posted", "posted_woke", "woke_collected", "total"};
  double *hops[HOPS];
  for (int h = 0; h < HOPS; h++)
    if (!(hops[h] = calloc((size_t)iterations, sizeof(double)))) return fail("out of memory");
  const double *t = er_request_timing(req);
  for (int i = -iterations / 10; i < iterations; i++) {
    if (er_request_write(req, 0, input, bytes, ER_COPY_DENSE)) return fail("write");
    if (er_request_submit(req, 0, 0, 0, 0, 1)) return fail("submit");
    uint32_t tag;
    while (er_completion_wait(&tag, 1, -1) != 1) {
    }
    double collected = er_clock_ms();
    if (er_request_finish(req)) return fail("finish");
    if (i < 0) continue;
    double woke = er_completion_woke_ms(0);
    double at[] = {t[ER_TIMING_SUBMITTED], t[ER_TIMING_STARTED], t[ER_TIMING_DONE], t[ER_TIMING_POSTED], woke, collected};
    for (int h = 0; h < TOTAL; h++) hops[h][i] = (at[h + 1] - at[h]) * 1000;
    hops[TOTAL][i] = (collected - at[0]) * 1000;
  }
  printf("{");
  for (int h = 0; h < HOPS; h++) {
    printf("%s\"%s\":%f", h ? "," : "", names[h], median(hops[h], iterations));
    free(hops[h]);
  }
  printf("}\n");
  return 0;
}

/* A thread wakes a sleeping peer on another CPU through a semaphore, and the peer it back: half
   the round trip is one hop to an idle CPU, what each thread hop of a run costs at best. */
static sem_t ping, pong;

static void *echo(void *unused) {
  (void)unused;
  for (;;) {
    sem_wait(&ping);
    sem_post(&pong);
  }
  return NULL;
}

static int time_wake(int iterations, int rounds) {
  sem_init(&ping, 0, 0);
  sem_init(&pong, 0, 0);
  pthread_t peer;
  if (pthread_create(&peer, NULL, echo, NULL)) return fail("thread");
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  CPU_ZERO(&cpus);
  CPU_SET(1, &cpus);
  pthread_setaffinity_np(peer, sizeof cpus, &cpus); /* a one-CPU machine: refused, both share it */
  double *one = calloc((size_t)iterations * (size_t)rounds, sizeof(double));
  if (!one) return fail("out of memory");
  int n = 0;
  for (int round = 0; round < rounds; round++) {
    for (int i = 0; i < iterations; i++) {
      double t0 = now_us();
      sem_post(&ping);
      sem_wait(&pong);
      one[n++] = (now_us() - t0) / 2;
      /* Idle between round trips, as a waiting thread is: its CPU may go to sleep. */
      nanosleep(&(struct timespec){.tv_nsec = 200000}, NULL);
    }
  }
  printf("{\"us\":%f}\n", median(one, n));
  free(one);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: overhead_floor MODEL ITERATIONS ROUNDS [sync|async|open|hops|wake]\n");
    return 2;
  }
  int iterations = atoi(argv[2]), rounds = atoi(argv[3]);
  int async = argc > 4 && strcmp(argv[4], "async") == 0;
  if (argc > 4 && strcmp(argv[4], "open") == 0) return time_open(argv[1], iterations, rounds);
  if (argc > 4 && strcmp(argv[4], "wake") == 0) return time_wake(iterations, rounds);
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
  if (argc > 4 && strcmp(argv[4], "hops") == 0) return time_hops(req, input, bytes, iterations);
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
