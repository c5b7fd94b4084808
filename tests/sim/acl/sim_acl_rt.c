/* ACL simulator, runtime half: aclInit/aclFinalize, aclrt*, aclGetRecentErrMsg, data buffers,
 * streams, fault injection and counters. Built alone as libacl_rt.so (CANN 9 layout) or with
 * sim_acl_mdl.c as libascendcl.so. A test double: see tests/sim/acl/FORMAT.md. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sim_acl.h"

#define MAX_DEVICES 64
#define CTX_MAGIC 0x43545853u    /* "SXTC" */
#define STREAM_MAGIC 0x4d525453u /* "STRM" */
#define BUF_MAGIC 0x46554244u    /* "DBUF" */

/* One lock for everything: a simulator favours obvious correctness over throughput. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER; /* any state change: tasks, stalls, faults */

/* ---- counters ---------------------------------------------------------------------------- */

static const char *const k_counters[] = {
    /* gauges (live state; simacl_reset_counters leaves them) */
    "init", "models_live", "dev_buffers_live", "dev_bytes_live", "host_buffers_live", "datasets_live",
    "data_buffers_live", "contexts_live", "streams_live", "devices_live", "descs_live", "tasks_live",
    "stalled_now",
    /* events */
    "init_calls", "finalize_calls", "errors", "executions", "async_executions", "concurrent_exec",
    "faults_injected", "sync_timeouts", "free_in_use", "bad_handles", "not_device_memory", "tasks_failed",
    "tasks_stalled", "device_faults", "device_resets", "memcpy_calls", "mem_cap_refusals", "gears_set",
    "unload_busy", "models_loaded", "models_unloaded", "finalize_busy",
};
#define N_COUNTERS (sizeof k_counters / sizeof k_counters[0])
#define N_GAUGES 13
static int64_t g_counter[N_COUNTERS];

static int counter_index(const char *name) {
  for (size_t i = 0; name && i < N_COUNTERS; i++)
    if (strcmp(k_counters[i], name) == 0) return (int)i;
  return -1;
}

static void count_locked(const char *name, int64_t delta) {
  int i = counter_index(name);
  if (i >= 0) g_counter[i] += delta;
}

static void env_once(void);

SIMACL_API void simacl_count(const char *name, int64_t delta) {
  env_once();
  pthread_mutex_lock(&g_mu);
  count_locked(name, delta);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API int64_t simacl_counter(const char *name) {
  pthread_mutex_lock(&g_mu);
  int i = counter_index(name);
  int64_t v = i >= 0 ? g_counter[i] : -1;
  pthread_mutex_unlock(&g_mu);
  return v;
}

SIMACL_API void simacl_reset_counters(void) {
  pthread_mutex_lock(&g_mu);
  for (size_t i = N_GAUGES; i < N_COUNTERS; i++) g_counter[i] = 0;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API void simacl_live_counts(int64_t *out, int32_t n) {
  if (!out) return;
  pthread_mutex_lock(&g_mu);
  for (int32_t i = 0; i < n && i < SIMACL_LIVE_COUNT; i++) out[i] = g_counter[i];
  pthread_mutex_unlock(&g_mu);
}
_Static_assert(SIMACL_LIVE_COUNT == 12, "live counts are the first gauges, in k_counters order");

/* ---- configuration (environment, read once) ---------------------------------------------- */

typedef struct {
  char fn[64];
  int64_t nth, seen;
  int32_t code, times;
} FaultRule;

#define MAX_RULES 32
static FaultRule g_rules[MAX_RULES];
static int g_nrules;
static int64_t g_mem_cap;          /* 0 = none */
static int64_t g_latency_us = -1;  /* -1 = per model */
static int64_t g_jitter_us;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static int32_t g_devices = 1;
static int32_t g_run_mode = ACL_HOST;
static int g_reinit;               /* ACLSIM_REINIT=1: aclInit allowed again after aclFinalize */
static int g_output_dims_max = 1;  /* aclmdlGetOutputDims of a model with gears gives the largest gear's
                                      dims, as CANN documents; ACLSIM_OUTPUT_DIMS=declared keeps -1 */
static int32_t g_null_mask = -1;   /* -1 = ACLSIM_NULL */
static int32_t g_dev_fault;        /* != 0: every device call fails with it */
static uint64_t g_unstall_gen;

static void add_rule_locked(const char *fn, int64_t nth, int32_t code, int32_t times) {
  for (int i = 0; i < g_nrules; i++) {
    if (strcmp(g_rules[i].fn, fn) != 0) continue;
    if (code == 0) {
      g_rules[i] = g_rules[--g_nrules];
    } else {
      g_rules[i].nth = nth, g_rules[i].seen = 0, g_rules[i].code = code, g_rules[i].times = times;
    }
    return;
  }
  if (code == 0 || g_nrules == MAX_RULES || strlen(fn) >= sizeof g_rules[0].fn) return;
  FaultRule *r = &g_rules[g_nrules++];
  snprintf(r->fn, sizeof r->fn, "%s", fn);
  r->nth = nth < 1 ? 1 : nth, r->seen = 0, r->code = code, r->times = times == 0 ? 1 : times;
}

static void cv_init(void);

static void read_env(void) {
  cv_init(); /* before any wait or broadcast: every entry point passes env_once() first */
  const char *e = getenv("ACLSIM_FAULTS");
  if (e) { /* fn:nth:code[:times],... */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", e);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char fn[64];
      long long nth = 1, code = 0, times = 1;
      if (sscanf(tok, "%63[^:]:%lld:%lld:%lld", fn, &nth, &code, &times) >= 3)
        add_rule_locked(fn, nth, (int32_t)code, (int32_t)times);
    }
  }
  if ((e = getenv("ACLSIM_MEM_CAP"))) g_mem_cap = strtoll(e, NULL, 0);
  if ((e = getenv("ACLSIM_LATENCY_US"))) g_latency_us = strtoll(e, NULL, 0);
  if ((e = getenv("ACLSIM_JITTER_US"))) g_jitter_us = strtoll(e, NULL, 0);
  if ((e = getenv("ACLSIM_SEED")) && strtoull(e, NULL, 0)) g_rng = strtoull(e, NULL, 0);
  if ((e = getenv("ACLSIM_DEVICES"))) {
    long n = strtol(e, NULL, 0);
    if (n >= 0 && n <= MAX_DEVICES) g_devices = (int32_t)n;
  }
  if ((e = getenv("ACLSIM_RUN_MODE")))
    g_run_mode = (strcmp(e, "device") == 0 || strcmp(e, "0") == 0) ? ACL_DEVICE : ACL_HOST;
  if ((e = getenv("ACLSIM_REINIT"))) g_reinit = atoi(e) != 0;
  if ((e = getenv("ACLSIM_OUTPUT_DIMS"))) g_output_dims_max = strcmp(e, "declared") != 0;
}

static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static void env_once(void) { pthread_once(&g_env_once, read_env); }

static int32_t null_mask(void) {
  if (g_null_mask >= 0) return g_null_mask;
  const char *e = getenv("ACLSIM_NULL");
  if (!e) return 0;
  return (strstr(e, "version") ? 1 : 0) | (strstr(e, "errmsg") ? 2 : 0);
}

SIMACL_API void simacl_inject_fault(const char *fn, int64_t nth, int32_t code, int32_t times) {
  env_once();
  pthread_mutex_lock(&g_mu);
  if (!fn) g_nrules = 0;
  else add_rule_locked(fn, nth, code, times);
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API int32_t simacl_fault_check(const char *fn) {
  env_once();
  int32_t code = 0;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_nrules; i++) {
    FaultRule *r = &g_rules[i];
    if (strcmp(r->fn, fn) != 0) continue;
    r->seen++;
    if (r->seen >= r->nth && (r->times < 0 || r->seen < r->nth + r->times)) {
      code = r->code;
      count_locked("faults_injected", 1);
    }
    break;
  }
  pthread_mutex_unlock(&g_mu);
  return code;
}

SIMACL_API void simacl_set_mem_cap(int64_t bytes) { env_once(); pthread_mutex_lock(&g_mu); g_mem_cap = bytes; pthread_mutex_unlock(&g_mu); }
SIMACL_API void simacl_set_latency_us(int64_t us) { env_once(); pthread_mutex_lock(&g_mu); g_latency_us = us; pthread_mutex_unlock(&g_mu); }
SIMACL_API void simacl_null_strings(int32_t mask) { env_once(); pthread_mutex_lock(&g_mu); g_null_mask = mask; pthread_mutex_unlock(&g_mu); }

SIMACL_API void simacl_set_jitter_us(int64_t us, uint64_t seed) {
  env_once();
  pthread_mutex_lock(&g_mu);
  g_jitter_us = us < 0 ? 0 : us;
  if (seed) g_rng = seed;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API void simacl_set_device_count(int32_t n) {
  env_once();
  pthread_mutex_lock(&g_mu);
  if (n >= 0 && n <= MAX_DEVICES) g_devices = n;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API void simacl_set_run_mode(int32_t mode) {
  env_once();
  pthread_mutex_lock(&g_mu);
  /* Switching with live device buffers would mix shadowed and plain allocations. */
  if (g_counter[SIMACL_LIVE_DEV_BUFFERS] == 0 && (mode == ACL_HOST || mode == ACL_DEVICE)) g_run_mode = mode;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API int32_t simacl_run_mode(void) { env_once(); return g_run_mode; }

SIMACL_API void simacl_set_output_dims_max(int32_t on) {
  env_once();
  pthread_mutex_lock(&g_mu);
  g_output_dims_max = on < 0 ? !(getenv("ACLSIM_OUTPUT_DIMS") && strcmp(getenv("ACLSIM_OUTPUT_DIMS"), "declared") == 0) : on != 0;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API int32_t simacl_output_dims_max(void) {
  env_once();
  pthread_mutex_lock(&g_mu);
  int32_t on = g_output_dims_max;
  pthread_mutex_unlock(&g_mu);
  return on;
}

SIMACL_API void simacl_device_fault(int32_t code) {
  env_once();
  pthread_mutex_lock(&g_mu);
  g_dev_fault = code;
  if (code) count_locked("device_faults", 1);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API int32_t simacl_device_fault_code(void) {
  pthread_mutex_lock(&g_mu);
  int32_t c = g_dev_fault;
  pthread_mutex_unlock(&g_mu);
  return c;
}

SIMACL_API void simacl_unstall(void) {
  env_once();
  pthread_mutex_lock(&g_mu);
  g_unstall_gen++;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

/* ---- thread-local error message ---------------------------------------------------------- */

static __thread char t_msg[1024];
static __thread int t_has_msg;
static __thread char t_msg_out[1024];

SIMACL_API aclError simacl_fail(aclError code, const char *fmt, ...) {
  char text[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  snprintf(t_msg, sizeof t_msg, "[simulator] %s (error %d)", text, code);
  t_has_msg = 1;
  simacl_count("errors", 1);
  return code;
}

SIMACL_API const char *aclGetRecentErrMsg(void) {
  env_once();
  int had = t_has_msg;
  t_has_msg = 0; /* cleared once read, like the real runtime */
  if (!had || (null_mask() & 2)) return NULL;
  memcpy(t_msg_out, t_msg, sizeof t_msg_out);
  return t_msg_out;
}

/* ---- init / devices / contexts ----------------------------------------------------------- */

struct simacl_ctx {
  uint32_t magic;
  int32_t device;
  int isDefault;
  simacl_ctx *next;
};

static int g_inited, g_finalized;
static simacl_ctx *g_ctxs; /* live contexts */
static int32_t g_dev_refs[MAX_DEVICES];
static simacl_ctx *g_dev_default[MAX_DEVICES];
static __thread simacl_ctx *t_ctx;

static int ctx_live_locked(const simacl_ctx *c) {
  for (simacl_ctx *p = g_ctxs; p; p = p->next)
    if (p == c) return 1;
  return 0;
}

static simacl_ctx *ctx_new_locked(int32_t device, int isDefault) {
  simacl_ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->magic = CTX_MAGIC, c->device = device, c->isDefault = isDefault;
  c->next = g_ctxs, g_ctxs = c;
  count_locked("contexts_live", 1);
  return c;
}

static void ctx_free_locked(simacl_ctx *c) {
  for (simacl_ctx **pp = &g_ctxs; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  c->magic = 0;
  free(c);
  count_locked("contexts_live", -1);
}

SIMACL_API aclError simacl_enter(const char *fn, int flags, simacl_ctx **ctx) {
  env_once();
  pthread_mutex_lock(&g_mu);
  int inited = g_inited;
  int32_t dev_fault = g_dev_fault;
  simacl_ctx *c = t_ctx && ctx_live_locked(t_ctx) ? t_ctx : NULL;
  pthread_mutex_unlock(&g_mu);
  if (ctx) *ctx = c;
  if (!inited) return simacl_fail(ACL_ERROR_UNINITIALIZE, "%s: aclInit has not been called", fn);
  /* Cleanup calls (free, destroy, unload) still work on a faulted device so tests can release. */
  if (dev_fault && !(flags & 2)) return simacl_fail(dev_fault, "%s: the simulated device is in a fault state", fn);
  int32_t inj = simacl_fault_check(fn);
  if (inj) return simacl_fail(inj, "%s: injected fault", fn);
  if ((flags & 1) && !c)
    return simacl_fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: this thread has no current context (aclrtSetDevice or aclrtSetCurrentContext first)", fn);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclInit(const char *configPath) {
  env_once();
  pthread_mutex_lock(&g_mu);
  count_locked("init_calls", 1);
  int again = g_inited || (g_finalized && !g_reinit);
  if (!again) {
    g_inited = 1;
    count_locked("init", 1);
  }
  pthread_mutex_unlock(&g_mu);
  if (again) return simacl_fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already called in this process");
  if (configPath && configPath[0]) {
    FILE *f = fopen(configPath, "rb"); /* the real runtime reads a JSON config; it must exist */
    if (!f) {
      pthread_mutex_lock(&g_mu);
      g_inited = 0;
      count_locked("init", -1);
      pthread_mutex_unlock(&g_mu);
      return simacl_fail(ACL_ERROR_INVALID_FILE, "aclInit: cannot open config file %s", configPath);
    }
    fclose(f);
  }
  return ACL_SUCCESS;
}

SIMACL_API aclError aclFinalize(void) {
  env_once();
  pthread_mutex_lock(&g_mu);
  count_locked("finalize_calls", 1);
  int was = g_inited, fin = g_finalized;
  int64_t running = g_counter[counter_index("tasks_live")];
  if (was && running > 0) {
    /* Undefined on a real runtime: say so where a test (or a child's stderr) sees it. */
    count_locked("finalize_busy", 1);
    fprintf(stderr, "ACL simulator: aclFinalize while %lld executions are on the device\n", (long long)running);
  }
  if (was) {
    g_inited = 0, g_finalized = 1;
    count_locked("init", -1);
  }
  pthread_mutex_unlock(&g_mu);
  if (!was && fin) return simacl_fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize: already finalized");
  if (!was) return simacl_fail(ACL_ERROR_UNINITIALIZE, "aclFinalize: aclInit has not been called");
  return ACL_SUCCESS;
}

static const char *version_str(void) {
  const char *e = getenv("ACLSIM_VERSION");
  return e && e[0] ? e : "8.0.0.simulator";
}

SIMACL_API aclError aclsysGetVersionStr(char *pkgName, char *versionStr) {
  env_once();
  if (!pkgName || !versionStr) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclsysGetVersionStr: NULL argument");
  if (null_mask() & 1) return simacl_fail(ACL_ERROR_INVALID_FILE, "aclsysGetVersionStr: no version info (injected)");
  /* The real buffer is ACL_PKG_VERSION_MAX_SIZE (128) bytes. */
  snprintf(versionStr, 128, "%s", version_str());
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtGetVersion(int32_t *majorVersion, int32_t *minorVersion, int32_t *patchVersion) {
  env_once();
  if (!majorVersion || !minorVersion || !patchVersion)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetVersion: NULL argument");
  if (null_mask() & 1) return simacl_fail(ACL_ERROR_FAILURE, "aclrtGetVersion: no version info (injected)");
  int a = 0, b = 0, c = 0;
  sscanf(version_str(), "%d.%d.%d", &a, &b, &c);
  *majorVersion = a, *minorVersion = b, *patchVersion = c;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtGetDeviceCount(uint32_t *count) {
  aclError rc = simacl_enter("aclrtGetDeviceCount", 0, NULL);
  if (rc) return rc;
  if (!count) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: NULL count");
  pthread_mutex_lock(&g_mu);
  *count = (uint32_t)g_devices;
  pthread_mutex_unlock(&g_mu);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtGetRunMode(aclrtRunMode *runMode) {
  aclError rc = simacl_enter("aclrtGetRunMode", 0, NULL);
  if (rc) return rc;
  if (!runMode) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetRunMode: NULL runMode");
  *runMode = (aclrtRunMode)g_run_mode;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtSetDevice(int32_t deviceId) {
  aclError rc = simacl_enter("aclrtSetDevice", 0, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  if (deviceId < 0 || deviceId >= g_devices) {
    int32_t n = g_devices;
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice: device %d does not exist (%d simulated)", deviceId, n);
  }
  if (!g_dev_default[deviceId]) {
    simacl_ctx *c = ctx_new_locked(deviceId, 1);
    if (!c) {
      pthread_mutex_unlock(&g_mu);
      return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclrtSetDevice: out of memory");
    }
    g_dev_default[deviceId] = c;
  }
  g_dev_refs[deviceId]++;
  count_locked("devices_live", 1);
  t_ctx = g_dev_default[deviceId]; /* SetDevice makes the default context current for this thread */
  pthread_mutex_unlock(&g_mu);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtResetDevice(int32_t deviceId) {
  aclError rc = simacl_enter("aclrtResetDevice", 2, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  if (deviceId < 0 || deviceId >= g_devices) {
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtResetDevice: device %d does not exist", deviceId);
  }
  /* A reset is how an application recovers a faulted device: clear the simulated fault. */
  if (g_dev_fault) {
    g_dev_fault = 0;
    count_locked("device_resets", 1);
    pthread_cond_broadcast(&g_cv);
  }
  if (g_dev_refs[deviceId] > 0) {
    g_dev_refs[deviceId]--;
    count_locked("devices_live", -1);
    if (g_dev_refs[deviceId] == 0 && g_dev_default[deviceId]) {
      if (t_ctx == g_dev_default[deviceId]) t_ctx = NULL;
      ctx_free_locked(g_dev_default[deviceId]);
      g_dev_default[deviceId] = NULL;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId) {
  aclError rc = simacl_enter("aclrtCreateContext", 0, NULL);
  if (rc) return rc;
  if (!context) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: NULL context");
  pthread_mutex_lock(&g_mu);
  if (deviceId < 0 || deviceId >= g_devices) {
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtCreateContext: device %d does not exist", deviceId);
  }
  simacl_ctx *c = ctx_new_locked(deviceId, 0);
  if (c) t_ctx = c; /* the new context becomes current for the calling thread */
  pthread_mutex_unlock(&g_mu);
  if (!c) return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclrtCreateContext: out of memory");
  *context = c;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtDestroyContext(aclrtContext context) {
  aclError rc = simacl_enter("aclrtDestroyContext", 2, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  simacl_ctx *c = context;
  if (!c || !ctx_live_locked(c) || c->isDefault) {
    count_locked("bad_handles", 1);
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtDestroyContext: %p is not a live context created by aclrtCreateContext", context);
  }
  if (t_ctx == c) t_ctx = NULL;
  ctx_free_locked(c);
  pthread_mutex_unlock(&g_mu);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtSetCurrentContext(aclrtContext context) {
  aclError rc = simacl_enter("aclrtSetCurrentContext", 0, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  int ok = context && ctx_live_locked(context);
  if (ok) t_ctx = context;
  else count_locked("bad_handles", 1);
  pthread_mutex_unlock(&g_mu);
  if (!ok) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetCurrentContext: %p is not a live context", context);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtGetCurrentContext(aclrtContext *context) {
  simacl_ctx *c = NULL;
  aclError rc = simacl_enter("aclrtGetCurrentContext", 1, &c);
  if (rc) return rc;
  if (!context) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: NULL argument");
  *context = c;
  return ACL_SUCCESS;
}

/* ---- device and host memory -------------------------------------------------------------- */

typedef struct DevMem {
  void *addr;      /* what the caller sees */
  uint8_t *data;   /* the bytes (ACL_HOST: a shadow the caller cannot reach) */
  size_t size;     /* requested */
  size_t rounded;  /* accounted */
  int shadowed;    /* addr is a PROT_NONE reservation */
  int32_t pins;
  struct DevMem *next;
} DevMem;

typedef struct HostMem {
  void *addr;
  struct HostMem *next;
} HostMem;

static DevMem *g_dev_mem;
static HostMem *g_host_mem;

static DevMem *dev_find_locked(const void *p, size_t len) {
  uintptr_t a = (uintptr_t)p;
  for (DevMem *m = g_dev_mem; m; m = m->next) {
    uintptr_t base = (uintptr_t)m->addr;
    if (a >= base && a - base <= m->size && len <= m->size - (a - base)) return m;
  }
  return NULL;
}

static int dev_overlaps_locked(const void *p, size_t len) {
  uintptr_t a = (uintptr_t)p;
  for (DevMem *m = g_dev_mem; m; m = m->next) {
    uintptr_t base = (uintptr_t)m->addr;
    if (a < base + m->rounded && a + (len ? len : 1) > base) return 1;
  }
  return 0;
}

SIMACL_API aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy) {
  aclError rc = simacl_enter("aclrtMalloc", 1, NULL);
  if (rc) return rc;
  if (!devPtr || size == 0) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: NULL devPtr or size 0");
  /* A policy 0..7, optionally OR'ed with the memory-type flags 0x100, 0x1000, 0x100000. */
  if (((unsigned)policy & 0xff) > 7 || ((unsigned)policy & ~(0xffu | 0x100u | 0x1000u | 0x100000u)))
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: bad policy 0x%x", (unsigned)policy);
  if (size > ((size_t)1 << 40)) return simacl_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: %zu bytes is more than the simulated device has", size);
  /* The documented rounding: up to a multiple of 32, plus 32. */
  size_t rounded = ((size + 31) & ~(size_t)31) + 32;
  pthread_mutex_lock(&g_mu);
  int64_t live = g_counter[SIMACL_LIVE_DEV_BYTES], cap = g_mem_cap;
  int shadow = g_run_mode == ACL_HOST;
  if (cap > 0 && live + (int64_t)rounded > cap) count_locked("mem_cap_refusals", 1);
  pthread_mutex_unlock(&g_mu);
  if (cap > 0 && live + (int64_t)rounded > cap)
    return simacl_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: %zu bytes over the simulated device memory cap (%lld live of %lld)", rounded, (long long)live, (long long)cap);
  DevMem *m = calloc(1, sizeof *m);
  uint8_t *data = NULL;
  void *addr = NULL;
  if (m && posix_memalign((void **)&data, 64, rounded) == 0) {
    memset(data, 0xCD, rounded); /* device memory is not zeroed: make stale reads visible */
    if (shadow) {
      /* ACL_HOST: device memory is not host-addressable. Hand out an inaccessible address range so
       * a dereference faults, and keep the bytes in a shadow only Memcpy and Execute reach. */
      addr = mmap(NULL, rounded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (addr == MAP_FAILED) addr = NULL;
    } else {
      addr = data;
    }
  }
  if (!addr) {
    free(data);
    free(m);
    return simacl_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: host out of memory for %zu bytes", rounded);
  }
  m->addr = addr, m->data = data, m->size = size, m->rounded = rounded, m->shadowed = shadow;
  pthread_mutex_lock(&g_mu);
  m->next = g_dev_mem, g_dev_mem = m;
  count_locked("dev_buffers_live", 1);
  count_locked("dev_bytes_live", (int64_t)rounded);
  pthread_mutex_unlock(&g_mu);
  *devPtr = addr;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtFree(void *devPtr) {
  aclError rc = simacl_enter("aclrtFree", 3, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  DevMem **pp = &g_dev_mem;
  while (*pp && (*pp)->addr != devPtr) pp = &(*pp)->next;
  DevMem *m = *pp;
  if (!m) {
    count_locked("bad_handles", 1);
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtFree: %p is not a live aclrtMalloc buffer", devPtr);
  }
  if (m->pins > 0) {
    count_locked("free_in_use", 1);
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtFree: %p is used by queued or running work (simulator refuses a use-after-free)", devPtr);
  }
  *pp = m->next;
  count_locked("dev_buffers_live", -1);
  count_locked("dev_bytes_live", -(int64_t)m->rounded);
  pthread_mutex_unlock(&g_mu);
  if (m->shadowed) munmap(m->addr, m->rounded);
  free(m->data);
  free(m);
  return ACL_SUCCESS;
}

SIMACL_API void simacl_device_pin(const void *addr, int delta) {
  pthread_mutex_lock(&g_mu);
  DevMem *m = dev_find_locked(addr, 0);
  if (m) m->pins += delta;
  pthread_mutex_unlock(&g_mu);
}

SIMACL_API uint8_t *simacl_device_view(const void *addr, size_t len, int *isDevice) {
  pthread_mutex_lock(&g_mu);
  DevMem *m = addr ? dev_find_locked(addr, len) : NULL;
  uint8_t *view = m ? m->data + ((uintptr_t)addr - (uintptr_t)m->addr) : NULL;
  int host_ok = g_run_mode == ACL_DEVICE && addr && !dev_overlaps_locked(addr, len);
  pthread_mutex_unlock(&g_mu);
  if (isDevice) *isDevice = m != NULL;
  if (view) return view;
  return host_ok ? (uint8_t *)addr : NULL; /* ACL_DEVICE: host memory is device memory */
}

SIMACL_API aclError aclrtMallocHost(void **hostPtr, size_t size) {
  aclError rc = simacl_enter("aclrtMallocHost", 1, NULL);
  if (rc) return rc;
  if (!hostPtr || size == 0) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: NULL hostPtr or size 0");
  HostMem *h = calloc(1, sizeof *h);
  void *p = NULL;
  if (!h || size > ((size_t)1 << 40) || posix_memalign(&p, 64, size) != 0) {
    free(h);
    return simacl_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: out of memory for %zu bytes", size);
  }
  h->addr = p;
  pthread_mutex_lock(&g_mu);
  h->next = g_host_mem, g_host_mem = h;
  count_locked("host_buffers_live", 1);
  pthread_mutex_unlock(&g_mu);
  *hostPtr = p;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtFreeHost(void *hostPtr) {
  aclError rc = simacl_enter("aclrtFreeHost", 3, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  HostMem **pp = &g_host_mem;
  while (*pp && (*pp)->addr != hostPtr) pp = &(*pp)->next;
  HostMem *h = *pp;
  if (h) {
    *pp = h->next;
    count_locked("host_buffers_live", -1);
  } else {
    count_locked("bad_handles", 1);
  }
  pthread_mutex_unlock(&g_mu);
  if (!h) return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtFreeHost: %p is not a live aclrtMallocHost buffer", hostPtr);
  free(h->addr);
  free(h);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind) {
  aclError rc = simacl_enter("aclrtMemcpy", 1, NULL);
  if (rc) return rc;
  simacl_count("memcpy_calls", 1);
  if (!dst || !src) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: NULL dst or src");
  if (destMax < count) return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: count %zu exceeds destMax %zu", count, destMax);
  if ((int)kind < 0 || (int)kind > ACL_MEMCPY_DEFAULT) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: bad kind %d", (int)kind);
  if (count == 0) return ACL_SUCCESS;
  int dstDev = 0, srcDev = 0;
  uint8_t *d = simacl_device_view(dst, count, &dstDev);
  uint8_t *s = simacl_device_view(src, count, &srcDev);
  pthread_mutex_lock(&g_mu);
  int dstTouchesDev = dev_overlaps_locked(dst, count), srcTouchesDev = dev_overlaps_locked(src, count);
  pthread_mutex_unlock(&g_mu);
  /* Host-side pointers are used as they are; a range that straddles a device allocation's end is
   * neither (refused below). */
  if (!dstDev && !dstTouchesDev) d = dst;
  if (!srcDev && !srcTouchesDev) s = (uint8_t *)src;
  if (kind == ACL_MEMCPY_DEFAULT) kind = srcDev ? (dstDev ? ACL_MEMCPY_DEVICE_TO_DEVICE : ACL_MEMCPY_DEVICE_TO_HOST)
                                                 : (dstDev ? ACL_MEMCPY_HOST_TO_DEVICE : ACL_MEMCPY_HOST_TO_HOST);
  int wantDstDev = kind == ACL_MEMCPY_HOST_TO_DEVICE || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
  int wantSrcDev = kind == ACL_MEMCPY_DEVICE_TO_HOST || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
  /* ACL_HOST: each side must be what the kind says (the real copy goes over PCIe by kind). */
  if (simacl_run_mode() == ACL_HOST && (wantDstDev != dstDev || wantSrcDev != srcDev)) {
    simacl_count("not_device_memory", 1);
    return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: kind %d does not match the buffers (dst %s, src %s) in run mode ACL_HOST",
                       (int)kind, dstDev ? "device" : "host", srcDev ? "device" : "host");
  }
  /* Device-side ranges must lie inside one allocation (either mode). */
  if (!d || !s) return simacl_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: a range of %zu bytes runs past its device allocation", count);
  memmove(d, s, count);
  return ACL_SUCCESS;
}

/* ---- data buffers ------------------------------------------------------------------------ */

struct aclDataBuffer {
  uint32_t magic;
  void *data;
  size_t size;
  struct aclDataBuffer *next;
};
static aclDataBuffer *g_bufs;

static int buf_live_locked(const aclDataBuffer *b) {
  for (aclDataBuffer *p = g_bufs; p; p = p->next)
    if (p == b) return 1;
  return 0;
}

SIMACL_API int simacl_buffer_valid(const aclDataBuffer *b) {
  pthread_mutex_lock(&g_mu);
  int ok = b && buf_live_locked(b);
  if (b && !ok) count_locked("bad_handles", 1);
  pthread_mutex_unlock(&g_mu);
  return ok;
}

SIMACL_API aclDataBuffer *aclCreateDataBuffer(void *data, size_t size) {
  env_once();
  int32_t inj = simacl_fault_check("aclCreateDataBuffer");
  if (inj) {
    simacl_fail(inj, "aclCreateDataBuffer: injected fault");
    return NULL;
  }
  aclDataBuffer *b = calloc(1, sizeof *b);
  if (!b) {
    simacl_fail(ACL_ERROR_BAD_ALLOC, "aclCreateDataBuffer: out of memory");
    return NULL;
  }
  b->magic = BUF_MAGIC, b->data = data, b->size = size;
  pthread_mutex_lock(&g_mu);
  b->next = g_bufs, g_bufs = b;
  count_locked("data_buffers_live", 1);
  pthread_mutex_unlock(&g_mu);
  return b;
}

SIMACL_API aclError aclDestroyDataBuffer(const aclDataBuffer *dataBuffer) {
  env_once();
  pthread_mutex_lock(&g_mu);
  aclDataBuffer **pp = &g_bufs;
  while (*pp && *pp != dataBuffer) pp = &(*pp)->next;
  aclDataBuffer *b = *pp;
  if (b) {
    *pp = b->next;
    count_locked("data_buffers_live", -1);
  } else {
    count_locked("bad_handles", 1);
  }
  pthread_mutex_unlock(&g_mu);
  if (!b) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclDestroyDataBuffer: %p is not a live data buffer", (const void *)dataBuffer);
  b->magic = 0;
  free(b);
  return ACL_SUCCESS;
}

SIMACL_API void *aclGetDataBufferAddr(const aclDataBuffer *dataBuffer) {
  if (!simacl_buffer_valid(dataBuffer)) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "aclGetDataBufferAddr: not a live data buffer");
    return NULL;
  }
  return dataBuffer->data;
}

SIMACL_API size_t aclGetDataBufferSizeV2(const aclDataBuffer *dataBuffer) {
  if (!simacl_buffer_valid(dataBuffer)) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "aclGetDataBufferSizeV2: not a live data buffer");
    return 0;
  }
  return dataBuffer->size;
}

/* ---- timing, stalls ---------------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, int64_t us) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += us / 1000000;
  ts->tv_nsec += (long)(us % 1000000) * 1000;
  if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

/* g_cv waits use CLOCK_MONOTONIC (set up once, from read_env). */
static void cv_init(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_destroy(&g_cv);
  pthread_cond_init(&g_cv, &a);
  pthread_condattr_destroy(&a);
}

SIMACL_API int64_t simacl_run_latency_us(int64_t modelUs, int64_t modelJitterUs) {
  env_once();
  pthread_mutex_lock(&g_mu);
  int64_t us = g_latency_us >= 0 ? g_latency_us : modelUs;
  int64_t j = g_jitter_us + (modelJitterUs > 0 ? modelJitterUs : 0);
  if (j > 0) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17; /* xorshift64 */
    us += (int64_t)(g_rng % (uint64_t)j);
  }
  pthread_mutex_unlock(&g_mu);
  return us;
}

SIMACL_API aclError simacl_busy(int64_t us) {
  env_once();
  struct timespec end;
  deadline_after(&end, us > 0 ? us : 0);
  pthread_mutex_lock(&g_mu);
  while (!g_dev_fault && us > 0 && pthread_cond_timedwait(&g_cv, &g_mu, &end) != ETIMEDOUT) {
  }
  aclError rc = g_dev_fault;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

SIMACL_API aclError simacl_stall_wait(void) {
  env_once();
  pthread_mutex_lock(&g_mu);
  uint64_t gen = g_unstall_gen;
  count_locked("stalled_now", 1);
  count_locked("tasks_stalled", 1);
  while (gen == g_unstall_gen && !g_dev_fault) pthread_cond_wait(&g_cv, &g_mu);
  aclError rc = g_dev_fault;
  count_locked("stalled_now", -1);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

/* ---- streams: one worker thread each, FIFO ----------------------------------------------- */

typedef struct Job {
  simacl_job_fn fn;
  void (*destroy)(void *);
  void *arg;
  struct Job *next;
} Job;

typedef struct Stream {
  uint32_t magic;
  simacl_ctx *ctx;
  pthread_t thread;
  Job *head, *tail;
  int32_t pending; /* queued + running */
  aclError err;    /* first failure since the last synchronize */
  int stop;
  struct Stream *next;
} Stream;
static Stream *g_streams;

static int stream_live_locked(const Stream *s) {
  for (Stream *p = g_streams; p; p = p->next)
    if (p == s) return 1;
  return 0;
}

static void *stream_worker(void *arg) {
  Stream *s = arg;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!s->head && !s->stop) pthread_cond_wait(&g_cv, &g_mu);
    if (!s->head) break;
    Job *j = s->head;
    s->head = j->next;
    if (!s->head) s->tail = NULL;
    pthread_mutex_unlock(&g_mu);
    aclError rc = j->fn(j->arg);
    if (j->destroy) j->destroy(j->arg);
    free(j);
    pthread_mutex_lock(&g_mu);
    if (rc) {
      count_locked("tasks_failed", 1);
      if (!s->err) s->err = rc;
    }
    s->pending--;
    count_locked("tasks_live", -1);
    pthread_cond_broadcast(&g_cv);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

SIMACL_API aclError aclrtCreateStream(aclrtStream *stream) {
  simacl_ctx *ctx = NULL;
  aclError rc = simacl_enter("aclrtCreateStream", 1, &ctx);
  if (rc) return rc;
  if (!stream) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream: NULL stream");
  env_once();
  Stream *s = calloc(1, sizeof *s);
  if (!s) return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclrtCreateStream: out of memory");
  s->magic = STREAM_MAGIC, s->ctx = ctx;
  if (pthread_create(&s->thread, NULL, stream_worker, s) != 0) {
    free(s);
    return simacl_fail(ACL_ERROR_RT_FAILURE, "aclrtCreateStream: cannot start the simulated stream's thread");
  }
  pthread_mutex_lock(&g_mu);
  s->next = g_streams, g_streams = s;
  count_locked("streams_live", 1);
  pthread_mutex_unlock(&g_mu);
  *stream = s;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtDestroyStream(aclrtStream stream) {
  aclError rc = simacl_enter("aclrtDestroyStream", 3, NULL);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  Stream **pp = &g_streams;
  while (*pp && *pp != stream) pp = &(*pp)->next;
  Stream *s = *pp;
  if (!s) {
    count_locked("bad_handles", 1);
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtDestroyStream: %p is not a live stream", stream);
  }
  *pp = s->next;
  s->stop = 1; /* the worker drains the queue first: queued work completes (or fails on a fault) */
  count_locked("streams_live", -1);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  pthread_join(s->thread, NULL);
  s->magic = 0;
  free(s);
  return ACL_SUCCESS;
}

SIMACL_API aclError simacl_stream_enqueue(aclrtStream stream, simacl_ctx *ctx, simacl_job_fn fn,
                                          void (*destroy)(void *), void *arg) {
  Job *j = calloc(1, sizeof *j);
  if (!j) return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclmdlExecuteAsync: out of memory");
  j->fn = fn, j->destroy = destroy, j->arg = arg;
  pthread_mutex_lock(&g_mu);
  Stream *s = stream;
  if (!s || !stream_live_locked(s)) {
    count_locked("bad_handles", 1);
    pthread_mutex_unlock(&g_mu);
    free(j);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlExecuteAsync: %p is not a live stream", stream);
  }
  if (s->ctx != ctx) {
    pthread_mutex_unlock(&g_mu);
    free(j);
    return simacl_fail(ACL_ERROR_RT_STREAM_CONTEXT, "aclmdlExecuteAsync: the stream belongs to another context");
  }
  if (s->tail) s->tail->next = j;
  else s->head = j;
  s->tail = j;
  s->pending++;
  count_locked("tasks_live", 1);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return ACL_SUCCESS;
}

static aclError sync_stream(const char *fn, aclrtStream stream, int32_t timeoutMs) {
  /* Allowed on a faulted device: the queued work fails with the fault code and is reported here. */
  aclError rc = simacl_enter(fn, 3, NULL);
  if (rc) return rc;
  env_once();
  struct timespec end;
  if (timeoutMs > 0) deadline_after(&end, (int64_t)timeoutMs * 1000);
  pthread_mutex_lock(&g_mu);
  Stream *s = stream;
  if (!s || !stream_live_locked(s)) {
    count_locked("bad_handles", 1);
    pthread_mutex_unlock(&g_mu);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: %p is not a live stream", fn, stream);
  }
  int timedOut = 0;
  while (s->pending > 0 && !timedOut) {
    if (timeoutMs == 0) timedOut = 1; /* poll */
    else if (timeoutMs < 0) pthread_cond_wait(&g_cv, &g_mu);
    else timedOut = pthread_cond_timedwait(&g_cv, &g_mu, &end) == ETIMEDOUT && s->pending > 0;
  }
  aclError err = 0;
  if (timedOut) {
    count_locked("sync_timeouts", 1);
  } else {
    err = s->err;
    s->err = 0;
  }
  pthread_mutex_unlock(&g_mu);
  if (timedOut) return simacl_fail(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "%s: work still running after %d ms", fn, timeoutMs);
  if (err) return simacl_fail(err, "%s: a task on the stream failed", fn);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclrtSynchronizeStream(aclrtStream stream) { return sync_stream("aclrtSynchronizeStream", stream, -1); }

SIMACL_API aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout) {
  if (timeout < -1) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclrtSynchronizeStreamWithTimeout: timeout %d < -1", timeout);
  return sync_stream("aclrtSynchronizeStreamWithTimeout", stream, timeout);
}
