/* Selftest of the ACL simulator (zig build sim-test): every documented behaviour of
 * tests/sim/acl/FORMAT.md against the classic libascendcl.so, then (argv[1] = the directory of
 * libacl_rt.so + libacl_mdl.so) the CANN 9 split. Exit 0 = pass. Simulator only: nothing here
 * says anything about a real Ascend device. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_acl.h"

static int g_fail;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
      g_fail = 1;                                                          \
    }                                                                      \
  } while (0)
#define EQ(a, b)                                                                                    \
  do {                                                                                              \
    long long _a = (long long)(a), _b = (long long)(b);                                             \
    if (_a != _b) {                                                                                 \
      const char *_m = aclGetRecentErrMsg();                                                        \
      fprintf(stderr, "FAIL %s:%d: %s = %lld, want %lld (%s)\n", __FILE__, __LINE__, #a, _a, _b,   \
              _m ? _m : "no message");                                                              \
      g_fail = 1;                                                                                   \
    }                                                                                               \
  } while (0)

/* ---- a tiny ACLSIM1 writer (FORMAT.md section 1) ----------------------------------------- */

typedef struct {
  uint8_t b[8192];
  size_t n;
} Img;

static void put(Img *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n), m->n += n; }
static void u32(Img *m, uint32_t v) { put(m, &v, 4); }
static void i32(Img *m, int32_t v) { put(m, &v, 4); }
static void u64(Img *m, uint64_t v) { put(m, &v, 8); }
static void i64(Img *m, int64_t v) { put(m, &v, 8); }
static void f64(Img *m, double v) { put(m, &v, 8); }
static void name(Img *m, const char *s) {
  uint16_t n = (uint16_t)strlen(s);
  put(m, &n, 2), put(m, s, n);
}

static void header(Img *m, uint32_t nin, uint32_t nout, uint32_t latUs, uint32_t kind, uint32_t gears) {
  m->n = 0;
  put(m, "IMOD", 4), put(m, "ACLSIM1\0", 8);
  u32(m, 1), u64(m, 0), u32(m, nin), u32(m, nout), u32(m, latUs), u32(m, 0), u32(m, kind), u32(m, gears);
}
static void tensor(Img *m, const char *nm, int32_t dt, int32_t fmt, int rank, const int64_t *dims) {
  name(m, nm), i32(m, dt), i32(m, fmt), i32(m, rank);
  for (int i = 0; i < rank; i++) i64(m, dims[i]);
}
static void output(Img *m, const char *nm, int32_t dt, int rank, const int64_t *dims, int32_t op, int32_t src, double a, double b) {
  tensor(m, nm, dt, ACL_FORMAT_ND, rank, dims);
  i32(m, op), i32(m, src), f64(m, a), f64(m, b);
}
static void finish(Img *m) { uint64_t n = m->n; memcpy(m->b + 16, &n, 8); }

static int64_t live(int which) {
  int64_t c[SIMACL_LIVE_COUNT];
  simacl_live_counts(c, SIMACL_LIVE_COUNT);
  return c[which];
}

static int msg_has(const char *needle) {
  const char *m = aclGetRecentErrMsg();
  return m && strstr(m, needle) && strstr(m, "simulator");
}

/* ---- helpers over the API ---------------------------------------------------------------- */

typedef struct {
  aclmdlDataset *set;
  aclDataBuffer *buf[8];
  void *dev[8];
  size_t n;
} Set;

static Set make_set(aclmdlDesc *d, int output, int host) {
  Set s = {aclmdlCreateDataset(), {0}, {0}, 0};
  s.n = output ? aclmdlGetNumOutputs(d) : aclmdlGetNumInputs(d);
  for (size_t i = 0; i < s.n; i++) {
    size_t sz = output ? aclmdlGetOutputSizeByIndex(d, i) : aclmdlGetInputSizeByIndex(d, i);
    if (host) CHECK(aclrtMallocHost(&s.dev[i], sz) == 0);
    else CHECK(aclrtMalloc(&s.dev[i], sz, ACL_MEM_MALLOC_HUGE_FIRST) == 0);
    s.buf[i] = aclCreateDataBuffer(s.dev[i], sz);
    CHECK(aclmdlAddDatasetBuffer(s.set, s.buf[i]) == 0);
  }
  return s;
}

static void free_set(Set *s, int host) {
  for (size_t i = 0; i < s->n; i++) {
    EQ(aclDestroyDataBuffer(s->buf[i]), 0);
    EQ(host ? aclrtFreeHost(s->dev[i]) : aclrtFree(s->dev[i]), 0);
  }
  EQ(aclmdlDestroyDataset(s->set), 0);
}

static float f16(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), e - 25);
  return (h & 0x8000) ? -v : v;
}

/* ---- threads ----------------------------------------------------------------------------- */

typedef struct {
  aclrtContext ctx;
  uint32_t id;
  const aclmdlDataset *in;
  aclmdlDataset *out;
  aclError rc;
} ExecArg;

static void *exec_thread(void *p) {
  ExecArg *a = p;
  aclrtSetCurrentContext(a->ctx);
  a->rc = aclmdlExecute(a->id, a->in, a->out);
  aclGetRecentErrMsg();
  return NULL;
}

static void *no_ctx_thread(void *p) {
  void *dev = NULL;
  int *ok = p;
  *ok = aclGetRecentErrMsg() == NULL; /* the main thread's message is not visible here */
  *ok &= aclrtMalloc(&dev, 16, ACL_MEM_MALLOC_HUGE_FIRST) == ACL_ERROR_RT_CONTEXT_NULL;
  *ok &= aclmdlExecute(1, NULL, NULL) == ACL_ERROR_RT_CONTEXT_NULL;
  *ok &= msg_has("no current context");
  return NULL;
}

/* ---- the CANN 9 split -------------------------------------------------------------------- */

static void check_split(const char *dir) {
  char p1[1024], p2[1024];
  snprintf(p1, sizeof p1, "%s/libacl_rt.so", dir);
  snprintf(p2, sizeof p2, "%s/libacl_mdl.so", dir);
  /* DEEPBIND: libacl_mdl.so must bind to its own libacl_rt.so, not to the libascendcl.so this
   * program links (a separate simulator instance). */
  void *rt = dlopen(p1, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  void *mdl = dlopen(p2, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  CHECK(rt && mdl);
  if (!rt || !mdl) return;
  CHECK(dlsym(rt, "aclrtMalloc") && dlsym(rt, "aclInit") && dlsym(rt, "aclCreateDataBuffer") && dlsym(rt, "aclGetRecentErrMsg"));
  CHECK(dlsym(mdl, "aclmdlExecute") && dlsym(mdl, "aclmdlLoadFromFile"));
  /* Each half exports only its own vendor functions (dlsym on a handle also searches its deps, so
   * look at the rt half, which has none). */
  CHECK(!dlsym(rt, "aclmdlExecute"));
  aclError (*init)(const char *) = (aclError (*)(const char *))dlsym(rt, "aclInit");
  aclError (*setdev)(int32_t) = (aclError (*)(int32_t))dlsym(rt, "aclrtSetDevice");
  aclError (*loadmem)(const void *, size_t, uint32_t *) = (aclError (*)(const void *, size_t, uint32_t *))dlsym(mdl, "aclmdlLoadFromMem");
  Img m;
  header(&m, 1, 1, 0, 0, 0);
  int64_t dims[1] = {4};
  tensor(&m, "x", ACL_FLOAT, ACL_FORMAT_ND, 1, dims);
  output(&m, "y", ACL_FLOAT, 1, dims, 0, 0, 1, 0);
  finish(&m);
  uint32_t id = 0;
  EQ(loadmem(m.b, m.n, &id), ACL_ERROR_UNINITIALIZE); /* the model half sees the rt half's state */
  EQ(init(NULL), 0);                                   /* its own instance: not yet initialised */
  EQ(loadmem(m.b, m.n, &id), ACL_ERROR_RT_CONTEXT_NULL);
  EQ(setdev(0), 0);
  EQ(loadmem(m.b, m.n, &id), 0);
  CHECK(id >= 1);
  /* Left loaded on purpose: the instance dies with the process. */
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  /* Before aclInit. */
  EQ(aclrtSetDevice(0), ACL_ERROR_UNINITIALIZE);
  CHECK(msg_has("aclInit"));
  CHECK(aclGetRecentErrMsg() == NULL); /* cleared once read */
  EQ(aclFinalize(), ACL_ERROR_UNINITIALIZE);
  EQ(aclInit(NULL), 0);
  EQ(aclInit(NULL), ACL_ERROR_REPEAT_INITIALIZE);
  EQ(live(SIMACL_LIVE_INIT), 1);
  char ver[128];
  EQ(aclsysGetVersionStr("runtime", ver), 0);
  CHECK(strstr(ver, "simulator") != NULL);

  /* No current context yet. */
  void *dev = NULL;
  uint32_t id = 0;
  EQ(aclrtMalloc(&dev, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
  EQ(aclmdlLoadFromMem("IMOD", 4, &id), ACL_ERROR_RT_CONTEXT_NULL);
  aclGetRecentErrMsg();

  /* Devices and contexts. */
  uint32_t ndev = 0;
  EQ(aclrtGetDeviceCount(&ndev), 0);
  EQ(ndev, 1);
  EQ(aclrtSetDevice(1), ACL_ERROR_RT_INVALID_DEVICEID);
  CHECK(msg_has("device 1"));
  EQ(aclrtSetDevice(0), 0);
  aclrtContext ctx = NULL;
  EQ(aclrtGetCurrentContext(&ctx), 0);
  CHECK(ctx != NULL);
  aclrtRunMode mode = ACL_DEVICE;
  EQ(aclrtGetRunMode(&mode), 0);
  EQ(mode, ACL_HOST);
  aclrtContext ctx2 = NULL;
  EQ(aclrtCreateContext(&ctx2, 0), 0);
  EQ(live(SIMACL_LIVE_CONTEXTS), 2);
  EQ(aclrtDestroyContext(ctx2), 0);
  EQ(aclrtGetCurrentContext(&ctx2), ACL_ERROR_RT_CONTEXT_NULL); /* the destroyed one was current */
  EQ(aclrtSetCurrentContext(ctx), 0);
  EQ(aclrtDestroyContext(ctx), ACL_ERROR_INVALID_PARAM);        /* a default context */
  aclGetRecentErrMsg();

  /* A thread without a context; the message is per thread. */
  EQ(aclrtSetDevice(7), ACL_ERROR_RT_INVALID_DEVICEID); /* leaves a message on this thread */
  pthread_t th;
  int ok = 0;
  pthread_create(&th, NULL, no_ctx_thread, &ok);
  pthread_join(th, NULL);
  CHECK(ok);
  CHECK(msg_has("device 7"));

  /* Memory: rounding, Memcpy rules, host memory is not device memory in ACL_HOST mode. */
  int64_t bytes0 = live(SIMACL_LIVE_DEV_BYTES);
  void *d1, *d2, *d3, *h1;
  EQ(aclrtMalloc(&d1, 1, ACL_MEM_MALLOC_HUGE_FIRST), 0);
  EQ(live(SIMACL_LIVE_DEV_BYTES) - bytes0, 64);
  EQ(aclrtMalloc(&d2, 32, ACL_MEM_MALLOC_HUGE_FIRST), 0);
  EQ(live(SIMACL_LIVE_DEV_BYTES) - bytes0, 128);
  EQ(aclrtMalloc(&d3, 33, ACL_MEM_MALLOC_NORMAL_ONLY), 0);
  EQ(live(SIMACL_LIVE_DEV_BYTES) - bytes0, 224);
  EQ(aclrtMallocHost(&h1, 64), 0);
  EQ(live(SIMACL_LIVE_HOST_BUFFERS), 1);
  memset(h1, 7, 64);
  EQ(aclrtMemcpy(d2, 32, h1, 33, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID); /* destMax < count */
  CHECK(msg_has("destMax"));
  EQ(aclrtMemcpy(d2, 32, h1, 32, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  EQ(aclrtMemcpy(d3, 33, d2, 32, ACL_MEMCPY_DEVICE_TO_DEVICE), 0);
  EQ(aclrtMemcpy(d2, 64, h1, 64, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID); /* past the allocation */
  EQ(aclrtMemcpy(h1, 64, d2, 32, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID); /* kind mismatch */
  aclGetRecentErrMsg();
  memset(h1, 0, 64);
  EQ(aclrtMemcpy(h1, 64, d3, 32, ACL_MEMCPY_DEFAULT), 0);
  EQ(((uint8_t *)h1)[31], 7);
  EQ(aclrtFree(d1), 0);
  EQ(aclrtFree(d1), ACL_ERROR_RT_PARAM_INVALID); /* double free */
  aclGetRecentErrMsg();
  EQ(aclrtFree(d2), 0);
  EQ(aclrtFree(d3), 0);
  EQ(aclrtFreeHost(h1), 0);
  EQ(live(SIMACL_LIVE_DEV_BYTES), bytes0);

  /* A static model with every kind of output. */
  Img m;
  int64_t d23[2] = {2, 3}, d6[1] = {6};
  header(&m, 2, 4, 0, 0, 0);
  tensor(&m, "x", ACL_FLOAT, ACL_FORMAT_NCHW, 2, d23);
  tensor(&m, "q", ACL_INT8, ACL_FORMAT_ND, 1, d6);
  output(&m, "half", ACL_FLOAT16, 2, d23, 0, 0, 2.0, 1.0);
  output(&m, "sum", ACL_INT32, 1, d6, 1, 0, 1.0, 0.0);
  output(&m, "bf", ACL_BF16, 1, d6, 0, 1, 0.5, 0.0);
  output(&m, "idx", ACL_UINT8, 1, d6, 0, -1, 1.0, 250.0);
  finish(&m);
  EQ(simacl_parse_model(m.b, m.n), 0);
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  CHECK(id >= 1);
  EQ(live(SIMACL_LIVE_MODELS), 1);
  aclmdlDesc *desc = aclmdlCreateDesc();
  EQ(aclmdlGetDesc(desc, id + 100), ACL_ERROR_INVALID_MODEL_ID);
  aclGetRecentErrMsg();
  EQ(aclmdlGetDesc(desc, id), 0);
  EQ(aclmdlGetNumInputs(desc), 2);
  EQ(aclmdlGetNumOutputs(desc), 4);
  EQ(aclmdlGetInputSizeByIndex(desc, 0), 24);
  EQ(aclmdlGetOutputSizeByIndex(desc, 0), 12);
  EQ(aclmdlGetInputDataType(desc, 1), ACL_INT8);
  EQ(aclmdlGetOutputDataType(desc, 2), ACL_BF16);
  EQ(aclmdlGetInputFormat(desc, 0), ACL_FORMAT_NCHW);
  EQ(aclmdlGetInputDataType(desc, 9), ACL_DT_UNDEFINED);
  aclGetRecentErrMsg();
  CHECK(strcmp(aclmdlGetInputNameByIndex(desc, 1), "q") == 0);
  CHECK(strcmp(aclmdlGetOutputNameByIndex(desc, 3), "idx") == 0);
  size_t idx = 9;
  EQ(aclmdlGetInputIndexByName(desc, "q", &idx), 0);
  EQ(idx, 1);
  aclmdlIODims dims;
  EQ(aclmdlGetInputDims(desc, 0, &dims), 0);
  EQ(dims.dimCount, 2);
  EQ(dims.dims[1], 3);
  CHECK(strcmp(dims.name, "x") == 0);

  /* Host buffers are refused at Execute in ACL_HOST mode. */
  Set hin = make_set(desc, 0, 1), hout = make_set(desc, 1, 1);
  int64_t nd0 = simacl_counter("not_device_memory");
  EQ(aclmdlExecute(id, hin.set, hout.set), ACL_ERROR_INVALID_PARAM);
  CHECK(msg_has("not aclrtMalloc device memory"));
  EQ(simacl_counter("not_device_memory") - nd0, 1);
  free_set(&hin, 1);
  free_set(&hout, 1);

  Set in = make_set(desc, 0, 0), out = make_set(desc, 1, 0);
  float x[6] = {0, 1, -1, 0.5f, 100, -3};
  int8_t q[6] = {1, -2, 3, -128, 127, 0};
  EQ(aclrtMemcpy(in.dev[0], 24, x, 24, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  EQ(aclrtMemcpy(in.dev[1], 6, q, 6, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  /* Dataset counts and sizes. */
  aclmdlDataset *shortSet = aclmdlCreateDataset();
  aclmdlAddDatasetBuffer(shortSet, in.buf[0]);
  EQ(aclmdlExecute(id, shortSet, out.set), ACL_ERROR_MODEL_INPUT_NOT_MATCH);
  EQ(aclmdlExecute(id, in.set, shortSet), ACL_ERROR_MODEL_OUTPUT_NOT_MATCH);
  aclDataBuffer *small = aclCreateDataBuffer(in.dev[1], 5);
  aclmdlDataset *smallSet = aclmdlCreateDataset();
  aclmdlAddDatasetBuffer(smallSet, in.buf[0]);
  aclmdlAddDatasetBuffer(smallSet, small);
  EQ(aclmdlExecute(id, smallSet, out.set), ACL_ERROR_INVALID_PARAM);
  CHECK(msg_has("needed"));
  EQ(aclmdlDestroyDataset(shortSet), 0);
  EQ(aclmdlDestroyDataset(smallSet), 0);
  EQ(aclDestroyDataBuffer(small), 0);
  /* Static model: no gears. */
  EQ(aclmdlSetDynamicBatchSize(id, in.set, 1, 1), ACL_ERROR_MODEL_NOT_DYNAMIC);
  aclGetRecentErrMsg();
  EQ(aclmdlExecute(id, in.set, out.set), 0);
  uint16_t half[6], bf[6];
  int32_t sum[6];
  uint8_t ix[6];
  EQ(aclrtMemcpy(half, 12, out.dev[0], 12, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  EQ(aclrtMemcpy(sum, 24, out.dev[1], 24, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  EQ(aclrtMemcpy(bf, 12, out.dev[2], 12, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  EQ(aclrtMemcpy(ix, 6, out.dev[3], 6, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  const int32_t wantSum[6] = {1, -1, 2, -128, 227, -3}; /* 0.5 - 128 = -127.5: half to even */
  const uint16_t wantBf[6] = {0x3f00, 0xbf80, 0x3fc0, 0xc280, 0x427e, 0}; /* 0.5 * q */
  for (int i = 0; i < 6; i++) {
    CHECK(f16(half[i]) == 2 * x[i] + 1);
    EQ(sum[i], wantSum[i]);
    EQ(bf[i], wantBf[i]);
    EQ(ix[i], i + 250 > 255 ? 255 : i + 250); /* element index + 250, saturated */
  }

  /* Unload refused while running elsewhere is covered by the async part; unload now. */
  EQ(aclmdlUnload(id), 0);
  EQ(aclmdlUnload(id), ACL_ERROR_INVALID_MODEL_ID);
  EQ(aclmdlExecute(id, in.set, out.set), ACL_ERROR_INVALID_MODEL_ID);
  aclGetRecentErrMsg();
  CHECK(strcmp(aclmdlGetOutputNameByIndex(desc, 1), "sum") == 0); /* names owned by the desc */
  EQ(aclmdlDestroyDesc(desc), 0);
  free_set(&in, 0);
  free_set(&out, 0);

  /* Dynamic batch. */
  int64_t dyn[2] = {-1, 4};
  header(&m, 1, 1, 0, 1, 3);
  u64(&m, 1), u64(&m, 2), u64(&m, 4);
  tensor(&m, "x", ACL_FLOAT, ACL_FORMAT_ND, 2, dyn);
  output(&m, "y", ACL_INT64, 2, dyn, 0, 0, 3.0, 0.0);
  finish(&m);
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  desc = aclmdlCreateDesc();
  EQ(aclmdlGetDesc(desc, id), 0);
  EQ(aclmdlGetNumInputs(desc), 2);
  CHECK(strcmp(aclmdlGetInputNameByIndex(desc, 1), ACL_DYNAMIC_TENSOR_NAME) == 0);
  EQ(aclmdlGetInputSizeByIndex(desc, 0), 4 * 4 * 4);
  EQ(aclmdlGetInputSizeByIndex(desc, 1), 8);
  EQ(aclmdlGetInputDims(desc, 0, &dims), 0);
  EQ(dims.dims[0], -1);
  aclmdlBatch batch;
  EQ(aclmdlGetDynamicBatch(desc, &batch), 0);
  EQ(batch.batchCount, 3);
  EQ(batch.batch[2], 4);
  aclmdlHW hw;
  EQ(aclmdlGetDynamicHW(desc, (size_t)-1, &hw), 0);
  EQ(hw.hwCount, 0);
  size_t gears = 0;
  EQ(aclmdlGetInputDynamicGearCount(desc, (size_t)-1, &gears), 0);
  EQ(gears, 3);
  in = make_set(desc, 0, 0), out = make_set(desc, 1, 0);
  float xb[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EQ(aclrtMemcpy(in.dev[0], 64, xb, 32, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  EQ(aclmdlExecute(id, in.set, out.set), ACL_ERROR_INVALID_PARAM); /* no gear set */
  CHECK(msg_has("gear"));
  EQ(aclmdlSetDynamicBatchSize(id, in.set, 1, 3), ACL_ERROR_INVALID_PARAM);
  EQ(aclmdlSetDynamicBatchSize(id, in.set, 0, 2), ACL_ERROR_INVALID_PARAM); /* not the gear input */
  EQ(aclmdlSetDynamicHWSize(id, in.set, 1, 2, 2), ACL_ERROR_INVALID_PARAM); /* the other kind */
  aclGetRecentErrMsg();
  EQ(aclmdlGetCurOutputDims(desc, 0, &dims), 0);
  EQ(dims.dims[0], 4); /* no gear yet: the largest */
  EQ(aclmdlSetDynamicBatchSize(id, in.set, 1, 2), 0);
  EQ(aclmdlGetCurOutputDims(desc, 0, &dims), 0);
  EQ(dims.dims[0], 2);
  EQ(dims.dims[1], 4);
  EQ(aclmdlExecute(id, in.set, out.set), 0);
  int64_t yb[8];
  EQ(aclrtMemcpy(yb, 64, out.dev[0], 64, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  EQ(yb[0], 3);
  EQ(yb[7], 24);
  free_set(&in, 0);
  free_set(&out, 0);
  EQ(aclmdlDestroyDesc(desc), 0);
  EQ(aclmdlUnload(id), 0);

  /* Dynamic HW. */
  int64_t nchw[4] = {1, 1, -1, -1};
  header(&m, 1, 1, 0, 2, 2);
  u64(&m, 2), u64(&m, 3), u64(&m, 4), u64(&m, 1);
  tensor(&m, "img", ACL_UINT8, ACL_FORMAT_NCHW, 4, nchw);
  output(&m, "o", ACL_FLOAT, 4, nchw, 0, 0, 1.0, 0.5);
  finish(&m);
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  desc = aclmdlCreateDesc();
  EQ(aclmdlGetDesc(desc, id), 0);
  EQ(aclmdlGetDynamicHW(desc, (size_t)-1, &hw), 0);
  EQ(hw.hwCount, 2);
  EQ(hw.hw[1][0], 4);
  EQ(aclmdlGetDynamicBatch(desc, &batch), 0);
  EQ(batch.batchCount, 0);
  EQ(aclmdlGetInputSizeByIndex(desc, 0), 6);
  EQ(aclmdlGetInputSizeByIndex(desc, 1), 16);
  in = make_set(desc, 0, 0), out = make_set(desc, 1, 0);
  EQ(aclmdlSetDynamicBatchSize(id, in.set, 1, 2), ACL_ERROR_INVALID_PARAM);
  EQ(aclmdlSetDynamicHWSize(id, in.set, 1, 3, 2), ACL_ERROR_INVALID_PARAM);
  aclGetRecentErrMsg();
  EQ(aclmdlSetDynamicHWSize(id, in.set, 1, 4, 1), 0);
  EQ(aclmdlGetCurOutputDims(desc, 0, &dims), 0);
  EQ(dims.dims[2], 4);
  EQ(dims.dims[3], 1);
  uint8_t img[4] = {10, 20, 30, 40};
  EQ(aclrtMemcpy(in.dev[0], 6, img, 4, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  EQ(aclmdlExecute(id, in.set, out.set), 0);
  float o[4];
  EQ(aclrtMemcpy(o, 16, out.dev[0], 16, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  CHECK(o[0] == 10.5f && o[3] == 40.5f);
  free_set(&in, 0);
  free_set(&out, 0);
  EQ(aclmdlDestroyDesc(desc), 0);
  EQ(aclmdlUnload(id), 0);

  /* A slow model: async, timeouts, pinning, concurrency detection. */
  int64_t d4[1] = {4};
  header(&m, 1, 1, 100000, 0, 0);
  tensor(&m, "x", ACL_FLOAT, ACL_FORMAT_ND, 1, d4);
  output(&m, "y", ACL_FLOAT, 1, d4, 0, 0, -1.0, 0.0);
  finish(&m);
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  desc = aclmdlCreateDesc();
  EQ(aclmdlGetDesc(desc, id), 0);
  in = make_set(desc, 0, 0), out = make_set(desc, 1, 0);
  Set out2 = make_set(desc, 1, 0);
  aclrtStream st;
  EQ(aclrtCreateStream(&st), 0);
  EQ(live(SIMACL_LIVE_STREAMS), 1);
  EQ(aclmdlExecuteAsync(id, in.set, out.set, st), 0);
  EQ(live(SIMACL_LIVE_TASKS), 1);
  EQ(aclrtSynchronizeStreamWithTimeout(st, 5), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  CHECK(msg_has("still running"));
  EQ(aclrtFree(out.dev[0]), ACL_ERROR_RT_PARAM_INVALID); /* pinned by the queued run */
  EQ(simacl_counter("free_in_use"), 1);
  EQ(aclmdlUnload(id), ACL_ERROR_FAILURE);
  aclGetRecentErrMsg();
  EQ(aclrtSynchronizeStreamWithTimeout(st, -1), 0);
  EQ(live(SIMACL_LIVE_TASKS), 0);
  /* Two threads, one model id, no lock: the simulator detects it. */
  ExecArg a1 = {ctx, id, in.set, out.set, 0}, a2 = {ctx, id, in.set, out2.set, 0};
  pthread_t t1, t2;
  int64_t clash0 = simacl_counter("concurrent_exec");
  pthread_create(&t1, NULL, exec_thread, &a1);
  pthread_create(&t2, NULL, exec_thread, &a2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  EQ(simacl_counter("concurrent_exec") - clash0, 1);
  CHECK((a1.rc == 0) != (a2.rc == 0));
  CHECK(a1.rc == ACL_ERROR_GE_FAILURE || a2.rc == ACL_ERROR_GE_FAILURE);
  /* The same on two streams. */
  aclrtStream st2;
  EQ(aclrtCreateStream(&st2), 0);
  EQ(aclmdlExecuteAsync(id, in.set, out.set, st), 0);
  EQ(aclmdlExecuteAsync(id, in.set, out2.set, st2), 0);
  aclError r1 = aclrtSynchronizeStream(st), r2 = aclrtSynchronizeStream(st2);
  CHECK((r1 == 0) != (r2 == 0));
  EQ(simacl_counter("concurrent_exec") - clash0, 2);
  aclGetRecentErrMsg();

  /* Faults. */
  simacl_set_latency_us(0);
  simacl_inject_fault("aclrtMalloc", 2, ACL_ERROR_RT_MEMORY_ALLOCATION, 1);
  EQ(aclrtMalloc(&d1, 8, ACL_MEM_MALLOC_HUGE_FIRST), 0);
  EQ(aclrtMalloc(&d2, 8, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION);
  CHECK(msg_has("injected"));
  EQ(aclrtMalloc(&d2, 8, ACL_MEM_MALLOC_HUGE_FIRST), 0);
  simacl_inject_fault(NULL, 0, 0, 0);
  simacl_set_mem_cap(live(SIMACL_LIVE_DEV_BYTES) + 64);
  EQ(aclrtMalloc(&d3, 32, ACL_MEM_MALLOC_HUGE_FIRST), 0);
  void *d4p;
  EQ(aclrtMalloc(&d4p, 1, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION);
  CHECK(msg_has("cap"));
  simacl_set_mem_cap(0);
  EQ(aclrtFree(d1), 0);
  EQ(aclrtFree(d2), 0);
  EQ(aclrtFree(d3), 0);
  /* task fault and stall. */
  simacl_inject_fault("task", 1, 507011, 1);
  EQ(aclmdlExecuteAsync(id, in.set, out.set, st), 0);
  EQ(aclrtSynchronizeStream(st), 507011);
  simacl_inject_fault("stall", 1, 1, 1);
  EQ(aclmdlExecuteAsync(id, in.set, out.set, st), 0);
  EQ(aclrtSynchronizeStreamWithTimeout(st, 30), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EQ(simacl_counter("stalled_now"), 1);
  simacl_unstall();
  EQ(aclrtSynchronizeStream(st), 0);
  /* A device fault: everything fails until aclrtResetDevice; cleanup still works. */
  EQ(aclrtSetDevice(0), 0); /* a second reference: the reset below keeps the default context */
  simacl_inject_fault("stall", 1, 1, 1);
  EQ(aclmdlExecuteAsync(id, in.set, out.set, st), 0);
  for (int i = 0; i < 2000 && simacl_counter("stalled_now") == 0; i++) nanosleep(&(struct timespec){0, 1000000}, NULL);
  EQ(simacl_counter("stalled_now"), 1);
  simacl_device_fault(ACL_ERROR_RT_DEV_SETUP_ERROR);
  EQ(aclrtSynchronizeStream(st), ACL_ERROR_RT_DEV_SETUP_ERROR);
  EQ(aclrtMalloc(&d1, 8, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_DEV_SETUP_ERROR);
  EQ(aclmdlExecute(id, in.set, out.set), ACL_ERROR_RT_DEV_SETUP_ERROR);
  EQ(live(SIMACL_LIVE_TASKS), 0);
  EQ(aclrtResetDevice(0), 0); /* clears the fault */
  EQ(aclmdlExecute(id, in.set, out.set), 0);
  simacl_inject_fault(NULL, 0, 0, 0);
  /* NULL strings. */
  EQ(aclrtSetDevice(9), ACL_ERROR_RT_INVALID_DEVICEID);
  simacl_null_strings(2);
  CHECK(aclGetRecentErrMsg() == NULL);
  simacl_null_strings(1);
  EQ(aclsysGetVersionStr("runtime", ver), ACL_ERROR_INVALID_FILE);
  simacl_null_strings(0);
  aclGetRecentErrMsg();
  /* Jitter stays within its bound. */
  simacl_set_latency_us(1000);
  simacl_set_jitter_us(20000, 42);
  struct timespec s0, s1;
  clock_gettime(CLOCK_MONOTONIC, &s0);
  EQ(aclmdlExecute(id, in.set, out.set), 0);
  clock_gettime(CLOCK_MONOTONIC, &s1);
  double ms = (double)(s1.tv_sec - s0.tv_sec) * 1e3 + (double)(s1.tv_nsec - s0.tv_nsec) / 1e6;
  CHECK(ms >= 1.0 && ms < 500.0);
  simacl_set_jitter_us(0, 0);
  simacl_set_latency_us(-1);

  EQ(aclrtDestroyStream(st), 0);
  EQ(aclrtDestroyStream(st2), 0);
  free_set(&in, 0);
  free_set(&out, 0);
  free_set(&out2, 0);
  EQ(aclmdlDestroyDesc(desc), 0);
  EQ(aclmdlUnload(id), 0);

  /* Loader errors. */
  EQ(aclmdlLoadFromFile("/nonexistent/model.om", &id), ACL_ERROR_READ_MODEL_FAILURE);
  uint8_t om[64] = {'I', 'M', 'O', 'D'};
  EQ(aclmdlLoadFromMem(om, sizeof om, &id), ACL_ERROR_PARSE_MODEL);
  CHECK(msg_has("real .om"));
  header(&m, 1, 1, 0, 0, 0);
  tensor(&m, "x", ACL_FLOAT, ACL_FORMAT_ND, 1, d4);
  output(&m, "y", ACL_FLOAT, 1, d4, 0, 0, 1.0, 0.0);
  finish(&m);
  for (size_t cut = 0; cut < m.n; cut++) CHECK(simacl_parse_model(m.b, cut) != 0);
  srand(1);
  for (int i = 0; i < 20000; i++) { /* random flips: must not crash */
    Img f = m;
    f.b[12 + (size_t)rand() % (m.n - 12)] ^= (uint8_t)(1 + rand() % 255);
    (void)simacl_parse_model(f.b, f.n);
  }
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  EQ(aclmdlUnload(id), 0);
  aclGetRecentErrMsg();

  /* ACL_DEVICE run mode: host memory is device memory (switchable only with no device buffer live). */
  simacl_set_run_mode(ACL_DEVICE);
  EQ(aclrtGetRunMode(&mode), 0);
  EQ(mode, ACL_DEVICE);
  EQ(aclrtMalloc(&d1, 16, ACL_MEM_MALLOC_HUGE_FIRST | 0x100), 0);
  ((uint8_t *)d1)[3] = 9; /* dereferenceable in this mode */
  uint8_t back[16] = {0};
  EQ(aclrtMemcpy(back, 16, d1, 16, ACL_MEMCPY_DEVICE_TO_HOST), 0);
  EQ(back[3], 9);
  EQ(aclrtFree(d1), 0);
  EQ(aclmdlLoadFromMem(m.b, m.n, &id), 0);
  float hx[4] = {1, 2, 3, 4}, hy[4] = {0};
  aclDataBuffer *bx = aclCreateDataBuffer(hx, sizeof hx), *by = aclCreateDataBuffer(hy, sizeof hy);
  aclmdlDataset *sx = aclmdlCreateDataset(), *sy = aclmdlCreateDataset();
  aclmdlAddDatasetBuffer(sx, bx);
  aclmdlAddDatasetBuffer(sy, by);
  EQ(aclmdlExecute(id, sx, sy), 0); /* plain host buffers are fine here */
  CHECK(hy[0] == 1 && hy[3] == 4);
  aclmdlDestroyDataset(sx), aclmdlDestroyDataset(sy), aclDestroyDataBuffer(bx), aclDestroyDataBuffer(by);
  EQ(aclmdlUnload(id), 0);
  simacl_set_run_mode(ACL_HOST);
  EQ(aclrtGetRunMode(&mode), 0);
  EQ(mode, ACL_HOST);
  EQ(aclrtMalloc(&d1, 16, 0x1000ff), ACL_ERROR_INVALID_PARAM); /* bad policy */
  aclGetRecentErrMsg();

  /* Everything released. */
  EQ(live(SIMACL_LIVE_MODELS), 0);
  EQ(live(SIMACL_LIVE_DEV_BUFFERS), 0);
  EQ(live(SIMACL_LIVE_HOST_BUFFERS), 0);
  EQ(live(SIMACL_LIVE_DATASETS), 0);
  EQ(live(SIMACL_LIVE_DATA_BUFFERS), 0);
  EQ(live(SIMACL_LIVE_DESCS), 0);
  EQ(live(SIMACL_LIVE_STREAMS), 0);
  EQ(aclrtResetDevice(0), 0);
  EQ(live(SIMACL_LIVE_DEVICES), 0);
  EQ(live(SIMACL_LIVE_CONTEXTS), 0);
  EQ(aclFinalize(), 0);
  EQ(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);
  EQ(aclInit(NULL), ACL_ERROR_REPEAT_INITIALIZE); /* once per process */
  aclGetRecentErrMsg();

  if (argc > 1) check_split(argv[1]);
  printf("sim_acl_selftest: %s\n", g_fail ? "FAILED" : "ok");
  return g_fail;
}
