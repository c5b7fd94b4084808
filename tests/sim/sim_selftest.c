/* Smoke test of the hbDNN/UCP simulator (not the real runtime). Links libdnn.so + libhbucp.so
 * from zig-out/sim and exercises: file loading and strict validation (incl. a small fuzz),
 * property round trip, sync/async inference with padded strides and quantized outputs, the
 * cache-discipline counters, priority order, preemption, the 32-task cap, timeout, release of a
 * timed-out task, and bad handles. Exit status 0 = all passed.
 *   zig build sim-test            (or: zig-out/sim/sim_selftest [--quick]) */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static int g_fail, g_checks;
#define CHECK(cond)                                                          \
  do {                                                                       \
    g_checks++;                                                              \
    if (!(cond)) {                                                           \
      g_fail++;                                                              \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                        \
  } while (0)
#define CHECK_RC(expr, want)                                                          \
  do {                                                                                \
    int32_t rc_ = (expr);                                                             \
    g_checks++;                                                                       \
    if (rc_ != (want)) {                                                              \
      g_fail++;                                                                       \
      fprintf(stderr, "FAIL %s:%d: %s = %d, want %d\n", __FILE__, __LINE__, #expr, rc_, \
              (int)(want));                                                           \
    }                                                                                 \
  } while (0)

/* ---- tiny HBSIM1 generator (the TS writer in simfile.ts is the full one) ---------------- */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} Buf;

static void put(Buf *b, const void *v, size_t k) {
  if (b->n + k > b->cap) {
    b->cap = (b->n + k) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, v, k);
  b->n += k;
}
#define PUT(b, T, v) \
  do {               \
    T x_ = (v);      \
    put(b, &x_, sizeof x_); \
  } while (0)
static void put_name(Buf *b, const char *s) {
  PUT(b, uint16_t, (uint16_t)strlen(s));
  put(b, s, strlen(s));
}

typedef struct {
  const char *name;
  int32_t dtype, rank;
  int32_t dims[10];
  int64_t stride[10];
  int64_t aligned;
  int32_t qt, axis, nscale;
  float scales[8];
  int32_t nzp;
  int32_t zps[8];
  uint32_t dynAlign;
  int32_t source;
  double a, b;
} TSpec;

typedef struct {
  const char *name;
  uint32_t cores, latency, fc;
  uint32_t nin, nout;
  TSpec in[2], out[3];
} MSpec;

static void put_tensor(Buf *b, const TSpec *t, int isOutput) {
  put_name(b, t->name);
  PUT(b, int32_t, t->dtype);
  PUT(b, int32_t, t->rank);
  for (int i = 0; i < t->rank; i++) PUT(b, int32_t, t->dims[i]);
  for (int i = 0; i < t->rank; i++) PUT(b, int64_t, t->stride[i]);
  PUT(b, int64_t, t->aligned);
  PUT(b, int32_t, t->qt);
  PUT(b, int32_t, t->axis);
  PUT(b, int32_t, t->nscale);
  for (int i = 0; i < t->nscale; i++) PUT(b, float, t->scales[i]);
  PUT(b, int32_t, t->nzp);
  for (int i = 0; i < t->nzp; i++) PUT(b, int32_t, t->zps[i]);
  PUT(b, uint32_t, t->dynAlign);
  if (isOutput) {
    PUT(b, int32_t, t->source);
    PUT(b, double, t->a);
    PUT(b, double, t->b);
  }
}

static Buf gen(const MSpec *ms, int n) {
  Buf b = {0};
  put(&b, "HBSIM1\0\0", 8);
  PUT(&b, uint32_t, 1);
  PUT(&b, uint32_t, (uint32_t)n);
  PUT(&b, uint64_t, 0); /* patched below */
  for (int m = 0; m < n; m++) {
    put_name(&b, ms[m].name);
    PUT(&b, uint32_t, ms[m].cores);
    PUT(&b, uint32_t, ms[m].latency);
    PUT(&b, uint32_t, ms[m].fc);
    PUT(&b, uint32_t, ms[m].nin);
    PUT(&b, uint32_t, ms[m].nout);
    for (uint32_t i = 0; i < ms[m].nin; i++) put_tensor(&b, &ms[m].in[i], 0);
    for (uint32_t i = 0; i < ms[m].nout; i++) put_tensor(&b, &ms[m].out[i], 1);
  }
  uint64_t size = b.n;
  memcpy(b.p + 16, &size, 8);
  return b;
}

static const char *write_tmp(const Buf *b) {
  static char path[64];
  strcpy(path, "/tmp/hbsim_selftest_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, b->p, b->n) != (ssize_t)b->n) abort();
  close(fd);
  return path;
}

/* The test models. */
static MSpec k_models[] = {
    {.name = "affine", .cores = 1, .latency = 0, .fc = 10, .nin = 2, .nout = 3,
     .in = {{.name = "x", .dtype = HB_DNN_TENSOR_TYPE_S8, .rank = 3, .dims = {1, 4, 6},
             .stride = {32, 8, 1}, .aligned = 32, .qt = 1, .axis = -1, .nscale = 1, .scales = {0.5f},
             .nzp = 1, .zps = {2}},
            {.name = "f", .dtype = HB_DNN_TENSOR_TYPE_F32, .rank = 2, .dims = {2, 3}, .stride = {12, 4},
             .aligned = 24, .axis = -1}},
     .out = {{.name = "y", .dtype = HB_DNN_TENSOR_TYPE_S8, .rank = 3, .dims = {1, 4, 6},
              .stride = {64, 16, 1}, .aligned = 64, .qt = 1, .axis = 1, .nscale = 4,
              .scales = {0.25f, 0.5f, 1.0f, 2.0f}, .nzp = 4, .zps = {0, 1, -1, 3}, .source = 0, .a = 2.0,
              .b = 1.0},
             {.name = "z", .dtype = HB_DNN_TENSOR_TYPE_F32, .rank = 2, .dims = {3, 2}, .stride = {16, 4},
              .aligned = 48, .axis = -1, .source = 1, .a = -1.5, .b = 0.25},
             {.name = "idx", .dtype = HB_DNN_TENSOR_TYPE_F16, .rank = 1, .dims = {5}, .stride = {2},
              .aligned = 16, .axis = -1, .source = -1, .a = 0.1, .b = 0}}},
    {.name = "slow", .cores = 1, .latency = 20000, .fc = 10, .nin = 1, .nout = 1,
     .in = {{.name = "u", .dtype = HB_DNN_TENSOR_TYPE_U8, .rank = 1, .dims = {8}, .stride = {1}, .aligned = 64,
             .axis = -1}},
     .out = {{.name = "v", .dtype = HB_DNN_TENSOR_TYPE_U8, .rank = 1, .dims = {8}, .stride = {1}, .aligned = 64,
              .axis = -1, .source = 0, .a = 1, .b = 1}}},
    {.name = "multi", .cores = 2, .latency = 0, .fc = 1, .nin = 0, .nout = 1,
     .out = {{.name = "o", .dtype = HB_DNN_TENSOR_TYPE_S32, .rank = 1, .dims = {4}, .stride = {4}, .aligned = 16,
              .axis = -1, .source = -1, .a = 3, .b = -2}}},
    {.name = "nv12", .cores = 1, .latency = 0, .fc = 1, .nin = 2, .nout = 1,
     .in = {{.name = "y", .dtype = HB_DNN_TENSOR_TYPE_U8, .rank = 4, .dims = {1, -1, -1, 1},
             .stride = {-1, -1, 1, 1}, .aligned = 0, .axis = -1, .dynAlign = 32},
            {.name = "uv", .dtype = HB_DNN_TENSOR_TYPE_U8, .rank = 4, .dims = {1, -1, -1, 2},
             .stride = {-1, -1, 2, 1}, .aligned = 0, .axis = -1, .dynAlign = 32}},
     .out = {{.name = "first", .dtype = HB_DNN_TENSOR_TYPE_U16, .rank = 1, .dims = {16}, .stride = {2},
              .aligned = 32, .axis = -1, .source = 0, .a = 1, .b = 0}}},
};
#define NMODELS ((int)(sizeof k_models / sizeof k_models[0]))

/* ---- helpers --------------------------------------------------------------------------- */

static hbDNNHandle_t model(hbDNNPackedHandle_t pk, const char *name) {
  hbDNNHandle_t h = NULL;
  CHECK_RC(hbDNNGetModelHandle(&h, pk, name), 0);
  return h;
}

/* Allocates a cached tensor buffer of alignedByteSize (or `bytes`) with the model's props. */
static void alloc_tensor(hbDNNTensor *t, hbDNNHandle_t h, int isOutput, int idx, uint64_t bytes) {
  memset(t, 0, sizeof *t);
  CHECK_RC(isOutput ? hbDNNGetOutputTensorProperties(&t->properties, h, idx)
                    : hbDNNGetInputTensorProperties(&t->properties, h, idx),
           0);
  if (!bytes) bytes = (uint64_t)t->properties.alignedByteSize;
  CHECK_RC(hbUCPMallocCached(&t->sysMem, bytes, 0), 0);
}

static void free_tensor(hbDNNTensor *t) { CHECK_RC(hbUCPFree(&t->sysMem), 0); }
static void clean(hbDNNTensor *t) { CHECK_RC(hbUCPMemFlush(&t->sysMem, HB_SYS_MEM_CACHE_CLEAN), 0); }
static void invalidate(hbDNNTensor *t) { CHECK_RC(hbUCPMemFlush(&t->sysMem, HB_SYS_MEM_CACHE_INVALIDATE), 0); }

static double rne(double x) { return nearbyint(x); } /* default FE_TONEAREST */
static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Fills "affine" inputs: x (S8, padded rows of 8) and f (F32). */
static void fill_affine(hbDNNTensor *in) {
  int8_t *x = in[0].sysMem.virAddr;
  memset(x, 0x77, 32); /* padding garbage must be ignored */
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 6; c++) x[r * 8 + c] = (int8_t)(r * 6 + c - 11) * 5;
  float *f = in[1].sysMem.virAddr;
  for (int i = 0; i < 6; i++) f[i] = 1.0f / (float)(i + 1) - 0.3f;
}

/* Checks "affine" outputs against an independent computation. */
static void check_affine(hbDNNTensor *in, hbDNNTensor *out, int64_t xRowStride) {
  const int8_t *x = in[0].sysMem.virAddr;
  const float *f = in[1].sysMem.virAddr;
  const int8_t *y = out[0].sysMem.virAddr;
  const float sc[4] = {0.25f, 0.5f, 1.0f, 2.0f};
  const int zp[4] = {0, 1, -1, 3};
  int bad = 0;
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 6; c++) {
      double deq = ((double)x[r * xRowStride + c] - 2) * 0.5;
      double v = 2.0 * deq + 1.0;
      double q = clampd(rne(v / sc[r] + zp[r]), -128, 127);
      if (y[r * 16 + c] != (int8_t)q) bad++, fprintf(stderr, "y[%d][%d]=%d want %g (x=%d)\n", r, c, y[r * 16 + c], q, x[r * xRowStride + c]);
    }
  for (int r = 0; r < 4; r++)
    for (int p = 6; p < 16; p++)
      if ((uint8_t)y[r * 16 + p] != 0xCD) bad++; /* row padding filled with 0xCD */
  CHECK(bad == 0);
  const uint8_t *zb = out[1].sysMem.virAddr;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 2; c++) {
      float z;
      memcpy(&z, zb + r * 16 + c * 4, 4);
      double v = -1.5 * (double)f[r * 2 + c];
      v = v + 0.25;
      CHECK(z == (float)v);
    }
  CHECK(zb[8] == 0xCD && zb[15] == 0xCD);
  const uint16_t *h = out[2].sysMem.virAddr;
  /* 0.1*j rounded to binary16: 0, 0.1 -> 0x2E66, 0.2 -> 0x3266, 0.30000000000000004 -> 0x34CD, 0.4 -> 0x3666 */
  const uint16_t want[5] = {0x0000, 0x2E66, 0x3266, 0x34CD, 0x3666};
  for (int i = 0; i < 5; i++) CHECK(h[i] == want[i]);
}

static int64_t ctr(const char *n) { return hbSimCounter(n); }

/* ---- tests ----------------------------------------------------------------------------- */

static void test_versions(void) {
  CHECK(strcmp(hbUCPGetVersion(), "3.13.6") == 0);
  CHECK(strstr(hbDNNGetVersion(), "simulator") != NULL);
  CHECK(strstr(hbUCPGetSocName(), "simulator") != NULL);
  CHECK(strstr(hbUCPGetErrorDesc(-200002), "TIMEOUT") != NULL);
  CHECK(strstr(hbDNNGetErrorDesc(-600002), "INVALID_MODEL") != NULL);
  CHECK(strstr(hbDNNGetErrorDesc(-400005), "MEM_IS_INVALID") != NULL);
  CHECK(strstr(hbDNNGetErrorDesc(12345), "unknown") != NULL);
}

static int32_t load_buf(const Buf *b, hbDNNPackedHandle_t *pk) {
  const void *d[1] = {b->p};
  int32_t len[1] = {(int32_t)b->n};
  return hbDNNInitializeFromDDR(pk, d, len, 1);
}

static void test_validation(int quick) {
  hbDNNPackedHandle_t pk = NULL;
  const char *missing[] = {"/nonexistent/hbsim.bin"};
  CHECK_RC(hbDNNInitializeFromFiles(&pk, missing, 1), HB_DNN_CAN_NOT_OPEN_FILE);
  const char *dir[] = {"/tmp"};
  CHECK_RC(hbDNNInitializeFromFiles(&pk, dir, 1), HB_DNN_CAN_NOT_OPEN_FILE);
  CHECK_RC(hbDNNInitializeFromFiles(NULL, missing, 1), HB_DNN_INVALID_ARGUMENT);
  CHECK_RC(hbDNNInitializeFromFiles(&pk, missing, 0), HB_DNN_INVALID_ARGUMENT);

  Buf good = gen(k_models, NMODELS);
  /* Every truncation fails cleanly. */
  for (size_t n = 0; n < good.n; n++) {
    Buf t = {.p = good.p, .n = n};
    int32_t rc = load_buf(&t, &pk);
    if (rc != HB_DNN_INVALID_MODEL) {
      CHECK_RC(rc, HB_DNN_INVALID_MODEL);
      break;
    }
  }
  /* Wrong magic. */
  Buf bad = {.p = malloc(good.n), .n = good.n};
  memcpy(bad.p, good.p, good.n);
  bad.p[0] = 'X';
  CHECK_RC(load_buf(&bad, &pk), HB_DNN_INVALID_MODEL);
  /* Random byte flips: any result is fine as long as it is a documented code and no crash. */
  srand(12345);
  int iters = quick ? 300 : 4000, ok = 0;
  for (int i = 0; i < iters; i++) {
    memcpy(bad.p, good.p, good.n);
    int flips = 1 + rand() % 4;
    for (int k = 0; k < flips; k++) bad.p[8 + rand() % (int)(good.n - 8)] = (uint8_t)rand();
    hbDNNPackedHandle_t p2 = NULL;
    int32_t rc = load_buf(&bad, &p2);
    if (rc == 0) {
      ok++;
      CHECK_RC(hbDNNRelease(p2), 0);
    } else if (rc != HB_DNN_INVALID_MODEL && rc != HB_DNN_MODEL_NUMBER_EXCEED_LIMIT) {
      CHECK_RC(rc, HB_DNN_INVALID_MODEL);
      break;
    }
  }
  printf("  fuzz: %d/%d mutated files still valid (rest rejected cleanly)\n", ok, iters);
  free(bad.p);

  /* Specific inconsistencies. */
  MSpec m = k_models[0];
  m.in[1].stride[0] = 8; /* smaller than dense (3 * 4) */
  Buf b1 = gen(&m, 1);
  CHECK_RC(load_buf(&b1, &pk), HB_DNN_INVALID_MODEL);
  m = k_models[0];
  /* span of y is 3*16 + 5 + 1 = 54 bytes */
  m.out[0].aligned = 50;
  Buf b2 = gen(&m, 1);
  CHECK_RC(load_buf(&b2, &pk), HB_DNN_INVALID_MODEL);
  m = k_models[0];
  m.in[0].dtype = 14; /* unknown dtype */
  Buf b3 = gen(&m, 1);
  CHECK_RC(load_buf(&b3, &pk), HB_DNN_INVALID_MODEL);
  m = k_models[0];
  m.out[0].nscale = 3; /* per-axis scale count != dim */
  Buf b4 = gen(&m, 1);
  CHECK_RC(load_buf(&b4, &pk), HB_DNN_INVALID_MODEL);
  MSpec two[2] = {k_models[0], k_models[0]}; /* duplicate model names */
  Buf b5 = gen(two, 2);
  CHECK_RC(load_buf(&b5, &pk), HB_DNN_INVALID_MODEL);
  Buf b6 = gen(k_models, NMODELS);
  PUT(&b6, uint8_t, 0); /* trailing byte (size field now wrong too) */
  CHECK_RC(load_buf(&b6, &pk), HB_DNN_INVALID_MODEL);
  free(b1.p), free(b2.p), free(b3.p), free(b4.p), free(b5.p), free(b6.p);
  free(good.p);
}

static void test_properties(hbDNNPackedHandle_t pk) {
  const char **names = NULL;
  int32_t n = 0;
  CHECK_RC(hbDNNGetModelNameList(&names, &n, pk), 0);
  CHECK(n == NMODELS);
  for (int i = 0; i < n && i < NMODELS; i++) CHECK(strcmp(names[i], k_models[i].name) == 0);
  hbDNNHandle_t h = model(pk, "affine");
  int32_t cnt = 0;
  CHECK_RC(hbDNNGetInputCount(&cnt, h), 0);
  CHECK(cnt == 2);
  CHECK_RC(hbDNNGetOutputCount(&cnt, h), 0);
  CHECK(cnt == 3);
  const char *nm = NULL;
  CHECK_RC(hbDNNGetInputName(&nm, h, 1), 0);
  CHECK(nm && strcmp(nm, "f") == 0);
  CHECK_RC(hbDNNGetOutputName(&nm, h, 2), 0);
  CHECK(nm && strcmp(nm, "idx") == 0);
  CHECK_RC(hbDNNGetOutputName(&nm, h, 3), HB_DNN_INVALID_ARGUMENT);
  hbDNNTensorProperties p;
  CHECK_RC(hbDNNGetOutputTensorProperties(&p, h, 0), 0);
  const TSpec *y = &k_models[0].out[0];
  CHECK(p.validShape.numDimensions == 3 && p.validShape.dimensionSize[1] == 4);
  CHECK(p.tensorType == HB_DNN_TENSOR_TYPE_S8 && p.quantiType == HB_DNN_QUANTI_SCALE && p.quantizeAxis == 1);
  CHECK(p.alignedByteSize == 64 && p.stride[0] == 64 && p.stride[1] == 16 && p.stride[2] == 1);
  CHECK(p.scale.scaleLen == 4 && p.scale.zeroPointLen == 4);
  for (int i = 0; i < 4; i++) CHECK(p.scale.scaleData[i] == y->scales[i] && p.scale.zeroPointData[i] == y->zps[i]);
  CHECK_RC(hbDNNGetInputTensorProperties(&p, model(pk, "nv12"), 0), 0);
  CHECK(p.validShape.dimensionSize[1] == -1 && p.stride[0] == -1 && p.stride[2] == 1);
  CHECK(p.quantiType == HB_DNN_QUANTI_NONE && p.scale.scaleLen == 0 && p.scale.scaleData == NULL);
  int32_t cores = 0;
  CHECK_RC(hbDNNGetCompileBpuCoreNum(&cores, model(pk, "multi")), 0);
  CHECK(cores == 2);
  CHECK_RC(hbDNNGetModelHandle(&h, pk, "nope"), HB_DNN_INVALID_ARGUMENT);
}

static void test_infer(hbDNNPackedHandle_t pk) {
  hbDNNHandle_t h = model(pk, "affine");
  hbDNNTensor in[2], out[3];
  for (int i = 0; i < 2; i++) alloc_tensor(&in[i], h, 0, i, 0);
  for (int i = 0; i < 3; i++) alloc_tensor(&out[i], h, 1, i, 0);
  hbSimReset();

  /* Synchronous, model strides (padded input rows). */
  fill_affine(in);
  clean(&in[0]);
  clean(&in[1]);
  CHECK_RC(hbDNNInferV2(NULL, out, in, h), 0);
  for (int i = 0; i < 3; i++) invalidate(&out[i]);
  check_affine(in, out, 8);
  CHECK(ctr("missed_clean") == 0 && ctr("outputs_written") == 3 && ctr("outputs_invalidated") == 3);
  CHECK(ctr("sync_infer") == 1 && ctr("tasks_completed") == 1 && ctr("tasks_live") == 0);

  /* Asynchronous with a dense (caller-overridden) input stride and a callback. */
  hbDNNTensor in2[2] = {in[0], in[1]};
  in2[0].properties.stride[0] = 24;
  in2[0].properties.stride[1] = 6;
  int8_t *x = in[0].sysMem.virAddr;
  int8_t dense[24];
  for (int r = 0; r < 4; r++) memcpy(dense + r * 6, x + r * 8, 6);
  memcpy(x, dense, 24);
  clean(&in[0]);
  memset(out[0].sysMem.virAddr, 0, 64);
  clean(&out[0]);
  hbUCPTaskHandle_t t = NULL;
  CHECK_RC(hbDNNInferV2(&t, out, in2, h), 0);
  CHECK(t != NULL && ctr("tasks_live") == 1);
  hbUCPSchedParam sp = {.priority = 0, .customId = 7, .backend = HB_UCP_BPU_CORE_ANY};
  CHECK_RC(hbUCPSubmitTask(t, &sp), 0);
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_API_USE_ERROR);
  CHECK_RC(hbUCPWaitTaskDone(t, 0), 0);
  CHECK_RC(hbUCPReleaseTask(t), 0);
  for (int i = 0; i < 3; i++) invalidate(&out[i]);
  check_affine(in, out, 6);
  CHECK(ctr("missed_clean") == 0);

  /* Cache discipline: CPU writes the input but forgets CLEAN -> counted. */
  x[0] = 42;
  CHECK_RC(hbDNNInferV2(NULL, out, in2, h), 0);
  CHECK(ctr("missed_clean") == 1 && hbSimMemCounter(x, "missed_clean") == 1);
  CHECK(hbSimMemCounter(out[0].sysMem.virAddr, "pending_invalidate") == 1);
  /* Strict mode: the device sees DRAM (last CLEAN), and the CPU only sees results after INVALIDATE. */
  hbSimSetStrictCache(1);
  memset(out[1].sysMem.virAddr, 0, 48);
  clean(&out[1]);
  CHECK_RC(hbDNNInferV2(NULL, out, in2, h), 0);
  float z0;
  memcpy(&z0, out[1].sysMem.virAddr, 4);
  CHECK(z0 == 0.0f); /* stale CPU view */
  invalidate(&out[1]);
  memcpy(&z0, out[1].sysMem.virAddr, 4);
  CHECK(z0 == (float)(-1.5 * (double)((float *)in[1].sysMem.virAddr)[0] + 0.25));
  hbSimSetStrictCache(0);
  for (int i = 0; i < 3; i++) invalidate(&out[i]);

  /* Argument errors. */
  hbDNNTensor bad[2] = {in[0], in[1]};
  bad[1].properties.tensorType = HB_DNN_TENSOR_TYPE_F16;
  CHECK_RC(hbDNNInferV2(NULL, out, bad, h), HB_DNN_INVALID_ARGUMENT);
  bad[1] = in[1];
  bad[1].properties.stride[0] = 4; /* overlapping rows */
  CHECK_RC(hbDNNInferV2(NULL, out, bad, h), HB_DNN_INVALID_ARGUMENT);
  bad[1] = in[1];
  float heap[6];
  bad[1].sysMem.virAddr = heap; /* not from hbUCPMalloc */
  CHECK_RC(hbDNNInferV2(NULL, out, bad, h), HB_UCP_MEM_IS_INVALID);
  bad[1] = in[1];
  bad[1].sysMem.memSize = 8; /* smaller than the layout */
  CHECK_RC(hbDNNInferV2(NULL, out, bad, h), HB_DNN_INVALID_ARGUMENT);
  hbDNNTensor badOut[3] = {out[0], out[1], out[2]};
  badOut[0].properties.stride[1] = 6; /* outputs must keep the model's (padded) stride */
  badOut[0].properties.stride[0] = 24;
  CHECK_RC(hbDNNInferV2(NULL, badOut, in, h), HB_DNN_INVALID_ARGUMENT);
  badOut[0] = out[0];
  badOut[1].sysMem = out[0].sysMem; /* two outputs aliasing one buffer */
  CHECK_RC(hbDNNInferV2(NULL, badOut, in, h), HB_DNN_INVALID_ARGUMENT);
  CHECK(ctr("tasks_live") == 0);

  /* NV12-style dynamic input: the caller fills -1 dims/strides (32-byte aligned rows). */
  hbDNNHandle_t hn = model(pk, "nv12");
  hbDNNTensor nin[2], nout[1];
  alloc_tensor(&nin[0], hn, 0, 0, 220 * 224);
  alloc_tensor(&nin[1], hn, 0, 1, 110 * 224);
  alloc_tensor(&nout[0], hn, 1, 0, 0);
  int32_t yd[4] = {1, 220, 220, 1}, uvd[4] = {1, 110, 110, 2};
  int64_t ys[4] = {49280, 224, 1, 1}, uvs[4] = {24640, 224, 2, 1};
  for (int i = 0; i < 4; i++) {
    nin[0].properties.validShape.dimensionSize[i] = yd[i];
    nin[0].properties.stride[i] = ys[i];
    nin[1].properties.validShape.dimensionSize[i] = uvd[i];
    nin[1].properties.stride[i] = uvs[i];
  }
  uint8_t *yp = nin[0].sysMem.virAddr;
  for (int i = 0; i < 16; i++) yp[i] = (uint8_t)(200 + i);
  clean(&nin[0]);
  CHECK_RC(hbDNNInferV2(NULL, nout, nin, hn), 0);
  invalidate(&nout[0]);
  const uint16_t *fo = nout[0].sysMem.virAddr;
  for (int i = 0; i < 16; i++) CHECK(fo[i] == 200 + i);
  nin[0].properties.stride[1] = 220; /* not 32-byte aligned */
  nin[0].properties.stride[0] = 220 * 220;
  CHECK_RC(hbDNNInferV2(NULL, nout, nin, hn), HB_DNN_INVALID_ARGUMENT);
  nin[0].properties.stride[1] = -1; /* left unfilled */
  CHECK_RC(hbDNNInferV2(NULL, nout, nin, hn), HB_DNN_INVALID_ARGUMENT);
  free_tensor(&nin[0]), free_tensor(&nin[1]), free_tensor(&nout[0]);

  /* Multi-core model: sync refused; async needs enough simulated cores. */
  hbDNNHandle_t hm = model(pk, "multi");
  hbDNNTensor mo;
  alloc_tensor(&mo, hm, 1, 0, 0);
  CHECK_RC(hbDNNInferV2(NULL, &mo, NULL, hm), HB_DNN_API_USE_ERROR);
  CHECK_RC(hbDNNInferV2(&t, &mo, NULL, hm), HB_DNN_INVALID_TASK_HANDLE); /* t: stale (released) handle */
  t = NULL;
  CHECK_RC(hbDNNInferV2(&t, &mo, NULL, hm), 0);
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT); /* 1 simulated core */
  hbSimSetCoreCount(2);
  sp.backend = HB_UCP_BPU_CORE_1; /* one core bit for a 2-core model */
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.backend = HB_UCP_BPU_CORE_ANY; /* "any" is refused for a multi-core model */
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.backend = HB_UCP_CORE_ANY;
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.backend = HB_UCP_BPU_CORE_0 | HB_UCP_BPU_CORE_1;
  CHECK_RC(hbUCPSubmitTask(t, &sp), 0);
  CHECK_RC(hbUCPWaitTaskDone(t, 1000), 0);
  CHECK_RC(hbUCPReleaseTask(t), 0);
  hbSimSetCoreCount(1);
  invalidate(&mo);
  const int32_t *mv = mo.sysMem.virAddr;
  CHECK(mv[0] == -2 && mv[3] == 7);
  free_tensor(&mo);

  /* Appended sub-tasks (multi-model task): both run. */
  t = NULL;
  CHECK_RC(hbDNNInferV2(&t, out, in, h), 0);
  hbDNNTensor n2[1];
  hbDNNTensor ni[2];
  alloc_tensor(&ni[0], hn, 0, 0, 64);
  alloc_tensor(&ni[1], hn, 0, 1, 64);
  alloc_tensor(&n2[0], hn, 1, 0, 0);
  int32_t d2[4] = {1, 2, 16, 1}, d3[4] = {1, 1, 8, 2};
  int64_t s2[4] = {64, 32, 1, 1}, s3[4] = {32, 32, 2, 1};
  for (int i = 0; i < 4; i++) {
    ni[0].properties.validShape.dimensionSize[i] = d2[i];
    ni[0].properties.stride[i] = s2[i];
    ni[1].properties.validShape.dimensionSize[i] = d3[i];
    ni[1].properties.stride[i] = s3[i];
  }
  CHECK_RC(hbDNNInferV2(&t, n2, ni, hn), 0);
  sp = (hbUCPSchedParam){.priority = 5, .backend = 0};
  CHECK_RC(hbUCPSubmitTask(t, &sp), 0);
  CHECK_RC(hbDNNInferV2(&t, n2, ni, hn), HB_UCP_API_USE_ERROR); /* already submitted */
  CHECK_RC(hbUCPWaitTaskDone(t, 0), 0);
  CHECK_RC(hbUCPReleaseTask(t), 0);
  CHECK(hbSimMemCounter(n2[0].sysMem.virAddr, "device_writes") == 1);
  free_tensor(&ni[0]), free_tensor(&ni[1]), free_tensor(&n2[0]);

  for (int i = 0; i < 2; i++) free_tensor(&in[i]);
  for (int i = 0; i < 3; i++) free_tensor(&out[i]);
}

/* One "slow" model task with its own buffers. */
typedef struct {
  hbDNNTensor in, out;
  hbUCPTaskHandle_t t;
} SlowJob;

static void slow_create(SlowJob *j, hbDNNHandle_t h) {
  alloc_tensor(&j->in, h, 0, 0, 0);
  alloc_tensor(&j->out, h, 1, 0, 0);
  j->t = NULL;
  CHECK_RC(hbDNNInferV2(&j->t, &j->out, &j->in, h), 0);
}

static void slow_submit(SlowJob *j, int prio, int64_t id) {
  hbUCPSchedParam sp = {.priority = prio, .customId = id, .backend = HB_UCP_BPU_CORE_ANY};
  CHECK_RC(hbUCPSubmitTask(j->t, &sp), 0);
}

static void slow_finish(SlowJob *j) {
  CHECK_RC(hbUCPWaitTaskDone(j->t, 0), 0);
  CHECK_RC(hbUCPReleaseTask(j->t), 0);
  free_tensor(&j->in);
  free_tensor(&j->out);
}

static int g_cbCount;
static pthread_mutex_t g_cbMu = PTHREAD_MUTEX_INITIALIZER;
static void on_done(hbUCPTaskHandle_t t, int32_t status, void *ud) {
  pthread_mutex_lock(&g_cbMu);
  g_cbCount += status == 0 && ud == (void *)&g_cbCount;
  pthread_mutex_unlock(&g_cbMu);
}

static void test_scheduling(hbDNNPackedHandle_t pk) {
  hbDNNHandle_t h = model(pk, "slow");
  hbSimReset();
  /* A blocker occupies the single core while the others queue up. */
  SlowJob jobs[7];
  for (int i = 0; i < 7; i++) slow_create(&jobs[i], h);
  CHECK_RC(hbUCPSetTaskDoneCb(jobs[3].t, on_done, &g_cbCount), 0);
  hbSimSetLatencyUs(50000);
  slow_submit(&jobs[0], 0, 100);
  usleep(20000); /* the blocker is running (its latency was fixed when it started) */
  hbSimSetLatencyUs(5000);
  slow_submit(&jobs[1], 10, 5);
  slow_submit(&jobs[2], 20, 9);
  slow_submit(&jobs[3], 20, 3);
  slow_submit(&jobs[4], 10, 5); /* ties with jobs[1]: FIFO */
  slow_submit(&jobs[5], 0, 1);
  slow_submit(&jobs[6], 200, 50);
  CHECK_RC(hbUCPSetTaskDoneCb(jobs[3].t, on_done, NULL), HB_UCP_API_USE_ERROR); /* after submit */
  for (int i = 0; i < 7; i++) CHECK_RC(hbUCPWaitTaskDone(jobs[i].t, 0), 0);
  int64_t log[16];
  int32_t n = hbSimCompletionLog(log, 16);
  const int64_t want[] = {100, 50, 3, 9, 5, 5, 1};
  CHECK(n == 7);
  for (int i = 0; i < 7 && i < n; i++) CHECK(log[i] == want[i]);
  CHECK(g_cbCount == 1 && ctr("callbacks") == 1 && ctr("preemptions") == 0);
  /* Output check: v = u + 1 (u zero-initialized). */
  invalidate(&jobs[1].out);
  CHECK(((uint8_t *)jobs[1].out.sysMem.virAddr)[7] == 1);
  for (int i = 0; i < 7; i++) slow_finish(&jobs[i]);

  /* Preemption: urgent (255) interrupts a normal task between function calls. */
  hbSimReset();
  hbSimSetLatencyUs(100000);
  SlowJob v, u, hi;
  slow_create(&v, h);
  slow_create(&u, h);
  slow_create(&hi, h);
  slow_submit(&v, 100, 1);
  usleep(15000); /* victim is running (1 or 2 of its 10 slices done) */
  hbSimSetLatencyUs(10000);
  slow_submit(&hi, 254, 2);
  slow_submit(&u, 255, 3);
  slow_finish(&v);
  slow_finish(&u);
  slow_finish(&hi);
  n = hbSimCompletionLog(log, 16);
  CHECK(n == 3 && log[0] == 3 && log[1] == 2 && log[2] == 1);
  CHECK(ctr("preemptions") >= 1);
  hbSimSetLatencyUs(-1);
}

static void test_limits(hbDNNPackedHandle_t pk) {
  hbDNNHandle_t h = model(pk, "slow");
  hbSimReset();
  hbDNNTensor in, out;
  alloc_tensor(&in, h, 0, 0, 0);
  alloc_tensor(&out, h, 1, 0, 0);
  /* 32 coexisting tasks; the 33rd (async or sync) is refused. */
  hbUCPTaskHandle_t ts[33];
  for (int i = 0; i < 32; i++) {
    ts[i] = NULL;
    CHECK_RC(hbDNNInferV2(&ts[i], &out, &in, h), 0);
  }
  ts[32] = NULL;
  CHECK_RC(hbDNNInferV2(&ts[32], &out, &in, h), HB_DNN_TASK_NUM_EXCEED_LIMIT);
  CHECK(ts[32] == NULL);
  CHECK_RC(hbDNNInferV2(NULL, &out, &in, h), HB_DNN_TASK_NUM_EXCEED_LIMIT);
  CHECK(ctr("tasks_live") == 32);
  CHECK_RC(hbUCPWaitTaskDone(ts[0], 0), HB_UCP_TASK_HANDLE_INVALID); /* never submitted (real: -200004) */
  for (int i = 0; i < 32; i++) CHECK_RC(hbUCPReleaseTask(ts[i]), 0);
  CHECK(ctr("tasks_live") == 0);

  /* Timeout, then release of the timed-out (still running) task. */
  hbSimSetLatencyUs(300000);
  hbUCPTaskHandle_t t = NULL;
  CHECK_RC(hbDNNInferV2(&t, &out, &in, h), 0);
  hbUCPSchedParam sp = {.priority = 0, .backend = 0};
  CHECK_RC(hbUCPSubmitTask(t, &sp), 0);
  CHECK_RC(hbUCPWaitTaskDone(t, 20), HB_UCP_TASK_TIMEOUT);
  CHECK(ctr("tasks_timed_out") == 1);
  CHECK_RC(hbUCPFree(&in.sysMem), HB_UCP_MEM_FREE_FAIL); /* still used by the running task */
  CHECK_RC(hbUCPReleaseTask(t), 0); /* blocks until the device is done (a running op is not aborted) */
  CHECK(ctr("releases_blocked") == 1 && ctr("tasks_completed") >= 1);
  CHECK_RC(hbUCPReleaseTask(t), HB_UCP_TASK_HANDLE_INVALID);
  CHECK_RC(hbUCPWaitTaskDone(t, 0), HB_UCP_TASK_HANDLE_INVALID);
  /* A queued (not yet running) task is cancelled by release. */
  hbUCPTaskHandle_t busy = NULL, q = NULL;
  CHECK_RC(hbDNNInferV2(&busy, &out, &in, h), 0);
  CHECK_RC(hbUCPSubmitTask(busy, &sp), 0); /* occupies the one core */
  CHECK_RC(hbDNNInferV2(&q, &out, &in, h), 0);
  CHECK_RC(hbUCPSubmitTask(q, &sp), 0);
  CHECK_RC(hbUCPReleaseTask(q), 0);
  CHECK(ctr("tasks_cancelled") == 1);
  CHECK_RC(hbUCPReleaseTask(busy), 0);
  /* Wait until the worker drops the released task (then buffers can be freed). */
  for (int i = 0; i < 200 && hbSimMemCounter(in.sysMem.virAddr, "inflight") != 0; i++) usleep(5000);
  CHECK(hbSimMemCounter(in.sysMem.virAddr, "inflight") == 0);
  hbSimSetLatencyUs(-1);

  /* Bad handles and parameters. */
  int dummy;
  CHECK_RC(hbUCPSubmitTask(NULL, &sp), HB_UCP_TASK_HANDLE_INVALID);
  CHECK_RC(hbUCPSubmitTask(&dummy, &sp), HB_UCP_TASK_HANDLE_INVALID);
  CHECK_RC(hbUCPWaitTaskDone((void *)0x1234, 0), HB_UCP_TASK_HANDLE_INVALID);
  CHECK_RC(hbUCPReleaseTask(NULL), HB_UCP_TASK_HANDLE_INVALID);
  CHECK_RC(hbUCPSetTaskDoneCb(&dummy, on_done, NULL), HB_UCP_TASK_HANDLE_INVALID);
  t = NULL;
  CHECK_RC(hbDNNInferV2(&t, &out, &in, h), 0);
  sp.priority = 256;
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.priority = -1;
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.priority = 0;
  sp.backend = HB_UCP_BPU_CORE_1; /* only one simulated core */
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  sp.backend = 1ull << 8; /* DSP */
  CHECK_RC(hbUCPSubmitTask(t, &sp), HB_UCP_INVALID_ARGUMENT);
  CHECK_RC(hbUCPSubmitTask(t, NULL), HB_UCP_INVALID_ARGUMENT);
  CHECK_RC(hbUCPWaitTaskDone(t, -5), HB_UCP_TASK_HANDLE_INVALID); /* not submitted yet */
  sp.backend = HB_UCP_BPU_CORE_0;
  sp.deviceId = 3; /* not checked by the real runtime */
  CHECK_RC(hbUCPSubmitTask(t, &sp), 0);
  sp.deviceId = 0;
  CHECK_RC(hbUCPWaitTaskDone(t, -5), 0); /* a negative timeout waits forever */
  CHECK_RC(hbUCPReleaseTask(t), 0);
  CHECK_RC(hbDNNInferV2(NULL, &out, &in, (void *)&dummy), HB_DNN_INVALID_DNN_HANDLE);
  int32_t cnt;
  CHECK_RC(hbDNNGetInputCount(&cnt, NULL), HB_DNN_INVALID_DNN_HANDLE);
  CHECK_RC(hbDNNGetInputCount(&cnt, (char *)h + 1), HB_DNN_INVALID_DNN_HANDLE);
  CHECK_RC(hbDNNRelease((void *)&dummy), HB_DNN_INVALID_PACKED_DNN_HANDLE);
  const char **names;
  CHECK_RC(hbDNNGetModelNameList(&names, &cnt, NULL), HB_DNN_INVALID_PACKED_DNN_HANDLE);

  /* Memory errors. */
  CHECK_RC(hbUCPMemFlush(&in.sysMem, 3), HB_UCP_INVALID_ARGUMENT);
  hbUCPSysMem fake = {.phyAddr = 1, .virAddr = &dummy, .memSize = 4};
  CHECK_RC(hbUCPMemFlush(&fake, HB_SYS_MEM_CACHE_CLEAN), HB_UCP_MEM_IS_INVALID);
  CHECK_RC(hbUCPMalloc(NULL, 16, 0), HB_UCP_INVALID_ARGUMENT);
  hbUCPSysMem m2;
  CHECK_RC(hbUCPMalloc(&m2, 0, 0), HB_UCP_INVALID_ARGUMENT);
  CHECK_RC(hbUCPMalloc(&m2, 100, 0), 0);
  CHECK(m2.memSize == 100 && ((uintptr_t)m2.virAddr & 63) == 0 && m2.phyAddr != 0);
  CHECK(hbSimMemCounter(m2.virAddr, "cached") == 0);
  CHECK_RC(hbUCPFree(&m2), 0);
  CHECK_RC(hbUCPFree(&m2), HB_UCP_MEM_IS_INVALID); /* double free */
  free_tensor(&in);
  free_tensor(&out);
  CHECK(ctr("bad_handles") > 0);
}

static void test_release_in_use(void) {
  /* hbDNNRelease with a live task: refused with -600003, the model stays usable. */
  Buf b = gen(&k_models[1], 1);
  hbDNNPackedHandle_t pk = NULL;
  CHECK_RC(load_buf(&b, &pk), 0);
  free(b.p);
  hbDNNHandle_t h = model(pk, "slow");
  SlowJob j;
  slow_create(&j, h);
  CHECK_RC(hbDNNRelease(pk), HB_DNN_MODEL_IS_RUNNING);
  CHECK(ctr("model_release_refused") == 1);
  int32_t cnt;
  CHECK_RC(hbDNNGetInputCount(&cnt, h), 0);
  slow_submit(&j, 0, 0);
  slow_finish(&j);
  CHECK_RC(hbDNNRelease(pk), 0);
  CHECK_RC(hbDNNGetInputCount(&cnt, h), HB_DNN_INVALID_DNN_HANDLE);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  printf("hbDNN/UCP simulator selftest (simulator %s, UCP %s)\n", hbDNNGetVersion(), hbUCPGetVersion());
  hbSimSetLatencyUs(-1);
  hbSimSetCoreCount(1);
  test_versions();
  test_validation(quick);
  Buf b = gen(k_models, NMODELS);
  const char *path = write_tmp(&b);
  free(b.p);
  hbDNNPackedHandle_t pk = NULL;
  const char *files[] = {path};
  CHECK_RC(hbDNNInitializeFromFiles(&pk, files, 1), 0);
  unlink(path);
  test_properties(pk);
  test_infer(pk);
  test_scheduling(pk);
  test_limits(pk);
  test_release_in_use();
  CHECK_RC(hbDNNRelease(pk), 0);
  CHECK_RC(hbDNNRelease(pk), HB_DNN_INVALID_PACKED_DNN_HANDLE);
  CHECK(ctr("tasks_live") == 0);
  CHECK(ctr("mem_live") == 0);
  printf("%s: %d checks, %d failed\n", g_fail ? "FAILED" : "OK", g_checks, g_fail);
  return g_fail ? 1 : 0;
}
