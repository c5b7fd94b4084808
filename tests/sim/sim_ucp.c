/* libhbucp.so simulator: tasks, scheduler (one worker thread per simulated BPU core), memory
 * with a cache model, counters. A test double only - no BPU, no real UCP.
 *
 * Locking: one global mutex `g.mu` guards everything here. Sub-task run() and destroy() and the
 * user's done-callback are always called WITHOUT it held (they may call back into the API). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

/* ---- state ----------------------------------------------------------------------------- */

typedef struct SimAlloc {
  struct SimAlloc *next;
  uint8_t *vir;
  uint64_t phy;
  uint64_t size;
  int cached;
  /* Cached buffers only: the simulated DRAM. CLEAN copies CPU view -> DRAM; in strict mode the
   * device reads/writes DRAM and INVALIDATE copies DRAM -> CPU view. */
  uint8_t *shadow;
  int64_t inflight; /* pins by queued/running tasks: hbUCPFree refuses while > 0 */
  int64_t nClean, nInvalidate, nMissedClean, nDeviceWrites, nOutputsInvalidated;
  int pendingInvalidate; /* device wrote since the last INVALIDATE */
} SimAlloc;

typedef struct {
  hbSimSubtaskDesc d; /* d.bufs points at bufs below */
  hbSimBufRef *bufs;
  SimAlloc **allocs; /* resolved and pinned at submit */
} SimSub;

enum { T_CREATED, T_QUEUED, T_RUNNING, T_DONE };

typedef struct SimTask {
  struct SimTask *next;
  uintptr_t id; /* the handle value: never reused, so stale handles are always detected */
  int state;
  int released;
  int refs; /* user handle (until release) + scheduler (queued/running) + waiters + callback */
  SimSub subs[SIM_MAX_SUBTASKS];
  int nsubs;
  int pinned;
  hbUCPSchedParam sched;
  uint64_t seq;
  int64_t submittedUs; /* when hbUCPSubmitTask queued it (the device cannot start it earlier) */
  int32_t status;
  hbUCPTaskDoneCb cb;
  void *cbUser;
  int subIdx, sliceIdx; /* progress, kept across preemption */
  int dead;      /* a device reset invalidated it: its handle is gone, its run is dropped */
  int stalled;   /* fault injection: never completes until hbSimUnstall or a reset */
  int32_t fault; /* fault injection: the status it finishes with (0 = its own) */
  int64_t jitterUs; /* fault injection: extra latency drawn at submit */
} SimTask;

typedef struct {
  int64_t tasks_created, tasks_submitted, tasks_completed, tasks_released, tasks_timed_out,
      tasks_cancelled, tasks_failed, callbacks, mem_alloc, mem_free, flush_clean, flush_invalidate,
      missed_clean, outputs_written, outputs_invalidated, preemptions, free_in_use, bad_handles,
      model_release_refused, models_released, sync_infer, tasks_refused, releases_blocked, release_failures,
      faults_injected, device_resets, tasks_reset, tasks_stalled, outputs_corrupted;
} SimCounters;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t sched; /* queue changed / shutdown (monotonic clock, used for slice sleeps) */
  pthread_cond_t done;  /* a task finished or was released */
  SimTask *tasks;
  int live; /* created and not released */
  uintptr_t nextId;
  uint64_t nextSeq;
  SimAlloc *allocs;
  int64_t memLive, memLiveBytes;
  uint64_t nextPhy;
  SimCounters c;
  int64_t *log;
  int32_t logLen, logCap;
  int64_t latencyOverride; /* -1: per model */
  int64_t holdUntilUs;     /* hbSimHold: finished tasks wait until then (now_us clock) */
  int32_t held;            /* tasks waiting at the hold */
  int32_t cores;
  int32_t soc;      /* SIM_SOC_S100 / SIM_SOC_S600 */
  int32_t reserved; /* hbSimReserveTasks: tasks of other UCP users */
  int32_t failRelease;
  int strictCache;
  int64_t memCap;      /* fault injection: total bytes hbUCPMalloc* may hold (0 = no cap) */
  int32_t corrupt;     /* fault injection: 1 NaN outputs, 2 garbage outputs */
  int64_t jitterUs;    /* fault injection: each task's latency + [0, jitterUs) */
  uint64_t rng;        /* xorshift state for jitter and garbage (HBSIM_SEED) */
  int32_t stalledNow;  /* tasks stalled right now (gauge) */
  pthread_t workers[SIM_MAX_CORES];
  int started[SIM_MAX_CORES];
  int shutdown;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .nextId = 0x51A0000001u, .nextPhy = 0x100000000ull,
       .latencyOverride = -1, .cores = 1, .rng = 0x9E3779B97F4A7C15ull};

/* ---- fault injection (FORMAT.md section 6) ------------------------------------------------- */

/* A rule: calls of fn counted from when the rule was set; call number nth and the times-1 after
 * it (times < 0: every call from nth on) fail with code and do nothing else. */
typedef struct {
  char fn[48];
  int64_t nth, calls;
  int32_t code, times;
} FaultRule;

#define SIM_MAX_FAULTS 64
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static FaultRule faults[SIM_MAX_FAULTS];
static int nfaults;
static int64_t faultsInjected; /* under fault_mu; added to the faults_injected counter */

static void set_fault_locked(const char *fn, int64_t nth, int32_t code, int32_t times) {
  for (int i = 0; i < nfaults; i++)
    if (!strcmp(faults[i].fn, fn)) faults[i] = faults[--nfaults];
  if (code == 0 || times == 0 || nth < 1 || nfaults == SIM_MAX_FAULTS) return;
  FaultRule *r = &faults[nfaults++];
  snprintf(r->fn, sizeof r->fn, "%s", fn);
  r->nth = nth;
  r->calls = 0;
  r->code = code;
  r->times = times;
}

SIM_API void hbSimInjectFault(const char *fn, int64_t nth, int32_t code, int32_t times) {
  pthread_mutex_lock(&fault_mu);
  if (!fn) nfaults = 0;
  else set_fault_locked(fn, nth, code, times);
  pthread_mutex_unlock(&fault_mu);
}

SIM_API int32_t hbSimFaultCheck(const char *fn) {
  int32_t code = 0;
  pthread_mutex_lock(&fault_mu);
  for (int i = 0; i < nfaults; i++) {
    FaultRule *r = &faults[i];
    if (strcmp(r->fn, fn)) continue;
    int64_t n = ++r->calls;
    if (n >= r->nth && (r->times < 0 || n < r->nth + r->times)) {
      code = r->code;
      faultsInjected++;
    }
    break;
  }
  pthread_mutex_unlock(&fault_mu);
  return code;
}

/* HBSIM_FAULTS="fn:nth:code[:times],..." (times 1 by default, -1 = from nth on). */
static void faults_from_env(void) {
  const char *e = getenv("HBSIM_FAULTS");
  while (e && *e) {
    char fn[48] = {0};
    long long nth = 0;
    int code = 0, times = 1, used = 0;
    int got = sscanf(e, "%47[^:,]:%lld:%d%n:%d%n", fn, &nth, &code, &used, &times, &used);
    if (got >= 3) {
      pthread_mutex_lock(&fault_mu);
      set_fault_locked(fn, nth, code, got >= 4 ? times : 1);
      pthread_mutex_unlock(&fault_mu);
    }
    const char *comma = strchr(e, ',');
    e = comma ? comma + 1 : NULL;
  }
  e = getenv("HBSIM_MEM_CAP");
  if (e && *e) g.memCap = strtoll(e, NULL, 10);
  e = getenv("HBSIM_CORRUPT");
  if (e && *e) g.corrupt = !strcmp(e, "nan") ? 1 : !strcmp(e, "garbage") ? 2 : 0;
  e = getenv("HBSIM_JITTER_US");
  if (e && *e) g.jitterUs = strtoll(e, NULL, 10);
  e = getenv("HBSIM_SEED");
  if (e && *e) g.rng = strtoull(e, NULL, 10) | 1;
}

/* Which strings read as NULL: HBSIM_NULL="version,soc,desc" (read at each call) or hbSimNullStrings. */
static int32_t nullMask = -1; /* -1: the environment decides */
enum { NULL_VERSION = 1, NULL_SOC = 2, NULL_DESC = 4 };

static int strings_null(int what) {
  int32_t mask = __atomic_load_n(&nullMask, __ATOMIC_RELAXED);
  if (mask < 0) {
    const char *e = getenv("HBSIM_NULL");
    mask = 0;
    if (e && strstr(e, "version")) mask |= NULL_VERSION;
    if (e && strstr(e, "soc")) mask |= NULL_SOC;
    if (e && strstr(e, "desc")) mask |= NULL_DESC;
  }
  return (mask & what) != 0;
}

SIM_API void hbSimNullStrings(int32_t mask) { __atomic_store_n(&nullMask, mask, __ATOMIC_RELAXED); }
SIM_API int32_t hbSimStringsNull(int32_t what) { return strings_null(what); }

static uint64_t next_random(void) { /* caller holds g.mu */
  uint64_t x = g.rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return g.rng = x;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Thread_local int t_isWorker;

static void init_once(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&g.sched, &a);
  pthread_cond_init(&g.done, &a);
  pthread_condattr_destroy(&a);
  const char *e = getenv("HBSIM_LATENCY_US");
  if (e && *e) g.latencyOverride = strtoll(e, NULL, 10);
  if (g.latencyOverride < -1) g.latencyOverride = -1;
  e = getenv("HBSIM_CORES");
  if (e && *e) {
    long n = strtol(e, NULL, 10);
    if (n >= 1 && n <= SIM_MAX_CORES) g.cores = (int32_t)n;
  }
  e = getenv("HBSIM_STRICT_CACHE");
  if (e && *e) g.strictCache = atoi(e) != 0;
  e = getenv("HBSIM_SOC");
  if (e && strcmp(e, "S600") == 0) {
    g.soc = SIM_SOC_S600;
    g.cores = SIM_MAX_CORES;
  }
  faults_from_env();
}

/* The real runtime reads HB_UCP_MAX_TASK_NUM (default 32). When it reads it is not known; the
 * simulator reads it at each task creation so that a test can change it. */
static int32_t task_cap(void) {
  const char *e = getenv("HB_UCP_MAX_TASK_NUM");
  long n = e && *e ? strtol(e, NULL, 10) : 0;
  return n >= 1 && n <= 1024 ? (int32_t)n : SIM_MAX_TASKS;
}

/* Set when the application sizes L2M (S600 4-core models need it; preemption refuses it). */
static int l2m_configured(void) {
  const char *e = getenv("HB_DNN_USER_DEFINED_L2M_SIZES");
  return e && *e;
}

static void lock(void) {
  pthread_once(&g_once, init_once);
  pthread_mutex_lock(&g.mu);
}
static void unlock(void) { pthread_mutex_unlock(&g.mu); }

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timespec deadline_ts(int64_t us) {
  struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  return ts;
}

/* ---- version / errors ------------------------------------------------------------------ */

/* HBSIM_UCP_VERSION pretends another release, so tests can check how an unknown one is refused. */
SIM_API const char *hbUCPGetVersion(void) {
  if (strings_null(NULL_VERSION)) return NULL;
  const char *e = getenv("HBSIM_UCP_VERSION");
  return e && *e ? e : "3.13.6";
}
/* Real names read "D-Robotics RDK S100 V0P5" / "D-Robotics RDK S600 MCB V0p2": the SoC is named in them. */
SIM_API const char *hbUCPGetSocName(void) {
  pthread_once(&g_once, init_once);
  if (strings_null(NULL_SOC)) return NULL;
  return __atomic_load_n(&g.soc, __ATOMIC_RELAXED) == SIM_SOC_S600 ? "edgerun simulator (S600 nash-p, not a real SoC)"
                                                                   : "edgerun simulator (S100 nash-e, not a real SoC)";
}

SIM_API const char *hbUCPGetErrorDesc(int32_t code) {
  if (strings_null(NULL_DESC)) return NULL;
  switch (code) {
    case 0: return "HB_UCP_SUCCESS (simulator): success";
    case -100001: return "HB_UCP_INVALID_ARGUMENT (simulator): invalid argument";
    case -100002: return "HB_UCP_API_USE_ERROR (simulator): API used in a wrong state or order";
    case -100003: return "HB_UCP_INIT_FAILED (simulator): initialization failed";
    case -100004: return "HB_UCP_UNKNOWN_ERROR (simulator): unknown error";
    case -200001: return "HB_UCP_TASK_NUMBER_EXCEED_LIMIT (simulator): too many coexisting tasks (max 32)";
    case -200002: return "HB_UCP_TASK_TIMEOUT (simulator): task wait timed out";
    case -200003: return "HB_UCP_TASK_RUN_FAILED (simulator): task run failed";
    case -200004: return "HB_UCP_TASK_HANDLE_INVALID (simulator): invalid or released task handle";
    case -300001: return "HB_UCP_OP_NUMBER_EXCEED_LIMIT (simulator)";
    case -300002: return "HB_UCP_OP_NOT_REGISTER (simulator)";
    case -300003: return "HB_UCP_OP_CMD_UNAVAILABLE (simulator)";
    case -400001: return "HB_UCP_MEM_ALLOC_FAIL (simulator): memory allocation failed";
    case -400002: return "HB_UCP_MEM_FREE_FAIL (simulator): memory free failed (e.g. still used by a task)";
    case -400003: return "HB_UCP_MEM_FLUSH_FAIL (simulator): cache flush failed";
    case -400004: return "HB_UCP_MEM_INVALIDATE_FAIL (simulator): cache invalidate failed";
    case -400005: return "HB_UCP_MEM_IS_INVALID (simulator): memory not from hbUCPMalloc* or already freed";
    case -400006: return "HB_UCP_MEM_MAP_FAIL (simulator)";
    case -400007: return "HB_UCP_MEM_UNMAP_FAIL (simulator)";
    case -500001: return "HB_UCP_FILE_OPEN_FAILED (simulator): cannot open file";
    case -600001: return "HB_UCP_MODEL_NUMBER_EXCEED_LIMIT (simulator): too many models";
    case -600002: return "HB_UCP_MODEL_INVALID (simulator): invalid model file";
    case -600003: return "HB_UCP_MODEL_IS_INUSE (simulator): model in use";
    case -600004: return "HB_UCP_MODEL_INCOMPATIBLE (simulator): incompatible model";
    default: return "unknown error code (simulator)";
  }
}

/* ---- counters -------------------------------------------------------------------------- */

#define COUNTER(n) {#n, offsetof(SimCounters, n)}
static const struct {
  const char *name;
  size_t off;
} k_counters[] = {
    COUNTER(tasks_created),   COUNTER(tasks_submitted),  COUNTER(tasks_completed),
    COUNTER(tasks_released),  COUNTER(tasks_timed_out),  COUNTER(tasks_cancelled),
    COUNTER(tasks_failed),    COUNTER(callbacks),        COUNTER(mem_alloc),
    COUNTER(mem_free),        COUNTER(flush_clean),      COUNTER(flush_invalidate),
    COUNTER(missed_clean),    COUNTER(outputs_written),  COUNTER(outputs_invalidated),
    COUNTER(preemptions),     COUNTER(free_in_use),      COUNTER(bad_handles),
    COUNTER(model_release_refused), COUNTER(models_released), COUNTER(sync_infer), COUNTER(tasks_refused),
    COUNTER(releases_blocked), COUNTER(release_failures), COUNTER(faults_injected), COUNTER(device_resets),
    COUNTER(tasks_reset), COUNTER(tasks_stalled), COUNTER(outputs_corrupted),
};

static int64_t *counter_ptr(const char *name) {
  for (size_t i = 0; i < sizeof k_counters / sizeof k_counters[0]; i++)
    if (strcmp(name, k_counters[i].name) == 0) return (int64_t *)((char *)&g.c + k_counters[i].off);
  return NULL;
}

SIM_API int64_t hbSimCounter(const char *name) {
  if (!name) return -1;
  lock();
  int64_t v = -1;
  pthread_mutex_lock(&fault_mu);
  g.c.faults_injected = faultsInjected;
  pthread_mutex_unlock(&fault_mu);
  int64_t *p = counter_ptr(name);
  if (p) v = *p;
  else if (strcmp(name, "tasks_live") == 0) v = g.live;
  else if (strcmp(name, "mem_live") == 0) v = g.memLive;
  else if (strcmp(name, "mem_live_bytes") == 0) v = g.memLiveBytes;
  else if (strcmp(name, "cores") == 0) v = g.cores;
  else if (strcmp(name, "latency_us") == 0) v = g.latencyOverride;
  else if (strcmp(name, "tasks_held") == 0) v = g.held;
  else if (strcmp(name, "tasks_reserved") == 0) v = g.reserved;
  else if (strcmp(name, "tasks_stalled_now") == 0) v = g.stalledNow;
  else if (strcmp(name, "tasks_on_device") == 0) { /* queued or running, not dropped by a reset */
    v = 0;
    for (SimTask *t = g.tasks; t; t = t->next) v += !t->dead && (t->state == T_QUEUED || t->state == T_RUNNING);
  }
  else if (strcmp(name, "mem_cap") == 0) v = g.memCap;
  unlock();
  return v;
}

SIM_API void hbSimCountEvent(const char *name, int64_t delta) {
  if (!name) return;
  lock();
  int64_t *p = counter_ptr(name);
  if (p) *p += delta;
  unlock();
}

SIM_API void hbSimReset(void) {
  lock();
  memset(&g.c, 0, sizeof g.c);
  pthread_mutex_lock(&fault_mu);
  faultsInjected = 0;
  pthread_mutex_unlock(&fault_mu);
  g.logLen = 0;
  unlock();
}

SIM_API void hbSimSetLatencyUs(int64_t us) {
  lock();
  g.latencyOverride = us < 0 ? -1 : us;
  unlock();
}

SIM_API void hbSimHold(int64_t maxUs) {
  lock();
  g.holdUntilUs = maxUs > 0 ? now_us() + maxUs : 0;
  pthread_cond_broadcast(&g.sched);
  unlock();
}

SIM_API void hbSimSetCoreCount(int32_t n) {
  if (n < 1 || n > SIM_MAX_CORES) return;
  lock();
  g.cores = n;
  pthread_cond_broadcast(&g.sched);
  unlock();
}

/* S600: 4 cores and 64-byte alignment; back to S100: 1 core. */
SIM_API void hbSimSetSoc(int32_t soc) {
  lock();
  g.soc = soc == SIM_SOC_S600 ? SIM_SOC_S600 : SIM_SOC_S100;
  g.cores = g.soc == SIM_SOC_S600 ? SIM_MAX_CORES : 1;
  pthread_cond_broadcast(&g.sched);
  unlock();
}

SIM_API int32_t hbSimIsS600(void) {
  pthread_once(&g_once, init_once);
  return __atomic_load_n(&g.soc, __ATOMIC_RELAXED) == SIM_SOC_S600;
}

SIM_API int32_t hbSimAlignment(void) { return hbSimIsS600() ? 64 : 32; }

SIM_API void hbSimReserveTasks(int32_t n) {
  lock();
  g.reserved = n < 0 ? 0 : n;
  pthread_cond_broadcast(&g.done);
  unlock();
}

SIM_API void hbSimFailRelease(int32_t n) {
  lock();
  g.failRelease = n < 0 ? 0 : n;
  unlock();
}

SIM_API void hbSimSetStrictCache(int32_t on) {
  lock();
  g.strictCache = on != 0;
  unlock();
}

SIM_API int32_t hbSimCompletionLog(int64_t *ids, int32_t cap) {
  lock();
  int32_t n = g.logLen;
  if (ids && cap > 0) memcpy(ids, g.log, sizeof(int64_t) * (size_t)(n < cap ? n : cap));
  unlock();
  return n;
}

SIM_API int32_t hbSimOnWorkerThread(void) { return t_isWorker; }

/* ---- memory ---------------------------------------------------------------------------- */

/* Allocation containing [vir, vir+len) (len may be 0). Caller holds the lock. */
static SimAlloc *find_alloc(const void *vir, uint64_t len) {
  uintptr_t p = (uintptr_t)vir;
  for (SimAlloc *a = g.allocs; a; a = a->next) {
    uintptr_t b = (uintptr_t)a->vir;
    if (p >= b && p - b <= a->size && len <= a->size - (p - b)) {
      if (len == 0 && p - b == a->size) continue; /* one past the end */
      return a;
    }
  }
  return NULL;
}

static int32_t do_malloc(hbUCPSysMem *mem, uint64_t size, int cached) {
  if (!mem || size == 0) return HB_UCP_INVALID_ARGUMENT;
  if (size > (1ull << 36)) return HB_UCP_MEM_ALLOC_FAIL; /* 64 GiB: beyond any S100 */
  int32_t fault = hbSimFaultCheck(cached ? "hbUCPMallocCached" : "hbUCPMalloc");
  if (fault) return fault;
  uint64_t rounded = (size + 63) & ~63ull;               /* aligned_alloc wants a multiple */
  SimAlloc *a = calloc(1, sizeof *a);
  uint8_t *v = aligned_alloc(64, rounded);
  uint8_t *s = cached ? aligned_alloc(64, rounded) : NULL;
  if (!a || !v || (cached && !s)) {
    free(a);
    free(v);
    free(s);
    return HB_UCP_MEM_ALLOC_FAIL;
  }
  /* Zeroed (and DRAM == CPU view), so an untouched buffer never counts as a missed clean. */
  memset(v, 0, rounded);
  if (s) memset(s, 0, rounded);
  a->vir = v;
  a->shadow = s;
  a->size = size;
  a->cached = cached;
  lock();
  if (g.memCap > 0 && g.memLiveBytes + (int64_t)size > g.memCap) { /* fault injection: device memory full */
    unlock();
    free(a);
    free(v);
    free(s);
    return HB_UCP_MEM_ALLOC_FAIL;
  }
  a->phy = g.nextPhy;
  g.nextPhy += (rounded + 4095) & ~4095ull; /* fake, page-spaced, never reused */
  a->next = g.allocs;
  g.allocs = a;
  g.memLive++;
  g.memLiveBytes += (int64_t)size;
  g.c.mem_alloc++;
  unlock();
  mem->phyAddr = a->phy;
  mem->virAddr = v;
  mem->memSize = size;
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbUCPMalloc(hbUCPSysMem *mem, uint64_t size, int32_t deviceId) {
  return do_malloc(mem, size, 0);
}

SIM_API int32_t hbUCPMallocCached(hbUCPSysMem *mem, uint64_t size, int32_t deviceId) {
  return do_malloc(mem, size, 1);
}

SIM_API int32_t hbUCPFree(hbUCPSysMem *mem) {
  if (!mem) return HB_UCP_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbUCPFree");
  if (fault) return fault; /* nothing freed */
  lock();
  SimAlloc **pp = &g.allocs;
  while (*pp && (*pp)->vir != mem->virAddr) pp = &(*pp)->next;
  SimAlloc *a = *pp;
  if (!a) { /* not ours, or a double free */
    unlock();
    return HB_UCP_MEM_IS_INVALID;
  }
  if (a->inflight > 0) { /* a queued/running task still uses it: refuse instead of a use-after-free */
    g.c.free_in_use++;
    unlock();
    return HB_UCP_MEM_FREE_FAIL;
  }
  *pp = a->next;
  g.memLive--;
  g.memLiveBytes -= (int64_t)a->size;
  g.c.mem_free++;
  unlock();
  free(a->vir);
  free(a->shadow);
  free(a);
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbUCPMemFlush(hbUCPSysMem const *mem, int32_t flag) {
  if (!mem || (flag != HB_SYS_MEM_CACHE_CLEAN && flag != HB_SYS_MEM_CACHE_INVALIDATE))
    return HB_UCP_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbUCPMemFlush");
  if (fault) return fault;
  lock();
  SimAlloc *a = find_alloc(mem->virAddr, mem->memSize);
  if (!a || mem->phyAddr != a->phy + ((uint8_t *)mem->virAddr - a->vir)) {
    unlock();
    return HB_UCP_MEM_IS_INVALID;
  }
  size_t off = (size_t)((uint8_t *)mem->virAddr - a->vir), n = (size_t)mem->memSize;
  if (flag == HB_SYS_MEM_CACHE_CLEAN) {
    g.c.flush_clean++;
    a->nClean++;
    if (a->shadow) memcpy(a->shadow + off, a->vir + off, n);
  } else {
    g.c.flush_invalidate++;
    a->nInvalidate++;
    if (a->pendingInvalidate) {
      g.c.outputs_invalidated++;
      a->nOutputsInvalidated++;
      a->pendingInvalidate = 0;
    }
    /* Strict mode: the CPU view now shows what the device wrote. (Real INVALIDATE is
     * clean+invalidate; we model only the invalidate half - see FORMAT.md.) */
    if (a->shadow && g.strictCache) memcpy(a->vir + off, a->shadow + off, n);
  }
  unlock();
  return HB_UCP_SUCCESS;
}

SIM_API int64_t hbSimMemCounter(const void *virAddr, const char *name) {
  if (!name) return -1;
  lock();
  SimAlloc *a = find_alloc(virAddr, 0);
  int64_t v = -1;
  if (a) {
    if (!strcmp(name, "clean")) v = a->nClean;
    else if (!strcmp(name, "invalidate")) v = a->nInvalidate;
    else if (!strcmp(name, "missed_clean")) v = a->nMissedClean;
    else if (!strcmp(name, "device_writes")) v = a->nDeviceWrites;
    else if (!strcmp(name, "outputs_invalidated")) v = a->nOutputsInvalidated;
    else if (!strcmp(name, "pending_invalidate")) v = a->pendingInvalidate;
    else if (!strcmp(name, "cached")) v = a->cached;
    else if (!strcmp(name, "inflight")) v = a->inflight;
    else if (!strcmp(name, "size")) v = (int64_t)a->size;
  }
  unlock();
  return v;
}

SIM_API int32_t hbSimCheckBuffer(const void *vir, uint64_t phy, uint64_t len) {
  lock();
  SimAlloc *a = find_alloc(vir, len);
  int32_t rc = HB_UCP_SUCCESS;
  if (!a || phy != a->phy + (uint64_t)((const uint8_t *)vir - a->vir)) rc = HB_UCP_MEM_IS_INVALID;
  unlock();
  return rc;
}

/* ---- tasks ----------------------------------------------------------------------------- */

static SimTask *find_task(hbUCPTaskHandle_t h) {
  for (SimTask *t = g.tasks; t; t = t->next)
    if (t->id == (uintptr_t)h && !t->released) return t;
  if (h) g.c.bad_handles++;
  return NULL;
}

static void unpin(SimTask *t) {
  if (!t->pinned) return;
  t->pinned = 0;
  for (int s = 0; s < t->nsubs; s++)
    for (int b = 0; b < t->subs[s].d.bufCount; b++)
      if (t->subs[s].allocs[b]) t->subs[s].allocs[b]->inflight--;
}

/* Drops one reference; returns the task if it must be freed (by free_task, outside the lock). */
static SimTask *unref(SimTask *t) {
  if (--t->refs > 0) return NULL;
  SimTask **pp = &g.tasks;
  while (*pp && *pp != t) pp = &(*pp)->next;
  if (*pp) *pp = t->next;
  unpin(t);
  return t;
}

static void free_task(SimTask *t) {
  if (!t) return;
  for (int s = 0; s < t->nsubs; s++) {
    if (t->subs[s].d.destroy) t->subs[s].d.destroy(t->subs[s].d.ctx);
    free(t->subs[s].bufs);
    free(t->subs[s].allocs);
  }
  free(t);
}

static int32_t fill_sub(SimSub *s, const hbSimSubtaskDesc *d) {
  if (!d || !d->run || d->bufCount < 0 || d->bufCount > 1024 || (d->bufCount && !d->bufs))
    return HB_UCP_INVALID_ARGUMENT;
  size_t n = (size_t)d->bufCount;
  s->bufs = calloc(n ? n : 1, sizeof *s->bufs);
  s->allocs = calloc(n ? n : 1, sizeof *s->allocs);
  if (!s->bufs || !s->allocs) {
    free(s->bufs);
    free(s->allocs);
    return HB_UCP_MEM_ALLOC_FAIL;
  }
  if (n) memcpy(s->bufs, d->bufs, n * sizeof *s->bufs);
  s->d = *d;
  s->d.bufs = s->bufs;
  if (s->d.functionCalls < 1) s->d.functionCalls = 1;
  if (s->d.latencyUs < 0) s->d.latencyUs = 0;
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbSimTaskCreate(hbUCPTaskHandle_t *task, const hbSimSubtaskDesc *desc) {
  if (!task) return HB_UCP_INVALID_ARGUMENT;
  SimTask *t = calloc(1, sizeof *t);
  if (!t) return HB_UCP_MEM_ALLOC_FAIL;
  int32_t rc = fill_sub(&t->subs[0], desc);
  if (rc) {
    free(t);
    return rc;
  }
  t->nsubs = 1;
  lock();
  if (g.live + g.reserved >= task_cap()) { /* the cap counts every UCP user of the process */
    g.c.tasks_refused++;
    unlock();
    t->subs[0].d.destroy = NULL; /* the caller keeps ownership of ctx on failure */
    free_task(t);
    return HB_UCP_TASK_NUMBER_EXCEED_LIMIT;
  }
  t->id = g.nextId++;
  t->refs = 1;
  t->state = T_CREATED;
  t->next = g.tasks;
  g.tasks = t;
  g.live++;
  g.c.tasks_created++;
  *task = (hbUCPTaskHandle_t)t->id;
  unlock();
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbSimTaskAppend(hbUCPTaskHandle_t task, const hbSimSubtaskDesc *desc) {
  if (!desc) return HB_UCP_INVALID_ARGUMENT;
  lock();
  SimTask *t = find_task(task);
  int32_t rc = HB_UCP_SUCCESS;
  if (!t) rc = HB_UCP_TASK_HANDLE_INVALID;
  else if (t->state != T_CREATED) rc = HB_UCP_API_USE_ERROR; /* already submitted */
  else if (t->nsubs >= SIM_MAX_SUBTASKS) rc = HB_UCP_TASK_NUMBER_EXCEED_LIMIT;
  else if (desc->coreNum > 1 || t->subs[0].d.coreNum > 1) rc = HB_UCP_INVALID_ARGUMENT; /* A.7.1 */
  else if ((rc = fill_sub(&t->subs[t->nsubs], desc)) == 0) t->nsubs++;
  unlock();
  return rc;
}

static int eligible(const SimTask *t, int core) {
  uint64_t b = t->sched.backend;
  return b == HB_UCP_CORE_ANY || (b & HB_UCP_BPU_CORE_ANY) || (b & (1ull << core));
}

/* Scheduling order: higher priority, then smaller customId, then submission order. */
static int better(const SimTask *a, const SimTask *b) {
  if (a->sched.priority != b->sched.priority) return a->sched.priority > b->sched.priority;
  if (a->sched.customId != b->sched.customId) return a->sched.customId < b->sched.customId;
  return a->seq < b->seq;
}

static SimTask *pick(int core, int minPriority) {
  SimTask *best = NULL;
  for (SimTask *t = g.tasks; t; t = t->next)
    if (t->state == T_QUEUED && t->sched.priority >= minPriority && eligible(t, core) &&
        (!best || better(t, best)))
      best = t;
  return best;
}

static int task_cores(const SimTask *t) {
  int n = 1;
  for (int s = 0; s < t->nsubs; s++)
    if (t->subs[s].d.coreNum > n) n = t->subs[s].d.coreNum;
  return n;
}

static void *worker_main(void *arg);

/* A multi-core model needs named cores, as many as it was compiled for (libdnn refuses "any").
 * The code the real runtime returns for either refusal is unverified: -100001 here. Partial masks
 * of a single-core model ("core 0 or 1") are accepted, also unverified. */
static int backend_fits_model(uint64_t backend, int cores) {
  if (cores <= 1) return 1;
  if (backend == HB_UCP_CORE_ANY || (backend & HB_UCP_BPU_CORE_ANY)) return 0;
  return __builtin_popcountll(backend & 0xFull) == cores;
}

SIM_API int32_t hbUCPSubmitTask(hbUCPTaskHandle_t taskHandle, hbUCPSchedParam *p) {
  int32_t fault = hbSimFaultCheck("hbUCPSubmitTask");
  if (fault) return fault; /* the task stays created */
  lock();
  SimTask *t = find_task(taskHandle);
  int32_t rc = HB_UCP_SUCCESS;
  if (!t) rc = HB_UCP_TASK_HANDLE_INVALID;
  else if (!p || p->priority < HB_UCP_PRIORITY_LOWEST || p->priority > HB_UCP_PRIORITY_HIGHEST)
    rc = HB_UCP_INVALID_ARGUMENT; /* deviceId and customId are not checked by the real runtime */
  else if (p->backend & ~(0xFull | HB_UCP_BPU_CORE_ANY))
    rc = HB_UCP_INVALID_ARGUMENT; /* a model task runs on BPU cores only */
  else if ((p->backend & 0xFull) >> g.cores)
    rc = HB_UCP_INVALID_ARGUMENT; /* names a core this simulated SoC does not have */
  else if (task_cores(t) > g.cores)
    rc = HB_UCP_INVALID_ARGUMENT; /* model compiled for more cores than simulated */
  else if (!backend_fits_model(p->backend, task_cores(t)))
    rc = HB_UCP_INVALID_ARGUMENT;
  else if (p->priority >= HB_UCP_PRIORITY_HIGH && l2m_configured())
    rc = HB_UCP_INVALID_ARGUMENT; /* "preemption is not supported when using L2M memory"; code unverified */
  else if (t->state != T_CREATED)
    rc = HB_UCP_API_USE_ERROR; /* submitted twice */
  if (rc) {
    unlock();
    return rc;
  }
  /* Resolve and pin every buffer; the caller may have freed one since hbDNNInferV2. */
  for (int s = 0; s < t->nsubs && !rc; s++)
    for (int b = 0; b < t->subs[s].d.bufCount; b++) {
      const hbSimBufRef *r = &t->subs[s].bufs[b];
      SimAlloc *a = find_alloc(r->vir, r->len);
      if (!a || r->phy != a->phy + (uint64_t)((uint8_t *)r->vir - a->vir)) {
        rc = HB_UCP_MEM_IS_INVALID;
        break;
      }
      t->subs[s].allocs[b] = a;
      a->inflight++;
    }
  t->pinned = 1;
  if (rc) {
    unpin(t);
    for (int s = 0; s < t->nsubs; s++) memset(t->subs[s].allocs, 0, sizeof(SimAlloc *) * (size_t)t->subs[s].d.bufCount);
    unlock();
    return rc;
  }
  /* Cache discipline: an input the CPU changed since its last CLEAN is a missed clean. */
  for (int s = 0; s < t->nsubs; s++)
    for (int b = 0; b < t->subs[s].d.bufCount; b++) {
      const hbSimBufRef *r = &t->subs[s].bufs[b];
      SimAlloc *a = t->subs[s].allocs[b];
      if (r->isOutput || !a->shadow) continue;
      size_t off = (size_t)((uint8_t *)r->vir - a->vir);
      if (memcmp(a->vir + off, a->shadow + off, (size_t)r->len) != 0) {
        g.c.missed_clean++;
        a->nMissedClean++;
      }
    }
  /* Lazily start one worker per simulated core. */
  for (int i = 0; i < g.cores; i++)
    if (!g.started[i]) {
      if (pthread_create(&g.workers[i], NULL, worker_main, (void *)(intptr_t)i) != 0) {
        unpin(t);
        unlock();
        return HB_UCP_UNKNOWN_ERROR;
      }
      g.started[i] = 1;
    }
  t->sched = *p;
  t->fault = hbSimFaultCheck("task");
  if (hbSimFaultCheck("stall")) {
    t->stalled = 1;
    g.c.tasks_stalled++;
  }
  t->jitterUs = g.jitterUs > 0 ? (int64_t)(next_random() % (uint64_t)g.jitterUs) : 0;
  t->seq = g.nextSeq++;
  t->submittedUs = now_us();
  t->state = T_QUEUED;
  t->refs++; /* the scheduler's reference */
  g.c.tasks_submitted++;
  pthread_cond_broadcast(&g.sched);
  unlock();
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbUCPSetTaskDoneCb(hbUCPTaskHandle_t taskHandle, hbUCPTaskDoneCb cb, void *userdata) {
  int32_t fault = hbSimFaultCheck("hbUCPSetTaskDoneCb");
  if (fault) return fault; /* no callback set */
  lock();
  SimTask *t = find_task(taskHandle);
  int32_t rc = HB_UCP_SUCCESS;
  if (!t) rc = HB_UCP_TASK_HANDLE_INVALID;
  else if (t->state != T_CREATED) rc = HB_UCP_API_USE_ERROR; /* must be set before submit */
  else {
    t->cb = cb;
    t->cbUser = userdata;
  }
  unlock();
  return rc;
}

SIM_API int32_t hbUCPWaitTaskDone(hbUCPTaskHandle_t taskHandle, int32_t timeout) {
  int32_t fault = hbSimFaultCheck("hbUCPWaitTaskDone");
  if (fault) return fault; /* the task is unchanged */
  lock();
  SimTask *t = find_task(taskHandle);
  if (!t) {
    unlock();
    return HB_UCP_TASK_HANDLE_INVALID;
  }
  if (timeout < 0) timeout = 0; /* the real runtime does not check the sign: <= 0 waits forever */
  if (t->state == T_CREATED) { /* never submitted: the real runtime says "first call hbUCPSubmitTask" */
    unlock();
    return HB_UCP_TASK_HANDLE_INVALID;
  }
  t->refs++; /* keeps t valid while we sleep even if another thread releases it */
  struct timespec dl = deadline_ts(now_us() + (int64_t)timeout * 1000);
  int32_t rc = HB_UCP_SUCCESS;
  while (t->state != T_DONE && !t->released) {
    if (timeout == 0) pthread_cond_wait(&g.done, &g.mu);
    else if (pthread_cond_timedwait(&g.done, &g.mu, &dl) == ETIMEDOUT && t->state != T_DONE) {
      rc = HB_UCP_TASK_TIMEOUT;
      g.c.tasks_timed_out++;
      break;
    }
  }
  if (rc == 0) rc = t->released ? HB_UCP_TASK_HANDLE_INVALID : t->status;
  SimTask *dead = unref(t);
  unlock();
  free_task(dead);
  return rc;
}

SIM_API int32_t hbUCPReleaseTask(hbUCPTaskHandle_t taskHandle) {
  int32_t fault = hbSimFaultCheck("hbUCPReleaseTask");
  if (fault) return fault; /* nothing released */
  lock();
  SimTask *t = find_task(taskHandle);
  if (!t) {
    unlock();
    return HB_UCP_TASK_HANDLE_INVALID;
  }
  if (g.failRelease > 0) { /* fault injection: nothing is released */
    g.failRelease--;
    g.c.release_failures++;
    unlock();
    return HB_UCP_UNKNOWN_ERROR;
  }
  if (t->state == T_RUNNING) {
    /* Like the real runtime: a running op is not aborted, the release waits until the device is done. */
    g.c.releases_blocked++;
    t->refs++;
    while (t->state == T_RUNNING && !t->dead && !g.shutdown) pthread_cond_wait(&g.done, &g.mu);
    t->refs--; /* the handle's own reference is still held: t cannot be freed here */
    if (t->released) { /* another thread released it meanwhile */
      unlock();
      return HB_UCP_TASK_HANDLE_INVALID;
    }
  }
  t->released = 1;
  g.live--;
  g.c.tasks_released++;
  SimTask *dead = NULL;
  if (t->state == T_QUEUED) { /* not running right now: cancel, drop the scheduler's ref */
    t->state = T_DONE;
    t->status = HB_UCP_TASK_RUN_FAILED;
    g.c.tasks_cancelled++;
    unpin(t);
    dead = unref(t);
  }
  /* A running task keeps the scheduler's ref; the worker frees it when it finishes. */
  SimTask *d2 = unref(t);
  if (!dead) dead = d2;
  pthread_cond_broadcast(&g.done); /* wake waiters of this handle */
  unlock();
  free_task(dead);
  return HB_UCP_SUCCESS;
}

SIM_API int32_t hbSimTaskQuery(hbUCPTaskHandle_t task, int32_t sub, void **ctx, int32_t *state, int32_t *status) {
  lock();
  SimTask *t = find_task(task);
  int32_t rc = HB_UCP_SUCCESS;
  if (!t) rc = HB_UCP_TASK_HANDLE_INVALID;
  else if (sub < 0 || sub >= t->nsubs) rc = HB_UCP_INVALID_ARGUMENT;
  else {
    if (ctx) *ctx = t->subs[sub].d.ctx;
    if (state) *state = t->state;
    if (status) *status = t->status;
  }
  unlock();
  return rc;
}


/* Fault injection: every output buffer of a finished sub-task becomes NaN (all bits set: a NaN in
 * F16, F32 and F64) or pseudo-random bytes. Caller holds the lock. */
static void corrupt_outputs(SimSub *s) {
  for (int b = 0; b < s->d.bufCount; b++) {
    if (!s->bufs[b].isOutput) continue;
    SimAlloc *a = s->allocs[b];
    size_t off = (size_t)((uint8_t *)s->bufs[b].vir - a->vir);
    uint8_t *p = (g.strictCache && a->shadow ? a->shadow : a->vir) + off;
    for (uint64_t i = 0; i < s->bufs[b].len; i++) p[i] = g.corrupt == 1 ? 0xFF : (uint8_t)next_random();
    if (!g.strictCache && a->shadow) memcpy(a->shadow + off, p, (size_t)s->bufs[b].len);
    g.c.outputs_corrupted++;
  }
}

SIM_API void hbSimSetMemCap(int64_t bytes) {
  lock();
  g.memCap = bytes < 0 ? 0 : bytes;
  unlock();
}

SIM_API void hbSimCorruptOutputs(int32_t mode) {
  lock();
  g.corrupt = mode == 1 || mode == 2 ? mode : 0;
  unlock();
}

SIM_API void hbSimSetJitterUs(int64_t us, uint64_t seed) {
  lock();
  g.jitterUs = us < 0 ? 0 : us;
  if (seed) g.rng = seed | 1;
  unlock();
}

/* Every stalled task goes on (it completes normally from here). */
SIM_API void hbSimUnstall(void) {
  lock();
  for (SimTask *t = g.tasks; t; t = t->next) t->stalled = 0;
  pthread_cond_broadcast(&g.sched);
  unlock();
}

/*
 * A driver reset: every task handle becomes invalid at once (any later use, release included, is
 * -200004, and waiters return -200004); queued and running tasks are dropped without writing
 * their outputs and their buffers are unpinned; the done-callbacks of submitted tasks are called
 * with -200004 (unverified on a board). Tasks no longer count against the cap. Memory
 * allocations and model handles survive.
 */
typedef struct {
  hbUCPTaskDoneCb cb;
  hbUCPTaskHandle_t handle;
  void *user;
} SimCall;

SIM_API void hbSimDeviceReset(void) {
  lock();
  g.c.device_resets++;
  SimTask *dead[64];
  int ndead = 0;
  int ncalls = 0;
  for (SimTask *t = g.tasks; t; t = t->next) ncalls += t->cb && !t->released && !t->dead && t->state != T_CREATED;
  SimCall *calls = ncalls ? calloc((size_t)ncalls, sizeof *calls) : NULL;
  ncalls = 0;
  for (SimTask *t = g.tasks, *next; t; t = next) {
    next = t->next;
    if (t->released || t->dead) continue;
    /* A submitted task's done-callback is called with -200004 (after the lock is dropped). */
    if (calls && t->cb && t->state != T_CREATED) {
      calls[ncalls++] = (SimCall){t->cb, (hbUCPTaskHandle_t)t->id, t->cbUser};
      g.c.callbacks++;
    }
    t->dead = 1;
    t->stalled = 0;
    t->released = 1;
    g.live--;
    g.c.tasks_reset++;
    if (t->state == T_QUEUED || t->state == T_CREATED) {
      int queued = t->state == T_QUEUED;
      t->state = T_DONE;
      t->status = HB_UCP_TASK_RUN_FAILED;
      unpin(t);
      if (queued) { /* the scheduler's reference */
        SimTask *gone = unref(t);
        if (gone && ndead < 64) dead[ndead++] = gone;
      }
    }
    SimTask *gone = unref(t); /* the handle's reference: nobody can release it any more */
    if (gone && ndead < 64) dead[ndead++] = gone;
  }
  pthread_cond_broadcast(&g.sched);
  pthread_cond_broadcast(&g.done);
  /* Returns once no reset task is still on a core: their buffers are unpinned, so a caller that
     frees them next (after its wait said -200004) never finds them in use. */
  for (;;) {
    int running = 0;
    for (SimTask *t = g.tasks; t && !running; t = t->next) running = t->dead && t->state == T_RUNNING;
    if (!running || g.shutdown) break;
    pthread_cond_wait(&g.done, &g.mu);
  }
  unlock();
  for (int i = 0; i < ndead; i++) free_task(dead[i]);
  for (int i = 0; i < ncalls; i++) calls[i].cb(calls[i].handle, HB_UCP_TASK_HANDLE_INVALID, calls[i].user);
  free(calls);
}

/* ---- worker (one per simulated BPU core) ----------------------------------------------- */

/* Sleeps until an absolute time (now_us clock) with the lock held (released while waiting).
 * Returns 0 on shutdown. */
static int sim_sleep_until(int64_t deadline_us) {
  struct timespec dl = deadline_ts(deadline_us);
  while (!g.shutdown && now_us() < deadline_us)
    if (pthread_cond_timedwait(&g.sched, &g.mu, &dl) == ETIMEDOUT) break;
  return !g.shutdown;
}

/* Runs one sub-task's computation: resolves device views under the lock, computes without it. */
static int32_t run_sub(SimSub *s) {
  int n = s->d.bufCount;
  uint8_t *devStack[16];
  uint8_t **dev = n <= 16 ? devStack : malloc(sizeof(uint8_t *) * (size_t)n);
  if (!dev) return HB_UCP_TASK_RUN_FAILED;
  int strict = g.strictCache;
  for (int b = 0; b < n; b++) {
    SimAlloc *a = s->allocs[b];
    size_t off = (size_t)((uint8_t *)s->bufs[b].vir - a->vir);
    dev[b] = (strict && a->shadow) ? a->shadow + off : a->vir + off;
  }
  unlock();
  int32_t rc = s->d.run(s->d.ctx, dev);
  lock();
  for (int b = 0; b < n; b++) {
    if (!s->bufs[b].isOutput) continue;
    SimAlloc *a = s->allocs[b];
    a->nDeviceWrites++;
    if (!a->cached) continue;
    g.c.outputs_written++;
    a->pendingInvalidate = 1;
    /* Coherent mode: the device wrote the CPU view; keep DRAM equal so it is not a dirty line. */
    size_t off = (size_t)((uint8_t *)s->bufs[b].vir - a->vir);
    if (!strict) memcpy(a->shadow + off, a->vir + off, (size_t)s->bufs[b].len);
  }
  if (dev != devStack) free(dev);
  return rc ? HB_UCP_TASK_RUN_FAILED : HB_UCP_SUCCESS;
}

static void *worker_main(void *arg) {
  int core = (int)(intptr_t)arg;
  t_isWorker = 1;
  /* The simulated core's own clock: back-to-back tasks follow each other exactly, so a late
     wake-up of this thread does not lower the simulated device's throughput. */
  int64_t device_clock = 0;
  lock();
  while (!g.shutdown) {
    SimTask *t = core < g.cores ? pick(core, 0) : NULL;
    if (!t) {
      pthread_cond_wait(&g.sched, &g.mu);
      continue;
    }
    t->state = T_RUNNING;
    /* Starts when the device is free and the task was submitted, not when this thread woke. */
    if (device_clock < t->submittedUs) device_clock = t->submittedUs;
    int preempted = 0;
    int32_t status = HB_UCP_SUCCESS;
    while (t->subIdx < t->nsubs && !preempted && !g.shutdown && !t->dead) {
      SimSub *s = &t->subs[t->subIdx];
      int64_t lat = (g.latencyOverride >= 0 ? g.latencyOverride : s->d.latencyUs) + (t->subIdx == 0 ? t->jitterUs : 0);
      int fc = s->d.functionCalls;
      while (t->sliceIdx < fc) {
        /* Preemption point between simulated function calls: priority 254/255 tasks only,
         * and only over strictly lower priorities (urgent > high > normal). */
        if (t->sched.priority < HB_UCP_PRIORITY_HIGHEST) {
          int minP = t->sched.priority < HB_UCP_PRIORITY_HIGH ? HB_UCP_PRIORITY_HIGH : HB_UCP_PRIORITY_HIGHEST;
          if (pick(core, minP)) {
            preempted = 1;
            break;
          }
        }
        device_clock += lat * (t->sliceIdx + 1) / fc - lat * t->sliceIdx / fc;
        if (!sim_sleep_until(device_clock) || t->dead) break;
        t->sliceIdx++;
      }
      if (preempted || g.shutdown || t->dead) break;
      /* S600: a 4-core model runs only with L2M sized by the application (unverified where the
         real runtime fails it; the simulator fails the run). */
      if (status == HB_UCP_SUCCESS && g.soc == SIM_SOC_S600 && s->d.coreNum == 4 && !l2m_configured())
        status = HB_UCP_TASK_RUN_FAILED;
      if (status == HB_UCP_SUCCESS && !t->released) status = run_sub(s);
      if (status == HB_UCP_SUCCESS && !t->released && g.corrupt) corrupt_outputs(s);
      t->subIdx++;
      t->sliceIdx = 0;
    }
    if (g.shutdown) break;
    if (preempted && !t->dead) {
      t->state = T_QUEUED; /* keeps its seq and progress; resumes after the preemptor */
      g.c.preemptions++;
      continue;
    }
    /* Fault injection: a stalled task keeps its core (and its buffers) until hbSimUnstall or a reset. */
    if (t->stalled && !t->dead) {
      g.stalledNow++;
      while (t->stalled && !t->dead && !g.shutdown) pthread_cond_wait(&g.sched, &g.mu);
      g.stalledNow--;
      if (device_clock < now_us()) device_clock = now_us();
    }
    /* hbSimHold: the task has done its work but stays running (buffers pinned) until released. */
    if (g.holdUntilUs > now_us()) {
      g.held++;
      while (!g.shutdown && !t->dead && g.holdUntilUs > now_us()) {
        struct timespec dl = deadline_ts(g.holdUntilUs);
        pthread_cond_timedwait(&g.sched, &g.mu, &dl);
      }
      g.held--;
      if (device_clock < now_us()) device_clock = now_us();
    }
    if (g.shutdown) break;
    if (t->dead) { /* a reset while it ran: the run is dropped; only the scheduler's ref is left here */
      t->state = T_DONE;
      unpin(t);
      pthread_cond_broadcast(&g.done);
      SimTask *gone = unref(t);
      if (gone) {
        unlock();
        free_task(gone);
        lock();
      }
      continue;
    }
    if (status == HB_UCP_SUCCESS && t->fault) status = t->fault; /* fault injection: the task fails */
    t->state = T_DONE;
    t->status = status;
    unpin(t);
    g.c.tasks_completed++;
    if (status) g.c.tasks_failed++;
    if (g.logLen == g.logCap && g.logCap < (1 << 20)) {
      int32_t cap = g.logCap ? g.logCap * 2 : 256;
      int64_t *nl = realloc(g.log, sizeof(int64_t) * (size_t)cap);
      if (nl) {
        g.log = nl;
        g.logCap = cap;
      }
    }
    if (g.logLen < g.logCap) g.log[g.logLen++] = t->sched.customId;
    pthread_cond_broadcast(&g.done);
    if (t->cb && !t->released) { /* callback on this worker thread, without the lock */
      hbUCPTaskDoneCb cb = t->cb;
      void *ud = t->cbUser;
      hbUCPTaskHandle_t h = (hbUCPTaskHandle_t)t->id;
      g.c.callbacks++;
      unlock();
      cb(h, status, ud);
      lock();
    }
    SimTask *dead = unref(t); /* the scheduler's reference */
    if (dead) {
      unlock();
      free_task(dead);
      lock();
    }
  }
  unlock();
  return NULL;
}

/* Stops the workers so a process exit (or dlclose) joins them cleanly. Tasks the user never
 * released are freed without calling their destroy(): libdnn.so may already be unloaded. */
__attribute__((destructor)) static void sim_ucp_fini(void) {
  lock();
  g.shutdown = 1;
  pthread_cond_broadcast(&g.sched);
  pthread_cond_broadcast(&g.done);
  unlock();
  for (int i = 0; i < SIM_MAX_CORES; i++)
    if (g.started[i]) pthread_join(g.workers[i], NULL);
  lock();
  while (g.tasks) {
    SimTask *t = g.tasks;
    g.tasks = t->next;
    for (int s = 0; s < t->nsubs; s++) {
      free(t->subs[s].bufs);
      free(t->subs[s].allocs);
    }
    free(t);
  }
  free(g.log);
  g.log = NULL;
  g.logLen = g.logCap = 0;
  unlock();
}
