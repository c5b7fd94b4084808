/*
 * acl backend: Huawei Ascend NPUs through AscendCL (CANN), .om model files.
 *
 * The runtime is dlopen'ed: libascendcl.so (CANN 5..8, everything in one library), else the
 * CANN 9 pair libacl_rt.so + libacl_mdl.so, each symbol looked up in every library loaded. Types,
 * constants and prototypes are declared here (listed in docs/acl-behaviour.md); no vendor header is needed.
 *
 * Process state is managed for the user: aclInit at the first open, open models (packs) counted,
 * devices released when the last one closes, aclFinalize at exit (or at that close with
 * EDGERUN_ACL_FINALIZE=close); one context per device, made current on every
 * thread before any aclrt/aclmdl call (the JS thread and each shim worker). A run is: copy inputs
 * host -> device (ACL_HOST run mode only), set the dynamic gear, aclmdlExecute (or ExecuteAsync +
 * aclrtSynchronizeStreamWithTimeout when the run has a timeout), copy outputs back, all under the
 * model's run lock: one model id never executes from two threads at once.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define BACKEND "acl"
#define LIB_DIR_ENV "EDGERUN_ACL_LIB_DIR"
#define MAX_DEVICES 64
#define DYNAMIC_INPUT_NAME "ascend_mbatch_shape_data" /* the gear input a dynamic .om carries */

/* ---- vendor types and constants (docs/acl-behaviour.md) -------------------------------------- */

#define ACL_MAX_DIM_CNT 128
#define ACL_MAX_TENSOR_NAME_LEN 128
#define ACL_MAX_GEARS 128

typedef struct aclmdlIODims {
  char name[ACL_MAX_TENSOR_NAME_LEN];
  size_t dimCount;
  int64_t dims[ACL_MAX_DIM_CNT];
} aclmdlIODims;

typedef struct aclmdlBatch {
  size_t batchCount;
  uint64_t batch[ACL_MAX_GEARS];
} aclmdlBatch;

typedef struct aclmdlHW {
  size_t hwCount;
  uint64_t hw[ACL_MAX_GEARS][2];
} aclmdlHW;

_Static_assert(sizeof(aclmdlIODims) == 1160, "aclmdlIODims size");
_Static_assert(sizeof(aclmdlBatch) == 1032, "aclmdlBatch size");
_Static_assert(sizeof(aclmdlHW) == 2056, "aclmdlHW size");
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function and data pointers differ in size");

enum { ACL_DEVICE = 0, ACL_HOST = 1 };                          /* aclrtRunMode */
enum { ACL_MEMCPY_HOST_TO_DEVICE = 1, ACL_MEMCPY_DEVICE_TO_HOST = 2 }; /* aclrtMemcpyKind */
enum { ACL_MEM_MALLOC_HUGE_FIRST = 0 };                         /* aclrtMemMallocPolicy */

/* aclError values: static consts in the headers, not exported by the library. */
#define ACL_ERROR_INVALID_PARAM 100000
#define ACL_ERROR_UNINITIALIZE 100001
#define ACL_ERROR_REPEAT_INITIALIZE 100002
#define ACL_ERROR_INVALID_FILE 100003
#define ACL_ERROR_INVALID_MODEL_ID 100011
#define ACL_ERROR_PARSE_MODEL 100013
#define ACL_ERROR_READ_MODEL_FAILURE 100014
#define ACL_ERROR_MODEL_SIZE_INVALID 100015
#define ACL_ERROR_MODEL_INPUT_NOT_MATCH 100017
#define ACL_ERROR_MODEL_NOT_DYNAMIC 100019
#define ACL_ERROR_REPEAT_FINALIZE 100037
#define ACL_ERROR_BAD_ALLOC 200000
#define ACL_ERROR_INVALID_DEVICE 200002
#define ACL_ERROR_RT_PARAM_INVALID 107000
#define ACL_ERROR_RT_INVALID_DEVICEID 107001
#define ACL_ERROR_RT_CONTEXT_NULL 107002
#define ACL_ERROR_GE_PARAM_INVALID 145000
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001
#define ACL_ERROR_RT_STREAM_SYNC_TIMEOUT 507046
#define ACL_ERROR_GE_LOAD_MODEL 545001

/* ---- the vendor API, resolved once by load ------------------------------------------------------ */

typedef int32_t aclError;

static struct acl_api {
  aclError (*aclInit)(const char *config);
  aclError (*aclFinalize)(void);
  const char *(*aclGetRecentErrMsg)(void);                          /* optional */
  aclError (*aclsysGetVersionStr)(char *pkg, char *version);        /* optional (newer) */
  aclError (*aclrtGetVersion)(int32_t *major, int32_t *minor, int32_t *patch); /* optional (older) */
  const char *(*aclrtGetSocName)(void);                             /* optional */
  aclError (*aclrtSetDevice)(int32_t device);
  aclError (*aclrtResetDevice)(int32_t device);
  aclError (*aclrtCreateContext)(void **context, int32_t device);
  aclError (*aclrtDestroyContext)(void *context); /* optional */
  aclError (*aclrtSetCurrentContext)(void *context);
  aclError (*aclrtGetRunMode)(int32_t *mode);
  aclError (*aclrtCreateStream)(void **stream);
  aclError (*aclrtDestroyStream)(void *stream);
  aclError (*aclrtSynchronizeStream)(void *stream);
  aclError (*aclrtSynchronizeStreamWithTimeout)(void *stream, int32_t timeout_ms); /* optional */
  aclError (*aclrtMalloc)(void **ptr, size_t size, int32_t policy);
  aclError (*aclrtFree)(void *ptr);
  aclError (*aclrtMallocHost)(void **ptr, size_t size); /* optional: else malloc */
  aclError (*aclrtFreeHost)(void *ptr);                 /* optional */
  aclError (*aclrtMemcpy)(void *dst, size_t dst_max, const void *src, size_t count, int32_t kind);
  void *(*aclCreateDataBuffer)(void *data, size_t size);
  aclError (*aclDestroyDataBuffer)(const void *buffer);
  aclError (*aclmdlLoadFromFile)(const char *path, uint32_t *model_id);
  aclError (*aclmdlUnload)(uint32_t model_id);
  void *(*aclmdlCreateDesc)(void);
  aclError (*aclmdlDestroyDesc)(void *desc);
  aclError (*aclmdlGetDesc)(void *desc, uint32_t model_id);
  size_t (*aclmdlGetNumInputs)(void *desc);
  size_t (*aclmdlGetNumOutputs)(void *desc);
  size_t (*aclmdlGetInputSizeByIndex)(void *desc, size_t index);
  size_t (*aclmdlGetOutputSizeByIndex)(void *desc, size_t index);
  aclError (*aclmdlGetInputDims)(const void *desc, size_t index, aclmdlIODims *dims);
  aclError (*aclmdlGetOutputDims)(const void *desc, size_t index, aclmdlIODims *dims);
  aclError (*aclmdlGetCurOutputDims)(const void *desc, size_t index, aclmdlIODims *dims); /* optional */
  int32_t (*aclmdlGetInputDataType)(const void *desc, size_t index);
  int32_t (*aclmdlGetOutputDataType)(const void *desc, size_t index);
  int32_t (*aclmdlGetInputFormat)(const void *desc, size_t index);  /* optional */
  int32_t (*aclmdlGetOutputFormat)(const void *desc, size_t index); /* optional */
  const char *(*aclmdlGetInputNameByIndex)(const void *desc, size_t index);
  const char *(*aclmdlGetOutputNameByIndex)(const void *desc, size_t index);
  aclError (*aclmdlGetDynamicBatch)(const void *desc, aclmdlBatch *batch);        /* optional */
  aclError (*aclmdlGetDynamicHW)(const void *desc, size_t index, aclmdlHW *hw);   /* optional */
  aclError (*aclmdlSetDynamicBatchSize)(uint32_t id, void *dataset, size_t index, uint64_t batch); /* optional */
  aclError (*aclmdlSetDynamicHWSize)(uint32_t id, void *dataset, size_t index, uint64_t h, uint64_t w); /* optional */
  void *(*aclmdlCreateDataset)(void);
  aclError (*aclmdlDestroyDataset)(const void *dataset);
  aclError (*aclmdlAddDatasetBuffer)(void *dataset, void *buffer);
  aclError (*aclmdlExecute)(uint32_t id, const void *input, void *output);
  aclError (*aclmdlExecuteAsync)(uint32_t id, const void *input, void *output, void *stream);
} acl;

typedef struct acl_symbol {
  const char *name;
  int required;
  void *slot;
} acl_symbol;

#define SYM(required, fn) {#fn, required, (void *)&acl.fn}
static const acl_symbol acl_symbols[] = {
    SYM(1, aclInit), SYM(1, aclFinalize), SYM(0, aclGetRecentErrMsg), SYM(0, aclsysGetVersionStr),
    SYM(0, aclrtGetVersion), SYM(0, aclrtGetSocName), SYM(1, aclrtSetDevice), SYM(1, aclrtResetDevice),
    SYM(1, aclrtCreateContext), SYM(0, aclrtDestroyContext), SYM(1, aclrtSetCurrentContext), SYM(1, aclrtGetRunMode),
    SYM(1, aclrtCreateStream), SYM(1, aclrtDestroyStream), SYM(1, aclrtSynchronizeStream),
    SYM(0, aclrtSynchronizeStreamWithTimeout), SYM(1, aclrtMalloc), SYM(1, aclrtFree), SYM(0, aclrtMallocHost),
    SYM(0, aclrtFreeHost), SYM(1, aclrtMemcpy), SYM(1, aclCreateDataBuffer), SYM(1, aclDestroyDataBuffer),
    SYM(1, aclmdlLoadFromFile), SYM(1, aclmdlUnload), SYM(1, aclmdlCreateDesc), SYM(1, aclmdlDestroyDesc),
    SYM(1, aclmdlGetDesc), SYM(1, aclmdlGetNumInputs), SYM(1, aclmdlGetNumOutputs), SYM(1, aclmdlGetInputSizeByIndex),
    SYM(1, aclmdlGetOutputSizeByIndex), SYM(1, aclmdlGetInputDims), SYM(1, aclmdlGetOutputDims),
    SYM(0, aclmdlGetCurOutputDims), SYM(1, aclmdlGetInputDataType), SYM(1, aclmdlGetOutputDataType),
    SYM(0, aclmdlGetInputFormat), SYM(0, aclmdlGetOutputFormat), SYM(1, aclmdlGetInputNameByIndex),
    SYM(1, aclmdlGetOutputNameByIndex), SYM(0, aclmdlGetDynamicBatch), SYM(0, aclmdlGetDynamicHW),
    SYM(0, aclmdlSetDynamicBatchSize), SYM(0, aclmdlSetDynamicHWSize), SYM(1, aclmdlCreateDataset),
    SYM(1, aclmdlDestroyDataset), SYM(1, aclmdlAddDatasetBuffer), SYM(1, aclmdlExecute), SYM(1, aclmdlExecuteAsync),
};
#undef SYM

/*
 * Process-wide state under g_lock: the libraries, aclInit's reference count (one per open pack),
 * the context of each device. Runs take only their model's lock, never g_lock.
 */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct acl_state {
  int loaded;
  void *libs[2];      /* libascendcl.so, or libacl_rt.so + libacl_mdl.so; kept once loaded */
  char layout[32];    /* "libascendcl.so" or "libacl_rt.so+libacl_mdl.so" */
  char version[256];
  char soc[128];
  int init_refs;      /* open packs: the devices are released when it drops to 0 */
  int initialized;    /* aclInit succeeded (ours or another user's) and no aclFinalize since */
  int init_owned;     /* aclInit was ours (a REPEAT_INITIALIZE means someone else's: never finalize it) */
  int finalized;      /* we called aclFinalize once (a later aclInit may be refused) */
  void *contexts[MAX_DEVICES];
  int exiting;        /* the atexit quiesce ran: no new runs, no vendor calls on free paths */
  int running;        /* runs inside request_run (for the exit quiesce) */
  int late;           /* executions that outlived their timeout, not yet waited for (atomic) */
} g;

/* ---- errors ----------------------------------------------------------------------------------------- */

static int32_t map_vendor_code(int32_t code) {
  switch (code) {
    case ACL_ERROR_INVALID_PARAM:
    case ACL_ERROR_RT_PARAM_INVALID:
    case ACL_ERROR_GE_PARAM_INVALID:
    case ACL_ERROR_MODEL_INPUT_NOT_MATCH:
    case ACL_ERROR_MODEL_NOT_DYNAMIC:
    case ACL_ERROR_INVALID_DEVICE:
    case ACL_ERROR_RT_INVALID_DEVICEID: return ER_ERR_INVALID_ARGUMENT;
    case ACL_ERROR_BAD_ALLOC:
    case ACL_ERROR_RT_MEMORY_ALLOCATION: return ER_ERR_OUT_OF_MEMORY;
    case ACL_ERROR_RT_STREAM_SYNC_TIMEOUT: return ER_ERR_TIMEOUT;
    case ACL_ERROR_INVALID_FILE:
    case ACL_ERROR_PARSE_MODEL:
    case ACL_ERROR_READ_MODEL_FAILURE:
    case ACL_ERROR_MODEL_SIZE_INVALID:
    case ACL_ERROR_GE_LOAD_MODEL: return ER_ERR_INVALID_MODEL;
    case ACL_ERROR_UNINITIALIZE:
    case ACL_ERROR_REPEAT_INITIALIZE:
    case ACL_ERROR_REPEAT_FINALIZE:
    case ACL_ERROR_RT_CONTEXT_NULL: return ER_ERR_STATE;
    default: return ER_ERR_BACKEND;
  }
}

/* A failed call whose failure is not reported (cleanup): its thread-local message is read, so the
   next failure on this thread does not come with a stale text. */
static void drop_error(aclError e) {
  if (e != 0 && acl.aclGetRecentErrMsg) acl.aclGetRecentErrMsg();
}

/*
 * Records a failed vendor call. aclGetRecentErrMsg is thread-local and cleared once read
 * (docs/acl-behaviour.md), so this runs right after the failing call, on its thread.
 */
__attribute__((format(printf, 3, 4))) static int32_t vendor_fail(const char *call, int32_t code, const char *fmt, ...) {
  const char *recent = acl.aclGetRecentErrMsg ? acl.aclGetRecentErrMsg() : NULL;
  char message[512];
  snprintf(message, sizeof message, "%s", recent && *recent ? recent : "no message from the runtime");
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return er_fail_vendor(map_vendor_code(code), BACKEND, call, code, message, "%s: %s returned %d (%s)", what, call,
                        code, message);
}

static int32_t out_of_memory(void) { return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory"); }

/* ---- loading ------------------------------------------------------------------------------------- */

/* CANN's install roots: the current layout first, then the older toolkit ones. */
static const char *const default_dirs[] = {
    "/usr/local/Ascend/cann/lib64",
    "/usr/local/Ascend/ascend-toolkit/latest/lib64",
    NULL,
};

/* In order: $EDGERUN_ACL_LIB_DIR, setBackendSearchPath("acl", ...), the loader's search, CANN's dirs.
   RTLD_LOCAL: the runtime's symbols stay out of the global scope, so another copy of it in the
   process binds to its own (an exported helper of ours would otherwise win); libacl_mdl.so's
   NEEDED libacl_rt.so still resolves, by soname, to the libacl_rt.so loaded before it. */
static void *open_lib(const char *file, char *tried, size_t cap) {
  return er_dlopen_dirs(LIB_DIR_ENV, er_backend_search_path(ER_BACKEND_ACL), file, default_dirs,
                        RTLD_NOW | RTLD_LOCAL, tried, cap);
}

#define lib_path er_lib_path

static void close_libs(void) {
  for (int i = 0; i < 2; i++) {
    if (g.libs[i]) dlclose(g.libs[i]);
    g.libs[i] = NULL;
  }
}

static int32_t resolve_symbols(void) {
  for (size_t i = 0; i < sizeof acl_symbols / sizeof acl_symbols[0]; i++) {
    const acl_symbol *s = &acl_symbols[i];
    void *sym = NULL;
    for (int k = 0; k < 2 && !sym; k++)
      if (g.libs[k]) sym = dlsym(g.libs[k], s->name);
    if (!sym && s->required)
      return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "dlsym", "%s (%s) does not export %s: not an AscendCL runtime this "
                     "backend knows", g.layout, lib_path(g.libs[g.libs[1] && s->name[3] == 'm' ? 1 : 0]), s->name);
    memcpy(s->slot, &sym, sizeof sym); /* NULL for a missing optional symbol */
  }
  return ER_OK;
}

static void read_version(void) {
  char text[256] = "";
  if (acl.aclsysGetVersionStr) {
    char pkg[64] = "runtime";
    if (acl.aclsysGetVersionStr(pkg, text) != 0) text[0] = 0;
    text[sizeof text - 1] = 0;
    if (acl.aclGetRecentErrMsg) acl.aclGetRecentErrMsg(); /* a refusal here is not an error: drop its message */
  }
  if (!text[0] && acl.aclrtGetVersion) {
    int32_t major = 0, minor = 0, patch = 0;
    if (acl.aclrtGetVersion(&major, &minor, &patch) == 0) snprintf(text, sizeof text, "%d.%d.%d", major, minor, patch);
    else if (acl.aclGetRecentErrMsg) acl.aclGetRecentErrMsg();
  }
  snprintf(g.version, sizeof g.version, "%s", text[0] ? text : "unknown");
}

static void quiesce_at_exit(void);

#define NO_PAIR 1 /* load_pair: no libacl_rt.so found (no error set) */

/* The CANN 9 pair: libacl_rt.so, then libacl_mdl.so; NO_PAIR without libacl_rt.so, LIBRARY_NOT_FOUND
   (error set) with it but no libacl_mdl.so. */
static int32_t load_pair(char *tried, size_t cap) {
  g.libs[0] = open_lib("libacl_rt.so", tried, cap);
  if (!g.libs[0]) return NO_PAIR;
  tried[0] = 0;
  g.libs[1] = open_lib("libacl_mdl.so", tried, cap);
  if (!g.libs[1]) {
    int32_t rc = er_fail(ER_ERR_LIBRARY_NOT_FOUND, BACKEND, "dlopen",
                         "libacl_mdl.so (CANN 9 model library) not found next to libacl_rt.so (%s); tried: %s",
                         lib_path(g.libs[0]), tried);
    close_libs();
    return rc;
  }
  snprintf(g.layout, sizeof g.layout, "libacl_rt.so+libacl_mdl.so");
  return ER_OK;
}

static int32_t load_locked(void) {
  char tried[3000] = "";
  int32_t rc;
  g.libs[0] = open_lib("libascendcl.so", tried, sizeof tried);
  if (g.libs[0]) {
    snprintf(g.layout, sizeof g.layout, "libascendcl.so");
    rc = resolve_symbols();
    if (rc != ER_OK) {
      /* A CANN 9 compatibility libascendcl.so may no longer export aclmdl* (docs/acl-behaviour.md):
         the pair next to it (or on the search path) is the runtime then. Without the pair, the
         missing symbol is the error. */
      er_saved_error first;
      er_error_save(&first);
      close_libs();
      char tried_pair[3000] = "";
      int32_t pair = load_pair(tried_pair, sizeof tried_pair);
      if (pair == ER_OK) pair = resolve_symbols();
      if (pair != ER_OK) {
        close_libs();
        if (pair != NO_PAIR) return pair;
        er_error_restore(&first);
        return rc;
      }
      rc = ER_OK;
    }
  } else {
    rc = load_pair(tried, sizeof tried);
    if (rc == NO_PAIR)
      return er_fail(ER_ERR_LIBRARY_NOT_FOUND, BACKEND, "dlopen",
                     "AscendCL runtime (libascendcl.so, or libacl_rt.so + libacl_mdl.so) not found: set " LIB_DIR_ENV
                     " to the directory holding it; tried: %s",
                     tried);
    if (rc != ER_OK) return rc;
    rc = resolve_symbols();
    if (rc != ER_OK) {
      close_libs(); /* a later load (say, with EDGERUN_ACL_LIB_DIR set) starts clean */
      return rc;
    }
  }
  read_version();
  g.loaded = 1;
  /* After the runtime's own destructors were registered (at dlopen): ours runs before them. The
     library is pinned first, so that exit() never calls into an unmapped libedgerun (ort.c). */
  static int registered;
  if (!registered) {
    er_pin_library();
    registered = atexit(quiesce_at_exit) == 0;
  }
  return ER_OK;
}

/* Loads once; a failed load is retried on the next call so that each caller gets its own error. */
static int32_t acl_load(const char **version) {
  pthread_mutex_lock(&g_lock);
  int32_t rc = g.loaded ? ER_OK : load_locked();
  pthread_mutex_unlock(&g_lock);
  if (rc == ER_OK && version) *version = g.version;
  return rc;
}

/* ---- process state: aclInit, devices, contexts --------------------------------------------------- */

/* Makes the device's context current on the calling thread (every thread, before any aclrt/aclmdl call). */
static int32_t use_context(void *context) {
  aclError rc = acl.aclrtSetCurrentContext(context);
  if (rc != 0) return vendor_fail("aclrtSetCurrentContext", rc, "making the device context current on this thread");
  return ER_OK;
}

/* Makes the context current for a free path: a refusal (a device in a fault state) does not stop
   the cleanup, which is tried all the same (host-side objects need no context at all); its
   message is dropped, the free reports nothing. */
static void use_context_for_free(void *context) { drop_error(acl.aclrtSetCurrentContext(context)); }

/* Destroys the contexts and resets the devices (under g_lock): no open model uses them any more. */
static void release_devices_locked(void) {
  for (int d = 0; d < MAX_DEVICES; d++) {
    if (!g.contexts[d]) continue;
    if (acl.aclrtDestroyContext && acl.aclrtDestroyContext(g.contexts[d]) != 0 && acl.aclGetRecentErrMsg)
      acl.aclGetRecentErrMsg();
    drop_error(acl.aclrtResetDevice(d));
    g.contexts[d] = NULL;
  }
}

/* aclFinalize, once, if the aclInit was ours (under g_lock). */
static void finalize_locked(void) {
  release_devices_locked();
  if (g.init_owned) drop_error(acl.aclFinalize());
  if (g.init_owned) g.finalized = 1;
  g.init_owned = 0;
  g.initialized = 0;
}

/*
 * Whether the last close finalizes. CANN documents aclInit as once per process, so by default
 * AscendCL stays initialised until exit (a later open would otherwise find aclInit refused);
 * EDGERUN_ACL_FINALIZE=close finalizes at every last close, for runtimes that allow aclInit again.
 */
static int finalize_on_close(void) {
  const char *e = getenv("EDGERUN_ACL_FINALIZE");
  return e && strcmp(e, "close") == 0;
}

/* One more user of the runtime on device: aclInit on the first, the device's context made once. */
static int32_t acquire(int32_t device, void **context) {
  pthread_mutex_lock(&g_lock);
  int32_t rc = ER_OK;
  if (g.exiting) rc = er_fail(ER_ERR_STATE, BACKEND, NULL, "the process is exiting");
  if (rc == ER_OK && !g.initialized) {
    aclError e = acl.aclInit(NULL);
    if (e == 0) {
      g.init_owned = 1;
    } else if (e == ACL_ERROR_REPEAT_INITIALIZE && g.finalized) {
      rc = vendor_fail("aclInit", e,
                       "AscendCL was finalized when the last model closed and this runtime refuses aclInit again "
                       "in the same process; unset EDGERUN_ACL_FINALIZE so that it stays initialised until exit");
    } else if (e != ACL_ERROR_REPEAT_INITIALIZE) {
      rc = vendor_fail("aclInit", e, "initialising AscendCL");
    } else if (acl.aclGetRecentErrMsg) {
      acl.aclGetRecentErrMsg(); /* initialised by someone else in this process: used, never finalized by us */
    }
    if (rc == ER_OK) g.initialized = 1;
  }
  if (rc == ER_OK && !g.contexts[device]) {
    aclError e = acl.aclrtSetDevice(device);
    if (e != 0) rc = vendor_fail("aclrtSetDevice", e, "device %d", device);
    else if ((e = acl.aclrtCreateContext(&g.contexts[device], device)) != 0) {
      g.contexts[device] = NULL;
      rc = vendor_fail("aclrtCreateContext", e, "device %d", device);
      drop_error(acl.aclrtResetDevice(device));
    }
  }
  if (rc == ER_OK) {
    g.init_refs++;
    *context = g.contexts[device];
  } else if (g.init_refs == 0 && g.initialized && finalize_on_close()) {
    finalize_locked();
  }
  pthread_mutex_unlock(&g_lock);
  return rc;
}

/* One user fewer: the last one releases the devices (and finalizes with EDGERUN_ACL_FINALIZE=close). */
static void release(void) {
  pthread_mutex_lock(&g_lock);
  if (g.init_refs > 0 && --g.init_refs == 0 && !g.exiting) {
    if (finalize_on_close()) finalize_locked();
    else release_devices_locked();
  }
  pthread_mutex_unlock(&g_lock);
}

#define EXIT_WAIT_MS 2000 /* a run on the device longer than this: exit goes on without aclFinalize */

/*
 * At exit: refuse new runs, wait (boundedly) for those on shim threads and for executions that
 * outlived their timeout, then finalize once, so the runtime's own teardown never runs under an
 * executing model.
 */
static void settle_late_packs_locked(void);

static void quiesce_at_exit(void) {
  pthread_mutex_lock(&g_lock);
  g.exiting = 1;
  pthread_mutex_unlock(&g_lock);
  for (int waited = 0; waited < EXIT_WAIT_MS; waited++) {
    pthread_mutex_lock(&g_lock);
    settle_late_packs_locked();
    int left = g.running + __atomic_load_n(&g.late, __ATOMIC_ACQUIRE);
    if (!left && g.initialized) finalize_locked();
    pthread_mutex_unlock(&g_lock);
    if (!left) return;
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
}

static int enter_run(void) {
  pthread_mutex_lock(&g_lock);
  int ok = !g.exiting;
  if (ok) g.running++;
  pthread_mutex_unlock(&g_lock);
  return ok;
}

static void leave_run(void) {
  pthread_mutex_lock(&g_lock);
  g.running--;
  pthread_mutex_unlock(&g_lock);
}

/* ---- packs: one .om file is one loaded model -------------------------------------------------------- */

enum { DYN_NONE, DYN_BATCH, DYN_HW };

typedef struct acl_pack {
  uint32_t model_id;
  int loaded;          /* model_id is valid (aclmdlLoadFromFile succeeded) */
  int32_t device;
  int32_t run_mode;    /* ACL_HOST or ACL_DEVICE */
  void *context;
  void *desc;          /* aclmdlDesc */
  char *name;
  /* The run lock: copy in + execute + copy out of one model id, one thread at a time. */
  pthread_mutex_t run_lock;
  struct acl_request *late; /* a request whose execution outlived its timeout (under run_lock) */
  struct acl_pack *next;    /* every open pack (under g_lock), for the exit quiesce */
} acl_pack;

static acl_pack *g_packs;

static void unlist_pack(acl_pack *p) {
  pthread_mutex_lock(&g_lock);
  for (acl_pack **at = &g_packs; *at; at = &(*at)->next)
    if (*at == p) {
      *at = p->next;
      break;
    }
  pthread_mutex_unlock(&g_lock);
}

static void acl_pack_close(void *pack) {
  acl_pack *p = pack;
  if (!p) return;
  unlist_pack(p);
  /* Counted as a run, so the exit quiesce never finalizes under these calls; skipped after it. */
  if (p->context && enter_run()) {
    use_context_for_free(p->context);
    if (p->desc) drop_error(acl.aclmdlDestroyDesc(p->desc));
    if (p->loaded) drop_error(acl.aclmdlUnload(p->model_id));
    leave_run();
  }
  if (p->context) release();
  pthread_mutex_destroy(&p->run_lock);
  free(p->name);
  free(p);
}

/* "/a/b/resnet.om" -> "resnet" */
static char *model_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 3 && strcmp(base + n - 3, ".om") == 0) n -= 3;
  return strndup(base, n);
}

static int32_t acl_pack_open(const char *path, const char *options, void **out, uint32_t *model_count) {
  int64_t device = 0;
  int32_t found = er_option_int(options, "device", &device);
  if (found < 0 || device < 0 || device >= MAX_DEVICES)
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "option device must be an integer in 0..%d",
                   MAX_DEVICES - 1);
  acl_pack *p = calloc(1, sizeof *p);
  if (!p) return out_of_memory();
  pthread_mutex_init(&p->run_lock, NULL);
  p->device = (int32_t)device;
  p->name = model_name(path);
  int32_t rc = p->name ? acquire(p->device, &p->context) : out_of_memory();
  if (rc == ER_OK) rc = use_context(p->context);
  if (rc == ER_OK) {
    aclError e = acl.aclrtGetRunMode(&p->run_mode);
    if (e != 0) rc = vendor_fail("aclrtGetRunMode", e, "device %d", p->device);
    else if (p->run_mode != ACL_HOST && p->run_mode != ACL_DEVICE)
      rc = er_fail(ER_ERR_UNSUPPORTED, BACKEND, "aclrtGetRunMode", "unknown run mode %d", p->run_mode);
  }
  if (rc == ER_OK) {
    aclError e = acl.aclmdlLoadFromFile(path, &p->model_id);
    if (e != 0) rc = vendor_fail("aclmdlLoadFromFile", e, "cannot load '%s'", path);
    else p->loaded = 1;
  }
  if (rc == ER_OK && !(p->desc = acl.aclmdlCreateDesc()))
    rc = vendor_fail("aclmdlCreateDesc", ACL_ERROR_BAD_ALLOC, "'%s'", path);
  if (rc == ER_OK) {
    aclError e = acl.aclmdlGetDesc(p->desc, p->model_id);
    if (e != 0) rc = vendor_fail("aclmdlGetDesc", e, "'%s'", path);
  }
  if (rc != ER_OK) {
    acl_pack_close(p);
    return rc;
  }
  pthread_mutex_lock(&g_lock);
  p->next = g_packs;
  g_packs = p;
  pthread_mutex_unlock(&g_lock);
  *out = p;
  *model_count = 1;
  return ER_OK;
}

static const char *acl_pack_name(void *pack, uint32_t index) {
  acl_pack *p = pack;
  return index == 0 ? p->name : NULL;
}

/* ---- models ------------------------------------------------------------------------------------------ */

typedef struct acl_tensor {
  size_t acl_index;   /* index in the model's own numbering (the gear input included) */
  size_t size;        /* aclmdlGet*SizeByIndex: bytes the device buffer holds (the largest gear) */
  int32_t format;     /* aclFormat, -1 if unknown */
  uint32_t rank;
  int64_t dims[ER_MAX_DIMS]; /* -1 = set by the gear */
  uint32_t elem;
} acl_tensor;

typedef struct acl_model {
  acl_pack *pack;
  uint32_t n_in, n_out;        /* what the user sees (the gear input hidden) */
  size_t acl_inputs;           /* the model's own input count */
  acl_tensor *in, *out;
  int dynamic;                 /* DYN_NONE, DYN_BATCH or DYN_HW */
  size_t gear_index;           /* acl index of ascend_mbatch_shape_data */
  size_t gear_size;
  size_t n_gears;
  uint64_t gears[ACL_MAX_GEARS][2]; /* batch: [b, 0]; hw: [h, w] */
} acl_model;

static void acl_model_close(void *model) {
  acl_model *m = model;
  if (!m) return;
  free(m->in);
  free(m->out);
  free(m);
}

static const char *const type_names[] = {
    [0] = "FLOAT", [1] = "FLOAT16", [2] = "INT8", [3] = "INT32", [4] = "UINT8", [6] = "INT16", [7] = "UINT16",
    [8] = "UINT32", [9] = "INT64", [10] = "UINT64", [11] = "DOUBLE", [12] = "BOOL", [13] = "STRING",
    [16] = "COMPLEX64", [17] = "COMPLEX128", [27] = "BF16", [29] = "INT4", [30] = "UINT1", [33] = "COMPLEX32",
    [34] = "HIFLOAT8", [35] = "FLOAT8_E5M2", [36] = "FLOAT8_E4M3FN", [37] = "FLOAT8_E8M0", [38] = "FLOAT6_E3M2",
    [39] = "FLOAT6_E2M3", [40] = "FLOAT4_E2M1", [41] = "FLOAT4_E1M2",
};

static const char *type_name(int32_t t) {
  return t >= 0 && t < (int32_t)(sizeof type_names / sizeof type_names[0]) && type_names[t] ? type_names[t]
                                                                                           : "unknown";
}

/* aclDataType -> ER_DTYPE_* (docs/acl-behaviour.md); anything else is refused by name. */
static int32_t map_dtype(int32_t t) {
  switch (t) {
    case 0: return ER_DTYPE_FLOAT32;
    case 1: return ER_DTYPE_FLOAT16;
    case 2: return ER_DTYPE_INT8;
    case 3: return ER_DTYPE_INT32;
    case 4: return ER_DTYPE_UINT8;
    case 6: return ER_DTYPE_INT16;
    case 7: return ER_DTYPE_UINT16;
    case 8: return ER_DTYPE_UINT32;
    case 9: return ER_DTYPE_INT64;
    case 10: return ER_DTYPE_UINT64;
    case 11: return ER_DTYPE_FLOAT64;
    case 12: return ER_DTYPE_BOOL;
    default: return ER_DTYPE_UNKNOWN;
  }
}

static const char *format_name(int32_t f) {
  switch (f) {
    case 0: return "NCHW";
    case 1: return "NHWC";
    case 2: return "ND";
    case 3: return "NC1HWC0";
    case 4: return "FRACTAL_Z";
    case 12: return "NC1HWC0_C04";
    case 29: return "FRACTAL_NZ";
    case -1: return "UNDEFINED";
    default: return "OTHER";
  }
}

/* Product of dims (all >= 0) times elem, or 0 on overflow past 2^40 bytes. */
static uint64_t dense_bytes(const int64_t *dims, uint32_t rank, uint32_t elem) {
  uint64_t n = elem;
  for (uint32_t i = 0; i < rank; i++) {
    if (dims[i] < 0 || __builtin_mul_overflow(n, (uint64_t)dims[i], &n) || n > ((uint64_t)1 << 40)) return 0;
  }
  return n;
}

static int32_t describe(acl_model *m, int is_input, size_t acl_index, acl_tensor *t, er_tensor_desc *d) {
  const char *kind = is_input ? "input" : "output";
  const void *desc = m->pack->desc;
  const char *name = is_input ? acl.aclmdlGetInputNameByIndex(desc, acl_index)
                              : acl.aclmdlGetOutputNameByIndex(desc, acl_index);
  d->name = strdup(name ? name : "");
  if (!d->name) return out_of_memory();
  int32_t vt = is_input ? acl.aclmdlGetInputDataType(desc, acl_index) : acl.aclmdlGetOutputDataType(desc, acl_index);
  d->vendor_type = vt;
  d->dtype = map_dtype(vt);
  if (d->dtype == ER_DTYPE_UNKNOWN)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' has element type %s (aclDataType %d), not supported",
                   kind, d->name, type_name(vt), vt);
  aclmdlIODims dims;
  memset(&dims, 0, sizeof dims);
  aclError e = is_input ? acl.aclmdlGetInputDims(desc, acl_index, &dims)
                        : acl.aclmdlGetOutputDims(desc, acl_index, &dims);
  if (e != 0) return vendor_fail(is_input ? "aclmdlGetInputDims" : "aclmdlGetOutputDims", e, "%s '%s'", kind, d->name);
  if (dims.dimCount > ER_MAX_DIMS)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' has %zu dimensions (at most %d supported)", kind,
                   d->name, dims.dimCount, ER_MAX_DIMS);
  t->acl_index = acl_index;
  t->size = is_input ? acl.aclmdlGetInputSizeByIndex(m->pack->desc, acl_index)
                     : acl.aclmdlGetOutputSizeByIndex(m->pack->desc, acl_index);
  int32_t (*fmt)(const void *, size_t) = is_input ? acl.aclmdlGetInputFormat : acl.aclmdlGetOutputFormat;
  t->format = fmt ? fmt(desc, acl_index) : -1;
  t->rank = (uint32_t)dims.dimCount;
  t->elem = er_dtype_size(d->dtype);
  d->rank = t->rank;
  d->quant_axis = -1;
  int dynamic = 0;
  for (uint32_t i = 0; i < t->rank; i++) {
    int64_t v = dims.dims[i] < 0 ? -1 : dims.dims[i];
    t->dims[i] = d->shape[i] = v;
    if (v < 0) dynamic = 1;
  }
  er_dense_strides(d->shape, d->rank, t->elem, d->strides);
  /* CANN reports a dynamic model's outputs at the largest gear (no -1): they follow the gear all
     the same (aclmdlGetCurOutputDims after each run), so they are dynamic to the user. */
  if (!is_input && m->dynamic) d->flags |= ER_TENSOR_DYNAMIC;
  if (dynamic) {
    d->flags |= ER_TENSOR_DYNAMIC;
    if (t->size == 0)
      return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' is dynamic and the model gives no size bound", kind,
                     d->name);
    return ER_OK;
  }
  uint64_t bytes = dense_bytes(t->dims, t->rank, t->elem);
  if (bytes == 0 && t->rank > 0 && t->dims[0] != 0)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' is larger than 1 TiB", kind, d->name);
  /* The device buffer is the model's size; the user sees the dense bytes of the dims. */
  if (t->size < bytes) t->size = (size_t)bytes;
  d->byte_size = bytes;
  return ER_OK;
}

/* The gear input and the gears (aclmdlGetDynamicBatch / aclmdlGetDynamicHW), if the model has them. */
static int32_t read_gears(acl_model *m) {
  const void *desc = m->pack->desc;
  m->gear_index = (size_t)-1;
  for (size_t i = 0; i < m->acl_inputs; i++) {
    const char *name = acl.aclmdlGetInputNameByIndex(desc, i);
    if (name && strcmp(name, DYNAMIC_INPUT_NAME) == 0) m->gear_index = i;
  }
  aclmdlBatch batch;
  memset(&batch, 0, sizeof batch);
  if (acl.aclmdlGetDynamicBatch && acl.aclmdlGetDynamicBatch(desc, &batch) == 0 && batch.batchCount > 0) {
    m->dynamic = DYN_BATCH;
    m->n_gears = batch.batchCount > ACL_MAX_GEARS ? ACL_MAX_GEARS : batch.batchCount;
    for (size_t i = 0; i < m->n_gears; i++) m->gears[i][0] = batch.batch[i], m->gears[i][1] = 0;
  } else if (acl.aclGetRecentErrMsg) {
    acl.aclGetRecentErrMsg(); /* "not dynamic" is an answer, not an error */
  }
  aclmdlHW hw;
  memset(&hw, 0, sizeof hw);
  if (!m->dynamic && acl.aclmdlGetDynamicHW && acl.aclmdlGetDynamicHW(desc, (size_t)-1, &hw) == 0 && hw.hwCount > 0) {
    m->dynamic = DYN_HW;
    m->n_gears = hw.hwCount > ACL_MAX_GEARS ? ACL_MAX_GEARS : hw.hwCount;
    for (size_t i = 0; i < m->n_gears; i++) m->gears[i][0] = hw.hw[i][0], m->gears[i][1] = hw.hw[i][1];
  } else if (!m->dynamic && acl.aclGetRecentErrMsg) {
    acl.aclGetRecentErrMsg();
  }
  if (m->dynamic && m->gear_index == (size_t)-1)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "the model has %s gears but no '" DYNAMIC_INPUT_NAME "' input",
                   m->dynamic == DYN_BATCH ? "batch" : "height/width");
  if (m->dynamic && (m->dynamic == DYN_BATCH ? !acl.aclmdlSetDynamicBatchSize : !acl.aclmdlSetDynamicHWSize))
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "dlsym", "the model has gears but the runtime lacks %s",
                   m->dynamic == DYN_BATCH ? "aclmdlSetDynamicBatchSize" : "aclmdlSetDynamicHWSize");
  if (m->gear_index != (size_t)-1) m->gear_size = acl.aclmdlGetInputSizeByIndex(m->pack->desc, m->gear_index);
  return ER_OK;
}

static void free_descs(er_tensor_desc *d, uint32_t n) {
  for (uint32_t i = 0; d && i < n; i++) er_tensor_desc_clear(&d[i]);
  free(d);
}

static int32_t acl_model_open(void *pack, uint32_t index, void **out, uint32_t *n_in, er_tensor_desc **inputs,
                              uint32_t *n_out, er_tensor_desc **outputs) {
  acl_pack *p = pack;
  if (index != 0) return er_fail(ER_ERR_NOT_FOUND, BACKEND, NULL, "model index %u out of range (1 model)", index);
  int32_t rc = use_context(p->context);
  if (rc != ER_OK) return rc;
  acl_model *m = calloc(1, sizeof *m);
  if (!m) return out_of_memory();
  m->pack = p;
  m->acl_inputs = acl.aclmdlGetNumInputs(p->desc);
  size_t acl_outputs = acl.aclmdlGetNumOutputs(p->desc);
  er_tensor_desc *in = NULL, *outs = NULL;
  if (m->acl_inputs > 4096 || acl_outputs > 4096)
    rc = er_fail(ER_ERR_INVALID_MODEL, BACKEND, "aclmdlGetNumInputs", "the model reports %zu inputs and %zu outputs",
                 m->acl_inputs, acl_outputs);
  if (rc == ER_OK) rc = read_gears(m);
  if (rc == ER_OK) {
    m->n_in = (uint32_t)(m->acl_inputs - (m->gear_index != (size_t)-1));
    m->n_out = (uint32_t)acl_outputs;
    m->in = calloc(m->n_in + 1, sizeof *m->in);
    m->out = calloc(m->n_out + 1, sizeof *m->out);
    in = calloc(m->n_in + 1, sizeof *in);
    outs = calloc(m->n_out + 1, sizeof *outs);
    if (!m->in || !m->out || !in || !outs) rc = out_of_memory();
  }
  for (size_t i = 0, k = 0; rc == ER_OK && i < m->acl_inputs; i++) {
    if (i == m->gear_index) continue;
    rc = describe(m, 1, i, &m->in[k], &in[k]);
    k++;
  }
  for (uint32_t i = 0; rc == ER_OK && i < m->n_out; i++) rc = describe(m, 0, i, &m->out[i], &outs[i]);
  /* -1 dims without batch or HW gears: dynamic dims (aclmdlSetInputDynamicDims) or ranges, not handled here. */
  for (uint32_t i = 0; rc == ER_OK && !m->dynamic && i < m->n_in; i++)
    if (in[i].flags & ER_TENSOR_DYNAMIC)
      rc = er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL,
                   "input '%s' has dynamic dimensions but the model has no batch or height/width gears (dynamic dims "
                   "and shape ranges are not supported)",
                   in[i].name);
  if (rc != ER_OK) {
    free_descs(in, m->n_in);
    free_descs(outs, m->n_out);
    acl_model_close(m);
    return rc;
  }
  *out = m;
  *n_in = m->n_in;
  *inputs = in;
  *n_out = m->n_out;
  *outputs = outs;
  return ER_OK;
}

/*
 * Lists for model info and messages end at an entry: when the entries do not all fit (a JSON value
 * of model info holds under 400 characters), the list ends with "+N more" instead of a cut entry
 * (a cut "100043" of "100043x1" would name a gear the model does not have).
 */
#define LIST_CAP 360

static void list_add(char *buf, size_t cap, size_t *used, size_t *left, const char *entry) {
  size_t n = strlen(entry) + (*used ? 1 : 0);
  if (*left == 0 && *used + n + 16 < cap && *used + n < LIST_CAP) {
    *used += (size_t)snprintf(buf + *used, cap - *used, "%s%s", *used ? "," : "", entry);
    return;
  }
  (*left)++;
}

static void list_end(char *buf, size_t cap, size_t used, size_t left) {
  if (left) snprintf(buf + used, cap - used, "%s+%zu more", used ? "," : "", left);
}

/* Gear g as text: "4" (batch) or "224x224" (height x width). */
static void gear_text(const acl_model *m, size_t g, char *buf, size_t cap) {
  if (m->dynamic == DYN_BATCH) snprintf(buf, cap, "%llu", (unsigned long long)m->gears[g][0]);
  else snprintf(buf, cap, "%llux%llu", (unsigned long long)m->gears[g][0], (unsigned long long)m->gears[g][1]);
}

/* "1,2,4,8" or "224x224,448x448" */
static void gear_list(const acl_model *m, char *buf, size_t cap) {
  size_t used = 0, left = 0;
  buf[0] = 0;
  for (size_t i = 0; i < m->n_gears; i++) {
    char entry[48];
    gear_text(m, i, entry, sizeof entry);
    list_add(buf, cap, &used, &left, entry);
  }
  list_end(buf, cap, used, left);
}

static void format_list(const acl_tensor *t, uint32_t n, char *buf, size_t cap) {
  size_t used = 0, left = 0;
  buf[0] = 0;
  for (uint32_t i = 0; i < n; i++) list_add(buf, cap, &used, &left, format_name(t[i].format));
  list_end(buf, cap, used, left);
}

static int32_t acl_model_info(void *model, char *buf, size_t cap, size_t *len) {
  acl_model *m = model;
  char text[400];
  er_json_str(buf, cap, len, "backend", BACKEND, 0);
  er_json_str(buf, cap, len, "runtime_version", g.version, 1);
  er_json_str(buf, cap, len, "library", g.layout, 1);
  er_json_int(buf, cap, len, "device", m->pack->device, 1);
  er_json_str(buf, cap, len, "run_mode", m->pack->run_mode == ACL_HOST ? "host" : "device", 1);
  pthread_mutex_lock(&g_lock);
  if (acl.aclrtGetSocName && !g.soc[0]) {
    const char *soc = acl.aclrtGetSocName();
    snprintf(g.soc, sizeof g.soc, "%s", soc ? soc : "");
  }
  snprintf(text, sizeof text, "%s", g.soc);
  pthread_mutex_unlock(&g_lock);
  if (text[0]) er_json_str(buf, cap, len, "soc", text, 1);
  er_json_int(buf, cap, len, "model_id", m->pack->model_id, 1);
  format_list(m->in, m->n_in, text, sizeof text);
  er_json_str(buf, cap, len, "input_formats", text, 1);
  format_list(m->out, m->n_out, text, sizeof text);
  er_json_str(buf, cap, len, "output_formats", text, 1);
  if (m->dynamic) {
    er_json_str(buf, cap, len, "dynamic", m->dynamic == DYN_BATCH ? "batch" : "hw", 1);
    gear_list(m, text, sizeof text);
    er_json_str(buf, cap, len, "gears", text, 1);
  }
  return ER_OK;
}

/* ---- requests ----------------------------------------------------------------------------------------- */

typedef struct acl_request {
  acl_model *model;
  er_tensor_buf *bufs[2];  /* core.c's input and output arrays, kept current here */
  void **dev;              /* device buffers: user inputs, outputs, then the gear input */
  void **host;             /* ACL_HOST: the host buffers the user sees (NULL in ACL_DEVICE mode) */
  void **data_buffers;     /* aclDataBuffer of each device buffer, as dev */
  void *in_set, *out_set;  /* aclmdlDataset, built once */
  void *stream;            /* made at the first run with a timeout */
  int late;                /* its execution outlived a timeout: the device may use the buffers (atomic) */
} acl_request;

static uint32_t n_bufs(const acl_model *m) { return m->n_in + m->n_out + 1; }

static const acl_tensor *tensor_of(const acl_request *r, uint32_t k) {
  return k < r->model->n_in ? &r->model->in[k] : &r->model->out[k - r->model->n_in];
}

static er_tensor_buf *buf_of(acl_request *r, uint32_t k) {
  return k < r->model->n_in ? &r->bufs[0][k] : &r->bufs[1][k - r->model->n_in];
}

static void set_buf(er_tensor_buf *b, const acl_tensor *t, const int64_t *dims, void *data) {
  b->data = data;
  b->rank = t->rank;
  memcpy(b->shape, dims, sizeof b->shape);
  uint64_t bytes = er_dense_strides(b->shape, b->rank, t->elem, b->strides);
  b->bytes = bytes;
}

static int acl_request_pending(void *request) {
  acl_request *r = request;
  return __atomic_load_n(&r->late, __ATOMIC_ACQUIRE);
}

/*
 * Waits for an execution that outlived its timeout (under the model's run lock), at most
 * timeout_ms (<= 0: until it ends). Any request's run of the model calls it first: the model id
 * must not execute twice at once, and the late request's buffers are in use until then.
 */
static int32_t settle_late(acl_pack *p, int32_t timeout_ms) {
  acl_request *late = p->late;
  if (!late) return ER_OK;
  aclError e = timeout_ms > 0 && acl.aclrtSynchronizeStreamWithTimeout
                   ? acl.aclrtSynchronizeStreamWithTimeout(late->stream, timeout_ms)
                   : acl.aclrtSynchronizeStream(late->stream);
  if (e == ACL_ERROR_RT_STREAM_SYNC_TIMEOUT)
    return vendor_fail("aclrtSynchronizeStreamWithTimeout", e,
                       "an earlier run of this model that timed out was still executing after %d ms", timeout_ms);
  drop_error(e); /* that run's failure: it reported TIMEOUT already */
  p->late = NULL;
  __atomic_store_n(&late->late, 0, __ATOMIC_RELEASE);
  __atomic_fetch_sub(&g.late, 1, __ATOMIC_RELEASE);
  return ER_OK;
}

/* At exit (under g_lock): executions that outlived their timeout and have ended since are
   settled (a 1 ms look each), so that the exit waits only for those still running. */
static void settle_late_packs_locked(void) {
  for (acl_pack *p = g_packs; p; p = p->next) {
    if (pthread_mutex_trylock(&p->run_lock) != 0) continue; /* a run holds it: counted as running */
    if (p->late && use_context(p->context) == ER_OK) settle_late(p, 1);
    pthread_mutex_unlock(&p->run_lock);
  }
}

static void free_dev(acl_request *r, uint32_t k) {
  if (r->dev && r->dev[k]) drop_error(acl.aclrtFree(r->dev[k]));
  if (r->host && r->host[k]) {
    if (acl.aclrtFreeHost) {
      drop_error(acl.aclrtFreeHost(r->host[k]));
    } else {
      free(r->host[k]);
    }
  }
}

/* The data buffers a dataset holds are destroyed apart (aclmdlDestroyDataset leaves them). */
static void destroy_dataset(void *set) {
  if (!set) return;
  drop_error(acl.aclmdlDestroyDataset(set));
}

/* May wait for the device: core.c calls it on a worker thread while acl_request_pending says so. */
static void acl_request_free(void *request) {
  acl_request *r = request;
  if (!r) return;
  acl_pack *p = r->model->pack;
  /* Counted as a run (a worker thread may free a request while the process exits): the exit
     quiesce waits for these calls instead of finalizing under them; skipped after it. */
  if (enter_run()) {
    use_context_for_free(p->context);
    if (__atomic_load_n(&r->late, __ATOMIC_ACQUIRE)) {
      pthread_mutex_lock(&p->run_lock);
      if (p->late == r) settle_late(p, 0);
      pthread_mutex_unlock(&p->run_lock);
    }
    destroy_dataset(r->in_set);
    destroy_dataset(r->out_set);
    for (uint32_t k = 0; r->data_buffers && k < n_bufs(r->model); k++)
      if (r->data_buffers[k]) drop_error(acl.aclDestroyDataBuffer(r->data_buffers[k]));
    for (uint32_t k = 0; k < n_bufs(r->model); k++) free_dev(r, k);
    if (r->stream) drop_error(acl.aclrtDestroyStream(r->stream));
    leave_run();
  }
  free(r->dev);
  free(r->host);
  free(r->data_buffers);
  free(r);
}

/* Allocates tensor k (its largest size), its host twin in ACL_HOST mode, and its data buffer. */
static int32_t alloc_tensor(acl_request *r, uint32_t k, size_t size, const char *what) {
  size_t bytes = size ? size : 1; /* a zero-size tensor still gets an address */
  aclError e = acl.aclrtMalloc(&r->dev[k], bytes, ACL_MEM_MALLOC_HUGE_FIRST);
  if (e != 0) {
    r->dev[k] = NULL;
    return vendor_fail("aclrtMalloc", e, "%zu bytes for %s", bytes, what);
  }
  if (r->host && k < r->model->n_in + r->model->n_out) {
    if (acl.aclrtMallocHost) {
      e = acl.aclrtMallocHost(&r->host[k], bytes);
      if (e != 0) {
        r->host[k] = NULL;
        return vendor_fail("aclrtMallocHost", e, "%zu bytes for %s", bytes, what);
      }
    } else if (!(r->host[k] = calloc(1, bytes))) {
      return out_of_memory();
    }
  }
  /* The user's view starts zeroed, as on the other backends (device memory is not host-addressable
     in ACL_HOST mode: there the host twin is the view). */
  if (r->host && r->host[k]) memset(r->host[k], 0, bytes);
  else if (!r->host) memset(r->dev[k], 0, bytes);
  r->data_buffers[k] = acl.aclCreateDataBuffer(r->dev[k], bytes);
  if (!r->data_buffers[k]) return vendor_fail("aclCreateDataBuffer", ACL_ERROR_BAD_ALLOC, "%s", what);
  return ER_OK;
}

static int32_t add_buffer(void *set, void *buffer, const char *what) {
  aclError e = acl.aclmdlAddDatasetBuffer(set, buffer);
  if (e != 0) return vendor_fail("aclmdlAddDatasetBuffer", e, "%s", what);
  return ER_OK;
}

/* Datasets in the model's own order: the gear input sits at its index among the user's inputs. */
static int32_t build_datasets(acl_request *r) {
  acl_model *m = r->model;
  r->in_set = acl.aclmdlCreateDataset();
  r->out_set = acl.aclmdlCreateDataset();
  if (!r->in_set || !r->out_set) return vendor_fail("aclmdlCreateDataset", ACL_ERROR_BAD_ALLOC, "request datasets");
  int32_t rc = ER_OK;
  for (size_t i = 0, k = 0; rc == ER_OK && i < m->acl_inputs; i++) {
    if (i == m->gear_index) rc = add_buffer(r->in_set, r->data_buffers[m->n_in + m->n_out], DYNAMIC_INPUT_NAME);
    else rc = add_buffer(r->in_set, r->data_buffers[k++], "an input");
  }
  for (uint32_t i = 0; rc == ER_OK && i < m->n_out; i++)
    rc = add_buffer(r->out_set, r->data_buffers[m->n_in + i], "an output");
  return rc;
}

static int32_t acl_request_new(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **out) {
  acl_model *m = model;
  int32_t rc = use_context(m->pack->context);
  if (rc != ER_OK) return rc;
  acl_request *r = calloc(1, sizeof *r);
  if (!r) return out_of_memory();
  r->model = m;
  r->bufs[0] = inputs;
  r->bufs[1] = outputs;
  uint32_t n = n_bufs(m);
  r->dev = calloc(n, sizeof *r->dev);
  r->data_buffers = calloc(n, sizeof *r->data_buffers);
  if (m->pack->run_mode == ACL_HOST) r->host = calloc(n, sizeof *r->host);
  if (!r->dev || !r->data_buffers || (m->pack->run_mode == ACL_HOST && !r->host)) rc = out_of_memory();
  for (uint32_t k = 0; rc == ER_OK && k < m->n_in + m->n_out; k++) {
    const acl_tensor *t = tensor_of(r, k);
    char what[160];
    snprintf(what, sizeof what, "%s %u", k < m->n_in ? "input" : "output", k < m->n_in ? k : k - m->n_in);
    rc = alloc_tensor(r, k, t->size, what);
    if (rc == ER_OK) set_buf(buf_of(r, k), t, t->dims, r->host ? r->host[k] : r->dev[k]);
  }
  if (rc == ER_OK && m->gear_index != (size_t)-1)
    rc = alloc_tensor(r, m->n_in + m->n_out, m->gear_size, DYNAMIC_INPUT_NAME);
  if (rc == ER_OK) rc = build_datasets(r);
  if (rc != ER_OK) {
    acl_request_free(r);
    return rc;
  }
  *out = r;
  return ER_OK;
}

/* The gear a shape selects for tensor t (its values at the model's -1 dims), or -1. */
static int gear_of(const acl_model *m, const acl_tensor *t, const int64_t *dims) {
  uint64_t v[2] = {0, 0};
  int n = 0;
  for (uint32_t i = 0; i < t->rank; i++) {
    if (t->dims[i] >= 0) continue;
    if (dims[i] < 0 || n == 2) return -1;
    v[n++] = (uint64_t)dims[i];
  }
  if (n != (m->dynamic == DYN_BATCH ? 1 : 2)) return -1;
  for (size_t g = 0; g < m->n_gears; g++)
    if (m->gears[g][0] == v[0] && (m->dynamic == DYN_BATCH || m->gears[g][1] == v[1])) return (int)g;
  return -1;
}

static int32_t no_gear(const acl_model *m, const char *name, const int64_t *dims, uint32_t rank) {
  char shape[200] = "", gears[400];
  size_t n = 0;
  for (uint32_t i = 0; i < rank && n + 24 < sizeof shape; i++)
    n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", i ? "," : "", (long long)dims[i]);
  gear_list(m, gears, sizeof gears);
  return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                 "input '%s': shape [%s] matches no gear of the model; its %s gears are %s", name, shape,
                 m->dynamic == DYN_BATCH ? "batch" : "height x width", gears);
}

/* A dynamic input takes a shape that one gear allows; its buffer already holds the largest gear. */
static int32_t acl_request_set_shape(void *request, uint32_t index, const int64_t *dims, uint32_t rank) {
  acl_request *r = request;
  acl_model *m = r->model;
  const acl_tensor *t = &m->in[index];
  er_tensor_buf *b = buf_of(r, index);
  const char *name = acl.aclmdlGetInputNameByIndex(m->pack->desc, t->acl_index);
  if (!m->dynamic || gear_of(m, t, dims) < 0) {
    if (!m->dynamic)
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                     "input '%s' has dynamic dimensions but the model has no gears", name ? name : "?");
    return no_gear(m, name ? name : "?", dims, rank);
  }
  int64_t next[ER_MAX_DIMS] = {0};
  memcpy(next, dims, rank * sizeof *dims);
  uint64_t bytes = dense_bytes(next, rank, t->elem);
  if (bytes > t->size)
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                   "input '%s': the shape needs %llu bytes, the model's buffer holds %zu", name ? name : "?",
                   (unsigned long long)bytes, t->size);
  set_buf(b, t, next, b->data);
  return ER_OK;
}

/* The gear every dynamic input's shape agrees on (ER_OK with *gear -1 for a model without gears). */
static int32_t pick_gear(acl_request *r, int *gear) {
  acl_model *m = r->model;
  *gear = -1;
  if (!m->dynamic) return ER_OK;
  const char *first = NULL;
  for (uint32_t i = 0; i < m->n_in; i++) {
    const acl_tensor *t = &m->in[i];
    int dyn = 0;
    for (uint32_t d = 0; d < t->rank; d++) dyn |= t->dims[d] < 0;
    if (!dyn) continue;
    const char *name = acl.aclmdlGetInputNameByIndex(m->pack->desc, t->acl_index);
    int g = gear_of(m, t, r->bufs[0][i].shape);
    if (g < 0) {
      char gears[400];
      gear_list(m, gears, sizeof gears);
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                     "input '%s' has dynamic dimensions and no shape yet: feed it with a shape of one of the %s "
                     "gears %s",
                     name ? name : "?", m->dynamic == DYN_BATCH ? "batch" : "height x width", gears);
    }
    if (*gear >= 0 && g != *gear)
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                     "inputs '%s' and '%s' select different gears: every dynamic input must use the same one",
                     first ? first : "?", name ? name : "?");
    *gear = g;
    if (!first) first = name;
  }
  /* No input shows a -1 dimension: the shape cannot pick a gear, and guessing one is not done. */
  if (*gear < 0)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "aclmdlGetInputDims",
                   "the model has gears but reports no dynamic input dimension to choose one by");
  return ER_OK;
}

/* Outputs take the gear's shape: aclmdlGetCurOutputDims, else the batch put in their -1 dim. */
static int32_t refresh_outputs(acl_request *r, int gear) {
  acl_model *m = r->model;
  for (uint32_t i = 0; i < m->n_out; i++) {
    const acl_tensor *t = &m->out[i];
    int dyn = 0;
    for (uint32_t d = 0; d < t->rank; d++) dyn |= t->dims[d] < 0;
    /* An output of a model with gears may show no -1 (CANN gives the largest gear's dims) and
       still follow the gear: every output of such a model is asked. */
    if (!dyn && !m->dynamic) continue;
    int64_t dims[ER_MAX_DIMS] = {0};
    uint32_t rank = t->rank;
    aclmdlIODims cur;
    memset(&cur, 0, sizeof cur);
    if (acl.aclmdlGetCurOutputDims && acl.aclmdlGetCurOutputDims(m->pack->desc, i, &cur) == 0 &&
        cur.dimCount == t->rank) {
      for (uint32_t d = 0; d < rank; d++) dims[d] = cur.dims[d];
    } else if (!dyn) {
      if (acl.aclGetRecentErrMsg) acl.aclGetRecentErrMsg();
      for (uint32_t d = 0; d < rank; d++) dims[d] = t->dims[d]; /* the largest gear's: all that is known */
    } else if (m->dynamic == DYN_BATCH && gear >= 0) {
      if (acl.aclGetRecentErrMsg) acl.aclGetRecentErrMsg();
      for (uint32_t d = 0; d < rank; d++) dims[d] = t->dims[d] < 0 ? (int64_t)m->gears[gear][0] : t->dims[d];
    } else {
      return vendor_fail("aclmdlGetCurOutputDims", ACL_ERROR_INVALID_PARAM,
                         "output %u: its shape under the gear is unknown", i);
    }
    uint64_t bytes = dense_bytes(dims, rank, t->elem);
    for (uint32_t d = 0; d < rank; d++)
      if (dims[d] < 0) bytes = UINT64_MAX;
    if (bytes > t->size)
      return er_fail(ER_ERR_BACKEND, BACKEND, "aclmdlGetCurOutputDims",
                     "output %u: the runtime reports a shape of %llu bytes, %zu allocated", i,
                     (unsigned long long)bytes, t->size);
    er_tensor_buf *b = buf_of(r, m->n_in + i);
    set_buf(b, t, dims, b->data);
  }
  return ER_OK;
}

static int32_t copy(acl_request *r, uint32_t k, int to_device) {
  er_tensor_buf *b = buf_of(r, k);
  if (!b->bytes) return ER_OK;
  const acl_tensor *t = tensor_of(r, k);
  size_t cap = t->size ? t->size : 1;
  aclError e = to_device ? acl.aclrtMemcpy(r->dev[k], cap, r->host[k], b->bytes, ACL_MEMCPY_HOST_TO_DEVICE)
                         : acl.aclrtMemcpy(r->host[k], cap, r->dev[k], b->bytes, ACL_MEMCPY_DEVICE_TO_HOST);
  if (e != 0)
    return vendor_fail("aclrtMemcpy", e, "copying %s %u %s the device", k < r->model->n_in ? "input" : "output",
                       k < r->model->n_in ? k : k - r->model->n_in, to_device ? "to" : "from");
  return ER_OK;
}

static int32_t set_gear(acl_request *r, int gear) {
  acl_model *m = r->model;
  if (gear < 0) return ER_OK;
  uint32_t id = m->pack->model_id;
  aclError e = m->dynamic == DYN_BATCH
                   ? acl.aclmdlSetDynamicBatchSize(id, r->in_set, m->gear_index, m->gears[gear][0])
                   : acl.aclmdlSetDynamicHWSize(id, r->in_set, m->gear_index, m->gears[gear][0], m->gears[gear][1]);
  if (e != 0) {
    char text[48];
    gear_text(m, (size_t)gear, text, sizeof text);
    return vendor_fail(m->dynamic == DYN_BATCH ? "aclmdlSetDynamicBatchSize" : "aclmdlSetDynamicHWSize", e,
                       "selecting gear %s", text);
  }
  return ER_OK;
}

static int cancelled(const er_sched *sched) { return sched->cancel && atomic_load(sched->cancel); }

#define LOCK_SLICE_MS 20 /* how often a submitted run waiting for the model looks at its cancel flag */

/*
 * The model's run lock, waited for at most the run's timeout (<= 0: no limit). A submitted run
 * waits in slices so that a cancel (abort, close) ends the wait instead of a later execution.
 */
static int32_t lock_model(acl_pack *p, const er_sched *sched, uint64_t start_us) {
  if (sched->timeout_ms <= 0 && !sched->cancel) {
    pthread_mutex_lock(&p->run_lock);
    return ER_OK;
  }
  for (;;) {
    int32_t wait_ms = sched->timeout_ms > 0 ? er_time_left(sched->timeout_ms, start_us) : LOCK_SLICE_MS;
    if (sched->cancel && wait_ms > LOCK_SLICE_MS) wait_ms = LOCK_SLICE_MS;
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += (long)wait_ms * 1000000L;
    at.tv_sec += at.tv_nsec / 1000000000L;
    at.tv_nsec %= 1000000000L;
    int err = pthread_mutex_timedlock(&p->run_lock, &at);
    if (err == 0) return ER_OK;
    if (err != ETIMEDOUT) return er_fail(ER_ERR_BACKEND, BACKEND, "pthread_mutex_timedlock", "%s", strerror(err));
    if (cancelled(sched))
      return er_fail(ER_ERR_CANCELLED, BACKEND, NULL, "the run was cancelled while another run of the model executed");
    if (sched->timeout_ms > 0 && er_now_us() - start_us >= (uint64_t)sched->timeout_ms * 1000)
      return er_fail(ER_ERR_TIMEOUT, BACKEND, NULL, "another run of this model kept it busy for %d ms",
                     sched->timeout_ms);
  }
}

/* Executes under the run lock: aclmdlExecute, or with a timeout ExecuteAsync on the request's stream. */
static int32_t execute(acl_request *r, int32_t timeout_ms) {
  acl_pack *p = r->model->pack;
  if (timeout_ms <= 0 || !acl.aclrtSynchronizeStreamWithTimeout) {
    aclError e = acl.aclmdlExecute(p->model_id, r->in_set, r->out_set);
    if (e != 0) return vendor_fail("aclmdlExecute", e, "running model '%s'", p->name);
    return ER_OK;
  }
  if (!r->stream) {
    aclError e = acl.aclrtCreateStream(&r->stream);
    if (e != 0) {
      r->stream = NULL;
      return vendor_fail("aclrtCreateStream", e, "a stream for runs with a timeout");
    }
  }
  aclError e = acl.aclmdlExecuteAsync(p->model_id, r->in_set, r->out_set, r->stream);
  if (e != 0) return vendor_fail("aclmdlExecuteAsync", e, "running model '%s'", p->name);
  e = acl.aclrtSynchronizeStreamWithTimeout(r->stream, timeout_ms);
  if (e == ACL_ERROR_RT_STREAM_SYNC_TIMEOUT) {
    /* Still executing: the buffers stay the device's until a later run or the free waits it out. */
    __atomic_store_n(&r->late, 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&g.late, 1, __ATOMIC_RELEASE);
    p->late = r;
    return vendor_fail("aclrtSynchronizeStreamWithTimeout", e, "no result within %d ms", timeout_ms);
  }
  if (e != 0) return vendor_fail("aclrtSynchronizeStreamWithTimeout", e, "running model '%s'", p->name);
  return ER_OK;
}

static int32_t run_locked(acl_request *r, const er_sched *sched, int gear, uint64_t start_us) {
  acl_model *m = r->model;
  int32_t rc = settle_late(m->pack, er_time_left(sched->timeout_ms, start_us));
  if (rc == ER_OK && cancelled(sched))
    rc = er_fail(ER_ERR_CANCELLED, BACKEND, NULL, "the run was cancelled before it started");
  for (uint32_t k = 0; rc == ER_OK && r->host && k < m->n_in; k++) rc = copy(r, k, 1);
  if (rc == ER_OK) rc = set_gear(r, gear);
  if (rc == ER_OK) rc = execute(r, er_time_left(sched->timeout_ms, start_us));
  if (rc == ER_OK) rc = refresh_outputs(r, gear);
  for (uint32_t k = m->n_in; rc == ER_OK && r->host && k < m->n_in + m->n_out; k++) rc = copy(r, k, 0);
  return rc;
}

static int32_t acl_request_run(void *request, const er_sched *sched) {
  acl_request *r = request;
  acl_pack *p = r->model->pack;
  if (!enter_run()) return er_fail(ER_ERR_STATE, BACKEND, NULL, "the process is exiting");
  uint64_t start_us = sched->timeout_ms > 0 ? er_now_us() : 0; /* the clock is read only for timed runs */
  int gear = -1;
  int32_t rc = use_context(p->context); /* this thread may be a shim worker that never used the device */
  if (rc == ER_OK) rc = pick_gear(r, &gear);
  if (rc == ER_OK) rc = lock_model(p, sched, start_us);
  if (rc == ER_OK) {
    rc = run_locked(r, sched, gear, start_us);
    pthread_mutex_unlock(&p->run_lock);
  }
  leave_run();
  return rc;
}

/*
 * er_request_cancel of a submitted run. A run that has not started sees core.c's cancel flag
 * (checked after the run lock is taken) and returns CANCELLED; an execution under way cannot be
 * stopped through AscendCL and runs to its end.
 */
static int32_t acl_request_cancel(void *request) {
  (void)request;
  return ER_OK;
}

/* ---- the vtable -------------------------------------------------------------------------------------- */

const er_backend_ops er_backend_acl = {
    .name = BACKEND,
    .load = acl_load,
    .pack_open = acl_pack_open,
    .pack_name = acl_pack_name,
    .pack_close = acl_pack_close,
    .model_open = acl_model_open,
    .model_close = acl_model_close,
    .model_info = acl_model_info,
    .request_new = acl_request_new,
    .request_free = acl_request_free,
    .request_pending = acl_request_pending,
    .request_set_shape = acl_request_set_shape,
    .request_run = acl_request_run,
    .request_cancel = acl_request_cancel,
};
