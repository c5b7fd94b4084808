/* Test double ("simulator") of the RDK S100 vendor runtime, UCP 3.13.6 ABI.
 *
 * Types are re-declared here from the documented UCP 3.13.6 ABI (never from vendor headers); the
 * behaviour they carry is tabled in docs/hbdnn-behaviour.md.
 * The simulator is NOT the real runtime: it runs no BPU code; it computes a simple, documented
 * affine function per output (tests/sim/FORMAT.md) so tests can check results exactly.
 *
 * Also declares the simulator-only hbSim* API: control/counters (for tests) and the internal
 * task interface libdnn.so (sim_dnn.c) uses to hand work to libhbucp.so (sim_ucp.c). */
#ifndef EDGERUN_SIM_H
#define EDGERUN_SIM_H

#include <stddef.h>
#include <stdint.h>

#define SIM_API __attribute__((visibility("default")))

/* ---- vendor ABI (S100, UCP 3.13.6; vendor-abi.md A.3-A.6) -------------------------------- */

#define HB_DNN_TENSOR_MAX_DIMENSIONS 10

typedef void *hbDNNPackedHandle_t;
typedef void *hbDNNHandle_t;
typedef void *hbUCPTaskHandle_t;

typedef struct {
  uint64_t phyAddr;
  void *virAddr;
  uint64_t memSize;
} hbUCPSysMem;

typedef struct {
  int32_t priority;
  int64_t customId;
  uint64_t backend;
  uint32_t deviceId;
} hbUCPSchedParam;

typedef struct {
  int32_t dimensionSize[HB_DNN_TENSOR_MAX_DIMENSIONS];
  int32_t numDimensions;
} hbDNNTensorShape;

typedef struct {
  int32_t scaleLen;
  float *scaleData;
  int32_t zeroPointLen;
  int32_t *zeroPointData;
} hbDNNQuantiScale;

typedef enum { HB_DNN_QUANTI_NONE = 0, HB_DNN_QUANTI_SCALE = 1 } hbDNNQuantiType;

typedef struct {
  hbDNNTensorShape validShape;
  int32_t tensorType;
  hbDNNQuantiScale scale;
  hbDNNQuantiType quantiType;
  int32_t quantizeAxis;
  int64_t alignedByteSize;
  int64_t stride[HB_DNN_TENSOR_MAX_DIMENSIONS];
} hbDNNTensorProperties;

typedef struct {
  hbUCPSysMem sysMem;
  hbDNNTensorProperties properties;
} hbDNNTensor;

typedef void (*hbUCPTaskDoneCb)(hbUCPTaskHandle_t taskHandle, int32_t status, void *userdata);

/* Layout checks: every size/offset listed in vendor-abi.md A.4 (LP64: x86_64 and aarch64). */
_Static_assert(sizeof(void *) == 8, "the S100 ABI is LP64");
_Static_assert(sizeof(hbUCPSysMem) == 24, "hbUCPSysMem size");
_Static_assert(offsetof(hbUCPSysMem, phyAddr) == 0, "phyAddr");
_Static_assert(offsetof(hbUCPSysMem, virAddr) == 8, "virAddr");
_Static_assert(offsetof(hbUCPSysMem, memSize) == 16, "memSize");
_Static_assert(sizeof(hbUCPSchedParam) == 32, "hbUCPSchedParam size");
_Static_assert(offsetof(hbUCPSchedParam, priority) == 0, "priority");
_Static_assert(offsetof(hbUCPSchedParam, customId) == 8, "customId");
_Static_assert(offsetof(hbUCPSchedParam, backend) == 16, "backend");
_Static_assert(offsetof(hbUCPSchedParam, deviceId) == 24, "deviceId");
_Static_assert(sizeof(hbDNNTensorShape) == 44, "hbDNNTensorShape size");
_Static_assert(offsetof(hbDNNTensorShape, dimensionSize) == 0, "dimensionSize");
_Static_assert(offsetof(hbDNNTensorShape, numDimensions) == 40, "numDimensions");
_Static_assert(sizeof(hbDNNQuantiScale) == 32, "hbDNNQuantiScale size");
_Static_assert(offsetof(hbDNNQuantiScale, scaleLen) == 0, "scaleLen");
_Static_assert(offsetof(hbDNNQuantiScale, scaleData) == 8, "scaleData");
_Static_assert(offsetof(hbDNNQuantiScale, zeroPointLen) == 16, "zeroPointLen");
_Static_assert(offsetof(hbDNNQuantiScale, zeroPointData) == 24, "zeroPointData");
_Static_assert(sizeof(hbDNNQuantiType) == 4, "hbDNNQuantiType is int-sized");
_Static_assert(sizeof(hbDNNTensorProperties) == 176, "hbDNNTensorProperties size");
_Static_assert(offsetof(hbDNNTensorProperties, validShape) == 0, "validShape");
_Static_assert(offsetof(hbDNNTensorProperties, tensorType) == 44, "tensorType");
_Static_assert(offsetof(hbDNNTensorProperties, scale) == 48, "scale");
_Static_assert(offsetof(hbDNNTensorProperties, quantiType) == 80, "quantiType");
_Static_assert(offsetof(hbDNNTensorProperties, quantizeAxis) == 84, "quantizeAxis");
_Static_assert(offsetof(hbDNNTensorProperties, alignedByteSize) == 88, "alignedByteSize");
_Static_assert(offsetof(hbDNNTensorProperties, stride) == 96, "stride");
_Static_assert(sizeof(hbDNNTensor) == 200, "hbDNNTensor size");
_Static_assert(offsetof(hbDNNTensor, sysMem) == 0, "sysMem");
_Static_assert(offsetof(hbDNNTensor, properties) == 24, "properties");

/* hbDNNDataType, S100 numbering (A.5). */
enum {
  HB_DNN_TENSOR_TYPE_S4 = 0,
  HB_DNN_TENSOR_TYPE_U4 = 1,
  HB_DNN_TENSOR_TYPE_S8 = 2,
  HB_DNN_TENSOR_TYPE_U8 = 3,
  HB_DNN_TENSOR_TYPE_F16 = 4,
  HB_DNN_TENSOR_TYPE_S16 = 5,
  HB_DNN_TENSOR_TYPE_U16 = 6,
  HB_DNN_TENSOR_TYPE_F32 = 7,
  HB_DNN_TENSOR_TYPE_S32 = 8,
  HB_DNN_TENSOR_TYPE_U32 = 9,
  HB_DNN_TENSOR_TYPE_F64 = 10,
  HB_DNN_TENSOR_TYPE_S64 = 11,
  HB_DNN_TENSOR_TYPE_U64 = 12,
  HB_DNN_TENSOR_TYPE_BOOL8 = 13,
  HB_DNN_TENSOR_TYPE_MAX = 14,
};

/* hbUCPSysMemFlushFlag (A.5): note INVALIDATE = 1, CLEAN = 2. */
enum { HB_SYS_MEM_CACHE_INVALIDATE = 1, HB_SYS_MEM_CACHE_CLEAN = 2 };

/* Backend bits (A.5); only the BPU ones matter to a model task. */
#define HB_UCP_CORE_ANY 0ull
#define HB_UCP_BPU_CORE_0 (1ull << 0)
#define HB_UCP_BPU_CORE_1 (1ull << 1)
#define HB_UCP_BPU_CORE_2 (1ull << 2)
#define HB_UCP_BPU_CORE_3 (1ull << 3)
#define HB_UCP_BPU_CORE_ANY (1ull << 7)

#define HB_UCP_PRIORITY_LOWEST 0
#define HB_UCP_PRIORITY_HIGH 254   /* preemptive */
#define HB_UCP_PRIORITY_HIGHEST 255 /* "urgent", preemptive */

/* hbUCPStatus (A.6) */
enum {
  HB_UCP_SUCCESS = 0,
  HB_UCP_INVALID_ARGUMENT = -100001,
  HB_UCP_API_USE_ERROR = -100002,
  HB_UCP_INIT_FAILED = -100003,
  HB_UCP_UNKNOWN_ERROR = -100004,
  HB_UCP_TASK_NUMBER_EXCEED_LIMIT = -200001,
  HB_UCP_TASK_TIMEOUT = -200002,
  HB_UCP_TASK_RUN_FAILED = -200003,
  HB_UCP_TASK_HANDLE_INVALID = -200004,
  HB_UCP_OP_NUMBER_EXCEED_LIMIT = -300001,
  HB_UCP_OP_NOT_REGISTER = -300002,
  HB_UCP_OP_CMD_UNAVAILABLE = -300003,
  HB_UCP_MEM_ALLOC_FAIL = -400001,
  HB_UCP_MEM_FREE_FAIL = -400002,
  HB_UCP_MEM_FLUSH_FAIL = -400003,
  HB_UCP_MEM_INVALIDATE_FAIL = -400004,
  HB_UCP_MEM_IS_INVALID = -400005,
  HB_UCP_MEM_MAP_FAIL = -400006,
  HB_UCP_MEM_UNMAP_FAIL = -400007,
  HB_UCP_FILE_OPEN_FAILED = -500001,
  HB_UCP_MODEL_NUMBER_EXCEED_LIMIT = -600001,
  HB_UCP_MODEL_INVALID = -600002,
  HB_UCP_MODEL_IS_INUSE = -600003,
  HB_UCP_MODEL_INCOMPATIBLE = -600004,
};

/* hbDNNStatus aliases (A.6) */
enum {
  HB_DNN_SUCCESS = 0,
  HB_DNN_INVALID_ARGUMENT = -100001,
  HB_DNN_INVALID_PACKED_DNN_HANDLE = -100001,
  HB_DNN_INVALID_DNN_HANDLE = -100001,
  HB_DNN_API_USE_ERROR = -100002,
  HB_DNN_OUT_OF_MEMORY = -400001,
  HB_DNN_CAN_NOT_OPEN_FILE = -500001,
  HB_DNN_MODEL_NUMBER_EXCEED_LIMIT = -600001,
  HB_DNN_INVALID_MODEL = -600002,
  HB_DNN_MODEL_IS_RUNNING = -600003,
  HB_DNN_INCOMPATIBLE_MODEL = -600004,
  HB_DNN_TIMEOUT = -200002,
  HB_DNN_TASK_NUM_EXCEED_LIMIT = -200001,
  HB_DNN_RUN_TASK_FAILED = -200003,
  HB_DNN_INVALID_TASK_HANDLE = -200004,
};

/* ---- vendor entry points the simulator exports (A.3 prototypes) ------------------------ */

/* libhbucp.so */
SIM_API const char *hbUCPGetVersion(void);
SIM_API const char *hbUCPGetSocName(void);
SIM_API int32_t hbUCPSubmitTask(hbUCPTaskHandle_t taskHandle, hbUCPSchedParam *schedParam);
SIM_API int32_t hbUCPWaitTaskDone(hbUCPTaskHandle_t taskHandle, int32_t timeout);
SIM_API int32_t hbUCPSetTaskDoneCb(hbUCPTaskHandle_t taskHandle, hbUCPTaskDoneCb taskDoneCb, void *userdata);
SIM_API int32_t hbUCPReleaseTask(hbUCPTaskHandle_t taskHandle);
SIM_API int32_t hbUCPMalloc(hbUCPSysMem *mem, uint64_t size, int32_t deviceId);
SIM_API int32_t hbUCPMallocCached(hbUCPSysMem *mem, uint64_t size, int32_t deviceId);
SIM_API int32_t hbUCPMemFlush(hbUCPSysMem const *mem, int32_t flag);
SIM_API int32_t hbUCPFree(hbUCPSysMem *mem);
SIM_API const char *hbUCPGetErrorDesc(int32_t errorCode);

/* libdnn.so */
SIM_API const char *hbDNNGetVersion(void);
SIM_API int32_t hbDNNInitializeFromFiles(hbDNNPackedHandle_t *dnnPackedHandle, char const **modelFileNames,
                                         int32_t modelFileCount);
SIM_API int32_t hbDNNInitializeFromDDR(hbDNNPackedHandle_t *dnnPackedHandle, const void **modelData,
                                       int32_t *modelDataLengths, int32_t modelDataCount);
SIM_API int32_t hbDNNRelease(hbDNNPackedHandle_t dnnPackedHandle);
SIM_API int32_t hbDNNGetModelNameList(char const ***modelNameList, int32_t *modelNameCount,
                                      hbDNNPackedHandle_t dnnPackedHandle);
SIM_API int32_t hbDNNGetModelHandle(hbDNNHandle_t *dnnHandle, hbDNNPackedHandle_t dnnPackedHandle,
                                    char const *modelName);
SIM_API int32_t hbDNNGetInputCount(int32_t *inputCount, hbDNNHandle_t dnnHandle);
SIM_API int32_t hbDNNGetOutputCount(int32_t *outputCount, hbDNNHandle_t dnnHandle);
SIM_API int32_t hbDNNGetInputName(char const **name, hbDNNHandle_t dnnHandle, int32_t inputIndex);
SIM_API int32_t hbDNNGetOutputName(char const **name, hbDNNHandle_t dnnHandle, int32_t outputIndex);
SIM_API int32_t hbDNNGetInputTensorProperties(hbDNNTensorProperties *properties, hbDNNHandle_t dnnHandle,
                                              int32_t inputIndex);
SIM_API int32_t hbDNNGetOutputTensorProperties(hbDNNTensorProperties *properties, hbDNNHandle_t dnnHandle,
                                               int32_t outputIndex);
SIM_API int32_t hbDNNInferV2(hbUCPTaskHandle_t *taskHandle, hbDNNTensor *output, hbDNNTensor const *input,
                             hbDNNHandle_t dnnHandle);
SIM_API int32_t hbDNNGetCompileBpuCoreNum(int32_t *bpuCoreNum, hbDNNHandle_t dnnHandle);
SIM_API int32_t hbDNNGetTaskOutputTensorProperties(hbDNNTensorProperties *properties, hbUCPTaskHandle_t taskHandle,
                                                   int32_t subTaskIndex, int32_t outputIndex);
SIM_API const char *hbDNNGetErrorDesc(int32_t errorCode);

/* ---- simulator limits ------------------------------------------------------------------ */

#define SIM_MAX_TASKS 32        /* coexisting tasks by default (A.7.1); HB_UCP_MAX_TASK_NUM overrides */
#define SIM_MAX_SUBTASKS 32     /* models appended to one task */
#define SIM_MAX_CORES 4         /* BPU_CORE_0..3 */
#define SIM_MAX_MODELS 32       /* per packed handle */

/* ---- simulator control API (exported from libhbucp.so; not vendor symbols) ------------- */

SIM_API int64_t hbSimCounter(const char *name);
SIM_API void hbSimReset(void);
SIM_API void hbSimSetLatencyUs(int64_t us);
SIM_API void hbSimSetCoreCount(int32_t n);
SIM_API void hbSimSetStrictCache(int32_t on);
SIM_API int32_t hbSimCompletionLog(int64_t *customIds, int32_t cap);
SIM_API int64_t hbSimMemCounter(const void *virAddr, const char *name);
/* Tasks that finish their work wait, still running, until hbSimHold(0) or maxUs from now. */
SIM_API void hbSimHold(int64_t maxUs);
/* The simulated SoC: SIM_SOC_S100 (default) or SIM_SOC_S600 (4 cores, 64-byte alignment, L2M rule). */
enum { SIM_SOC_S100 = 0, SIM_SOC_S600 = 1 };
SIM_API void hbSimSetSoc(int32_t soc);
/* Tasks held by "other UCP users" of the process: they count against the task cap. */
SIM_API void hbSimReserveTasks(int32_t n);
/* Fault injection: the next n hbUCPReleaseTask calls on a live handle fail (-100004) and release
 * nothing. No real cause is known; it drives the shim's "release failed" paths. */
SIM_API void hbSimFailRelease(int32_t n);
/* Fault injection (FORMAT.md section 6). Calls of fn counted from now: call nth (1-based) and the
 * times-1 after it (times < 0: all from nth on) fail with code and do nothing else. fn is a vendor
 * function name, or "task" (the nth submitted task finishes with code), or "stall" (the nth
 * submitted task never completes until hbSimUnstall or a reset). code 0 removes fn's rule; fn
 * NULL removes every rule. */
SIM_API void hbSimInjectFault(const char *fn, int64_t nth, int32_t code, int32_t times);
SIM_API void hbSimSetMemCap(int64_t bytes);        /* total bytes of hbUCPMalloc* (0 = no cap) */
SIM_API void hbSimCorruptOutputs(int32_t mode);    /* 0 off, 1 NaN (all bits set), 2 random bytes */
SIM_API void hbSimSetJitterUs(int64_t us, uint64_t seed); /* each task + [0, us) latency; seed 0 keeps */
SIM_API void hbSimUnstall(void);                   /* stalled tasks go on */
SIM_API void hbSimDeviceReset(void);               /* every task handle invalid, in-flight tasks fail */
SIM_API void hbSimNullStrings(int32_t mask);       /* 1 versions, 2 SoC name, 4 error texts; -1 = HBSIM_NULL */
/* Internal: counts a call of fn and returns the code to fail it with, or 0. */
SIM_API int32_t hbSimFaultCheck(const char *fn);
/* Internal: whether the strings of kind `what` (mask bits above) read as NULL. */
SIM_API int32_t hbSimStringsNull(int32_t what);
/* Row alignment of the simulated SoC (32 or 64), for libdnn's checks. */
SIM_API int32_t hbSimAlignment(void);
/* 1 when the simulated SoC is an S600. */
SIM_API int32_t hbSimIsS600(void);

/* ---- internal task interface libdnn -> libhbucp (exported because it crosses .so files) -- */

/* One buffer a sub-task touches; [vir, vir+len) must lie in one hbUCPMalloc* allocation. */
typedef struct {
  void *vir;
  uint64_t phy;
  uint64_t len;
  int32_t isOutput;
} hbSimBufRef;

/* One model run inside a task. run() gets one device-view pointer per buffer (same order as
 * bufs): the live buffer, or in strict-cache mode the simulated DRAM copy of a cached buffer. */
typedef struct {
  int32_t (*run)(void *ctx, uint8_t *const *dev);
  void (*destroy)(void *ctx);
  void *ctx;
  int64_t latencyUs;
  int32_t functionCalls; /* preemption points = latency slices */
  int32_t coreNum;       /* model's compiled BPU core count */
  const hbSimBufRef *bufs;
  int32_t bufCount;
} hbSimSubtaskDesc;

/* Create a task (not started) from one sub-task. On success the task owns desc->ctx
 * (destroy() is called when the task is freed); on failure the caller still owns it. */
SIM_API int32_t hbSimTaskCreate(hbUCPTaskHandle_t *task, const hbSimSubtaskDesc *desc);
/* Append a sub-task to a created, not yet submitted task. Same ownership rule. */
SIM_API int32_t hbSimTaskAppend(hbUCPTaskHandle_t task, const hbSimSubtaskDesc *desc);
/* 0 if [vir, vir+len) lies in one live allocation with a matching phyAddr, else an error. */
SIM_API int32_t hbSimCheckBuffer(const void *vir, uint64_t phy, uint64_t len);
/* 1 on a simulated BPU worker thread (a synchronous inference there would deadlock). */
SIM_API int32_t hbSimOnWorkerThread(void);
/* A sub-task's context and the task's state (0 created, 1 queued, 2 running, 3 done) and status;
 * -200004 for a released or unknown handle. The ctx stays valid until the task is released. */
SIM_API int32_t hbSimTaskQuery(hbUCPTaskHandle_t task, int32_t sub, void **ctx, int32_t *state, int32_t *status);
/* Adds delta to a named counter (libdnn reports its own events through this). */
SIM_API void hbSimCountEvent(const char *name, int64_t delta);

#endif
