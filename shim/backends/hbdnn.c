/*
 * hbdnn backend: D-Robotics RDK S100/S600 BPU through hbDNN + UCP (OpenExplorer 3.x, .hbm files).
 *
 * The vendor runtime is dlopen'ed (libhbucp.so, then libdnn.so) and its types are declared here from
 * docs/vendor-abi.md section A; no vendor header is needed. Two generations of that ABI exist on
 * S100 (8 or 10 tensor dimensions); the one in use is detected at run time and anything else is
 * refused with a message that says what was seen.
 *
 * A run is: CLEAN inputs -> hbDNNInferV2 (async task) -> hbUCPSubmitTask -> hbUCPWaitTaskDone ->
 * hbUCPReleaseTask -> INVALIDATE outputs. At most 32 tasks may exist per process (HB_UCP_MAX_TASK_NUM).
 * What the shim relies on from the real runtime is listed in docs/hbdnn-behaviour.md.
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

#define BACKEND "hbdnn"
#define LIB_DIR_ENV "EDGERUN_HBDNN_LIB_DIR"

/* ---- vendor types (S100 UCP 3.x, LP64; vendor-abi.md A.4) ---------------------------------- */

typedef struct hbUCPSysMem {
  uint64_t phyAddr;
  void *virAddr;
  uint64_t memSize;
} hbUCPSysMem;

typedef struct hbUCPSchedParam {
  int32_t priority; /* 0..255; 254 high and 255 urgent preempt */
  int64_t customId; /* tie-break, smaller first */
  uint64_t backend; /* HB_UCP_* core bits */
  uint32_t deviceId;
} hbUCPSchedParam;

typedef struct hbDNNQuantiScale {
  int32_t scaleLen;
  float *scaleData;
  int32_t zeroPointLen;
  int32_t *zeroPointData;
} hbDNNQuantiScale;

/* The 10-dimension layout (UCP 3.13.x). It is also this file's in-memory form of the properties. */
typedef struct hbDNNTensorShape {
  int32_t dimensionSize[10];
  int32_t numDimensions;
} hbDNNTensorShape;

typedef struct hbDNNTensorProperties {
  hbDNNTensorShape validShape;
  int32_t tensorType; /* hbDNNDataType, S100 numbering */
  hbDNNQuantiScale scale;
  int32_t quantiType; /* 0 none, 1 scale */
  int32_t quantizeAxis;
  int64_t alignedByteSize;
  int64_t stride[10];
} hbDNNTensorProperties;

typedef struct hbDNNTensor {
  hbUCPSysMem sysMem;
  hbDNNTensorProperties properties;
} hbDNNTensor;

/* The same layout with 8 dimensions (earlier S100 UCPs may use it; A.4). */
typedef struct hbDNNTensorShape_d8 {
  int32_t dimensionSize[8];
  int32_t numDimensions;
} hbDNNTensorShape_d8;

typedef struct hbDNNTensorProperties_d8 {
  hbDNNTensorShape_d8 validShape;
  int32_t tensorType;
  hbDNNQuantiScale scale;
  int32_t quantiType;
  int32_t quantizeAxis;
  int64_t alignedByteSize;
  int64_t stride[8];
} hbDNNTensorProperties_d8;

typedef struct hbDNNTensor_d8 {
  hbUCPSysMem sysMem;
  hbDNNTensorProperties_d8 properties;
} hbDNNTensor_d8;

_Static_assert(sizeof(hbUCPSysMem) == 24, "hbUCPSysMem size");
_Static_assert(offsetof(hbUCPSysMem, phyAddr) == 0, "hbUCPSysMem.phyAddr");
_Static_assert(offsetof(hbUCPSysMem, virAddr) == 8, "hbUCPSysMem.virAddr");
_Static_assert(offsetof(hbUCPSysMem, memSize) == 16, "hbUCPSysMem.memSize");

_Static_assert(sizeof(hbUCPSchedParam) == 32, "hbUCPSchedParam size");
_Static_assert(offsetof(hbUCPSchedParam, priority) == 0, "hbUCPSchedParam.priority");
_Static_assert(offsetof(hbUCPSchedParam, customId) == 8, "hbUCPSchedParam.customId");
_Static_assert(offsetof(hbUCPSchedParam, backend) == 16, "hbUCPSchedParam.backend");
_Static_assert(offsetof(hbUCPSchedParam, deviceId) == 24, "hbUCPSchedParam.deviceId");

_Static_assert(sizeof(hbDNNQuantiScale) == 32, "hbDNNQuantiScale size");
_Static_assert(offsetof(hbDNNQuantiScale, scaleLen) == 0, "hbDNNQuantiScale.scaleLen");
_Static_assert(offsetof(hbDNNQuantiScale, scaleData) == 8, "hbDNNQuantiScale.scaleData");
_Static_assert(offsetof(hbDNNQuantiScale, zeroPointLen) == 16, "hbDNNQuantiScale.zeroPointLen");
_Static_assert(offsetof(hbDNNQuantiScale, zeroPointData) == 24, "hbDNNQuantiScale.zeroPointData");

_Static_assert(sizeof(hbDNNTensorShape) == 44, "hbDNNTensorShape size");
_Static_assert(offsetof(hbDNNTensorShape, numDimensions) == 40, "hbDNNTensorShape.numDimensions");
_Static_assert(sizeof(hbDNNTensorProperties) == 176, "hbDNNTensorProperties size");
_Static_assert(offsetof(hbDNNTensorProperties, validShape) == 0, "props.validShape");
_Static_assert(offsetof(hbDNNTensorProperties, tensorType) == 44, "props.tensorType");
_Static_assert(offsetof(hbDNNTensorProperties, scale) == 48, "props.scale");
_Static_assert(offsetof(hbDNNTensorProperties, quantiType) == 80, "props.quantiType");
_Static_assert(offsetof(hbDNNTensorProperties, quantizeAxis) == 84, "props.quantizeAxis");
_Static_assert(offsetof(hbDNNTensorProperties, alignedByteSize) == 88, "props.alignedByteSize");
_Static_assert(offsetof(hbDNNTensorProperties, stride) == 96, "props.stride");
_Static_assert(sizeof(hbDNNTensor) == 200, "hbDNNTensor size");
_Static_assert(offsetof(hbDNNTensor, properties) == 24, "hbDNNTensor.properties");

_Static_assert(sizeof(hbDNNTensorShape_d8) == 36, "hbDNNTensorShape (8 dims) size");
_Static_assert(offsetof(hbDNNTensorShape_d8, numDimensions) == 32, "hbDNNTensorShape (8 dims).numDimensions");
_Static_assert(sizeof(hbDNNTensorProperties_d8) == 152, "hbDNNTensorProperties (8 dims) size");
_Static_assert(offsetof(hbDNNTensorProperties_d8, tensorType) == 36, "props8.tensorType");
_Static_assert(offsetof(hbDNNTensorProperties_d8, scale) == 40, "props8.scale");
_Static_assert(offsetof(hbDNNTensorProperties_d8, quantiType) == 72, "props8.quantiType");
_Static_assert(offsetof(hbDNNTensorProperties_d8, quantizeAxis) == 76, "props8.quantizeAxis");
_Static_assert(offsetof(hbDNNTensorProperties_d8, alignedByteSize) == 80, "props8.alignedByteSize");
_Static_assert(offsetof(hbDNNTensorProperties_d8, stride) == 88, "props8.stride");
_Static_assert(sizeof(hbDNNTensor_d8) == 176, "hbDNNTensor (8 dims) size");
_Static_assert(offsetof(hbDNNTensor_d8, properties) == 24, "hbDNNTensor (8 dims).properties");

/* dlsym results are stored into function pointers by memcpy (POSIX guarantees the sizes match). */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function and data pointers differ in size");

/* ---- vendor constants (A.5, A.6) --------------------------------------------------------------- */

#define HB_QUANTI_SCALE 1           /* hbDNNQuantiType on S100 (NONE = 0) */
#define HB_MEM_CACHE_INVALIDATE 1   /* hbUCPMemFlush flags; the rdk_model_zoo stubs swap them (A.9) */
#define HB_MEM_CACHE_CLEAN 2
#define HB_UCP_BPU_CORE_0 (1ull << 0) /* cores 0..3 are bits 0..3 */
#define HB_UCP_BPU_CORE_ANY (1ull << 7) /* not 0: HB_UCP_CORE_ANY = 0 means any engine type */
#define HB_MAX_BPU_CORES 4

#define HB_ERR_INVALID_ARGUMENT (-100001)
#define HB_ERR_TASK_LIMIT (-200001)
#define HB_ERR_TASK_TIMEOUT (-200002)
#define HB_ERR_TASK_RUN_FAILED (-200003)
#define HB_ERR_TASK_HANDLE_INVALID (-200004) /* the runtime no longer knows the task (e.g. a driver reset) */
#define HB_ERR_MEM_ALLOC (-400001)
#define HB_ERR_FILE_OPEN (-500001)
#define HB_ERR_MODEL_NUMBER_EXCEED (-600001) /* a file packs more models than the runtime takes */
#define HB_ERR_MODEL_INVALID (-600002)
#define HB_ERR_MODEL_IS_RUNNING (-600003) /* hbDNNRelease while tasks of the pack are alive */
#define HB_ERR_MODEL_INCOMPATIBLE (-600004)

#define MAX_LIVE_TASKS 32 /* default per-process task cap; HB_UCP_MAX_TASK_NUM changes it */
#define TASK_CAP_ENV "HB_UCP_MAX_TASK_NUM"
#define L2M_ENV "HB_DNN_USER_DEFINED_L2M_SIZES"
#define ALIGN_S100 32 /* every -1 stride: a multiple of the SoC's alignment (docs/hbdnn-behaviour.md) */
#define ALIGN_S600 64 /* also what an unknown SoC gets: a multiple of 32, so right on both */
#define MAX_POLL_US 64000 /* back-off cap when polling late tasks: each timed-out wait logs on a board */
#define PROBE_BYTES 512   /* bigger than any properties layout */
#define PROBE_FILL 0xA5

/* ---- the vendor API, resolved once by load ------------------------------------------------------ */

typedef const char *(*hb_desc_fn)(int32_t code);

static struct hb_api {
  const char *(*hbDNNGetVersion)(void);
  int32_t (*hbDNNInitializeFromFiles)(void **packed, const char **files, int32_t count);
  int32_t (*hbDNNRelease)(void *packed);
  int32_t (*hbDNNGetModelNameList)(const char ***names, int32_t *count, void *packed);
  int32_t (*hbDNNGetModelHandle)(void **handle, void *packed, const char *name);
  int32_t (*hbDNNGetInputCount)(int32_t *count, void *handle);
  int32_t (*hbDNNGetOutputCount)(int32_t *count, void *handle);
  int32_t (*hbDNNGetInputName)(const char **name, void *handle, int32_t index);
  int32_t (*hbDNNGetOutputName)(const char **name, void *handle, int32_t index);
  /* props points to a properties struct of the runtime's layout (8 or 10 dims). */
  int32_t (*hbDNNGetInputTensorProperties)(void *props, void *handle, int32_t index);
  int32_t (*hbDNNGetOutputTensorProperties)(void *props, void *handle, int32_t index);
  /* output/input point to hbDNNTensor arrays of the runtime's layout. */
  int32_t (*hbDNNInferV2)(void **task, void *output, const void *input, void *handle);
  int32_t (*hbDNNGetCompileBpuCoreNum)(int32_t *cores, void *handle);                       /* optional */
  int32_t (*hbDNNGetTaskOutputTensorProperties)(void *props, void *task, int32_t sub, int32_t index); /* optional */
  hb_desc_fn hbDNNGetErrorDesc;                                                              /* optional */
  const char *(*hbUCPGetVersion)(void);
  const char *(*hbUCPGetSocName)(void);
  int32_t (*hbUCPSubmitTask)(void *task, hbUCPSchedParam *param);
  int32_t (*hbUCPWaitTaskDone)(void *task, int32_t timeout_ms);
  int32_t (*hbUCPReleaseTask)(void *task);
  int32_t (*hbUCPSetTaskDoneCb)(void *task, void (*done)(void *task, int32_t status, void *user), void *user); /* optional */
  int32_t (*hbUCPMallocCached)(hbUCPSysMem *mem, uint64_t size, int32_t device);
  int32_t (*hbUCPMemFlush)(const hbUCPSysMem *mem, int32_t flag);
  int32_t (*hbUCPFree)(hbUCPSysMem *mem);
  hb_desc_fn hbUCPGetErrorDesc; /* optional */
} hb;

enum { LIB_NONE = -1, LIB_UCP = 0, LIB_DNN = 1 };

typedef struct hb_symbol {
  const char *name;
  int lib, alt_lib; /* where to look first, and where else (error descriptions: exporter unverified, A.2) */
  int required;
  void *slot;       /* address of the function pointer in hb */
} hb_symbol;

#define SYM(lib, alt, required, fn) {#fn, lib, alt, required, (void *)&hb.fn}
static const hb_symbol hb_symbols[] = {
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetVersion),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNInitializeFromFiles),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNRelease),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetModelNameList),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetModelHandle),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetInputCount),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetOutputCount),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetInputName),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetOutputName),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetInputTensorProperties),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNGetOutputTensorProperties),
    SYM(LIB_DNN, LIB_NONE, 1, hbDNNInferV2),
    /* Only informative (model_info) or for dynamic outputs: their absence must not block inference. */
    SYM(LIB_DNN, LIB_NONE, 0, hbDNNGetCompileBpuCoreNum),
    SYM(LIB_DNN, LIB_NONE, 0, hbDNNGetTaskOutputTensorProperties),
    SYM(LIB_DNN, LIB_UCP, 0, hbDNNGetErrorDesc),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPGetVersion),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPGetSocName),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPSubmitTask),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPWaitTaskDone),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPReleaseTask),
    /* Lets a cancel wake a waiting run; without it cancels wait for the task (the old behaviour). */
    SYM(LIB_UCP, LIB_NONE, 0, hbUCPSetTaskDoneCb),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPMallocCached),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPMemFlush),
    SYM(LIB_UCP, LIB_NONE, 1, hbUCPFree),
    SYM(LIB_UCP, LIB_DNN, 0, hbUCPGetErrorDesc),
};
#undef SYM

/*
 * Process-wide state. One mutex guards the load, the layout verdict, the task counter, and the
 * vendor calls whose thread safety is unverified (A.7.6: model load/release against task
 * creation). All of them are short; waiting for a task happens outside the lock.
 */
static pthread_mutex_t hb_lock = PTHREAD_MUTEX_INITIALIZER;

static struct hb_state {
  int loaded;
  void *libs[2];         /* LIB_UCP, LIB_DNN; never closed once loaded (the runtime owns threads) */
  char version[256];     /* what load reports */
  char ucp_version[64];
  char dnn_version[96];
  char soc[128];
  int version_dims;      /* 10 when the UCP version implies it, 0 when only the probe can tell */
  int layout_dims;       /* verdict of the first probe (8 or 10), 0 before any model was opened */
  int live_tasks;        /* created and not yet released, across all requests */
  void **orphans;        /* tasks whose release failed after their request was freed: retried */
  int n_orphans;
  void **refused_packs;  /* packed handles hbDNNRelease refused (-600003): retried, never dropped */
  int n_refused;
  hbUCPSysMem *unfreed;  /* buffers hbUCPFree refused (not in use by us): retried at later frees and closes */
  int n_unfreed;
} g;

/* ---- errors ----------------------------------------------------------------------------------------- */

static int32_t map_vendor_code(int32_t code) {
  switch (code) {
    case HB_ERR_FILE_OPEN: return ER_ERR_FILE;
    case HB_ERR_MODEL_NUMBER_EXCEED:
    case HB_ERR_MODEL_INVALID:
    case HB_ERR_MODEL_INCOMPATIBLE: return ER_ERR_INVALID_MODEL;
    case HB_ERR_TASK_LIMIT: return ER_ERR_BUSY;
    case HB_ERR_TASK_TIMEOUT: return ER_ERR_TIMEOUT;
    case HB_ERR_INVALID_ARGUMENT: return ER_ERR_INVALID_ARGUMENT;
    case HB_ERR_MEM_ALLOC: return ER_ERR_OUT_OF_MEMORY;
    default: return ER_ERR_BACKEND;
  }
}

/* The runtime's own text for a code; hbDNN codes are aliases of UCP codes, so either table may know it. */
static const char *vendor_desc(const char *call, int32_t code) {
  int dnn_first = strncmp(call, "hbDNN", 5) == 0;
  hb_desc_fn first = dnn_first ? hb.hbDNNGetErrorDesc : hb.hbUCPGetErrorDesc;
  hb_desc_fn second = dnn_first ? hb.hbUCPGetErrorDesc : hb.hbDNNGetErrorDesc;
  const char *d = first ? first(code) : NULL;
  if ((!d || !*d) && second) d = second(code);
  return d && *d ? d : "no description from the runtime";
}

/* Records a failed vendor call: code mapped to ER_ERR_*, vendor code and description kept. */
__attribute__((format(printf, 3, 4))) static int32_t vendor_fail(const char *call, int32_t code, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *desc = vendor_desc(call, code);
  return er_fail_vendor(map_vendor_code(code), BACKEND, call, code, desc, "%s: %s returned %d (%s)", what, call, code,
                        desc);
}

static int32_t out_of_memory(void) { return er_fail(ER_ERR_OUT_OF_MEMORY, BACKEND, NULL, "out of memory"); }

/* ---- loading ------------------------------------------------------------------------------------- */

/*
 * Where to look for a library, in order: $EDGERUN_HBDNN_LIB_DIR, the directories given to
 * er_backend_set_search_path, the loader's own search (by name), then the board's /usr/hobot/lib.
 * extra_dir adds one more place (used only to recognise an X3 runtime).
 */
static void *open_lib(const char *file, const char *extra_dir, char *tried, size_t tried_cap) {
  const char *const dirs[] = {"/usr/hobot/lib", extra_dir, NULL};
  tried[0] = 0;
  return er_dlopen_dirs(LIB_DIR_ENV, er_backend_search_path(ER_BACKEND_HBDNN), file, dirs,
                        RTLD_NOW | RTLD_GLOBAL, tried, tried_cap);
}

#define lib_path er_lib_path

/*
 * No libhbucp.so. If a libdnn.so of the X3/X5 "v1" generation is present (hbDNNInfer, no
 * hbDNNInferV2), say that plainly instead of "not found".
 */
static int32_t refuse_without_ucp(const char *tried_ucp) {
  char tried[2048];
  void *dnn = open_lib("libdnn.so", "/usr/lib/hbbpu", tried, sizeof tried);
  if (dnn && dlsym(dnn, "hbDNNInfer") && !dlsym(dnn, "hbDNNInferV2")) {
    const char *(*version)(void) = NULL;
    void *sym = dlsym(dnn, "hbDNNGetVersion");
    memcpy(&version, &sym, sizeof sym);
    char text[1024];
    snprintf(text, sizeof text,
             "%s is the RDK X3/X5 libdnn v1 runtime (hbDNN %s: hbDNNInfer, hbSys* memory, 8 dimensions); this "
             "backend supports only the RDK S100/S600 UCP 3.x runtime (libhbucp.so + libdnn.so)",
             lib_path(dnn), version && version() ? version() : "?");
    dlclose(dnn);
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "dlopen", "%s", text);
  }
  if (dnn) dlclose(dnn);
  return er_fail(ER_ERR_LIBRARY_NOT_FOUND, BACKEND, "dlopen",
                 "libhbucp.so (D-Robotics UCP runtime) not found; tried: %s. Set " LIB_DIR_ENV
                 " to the directory holding libhbucp.so and libdnn.so",
                 tried_ucp);
}

static int32_t resolve_symbols(void) {
  const char *lib_names[2] = {"libhbucp.so", "libdnn.so"};
  for (size_t i = 0; i < sizeof hb_symbols / sizeof hb_symbols[0]; i++) {
    const hb_symbol *s = &hb_symbols[i];
    void *sym = dlsym(g.libs[s->lib], s->name);
    if (!sym && s->alt_lib != LIB_NONE) sym = dlsym(g.libs[s->alt_lib], s->name);
    if (!sym && s->required) {
      if (s->lib == LIB_DNN && dlsym(g.libs[LIB_DNN], "hbDNNInfer"))
        return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "dlsym",
                       "%s is the RDK X3/X5 libdnn v1 runtime (it lacks %s); this backend supports only the "
                       "RDK S100/S600 UCP 3.x runtime",
                       lib_path(g.libs[LIB_DNN]), s->name);
      return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "dlsym", "%s (%s) does not export %s: not a UCP 3.x runtime",
                     lib_names[s->lib], lib_path(g.libs[s->lib]), s->name);
    }
    memcpy(s->slot, &sym, sizeof sym); /* NULL for a missing optional symbol */
  }
  return ER_OK;
}

/* "3.13.6", "v3.13.6", "3.13.6_(4.7.5 HBRT)" -> 3, 13. */
static int parse_version(const char *s, int *major, int *minor) {
  while (*s && !isdigit((unsigned char)*s)) s++;
  return sscanf(s, "%d.%d", major, minor) == 2;
}

/*
 * Refuses generations whose structs differ (J6 UCP 3.0.x, anything not 3.x) and notes whether the
 * version alone fixes the dimension count: the 10-dimension header is the UCP 3.13.6 one; earlier
 * S100 UCPs may use 8, so for them the probe at model open decides.
 */
static int32_t check_generation(void) {
  int major = 0, minor = 0;
  if (!parse_version(g.ucp_version, &major, &minor))
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbUCPGetVersion", "cannot read the UCP version from '%s'",
                   g.ucp_version);
  if (major == 3 && minor == 0)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbUCPGetVersion",
                   "UCP %s is the J6 OE 3.0.x generation (hbDNNTensor with sysMem[4], int32 strides, other type "
                   "numbers); this backend supports only the RDK S100/S600 UCP 3.x runtime",
                   g.ucp_version);
  if (major != 3)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbUCPGetVersion",
                   "UCP %s is not a generation this backend knows (it supports S100/S600 UCP 3.1 and later 3.x)",
                   g.ucp_version);
  g.version_dims = minor >= 13 ? 10 : 0;
  return ER_OK;
}

static void copy_text(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

static int32_t load_locked(void) {
  char tried[2048];
  g.libs[LIB_UCP] = open_lib("libhbucp.so", NULL, tried, sizeof tried);
  if (!g.libs[LIB_UCP]) return refuse_without_ucp(tried);
  /* libhbucp.so is loaded RTLD_GLOBAL first, so libdnn.so binds to that copy whatever its own path. */
  g.libs[LIB_DNN] = open_lib("libdnn.so", NULL, tried, sizeof tried);
  int32_t rc = ER_OK;
  if (!g.libs[LIB_DNN])
    rc = er_fail(ER_ERR_LIBRARY_NOT_FOUND, BACKEND, "dlopen", "libdnn.so not found (libhbucp.so was: %s); tried: %s",
                 lib_path(g.libs[LIB_UCP]), tried);
  if (rc == ER_OK) rc = resolve_symbols();
  if (rc == ER_OK) {
    copy_text(g.ucp_version, sizeof g.ucp_version, hb.hbUCPGetVersion());
    copy_text(g.dnn_version, sizeof g.dnn_version, hb.hbDNNGetVersion());
    copy_text(g.soc, sizeof g.soc, hb.hbUCPGetSocName());
    rc = check_generation();
  }
  if (rc != ER_OK) {
    /* Closed so that a later load (say, with EDGERUN_HBDNN_LIB_DIR set) starts clean. */
    for (int i = 0; i < 2; i++) {
      if (g.libs[i]) dlclose(g.libs[i]);
      g.libs[i] = NULL;
    }
    return rc;
  }
  snprintf(g.version, sizeof g.version, "hbDNN %s, UCP %s", g.dnn_version, g.ucp_version);
  g.loaded = 1;
  return ER_OK;
}

/* Loads once; a failed load is retried on the next call so that each caller gets its own error. */
static int32_t hb_load(const char **version) {
  pthread_mutex_lock(&hb_lock);
  int32_t rc = g.loaded ? ER_OK : load_locked();
  pthread_mutex_unlock(&hb_lock);
  if (rc == ER_OK && version) *version = g.version;
  return rc;
}

/* ---- the properties layout: 10 or 8 dimensions ------------------------------------------------- */

static size_t props_size(int dims) {
  return dims == 10 ? sizeof(hbDNNTensorProperties) : sizeof(hbDNNTensorProperties_d8);
}

static size_t tensor_size(int dims) { return dims == 10 ? sizeof(hbDNNTensor) : sizeof(hbDNNTensor_d8); }

/* Runtime layout -> the 10-dimension form used everywhere in this file. */
static void props_decode(int dims, const void *raw, hbDNNTensorProperties *p) {
  if (dims == 10) {
    memcpy(p, raw, sizeof *p);
    return;
  }
  hbDNNTensorProperties_d8 s;
  memcpy(&s, raw, sizeof s);
  memset(p, 0, sizeof *p);
  memcpy(p->validShape.dimensionSize, s.validShape.dimensionSize, sizeof s.validShape.dimensionSize);
  p->validShape.numDimensions = s.validShape.numDimensions;
  p->tensorType = s.tensorType;
  p->scale = s.scale;
  p->quantiType = s.quantiType;
  p->quantizeAxis = s.quantizeAxis;
  p->alignedByteSize = s.alignedByteSize;
  memcpy(p->stride, s.stride, sizeof s.stride);
}

/* The 10-dimension form -> runtime layout (rank <= dims: describe_tensor refuses more). */
static void props_encode(int dims, const hbDNNTensorProperties *p, void *raw) {
  if (dims == 10) {
    memcpy(raw, p, sizeof *p);
    return;
  }
  hbDNNTensorProperties_d8 d;
  memset(&d, 0, sizeof d);
  memcpy(d.validShape.dimensionSize, p->validShape.dimensionSize, sizeof d.validShape.dimensionSize);
  d.validShape.numDimensions = p->validShape.numDimensions;
  d.tensorType = p->tensorType;
  d.scale = p->scale;
  d.quantiType = p->quantiType;
  d.quantizeAxis = p->quantizeAxis;
  d.alignedByteSize = p->alignedByteSize;
  memcpy(d.stride, p->stride, sizeof d.stride);
  memcpy(raw, &d, sizeof d);
}

/* Writes element index of an hbDNNTensor array of the runtime's layout. */
static void tensor_encode(int dims, unsigned char *array, uint32_t index, const hbUCPSysMem *mem,
                          const hbDNNTensorProperties *p) {
  unsigned char *raw = array + (size_t)index * tensor_size(dims);
  memcpy(raw, mem, sizeof *mem);
  props_encode(dims, p, raw + offsetof(hbDNNTensor, properties));
}

typedef struct probe_buf {
  _Alignas(16) unsigned char bytes[PROBE_BYTES];
} probe_buf;

/* Asks the runtime for one tensor's properties into an oversize buffer filled with PROBE_FILL. */
static int32_t read_props_raw(int is_input, void *handle, int32_t index, probe_buf *buf) {
  memset(buf->bytes, PROBE_FILL, sizeof buf->bytes);
  int32_t rc = is_input ? hb.hbDNNGetInputTensorProperties(buf->bytes, handle, index)
                        : hb.hbDNNGetOutputTensorProperties(buf->bytes, handle, index);
  if (rc != 0)
    return vendor_fail(is_input ? "hbDNNGetInputTensorProperties" : "hbDNNGetOutputTensorProperties", rc,
                       "%s %d", is_input ? "input" : "output", index);
  return ER_OK;
}

/* How many leading bytes the runtime wrote (the last byte that is not the fill, plus one). */
static size_t bytes_written(const probe_buf *buf) {
  size_t n = sizeof buf->bytes;
  while (n > 0 && buf->bytes[n - 1] == PROBE_FILL) n--;
  return n;
}

static int plausible_extent(int64_t v) { return v > 0 || v == -1; }

/*
 * Does the buffer read as a sane properties struct of `dims` dimensions? The runtime must not have
 * written past that struct, the rank must be 1..dims, the dims and strides in use positive or -1
 * (dynamic), and the two enums in their S100 ranges. Reading one layout as the other puts padding,
 * scale lengths or byte sizes where these fields are expected, which these checks reject.
 */
static int layout_fits(const probe_buf *buf, int dims) {
  if (bytes_written(buf) > props_size(dims)) return 0;
  hbDNNTensorProperties p;
  props_decode(dims, buf->bytes, &p);
  int32_t rank = p.validShape.numDimensions;
  if (rank < 1 || rank > dims) return 0;
  for (int32_t i = 0; i < rank; i++)
    if (!plausible_extent(p.validShape.dimensionSize[i]) || !plausible_extent(p.stride[i])) return 0;
  if (p.tensorType < 0 || p.tensorType > 13) return 0;
  if (p.quantiType != 0 && p.quantiType != HB_QUANTI_SCALE) return 0;
  return p.alignedByteSize >= -1;
}

/* One line of evidence for an error message: the fields as each layout reads them. */
static void describe_probe(const probe_buf *buf, const char *what, char *out, size_t cap) {
  hbDNNTensorProperties p10, p8;
  props_decode(10, buf->bytes, &p10);
  props_decode(8, buf->bytes, &p8);
  snprintf(out, cap,
           "%s: read as 10 dimensions numDimensions=%d tensorType=%d quantiType=%d alignedByteSize=%lld; as 8 "
           "dimensions numDimensions=%d tensorType=%d quantiType=%d alignedByteSize=%lld; the runtime wrote %zu bytes",
           what, p10.validShape.numDimensions, p10.tensorType, p10.quantiType, (long long)p10.alignedByteSize,
           p8.validShape.numDimensions, p8.tensorType, p8.quantiType, (long long)p8.alignedByteSize,
           bytes_written(buf));
}

enum { FITS_8 = 1, FITS_10 = 2 };

/* Probes every tensor of a model; returns the layouts that fit all of them and evidence for errors. */
static int32_t probe_model(void *handle, int32_t n_in, int32_t n_out, int *fits, char *evidence, size_t cap) {
  *fits = FITS_8 | FITS_10;
  evidence[0] = 0;
  for (int32_t k = 0; k < n_in + n_out; k++) {
    int is_input = k < n_in;
    int32_t index = is_input ? k : k - n_in;
    probe_buf buf;
    int32_t rc = read_props_raw(is_input, handle, index, &buf);
    if (rc != ER_OK) return rc;
    int f = (layout_fits(&buf, 10) ? FITS_10 : 0) | (layout_fits(&buf, 8) ? FITS_8 : 0);
    if (k == 0 || (*fits & f) == 0) {
      char what[64];
      snprintf(what, sizeof what, "%s %d", is_input ? "input" : "output", index);
      describe_probe(&buf, what, evidence, cap);
    }
    *fits &= f;
    if (!*fits) break;
  }
  return ER_OK;
}

/*
 * Decides the layout for a model: the probe must agree with the version (3.13+ => 10), must be
 * unambiguous otherwise, and every model of the process must agree with the first one.
 */
static int32_t detect_layout(void *handle, int32_t n_in, int32_t n_out, int *dims) {
  char evidence[600];
  int fits = 0;
  int32_t rc = probe_model(handle, n_in, n_out, &fits, evidence, sizeof evidence);
  if (rc != ER_OK) return rc;
  pthread_mutex_lock(&hb_lock);
  int known = g.layout_dims ? g.layout_dims : g.version_dims;
  pthread_mutex_unlock(&hb_lock);
  if (n_in + n_out == 0) fits = known == 8 ? FITS_8 : known == 10 ? FITS_10 : 0;

  if (fits == 0)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbDNNGetInputTensorProperties",
                   "unknown hbDNNTensorProperties layout (UCP %s): neither the 10- nor the 8-dimension layout fits. %s",
                   g.ucp_version, evidence);
  if (known && !(fits & (known == 10 ? FITS_10 : FITS_8)))
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbDNNGetInputTensorProperties",
                   "UCP %s should use the %d-dimension tensor layout%s, but the probe does not fit it. %s",
                   g.ucp_version, known, g.layout_dims ? " (as models opened earlier did)" : "", evidence);
  if (!known && fits == (FITS_8 | FITS_10))
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbDNNGetInputTensorProperties",
                   "cannot tell the tensor layout of UCP %s: both the 10- and the 8-dimension layouts fit. %s",
                   g.ucp_version, evidence);
  *dims = known ? known : (fits == FITS_10 ? 10 : 8);

  /* Another thread may have decided meanwhile; one process talks to one runtime, so they must agree. */
  pthread_mutex_lock(&hb_lock);
  if (!g.layout_dims) g.layout_dims = *dims;
  int agreed = g.layout_dims == *dims;
  pthread_mutex_unlock(&hb_lock);
  if (!agreed)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbDNNGetInputTensorProperties",
                   "this model reads as the %d-dimension layout, models opened earlier as the other one. %s", *dims,
                   evidence);
  return ER_OK;
}

/* ---- tensor descriptions ---------------------------------------------------------------------------- */

static const char *const vendor_type_names[] = {"S4",  "U4",  "S8",  "U8",  "F16", "S16",  "U16",
                                                "F32", "S32", "U32", "F64", "S64", "U64", "BOOL8"};

static const char *vendor_type_name(int32_t t) {
  return t >= 0 && t < (int32_t)(sizeof vendor_type_names / sizeof vendor_type_names[0]) ? vendor_type_names[t]
                                                                                          : "unknown";
}

/* S100 hbDNNDataType numbers (A.5; J6 and X5 number them differently). */
static int32_t map_dtype(int32_t t) {
  switch (t) {
    case 2: return ER_DTYPE_INT8;
    case 3: return ER_DTYPE_UINT8;
    case 4: return ER_DTYPE_FLOAT16;
    case 5: return ER_DTYPE_INT16;
    case 6: return ER_DTYPE_UINT16;
    case 7: return ER_DTYPE_FLOAT32;
    case 8: return ER_DTYPE_INT32;
    case 9: return ER_DTYPE_UINT32;
    case 10: return ER_DTYPE_FLOAT64;
    case 11: return ER_DTYPE_INT64;
    case 12: return ER_DTYPE_UINT64;
    case 13: return ER_DTYPE_BOOL;
    default: return ER_DTYPE_UNKNOWN; /* 0/1 = S4/U4 and anything newer */
  }
}

static int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

static int shape_known(const hbDNNTensorProperties *p) {
  for (int32_t i = 0; i < p->validShape.numDimensions; i++)
    if (p->validShape.dimensionSize[i] < 0) return 0;
  return 1;
}

/*
 * Fills the -1 strides of an input whose shape is known. NV12 models report Y/UV inputs with
 * strides [-1,-1,1,1] / [-1,-1,2,1] even at a fixed size. The runtime wants every -1 stride at
 * least the dense step and a multiple of the SoC's alignment (32 on S100, 64 on S600): Y
 * 1x220x220x1 => [49280,224,1,1] on S100, [56320,256,1,1] on S600. Strides it gave are kept.
 */
static void fill_strides(hbDNNTensorProperties *p, uint32_t elem, int64_t align) {
  int32_t rank = p->validShape.numDimensions;
  int64_t step = elem;
  for (int32_t i = rank - 1; i >= 0; i--) {
    if (p->stride[i] < 0) p->stride[i] = round_up(step, align);
    step = p->stride[i] * p->validShape.dimensionSize[i]; /* callers check layout_in_range first */
  }
}

/* Bytes a tensor spans through its strides: the largest stride*dim (for padded rows, the padded size). */
static uint64_t strided_extent(const hbDNNTensorProperties *p, uint32_t elem) {
  int64_t extent = elem;
  for (int32_t i = 0; i < p->validShape.numDimensions; i++) {
    int64_t span = p->stride[i] * p->validShape.dimensionSize[i];
    if (span > extent) extent = span;
  }
  return (uint64_t)extent;
}

/*
 * Whether every stride*dim the functions above compute stays below MAX_TENSOR_BYTES, strides to
 * be filled included (each at most the step below it, rounded up). A runtime never reports such
 * sizes; a corrupt or misread struct could, and the arithmetic must not overflow on it.
 */
#define MAX_TENSOR_BYTES ((int64_t)1 << 40)
static int layout_in_range(const hbDNNTensorProperties *p, uint32_t elem) {
  int64_t step = elem;
  for (int32_t i = p->validShape.numDimensions - 1; i >= 0; i--) {
    int64_t stride = p->stride[i] >= 0 ? p->stride[i] : round_up(step, ALIGN_S600); /* the larger one */
    int64_t dim = p->validShape.dimensionSize[i] > 0 ? p->validShape.dimensionSize[i] : 1;
    if (stride > MAX_TENSOR_BYTES || __builtin_mul_overflow(stride, dim, &step) || step > MAX_TENSOR_BYTES) return 0;
  }
  return 1;
}

/*
 * What a request allocates: alignedByteSize, or the strided extent when that is larger (filled
 * strides). alignedByteSize -1 (NV12, dynamic inputs) means "not given": stride[0] * dim[0], as
 * every known caller allocates.
 */
static uint64_t alloc_size(const hbDNNTensorProperties *p, uint32_t elem) {
  if (p->alignedByteSize < 0 && p->validShape.numDimensions > 0)
    return (uint64_t)(p->stride[0] * p->validShape.dimensionSize[0]);
  uint64_t extent = strided_extent(p, elem);
  return p->alignedByteSize > 0 && (uint64_t)p->alignedByteSize > extent ? (uint64_t)p->alignedByteSize : extent;
}

static int is_dynamic(const hbDNNTensorProperties *p) {
  for (int32_t i = 0; i < p->validShape.numDimensions; i++)
    if (p->validShape.dimensionSize[i] < 0 || p->stride[i] < 0) return 1;
  return 0;
}

/* Strides that differ from the dense ones; dims of size 1 are skipped, their stride is never stepped. */
static int is_padded(const er_tensor_desc *d, uint32_t elem) {
  int64_t dense[ER_MAX_DIMS];
  er_dense_strides(d->shape, d->rank, elem, dense);
  for (uint32_t i = 0; i < d->rank; i++)
    if (d->shape[i] != 1 && d->strides[i] >= 0 && dense[i] >= 0 && d->strides[i] != dense[i]) return 1;
  return 0;
}

static int32_t copy_quantization(const hbDNNTensorProperties *p, er_tensor_desc *d) {
  d->quant_axis = -1;
  if (p->quantiType != HB_QUANTI_SCALE) return ER_OK;
  d->quant_type = 1;
  d->quant_axis = p->quantizeAxis < 0 ? -1 : p->quantizeAxis;
  d->flags |= ER_TENSOR_QUANTIZED;
  if (p->scale.scaleLen > 0 && p->scale.scaleData) {
    d->scales = malloc((size_t)p->scale.scaleLen * sizeof *d->scales);
    if (!d->scales) return out_of_memory();
    memcpy(d->scales, p->scale.scaleData, (size_t)p->scale.scaleLen * sizeof *d->scales);
    d->scale_count = (uint32_t)p->scale.scaleLen;
  }
  if (p->scale.zeroPointLen > 0 && p->scale.zeroPointData) {
    d->zero_points = malloc((size_t)p->scale.zeroPointLen * sizeof *d->zero_points);
    if (!d->zero_points) return out_of_memory();
    memcpy(d->zero_points, p->scale.zeroPointData, (size_t)p->scale.zeroPointLen * sizeof *d->zero_points);
    d->zero_point_count = (uint32_t)p->scale.zeroPointLen;
  }
  return ER_OK;
}

/* Builds an er_tensor_desc; for inputs it first fills missing strides into p (used at run time). */
static int32_t describe_tensor(const char *name, int is_input, int dims, int64_t align, hbDNNTensorProperties *p,
                               er_tensor_desc *d) {
  const char *kind = is_input ? "input" : "output";
  d->name = strdup(name ? name : "");
  if (!d->name) return out_of_memory();
  d->vendor_type = p->tensorType;
  d->dtype = map_dtype(p->tensorType);
  if (d->dtype == ER_DTYPE_UNKNOWN)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' has element type %s (hbDNNDataType %d), not supported",
                   kind, d->name, vendor_type_name(p->tensorType), p->tensorType);
  int32_t rank = p->validShape.numDimensions;
  if (rank < 0 || rank > dims)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' has %d dimensions (this layout allows %d)", kind,
                   d->name, rank, dims);
  uint32_t elem = er_dtype_size(d->dtype);
  if (!layout_in_range(p, elem))
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "%s '%s' spans more than %lld bytes by its shape and strides",
                   kind, d->name, (long long)MAX_TENSOR_BYTES);
  if (is_input && shape_known(p)) fill_strides(p, elem, align);

  d->rank = (uint32_t)rank;
  for (int32_t i = 0; i < rank; i++) {
    d->shape[i] = p->validShape.dimensionSize[i];
    d->strides[i] = p->stride[i];
  }
  if (is_dynamic(p)) d->flags |= ER_TENSOR_DYNAMIC;
  if (is_padded(d, elem)) d->flags |= ER_TENSOR_PADDED;
  d->byte_size = is_dynamic(p) ? 0 : alloc_size(p, elem);
  return copy_quantization(p, d);
}

/* ---- packs ------------------------------------------------------------------------------------------- */

typedef struct hb_pack {
  void *packed;   /* hbDNNPackedHandle_t */
  uint32_t count;
  char **names;   /* owned copies of hbDNNGetModelNameList */
} hb_pack;

static void give_task_slot(void);

/* Keeps a handle on a growable list (under hb_lock); 0 when out of memory (the handle is then leaked). */
static int keep_handle(void ***list, int *n, void *h) {
  void **grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
  if (!grown) return 0;
  grown[(*n)++] = h;
  *list = grown;
  return 1;
}

/* Frees again the buffers hbUCPFree refused earlier (under hb_lock). */
static void retry_unfreed(void) {
  for (int i = 0; i < g.n_unfreed;) {
    if (hb.hbUCPFree(&g.unfreed[i]) == 0) g.unfreed[i] = g.unfreed[--g.n_unfreed];
    else i++;
  }
}

/*
 * Frees a buffer no task of ours uses any more. A refusal (no known cause on a board; the
 * simulator can inject one) keeps it for a retry at the next free or pack close, so device
 * memory is not lost for the rest of the process.
 */
static void free_mem(hbUCPSysMem *mem) {
  int32_t rc = hb.hbUCPFree(mem);
  pthread_mutex_lock(&hb_lock);
  if (rc != 0) {
    hbUCPSysMem *grown = realloc(g.unfreed, (size_t)(g.n_unfreed + 1) * sizeof *grown);
    if (grown) {
      grown[g.n_unfreed++] = *mem;
      g.unfreed = grown;
    }
  } else if (g.n_unfreed) {
    retry_unfreed();
  }
  pthread_mutex_unlock(&hb_lock);
}

/*
 * Retries what the runtime refused earlier (under hb_lock): orphaned tasks the device has finished
 * (a 1 ms wait first: releasing a running task would block), then packs refused while their
 * tasks were alive. Runs at every pack close, so a refused pack goes once its tasks are gone.
 */
static void retry_refused(void) {
  for (int i = 0; i < g.n_orphans;) {
    int32_t wait = hb.hbUCPWaitTaskDone(g.orphans[i], 1);
    /* -200004: the runtime no longer has the task (a reset): nothing is left to release. */
    int32_t rel = wait == HB_ERR_TASK_HANDLE_INVALID ? wait : wait == 0 ? hb.hbUCPReleaseTask(g.orphans[i]) : wait;
    if (rel == 0 || rel == HB_ERR_TASK_HANDLE_INVALID) {
      g.orphans[i] = g.orphans[--g.n_orphans];
      g.live_tasks--;
    } else {
      i++;
    }
  }
  for (int i = 0; i < g.n_refused;) {
    if (hb.hbDNNRelease(g.refused_packs[i]) == 0) g.refused_packs[i] = g.refused_packs[--g.n_refused];
    else i++;
  }
  retry_unfreed();
}

static void hb_pack_close(void *pack) {
  hb_pack *p = pack;
  if (!p) return;
  if (p->packed) {
    pthread_mutex_lock(&hb_lock);
    retry_refused();
    /* -600003: tasks of this pack are still alive (a release failed). The handle is kept and the
       release retried at later closes; dropping it would leak the model in the runtime for good. */
    if (hb.hbDNNRelease(p->packed) != 0) keep_handle(&g.refused_packs, &g.n_refused, p->packed);
    pthread_mutex_unlock(&hb_lock);
  }
  for (uint32_t i = 0; p->names && i < p->count; i++) free(p->names[i]);
  free(p->names);
  free(p);
}

static int32_t copy_model_names(hb_pack *p, const char *path) {
  const char **list = NULL;
  int32_t n = 0;
  int32_t rc = hb.hbDNNGetModelNameList(&list, &n, p->packed);
  if (rc != 0) return vendor_fail("hbDNNGetModelNameList", rc, "'%s'", path);
  if (n <= 0 || !list)
    return er_fail(ER_ERR_INVALID_MODEL, BACKEND, "hbDNNGetModelNameList", "'%s' holds no models", path);
  p->names = calloc((size_t)n, sizeof *p->names);
  if (!p->names) return out_of_memory();
  p->count = (uint32_t)n;
  for (int32_t i = 0; i < n; i++) {
    p->names[i] = strdup(list[i] ? list[i] : "");
    if (!p->names[i]) return out_of_memory();
  }
  return ER_OK;
}

/* The runtime's own "cannot open file" says little; name the path and the reason first. */
static int32_t check_model_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return er_fail(ER_ERR_FILE, BACKEND, "stat", "model file '%s' does not exist", path);
  if (!S_ISREG(st.st_mode)) return er_fail(ER_ERR_FILE, BACKEND, NULL, "'%s' is not a regular file", path);
  FILE *f = fopen(path, "rb");
  if (!f) return er_fail(ER_ERR_FILE, BACKEND, "fopen", "model file '%s' cannot be read", path);
  fclose(f);
  return ER_OK;
}

static int32_t hb_pack_open(const char *path, const char *options, void **out, uint32_t *model_count) {
  (void)options; /* no hbdnn options yet */
  int32_t rc = check_model_file(path);
  if (rc != ER_OK) return rc;
  hb_pack *p = calloc(1, sizeof *p);
  if (!p) return out_of_memory();
  const char *files[1] = {path};
  pthread_mutex_lock(&hb_lock);
  rc = hb.hbDNNInitializeFromFiles(&p->packed, files, 1);
  pthread_mutex_unlock(&hb_lock);
  if (rc != 0) {
    p->packed = NULL;
    hb_pack_close(p);
    return vendor_fail("hbDNNInitializeFromFiles", rc, "cannot load '%s'", path);
  }
  rc = copy_model_names(p, path);
  if (rc != ER_OK) {
    hb_pack_close(p);
    return rc;
  }
  *out = p;
  *model_count = p->count;
  return ER_OK;
}

static const char *hb_pack_name(void *pack, uint32_t index) {
  hb_pack *p = pack;
  return index < p->count ? p->names[index] : NULL;
}

/* ---- models ------------------------------------------------------------------------------------------ */

typedef struct hb_model {
  void *handle;                  /* hbDNNHandle_t, owned by the pack */
  int dims;                      /* 10 or 8: the runtime's properties layout */
  uint32_t n_in, n_out;
  hbDNNTensorProperties *props;  /* inputs then outputs; input strides filled */
  int32_t compiled_cores;        /* hbDNNGetCompileBpuCoreNum, 0 if unknown */
  int64_t align;                 /* -1 stride alignment of the SoC (ALIGN_S100 / ALIGN_S600) */
  int s600;                      /* the SoC names itself S600 */
} hb_model;

static void hb_model_close(void *model) {
  hb_model *m = model;
  if (!m) return;
  free(m->props);
  free(m);
}

static int32_t tensor_name(int is_input, void *handle, int32_t index, const char **name) {
  int32_t rc = is_input ? hb.hbDNNGetInputName(name, handle, index) : hb.hbDNNGetOutputName(name, handle, index);
  if (rc != 0)
    return vendor_fail(is_input ? "hbDNNGetInputName" : "hbDNNGetOutputName", rc, "%s %d",
                       is_input ? "input" : "output", index);
  return ER_OK;
}

/* Reads every tensor's properties in the detected layout and describes it. */
static int32_t describe_model(hb_model *m, er_tensor_desc *in, er_tensor_desc *out) {
  for (uint32_t k = 0; k < m->n_in + m->n_out; k++) {
    int is_input = k < m->n_in;
    int32_t index = (int32_t)(is_input ? k : k - m->n_in);
    probe_buf buf;
    const char *name = NULL;
    int32_t rc = read_props_raw(is_input, m->handle, index, &buf);
    if (rc == ER_OK) rc = tensor_name(is_input, m->handle, index, &name);
    if (rc != ER_OK) return rc;
    props_decode(m->dims, buf.bytes, &m->props[k]);
    rc = describe_tensor(name, is_input, m->dims, m->align, &m->props[k], is_input ? &in[index] : &out[index]);
    if (rc != ER_OK) return rc;
  }
  return ER_OK;
}

/*
 * The SoC decides the -1 stride alignment: S100 32, S600 64, anything else 64 (a multiple of 32,
 * so right on both). Read at each model open: the name is the runtime's, which never changes on a
 * board; the simulator can switch SoC between models.
 */
static void read_soc(hb_model *m) {
  pthread_mutex_lock(&hb_lock);
  copy_text(g.soc, sizeof g.soc, hb.hbUCPGetSocName());
  m->s600 = strstr(g.soc, "S600") != NULL;
  m->align = strstr(g.soc, "S100") && !m->s600 ? ALIGN_S100 : ALIGN_S600;
  pthread_mutex_unlock(&hb_lock);
}

static int32_t open_counts(hb_pack *p, uint32_t index, hb_model *m) {
  read_soc(m);
  int32_t rc = hb.hbDNNGetModelHandle(&m->handle, p->packed, p->names[index]);
  if (rc != 0) return vendor_fail("hbDNNGetModelHandle", rc, "model '%s'", p->names[index]);
  int32_t n_in = 0, n_out = 0;
  rc = hb.hbDNNGetInputCount(&n_in, m->handle);
  if (rc != 0) return vendor_fail("hbDNNGetInputCount", rc, "model '%s'", p->names[index]);
  rc = hb.hbDNNGetOutputCount(&n_out, m->handle);
  if (rc != 0) return vendor_fail("hbDNNGetOutputCount", rc, "model '%s'", p->names[index]);
  if (n_in < 0 || n_out < 0)
    return er_fail(ER_ERR_BACKEND, BACKEND, "hbDNNGetInputCount", "model '%s' reports %d inputs and %d outputs",
                   p->names[index], n_in, n_out);
  m->n_in = (uint32_t)n_in;
  m->n_out = (uint32_t)n_out;
  if (hb.hbDNNGetCompileBpuCoreNum && hb.hbDNNGetCompileBpuCoreNum(&m->compiled_cores, m->handle) != 0)
    m->compiled_cores = 0;
  return detect_layout(m->handle, n_in, n_out, &m->dims);
}

static void free_descs(er_tensor_desc *d, uint32_t n) {
  for (uint32_t i = 0; d && i < n; i++) er_tensor_desc_clear(&d[i]);
  free(d);
}

static int32_t hb_model_open(void *pack, uint32_t index, void **out, uint32_t *n_in, er_tensor_desc **inputs,
                             uint32_t *n_out, er_tensor_desc **outputs) {
  hb_pack *p = pack;
  if (index >= p->count)
    return er_fail(ER_ERR_NOT_FOUND, BACKEND, NULL, "model index %u out of range (%u models)", index, p->count);
  hb_model *m = calloc(1, sizeof *m);
  if (!m) return out_of_memory();
  er_tensor_desc *in = NULL, *outs = NULL;
  int32_t rc = open_counts(p, index, m);
  if (rc == ER_OK) {
    m->props = calloc(m->n_in + m->n_out + 1, sizeof *m->props);
    in = calloc(m->n_in + 1, sizeof *in);
    outs = calloc(m->n_out + 1, sizeof *outs);
    rc = m->props && in && outs ? describe_model(m, in, outs) : out_of_memory();
  }
  if (rc != ER_OK) {
    free_descs(in, m->n_in);
    free_descs(outs, m->n_out);
    hb_model_close(m);
    return rc;
  }
  *out = m;
  *n_in = m->n_in;
  *inputs = in;
  *n_out = m->n_out;
  *outputs = outs;
  return ER_OK;
}

/* BPU cores of this board: sysfs core_num, else the bpuN entries; 0 if neither is readable. */
static int board_core_count(void) {
  int n = 0;
  FILE *f = fopen("/sys/devices/system/bpu/core_num", "r");
  if (f) {
    if (fscanf(f, "%d", &n) != 1) n = 0;
    fclose(f);
    if (n > 0) return n;
  }
  DIR *dir = opendir("/sys/devices/system/bpu");
  if (!dir) return 0;
  n = 0;
  for (struct dirent *e; (e = readdir(dir));)
    if (strncmp(e->d_name, "bpu", 3) == 0 && isdigit((unsigned char)e->d_name[3])) n++;
  closedir(dir);
  return n;
}

static int32_t hb_model_info(void *model, char *buf, size_t cap, size_t *len) {
  hb_model *m = model;
  er_json_str(buf, cap, len, "backend", BACKEND, 0);
  er_json_str(buf, cap, len, "soc", g.soc, 1);
  er_json_str(buf, cap, len, "ucp_version", g.ucp_version, 1);
  er_json_str(buf, cap, len, "dnn_version", g.dnn_version, 1);
  er_json_int(buf, cap, len, "layout_dims", m->dims, 1);
  if (m->compiled_cores > 0) er_json_int(buf, cap, len, "model_bpu_cores", m->compiled_cores, 1);
  int board = board_core_count();
  if (board > 0) er_json_int(buf, cap, len, "board_bpu_cores", board, 1);
  return ER_OK;
}

/* ---- requests ----------------------------------------------------------------------------------------- */

/* A submitted run's wait for its task: see wait_woken. */
typedef struct run_wait {
  uint64_t id;
  struct hb_request *r;
  pthread_cond_t cond;
  int done;
  int32_t status; /* the callback's */
  /* Set while the run's own thread waits (armed): the callback tells core.c the run is over. */
  void (*on_done)(void *ctx);
  void *on_done_ctx;
  struct run_wait *next;
} run_wait;

typedef struct hb_request {
  hb_model *model;
  er_tensor_buf *bufs[2];        /* core.c's input and output arrays, kept current here */
  hbUCPSysMem *mem;              /* inputs then outputs; virAddr NULL = not allocated */
  hbDNNTensorProperties *props;  /* this request's copy: set_shape changes input shapes */
  unsigned char *raw[2];         /* hbDNNTensor arrays in the runtime's layout: inputs, outputs */
  int stuck;                     /* a task could not be released: the device may still use the buffers (atomic) */
  void *unreleased;              /* that task: released again when the request is freed, never dropped */
  void *late;                    /* a task whose wait timed out: released once the device is done with it */
  struct hb_request *next_late;  /* the list of requests holding a late task (under late_lock) */
  uint64_t last_run_us;          /* how long its last task took (first reset probe of the next wait) */
  int away;                      /* tasks handed to a releaser thread that has not returned (atomic) */
  run_wait wait;                 /* the submitted run's wait */
  void *started;                 /* a task hb_request_start submitted; its request_run only waits for it */
  uint64_t started_us;
  int started_woken;             /* its wait is registered (woken by the done-callback) */
} hb_request;

/*
 * Requests whose last task timed out keep that task (and its slot of the 32) until they run again
 * or are freed. When the slots run out, finished late tasks of any request are released
 * (reap_late) so idle requests cannot starve everyone else. late_lock guards every r->late.
 */
static pthread_mutex_t late_lock = PTHREAD_MUTEX_INITIALIZER;
static hb_request *late_list;

static er_tensor_buf *buf_of(hb_request *r, uint32_t k) {
  return k < r->model->n_in ? &r->bufs[0][k] : &r->bufs[1][k - r->model->n_in];
}

/* Rewrites tensor k of the hbDNNTensor arrays from mem and props. */
static void encode_tensor(hb_request *r, uint32_t k) {
  int is_input = k < r->model->n_in;
  uint32_t index = is_input ? k : k - r->model->n_in;
  tensor_encode(r->model->dims, r->raw[is_input ? 0 : 1], index, &r->mem[k], &r->props[k]);
}

static void set_buf(er_tensor_buf *b, const hbDNNTensorProperties *p, void *data, uint64_t bytes) {
  b->data = data;
  b->bytes = bytes;
  b->rank = (uint32_t)p->validShape.numDimensions;
  for (uint32_t i = 0; i < b->rank; i++) {
    b->shape[i] = p->validShape.dimensionSize[i];
    b->strides[i] = p->stride[i];
  }
}

static int32_t alloc_mem(hbUCPSysMem *mem, uint64_t size, const char *kind, const char *name) {
  memset(mem, 0, sizeof *mem);
  int32_t rc = hb.hbUCPMallocCached(mem, size, 0);
  if (rc != 0) {
    memset(mem, 0, sizeof *mem);
    return vendor_fail("hbUCPMallocCached", rc, "%llu bytes for %s '%s'", (unsigned long long)size, kind, name);
  }
  return ER_OK;
}

static const char *name_of(hb_request *r, uint32_t k) {
  const char *name = NULL;
  int is_input = k < r->model->n_in;
  tensor_name(is_input, r->model->handle, (int32_t)(is_input ? k : k - r->model->n_in), &name);
  return name ? name : "?";
}

/*
 * Allocates tensor k. Dynamic inputs wait for set_shape (data stays NULL). Dynamic outputs get
 * alignedByteSize, the runtime's bound, and their shape after each run.
 */
static int32_t bind_tensor(hb_request *r, uint32_t k) {
  const hbDNNTensorProperties *p = &r->props[k];
  int is_input = k < r->model->n_in;
  const char *kind = is_input ? "input" : "output";
  uint32_t elem = er_dtype_size(map_dtype(p->tensorType));
  uint64_t size = 0;
  if (!is_dynamic(p)) size = alloc_size(p, elem);
  else if (!is_input && p->alignedByteSize > 0) size = (uint64_t)p->alignedByteSize;
  else if (!is_input)
    return er_fail(ER_ERR_UNSUPPORTED, BACKEND, NULL, "output '%s' has a dynamic shape and no size bound",
                   name_of(r, k));
  if (size > 0) {
    int32_t rc = alloc_mem(&r->mem[k], size, kind, name_of(r, k));
    if (rc != ER_OK) return rc;
  }
  set_buf(buf_of(r, k), p, r->mem[k].virAddr, size);
  encode_tensor(r, k);
  return ER_OK;
}

static int32_t settle_late(hb_request *r, int32_t timeout_ms);
static int32_t settle_away(hb_request *r, int32_t timeout_ms);

/* 1 while a late task may still use the request's buffers: freeing it now would wait for the device. */
static int hb_request_pending(void *request) {
  hb_request *r = request;
  return __atomic_load_n(&r->late, __ATOMIC_ACQUIRE) != NULL || r->unreleased ||
         __atomic_load_n(&r->away, __ATOMIC_ACQUIRE) > 0;
}

/* 0 when a task could not be released and the device may still use the buffers: the request
   cannot run again; its owner drops it (er_request_free keeps the buffers) and makes another. */
static int hb_request_usable(void *request) {
  hb_request *r = request;
  return !__atomic_load_n(&r->stuck, __ATOMIC_ACQUIRE);
}

/* Releases again a task whose release failed (may wait for the device: worker threads only). */
static void release_again(hb_request *r) {
  if (!r->unreleased) return;
  int32_t rc = hb.hbUCPReleaseTask(r->unreleased);
  if (rc == 0 || rc == HB_ERR_TASK_HANDLE_INVALID) { /* released, or gone from the runtime (a reset) */
    give_task_slot();
    __atomic_store_n(&r->stuck, 0, __ATOMIC_RELEASE); /* a release returns once the device is done with the buffers */
  } else {
    pthread_mutex_lock(&hb_lock);
    keep_handle(&g.orphans, &g.n_orphans, r->unreleased); /* its slot stays taken until then */
    pthread_mutex_unlock(&hb_lock);
  }
  r->unreleased = NULL;
}

/* May wait for the device: core.c calls it on a worker thread while hb_request_pending says so. */
static void hb_request_free(void *request) {
  hb_request *r = request;
  if (!r) return;
  settle_away(r, 0); /* a releaser thread still holds a task of this request */
  settle_late(r, 0); /* the device may still read and write this request's buffers */
  release_again(r);
  /* After a task that could not be released the device may still write these buffers: leak them. */
  for (uint32_t k = 0; r->mem && !r->stuck && k < r->model->n_in + r->model->n_out; k++)
    if (r->mem[k].virAddr) free_mem(&r->mem[k]);
  free(r->mem);
  free(r->props);
  free(r->raw[0]);
  free(r->raw[1]);
  free(r);
}

static int32_t hb_request_new(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **out) {
  hb_model *m = model;
  uint32_t n = m->n_in + m->n_out;
  hb_request *r = calloc(1, sizeof *r);
  if (!r) return out_of_memory();
  r->model = m;
  r->bufs[0] = inputs;
  r->bufs[1] = outputs;
  r->mem = calloc(n + 1, sizeof *r->mem);
  r->props = malloc((n + 1) * sizeof *r->props);
  r->raw[0] = calloc(m->n_in + 1, tensor_size(m->dims));
  r->raw[1] = calloc(m->n_out + 1, tensor_size(m->dims));
  int32_t rc = r->mem && r->props && r->raw[0] && r->raw[1] ? ER_OK : out_of_memory();
  if (rc == ER_OK) memcpy(r->props, m->props, n * sizeof *r->props);
  for (uint32_t k = 0; rc == ER_OK && k < n; k++) rc = bind_tensor(r, k);
  if (rc != ER_OK) {
    hb_request_free(r);
    return rc;
  }
  *out = r;
  return ER_OK;
}

/* Gives a dynamic input its run-time shape; reallocates only when it grows past what is held. */
static int hb_request_pending(void *request);

static int32_t hb_request_set_shape(void *request, uint32_t index, const int64_t *dims, uint32_t rank) {
  hb_request *r = request;
  if (__atomic_load_n(&r->stuck, __ATOMIC_ACQUIRE))
    return er_fail(ER_ERR_STATE, BACKEND, NULL, "request unusable after a task that could not be released");
  if (__atomic_load_n(&r->away, __ATOMIC_ACQUIRE) > 0 && settle_away(r, 1) != ER_OK)
    return er_fail(ER_ERR_BUSY, BACKEND, NULL,
                   "input '%s' cannot change shape while a cancelled task of this request is still on the device; "
                   "retry once it has finished",
                   name_of(r, index));
  /* A task that outlived its timeout may still read this input (and write the outputs): its
     buffers are neither freed nor re-laid out until it is done (a short look, never a long wait:
     this runs on the caller's thread). */
  if (hb_request_pending(r) && settle_late(r, 1) != ER_OK)
    return er_fail(ER_ERR_BUSY, BACKEND, NULL,
                   "input '%s' cannot change shape while an earlier task of this request (it timed out) is still on "
                   "the device; retry once it has finished",
                   name_of(r, index));
  hbDNNTensorProperties p = r->model->props[index]; /* the model's -1s, so strides are refilled */
  for (uint32_t i = 0; i < rank; i++) {
    if (dims[i] > INT32_MAX)
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "input '%s': dimension %u (%lld) is too large",
                     name_of(r, index), i, (long long)dims[i]);
    p.validShape.dimensionSize[i] = (int32_t)dims[i];
  }
  uint32_t elem = er_dtype_size(map_dtype(p.tensorType));
  if (!layout_in_range(&p, elem))
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "input '%s': the shape spans more than %lld bytes",
                   name_of(r, index), (long long)MAX_TENSOR_BYTES);
  fill_strides(&p, elem, r->model->align);
  uint64_t size = strided_extent(&p, elem);
  if (size > r->mem[index].memSize || !r->mem[index].virAddr) {
    hbUCPSysMem fresh;
    int32_t rc = alloc_mem(&fresh, size, "input", name_of(r, index));
    if (rc != ER_OK) return rc;
    if (r->mem[index].virAddr) free_mem(&r->mem[index]);
    r->mem[index] = fresh;
  }
  r->props[index] = p;
  set_buf(buf_of(r, index), &p, r->mem[index].virAddr, size);
  encode_tensor(r, index);
  return ER_OK;
}

/* ---- running ------------------------------------------------------------------------------------------- */

/* The runtime's cap, which HB_UCP_MAX_TASK_NUM overrides; read at each run (a getenv is cheap). */
static int task_cap(void) {
  const char *e = getenv(TASK_CAP_ENV);
  long n = e && *e ? strtol(e, NULL, 10) : 0;
  return n >= 1 && n <= 4096 ? (int)n : MAX_LIVE_TASKS;
}

/* The process-wide task budget: a task beyond the cap waits for a slot (create_in_slot). */
static int take_task_slot(void) {
  pthread_mutex_lock(&hb_lock);
  int ok = g.live_tasks < task_cap();
  if (ok) g.live_tasks++;
  pthread_mutex_unlock(&hb_lock);
  return ok;
}

static void give_task_slot(void) {
  pthread_mutex_lock(&hb_lock);
  g.live_tasks--;
  pthread_mutex_unlock(&hb_lock);
}

static int l2m_configured(void) {
  const char *e = getenv(L2M_ENV);
  return e && *e;
}

/* On S600 a model compiled for 4 cores fails unless L2M is sized: said with the runtime's failure. */
static const char *l2m_hint(const hb_model *m) {
  return m->s600 && m->compiled_cores == 4 && !l2m_configured()
             ? " (on S600 a model compiled for 4 BPU cores needs " L2M_ENV " set, e.g. 6:6:6:6)"
             : "";
}

/* BPU cores of the SoC: the board's sysfs count, else by name (S600 4, S100 1: shared facts, E.4); 0 unknown. */
static int soc_core_count(void) {
  int n = board_core_count();
  if (n > 0) return n;
  if (strstr(g.soc, "S600")) return 4;
  return strstr(g.soc, "S100") ? 1 : 0;
}

/*
 * What to add to a refused task: a model compiled for more cores than the SoC has gets a bare
 * "invalid argument" from the runtime, so name both counts; else the S600 L2M hint.
 */
static const char *task_hint(const hb_model *m) {
  static _Thread_local char text[192];
  int soc = soc_core_count();
  if (soc > 0 && m->compiled_cores > soc) {
    snprintf(text, sizeof text, " (the model is compiled for %d BPU cores; this SoC, %s, has %d)", m->compiled_cores,
             g.soc, soc);
    return text;
  }
  return l2m_hint(m);
}

static int32_t check_sched(const hb_model *m, const er_sched *s, hbUCPSchedParam *param) {
  if (s->priority < 0 || s->priority > 255)
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "priority must be 0..255, got %d", s->priority);
  if (s->core_mask >> HB_MAX_BPU_CORES)
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL, "core_mask 0x%x names BPU cores beyond 0..%d",
                   s->core_mask, HB_MAX_BPU_CORES - 1);
  /* The runtime refuses to preempt with L2M in use: say why here rather than with a bare -100001. */
  if (s->priority >= 254 && l2m_configured())
    return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                   "priority %d preempts, and the runtime does not support preemption when L2M memory is in use "
                   "(" L2M_ENV " is set): use a priority below 254",
                   s->priority);
  uint32_t mask = s->core_mask;
  int n = m->compiled_cores;
  if (n > 1) {
    /* libdnn refuses "any core" for a multi-core model and wants exactly n cores: 0..n-1 by default. */
    if (!mask) mask = (1u << n) - 1;
    if (__builtin_popcount(mask) != n)
      return er_fail(ER_ERR_INVALID_ARGUMENT, BACKEND, NULL,
                     "the model is compiled for %d BPU cores: cores must name exactly %d cores, got mask 0x%x (%d)",
                     n, n, mask, __builtin_popcount(mask));
  }
  memset(param, 0, sizeof *param);
  param->priority = s->priority;
  param->customId = s->custom_id;
  param->deviceId = 0;
  /* Mask 0 means "any BPU core": HB_UCP_BPU_CORE_ANY, never 0 (= any engine of any type, A.9). */
  param->backend = mask ? 0 : HB_UCP_BPU_CORE_ANY;
  for (int i = 0; i < HB_MAX_BPU_CORES; i++)
    if (mask & (1u << i)) param->backend |= HB_UCP_BPU_CORE_0 << i;
  return ER_OK;
}

/* Cache maintenance over tensors [from, to): CLEAN inputs before submit, INVALIDATE outputs after. */
static int32_t flush_range(hb_request *r, uint32_t from, uint32_t to, int32_t flag) {
  for (uint32_t k = from; k < to; k++) {
    if (!r->mem[k].virAddr) continue;
    int32_t rc = hb.hbUCPMemFlush(&r->mem[k], flag);
    if (rc != 0)
      return vendor_fail("hbUCPMemFlush", rc, "%s %s '%s'", flag == HB_MEM_CACHE_CLEAN ? "clean" : "invalidate",
                         k < r->model->n_in ? "input" : "output", name_of(r, k));
  }
  return ER_OK;
}

static int32_t check_inputs_bound(hb_request *r) {
  if (__atomic_load_n(&r->stuck, __ATOMIC_ACQUIRE))
    return er_fail(ER_ERR_STATE, BACKEND, NULL,
                   "request unusable: an earlier task could not be released, so its buffers are kept; "
                   "free the request");
  for (uint32_t k = 0; k < r->model->n_in; k++)
    if (!r->mem[k].virAddr)
      return er_fail(ER_ERR_STATE, BACKEND, NULL, "input '%s' has a dynamic shape: set its shape before running",
                     name_of(r, k));
  return ER_OK;
}

/* The error of an hbDNNInferV2 that made no task (rc: its code, 0 when it gave no handle). */
static int32_t create_failed(const hb_model *m, int32_t rc) {
  if (rc != 0) return vendor_fail("hbDNNInferV2", rc, "creating the task%s", task_hint(m));
  return er_fail(ER_ERR_BACKEND, BACKEND, "hbDNNInferV2", "hbDNNInferV2 returned no task handle");
}

/* Creates the async task (*vendor: the runtime's code). hbDNNInferV2 runs under the lock: see hb_lock. */
static int32_t create_task(hb_request *r, void **task, int32_t *vendor) {
  *task = NULL;
  pthread_mutex_lock(&hb_lock);
  int32_t rc = hb.hbDNNInferV2(task, r->raw[1], r->raw[0], r->model->handle);
  pthread_mutex_unlock(&hb_lock);
  *vendor = rc;
  return rc == 0 && *task ? ER_OK : create_failed(r->model, rc);
}

static int32_t submit_task(const hb_model *m, void *task, hbUCPSchedParam *param) {
  int32_t rc = hb.hbUCPSubmitTask(task, param);
  if (rc != 0)
    return vendor_fail("hbUCPSubmitTask", rc, "priority %d, custom id %lld, backend 0x%llx%s", param->priority,
                       (long long)param->customId, (unsigned long long)param->backend, task_hint(m));
  return ER_OK;
}

/* The error of a wait's vendor code (wait: the milliseconds waited, 0 forever). */
static int32_t wait_result(const hb_model *m, int32_t rc, int32_t wait) {
  if (rc == HB_ERR_TASK_TIMEOUT) return vendor_fail("hbUCPWaitTaskDone", rc, "no result within %d ms", wait);
  if (rc != 0)
    return vendor_fail("hbUCPWaitTaskDone", rc, "running the task%s", rc == HB_ERR_TASK_RUN_FAILED ? l2m_hint(m) : "");
  return ER_OK;
}

static int32_t wait_task(const hb_model *m, void *task, int32_t timeout_ms) {
  /* 0 waits forever (as does any value <= 0 in the real runtime); timeout_ms <= 0 means forever to us. */
  int32_t wait = timeout_ms <= 0 ? 0 : timeout_ms;
  return wait_result(m, hb.hbUCPWaitTaskDone(task, wait), wait);
}

/* Outputs with -1 dims learn their shape from the finished task (before it is released). */
static int32_t refresh_dynamic_outputs(hb_request *r, void *task) {
  hb_model *m = r->model;
  for (uint32_t i = 0; i < m->n_out; i++) {
    uint32_t k = m->n_in + i;
    if (!is_dynamic(&m->props[k])) continue;
    if (!hb.hbDNNGetTaskOutputTensorProperties)
      return er_fail(ER_ERR_UNSUPPORTED, BACKEND, "hbDNNGetTaskOutputTensorProperties",
                     "output '%s' is dynamic but the runtime lacks hbDNNGetTaskOutputTensorProperties", name_of(r, k));
    probe_buf buf;
    memset(buf.bytes, PROBE_FILL, sizeof buf.bytes);
    int32_t rc = hb.hbDNNGetTaskOutputTensorProperties(buf.bytes, task, 0, (int32_t)i);
    if (rc != 0) return vendor_fail("hbDNNGetTaskOutputTensorProperties", rc, "output '%s'", name_of(r, k));
    hbDNNTensorProperties p;
    props_decode(m->dims, buf.bytes, &p);
    uint32_t elem = er_dtype_size(map_dtype(p.tensorType));
    uint64_t extent = layout_in_range(&p, elem) ? strided_extent(&p, elem) : UINT64_MAX;
    if (is_dynamic(&p) || extent > r->mem[k].memSize)
      return er_fail(ER_ERR_BACKEND, BACKEND, "hbDNNGetTaskOutputTensorProperties",
                     "output '%s': the runtime reports an unusable shape (%llu bytes, %llu allocated)", name_of(r, k),
                     (unsigned long long)extent, (unsigned long long)r->mem[k].memSize);
    set_buf(buf_of(r, k), &p, r->mem[k].virAddr, extent);
  }
  return ER_OK;
}

/*
 * Always called once a task exists, whatever happened (error, timeout). If the release fails for
 * a task that was submitted but not seen finishing, the device may still write the buffers: the
 * request is marked stuck and keeps them.
 */
static int32_t release_task(hb_request *r, void *task, int32_t rc, int in_doubt) {
  int32_t release = hb.hbUCPReleaseTask(task);
  /* -200004: the runtime no longer has the task (a driver reset): nothing is left to release or
     to wait for, and no device work can still touch the buffers. */
  if (release == 0 || release == HB_ERR_TASK_HANDLE_INVALID) {
    give_task_slot();
    return rc;
  }
  /* Kept, with its slot: the runtime still counts it, and hbDNNRelease refuses the pack until it goes. */
  if (!r->unreleased) r->unreleased = task;
  else {
    pthread_mutex_lock(&hb_lock);
    keep_handle(&g.orphans, &g.n_orphans, task);
    pthread_mutex_unlock(&hb_lock);
  }
  if (in_doubt) __atomic_store_n(&r->stuck, 1, __ATOMIC_RELEASE);
  if (rc != ER_OK) return rc; /* the first failure is the one to report */
  return vendor_fail("hbUCPReleaseTask", release, "releasing a finished task");
}

static void unlink_late(hb_request *r) {
  for (hb_request **p = &late_list; *p; p = &(*p)->next_late) {
    if (*p == r) {
      *p = r->next_late;
      break;
    }
  }
  r->next_late = NULL;
}

static void keep_late(hb_request *r, void *task) {
  pthread_mutex_lock(&late_lock);
  __atomic_store_n(&r->late, task, __ATOMIC_RELEASE);
  r->next_late = late_list;
  late_list = r;
  pthread_mutex_unlock(&late_lock);
}

/*
 * Cancelled and timed-out submitted runs hand their task to a releaser on a shim worker thread:
 * hbUCPReleaseTask cancels a task the device has not started (so it stops working on a stale
 * frame and its slot frees at once) and blocks until the device is done with a running one
 * (docs/hbdnn-behaviour.md). Never on a JS thread. While a releaser holds a task of a request,
 * r->away > 0: its buffers are not reused, re-laid out or freed (settle_away).
 */
typedef struct away_job {
  hb_request *r;
  void *task;
} away_job;

static void release_away(void *arg) {
  away_job *j = arg;
  int32_t rc = hb.hbUCPReleaseTask(j->task);
  if (rc == 0 || rc == HB_ERR_TASK_HANDLE_INVALID) {
    give_task_slot();
  } else {
    /* Refused: kept (with its slot) and retried at pack closes; the device may still use the
       buffers, so the request keeps them (stuck: JS drops and replaces it). */
    pthread_mutex_lock(&hb_lock);
    keep_handle(&g.orphans, &g.n_orphans, j->task);
    pthread_mutex_unlock(&hb_lock);
    __atomic_store_n(&j->r->stuck, 1, __ATOMIC_RELEASE);
  }
  __atomic_fetch_sub(&j->r->away, 1, __ATOMIC_RELEASE);
  free(j);
}

/* 1 if a releaser thread took the task; 0 if none could be started (the caller keeps it). */
static int hand_away(hb_request *r, void *task) {
  away_job *j = malloc(sizeof *j);
  if (!j) return 0;
  j->r = r;
  j->task = task;
  __atomic_fetch_add(&r->away, 1, __ATOMIC_ACQ_REL);
  if (er_pool_submit(release_away, j) != ER_OK) {
    __atomic_fetch_sub(&r->away, 1, __ATOMIC_ACQ_REL);
    free(j);
    return 0;
  }
  return 1;
}

/* Waits (at most timeout_ms; <= 0: no limit) until no releaser holds a task of this request. Our
   own flag, not a vendor wait, so polling it logs nothing on a board. */
static int32_t settle_away(hb_request *r, int32_t timeout_ms) {
  if (__atomic_load_n(&r->away, __ATOMIC_ACQUIRE) == 0) return ER_OK;
  int64_t deadline = timeout_ms > 0 ? (int64_t)er_now_us() + (int64_t)timeout_ms * 1000 : 0;
  int64_t pause_us = 100;
  while (__atomic_load_n(&r->away, __ATOMIC_ACQUIRE) > 0) {
    int64_t now = (int64_t)er_now_us();
    if (deadline && now >= deadline)
      return er_fail(ER_ERR_TIMEOUT, BACKEND, NULL,
                     "a cancelled task of this request was still running on the device after %d ms", timeout_ms);
    int64_t nap = deadline && deadline - now < pause_us ? deadline - now : pause_us;
    nanosleep(&(struct timespec){.tv_sec = nap / 1000000, .tv_nsec = (nap % 1000000) * 1000}, NULL);
    if (pause_us < 8000) pause_us *= 2;
  }
  return ER_OK;
}

/*
 * Submitted runs wait on their own condition variable, woken by the task's done-callback or by a
 * cancel (hbUCPSetTaskDoneCb; without it they wait in hbUCPWaitTaskDone and a cancel waits for
 * the task). Only the run's own thread ever waits on or gives away its task, so a cancel never
 * releases a handle another thread is about to wait on. A woken, cancelled run hands its task to
 * a releaser, which cancels it if the device has not started it: aborted runs stop occupying the
 * device. The callback finds its wait by id under wait_lock, so a late callback (or one for a
 * task already released) finds nothing and touches no freed memory.
 */

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static run_wait *run_waits;
static uint64_t next_wait_id = 1;

/* In case a runtime drops a task without calling back (a device reset; what a board does is
   unverified), the wait looks at the task itself this long after the last run's duration, then
   ever less often. Each look at an unfinished task logs one ERROR line on a board: they stay rare. */
#define PROBE_FIRST_US 200000
#define PROBE_MAX_US 5000000

static void task_done(void *task, int32_t status, void *user) {
  (void)task;
  uint64_t id = (uint64_t)(uintptr_t)user;
  pthread_mutex_lock(&wait_lock);
  for (run_wait *w = run_waits; w; w = w->next) {
    if (w->id != id) continue;
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cond);
    if (w->on_done) w->on_done(w->on_done_ctx);
    break;
  }
  pthread_mutex_unlock(&wait_lock);
}

static void wait_unregister(run_wait *w) {
  pthread_mutex_lock(&wait_lock);
  for (run_wait **p = &run_waits; *p; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      break;
    }
  }
  pthread_mutex_unlock(&wait_lock);
  pthread_cond_destroy(&w->cond);
}

/* Registers a wait for task before it is submitted; 0 when the runtime has no callbacks (or refused). */
static int wait_register(run_wait *w, hb_request *r, void *task) {
  if (!hb.hbUCPSetTaskDoneCb) return 0;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int failed = pthread_cond_init(&w->cond, &attr);
  pthread_condattr_destroy(&attr);
  if (failed) return 0;
  w->r = r;
  w->done = 0;
  w->on_done = NULL;
  pthread_mutex_lock(&wait_lock);
  w->id = next_wait_id++;
  w->next = run_waits;
  run_waits = w;
  pthread_mutex_unlock(&wait_lock);
  if (hb.hbUCPSetTaskDoneCb(task, task_done, (void *)(uintptr_t)w->id) == 0) return 1;
  er_clear_error();
  wait_unregister(w);
  return 0;
}

static struct timespec monotonic_at(uint64_t us) {
  return (struct timespec){.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000};
}

typedef enum { WOKE_DONE, WOKE_CANCELLED, WOKE_TIMEOUT } woke_by;

/*
 * Sleeps until the task is done, the run is cancelled or timeout_ms (<= 0: no limit) passed.
 * *vendor gets 1 when the task is done and its handle still valid (a wait returns at once), else
 * the code that ended it (a reset's -200004 from the callback or from looking at the task).
 */
static woke_by wait_woken(run_wait *w, hb_request *r, void *task, const er_sched *sched, int32_t timeout_ms,
                          int32_t *vendor) {
  const atomic_int *cancel = sched->cancel;
  uint64_t start = er_now_us();
  uint64_t deadline = timeout_ms > 0 ? start + (uint64_t)timeout_ms * 1000 : 0;
  uint64_t probe_gap = PROBE_FIRST_US + r->last_run_us;
  uint64_t probe_at = start + probe_gap;
  woke_by why = WOKE_DONE;
  *vendor = 1;
  pthread_mutex_lock(&wait_lock);
  /* Armed only while this thread waits, so the thread that collects the run is already awake
     when core.c hands the completion out (er_request_finish then waits a moment at most). */
  w->on_done = sched->done;
  w->on_done_ctx = sched->done_ctx;
  for (;;) {
    if (w->done) {
      if (w->status == HB_ERR_TASK_HANDLE_INVALID) *vendor = w->status;
      break;
    }
    /* core.c sets the flag before it calls hb_request_cancel, which signals under wait_lock: a
       cancel is never missed between this look and the wait below. */
    if (atomic_load(cancel)) {
      why = WOKE_CANCELLED;
      break;
    }
    uint64_t now = er_now_us();
    if (deadline && now >= deadline) {
      why = WOKE_TIMEOUT;
      break;
    }
    if (now >= probe_at) {
      pthread_mutex_unlock(&wait_lock);
      int32_t rc = hb.hbUCPWaitTaskDone(task, 1);
      pthread_mutex_lock(&wait_lock);
      if (rc != HB_ERR_TASK_TIMEOUT) {
        *vendor = rc;
        break;
      }
      probe_gap = probe_gap * 2 > PROBE_MAX_US ? PROBE_MAX_US : probe_gap * 2;
      probe_at = er_now_us() + probe_gap;
      continue;
    }
    uint64_t until = deadline && deadline < probe_at ? deadline : probe_at;
    struct timespec ts = monotonic_at(until);
    pthread_cond_timedwait(&w->cond, &wait_lock, &ts);
  }
  w->on_done = NULL;
  pthread_mutex_unlock(&wait_lock);
  wait_unregister(w);
  return why;
}

/* er_request_cancel of a submitted run (JS thread; core.c has set the run's cancel flag): wakes it. */
static int32_t hb_request_cancel(void *request) {
  pthread_mutex_lock(&wait_lock);
  for (run_wait *w = run_waits; w; w = w->next)
    if (w->r == request) pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&wait_lock);
  return ER_OK;
}

/*
 * Waits for a task that timed out earlier (at most timeout_ms; <= 0: no limit), then releases it:
 * its buffers are free to reuse. A task still running at the limit is kept as late again and the
 * caller's run fails with ER_ERR_TIMEOUT: its timeout counts from the call, whatever ran before.
 */
static int32_t settle_late(hb_request *r, int32_t timeout_ms) {
  /* Only this request's own thread sets r->late, so a NULL read needs no lock: runs skip it. */
  if (!__atomic_load_n(&r->late, __ATOMIC_ACQUIRE)) return ER_OK;
  pthread_mutex_lock(&late_lock);
  void *task = r->late;
  if (task) unlink_late(r); /* ours while we wait: reap_late cannot release it under us */
  __atomic_store_n(&r->late, NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&late_lock);
  if (!task) return ER_OK;
  int32_t rc = hb.hbUCPWaitTaskDone(task, timeout_ms > 0 ? timeout_ms : 0);
  if (rc == HB_ERR_TASK_HANDLE_INVALID) { /* gone from the runtime (a reset): only its slot is left */
    give_task_slot();
    return ER_OK;
  }
  if (rc == HB_ERR_TASK_TIMEOUT) {
    keep_late(r, task);
    return vendor_fail("hbUCPWaitTaskDone", rc, "the task of an earlier run that timed out was still running after %d ms",
                       timeout_ms);
  }
  release_task(r, task, rc == 0 ? ER_OK : ER_ERR_BACKEND, rc != 0);
  return ER_OK;
}

/* Releases the late tasks the device has finished (a 1 ms wait each: the runtime has no poll). */
static void reap_late(void) {
  pthread_mutex_lock(&late_lock);
  for (hb_request **p = &late_list; *p;) {
    hb_request *r = *p;
    int32_t rc = hb.hbUCPWaitTaskDone(r->late, 1);
    if (rc == 0 || rc == HB_ERR_TASK_HANDLE_INVALID) {
      if (rc == 0) release_task(r, r->late, ER_OK, 0);
      else give_task_slot(); /* gone from the runtime (a reset) */
      __atomic_store_n(&r->late, NULL, __ATOMIC_RELEASE);
      *p = r->next_late;
      r->next_late = NULL;
    } else {
      p = &r->next_late;
    }
  }
  pthread_mutex_unlock(&late_lock);
}

/*
 * Takes a task slot and creates the task, waiting while none is free: edgerun's count reached the
 * cap, or the runtime said -200001 first (the cap is shared with every UCP user of the process).
 * Finished late tasks are released, with a back-off: each 1 ms wait that times out logs an ERROR
 * line on a board. Returns ER_OK with *left = the milliseconds left of timeout_ms (<= 0: no limit,
 * returned as is), ER_ERR_TIMEOUT when the deadline passed first, ER_ERR_CANCELLED when the run
 * was cancelled first (cancel: a submitted run's flag, else NULL), or create_task's error.
 */
static int32_t create_in_slot(hb_request *r, int32_t timeout_ms, const atomic_int *cancel, void **task,
                              int32_t *left) {
  int64_t deadline = timeout_ms > 0 ? (int64_t)er_now_us() + (int64_t)timeout_ms * 1000 : 0;
  int64_t pause_us = 500;
  int runtime_full = 0;
  for (int first = 1;; first = 0) {
    /* A run aborted while it waits (or before it got here) makes no task: nobody wants it. */
    if (cancel && atomic_load(cancel))
      return er_fail(ER_ERR_CANCELLED, BACKEND, NULL, "the run was cancelled before its task was made");
    if (!first) reap_late();
    if (take_task_slot()) {
      int32_t vendor = 0;
      int32_t rc = create_task(r, task, &vendor);
      if (rc == ER_OK) break;
      give_task_slot();
      if (vendor != HB_ERR_TASK_LIMIT) return rc;
      runtime_full = 1; /* like a full slot: wait for one */
    }
    int64_t now = (int64_t)er_now_us();
    if (deadline && now >= deadline)
      return er_fail(ER_ERR_TIMEOUT, BACKEND, NULL,
                     "no BPU task slot became free within %d ms (%s; the cap is %d tasks per process, "
                     "shared with other UCP users)",
                     timeout_ms, runtime_full ? "the runtime refused with -200001" : "edgerun's tasks took them all",
                     task_cap());
    int64_t nap = deadline && deadline - now < pause_us ? deadline - now : pause_us;
    nanosleep(&(struct timespec){.tv_sec = nap / 1000000, .tv_nsec = (nap % 1000000) * 1000}, NULL);
    if (pause_us < MAX_POLL_US) pause_us *= 2;
  }
  if (!deadline) *left = timeout_ms;
  else {
    int64_t ms = (deadline - (int64_t)er_now_us() + 999) / 1000; /* whole ms, as the caller gave them */
    *left = ms < 1 ? 1 : (int32_t)ms;
  }
  return ER_OK;
}

/*
 * The rest of a run once its task is submitted (woken: it has a registered wait): waits, then
 * releases the task and invalidates the outputs, or on a timeout or cancel keeps or hands away
 * the task the device may still be using.
 */
static int32_t collect_run(hb_request *r, const er_sched *sched, void *task, int woken, uint64_t submitted_us,
                           int32_t timeout_ms) {
  hb_model *m = r->model;
  int32_t rc;
  if (woken) {
    int32_t probed;
    woke_by why = wait_woken(&r->wait, r, task, sched, timeout_ms, &probed);
    if (why == WOKE_CANCELLED) {
      if (!hand_away(r, task)) keep_late(r, task);
      return er_fail(ER_ERR_CANCELLED, BACKEND, NULL,
                     "the run was cancelled; its task was released (cancelled if the device had not started it)");
    }
    if (why == WOKE_TIMEOUT) rc = wait_result(m, HB_ERR_TASK_TIMEOUT, timeout_ms);
    else if (probed != 1) rc = wait_result(m, probed, 0);
    else rc = wait_task(m, task, 0); /* done: returns at once with the task's status */
  } else {
    rc = wait_task(m, task, timeout_ms);
  }
  int32_t vendor = rc == ER_OK ? 0 : er_last_vendor_code();
  if (vendor == HB_ERR_TASK_HANDLE_INVALID) { /* gone from the runtime (a reset): no task left to release */
    give_task_slot();
    return rc;
  }
  /* Timed out, or a wait error that does not say the task ended: the device may still use the
     buffers, and releasing a running task blocks until it ends. A submitted run hands it to a
     releaser thread (which cancels it if it has not started); a sync run keeps it as late (with
     its slot), released once the device is done. */
  if (rc != ER_OK && (rc == ER_ERR_TIMEOUT || vendor != HB_ERR_TASK_RUN_FAILED)) {
    if (!(sched->cancel && rc == ER_ERR_TIMEOUT && hand_away(r, task))) keep_late(r, task);
    return rc;
  }
  /* Here the task ended, well or failed: the device is done with the buffers. */
  if (rc == ER_OK) {
    if (woken) r->last_run_us = er_now_us() - submitted_us;
    rc = refresh_dynamic_outputs(r, task);
  }
  rc = release_task(r, task, rc, 0);
  if (rc == ER_OK) rc = flush_range(r, m->n_in, m->n_in + m->n_out, HB_MEM_CACHE_INVALIDATE);
  return rc;
}

/*
 * Creates a task in a free slot without waiting for the lock or a slot. 1: made; 0: not now (the
 * lock is held, possibly by a model load, or no slot is free); else the runtime's error.
 */
static int32_t try_create_task(hb_request *r, void **task) {
  *task = NULL;
  if (pthread_mutex_trylock(&hb_lock) != 0) return 0;
  int full = g.live_tasks >= task_cap();
  int32_t vendor = 0;
  if (!full) {
    g.live_tasks++;
    vendor = hb.hbDNNInferV2(task, r->raw[1], r->raw[0], r->model->handle);
    if (vendor != 0 || !*task) g.live_tasks--;
  }
  pthread_mutex_unlock(&hb_lock);
  if (full || vendor == HB_ERR_TASK_LIMIT) return 0; /* request_run waits for a slot */
  return vendor == 0 && *task ? 1 : create_failed(r->model, vendor);
}

/*
 * Starts a submitted run on the caller's thread (core.c: before it hands the run to a worker)
 * when nothing can make it wait: no earlier task to settle, a free slot, the lock free, done
 * callbacks in the runtime. The device then starts one thread hop sooner, and the worker only
 * collects the run. Returns 1 if the task was submitted; a vendor call's error (the run's: a
 * refused call is not made twice, and nothing is left); 0 with nothing changed when the start
 * must wait, and request_run on the worker does the whole run. core.c calls it only once a worker
 * thread is sure to collect the run.
 */
static int32_t hb_request_start(void *request, const er_sched *sched) {
  hb_request *r = request;
  hb_model *m = r->model;
  hbUCPSchedParam param;
  if (!hb.hbUCPSetTaskDoneCb || !sched->cancel || atomic_load(sched->cancel)) return 0;
  if (__atomic_load_n(&r->late, __ATOMIC_ACQUIRE) || __atomic_load_n(&r->away, __ATOMIC_ACQUIRE)) return 0;
  if (check_sched(m, sched, &param) != ER_OK || check_inputs_bound(r) != ER_OK) {
    er_clear_error(); /* request_run says it again */
    return 0;
  }
  int32_t rc = flush_range(r, 0, m->n_in, HB_MEM_CACHE_CLEAN);
  if (rc != ER_OK) return rc;
  void *task;
  rc = try_create_task(r, &task);
  if (rc != 1) return rc;
  /* A callback the runtime refuses: the worker waits in hbUCPWaitTaskDone, as request_run would. */
  r->started_woken = wait_register(&r->wait, r, task);
  rc = submit_task(m, task, &param);
  if (rc != ER_OK) {
    if (r->started_woken) wait_unregister(&r->wait);
    return release_task(r, task, rc, 0); /* never submitted: nothing uses the buffers */
  }
  r->started = task;
  r->started_us = er_now_us();
  return 1;
}

static int32_t hb_request_run(void *request, const er_sched *sched) {
  hb_request *r = request;
  hb_model *m = r->model;
  if (r->started) { /* hb_request_start submitted it: its time counts from then */
    void *task = r->started;
    r->started = NULL;
    return collect_run(r, sched, task, r->started_woken, r->started_us,
                       er_time_left(sched->timeout_ms, r->started_us));
  }
  hbUCPSchedParam param;
  int32_t rc = check_sched(m, sched, &param);
  /* The clock is read only for a run with a timeout that has a late or cancelled task to wait for. */
  uint64_t start_us = sched->timeout_ms > 0 && (__atomic_load_n(&r->late, __ATOMIC_ACQUIRE) ||
                                                __atomic_load_n(&r->away, __ATOMIC_ACQUIRE))
                          ? er_now_us()
                          : 0;
  if (rc == ER_OK) rc = settle_away(r, sched->timeout_ms);
  if (rc == ER_OK) rc = settle_late(r, start_us ? er_time_left(sched->timeout_ms, start_us) : sched->timeout_ms);
  if (rc == ER_OK) rc = check_inputs_bound(r);
  if (rc == ER_OK) rc = flush_range(r, 0, m->n_in, HB_MEM_CACHE_CLEAN);
  if (rc != ER_OK) return rc;

  void *task = NULL;
  int32_t timeout_ms = 0;
  rc = create_in_slot(r, start_us ? er_time_left(sched->timeout_ms, start_us) : sched->timeout_ms, sched->cancel, &task,
                      &timeout_ms);
  if (rc != ER_OK) return rc; /* no task: create_in_slot gave its slot back */
  /* Submitted runs (they have a cancel flag) can be cancelled while they wait: see run_wait. */
  const int woken = sched->cancel != NULL && wait_register(&r->wait, r, task);
  rc = submit_task(m, task, &param);
  if (rc != ER_OK) {
    if (woken) wait_unregister(&r->wait);
    return release_task(r, task, rc, 0); /* never submitted: nothing can still use the buffers */
  }
  return collect_run(r, sched, task, woken, er_now_us(), timeout_ms);
}

/* ---- the vtable -------------------------------------------------------------------------------------- */

const er_backend_ops er_backend_hbdnn = {
    .name = BACKEND,
    .load = hb_load,
    .pack_open = hb_pack_open,
    .pack_name = hb_pack_name,
    .pack_close = hb_pack_close,
    .model_open = hb_model_open,
    .model_close = hb_model_close,
    .model_info = hb_model_info,
    .request_new = hb_request_new,
    .request_free = hb_request_free,
    .request_pending = hb_request_pending,
    .request_set_shape = hb_request_set_shape,
    .request_start = hb_request_start,
    .request_run = hb_request_run,
    .request_cancel = hb_request_cancel,
    .request_usable = hb_request_usable,
};
