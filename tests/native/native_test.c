/*
 * native_test: drives the er_* ABI (shim/include/edgerun.h) directly, without a JS runtime, so
 * the shim can run under AddressSanitizer + UndefinedBehaviorSanitizer and valgrind.
 *
 *   native_test SIM_DIR ORT_LIB ONNX_MODEL [ACL_SIM_DIR]
 *     SIM_DIR     directory of the hbDNN/UCP simulator (libhbucp.so + libdnn.so, tests/sim/)
 *     ACL_SIM_DIR directory of the AscendCL simulator's libascendcl.so (tests/sim/acl/)
 *     ORT_LIB     onnxruntime-node's libonnxruntime.so.1
 *     ONNX_MODEL  the PaddleOCR text-direction classifier (x: [-1,3,48,192] -> [-1,2] softmax)
 *
 * The hbdnn half runs against the simulator only (never a board). Its model files are written
 * here, following tests/sim/FORMAT.md. Prints one line per failed check and, at the end,
 * "native: N checks, N failed"; exits 1 if any check failed.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include "edgerun.h"

static int checks, failures;
static char tmp_dir[256];

static void check_at(int ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_at(int ok, int line, const char *fmt, ...) {
  checks++;
  if (ok) return;
  failures++;
  char err[512];
  er_last_error(err, sizeof err);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL native_test.c:%d: ", line);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (last error: %s)\n", err);
}
#define CHECK(cond, ...) check_at((cond) ? 1 : 0, __LINE__, __VA_ARGS__)
/* A call's status must be `want`; names the call in the message. */
#define EXPECT_RC(call, want)                                                                            \
  do {                                                                                                   \
    int32_t rc_ = (call);                                                                                \
    check_at(rc_ == (want), __LINE__, "%s returned %d, expected %d", #call, (int)rc_, (int)(want));      \
  } while (0)
/* Fatal setup steps: without them the rest of a section means nothing. */
#define REQUIRE_OK(call)                                                                                 \
  do {                                                                                                   \
    int32_t rc_ = (call);                                                                                \
    check_at(rc_ == ER_OK, __LINE__, "%s returned %d", #call, (int)rc_);                                  \
    if (rc_ != ER_OK) return;                                                                            \
  } while (0)

/* ---- small byte writer for HBSIM1 simulator model files ---------------------------------- */

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
}
static void u16(bytes *b, uint16_t v) { put(b, &v, 2); }
static void u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void i32(bytes *b, int32_t v) { put(b, &v, 4); }
static void i64(bytes *b, int64_t v) { put(b, &v, 8); }
static void f32(bytes *b, float v) { put(b, &v, 4); }
static void f64(bytes *b, double v) { put(b, &v, 8); }
static void str(bytes *b, const char *s) {
  u16(b, (uint16_t)strlen(s));
  put(b, s, strlen(s));
}

enum { S8 = 2, U8 = 3, F16 = 4, F32 = 7 };

typedef struct sim_tensor {
  const char *name;
  int32_t dtype, rank;
  int32_t shape[4];
  int64_t stride[4];
  int64_t aligned;
  int32_t quant_axis;
  uint32_t n_scales;
  float scales[4];
  int32_t zps[4]; /* n_scales of them when has_zp */
  int has_zp;
  int32_t source; /* outputs */
  double a, b;
} sim_tensor;

static void sim_put_tensor(bytes *b, const sim_tensor *t, int output) {
  str(b, t->name);
  i32(b, t->dtype);
  i32(b, t->rank);
  for (int i = 0; i < t->rank; i++) i32(b, t->shape[i]);
  for (int i = 0; i < t->rank; i++) i64(b, t->stride[i]);
  i64(b, t->aligned);
  i32(b, t->n_scales ? 1 : 0);
  i32(b, t->quant_axis);
  i32(b, (int32_t)t->n_scales);
  for (uint32_t i = 0; i < t->n_scales; i++) f32(b, t->scales[i]);
  i32(b, t->has_zp ? (int32_t)t->n_scales : 0);
  for (uint32_t i = 0; t->has_zp && i < t->n_scales; i++) i32(b, t->zps[i]);
  u32(b, 0); /* dynStrideAlign */
  if (output) {
    i32(b, t->source);
    f64(b, t->a);
    f64(b, t->b);
  }
}

typedef struct sim_model {
  const char *name;
  uint32_t latency_us, function_calls;
  uint32_t n_in, n_out;
  const sim_tensor *in, *out;
} sim_model;

/* A complete HBSIM1 file image of the given models (caller frees b->p). */
static bytes sim_file(const sim_model *models, uint32_t count) {
  bytes b = {0};
  put(&b, "HBSIM1\0\0", 8);
  u32(&b, 1);
  u32(&b, count);
  i64(&b, 0); /* fileSize, patched below */
  for (uint32_t m = 0; m < count; m++) {
    str(&b, models[m].name);
    u32(&b, 1);
    u32(&b, models[m].latency_us);
    u32(&b, models[m].function_calls);
    u32(&b, models[m].n_in);
    u32(&b, models[m].n_out);
    for (uint32_t i = 0; i < models[m].n_in; i++) sim_put_tensor(&b, &models[m].in[i], 0);
    for (uint32_t i = 0; i < models[m].n_out; i++) sim_put_tensor(&b, &models[m].out[i], 1);
  }
  uint64_t size = b.len;
  memcpy(b.p + 16, &size, 8);
  return b;
}

static const char *write_file(const char *name, const void *data, size_t len) {
  static char paths[16][512];
  static int next;
  char *path = paths[next++ % 16];
  snprintf(path, 512, "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len)) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
  return path;
}

/* The simulated models: exact affine maps (FORMAT.md section 2). */
static const sim_tensor affine_in[] = {{.name = "x", .dtype = F32, .rank = 2, .shape = {2, 3}, .stride = {12, 4},
                                        .aligned = 24, .quant_axis = -1}};
/* y = 2x + 1 through padded rows (16-byte row stride): the shim must depad. */
static const sim_tensor affine_out[] = {{.name = "y", .dtype = F32, .rank = 2, .shape = {2, 3}, .stride = {16, 4},
                                         .aligned = 32, .quant_axis = -1, .source = 0, .a = 2, .b = 1}};
/* Quantized S8 input (per-axis scales on dim 1) and output (per-tensor scale + zero point). */
static const sim_tensor quant_in[] = {{.name = "q", .dtype = S8, .rank = 2, .shape = {2, 3}, .stride = {3, 1},
                                       .aligned = 6, .quant_axis = 1, .n_scales = 3, .scales = {0.5f, 0.25f, 1.0f}}};
static const sim_tensor quant_out[] = {{.name = "o", .dtype = S8, .rank = 2, .shape = {2, 3}, .stride = {3, 1},
                                        .aligned = 6, .quant_axis = -1, .n_scales = 1, .scales = {0.5f}, .zps = {2},
                                        .has_zp = 1, .source = 0, .a = 1, .b = 0}};
/* Dynamic batch input (shape -1, stride -1); output counts elements (source -1). */
static const sim_tensor dyn_in[] = {{.name = "d", .dtype = F32, .rank = 2, .shape = {-1, 3}, .stride = {-1, 4},
                                     .aligned = 0, .quant_axis = -1}};
static const sim_tensor dyn_out[] = {{.name = "e", .dtype = F32, .rank = 1, .shape = {4}, .stride = {4},
                                      .aligned = 16, .quant_axis = -1, .source = -1, .a = 1, .b = 0}};

static const sim_model sim_models[] = {
    {"affine", 0, 1, 1, 1, affine_in, affine_out},
    {"quant", 0, 1, 1, 1, quant_in, quant_out},
    {"slow", 300000, 100, 1, 1, affine_in, affine_out},
    {"dyn", 0, 1, 1, 1, dyn_in, dyn_out},
};
enum { M_AFFINE, M_QUANT, M_SLOW, M_DYN, M_COUNT };

/* ---- the simulator's control API (tests/sim/FORMAT.md section 4) ------------------------- */

static int64_t (*sim_counter)(const char *name);
static void (*sim_set_latency)(int64_t us);
static void (*sim_hold)(int64_t max_us);

static void sim_control_open(const char *sim_dir) {
  char path[600];
  snprintf(path, sizeof path, "%s/libhbucp.so", sim_dir);
  void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    fprintf(stderr, "cannot open the simulator: %s\n", dlerror());
    exit(2);
  }
  void *s1 = dlsym(h, "hbSimCounter"), *s2 = dlsym(h, "hbSimSetLatencyUs"), *s3 = dlsym(h, "hbSimHold");
  memcpy(&sim_counter, &s1, sizeof s1);
  memcpy(&sim_set_latency, &s2, sizeof s2);
  memcpy(&sim_hold, &s3, sizeof s3);
  if (!sim_counter || !sim_set_latency || !sim_hold) {
    fprintf(stderr, "the simulator lacks its hbSim* control API\n");
    exit(2);
  }
  /* The handle stays open for the process: the shim's dlopen of the same file shares it. */
}

/* Waits (up to 10 s) until the simulator has no live task: an orphaned run has settled. */
static int64_t sim_wait_idle(void) {
  for (int i = 0; i < 1000 && sim_counter("tasks_live") != 0; i++) usleep(10000);
  return sim_counter("tasks_live");
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000u); }

/* ---- helpers ------------------------------------------------------------------------------ */

static int32_t rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static uint32_t rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static int64_t rd_i64(const uint8_t *p) { int64_t v; memcpy(&v, p, 8); return v; }

static int last_error_contains(const char *needle) {
  char err[1024];
  er_last_error(err, sizeof err);
  return strstr(err, needle) != NULL;
}

/* Waits for one completion tag (up to 10 s); 0 if none arrived. */
static uint32_t wait_tag(void) {
  uint32_t tag = 0;
  for (int i = 0; i < 100; i++) {
    int32_t n = er_completion_wait(&tag, 1, 100);
    if (n == 1) return tag;
  }
  return 0;
}

/* ---- sections ----------------------------------------------------------------------------- */

static void test_globals(void) {
  CHECK(er_abi_version() == ER_ABI_VERSION, "er_abi_version() = %u", er_abi_version());
  EXPECT_RC(er_backend_set_search_path(7, "/x"), ER_ERR_INVALID_ARGUMENT);
  char *long_path = malloc(5000);
  memset(long_path, 'a', 4999);
  long_path[4999] = 0;
  EXPECT_RC(er_backend_set_search_path(ER_BACKEND_ORT, long_path), ER_ERR_INVALID_ARGUMENT);
  free(long_path);
  EXPECT_RC(er_backend_set_search_path(ER_BACKEND_HBDNN, NULL), ER_OK);
  EXPECT_RC(er_backend_load(9, NULL, 0), ER_ERR_INVALID_ARGUMENT);
  /* The backend table: every row as JSON, its id accepted by er_backend_set_search_path, and
     ER_ERR_NOT_FOUND past the end; a short buffer still reports the full length. */
  uint32_t backends = er_backend_count();
  CHECK(backends >= 2, "er_backend_count() = %u", backends);
  for (uint32_t i = 0; i < backends; i++) {
    char json[1024], small[8];
    uint32_t len = 0, small_len = 0;
    EXPECT_RC(er_backend_info(i, json, sizeof json, &len), ER_OK);
    CHECK(len == strlen(json) && json[0] == '{' && json[len - 1] == '}', "backend %u info: %s", i, json);
    CHECK(strstr(json, "\"extensions\":[\".") && strstr(json, "\"taskLimit\":") && strstr(json, "\"honours\":["),
          "backend %u info has its fields: %s", i, json);
    EXPECT_RC(er_backend_info(i, small, sizeof small, &small_len), ER_OK);
    CHECK(small_len == len && strlen(small) == sizeof small - 1, "a short buffer gets a cut copy and the full length");
    unsigned id = 0;
    CHECK(sscanf(json, "{\"id\":%u,", &id) == 1 && id != ER_BACKEND_AUTO, "backend %u has an id: %s", i, json);
    EXPECT_RC(er_backend_set_search_path(id, ""), ER_OK);
  }
  EXPECT_RC(er_backend_info(backends, NULL, 0, NULL), ER_ERR_NOT_FOUND);
  char one[1024];
  EXPECT_RC(er_backend_info(0, one, sizeof one, NULL), ER_OK);
  const char *ort_row = "{\"id\":1,\"name\":\"ort\",\"extensions\":[\".onnx\",\".ort\"],\"probe\":true,\"taskLimit\":64,";
  CHECK(strncmp(one, ort_row, strlen(ort_row)) == 0, "row 0 is ort: %s", one);
  EXPECT_RC(er_set_worker_limit(0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_set_worker_limit(65), ER_ERR_INVALID_ARGUMENT);
  /* One worker thread until the ort section is done: jobs then run strictly in order, so a
     later job's completion proves an orphaned run before it has ended and freed its request. */
  EXPECT_RC(er_set_worker_limit(1), ER_OK);
  EXPECT_RC(er_completion_wait(NULL, 4, 0), ER_ERR_INVALID_ARGUMENT);
  uint32_t tag;
  EXPECT_RC(er_completion_wait(&tag, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_completion_wait(&tag, 1, 0), 0);
  EXPECT_RC(er_completion_wait(&tag, 1, 10), 0);
  er_completion_wake();
  EXPECT_RC(er_completion_wait(&tag, 1, 1000), 0);

  /* The last error: full length returned, truncated copy always NUL-terminated. */
  er_backend_load(9, NULL, 0);
  char full[256], small[5];
  uint32_t n = er_last_error(full, sizeof full);
  CHECK(n == strlen(full) && n > 4, "er_last_error length %u for '%s'", n, full);
  memset(small, 'x', sizeof small);
  CHECK(er_last_error(small, sizeof small) == n && small[4] == 0 && strncmp(small, full, 4) == 0,
        "truncated last error '%.5s'", small);
  CHECK(er_last_error(NULL, 0) == n, "er_last_error(NULL, 0) gives the length");
  CHECK(er_last_error_field(99, small, sizeof small) == 0 && small[0] == 0, "unknown field is empty");

  /* NULL handles: every call answers, none crashes. */
  uint32_t counts[2];
  uint8_t info[ER_TENSOR_INFO_SIZE];
  uint64_t words[ER_REQ_TENSOR_WORDS];
  char buf[64];
  er_pack *pack = (er_pack *)1;
  EXPECT_RC(er_pack_open(NULL, 0, NULL, &pack), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_open("/x", 0, NULL, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_count(NULL, counts), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_name(NULL, 0, buf, sizeof buf, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_model(NULL, 0, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_counts(NULL, counts), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor(NULL, 0, 0, info, sizeof info), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor_name(NULL, 0, 0, buf, sizeof buf), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor_quant(NULL, 0, 0, NULL, NULL, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_info(NULL, buf, sizeof buf, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_retain(NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_new(NULL, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_tensor(NULL, 0, 0, words), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(NULL, 0, NULL, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(NULL, 0, buf, 4, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_read(NULL, 0, buf, 4, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_run(NULL, 0, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_submit(NULL, 0, 0, 0, 0, 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_finish(NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_cancel(NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_busy(NULL), 0);
  CHECK(er_request_last_run_us(NULL) == 0, "last_run_us(NULL)");
  er_pack_free(NULL);
  er_model_free(NULL);
  er_request_free(NULL);
}

/* Files that are missing, not files, empty, corrupt, or of the other backend's format. */
static void test_bad_files(const char *onnx_path) {
  er_pack *pack = (er_pack *)1;
  EXPECT_RC(er_pack_open("/nonexistent/model.hbm", ER_BACKEND_AUTO, NULL, &pack), ER_ERR_FILE);
  CHECK(pack == NULL, "out is cleared on failure");
  EXPECT_RC(er_pack_open(tmp_dir, ER_BACKEND_AUTO, NULL, &pack), ER_ERR_FILE);
  CHECK(last_error_contains("directory"), "a directory is named as such");
  EXPECT_RC(er_pack_open("/dev/null", ER_BACKEND_AUTO, NULL, &pack), ER_ERR_FILE);
  EXPECT_RC(er_pack_open(write_file("empty.hbm", "", 0), ER_BACKEND_AUTO, NULL, &pack), ER_ERR_INVALID_MODEL);
  EXPECT_RC(er_pack_open(write_file("junk.hbm", "not a model at all", 18), ER_BACKEND_AUTO, NULL, &pack),
            ER_ERR_INVALID_MODEL);
  EXPECT_RC(er_pack_open(write_file("junk.onnx", "\x08\x07garbage", 9), ER_BACKEND_AUTO, NULL, &pack),
            ER_ERR_INVALID_MODEL);
  EXPECT_RC(er_pack_open(onnx_path, 99, NULL, &pack), ER_ERR_INVALID_ARGUMENT);

  bytes good = sim_file(sim_models, M_COUNT);
  /* Every truncation of a valid file is refused cleanly (size field no longer matches). */
  int truncations_ok = 1;
  for (size_t cut = 1; cut < good.len; cut += 7) {
    const char *p = write_file("cut.hbm", good.p, cut);
    int32_t rc = er_pack_open(p, ER_BACKEND_HBDNN, NULL, &pack);
    if (rc != ER_ERR_INVALID_MODEL) {
      truncations_ok = 0;
      fprintf(stderr, "  truncated at %zu: rc %d\n", cut, rc);
      if (rc == ER_OK) er_pack_free(pack);
    }
  }
  CHECK(truncations_ok, "every truncated simulator file is ER_ERR_INVALID_MODEL");
  /* Byte flips: anything but a crash or a leak; a file that opens must describe itself. */
  uint32_t seed = 12345;
  for (int i = 0; i < 200; i++) {
    bytes bad = {0};
    put(&bad, good.p, good.len);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = 24 + (seed >> 8) % (good.len - 24);
      bad.p[at] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    const char *p = write_file("flip.hbm", bad.p, bad.len);
    free(bad.p);
    if (er_pack_open(p, ER_BACKEND_HBDNN, NULL, &pack) != ER_OK) continue;
    uint32_t n = 0;
    er_pack_count(pack, &n);
    for (uint32_t m = 0; m < n; m++) {
      er_model *model = NULL;
      if (er_pack_model(pack, m, &model) != ER_OK) continue;
      /* A flip may leave a valid model of gigabytes; allocate only small ones. */
      uint32_t c[2] = {0, 0};
      uint64_t bytes_total = 0;
      er_model_counts(model, c);
      for (uint32_t io = 0; io < 2; io++)
        for (uint32_t k = 0; k < c[io]; k++) {
          uint8_t info[ER_TENSOR_INFO_SIZE];
          if (er_model_tensor(model, io, k, info, sizeof info) == ER_OK) bytes_total += (uint64_t)rd_i64(info + 176);
        }
      er_request *r = NULL;
      if (bytes_total <= (1u << 20) && er_request_new(model, &r) == ER_OK) er_request_free(r);
      er_model_free(model);
    }
    er_pack_free(pack);
  }
  /* Wrong backend for the format: a simulator file given to ort and an ONNX file given to hbdnn. */
  const char *sim_path = write_file("models.bin", good.p, good.len);
  EXPECT_RC(er_pack_open(sim_path, ER_BACKEND_ORT, NULL, &pack), ER_ERR_INVALID_MODEL);
  EXPECT_RC(er_pack_open(onnx_path, ER_BACKEND_HBDNN, NULL, &pack), ER_ERR_INVALID_MODEL);
  /* When the name says nothing, only ONNX bytes are recognised; anything else needs its backend named. */
  const char *noext = write_file("models_noext", good.p, good.len);
  pack = NULL;
  EXPECT_RC(er_pack_open(noext, ER_BACKEND_AUTO, NULL, &pack), ER_ERR_UNSUPPORTED);
  CHECK(last_error_contains(".onnx, .ort (ort)") && last_error_contains(".hbm, .bin (hbdnn)") &&
            last_error_contains(".om (acl)") &&
            last_error_contains("backend option (one of \"ort\", \"hbdnn\", \"acl\")"),
        "an unknown file type names the extensions and the backend option");
  EXPECT_RC(er_pack_open(noext, ER_BACKEND_HBDNN, NULL, &pack), ER_OK);
  uint32_t n = 0;
  if (pack) er_pack_count(pack, &n);
  CHECK(n == M_COUNT, "a simulator file opened as hbdnn has %u models", n);
  er_pack_free(pack);
  EXPECT_RC(er_pack_open(write_file("x.png", "\x89PNG\r\n\x1a\n", 8), ER_BACKEND_AUTO, NULL, &pack), ER_ERR_UNSUPPORTED);
  const char *onnx_noext = write_file("onnx_noext", NULL, 0);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", onnx_path, onnx_noext);
  if (system(cmd) == 0) {
    EXPECT_RC(er_pack_open(onnx_noext, ER_BACKEND_AUTO, NULL, &pack), ER_OK);
    er_pack_free(pack);
  }
  free(good.p);
}

static void test_sim_describe(er_pack *pack) {
  uint32_t n = 0;
  REQUIRE_OK(er_pack_count(pack, &n));
  CHECK(n == M_COUNT, "pack has %u models", n);
  EXPECT_RC(er_pack_count(pack, NULL), ER_ERR_INVALID_ARGUMENT);
  char name[16];
  uint32_t len = 0;
  for (uint32_t i = 0; i < M_COUNT; i++) {
    EXPECT_RC(er_pack_name(pack, i, name, sizeof name, &len), ER_OK);
    CHECK(strcmp(name, sim_models[i].name) == 0 && len == strlen(sim_models[i].name), "model %u named '%s'", i, name);
  }
  char tiny[3];
  EXPECT_RC(er_pack_name(pack, M_AFFINE, tiny, sizeof tiny, &len), ER_OK);
  CHECK(len == 6 && strcmp(tiny, "af") == 0, "short name buffer: '%s', len %u", tiny, len);
  EXPECT_RC(er_pack_name(pack, M_COUNT, name, sizeof name, &len), ER_ERR_NOT_FOUND);
  er_model *m = (er_model *)1;
  EXPECT_RC(er_pack_model(pack, M_COUNT, &m), ER_ERR_NOT_FOUND);
  CHECK(m == NULL, "out cleared");
  EXPECT_RC(er_pack_model(pack, 0, NULL), ER_ERR_INVALID_ARGUMENT);

  /* Tensor descriptions of the quantized model. */
  REQUIRE_OK(er_pack_model(pack, M_QUANT, &m));
  uint32_t counts[2] = {9, 9};
  EXPECT_RC(er_model_counts(m, counts), ER_OK);
  CHECK(counts[0] == 1 && counts[1] == 1, "counts %u/%u", counts[0], counts[1]);
  EXPECT_RC(er_model_counts(m, NULL), ER_ERR_INVALID_ARGUMENT);
  uint8_t info[ER_TENSOR_INFO_SIZE + 8];
  memset(info, 0xAB, sizeof info);
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, ER_TENSOR_INFO_SIZE - 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, NULL, ER_TENSOR_INFO_SIZE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 1, info, sizeof info), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_model_tensor(m, 2, 0, info, sizeof info), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, sizeof info), ER_OK);
  CHECK(rd_u32(info) == ER_TENSOR_INFO_SIZE, "record size %u", rd_u32(info));
  CHECK(rd_i32(info + 4) == ER_DTYPE_INT8, "dtype %d", rd_i32(info + 4));
  CHECK(rd_u32(info + 8) == 2, "rank %u", rd_u32(info + 8));
  CHECK(rd_u32(info + 12) == ER_TENSOR_QUANTIZED, "flags %u", rd_u32(info + 12));
  CHECK(rd_i64(info + 16) == 2 && rd_i64(info + 24) == 3 && rd_i64(info + 32) == 0, "shape %lld,%lld,%lld",
        (long long)rd_i64(info + 16), (long long)rd_i64(info + 24), (long long)rd_i64(info + 32));
  CHECK(rd_i64(info + 96) == 3 && rd_i64(info + 104) == 1, "strides");
  CHECK(rd_i64(info + 176) == 6, "byte size %lld", (long long)rd_i64(info + 176));
  CHECK(rd_i32(info + 184) == 1 && rd_i32(info + 188) == 1, "quant %d axis %d", rd_i32(info + 184), rd_i32(info + 188));
  CHECK(rd_u32(info + 192) == 3 && rd_u32(info + 196) == 0, "scale/zp counts %u/%u", rd_u32(info + 192),
        rd_u32(info + 196));
  CHECK(rd_i32(info + 200) == S8 && rd_u32(info + 204) == 1, "vendor type %d, name length %u", rd_i32(info + 200),
        rd_u32(info + 204));
  CHECK(info[ER_TENSOR_INFO_SIZE] == 0xAB, "nothing written past the record");
  float scales[4] = {0};
  int32_t zps[4] = {7, 7, 7, 7};
  EXPECT_RC(er_model_tensor_quant(m, ER_INPUT, 0, scales, zps, 2), ER_OK);
  CHECK(scales[0] == 0.5f && scales[1] == 0.25f && scales[2] == 0 && zps[0] == 7, "scales honour cap");
  EXPECT_RC(er_model_tensor_quant(m, ER_OUTPUT, 0, scales, zps, 4), ER_OK);
  CHECK(scales[0] == 0.5f && zps[0] == 2, "output scale %g zp %d", scales[0], zps[0]);
  EXPECT_RC(er_model_tensor_quant(m, ER_OUTPUT, 0, NULL, NULL, 4), ER_OK);
  EXPECT_RC(er_model_tensor_quant(m, ER_OUTPUT, 3, scales, zps, 4), ER_ERR_NOT_FOUND);
  char tname[8];
  EXPECT_RC(er_model_tensor_name(m, ER_OUTPUT, 0, tname, sizeof tname), ER_OK);
  CHECK(strcmp(tname, "o") == 0, "output name '%s'", tname);
  EXPECT_RC(er_model_tensor_name(m, ER_OUTPUT, 0, NULL, 0), ER_OK);
  EXPECT_RC(er_model_tensor_name(m, ER_OUTPUT, 1, tname, sizeof tname), ER_ERR_NOT_FOUND);

  char json[1024];
  uint32_t json_len = 0;
  EXPECT_RC(er_model_info(m, json, sizeof json, &json_len), ER_OK);
  CHECK(json_len == strlen(json) && json[0] == '{' && json[json_len - 1] == '}' &&
            strstr(json, "\"backend\":\"hbdnn\"") && strstr(json, "simulator"),
        "model info %s", json);
  char cut[10];
  uint32_t cut_len = 0;
  EXPECT_RC(er_model_info(m, cut, sizeof cut, &cut_len), ER_OK);
  CHECK(cut_len == json_len && strlen(cut) == sizeof cut - 1, "short info buffer: len %u", cut_len);
  EXPECT_RC(er_model_info(m, NULL, 0, &cut_len), ER_OK);
  CHECK(cut_len == json_len, "info length without a buffer");
  er_model_free(m);
}

/* Synchronous runs: exact results of the simulator's affine maps, strides and quantization. */
static void test_sim_run(er_pack *pack) {
  er_model *m = NULL;
  er_request *r = NULL;
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  REQUIRE_OK(er_request_new(m, &r));
  EXPECT_RC(er_request_new(m, NULL), ER_ERR_INVALID_ARGUMENT);

  uint64_t w[ER_REQ_TENSOR_WORDS];
  EXPECT_RC(er_request_tensor(r, ER_OUTPUT, 0, w), ER_OK);
  CHECK(w[0] != 0 && w[1] == 32 && w[2] == 2 && w[3] == 2 && w[4] == 3 && w[13] == 16 && w[14] == 4,
        "output words: bytes %llu rank %llu shape %llu,%llu strides %llu,%llu", (unsigned long long)w[1],
        (unsigned long long)w[2], (unsigned long long)w[3], (unsigned long long)w[4], (unsigned long long)w[13],
        (unsigned long long)w[14]);
  EXPECT_RC(er_request_tensor(r, ER_OUTPUT, 0, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_tensor(r, ER_INPUT, 5, w), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_tensor(r, 7, 0, w), ER_ERR_INVALID_ARGUMENT);

  float x[6] = {0, 1, -2, 3.5f, 4, -5}, y[6] = {0}, y2[8];
  EXPECT_RC(er_request_write(r, 0, x, sizeof x - 1, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 0, x, sizeof x + 4, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 0, NULL, sizeof x, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 0, x, sizeof x, 5), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 1, x, sizeof x, ER_COPY_DENSE), ER_ERR_NOT_FOUND);
  float bad[6] = {0, 0, NAN, 0, 0, 0};
  EXPECT_RC(er_request_write(r, 0, bad, sizeof bad, ER_COPY_FLOAT32), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("not finite"), "non-finite input named");
  EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 256, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_run(r, -1, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(r, 0, y, sizeof y - 4, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_read(r, 0, y2, sizeof y2, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_read(r, 1, y, sizeof y, ER_COPY_DENSE), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
  int exact = 1;
  for (int i = 0; i < 6; i++) exact &= y[i] == 2 * x[i] + 1;
  CHECK(exact, "y = 2x+1 depadded: %g %g %g %g %g %g", y[0], y[1], y[2], y[3], y[4], y[5]);
  /* The padding bytes hold the simulator's 0xCD fill: the read above really depadded. */
  const uint8_t *raw = (const uint8_t *)(uintptr_t)w[0];
  CHECK(raw[12] == 0xCD && raw[15] == 0xCD, "row padding is the simulator's fill");
  memset(y, 0, sizeof y);
  EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_FLOAT32), ER_OK);
  CHECK(y[5] == -9, "float32 read of a float tensor");
  CHECK(er_request_busy(r) == 0, "idle after a sync run");
  EXPECT_RC(er_request_finish(r), ER_ERR_STATE);
  er_request_free(r);
  er_model_free(m);

  /* Quantized input (per-axis) and output (scale 0.5, zero point 2). */
  REQUIRE_OK(er_pack_model(pack, M_QUANT, &m));
  REQUIRE_OK(er_request_new(m, &r));
  float q[6] = {1.0f, 0.5f, -3.0f, 200.0f, -0.25f, 2.0f};
  EXPECT_RC(er_request_write(r, 0, q, sizeof q, ER_COPY_FLOAT32), ER_OK);
  int8_t raw_in[6];
  EXPECT_RC(er_request_tensor(r, ER_INPUT, 0, w), ER_OK);
  memcpy(raw_in, (const void *)(uintptr_t)w[0], 6);
  /* q / scale[col], rounded, clamped to int8: col scales 0.5, 0.25, 1. */
  const int8_t want_in[6] = {2, 2, -3, 127, -1, 2};
  CHECK(memcmp(raw_in, want_in, 6) == 0, "quantized input %d %d %d %d %d %d", raw_in[0], raw_in[1], raw_in[2],
        raw_in[3], raw_in[4], raw_in[5]);
  EXPECT_RC(er_request_run(r, 10, 1, 0, 0), ER_OK);
  int8_t out_raw[6];
  float out_f[6];
  EXPECT_RC(er_request_read(r, 0, out_raw, sizeof out_raw, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_read(r, 0, out_f, sizeof out_f, ER_COPY_FLOAT32), ER_OK);
  int quant_ok = 1;
  for (int i = 0; i < 6; i++) {
    static const float in_scale[3] = {0.5f, 0.25f, 1.0f};
    double v = want_in[i] * (double)in_scale[i % 3];          /* dequantized input */
    double stored = nearbyint(v / 0.5) + 2;                    /* output quantization */
    if (stored > 127) stored = 127;
    if (stored < -128) stored = -128;
    quant_ok &= out_raw[i] == (int8_t)stored && out_f[i] == (float)((stored - 2) * 0.5);
  }
  CHECK(quant_ok, "quantized output %d %d %d %d %d %d", out_raw[0], out_raw[1], out_raw[2], out_raw[3], out_raw[4],
        out_raw[5]);
  er_request_free(r);
  er_model_free(m);

  /* Dynamic input: set_shape before writing; bad shapes refused. */
  REQUIRE_OK(er_pack_model(pack, M_DYN, &m));
  uint8_t info[ER_TENSOR_INFO_SIZE];
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, sizeof info), ER_OK);
  CHECK((rd_u32(info + 12) & ER_TENSOR_DYNAMIC) && rd_i64(info + 16) == -1 && rd_i64(info + 176) == 0,
        "dynamic input flagged");
  REQUIRE_OK(er_request_new(m, &r));
  float d[6] = {1, 2, 3, 4, 5, 6};
  EXPECT_RC(er_request_write(r, 0, d, sizeof d, ER_COPY_DENSE), ER_ERR_STATE);
  int64_t dims[2] = {2, 3};
  EXPECT_RC(er_request_set_shape(r, 0, dims, 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(r, 0, NULL, 2), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(r, 1, dims, 2), ER_ERR_NOT_FOUND);
  int64_t neg[2] = {-2, 3}, fixed[2] = {2, 4};
  EXPECT_RC(er_request_set_shape(r, 0, neg, 2), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(r, 0, fixed, 2), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(r, 0, dims, 2), ER_OK);
  EXPECT_RC(er_request_write(r, 0, d, sizeof d, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  float e[4];
  EXPECT_RC(er_request_read(r, 0, e, sizeof e, ER_COPY_DENSE), ER_OK);
  CHECK(e[0] == 0 && e[3] == 3, "element-index output %g %g", e[0], e[3]);
  int64_t dims1[2] = {1, 3};
  EXPECT_RC(er_request_set_shape(r, 0, dims1, 2), ER_OK);
  EXPECT_RC(er_request_write(r, 0, d, sizeof d, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 0, d, 12, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  er_request_free(r);
  er_model_free(m);
}

/* Submitted runs, timeouts, cancel, and closing with runs in flight. */
static void test_sim_async(er_pack *pack) {
  er_model *m = NULL, *slow = NULL;
  er_request *r = NULL, *s = NULL;
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  REQUIRE_OK(er_pack_model(pack, M_SLOW, &slow));
  REQUIRE_OK(er_request_new(m, &r));
  REQUIRE_OK(er_request_new(slow, &s));
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
  EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_write(s, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);

  EXPECT_RC(er_request_submit(r, 300, 0, 0, 0, 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_submit(r, 5, 0, 0, 0, 41), ER_OK);
  CHECK(er_request_busy(r) == 1, "busy once submitted");
  uint32_t tag = wait_tag();
  CHECK(tag == 41, "completion tag %u", tag);
  CHECK(er_request_busy(r) == 1, "busy until finished");
  EXPECT_RC(er_request_finish(r), ER_OK);
  CHECK(er_request_busy(r) == 0, "idle after finish");
  EXPECT_RC(er_request_finish(r), ER_ERR_STATE);
  EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
  CHECK(y[5] == 13, "async result %g", y[5]);
  EXPECT_RC(er_request_cancel(r), ER_OK); /* hbdnn: nothing submitted, nothing to release */

  /* One run at a time: sync run, set_shape or a second submit while submitted is a state error. */
  EXPECT_RC(er_request_submit(s, 0, 0, 0, 0, 42), ER_OK);
  EXPECT_RC(er_request_submit(s, 0, 0, 0, 0, 43), ER_ERR_STATE);
  EXPECT_RC(er_request_run(s, 0, 0, 0, 0), ER_ERR_STATE);
  EXPECT_RC(er_request_finish(s), ER_ERR_STATE);
  tag = wait_tag();
  CHECK(tag == 42, "slow completion tag %u", tag);
  EXPECT_RC(er_request_finish(s), ER_OK);
  CHECK(er_request_last_run_us(s) >= 250000, "slow run took %u us", er_request_last_run_us(s));

  /* Timeouts: sync and submitted; the request is usable afterwards. */
  EXPECT_RC(er_request_run(s, 0, 0, 0, 30), ER_ERR_TIMEOUT);
  EXPECT_RC(er_request_submit(s, 0, 0, 0, 30, 44), ER_OK);
  tag = wait_tag();
  CHECK(tag == 44, "timed-out completion tag %u", tag);
  EXPECT_RC(er_request_finish(s), ER_ERR_TIMEOUT);
  sim_set_latency(0);
  EXPECT_RC(er_request_run(s, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(s, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
  CHECK(y[0] == 3, "run after timeouts %g", y[0]);
  sim_set_latency(-1);

  /* Many submissions drain through the completion queue, each tag once. */
  enum { N = 24 };
  er_request *many[N];
  int seen[N] = {0}, made = 0;
  for (int i = 0; i < N; i++) {
    if (er_request_new(m, &many[i]) != ER_OK) break;
    made++;
    er_request_write(many[i], 0, x, sizeof x, ER_COPY_DENSE);
    EXPECT_RC(er_request_submit(many[i], i % 256, i, 0, 0, 100 + (uint32_t)i), ER_OK);
  }
  int got = 0;
  for (int spins = 0; got < made && spins < 200; spins++) {
    uint32_t tags[8];
    int32_t k = er_completion_wait(tags, 8, 100);
    for (int32_t j = 0; j < k; j++) {
      uint32_t i = tags[j] - 100;
      if (i < N && !seen[i]) {
        seen[i] = 1;
        got++;
        EXPECT_RC(er_request_finish(many[i]), ER_OK);
      } else {
        CHECK(0, "unexpected or repeated tag %u", tags[j]);
      }
    }
  }
  CHECK(got == made && made == N, "%d of %d completions", got, made);
  for (int i = 0; i < made; i++) er_request_free(many[i]);

  /* A late task (its run timed out) never blocks the caller: the next run with a timeout gives
     up at its own deadline, and freeing the request hands it to a worker thread. The hold keeps
     the task running until released (its bound only ends a test that blocks). */
  er_request *late = NULL;
  REQUIRE_OK(er_request_new(m, &late));
  EXPECT_RC(er_request_write(late, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
  int32_t live_before[4] = {0}, live[4] = {0};
  er_debug_live_counts(live_before);
  sim_hold(8000000);
  EXPECT_RC(er_request_run(late, 0, 0, 0, 20), ER_ERR_TIMEOUT);
  for (int i = 0; i < 500 && sim_counter("tasks_held") != 1; i++) sleep_ms(2);
  int64_t created = sim_counter("tasks_created"), completed = sim_counter("tasks_completed");
  EXPECT_RC(er_request_run(late, 0, 0, 0, 20), ER_ERR_TIMEOUT);
  CHECK(sim_counter("tasks_created") == created && sim_counter("tasks_completed") == completed,
        "a run behind a late task gave up without waiting for it or queueing a task");
  er_request_free(late);
  CHECK(sim_counter("tasks_held") == 1, "er_request_free returned while the device held the late task");
  sim_hold(0);
  CHECK(sim_wait_idle() == 0, "the late task was released once the device was done");
  for (int i = 0; i < 500; i++) {
    er_debug_live_counts(live);
    if (live[2] < live_before[2]) break;
    sleep_ms(2);
  }
  CHECK(live[2] == live_before[2] - 1, "the worker freed the request (%d live)", live[2]);

  /* Freeing a request with a run in flight: its run posts no tag, even when the free's cancel
     ends the run before the free marks it orphaned (a race: rounds). */
  for (int round = 0; round < 12; round++) {
    er_request *gone = NULL;
    REQUIRE_OK(er_request_new(slow, &gone));
    EXPECT_RC(er_request_submit(gone, 0, 0, 0, 0, 60), ER_OK);
    er_request_free(gone);
  }
  CHECK(sim_wait_idle() == 0, "orphaned runs settled, no live task");
  uint32_t none;
  EXPECT_RC(er_completion_wait(&none, 1, 50), 0); /* orphaned runs post no tag */

  /* Closing with a run in flight: free request, model and pack order-free; the worker cleans up.
     The device holds the task until every handle is freed: a run that finished first would post
     its tag legitimately (seen under load). */
  sim_hold(8000000);
  EXPECT_RC(er_request_submit(s, 0, 0, 0, 0, 45), ER_OK);
  er_request_free(s);
  er_model_free(slow);
  er_request_free(r);
  er_model_free(m);
  sim_hold(0);
  CHECK(sim_wait_idle() == 0, "orphaned run settled, no live task");
  EXPECT_RC(er_completion_wait(&none, 1, 50), 0); /* orphaned runs post no tag */
}

/* Handles keep each other alive: model outlives its pack, request outlives its model. */
static void test_refcounts(const char *sim_path) {
  er_pack *pack = NULL;
  er_model *m = NULL;
  er_request *r = NULL;
  REQUIRE_OK(er_pack_open(sim_path, ER_BACKEND_HBDNN, NULL, &pack));
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  er_pack_free(pack); /* pack before model */
  char name[8];
  EXPECT_RC(er_model_tensor_name(m, ER_INPUT, 0, name, sizeof name), ER_OK);
  EXPECT_RC(er_model_retain(m), ER_OK);
  REQUIRE_OK(er_request_new(m, &r));
  er_model_free(m);
  er_model_free(m); /* model (both references) before request */
  float x[6] = {1, 1, 1, 1, 1, 1}, y[6];
  EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
  CHECK(y[0] == 3, "run on a request whose model and pack were freed: %g", y[0]);
  er_request_free(r);
}

/* ---- image writers (er_request_write_nv12 / _normalized) on the simulator ---------------- */

/* A 6x4 image into inputs with padded rows: every input lays its elements out differently. */
enum { IW = 6, IH = 4 };
static const sim_tensor image_in[] = {
    /* 0 NV12 Y [1,H,W,1], rows 8 bytes apart; 1 UV [1,H/2,W/2,2], rows 10 apart */
    {.name = "y", .dtype = U8, .rank = 4, .shape = {1, IH, IW, 1}, .stride = {32, 8, 1, 1}, .aligned = 32, .quant_axis = -1},
    {.name = "uv", .dtype = U8, .rank = 4, .shape = {1, IH / 2, IW / 2, 2}, .stride = {20, 10, 2, 1}, .aligned = 20,
     .quant_axis = -1},
    /* 2 float32 NCHW, rows 32 bytes (8 elements), planes 144 bytes apart */
    {.name = "x", .dtype = F32, .rank = 4, .shape = {1, 3, IH, IW}, .stride = {432, 144, 32, 4}, .aligned = 432,
     .quant_axis = -1},
    /* 3 float16 NHWC, rows 40 bytes (20 elements for 18) */
    {.name = "h", .dtype = F16, .rank = 4, .shape = {1, IH, IW, 3}, .stride = {160, 40, 6, 2}, .aligned = 160,
     .quant_axis = -1},
    /* 4 int8 NCHW, per-channel scales and zero points on axis 1, rows 8 bytes */
    {.name = "q", .dtype = S8, .rank = 4, .shape = {1, 3, IH, IW}, .stride = {96, 32, 8, 1}, .aligned = 96,
     .quant_axis = 1, .n_scales = 3, .scales = {0.5f, 0.25f, 1.0f}, .zps = {1, -2, 3}, .has_zp = 1},
    /* 5 uint8 NHWC, one scale of 0.5: half-integer quotients test round-half-even */
    {.name = "u", .dtype = U8, .rank = 4, .shape = {1, IH, IW, 3}, .stride = {72, 18, 3, 1}, .aligned = 72,
     .quant_axis = -1, .n_scales = 1, .scales = {0.5f}},
    /* 6 [1,3,3,3]: NCHW and NHWC alike for a 3x3 image */
    {.name = "amb", .dtype = F32, .rank = 4, .shape = {1, 3, 3, 3}, .stride = {108, 36, 12, 4}, .aligned = 108,
     .quant_axis = -1},
    /* 7 float16 NHWC with an odd row step (37 bytes): the simulator accepts it, the typed kernel cannot */
    {.name = "odd", .dtype = F16, .rank = 4, .shape = {1, IH, IW, 3}, .stride = {148, 37, 6, 2}, .aligned = 148,
     .quant_axis = -1},
};
/* o = Y read through its strides, so a run proves the simulator sees what was written. */
static const sim_tensor image_out[] = {{.name = "o", .dtype = F32, .rank = 1, .shape = {IW * IH}, .stride = {4},
                                        .aligned = IW * IH * 4, .quant_axis = -1, .source = 0, .a = 1, .b = 0}};
static const sim_model image_model[] = {{"image", 0, 1, 8, 1, image_in, image_out}};

#define POISON 0xEE

typedef struct input_view {
  uint8_t *data;
  uint64_t bytes;
  int64_t shape[4], strides[4];
} input_view;

static input_view view_input(er_request *r, uint32_t index) {
  uint64_t w[ER_REQ_TENSOR_WORDS];
  input_view v = {0};
  if (er_request_tensor(r, ER_INPUT, index, w) != ER_OK || w[2] != 4) return v;
  v.data = (uint8_t *)(uintptr_t)w[0];
  v.bytes = w[1];
  for (int i = 0; i < 4; i++) v.shape[i] = (int64_t)w[3 + i], v.strides[i] = (int64_t)w[13 + i];
  return v;
}

static void poison_inputs(er_request *r) {
  for (uint32_t i = 0; i < 8; i++) {
    input_view v = view_input(r, i);
    if (v.data) memset(v.data, POISON, v.bytes);
  }
}

/* Whether every byte of input index is still the poison (a failed call wrote nothing). */
static int input_untouched(er_request *r, uint32_t index) {
  input_view v = view_input(r, index);
  for (uint64_t i = 0; v.data && i < v.bytes; i++)
    if (v.data[i] != POISON) return 0;
  return v.data != NULL;
}

/*
 * BT.601 in double, rounded; the shim's 14-bit fixed point may land on the other side of .5 when
 * the exact value is within 0.05 of it, so there either neighbour is accepted.
 */
static int bt601_ok(int got, double exact) {
  if (exact < 0) exact = 0;
  if (exact > 255) exact = 255;
  double f = exact - floor(exact);
  if (fabs(f - 0.5) < 0.05) return got == (int)floor(exact) || got == (int)floor(exact) + 1;
  return got == (int)floor(exact + 0.5);
}

/* Checks Y and UV (values and untouched padding) against the image; returns mismatches. */
static int nv12_mismatches(er_request *r, const uint8_t *img, uint32_t stride, int bgr, int video) {
  input_view y = view_input(r, 0), uv = view_input(r, 1);
  if (!y.data || !uv.data) return -1;
  const int ri = bgr ? 2 : 0, bi = bgr ? 0 : 2;
  const double ys = video ? 219.0 / 255.0 : 1.0, cs = video ? 224.0 / 255.0 : 1.0, yb = video ? 16.0 : 0.0;
  int bad = 0;
  for (uint64_t o = 0; o < y.bytes; o++) {
    uint64_t row = o / (uint64_t)y.strides[1], x = o % (uint64_t)y.strides[1];
    if (row >= IH || x >= IW) {
      bad += y.data[o] != POISON;
      continue;
    }
    const uint8_t *p = img + row * stride + 3 * x;
    int got = y.data[o];
    bad += !bt601_ok(got, yb + ys * (0.299 * p[ri] + 0.587 * p[1] + 0.114 * p[bi]));
    if (video) bad += got < 16 || got > 235;
  }
  for (uint64_t o = 0; o < uv.bytes; o++) {
    uint64_t row = o / (uint64_t)uv.strides[1], x = o % (uint64_t)uv.strides[1];
    if (row >= IH / 2 || x >= IW) {
      bad += uv.data[o] != POISON;
      continue;
    }
    double m[3] = {0, 0, 0};
    for (int dy = 0; dy < 2; dy++)
      for (int dx = 0; dx < 2; dx++)
        for (int c = 0; c < 3; c++) m[c] += img[(2 * row + dy) * stride + 3 * (x / 2 * 2 + dx) + c] / 4.0;
    double R = m[ri], G = m[1], B = m[bi];
    double want = x % 2 == 0 ? 128.0 + cs * (-0.168736 * R - 0.331264 * G + 0.5 * B)
                             : 128.0 + cs * (0.5 * R - 0.418688 * G - 0.081312 * B);
    int got = uv.data[o];
    bad += !bt601_ok(got, want);
    if (video) bad += got < 16 || got > 240;
  }
  return bad;
}

static double half_value(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
  return h & 0x8000 ? -v : v;
}

/*
 * Checks a normalized input: each element (c, y, x) found through the tensor's strides equals
 * (pixel - mean[c]) / std[c] computed in double (quantized: round-half-even(v / scale + zp),
 * clamped), and every other byte is still the poison. The test's means and stds make every value
 * exact in float16/32, so equality is exact. Returns mismatches.
 */
static int norm_mismatches(er_request *r, uint32_t index, const sim_tensor *t, const uint8_t *img, uint32_t stride,
                           uint32_t w, uint32_t h, int nhwc, int swap, const float *ms) {
  input_view v = view_input(r, index);
  if (!v.data) return -1;
  size_t e = t->dtype == F32 ? 4 : t->dtype == F16 ? 2 : 1;
  uint8_t *mask = calloc(1, v.bytes);
  int bad = 0;
  for (uint32_t c = 0; c < 3; c++)
    for (uint32_t yy = 0; yy < h; yy++)
      for (uint32_t x = 0; x < w; x++) {
        uint64_t at = nhwc ? yy * v.strides[1] + x * v.strides[2] + c * v.strides[3]
                           : c * v.strides[1] + yy * v.strides[2] + x * v.strides[3];
        memset(mask + at, 1, e);
        double want = (img[yy * stride + 3 * x + (swap ? 2 - c : c)] - (double)ms[c]) / ms[3 + c], got;
        if (t->dtype == F32) {
          float f;
          memcpy(&f, v.data + at, 4);
          got = f;
        } else if (t->dtype == F16) {
          uint16_t hb;
          memcpy(&hb, v.data + at, 2);
          got = half_value(hb);
        } else {
          uint32_t k = t->n_scales == 1 ? 0 : c;
          double q = rint(want / t->scales[k] + (t->has_zp ? t->zps[k] : 0));
          double lo = t->dtype == S8 ? -128 : 0, hi = t->dtype == S8 ? 127 : 255;
          want = q < lo ? lo : q > hi ? hi : q;
          got = t->dtype == S8 ? (double)(int8_t)v.data[at] : (double)v.data[at];
        }
        bad += got != want;
      }
  for (uint64_t i = 0; i < v.bytes; i++) bad += !mask[i] && v.data[i] != POISON;
  free(mask);
  return bad;
}

static void test_sim_image(void) {
  bytes file = sim_file(image_model, 1);
  const char *path = write_file("image.hbm", file.p, file.len);
  free(file.p);
  er_pack *pack = NULL;
  er_model *m = NULL;
  er_request *r = NULL;
  REQUIRE_OK(er_pack_open(path, ER_BACKEND_AUTO, NULL, &pack));
  er_pack_model(pack, 0, &m);
  er_pack_free(pack);
  REQUIRE_OK(er_request_new(m, &r));

  /* RGB rows of 21 bytes (3 of padding). Blocks at the top: white, black, mid grey; the rest varies. */
  enum { STRIDE = IW * 3 + 3, LEN = STRIDE * (IH - 1) + IW * 3, PACKED = IW * 3 * IH };
  uint8_t img[LEN], packed[PACKED];
  for (uint32_t i = 0; i < LEN; i++) img[i] = (uint8_t)(i * 89u + 17u);
  for (uint32_t yy = 0; yy < 2; yy++)
    for (uint32_t x = 0; x < IW * 3; x++) img[yy * STRIDE + x] = x < 6 ? 255 : x < 12 ? 0 : 128;
  for (uint32_t yy = 0; yy < IH; yy++) memcpy(packed + yy * IW * 3, img + yy * STRIDE, IW * 3);

  /* NV12, full range, packed RGB; then the simulator reads Y back through its padded strides. */
  poison_inputs(r);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW, IH, 0, ER_IMAGE_RGB, 0), ER_OK);
  CHECK(nv12_mismatches(r, packed, IW * 3, 0, 0) == 0, "NV12 full range: %d mismatches",
        nv12_mismatches(r, packed, IW * 3, 0, 0));
  input_view yv = view_input(r, 0), uvv = view_input(r, 1);
  CHECK(yv.data && uvv.data && yv.data[0] == 255 && yv.data[2] == 0 && yv.data[4] == 128 && uvv.data[0] == 128 &&
            uvv.data[1] == 128 && uvv.data[2] == 128 && uvv.data[5] == 128,
        "white/black/grey: Y %d %d %d, UV %d %d %d %d", yv.data[0], yv.data[2], yv.data[4], uvv.data[0], uvv.data[1],
        uvv.data[2], uvv.data[5]);
  float o[IW * IH];
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(r, 0, o, sizeof o, ER_COPY_DENSE), ER_OK);
  int same = 1;
  for (uint32_t i = 0; i < IW * IH; i++) same &= o[i] == yv.data[i / IW * yv.strides[1] + i % IW];
  CHECK(same, "the simulator reads the written Y (%g %g .. %g)", o[0], o[1], o[IW * IH - 1]);

  /* Video range, BGR, a padded image stride. */
  poison_inputs(r);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, img, LEN, IW, IH, STRIDE, ER_IMAGE_BGR, ER_NV12_VIDEO_RANGE), ER_OK);
  CHECK(nv12_mismatches(r, img, STRIDE, 1, 1) == 0, "NV12 video range BGR: %d mismatches",
        nv12_mismatches(r, img, STRIDE, 1, 1));
  CHECK(yv.data[0] == 235 && yv.data[2] == 16 && uvv.data[0] == 128 && uvv.data[3] == 128, "video white %d black %d",
        yv.data[0], yv.data[2]);

  /* NV12 errors: nothing written. */
  poison_inputs(r);
  EXPECT_RC(er_request_write_nv12(NULL, 0, 1, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, NULL, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED - 1, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("buffer holds"), "short image buffer named");
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW - 1, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("even"), "odd width named");
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW, IH - 1, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, 0, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW, IH, IW * 3 - 1, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW, IH, 0, 2, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW, IH, 0, 0, 2), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 0, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 8, 1, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_write_nv12(r, 0, 9, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_write_nv12(r, 2, 1, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("uint8"), "float32 Y named");
  EXPECT_RC(er_request_write_nv12(r, 1, 0, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("[1,4,6,1]"), "Y/UV swapped: the wanted shape named");
  EXPECT_RC(er_request_write_nv12(r, 0, 5, packed, PACKED, IW, IH, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_nv12(r, 0, 1, packed, PACKED, IW + 2, IH - 2, 0, 0, 0), ER_ERR_INVALID_ARGUMENT);
  CHECK(input_untouched(r, 0) && input_untouched(r, 1), "failed NV12 writes leave Y and UV alone");

  /* Normalization: means and stds that keep every value exact (see norm_mismatches). */
  const float ms[6] = {100.0f, 128.5f, 3.0f, 0.5f, 2.0f, 0.25f};
  struct {
    uint32_t index, flags, nhwc, swap, padded;
  } cases[] = {
      {2, ER_LAYOUT_AUTO, 0, 0, 0},
      {2, ER_LAYOUT_NCHW | ER_NORM_SWAP_CHANNELS, 0, 1, 1},
      {3, ER_LAYOUT_AUTO, 1, 0, 1},
      {3, ER_LAYOUT_NHWC | ER_NORM_SWAP_CHANNELS, 1, 1, 0},
      {4, ER_LAYOUT_NCHW, 0, 0, 1},
      {5, ER_LAYOUT_AUTO | ER_NORM_SWAP_CHANNELS, 1, 1, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    poison_inputs(r);
    const uint8_t *src = cases[k].padded ? img : packed;
    uint32_t st = cases[k].padded ? STRIDE : 0, len = cases[k].padded ? LEN : PACKED;
    EXPECT_RC(er_request_write_normalized(r, cases[k].index, src, len, IW, IH, st, cases[k].flags, ms), ER_OK);
    int bad = norm_mismatches(r, cases[k].index, &image_in[cases[k].index], src, st ? st : IW * 3, IW, IH,
                              (int)cases[k].nhwc, (int)cases[k].swap, ms);
    CHECK(bad == 0, "normalized into '%s' (flags %u): %d mismatches", image_in[cases[k].index].name, cases[k].flags,
          bad);
    for (uint32_t i = 0; i < 8; i++)
      if (i != cases[k].index) CHECK(input_untouched(r, i), "normalizing into %u left input %u alone", cases[k].index, i);
  }
  /* [1,3,3,3] from a 3x3 image: ambiguous unless the layout is given. */
  poison_inputs(r);
  EXPECT_RC(er_request_write_normalized(r, 6, packed, 27, 3, 3, 0, ER_LAYOUT_AUTO, ms), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("give the layout"), "ambiguous layout named");
  EXPECT_RC(er_request_write_normalized(r, 6, packed, 27, 3, 3, 0, ER_LAYOUT_NHWC, ms), ER_OK);
  CHECK(norm_mismatches(r, 6, &image_in[6], packed, 9, 3, 3, 1, 0, ms) == 0, "3x3 NHWC");
  EXPECT_RC(er_request_write_normalized(r, 6, packed, 27, 3, 3, 0, ER_LAYOUT_NCHW, ms), ER_OK);
  CHECK(norm_mismatches(r, 6, &image_in[6], packed, 9, 3, 3, 0, 0, ms) == 0, "3x3 NCHW");

  /* Normalization errors: nothing written. */
  poison_inputs(r);
  const float zero_std[6] = {0, 0, 0, 1, 0, 1}, nan_mean[6] = {0, NAN, 0, 1, 1, 1};
  EXPECT_RC(er_request_write_normalized(NULL, 2, packed, PACKED, IW, IH, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, NULL, PACKED, IW, IH, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED - 1, IW, IH, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, img, LEN, IW, IH, IW * 3 - 1, 0, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, 0, IH, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 0, NULL), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 0, zero_std), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 0, nan_mean), ER_ERR_INVALID_ARGUMENT);
  const float tiny_std[6] = {0, 0, 0, 1, 1e-40f, 1};
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 0, tiny_std), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("too small"), "a subnormal std is named");
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 3, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, 8, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 9, packed, PACKED, IW, IH, 0, 0, ms), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_write_normalized(r, 0, packed, PACKED, IW, IH, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("quantization parameters"), "unquantized uint8 input named");
  EXPECT_RC(er_request_write_normalized(r, 2, packed, IW * 3 * 2, IW, 2, 0, 0, ms), ER_ERR_INVALID_ARGUMENT);
  CHECK(last_error_contains("6x2 image"), "a size mismatch names the image size");
  EXPECT_RC(er_request_write_normalized(r, 2, packed, PACKED, IW, IH, 0, ER_LAYOUT_NHWC, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 3, packed, PACKED, IW, IH, 0, ER_LAYOUT_NCHW, ms), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write_normalized(r, 7, packed, PACKED, IW, IH, 0, 0, ms), ER_ERR_UNSUPPORTED);
  CHECK(last_error_contains("multiples"), "an odd row step is named");
  int all_clean = 1;
  for (uint32_t i = 0; i < 8; i++) all_clean &= input_untouched(r, i);
  CHECK(all_clean, "failed normalized writes leave every input alone");

  er_request_free(r);
  er_model_free(m);
}

/* er_completion_ready then er_completion_take: how a JS realm waits on its queue. */
static int32_t wait_on(uint32_t queue, uint32_t *tags, uint32_t cap, int32_t timeout_ms) {
  int32_t ready = er_completion_ready(queue, timeout_ms);
  return ready == 1 ? er_completion_take(queue, tags, cap) : ready;
}

static void *sleep_in_queue(void *queue) {
  er_completion_ready((uint32_t)(uintptr_t)queue, 2000);
  return NULL;
}

/* Completion queues: each request's tags reach only the queue it was pointed at. */
static void test_queues(er_pack *pack) {
  uint32_t qa = 0, qb = 0, tag = 0;
  EXPECT_RC(er_completion_queue_new(NULL), ER_ERR_INVALID_ARGUMENT);
  REQUIRE_OK(er_completion_queue_new(&qa));
  REQUIRE_OK(er_completion_queue_new(&qb));
  CHECK(qa != 0 && qb != 0 && qa != qb, "queue ids %u, %u", qa, qb);
  er_model *m = NULL;
  er_request *a = NULL, *b = NULL;
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  REQUIRE_OK(er_request_new(m, &a));
  REQUIRE_OK(er_request_new(m, &b));
  EXPECT_RC(er_request_set_queue(NULL, qa), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_queue(a, qa), ER_OK);
  EXPECT_RC(er_request_set_queue(b, qb), ER_OK);
  EXPECT_RC(er_request_submit(a, 0, 0, 0, 0, 501), ER_OK);
  EXPECT_RC(er_request_set_queue(a, qb), ER_ERR_STATE); /* not while its run is out */
  EXPECT_RC(er_request_submit(b, 0, 0, 0, 0, 502), ER_OK);
  EXPECT_RC(wait_on(qb, &tag, 1, 10000), 1);
  CHECK(tag == 502, "queue b got tag %u", tag);
  EXPECT_RC(wait_on(qa, &tag, 1, 10000), 1);
  CHECK(tag == 501, "queue a got tag %u", tag);
  EXPECT_RC(er_completion_wait(&tag, 1, 0), 0); /* nothing reached the default queue */
  EXPECT_RC(wait_on(qa, &tag, 1, 0), 0);
  EXPECT_RC(er_request_finish(a), ER_OK);
  EXPECT_RC(er_request_finish(b), ER_OK);
  EXPECT_RC(er_completion_wake_on(qb), ER_OK);
  EXPECT_RC(wait_on(qb, &tag, 1, 1000), 0); /* a wake, no tag */
  /* A freed queue: waits and wakes fail, completions posted to it are dropped, its id is reused. */
  EXPECT_RC(er_completion_queue_free(qb), ER_OK);
  EXPECT_RC(er_completion_queue_free(qb), ER_ERR_NOT_FOUND);
  EXPECT_RC(wait_on(qb, &tag, 1, 0), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_completion_wake_on(qb), ER_ERR_NOT_FOUND);
  EXPECT_RC(wait_on(9999, &tag, 1, 0), ER_ERR_NOT_FOUND);
  EXPECT_RC(er_request_submit(a, 0, 0, 0, 0, 503), ER_OK);
  EXPECT_RC(wait_on(qa, &tag, 1, 10000), 1);
  EXPECT_RC(er_request_finish(a), ER_OK);
  EXPECT_RC(er_completion_wake_on(qa), ER_OK); /* a token left behind by its owner */
  EXPECT_RC(er_completion_queue_free(qa), ER_OK);
  uint32_t qc = 0;
  REQUIRE_OK(er_completion_queue_new(&qc));
  CHECK(qc == qa || qc == qb, "a freed id is reused (got %u)", qc);
  EXPECT_RC(wait_on(qc, &tag, 1, 0), 0); /* starts empty, tokens included */
  EXPECT_RC(er_completion_queue_free(qc), ER_OK);
  /* A run whose queue was freed completes; its tag is dropped, not posted elsewhere. */
  EXPECT_RC(er_request_submit(b, 0, 0, 0, 0, 504), ER_OK);
  for (int i = 0; i < 1000 && er_request_finish(b) == ER_ERR_STATE; i++) usleep(1000);
  CHECK(er_request_busy(b) == 0, "the run of a request whose queue was freed still finishes");
  EXPECT_RC(er_completion_queue_free(0), ER_OK); /* the default queue stays */
  /* A freed queue whose waiter still sleeps (its realm ended mid-wait) is not handed out again. */
  uint32_t qd = 0, qe = 0;
  REQUIRE_OK(er_completion_queue_new(&qd));
  pthread_t sleeper;
  pthread_create(&sleeper, NULL, sleep_in_queue, (void *)(uintptr_t)qd);
  while (er_debug_queue_waiters(qd) != 1) usleep(1000);
  REQUIRE_OK(er_completion_queue_new(&qe)); /* taken while qd is in use */
  CHECK(qe != qd, "queue %u handed out twice", qd);
  EXPECT_RC(er_completion_queue_free(qd), ER_OK); /* wakes the sleeper: it returns long before its 2 s */
  pthread_join(sleeper, NULL);
  CHECK(er_debug_queue_waiters(qd) == 0, "the sleeper left the queue");
  uint32_t qf = 0;
  REQUIRE_OK(er_completion_queue_new(&qf));
  CHECK(qf == qd, "queue %u is handed out again once its waiter left (got %u)", qd, qf);
  EXPECT_RC(er_completion_queue_free(qf), ER_OK);
  EXPECT_RC(er_completion_take(qe, NULL, 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_completion_queue_free(qe), ER_OK);
  er_request_free(a);
  er_request_free(b);
  er_model_free(m);
}

/*
 * Cancels racing completions and frees racing runs, seeded (EDGERUN_RACE_SEED replays): cancels
 * at submit, after a random pause and in a burst while completions arrive, frees of running
 * requests, random priorities, timeouts, core counts and latencies. Every run ends OK with its
 * values, CANCELLED or TIMEOUT; the simulator sees no stale handle and no buffer freed in use,
 * and nothing is left. Run under ThreadSanitizer too (zig build test-tsan).
 */
/*
 * A submitted hbdnn run starts on the caller's thread and its tag goes out from the device's
 * done-callback (core.c run_done_early), before its worker has released the task and invalidated
 * the outputs: er_request_finish must wait for that worker. Strict cache mode makes outputs read
 * before their invalidate stale, so a finish that returned early reads wrong values here. Whether
 * a tag went out early depends on the worker waiting when the device finishes (it is at 20 ms
 * unless the machine stalls it that long): rounds until one did.
 */
static void test_sim_early_tags(er_pack *pack) {
  er_model *m = NULL;
  er_request *r = NULL;
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  REQUIRE_OK(er_request_new(m, &r));
  void (*strict)(int32_t) = NULL;
  void *sym = dlsym(RTLD_DEFAULT, "hbSimSetStrictCache");
  memcpy(&strict, &sym, sizeof sym);
  CHECK(strict != NULL, "the simulator lacks hbSimSetStrictCache");
  if (!strict) return;
  strict(1);
  sim_set_latency(20000);
  const double *t = er_request_timing(r);
  int early = 0, right = 0, ordered = 0, rounds = 0;
  for (; rounds < 20 && !early; rounds++) {
    float x[6], y[6];
    for (int i = 0; i < 6; i++) x[i] = (float)(rounds * 10 + i);
    EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
    EXPECT_RC(er_request_submit(r, 0, 0, 0, 0, 70), ER_OK);
    uint32_t tag = wait_tag();
    CHECK(tag == 70, "early-tag round: tag %u", tag);
    EXPECT_RC(er_request_finish(r), ER_OK);
    /* Posted before the run's end stamp: the callback posted it, not the worker after. Read after
       finish: an early tag is taken before its worker has written that stamp. */
    int posted_early = t[ER_TIMING_POSTED] <= t[1];
    EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
    right += y[5] == 2 * x[5] + 1;
    ordered += t[ER_TIMING_SUBMITTED] <= t[ER_TIMING_STARTED] && t[ER_TIMING_STARTED] <= t[ER_TIMING_DONE] &&
               t[ER_TIMING_DONE] <= t[ER_TIMING_POSTED] && t[1] >= t[ER_TIMING_STARTED];
    early += posted_early;
  }
  CHECK(early == 1, "no tag of %d runs went out before its worker was done", rounds);
  CHECK(right == rounds, "%d of %d runs read current outputs after finish", right, rounds);
  CHECK(ordered == rounds, "%d of %d runs stamped their hops in order", ordered, rounds);
  /* Freed right after an early tag, without finish: the free waits for the worker, never frees
     the request under it (ASan reports a use after free). */
  for (int round = 0; round < 6; round++) {
    er_request *gone = NULL;
    REQUIRE_OK(er_request_new(m, &gone));
    EXPECT_RC(er_request_submit(gone, 0, 0, 0, 0, 71), ER_OK);
    CHECK(wait_tag() == 71, "tag before free");
    er_request_free(gone);
  }
  CHECK(sim_wait_idle() == 0, "runs freed after their tags left no task");
  sim_set_latency(-1);
  strict(0);
  er_request_free(r);
  er_model_free(m);
}

static void test_sim_cancel_races(er_pack *pack) {
  er_model *m = NULL;
  REQUIRE_OK(er_pack_model(pack, M_AFFINE, &m));
  void (*set_cores)(int32_t) = NULL;
  void *sym = dlsym(RTLD_DEFAULT, "hbSimSetCoreCount");
  memcpy(&set_cores, &sym, sizeof sym);
  const char *env = getenv("EDGERUN_RACE_SEED");
  uint32_t seed = env && *env ? (uint32_t)strtoul(env, NULL, 10) : (uint32_t)time(NULL);
  uint32_t s = seed;
#define RND(n) ((s = s * 1664525u + 1013904223u), (s >> 8) % (uint32_t)(n))
  int64_t bad0 = sim_counter("bad_handles"), fiu0 = sim_counter("free_in_use");
  int32_t live0[4] = {0}, live[4] = {0};
  er_debug_live_counts(live0);
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
  enum { N = 16, ROUNDS = 40 };
  int ok = 0, stopped = 0;
  for (int round = 0; round < ROUNDS; round++) {
    if (set_cores) set_cores(1 + (int32_t)RND(4));
    sim_set_latency(RND(4) ? (int64_t)RND(400) : 0);
    er_request *rq[N];
    int gone[N] = {0}, n = 0;
    /* A run freed after it completed still posts its tag: tags are unique, and freed ones ignored. */
    const uint32_t base = 1000u + 100u * (uint32_t)round;
    for (int i = 0; i < N; i++) {
      if (er_request_new(m, &rq[i]) != ER_OK) break;
      n++;
      EXPECT_RC(er_request_write(rq[i], 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
      int32_t timeout = RND(4) ? 0 : 1 + (int32_t)RND(3);
      EXPECT_RC(er_request_submit(rq[i], (int32_t)RND(256), 0, 0, timeout, base + (uint32_t)i), ER_OK);
      uint32_t what = RND(6);
      if (what == 0) {
        EXPECT_RC(er_request_cancel(rq[i]), ER_OK);
      } else if (what == 1) {
        struct timespec pause = {0, (long)RND(300) * 1000};
        nanosleep(&pause, NULL);
        EXPECT_RC(er_request_cancel(rq[i]), ER_OK);
      } else if (what == 2) {
        er_request_free(rq[i]); /* orphaned: the shim frees it when its run ends */
        gone[i] = 1;
      }
    }
    for (int i = 0; i < n; i++)
      if (!gone[i] && RND(3) == 0) EXPECT_RC(er_request_cancel(rq[i]), ER_OK);
    int pending = 0;
    for (int i = 0; i < n; i++) pending += !gone[i];
    for (int spins = 0; pending > 0 && spins < 400; spins++) {
      uint32_t tags[N];
      int32_t k = er_completion_wait(tags, N, 50);
      for (int32_t j = 0; j < k; j++) {
        uint32_t i = tags[j] - base;
        if (tags[j] < base || i >= (uint32_t)n || gone[i]) continue;
        int32_t rc = er_request_finish(rq[i]);
        if (rc == ER_OK) {
          EXPECT_RC(er_request_read(rq[i], 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
          CHECK(y[0] == 3 && y[5] == 13, "cancel races: run %u computed %g..%g (seed %u)", i, y[0], y[5], seed);
          ok++;
        } else {
          CHECK(rc == ER_ERR_CANCELLED || rc == ER_ERR_TIMEOUT, "cancel races: a run ended with %d (seed %u)", rc, seed);
          stopped++;
        }
        er_request_free(rq[i]);
        gone[i] = 1;
        pending--;
      }
    }
    CHECK(pending == 0, "cancel races: round %d: %d runs never completed (seed %u)", round, pending, seed);
    CHECK(sim_counter("bad_handles") == bad0 && sim_counter("free_in_use") == fiu0,
          "cancel races: round %d: %lld stale handles, %lld buffers freed in use (seed %u)", round,
          (long long)(sim_counter("bad_handles") - bad0), (long long)(sim_counter("free_in_use") - fiu0), seed);
    if (pending || failures) break;
  }
#undef RND
  for (int i = 0; i < 1000; i++) {
    er_debug_live_counts(live);
    if (live[2] <= live0[2] && live[3] <= live0[3]) break;
    usleep(10000);
  }
  CHECK(live[2] <= live0[2] && live[3] <= live0[3], "cancel races: %d requests, %d runs left (seed %u)",
        live[2] - live0[2], live[3] - live0[3], seed);
  CHECK(sim_wait_idle() == 0, "cancel races: %lld simulator tasks left (seed %u)", (long long)sim_counter("tasks_live"),
        seed);
  uint32_t stale[N];
  while (er_completion_wait(stale, N, 0) > 0) {
  } /* tags of runs freed after they completed */
  CHECK(ok > 0 && stopped > 0, "cancel races: %d completed, %d stopped: both kinds happen (seed %u)", ok, stopped, seed);
  if (set_cores) set_cores(1);
  sim_set_latency(-1);
  er_model_free(m);
}

static void test_hbdnn(const char *sim_dir) {
  setenv("EDGERUN_HBDNN_LIB_DIR", sim_dir, 1);
  char version[128] = {0};
  EXPECT_RC(er_backend_load(ER_BACKEND_HBDNN, version, sizeof version), ER_OK);
  CHECK(strstr(version, "simulator") != NULL, "hbdnn version '%s' names the simulator", version);
  bytes file = sim_file(sim_models, M_COUNT);
  const char *path = write_file("models.hbm", file.p, file.len);
  free(file.p);
  er_pack *pack = NULL;
  EXPECT_RC(er_pack_open(path, ER_BACKEND_AUTO, "ignored=1", &pack), ER_OK);
  if (!pack) return;
  test_sim_describe(pack);
  test_sim_run(pack);
  test_sim_async(pack);
  test_queues(pack);
  test_sim_early_tags(pack);
  test_sim_cancel_races(pack);
  er_pack_free(pack);
  test_refcounts(path);
  test_sim_image();
  CHECK(sim_wait_idle() == 0 && sim_counter("mem_live") == 0, "simulator: %lld live tasks, %lld live buffers",
        (long long)sim_counter("tasks_live"), (long long)sim_counter("mem_live"));
}

/* ---- ort: the PaddleOCR classifier -------------------------------------------------------- */

static void fill_image(float *x, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffff) / 65535.0f - 0.5f;
  }
}

static void test_ort(const char *ort_lib, const char *onnx_path) {
  setenv("EDGERUN_ORT_LIB", ort_lib, 1);
  char version[64] = {0};
  EXPECT_RC(er_backend_load(ER_BACKEND_ORT, version, sizeof version), ER_OK);
  CHECK(version[0] >= '1' && version[0] <= '9', "ort version '%s'", version);
  er_pack *pack = NULL;
  EXPECT_RC(er_pack_open(onnx_path, ER_BACKEND_AUTO, "intra_op_threads=abc", &pack), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_open(onnx_path, ER_BACKEND_AUTO, "graph_optimization=3", &pack), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_open(onnx_path, ER_BACKEND_AUTO, "inter_op_threads=99999999999999999999999", &pack),
            ER_ERR_INVALID_ARGUMENT);
  REQUIRE_OK(er_pack_open(onnx_path, ER_BACKEND_AUTO, "intra_op_threads=1;graph_optimization=99", &pack));
  uint32_t n = 0;
  EXPECT_RC(er_pack_count(pack, &n), ER_OK);
  CHECK(n == 1, "an ONNX file is one model (%u)", n);
  er_model *m = NULL;
  REQUIRE_OK(er_pack_model(pack, 0, &m));
  er_pack_free(pack);
  uint32_t counts[2];
  EXPECT_RC(er_model_counts(m, counts), ER_OK);
  CHECK(counts[0] == 1 && counts[1] == 1, "cls counts %u/%u", counts[0], counts[1]);
  uint8_t info[ER_TENSOR_INFO_SIZE];
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, sizeof info), ER_OK);
  CHECK(rd_i32(info + 4) == ER_DTYPE_FLOAT32 && rd_u32(info + 8) == 4 && rd_i64(info + 16) == -1 &&
            rd_i64(info + 24) == 3 && rd_i64(info + 32) == -1 && rd_i64(info + 40) == -1 &&
            (rd_u32(info + 12) & ER_TENSOR_DYNAMIC),
        "cls input: dtype %d rank %u shape %lld,%lld,%lld,%lld", rd_i32(info + 4), rd_u32(info + 8),
        (long long)rd_i64(info + 16), (long long)rd_i64(info + 24), (long long)rd_i64(info + 32),
        (long long)rd_i64(info + 40));
  char json[1024];
  uint32_t len = 0;
  EXPECT_RC(er_model_info(m, json, sizeof json, &len), ER_OK);
  CHECK(strstr(json, "\"backend\":\"ort\"") && strstr(json, "\"intra_op_threads\":1"), "ort info %s", json);

  er_request *r = NULL;
  REQUIRE_OK(er_request_new(m, &r));
  enum { PIX = 3 * 48 * 192 };
  float *x = malloc(sizeof(float) * PIX * 8);
  fill_image(x, PIX * 8, 7);
  /* Until set_shape, ort binds unknown dimensions as 1. */
  EXPECT_RC(er_request_write(r, 0, x, PIX * 4, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  int64_t fixed3[4] = {1, 4, 48, 192};
  EXPECT_RC(er_request_set_shape(r, 0, fixed3, 4), ER_ERR_INVALID_ARGUMENT);
  int64_t dims[4] = {2, 3, 48, 192};
  EXPECT_RC(er_request_set_shape(r, 0, dims, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, PIX * 4, ER_COPY_DENSE), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_write(r, 0, x, 2 * PIX * 4, ER_COPY_FLOAT32), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  float p[4] = {0}, p2[4] = {0};
  EXPECT_RC(er_request_read(r, 0, p, sizeof p, ER_COPY_DENSE), ER_OK);
  int softmax = 1;
  for (int b = 0; b < 2; b++)
    softmax &= p[2 * b] >= 0 && p[2 * b + 1] >= 0 && fabsf(p[2 * b] + p[2 * b + 1] - 1) < 1e-4f;
  CHECK(softmax, "cls output is a softmax per image: %g %g %g %g", p[0], p[1], p[2], p[3]);
  uint64_t w[ER_REQ_TENSOR_WORDS];
  EXPECT_RC(er_request_tensor(r, ER_OUTPUT, 0, w), ER_OK);
  CHECK(w[1] == 16 && w[2] == 2 && w[3] == 2 && w[4] == 2, "output words after run: %llu bytes, shape %llux%llu",
        (unsigned long long)w[1], (unsigned long long)w[3], (unsigned long long)w[4]);

  /* The same input submitted gives the same answer. */
  EXPECT_RC(er_request_submit(r, 0, 0, 0, 0, 7), ER_OK);
  CHECK(wait_tag() == 7, "ort completion");
  EXPECT_RC(er_request_finish(r), ER_OK);
  EXPECT_RC(er_request_read(r, 0, p2, sizeof p2, ER_COPY_FLOAT32), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "async result equals sync result");

  /* Cancel: idle is a no-op; a long run stops early (or finishes first: both are answers). */
  EXPECT_RC(er_request_cancel(r), ER_OK);
  int64_t big[4] = {8, 3, 48, 192};
  EXPECT_RC(er_request_set_shape(r, 0, big, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 8 * PIX * 4, ER_COPY_DENSE), ER_OK);
  int cancelled = 0;
  for (int attempt = 0; attempt < 5 && !cancelled; attempt++) {
    EXPECT_RC(er_request_submit(r, 0, 0, 0, 0, 8), ER_OK);
    /* 0 ms first: a cancel that comes before the run starts must be kept (not cleared by the run). */
    sleep_ms(2 * attempt);
    int32_t crc = er_request_cancel(r);
    CHECK(crc == ER_OK, "cancel returned %d", crc);
    CHECK(wait_tag() == 8, "cancelled run completes");
    int32_t frc = er_request_finish(r);
    CHECK(frc == ER_OK || frc == ER_ERR_CANCELLED, "finish after cancel: %d", frc);
    cancelled = frc == ER_ERR_CANCELLED;
  }
  CHECK(cancelled, "a cancel stopped a run in 5 attempts");
  /* The request still works after a cancel. */
  EXPECT_RC(er_request_set_shape(r, 0, dims, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 2 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(r, 0, p2, sizeof p2, ER_COPY_DENSE), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "run after cancel gives the same result");
  EXPECT_RC(er_request_read(r, 0, p2, sizeof p2, 9), ER_ERR_INVALID_ARGUMENT);

  /* timeout_ms arms the request's deadline alarm: a deadline the run meets changes nothing; one
     it may miss stops it with ER_ERR_TIMEOUT (or it finished first); the next run is whole. */
  EXPECT_RC(er_request_run(r, 0, 0, 0, 600000), ER_OK);
  EXPECT_RC(er_request_read(r, 0, p2, sizeof p2, ER_COPY_DENSE), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "a run within its timeout gives the same result");
  EXPECT_RC(er_request_set_shape(r, 0, big, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 8 * PIX * 4, ER_COPY_DENSE), ER_OK);
  int32_t timed = er_request_run(r, 0, 0, 0, 1);
  CHECK(timed == ER_OK || timed == ER_ERR_TIMEOUT, "a run with a 1 ms timeout: %d", timed);
  if (timed == ER_ERR_TIMEOUT) CHECK(last_error_contains("1 ms"), "the timeout is named");
  EXPECT_RC(er_request_set_shape(r, 0, dims, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 2 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
  EXPECT_RC(er_request_read(r, 0, p2, sizeof p2, ER_COPY_DENSE), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "the run after a timed one gives the same result");

  /* A run cancelled while it waits behind another (one worker thread) never starts, and its
     cancel does not leak into the next run. */
  er_request *queued = NULL;
  REQUIRE_OK(er_request_new(m, &queued));
  EXPECT_RC(er_request_set_shape(queued, 0, dims, 4), ER_OK);
  EXPECT_RC(er_request_write(queued, 0, x, 2 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_set_shape(r, 0, big, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 8 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_submit(r, 0, 0, 0, 0, 11), ER_OK);
  EXPECT_RC(er_request_submit(queued, 0, 0, 0, 0, 12), ER_OK);
  EXPECT_RC(er_request_cancel(queued), ER_OK);
  int32_t first_rc = -1, queued_rc = -1;
  for (int i = 0; i < 2; i++) {
    uint32_t done = wait_tag();
    if (done == 11) first_rc = er_request_finish(r);
    else if (done == 12) queued_rc = er_request_finish(queued);
    else CHECK(0, "unexpected tag %u", done);
  }
  EXPECT_RC(first_rc, ER_OK);
  CHECK(queued_rc == ER_ERR_CANCELLED, "a run cancelled before it started finishes CANCELLED (got %d)", queued_rc);
  EXPECT_RC(er_request_submit(queued, 0, 0, 0, 0, 13), ER_OK);
  CHECK(wait_tag() == 13, "resubmitted run completes");
  EXPECT_RC(er_request_finish(queued), ER_OK);
  EXPECT_RC(er_request_read(queued, 0, p2, sizeof p2, ER_COPY_DENSE), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "the run after a cancelled one gives the same result");
  er_request_free(queued);

  /* Freed in flight (the abort path): the worker finishes and frees; model freed first here.
     With one worker thread, the sentinel's completion proves the orphaned run is over. */
  er_request *sentinel = NULL;
  REQUIRE_OK(er_request_new(m, &sentinel));
  EXPECT_RC(er_request_set_shape(sentinel, 0, dims, 4), ER_OK);
  EXPECT_RC(er_request_write(sentinel, 0, x, 2 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_set_shape(r, 0, big, 4), ER_OK);
  EXPECT_RC(er_request_write(r, 0, x, 8 * PIX * 4, ER_COPY_DENSE), ER_OK);
  EXPECT_RC(er_request_submit(r, 0, 0, 0, 0, 9), ER_OK);
  er_model_free(m);
  er_request_free(r);
  EXPECT_RC(er_request_submit(sentinel, 0, 0, 0, 0, 10), ER_OK);
  uint32_t tag = wait_tag();
  CHECK(tag == 10, "only the sentinel posts a tag after the orphan (got %u)", tag);
  EXPECT_RC(er_request_finish(sentinel), ER_OK);
  EXPECT_RC(er_request_read(sentinel, 0, p2, sizeof p2, ER_COPY_DENSE), ER_OK);
  CHECK(memcmp(p, p2, sizeof p) == 0, "sentinel result");
  er_request_free(sentinel);
  free(x);
}

/* ---- hand-written ONNX models (protobuf wire format) --------------------------------------- */

static void pb_varint(bytes *b, uint64_t v) {
  do {
    uint8_t byte = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) byte |= 0x80;
    put(b, &byte, 1);
  } while (v);
}
static void pb_int(bytes *b, uint32_t field, uint64_t v) {
  pb_varint(b, (uint64_t)field << 3);
  pb_varint(b, v);
}
static void pb_len(bytes *b, uint32_t field, const void *data, size_t len) {
  pb_varint(b, (uint64_t)field << 3 | 2);
  pb_varint(b, len);
  put(b, data, len);
}
static void pb_str(bytes *b, uint32_t field, const char *s) { pb_len(b, field, s, strlen(s)); }
/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(bytes *b, uint32_t field, bytes *sub) {
  pb_len(b, field, sub->p, sub->len);
  free(sub->p);
  *sub = (bytes){0};
}

/* ValueInfoProto of a float tensor; rank < 0: no shape at all (unknown rank). */
static void onnx_value(bytes *graph, uint32_t field, const char *name, int rank, const int64_t *dims) {
  bytes tensor = {0}, type = {0}, value = {0};
  pb_int(&tensor, 1, 1); /* elem_type FLOAT */
  if (rank >= 0) {
    bytes shape = {0};
    for (int i = 0; i < rank; i++) {
      bytes dim = {0};
      pb_int(&dim, 1, (uint64_t)dims[i]);
      pb_msg(&shape, 1, &dim);
    }
    pb_msg(&tensor, 2, &shape);
  }
  pb_msg(&type, 1, &tensor);
  pb_str(&value, 1, name);
  pb_msg(&value, 2, &type);
  pb_msg(graph, field, &value);
}

static void onnx_add(bytes *graph, const char *a, const char *out) {
  bytes node = {0};
  pb_str(&node, 1, a);
  pb_str(&node, 1, a);
  pb_str(&node, 2, out);
  pb_str(&node, 3, out);
  pb_str(&node, 4, "Add");
  pb_msg(graph, 1, &node);
}

/* ModelProto around graph (consumed): ir_version 8, default opset 17. */
static const char *onnx_file(const char *name, bytes *graph) {
  bytes model = {0}, opset = {0};
  pb_int(&model, 1, 8);
  pb_str(&opset, 1, "");
  pb_int(&opset, 2, 17);
  pb_msg(&model, 8, &opset);
  pb_str(graph, 2, name);
  pb_msg(&model, 7, graph);
  const char *path = write_file(name, model.p, model.len);
  free(model.p);
  return path;
}

static er_request *open_onnx(const char *path, er_model **model) {
  er_pack *pack = NULL;
  *model = NULL;
  if (er_pack_open(path, ER_BACKEND_AUTO, NULL, &pack) != ER_OK) return NULL;
  er_pack_model(pack, 0, model);
  er_pack_free(pack);
  er_request *r = NULL;
  if (*model && er_request_new(*model, &r) != ER_OK) r = NULL;
  return r;
}

/* Outputs no node computes (a graph input, one value named twice) and an input of unknown rank. */
static void test_ort_graphs(void) {
  int64_t two[1] = {2};
  bytes g = {0};
  onnx_add(&g, "x", "y");
  onnx_value(&g, 11, "x", 1, two);
  onnx_value(&g, 12, "y", 1, two);
  onnx_value(&g, 12, "y", 1, two);
  onnx_value(&g, 12, "x", 1, two);
  er_model *m = NULL;
  er_request *r = open_onnx(onnx_file("aliases.onnx", &g), &m);
  CHECK(r != NULL, "the alias model opens");
  if (r) {
    for (int run = 0; run < 2; run++) {
      float x[2] = {1.0f + (float)run, 2.0f}, y[2] = {0};
      EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
      EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
      for (uint32_t o = 0; o < 3; o++) {
        EXPECT_RC(er_request_read(r, o, y, sizeof y, ER_COPY_DENSE), ER_OK);
        float k = o < 2 ? 2.0f : 1.0f;
        CHECK(y[0] == k * x[0] && y[1] == k * x[1], "run %d output %u: %g %g", run, o, y[0], y[1]);
      }
    }
    er_request_free(r);
  }
  er_model_free(m);

  /* Unknown rank: rank 0 with ER_TENSOR_UNKNOWN_RANK; any rank 1..ER_MAX_DIMS is accepted. A true
     scalar (an empty shape) is rank 0 without the flag. */
  g = (bytes){0};
  onnx_add(&g, "x", "y");
  onnx_add(&g, "s", "t");
  onnx_value(&g, 11, "x", -1, NULL);
  onnx_value(&g, 11, "s", 0, NULL);
  onnx_value(&g, 12, "y", -1, NULL);
  onnx_value(&g, 12, "t", 0, NULL);
  r = open_onnx(onnx_file("unknown_rank.onnx", &g), &m);
  CHECK(r != NULL, "the unknown-rank model opens");
  if (!r) {
    er_model_free(m);
    return;
  }
  uint8_t info[ER_TENSOR_INFO_SIZE];
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, sizeof info), ER_OK);
  CHECK(rd_u32(info + 8) == 0 && rd_u32(info + 12) == (ER_TENSOR_UNKNOWN_RANK | ER_TENSOR_DYNAMIC),
        "unknown-rank input: rank %u flags %u", rd_u32(info + 8), rd_u32(info + 12));
  EXPECT_RC(er_model_tensor(m, ER_INPUT, 1, info, sizeof info), ER_OK);
  CHECK(rd_u32(info + 8) == 0 && rd_u32(info + 12) == 0, "scalar input: rank %u flags %u", rd_u32(info + 8),
        rd_u32(info + 12));
  EXPECT_RC(er_model_tensor(m, ER_OUTPUT, 0, info, sizeof info), ER_OK);
  CHECK(rd_u32(info + 12) == (ER_TENSOR_UNKNOWN_RANK | ER_TENSOR_DYNAMIC), "unknown-rank output: flags %u",
        rd_u32(info + 12));
  int64_t scalar_dims[1] = {1};
  EXPECT_RC(er_request_set_shape(r, 1, scalar_dims, 1), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_request_set_shape(r, 0, scalar_dims, 0), ER_ERR_INVALID_ARGUMENT);
  int64_t eleven[ER_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_RC(er_request_set_shape(r, 0, eleven, ER_MAX_DIMS + 1), ER_ERR_INVALID_ARGUMENT);
  const int64_t shapes[3][3] = {{4, 0, 0}, {2, 3, 0}, {1, 2, 2}};
  for (uint32_t k = 0; k < 3; k++) {
    uint32_t rank = k + 1, n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= (uint32_t)shapes[k][i];
    float x[6] = {1, -2, 3, 0.5f, 5, 6}, y[6] = {0}, s = 4, t = 0;
    EXPECT_RC(er_request_set_shape(r, 0, shapes[k], rank), ER_OK);
    EXPECT_RC(er_request_write(r, 0, x, n * 4, ER_COPY_DENSE), ER_OK);
    EXPECT_RC(er_request_write(r, 1, &s, 4, ER_COPY_DENSE), ER_OK);
    EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
    uint64_t w[ER_REQ_TENSOR_WORDS];
    EXPECT_RC(er_request_tensor(r, ER_OUTPUT, 0, w), ER_OK);
    int shape_ok = w[2] == rank && w[1] == n * 4u;
    for (uint32_t i = 0; i < rank && shape_ok; i++) shape_ok = (int64_t)w[3 + i] == shapes[k][i];
    CHECK(shape_ok, "rank-%u run: output rank %llu, %llu bytes", rank, (unsigned long long)w[2],
          (unsigned long long)w[1]);
    EXPECT_RC(er_request_read(r, 0, y, n * 4, ER_COPY_DENSE), ER_OK);
    int values_ok = 1;
    for (uint32_t i = 0; i < n; i++) values_ok &= y[i] == 2 * x[i];
    CHECK(values_ok, "rank-%u run: y = x + x", rank);
    EXPECT_RC(er_request_read(r, 1, &t, 4, ER_COPY_DENSE), ER_OK);
    CHECK(t == 8, "scalar output %g", t);
  }
  er_request_free(r);
  er_model_free(m);
}

/* ---- acl: the AscendCL simulator (tests/sim/acl/), both layouts' libascendcl.so -------------- */

/* An ACLSIM1 model file (the simulator's .om stand-in): float32 tensors; each output y = a*x + b
   of input 0. dims of -1 are set by the batch gears. */
static bytes acl_file(uint32_t latency_us, const int64_t *dims, uint32_t rank, const uint64_t *gears,
                      uint32_t n_gears, uint32_t n_out) {
  bytes b = {0};
  put(&b, "IMOD", 4);
  put(&b, "ACLSIM1", 8);
  u32(&b, 1);
  size_t size_at = b.len;
  i64(&b, 0);
  u32(&b, 1), u32(&b, n_out), u32(&b, latency_us), u32(&b, 0), u32(&b, n_gears ? 1 : 0), u32(&b, n_gears);
  for (uint32_t g = 0; g < n_gears; g++) i64(&b, (int64_t)gears[g]);
  for (uint32_t t = 0; t < 1 + n_out; t++) {
    char name[8];
    snprintf(name, sizeof name, t ? "y%u" : "x", t);
    u16(&b, (uint16_t)strlen(name));
    put(&b, name, strlen(name));
    i32(&b, 0), i32(&b, 2), i32(&b, (int32_t)rank);
    for (uint32_t i = 0; i < rank; i++) i64(&b, dims[i]);
    if (t) i32(&b, 0), i32(&b, 0), f64(&b, (double)t + 1), f64(&b, 1);
  }
  int64_t len = (int64_t)b.len;
  memcpy(b.p + size_at, &len, 8);
  return b;
}

static void (*acl_live)(int64_t *out, int32_t n);

/* Models, device buffers, host buffers, datasets, data buffers, streams, descriptors, tasks. */
static int64_t acl_live_sum(void) {
  int64_t v[12] = {0};
  acl_live(v, 12);
  return v[1] + v[2] + v[4] + v[5] + v[6] + v[8] + v[10] + v[11];
}

/* Opens the file's model and a request of it (NULL and a failed check on any error). */
static er_request *acl_request(const char *path, uint32_t backend, const char *options, er_model **m) {
  er_pack *pack = NULL;
  er_request *r = NULL;
  *m = NULL;
  EXPECT_RC(er_pack_open(path, backend, options, &pack), ER_OK);
  if (pack) EXPECT_RC(er_pack_model(pack, 0, m), ER_OK);
  er_pack_free(pack);
  if (*m) EXPECT_RC(er_request_new(*m, &r), ER_OK);
  return r;
}

static void test_acl(const char *acl_dir) {
  setenv("EDGERUN_ACL_LIB_DIR", acl_dir, 1);
  char version[128] = {0};
  EXPECT_RC(er_backend_load(ER_BACKEND_ACL, version, sizeof version), ER_OK);
  char path[600];
  snprintf(path, sizeof path, "%s/libascendcl.so", acl_dir);
  void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  void *sym = h ? dlsym(h, "simacl_live_counts") : NULL;
  memcpy(&acl_live, &sym, sizeof sym);
  if (!acl_live) {
    CHECK(0, "the AscendCL simulator lacks simacl_live_counts");
    return;
  }
  int64_t baseline = acl_live_sum();
  const int64_t dims[2] = {2, 3}, dyn[2] = {-1, 3};
  const uint64_t gears[3] = {1, 2, 4};
  bytes f = acl_file(0, dims, 2, NULL, 0, 2);
  const char *plain = write_file("plain.om", f.p, f.len);
  free(f.p);
  f = acl_file(0, dyn, 2, gears, 3, 1);
  const char *batch = write_file("batch.om", f.p, f.len);
  free(f.p);
  f = acl_file(100000, dims, 2, NULL, 0, 1);
  const char *slow = write_file("slow.om", f.p, f.len);
  free(f.p);

  /* Two outputs, sync and async. */
  er_model *m = NULL;
  er_request *r = acl_request(plain, ER_BACKEND_AUTO, "device=0", &m);
  if (r) {
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0};
    EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
    EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
    EXPECT_RC(er_request_read(r, 1, y, sizeof y, ER_COPY_DENSE), ER_OK);
    CHECK(y[0] == 4 && y[5] == 19, "acl: y1 = 3x + 1 gave %g..%g", y[0], y[5]);
    EXPECT_RC(er_request_submit(r, 7, 0, 0, 0, 91), ER_OK);
    CHECK(wait_tag() == 91, "acl: the async run completed");
    EXPECT_RC(er_request_finish(r), ER_OK);
    EXPECT_RC(er_request_run(r, 0, 0, 0, 1000), ER_OK); /* ExecuteAsync + a stream wait */
    er_request_free(r);
  }
  er_model_free(m);

  /* Gears: a batch that is one, one that is not. */
  r = acl_request(batch, ER_BACKEND_ACL, NULL, &m);
  uint32_t counts[2] = {0};
  if (m) EXPECT_RC(er_model_counts(m, counts), ER_OK);
  CHECK(counts[0] == 1, "acl: the gear input is hidden (%u inputs)", counts[0]);
  uint8_t info[ER_TENSOR_INFO_SIZE] = {0};
  if (m) EXPECT_RC(er_model_tensor(m, ER_INPUT, 0, info, sizeof info), ER_OK);
  CHECK(rd_i32(info + 4) == ER_DTYPE_FLOAT32 && rd_i32(info + 200) == 0 && rd_i64(info + 16) == -1 &&
            (rd_u32(info + 12) & ER_TENSOR_DYNAMIC),
        "acl: input x is float32 (aclDataType %d kept), dim 0 dynamic (%lld)", rd_i32(info + 200),
        (long long)rd_i64(info + 16));
  if (r) {
    EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_ERR_INVALID_ARGUMENT); /* no shape yet */
    const int64_t three[2] = {3, 3}, four[2] = {4, 3};
    EXPECT_RC(er_request_set_shape(r, 0, three, 2), ER_ERR_INVALID_ARGUMENT);
    CHECK(last_error_contains("gears are 1,2,4"), "acl: the wrong gear's error names the gears");
    EXPECT_RC(er_request_set_shape(r, 0, four, 2), ER_OK);
    float x[12], y[12] = {0};
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    EXPECT_RC(er_request_write(r, 0, x, sizeof x, ER_COPY_DENSE), ER_OK);
    EXPECT_RC(er_request_run(r, 0, 0, 0, 0), ER_OK);
    uint64_t w[ER_REQ_TENSOR_WORDS];
    EXPECT_RC(er_request_tensor(r, ER_OUTPUT, 0, w), ER_OK);
    CHECK(w[3] == 4 && w[1] == 48, "acl: the output takes the gear's shape (%llu rows, %llu bytes)",
          (unsigned long long)w[3], (unsigned long long)w[1]);
    EXPECT_RC(er_request_read(r, 0, y, sizeof y, ER_COPY_DENSE), ER_OK);
    CHECK(y[11] == 23, "acl: y = 2x + 1 at batch 4 (%g)", y[11]);
    er_request_free(r);
  }
  er_model_free(m);

  /* A timed-out execution freed while it still runs: a worker thread waits for it. */
  r = acl_request(slow, ER_BACKEND_ACL, NULL, &m);
  if (r) {
    EXPECT_RC(er_request_run(r, 0, 0, 0, 5), ER_ERR_TIMEOUT);
    CHECK(er_last_vendor_code() == 507046, "acl: the timeout carries 507046 (%d)", er_last_vendor_code());
    er_request_free(r);
  }
  er_model_free(m);
  int64_t left = acl_live_sum();
  for (int i = 0; i < 500 && left > baseline; i++) sleep_ms(10), left = acl_live_sum();
  CHECK(left == baseline, "acl: %lld simulator objects left (%lld before)", (long long)left, (long long)baseline);

  /* Bad device, corrupt model. */
  er_pack *bad = NULL;
  EXPECT_RC(er_pack_open(plain, ER_BACKEND_ACL, "device=9", &bad), ER_ERR_INVALID_ARGUMENT);
  EXPECT_RC(er_pack_open(plain, ER_BACKEND_ACL, "device=x", &bad), ER_ERR_INVALID_ARGUMENT);
  static const char junk_text[] = "IMODnot a model at all, not at all, no";
  const char *junk = write_file("junk.om", junk_text, sizeof junk_text - 1);
  EXPECT_RC(er_pack_open(junk, ER_BACKEND_AUTO, NULL, &bad), ER_ERR_INVALID_MODEL);
  CHECK(bad == NULL, "acl: no pack after a failed open");
}

/* Section timings on stderr when NATIVE_TEST_TIMES is set. */
static void lap(const char *what) {
  static struct timespec last;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (getenv("NATIVE_TEST_TIMES") && last.tv_sec)
    fprintf(stderr, "  %-10s %.2f s\n", what,
            (double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9);
  last = now;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s SIM_DIR ORT_LIB ONNX_MODEL [ACL_SIM_DIR]\n", argv[0]);
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  lap("start");
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/edgerun-native-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 2;
  }
  sim_control_open(argv[1]);
  /* EDGERUN_NATIVE_HBDNN_ONLY=1 (zig build test-tsan): the simulator half only, ONNX Runtime
     not being built with the sanitizer. */
  const char *only = getenv("EDGERUN_NATIVE_HBDNN_ONLY");
  int hbdnn_only = only && *only && *only != '0';
  test_globals();
  lap("globals");
  if (!hbdnn_only) {
    test_ort(argv[2], argv[3]);
    test_ort_graphs();
    lap("ort");
  }
  er_set_worker_limit(8);
  test_hbdnn(argv[1]);
  lap("hbdnn");
  if (!hbdnn_only) {
    if (argc == 5) test_acl(argv[4]);
    lap("acl");
    test_bad_files(argv[3]);
    lap("bad files");
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("native: %d checks, %d failed (%.1f s)\n", checks, failures,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return failures ? 1 : 0;
}
