/*
 * The ort backend: ONNX Runtime's C API, loaded with dlopen.
 *
 * No ORT header is used. OrtApi is a table of function pointers; the slots below are the
 * zero-based indices of the entries we call (stable since the API version noted; checked
 * against the 1.18-1.29 release headers). load() verifies a few of them by behaviour.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#define BACKEND "ort"

/* All slots we use exist from API version 5 (BindOutput, slot 137, is the highest). */
#define ORT_API_LEVEL 5u

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtValue OrtValue;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtAllocator OrtAllocator;
typedef struct OrtIoBinding OrtIoBinding;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtThreadingOptions OrtThreadingOptions;

typedef struct OrtApiBase {
  const void *const *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

/* Slot indices and prototypes (OrtStatus* NULL = success). */
enum {
  SLOT_CreateStatus = 0,
  SLOT_GetErrorCode = 1,
  SLOT_GetErrorMessage = 2,
  SLOT_CreateEnv = 3,
  SLOT_CreateSession = 7,
  SLOT_CreateSessionOptions = 10,
  SLOT_SetSessionGraphOptimizationLevel = 23,
  SLOT_SetIntraOpNumThreads = 24,
  SLOT_SetInterOpNumThreads = 25,
  SLOT_SessionGetInputCount = 30,
  SLOT_SessionGetOutputCount = 31,
  SLOT_SessionGetInputTypeInfo = 33,
  SLOT_SessionGetOutputTypeInfo = 34,
  SLOT_SessionGetInputName = 36,
  SLOT_SessionGetOutputName = 37,
  SLOT_CreateRunOptions = 39,
  SLOT_RunOptionsSetTerminate = 46,
  SLOT_RunOptionsUnsetTerminate = 47,
  SLOT_CreateTensorWithDataAsOrtValue = 49,
  SLOT_GetTensorMutableData = 51,
  SLOT_CastTypeInfoToTensorInfo = 55,
  SLOT_GetTensorElementType = 60,
  SLOT_GetDimensionsCount = 61,
  SLOT_GetDimensions = 62,
  SLOT_GetTensorTypeAndShape = 65,
  SLOT_CreateCpuMemoryInfo = 69,
  SLOT_AllocatorFree = 76,
  SLOT_GetAllocatorWithDefaultOptions = 78,
  SLOT_ReleaseEnv = 92,
  SLOT_ReleaseStatus = 93,
  SLOT_ReleaseMemoryInfo = 94,
  SLOT_ReleaseSession = 95,
  SLOT_ReleaseValue = 96,
  SLOT_ReleaseRunOptions = 97,
  SLOT_ReleaseTypeInfo = 98,
  SLOT_ReleaseTensorTypeAndShapeInfo = 99,
  SLOT_ReleaseSessionOptions = 100,
  /* Shared thread pools (API version 3; the global thread counts, 147/148, version 5). */
  SLOT_CreateEnvWithGlobalThreadPools = 119,
  SLOT_DisablePerSessionThreads = 120,
  SLOT_CreateThreadingOptions = 121,
  SLOT_ReleaseThreadingOptions = 122,
  SLOT_RunWithBinding = 133,
  SLOT_CreateIoBinding = 134,
  SLOT_ReleaseIoBinding = 135,
  SLOT_BindInput = 136,
  SLOT_BindOutput = 137,
  SLOT_BindOutputToDevice = 138,
  SLOT_GetBoundOutputValues = 140,
  SLOT_SetGlobalIntraOpNumThreads = 147,
  SLOT_SetGlobalInterOpNumThreads = 148,
  /* API version 24 (ORT 1.24) and later only: looked up in GetApi(24)'s table, see load_once. */
  SLOT_TensorTypeAndShape_HasShape = 390,
};

typedef OrtStatus *(*CreateStatus_fn)(int32_t code, const char *msg);
typedef int32_t (*GetErrorCode_fn)(const OrtStatus *status);
typedef const char *(*GetErrorMessage_fn)(const OrtStatus *status);
typedef OrtStatus *(*CreateEnv_fn)(int32_t log_level, const char *logid, OrtEnv **out);
typedef OrtStatus *(*CreateEnvWithGlobalThreadPools_fn)(int32_t log_level, const char *logid,
                                                       const OrtThreadingOptions *options, OrtEnv **out);
typedef OrtStatus *(*DisablePerSessionThreads_fn)(OrtSessionOptions *options);
typedef OrtStatus *(*CreateThreadingOptions_fn)(OrtThreadingOptions **out);
typedef OrtStatus *(*SetGlobalThreads_fn)(OrtThreadingOptions *options, int threads);
typedef OrtStatus *(*CreateSession_fn)(const OrtEnv *env, const char *path, const OrtSessionOptions *options,
                                      OrtSession **out);
typedef OrtStatus *(*CreateSessionOptions_fn)(OrtSessionOptions **out);
typedef OrtStatus *(*SetOptionInt_fn)(OrtSessionOptions *options, int32_t value);
typedef OrtStatus *(*SessionGetCount_fn)(const OrtSession *session, size_t *out);
typedef OrtStatus *(*SessionGetTypeInfo_fn)(const OrtSession *session, size_t index, OrtTypeInfo **out);
typedef OrtStatus *(*SessionGetName_fn)(const OrtSession *session, size_t index, OrtAllocator *allocator, char **out);
typedef OrtStatus *(*CreateTensorWithData_fn)(const OrtMemoryInfo *info, void *data, size_t data_len,
                                             const int64_t *shape, size_t shape_len, int32_t type, OrtValue **out);
typedef OrtStatus *(*CreateRunOptions_fn)(OrtRunOptions **out);
typedef OrtStatus *(*RunOptionsTerminate_fn)(OrtRunOptions *options);
typedef OrtStatus *(*GetTensorMutableData_fn)(OrtValue *value, void **out);
typedef OrtStatus *(*CastTypeInfoToTensorInfo_fn)(const OrtTypeInfo *type_info, const OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*GetTensorElementType_fn)(const OrtTensorTypeAndShapeInfo *info, int32_t *out);
typedef OrtStatus *(*GetDimensionsCount_fn)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*GetDimensions_fn)(const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t len);
typedef OrtStatus *(*GetTensorTypeAndShape_fn)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*CreateCpuMemoryInfo_fn)(int32_t allocator_type, int32_t mem_type, OrtMemoryInfo **out);
typedef OrtStatus *(*AllocatorFree_fn)(OrtAllocator *allocator, void *p);
typedef OrtStatus *(*GetAllocatorWithDefaultOptions_fn)(OrtAllocator **out);
typedef void (*Release_fn)(void *object);
typedef OrtStatus *(*RunWithBinding_fn)(OrtSession *session, const OrtRunOptions *run_options,
                                       const OrtIoBinding *binding);
typedef OrtStatus *(*CreateIoBinding_fn)(OrtSession *session, OrtIoBinding **out);
typedef OrtStatus *(*Bind_fn)(OrtIoBinding *binding, const char *name, const OrtValue *value);
typedef OrtStatus *(*BindOutputToDevice_fn)(OrtIoBinding *binding, const char *name, const OrtMemoryInfo *info);
typedef int (*TensorTypeAndShape_HasShape_fn)(const OrtTensorTypeAndShapeInfo *info); /* C bool */
typedef OrtStatus *(*GetBoundOutputValues_fn)(const OrtIoBinding *binding, OrtAllocator *allocator,
                                             OrtValue ***out, size_t *count);

/* One name per slot for API(name). */
typedef SetOptionInt_fn SetIntraOpNumThreads_fn, SetInterOpNumThreads_fn, SetSessionGraphOptimizationLevel_fn;
typedef SessionGetCount_fn SessionGetInputCount_fn, SessionGetOutputCount_fn;
typedef SessionGetTypeInfo_fn SessionGetInputTypeInfo_fn, SessionGetOutputTypeInfo_fn;
typedef SessionGetName_fn SessionGetInputName_fn, SessionGetOutputName_fn;
typedef CreateTensorWithData_fn CreateTensorWithDataAsOrtValue_fn;
typedef Bind_fn BindInput_fn, BindOutput_fn;
typedef RunOptionsTerminate_fn RunOptionsSetTerminate_fn, RunOptionsUnsetTerminate_fn;
typedef SetGlobalThreads_fn SetGlobalIntraOpNumThreads_fn, SetGlobalInterOpNumThreads_fn;

/* ONNX element types (onnx TensorProto.DataType numbering). */
enum {
  ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_UINT16 = 4, ONNX_INT16 = 5, ONNX_INT32 = 6,
  ONNX_INT64 = 7, ONNX_STRING = 8, ONNX_BOOL = 9, ONNX_FLOAT16 = 10, ONNX_DOUBLE = 11, ONNX_UINT32 = 12,
  ONNX_UINT64 = 13,
};

#define ORT_ARENA_ALLOCATOR 1      /* OrtArenaAllocator */
#define ORT_MEM_TYPE_DEFAULT 0     /* OrtMemTypeDefault */
#define ORT_ERR_NO_SUCHFILE 3
#define ORT_ERR_NO_MODEL 4
#define ORT_ERR_INVALID_PROTOBUF 7
#define ORT_ERR_INVALID_GRAPH 10

static struct {
  pthread_mutex_t lock; /* guards the load; a failed load is retried by the next open */
  int loaded;
  int32_t status;
  char message[2048];
  void *lib;
  const void *const *api;
  const char *version;
  OrtEnv *env;
  OrtMemoryInfo *cpu;
  OrtAllocator *allocator;
  /* The env has ONNX Runtime's global thread pools, which sessions opened with shared_threads=1 use. */
  int shared_pools;
  /* Tells an unknown rank from rank 0 (GetDimensionsCount gives 0 for both); NULL before ORT 1.24. */
  TensorTypeAndShape_HasShape_fn has_shape;
} ort = {.lock = PTHREAD_MUTEX_INITIALIZER};

#define API(name) ((name##_fn)ort.api[SLOT_##name])
#define RELEASE(name, object) (((Release_fn)ort.api[SLOT_Release##name])((void *)(object)))

/* Turns an OrtStatus into the last error (and releases it). */
static int32_t ort_fail(OrtStatus *status, const char *call, const char *fmt, const char *subject) {
  int32_t vendor = API(GetErrorCode)(status);
  const char *msg = API(GetErrorMessage)(status);
  int32_t code = ER_ERR_BACKEND;
  /* ORT has no code for a failed allocation: its arena and std::bad_alloc say so in the text. */
  if (msg && (strstr(msg, "Failed to allocate memory") || strstr(msg, "bad_alloc") || strstr(msg, "bad allocation")))
    code = ER_ERR_OUT_OF_MEMORY;
  else if (vendor == ORT_ERR_NO_SUCHFILE) code = ER_ERR_FILE;
  else if (vendor == ORT_ERR_NO_MODEL || vendor == ORT_ERR_INVALID_PROTOBUF || vendor == ORT_ERR_INVALID_GRAPH)
    code = ER_ERR_INVALID_MODEL;
  char what[512];
  snprintf(what, sizeof what, fmt, subject ? subject : "");
  er_fail_vendor(code, BACKEND, call, vendor, msg, "%s: %s", what, msg ? msg : "unknown ONNX Runtime error");
  RELEASE(Status, status);
  return code;
}

#define CHECK(call_expr, call_name, what, subject)                                   \
  do {                                                                               \
    OrtStatus *st_ = (call_expr);                                                    \
    if (st_) return ort_fail(st_, call_name, what, subject);                         \
  } while (0)

/* Calls slots whose behaviour identifies them: a wrong table fails here, not later in a user's run. */
static int32_t verify_slots(void) {
  static const char probe[] = "edgerun slot probe";
  OrtStatus *st = API(CreateStatus)(2, probe);
  if (!st) return -1;
  int ok = API(GetErrorCode)(st) == 2 && strcmp(API(GetErrorMessage)(st), probe) == 0;
  RELEASE(Status, st);
  if (!ok) return -1;
  OrtSessionOptions *opts = NULL;
  if (API(CreateSessionOptions)(&opts) || !opts) return -1;
  ok = API(SetIntraOpNumThreads)(opts, 1) == NULL && API(SetInterOpNumThreads)(opts, 1) == NULL &&
       API(SetSessionGraphOptimizationLevel)(opts, 99) == NULL;
  RELEASE(SessionOptions, opts);
  return ok ? 0 : -1;
}

static void append_candidates(const char *list, const char **names, size_t *n, size_t cap, char *storage,
                              size_t storage_cap) {
  size_t used = 0;
  const char *p = list;
  while (p && *p && *n + 1 < cap) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0 && used + len + 1 < storage_cap) {
      memcpy(storage + used, p, len);
      storage[used + len] = 0;
      names[(*n)++] = storage + used;
      used += len + 1;
    }
    if (!end) break;
    p = end + 1;
  }
}

/* Opens ONNX Runtime: $EDGERUN_ORT_LIB alone when set (an explicit choice never falls back to another
   runtime), else the search path from the TS side, then the system loader. */
static void *open_runtime(char *tried, size_t tried_cap, const char **hint) {
  const char *names[24];
  size_t n = 0;
  static char storage[4096 + 1024];
  const char *env = getenv("EDGERUN_ORT_LIB");
  if (env && *env) {
    names[n++] = env;
    *hint = "the file named by EDGERUN_ORT_LIB does not load";
  } else {
    append_candidates(er_backend_search_path(ER_BACKEND_ORT), names, &n, 20, storage, sizeof storage);
    names[n++] = "libonnxruntime.so.1";
    names[n++] = "libonnxruntime.so";
    *hint = "ONNX Runtime (libonnxruntime.so.1) not found; set EDGERUN_ORT_LIB to its path";
  }
  names[n] = NULL;
  return er_dlopen_first(NULL, names, NULL, RTLD_NOW | RTLD_LOCAL, tried, tried_cap);
}

/* The newer tables extend the older ones, so slot 390 exists wherever GetApi(24) answers. Kept
   only if it says a rank-1 tensor has a shape (a wrong slot must not decide what a model takes). */
static void load_has_shape(const OrtApiBase *base) {
  const void *const *api24 = base->GetApi(24);
  if (!api24) return;
  TensorTypeAndShape_HasShape_fn has_shape = (TensorTypeAndShape_HasShape_fn)api24[SLOT_TensorTypeAndShape_HasShape];
  float probe = 0;
  int64_t dims[1] = {1};
  OrtValue *value = NULL;
  OrtTensorTypeAndShapeInfo *info = NULL;
  OrtStatus *st = API(CreateTensorWithDataAsOrtValue)(ort.cpu, &probe, sizeof probe, dims, 1, ONNX_FLOAT, &value);
  if (!st) st = API(GetTensorTypeAndShape)(value, &info);
  if (!st && has_shape && has_shape(info)) ort.has_shape = has_shape;
  if (st) RELEASE(Status, st);
  if (info) RELEASE(TensorTypeAndShapeInfo, info);
  if (value) RELEASE(Value, value);
}

/*
 * A failure before ONNX Runtime was initialised closes the library again, so the next open starts
 * clean: a runtime that appears later (a late mount at boot, EDGERUN_ORT_LIB set afterwards) is
 * found then, as hbdnn does. Once CreateEnv was called the library stays (ORT may own threads).
 */
static void unload_failed(void) {
  if (ort.lib && !ort.env) {
    dlclose(ort.lib);
    ort.lib = NULL;
    ort.api = NULL;
    ort.version = NULL;
  }
}

/*
 * ONNX Runtime has one env per process and only its creation can give it global thread pools, so
 * they are made here, for sessions that opt in (shared_threads=1; the others keep their own
 * pools). Sized by $EDGERUN_ORT_SHARED_THREADS (intra-op threads; 0 or unset: ONNX Runtime's
 * default, one per physical core). If that fails, a plain env, and shared_threads is UNSUPPORTED.
 */
/*
 * OrtLoggingLevel (onnxruntime_c_api.h: VERBOSE 0, INFO 1, WARNING 2, ERROR 3, FATAL 4). ORT logs
 * to stderr, in colour, each failure it also returns as a status, which edgerun throws: FATAL by
 * default. $EDGERUN_ORT_LOG=error|warning|info|verbose turns ORT's own log on for diagnosis.
 */
static int32_t ort_log_level(void) {
  const char *e = getenv("EDGERUN_ORT_LOG");
  if (!e || !*e) return 4;
  static const char *const names[] = {"verbose", "info", "warning", "error", "fatal"};
  for (int32_t i = 0; i < 5; i++)
    if (strcasecmp(e, names[i]) == 0) return i;
  return 4;
}

static OrtStatus *create_env(void) {
  OrtThreadingOptions *tp = NULL;
  const char *text = getenv("EDGERUN_ORT_SHARED_THREADS");
  long threads = text && *text ? strtol(text, NULL, 10) : 0;
  if (threads < 0 || threads > 1024) threads = 0;
  OrtStatus *st = API(CreateThreadingOptions)(&tp);
  if (!st) st = API(SetGlobalIntraOpNumThreads)(tp, (int)threads);
  if (!st) st = API(SetGlobalInterOpNumThreads)(tp, 1); /* sessions run their graphs sequentially */
  if (!st) st = API(CreateEnvWithGlobalThreadPools)(ort_log_level(), "edgerun", tp, &ort.env);
  if (tp) RELEASE(ThreadingOptions, tp);
  if (!st) {
    ort.shared_pools = 1;
    return NULL;
  }
  RELEASE(Status, st);
  return API(CreateEnv)(ort_log_level(), "edgerun", &ort.env);
}

static void quiesce_at_exit(void);

static void load_once(void) {
  char tried[1800] = "";
  const char *hint = "";
  const OrtApiBase *base = NULL;
  if (ort.lib && ort.api) { /* an earlier attempt got the library; its initialisation failed */
    const OrtApiBase *(*again)(void) = (const OrtApiBase *(*)(void))dlsym(ort.lib, "OrtGetApiBase");
    base = again();
    goto init;
  }
  ort.lib = open_runtime(tried, sizeof tried, &hint);
  if (!ort.lib) {
    ort.status = ER_ERR_LIBRARY_NOT_FOUND;
    snprintf(ort.message, sizeof ort.message, "%s. Tried: %s", hint, tried);
    return;
  }
  const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(ort.lib, "OrtGetApiBase");
  base = get_base ? get_base() : NULL;
  if (!base) {
    ort.status = ER_ERR_UNSUPPORTED;
    snprintf(ort.message, sizeof ort.message, "the loaded ONNX Runtime library has no OrtGetApiBase");
    return;
  }
  ort.version = base->GetVersionString();
  ort.api = base->GetApi(ORT_API_LEVEL);
  if (!ort.api) {
    ort.status = ER_ERR_UNSUPPORTED;
    snprintf(ort.message, sizeof ort.message, "ONNX Runtime %s does not provide C API version %u (needs 1.5 or newer)",
             ort.version ? ort.version : "?", ORT_API_LEVEL);
    return;
  }
  if (verify_slots() != 0) {
    ort.status = ER_ERR_UNSUPPORTED;
    snprintf(ort.message, sizeof ort.message, "ONNX Runtime %s: the C API table does not match the expected layout",
             ort.version ? ort.version : "?");
    return;
  }
init:;
  OrtStatus *st = ort.env ? NULL : create_env();
  if (!st && !ort.cpu) st = API(CreateCpuMemoryInfo)(ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, &ort.cpu);
  if (!st) st = API(GetAllocatorWithDefaultOptions)(&ort.allocator);
  if (st) {
    ort.status = ER_ERR_BACKEND;
    snprintf(ort.message, sizeof ort.message, "ONNX Runtime initialisation failed: %s", API(GetErrorMessage)(st));
    RELEASE(Status, st);
    return;
  }
  load_has_shape(base);
  /* After ORT's own destructors were registered (at dlopen): ours runs before them at exit. The
     library is pinned first: a runtime that unloads it before exit() would call into unmapped
     code (Deno crashed at exit that way). */
  static int registered;
  if (!registered) {
    er_pin_library();
    registered = atexit(quiesce_at_exit) == 0;
  }
}

static int32_t ort_load(const char **version) {
  pthread_mutex_lock(&ort.lock);
  if (!ort.loaded) {
    ort.status = ER_OK;
    load_once();
    ort.loaded = ort.status == ER_OK;
    if (!ort.loaded) unload_failed();
  }
  int32_t status = ort.status;
  char message[sizeof ort.message];
  if (status != ER_OK) snprintf(message, sizeof message, "%s", ort.message);
  pthread_mutex_unlock(&ort.lock);
  if (status != ER_OK) return er_fail(status, BACKEND, "dlopen", "%s", message);
  *version = ort.version;
  return ER_OK;
}

/* ---- packs: one ONNX file is one session ---- */

typedef struct ort_pack {
  OrtSession *session;
  char *name;
  int64_t intra_threads, inter_threads, graph_level, shared_threads;
} ort_pack;

static int32_t read_option(const char *options, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  int32_t found = er_option_int(options, key, out);
  if (found < 0 || (found && (*out < lo || *out > hi)))
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "option %s must be an integer in %lld..%lld", key,
                   (long long)lo, (long long)hi);
  return ER_OK;
}

static int32_t build_options(const char *options, ort_pack *p, OrtSessionOptions *so) {
  int32_t rc;
  if ((rc = read_option(options, "intra_op_threads", 0, 1024, &p->intra_threads)) != ER_OK) return rc;
  if ((rc = read_option(options, "inter_op_threads", 0, 1024, &p->inter_threads)) != ER_OK) return rc;
  if ((rc = read_option(options, "graph_optimization", 0, 99, &p->graph_level)) != ER_OK) return rc;
  if (p->graph_level != 0 && p->graph_level != 1 && p->graph_level != 2 && p->graph_level != 99)
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "option graph_optimization must be 0, 1, 2 or 99");
  if ((rc = read_option(options, "shared_threads", 0, 1, &p->shared_threads)) != ER_OK) return rc;
  if (p->shared_threads) {
    if (!ort.shared_pools)
      return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "ONNX Runtime %s did not create shared thread pools",
                     ort.version ? ort.version : "?");
    if (p->intra_threads || p->inter_threads)
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                     "shared_threads runs on the process's thread pools: intra_op_threads and inter_op_threads do not apply");
    CHECK(API(DisablePerSessionThreads)(so), "DisablePerSessionThreads", "%s", "session options");
  }
  CHECK(API(SetIntraOpNumThreads)(so, (int32_t)p->intra_threads), "SetIntraOpNumThreads", "%s", "session options");
  CHECK(API(SetInterOpNumThreads)(so, (int32_t)p->inter_threads), "SetInterOpNumThreads", "%s", "session options");
  CHECK(API(SetSessionGraphOptimizationLevel)(so, (int32_t)p->graph_level), "SetSessionGraphOptimizationLevel", "%s",
        "session options");
  return ER_OK;
}

static char *model_name_from_path(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char *name = strdup(base);
  if (!name) return NULL;
  char *dot = strrchr(name, '.');
  if (dot && dot != name) *dot = 0;
  return name;
}

static int32_t ort_pack_open(const char *path, const char *options, void **out, uint32_t *count) {
  ort_pack *p = calloc(1, sizeof *p);
  if (!p) return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");
  p->graph_level = 99;
  OrtSessionOptions *so = NULL;
  OrtStatus *st = API(CreateSessionOptions)(&so);
  int32_t rc = st ? ort_fail(st, "CreateSessionOptions", "%s", "session options") : build_options(options, p, so);
  if (rc == ER_OK) {
    st = API(CreateSession)(ort.env, path, so, &p->session);
    if (st) rc = ort_fail(st, "CreateSession", "cannot load model '%s'", path);
  }
  if (so) RELEASE(SessionOptions, so);
  if (rc == ER_OK && !(p->name = model_name_from_path(path)))
    rc = er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");
  if (rc != ER_OK) {
    if (p->session) RELEASE(Session, p->session);
    free(p);
    return rc;
  }
  *out = p;
  *count = 1;
  return ER_OK;
}

static const char *ort_pack_name(void *pack, uint32_t index) { return ((ort_pack *)pack)->name; }

static void ort_pack_close(void *pack) {
  ort_pack *p = pack;
  if (!p) return;
  RELEASE(Session, p->session);
  free(p->name);
  free(p);
}

/* ---- models ---- */

typedef struct ort_model {
  ort_pack *pack;
  uint32_t n_in, n_out;
  er_tensor_desc *inputs, *outputs; /* owned by core.c; borrowed here */
  /* Per output: -1, or the value it repeats: input k (k < n_in) or output j (n_in + j). See find_aliases. */
  int32_t *alias;
  int has_alias, all_alias;
} ort_model;

static int32_t dtype_from_onnx(int32_t t) {
  switch (t) {
    case ONNX_FLOAT: return ER_DTYPE_FLOAT32;
    case ONNX_DOUBLE: return ER_DTYPE_FLOAT64;
    case ONNX_FLOAT16: return ER_DTYPE_FLOAT16;
    case ONNX_INT8: return ER_DTYPE_INT8;
    case ONNX_UINT8: return ER_DTYPE_UINT8;
    case ONNX_INT16: return ER_DTYPE_INT16;
    case ONNX_UINT16: return ER_DTYPE_UINT16;
    case ONNX_INT32: return ER_DTYPE_INT32;
    case ONNX_UINT32: return ER_DTYPE_UINT32;
    case ONNX_INT64: return ER_DTYPE_INT64;
    case ONNX_UINT64: return ER_DTYPE_UINT64;
    case ONNX_BOOL: return ER_DTYPE_BOOL;
    default: return ER_DTYPE_UNKNOWN;
  }
}

static int32_t dtype_to_onnx(int32_t dtype) {
  for (int32_t t = 1; t <= 13; t++)
    if (dtype_from_onnx(t) == dtype) return t;
  return 0;
}

static int32_t describe_tensor(ort_pack *p, uint32_t io, size_t index, er_tensor_desc *d) {
  const char *kind = io == ER_INPUT ? "input" : "output";
  char *name = NULL;
  SessionGetName_fn get_name = io == ER_INPUT ? API(SessionGetInputName) : API(SessionGetOutputName);
  CHECK(get_name(p->session, index, ort.allocator, &name), io ? "SessionGetOutputName" : "SessionGetInputName",
        "cannot read the name of %s", kind);
  d->name = strdup(name);
  API(AllocatorFree)(ort.allocator, name);
  if (!d->name) return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");

  OrtTypeInfo *type_info = NULL;
  SessionGetTypeInfo_fn get_type = io == ER_INPUT ? API(SessionGetInputTypeInfo) : API(SessionGetOutputTypeInfo);
  CHECK(get_type(p->session, index, &type_info), io ? "SessionGetOutputTypeInfo" : "SessionGetInputTypeInfo",
        "cannot read the type of '%s'", d->name);
  const OrtTensorTypeAndShapeInfo *info = NULL;
  OrtStatus *st = API(CastTypeInfoToTensorInfo)(type_info, &info);
  int32_t rc = ER_OK;
  int32_t onnx_type = 0;
  size_t rank = 0;
  if (st) rc = ort_fail(st, "CastTypeInfoToTensorInfo", "cannot read the type of '%s'", d->name);
  else if (!info)
    rc = er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' is not a tensor (sequences and maps are not supported)",
                 kind, d->name);
  if (rc == ER_OK && (st = API(GetTensorElementType)(info, &onnx_type)))
    rc = ort_fail(st, "GetTensorElementType", "cannot read the type of '%s'", d->name);
  if (rc == ER_OK && (st = API(GetDimensionsCount)(info, &rank)))
    rc = ort_fail(st, "GetDimensionsCount", "cannot read the shape of '%s'", d->name);
  /* No shape at all in the model: any rank. Reported as rank 0 with a flag; the shape comes at run time. */
  if (rc == ER_OK && rank == 0 && ort.has_shape && !ort.has_shape(info))
    d->flags |= ER_TENSOR_UNKNOWN_RANK | ER_TENSOR_DYNAMIC;
  if (rc == ER_OK && rank > ER_MAX_DIMS)
    rc = er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' has %zu dimensions; at most %d are supported", kind,
                 d->name, rank, ER_MAX_DIMS);
  if (rc == ER_OK && (st = API(GetDimensions)(info, d->shape, rank)))
    rc = ort_fail(st, "GetDimensions", "cannot read the shape of '%s'", d->name);
  RELEASE(TypeInfo, type_info);
  if (rc != ER_OK) return rc;

  d->vendor_type = onnx_type;
  d->dtype = dtype_from_onnx(onnx_type);
  if (d->dtype == ER_DTYPE_UNKNOWN)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL,
                   "%s '%s' has ONNX element type %d, which has no TypedArray (strings, bfloat16, complex and "
                   "sub-byte types are not supported)",
                   kind, d->name, onnx_type);
  d->rank = (uint32_t)rank;
  d->quant_axis = -1;
  d->byte_size = er_dense_strides(d->shape, d->rank, er_dtype_size(d->dtype), d->strides);
  for (uint32_t i = 0; i < d->rank; i++)
    if (d->shape[i] < 0) d->flags |= ER_TENSOR_DYNAMIC;
  if (d->flags & ER_TENSOR_UNKNOWN_RANK) d->byte_size = 0;
  return ER_OK;
}

/*
 * Graph outputs that no node computes: an output that is a graph input, or a value named by an
 * earlier output too. Bound to the IoBinding, ORT leaves such an output's buffer untouched (a
 * graph input) or keeps only one binding per name: they are not bound, and copied from their
 * source after each run. (An output that is an initializer is computed into its buffer.)
 */
static void find_aliases(ort_model *m) {
  for (uint32_t i = 0; i < m->n_out; i++) {
    m->alias[i] = -1;
    for (uint32_t k = 0; k < m->n_in && m->alias[i] < 0; k++)
      if (strcmp(m->outputs[i].name, m->inputs[k].name) == 0) m->alias[i] = (int32_t)k;
    for (uint32_t j = 0; j < i && m->alias[i] < 0; j++)
      if (strcmp(m->outputs[i].name, m->outputs[j].name) == 0) m->alias[i] = (int32_t)(m->n_in + j);
    if (m->alias[i] >= 0) m->has_alias = 1;
  }
  m->all_alias = m->has_alias;
  for (uint32_t i = 0; i < m->n_out; i++) m->all_alias &= m->alias[i] >= 0;
}

static int32_t ort_model_open(void *pack, uint32_t index, void **out, uint32_t *n_in, er_tensor_desc **inputs,
                              uint32_t *n_out, er_tensor_desc **outputs) {
  ort_pack *p = pack;
  size_t ni = 0, no = 0;
  CHECK(API(SessionGetInputCount)(p->session, &ni), "SessionGetInputCount", "%s", "cannot count inputs");
  CHECK(API(SessionGetOutputCount)(p->session, &no), "SessionGetOutputCount", "%s", "cannot count outputs");
  ort_model *m = calloc(1, sizeof *m);
  er_tensor_desc *in = calloc(ni ? ni : 1, sizeof *in);
  er_tensor_desc *outs = calloc(no ? no : 1, sizeof *outs);
  int32_t *alias = calloc(no ? no : 1, sizeof *alias);
  if (!m || !in || !outs || !alias) {
    free(m), free(in), free(outs), free(alias);
    return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");
  }
  int32_t rc = ER_OK;
  for (size_t i = 0; i < ni && rc == ER_OK; i++) rc = describe_tensor(p, ER_INPUT, i, &in[i]);
  for (size_t i = 0; i < no && rc == ER_OK; i++) rc = describe_tensor(p, ER_OUTPUT, i, &outs[i]);
  if (rc != ER_OK) {
    for (size_t i = 0; i < ni; i++) er_tensor_desc_clear(&in[i]);
    for (size_t i = 0; i < no; i++) er_tensor_desc_clear(&outs[i]);
    free(m), free(in), free(outs), free(alias);
    return rc;
  }
  m->pack = p;
  m->n_in = (uint32_t)ni;
  m->n_out = (uint32_t)no;
  m->inputs = in;
  m->outputs = outs;
  m->alias = alias;
  find_aliases(m);
  *n_in = m->n_in;
  *n_out = m->n_out;
  *inputs = in;
  *outputs = outs;
  *out = m;
  return ER_OK;
}

static void ort_model_close(void *model) {
  ort_model *m = model;
  free(m->alias);
  free(m);
}

static int32_t ort_model_info(void *model, char *buf, size_t cap, size_t *len) {
  ort_model *m = model;
  er_json_str(buf, cap, len, "backend", BACKEND, 0);
  er_json_str(buf, cap, len, "runtime", "ONNX Runtime", 1);
  er_json_str(buf, cap, len, "runtime_version", ort.version, 1);
  er_json_int(buf, cap, len, "c_api_version", ORT_API_LEVEL, 1);
  er_json_str(buf, cap, len, "device", "cpu", 1);
  er_json_int(buf, cap, len, "intra_op_threads", m->pack->intra_threads, 1);
  er_json_int(buf, cap, len, "inter_op_threads", m->pack->inter_threads, 1);
  er_json_int(buf, cap, len, "shared_threads", m->pack->shared_threads, 1);
  er_json_int(buf, cap, len, "graph_optimization", m->pack->graph_level, 1);
  return ER_OK;
}

/* ---- requests: buffers allocated and bound once ---- */

typedef struct ort_request {
  ort_model *model;
  OrtIoBinding *binding;
  OrtRunOptions *run_options; /* per request, so one run can be terminated from another thread */
  er_tensor_buf *inputs, *outputs; /* owned by core.c */
  OrtValue **in_values, **out_values;
  void **in_memory, **out_memory; /* our allocations (NULL for ORT-allocated outputs) */
  int has_dynamic_outputs;
  er_alarm deadline; /* a run's timeout_ms: sets the terminate flag of run_options */
  struct ort_request *next_running, *prev_running; /* in `running` while inside RunWithBinding */
} ort_request;

/*
 * Process exit while ONNX Runtime kernels run on shim threads: exit() runs ORT's static
 * destructors (registered when the library was loaded) under the kernels, which then fail or
 * crash (seen on Deno, whose exit does not wait for native threads). An atexit handler registered
 * after ORT is loaded runs before those destructors: it refuses new runs, sets the terminate flag
 * of every run in progress (ORT checks it between nodes) and waits, boundedly, until none is left.
 */
static struct {
  pthread_mutex_t lock;
  ort_request *head;
  int count;
  int exiting;
} running = {.lock = PTHREAD_MUTEX_INITIALIZER};

#define EXIT_WAIT_MS 2000 /* a single long node may outlast this: exit then goes on */

static void quiesce_at_exit(void) {
  pthread_mutex_lock(&running.lock);
  running.exiting = 1;
  for (ort_request *r = running.head; r; r = r->next_running) {
    OrtStatus *st = API(RunOptionsSetTerminate)(r->run_options);
    if (st) RELEASE(Status, st);
  }
  pthread_mutex_unlock(&running.lock);
  for (int waited = 0; waited < EXIT_WAIT_MS; waited++) {
    pthread_mutex_lock(&running.lock);
    int left = running.count;
    pthread_mutex_unlock(&running.lock);
    if (!left) return;
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
}

/* 0 when the process is exiting: the run must not start. */
static int enter_running(ort_request *r) {
  pthread_mutex_lock(&running.lock);
  int ok = !running.exiting;
  if (ok) {
    r->prev_running = NULL;
    r->next_running = running.head;
    if (running.head) running.head->prev_running = r;
    running.head = r;
    running.count++;
  }
  pthread_mutex_unlock(&running.lock);
  return ok;
}

static void leave_running(ort_request *r) {
  pthread_mutex_lock(&running.lock);
  if (r->prev_running) r->prev_running->next_running = r->next_running;
  else running.head = r->next_running;
  if (r->next_running) r->next_running->prev_running = r->prev_running;
  r->next_running = r->prev_running = NULL;
  running.count--;
  pthread_mutex_unlock(&running.lock);
}

static void *alloc_tensor(uint64_t bytes) {
  /* ORT and SIMD kernels like 64-byte alignment; a zero-size tensor still gets a valid address. */
  uint64_t rounded = (bytes + 63) & ~(uint64_t)63;
  return aligned_alloc(64, rounded ? rounded : 64);
}

/* Allocates a buffer for shape, wraps it in an OrtValue and fills buf. */
static int32_t make_value(const er_tensor_desc *d, const int64_t *shape, uint32_t rank, er_tensor_buf *buf,
                          void **memory, OrtValue **value) {
  er_tensor_buf next = {0};
  next.rank = rank;
  memcpy(next.shape, shape, sizeof next.shape);
  next.bytes = er_dense_strides(next.shape, next.rank, er_dtype_size(d->dtype), next.strides);
  void *mem = alloc_tensor(next.bytes);
  if (!mem) return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "cannot allocate %llu bytes for '%s'",
                           (unsigned long long)next.bytes, d->name);
  memset(mem, 0, next.bytes);
  OrtValue *v = NULL;
  OrtStatus *st = API(CreateTensorWithDataAsOrtValue)(ort.cpu, mem, (size_t)next.bytes, next.shape, next.rank,
                                                      dtype_to_onnx(d->dtype), &v);
  if (st) {
    free(mem);
    return ort_fail(st, "CreateTensorWithDataAsOrtValue", "cannot create tensor '%s'", d->name);
  }
  next.data = mem;
  *buf = next;
  *memory = mem;
  *value = v;
  return ER_OK;
}

static void ort_request_free(void *request) {
  ort_request *r = request;
  if (!r) return;
  if (r->binding) RELEASE(IoBinding, r->binding);
  if (r->run_options) RELEASE(RunOptions, r->run_options);
  for (uint32_t i = 0; i < r->model->n_in; i++) {
    if (r->in_values[i]) RELEASE(Value, r->in_values[i]);
    free(r->in_memory[i]);
  }
  for (uint32_t i = 0; i < r->model->n_out; i++) {
    if (r->out_values[i]) RELEASE(Value, r->out_values[i]);
    free(r->out_memory[i]);
  }
  free(r->in_values), free(r->out_values), free(r->in_memory), free(r->out_memory);
  free(r);
}

/* The deadline of a run passed (on the timer thread): ORT stops at the next node boundary. */
static void stop_run(void *request) {
  OrtStatus *st = API(RunOptionsSetTerminate)(((ort_request *)request)->run_options);
  if (st) RELEASE(Status, st);
}

static int32_t ort_request_new(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **out) {
  ort_model *m = model;
  ort_request *r = calloc(1, sizeof *r);
  if (!r) return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");
  r->model = m;
  r->inputs = inputs;
  r->outputs = outputs;
  r->deadline.fire = stop_run;
  r->deadline.arg = r;
  r->in_values = calloc(m->n_in + 1, sizeof *r->in_values);
  r->out_values = calloc(m->n_out + 1, sizeof *r->out_values);
  r->in_memory = calloc(m->n_in + 1, sizeof *r->in_memory);
  r->out_memory = calloc(m->n_out + 1, sizeof *r->out_memory);
  int32_t rc = ER_OK;
  if (!r->in_values || !r->out_values || !r->in_memory || !r->out_memory)
    rc = er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory");
  OrtStatus *st = NULL;
  if (rc == ER_OK && (st = API(CreateIoBinding)(m->pack->session, &r->binding)))
    rc = ort_fail(st, "CreateIoBinding", "%s", "cannot create an I/O binding");
  if (rc == ER_OK && (st = API(CreateRunOptions)(&r->run_options)))
    rc = ort_fail(st, "CreateRunOptions", "%s", "cannot create run options");
  for (uint32_t i = 0; i < m->n_in && rc == ER_OK; i++) {
    /* Unknown dimensions start at 1 so the buffer exists; er_request_set_shape changes them. */
    const er_tensor_desc *d = &m->inputs[i];
    int64_t shape[ER_MAX_DIMS] = {0};
    for (uint32_t k = 0; k < d->rank; k++) shape[k] = d->shape[k] < 0 ? 1 : d->shape[k];
    rc = make_value(d, shape, d->rank, &inputs[i], &r->in_memory[i], &r->in_values[i]);
    if (rc == ER_OK && (st = API(BindInput)(r->binding, d->name, r->in_values[i])))
      rc = ort_fail(st, "BindInput", "cannot bind input '%s'", d->name);
  }
  for (uint32_t i = 0; i < m->n_out && rc == ER_OK; i++) {
    const er_tensor_desc *d = &m->outputs[i];
    int bound = m->alias[i] < 0;
    if (d->flags & ER_TENSOR_DYNAMIC) {
      /* Shape known only after a run: ORT allocates it (or the alias copy does) and we read it back. */
      r->has_dynamic_outputs |= bound;
      outputs[i].rank = d->rank;
      memcpy(outputs[i].shape, d->shape, sizeof d->shape);
      memcpy(outputs[i].strides, d->strides, sizeof d->strides);
      if (bound && (st = API(BindOutputToDevice)(r->binding, d->name, ort.cpu)))
        rc = ort_fail(st, "BindOutputToDevice", "cannot bind output '%s'", d->name);
      continue;
    }
    rc = make_value(d, d->shape, d->rank, &outputs[i], &r->out_memory[i], &r->out_values[i]);
    if (rc == ER_OK && bound && (st = API(BindOutput)(r->binding, d->name, r->out_values[i])))
      rc = ort_fail(st, "BindOutput", "cannot bind output '%s'", d->name);
  }
  if (rc != ER_OK) {
    ort_request_free(r);
    return rc;
  }
  *out = r;
  return ER_OK;
}

static int32_t ort_request_set_shape(void *request, uint32_t index, const int64_t *dims, uint32_t rank) {
  ort_request *r = request;
  const er_tensor_desc *d = &r->model->inputs[index];
  int64_t shape[ER_MAX_DIMS] = {0};
  memcpy(shape, dims, rank * sizeof *dims);
  er_tensor_buf buf;
  void *memory = NULL;
  OrtValue *value = NULL;
  int32_t rc = make_value(d, shape, rank, &buf, &memory, &value);
  if (rc != ER_OK) return rc;
  OrtStatus *st = API(BindInput)(r->binding, d->name, value);
  if (st) {
    RELEASE(Value, value);
    free(memory);
    return ort_fail(st, "BindInput", "cannot bind input '%s'", d->name);
  }
  RELEASE(Value, r->in_values[index]);
  free(r->in_memory[index]);
  r->in_values[index] = value;
  r->in_memory[index] = memory;
  r->inputs[index] = buf;
  return ER_OK;
}

/* After a run, points dynamic outputs at the values ORT allocated for them. */
static int32_t collect_dynamic_outputs(ort_request *r) {
  OrtValue **values = NULL;
  size_t count = 0;
  CHECK(API(GetBoundOutputValues)(r->binding, ort.allocator, &values, &count), "GetBoundOutputValues", "%s",
        "cannot read outputs");
  int32_t rc = ER_OK;
  /* values[] holds the bound outputs in binding order: every output but the aliases. */
  for (size_t b = 0, i = 0; b < count; b++, i++) {
    while (i < r->model->n_out && r->model->alias[i] >= 0) i++;
    const er_tensor_desc *d = i < r->model->n_out ? &r->model->outputs[i] : NULL;
    if (!d || !(d->flags & ER_TENSOR_DYNAMIC) || rc != ER_OK) {
      RELEASE(Value, values[b]);
      continue;
    }
    OrtTensorTypeAndShapeInfo *info = NULL;
    void *data = NULL;
    size_t rank = 0;
    er_tensor_buf buf = {0};
    OrtStatus *st = API(GetTensorMutableData)(values[b], &data);
    if (!st) st = API(GetTensorTypeAndShape)(values[b], &info);
    if (!st) st = API(GetDimensionsCount)(info, &rank);
    /* An output of unknown rank has whatever rank this run gave it. */
    if (!st && rank > ER_MAX_DIMS) st = API(CreateStatus)(1, "the output has more dimensions than edgerun supports");
    if (!st) st = API(GetDimensions)(info, buf.shape, rank);
    if (info) RELEASE(TensorTypeAndShapeInfo, info);
    if (st) {
      rc = ort_fail(st, "GetTensorTypeAndShape", "cannot read output '%s'", d->name);
      RELEASE(Value, values[b]);
      continue;
    }
    buf.rank = (uint32_t)rank;
    buf.bytes = er_dense_strides(buf.shape, buf.rank, er_dtype_size(d->dtype), buf.strides);
    buf.data = data;
    if (r->out_values[i]) RELEASE(Value, r->out_values[i]);
    r->out_values[i] = values[b];
    r->outputs[i] = buf;
  }
  if (values) API(AllocatorFree)(ort.allocator, values);
  return rc;
}

/* After a run, copies each alias's source into it (reallocated when the source's size changed). */
static int32_t copy_aliases(ort_request *r) {
  const ort_model *m = r->model;
  for (uint32_t i = 0; i < m->n_out; i++) {
    int32_t a = m->alias[i];
    if (a < 0) continue;
    const er_tensor_buf *src = (uint32_t)a < m->n_in ? &r->inputs[a] : &r->outputs[(uint32_t)a - m->n_in];
    er_tensor_buf *dst = &r->outputs[i];
    if (!dst->data || dst->bytes != src->bytes) {
      void *memory = alloc_tensor(src->bytes);
      if (!memory)
        return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "cannot allocate %llu bytes for '%s'",
                       (unsigned long long)src->bytes, m->outputs[i].name);
      if (r->out_values[i]) RELEASE(Value, r->out_values[i]);
      r->out_values[i] = NULL;
      free(r->out_memory[i]);
      r->out_memory[i] = memory;
      dst->data = memory;
    }
    memcpy(dst->data, src->data, src->bytes);
    dst->bytes = src->bytes;
    dst->rank = src->rank;
    memcpy(dst->shape, src->shape, sizeof dst->shape);
    memcpy(dst->strides, src->strides, sizeof dst->strides);
  }
  return ER_OK;
}

static int32_t ort_request_run(void *request, const er_sched *sched) {
  ort_request *r = request;
  /* After a run the binding holds the last allocated value; rebinding to the device lets ORT
     allocate the next output at whatever shape this run produces. */
  for (uint32_t i = 0; i < r->model->n_out && r->has_dynamic_outputs; i++) {
    const er_tensor_desc *d = &r->model->outputs[i];
    if ((d->flags & ER_TENSOR_DYNAMIC) && r->model->alias[i] < 0)
      CHECK(API(BindOutputToDevice)(r->binding, d->name, ort.cpu), "BindOutputToDevice", "cannot bind output '%s'",
            d->name);
  }
  CHECK(API(RunOptionsUnsetTerminate)(r->run_options), "RunOptionsUnsetTerminate", "%s", "run options");
  /* After the unset: a cancel that came earlier (its terminate flag just cleared) is still seen. */
  if (sched->cancel && atomic_load(sched->cancel))
    return er_fail(ER_ERR_CANCELLED, BACKEND, NULL, "the run was cancelled before it started");
  /* ORT refuses a run that requests no output: copying the inputs is the whole run. */
  if (r->model->all_alias) return copy_aliases(r);
  /* No thread and no clock read without a timeout. */
  int timed = sched->timeout_ms > 0;
  if (timed) {
    int32_t rc = er_alarm_arm(&r->deadline, (uint32_t)sched->timeout_ms);
    if (rc != ER_OK) return rc;
  }
  if (!enter_running(r)) {
    if (timed) er_alarm_disarm(&r->deadline);
    return er_fail(ER_ERR_CANCELLED, BACKEND, NULL, "the process is exiting");
  }
  OrtStatus *st = API(RunWithBinding)(r->model->pack->session, r->run_options, r->binding);
  leave_running(r);
  /* A run that ended as the deadline passed keeps its result: only a stopped run is a timeout. */
  int expired = timed && er_alarm_disarm(&r->deadline);
  if (st) {
    int32_t rc = ort_fail(st, "RunWithBinding", "%s", "run failed");
    if (sched->cancel && atomic_load(sched->cancel))
      return er_fail(ER_ERR_CANCELLED, BACKEND, "RunWithBinding", "the run was stopped before it finished");
    if (expired)
      return er_fail(ER_ERR_TIMEOUT, BACKEND, "RunWithBinding", "the run did not finish within %d ms",
                     sched->timeout_ms);
    return rc;
  }
  int32_t rc = r->has_dynamic_outputs ? collect_dynamic_outputs(r) : ER_OK;
  if (rc == ER_OK && r->model->has_alias) rc = copy_aliases(r);
  return rc;
}

static int32_t ort_request_cancel(void *request) {
  ort_request *r = request;
  CHECK(API(RunOptionsSetTerminate)(r->run_options), "RunOptionsSetTerminate", "%s", "cannot stop the run");
  return ER_OK;
}

const er_backend_ops er_backend_ort = {
    .name = BACKEND,
    .load = ort_load,
    .pack_open = ort_pack_open,
    .pack_name = ort_pack_name,
    .pack_close = ort_pack_close,
    .model_open = ort_model_open,
    .model_close = ort_model_close,
    .model_info = ort_model_info,
    .request_new = ort_request_new,
    .request_free = ort_request_free,
    .request_set_shape = ort_request_set_shape,
    .request_run = ort_request_run,
    .request_cancel = ort_request_cancel,
};
