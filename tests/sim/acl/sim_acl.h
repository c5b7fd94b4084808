/* Test double ("simulator") of Huawei Ascend AscendCL (ACL) model inference.
 *
 * Types, constants and error codes are re-declared here from the documented ACL ABI
 * (docs: vendor-abi.md sections C and E.3; public CANN headers), never copied from vendor
 * headers. The simulator is NOT the real runtime: there is no NPU and no real .om model; a
 * simulated model computes a documented function per output (tests/sim/acl/FORMAT.md), so tests
 * can check results exactly. Nothing here was verified on a board.
 *
 * Two halves, so the CANN 9 split can be built:
 *   sim_acl_rt.c  -> aclInit/aclFinalize, aclrt*, aclGetRecentErrMsg, data buffers, streams,
 *                    faults, counters   (libacl_rt.so)
 *   sim_acl_mdl.c -> aclmdl*            (libacl_mdl.so, NEEDED libacl_rt.so)
 * Both compiled into one library give the classic libascendcl.so. */
#ifndef EDGERUN_SIM_ACL_H
#define EDGERUN_SIM_ACL_H

#include <stddef.h>
#include <stdint.h>

#define SIMACL_API __attribute__((visibility("default")))

/* ---- vendor ABI (vendor-abi.md C.2, C.3, E.3) ------------------------------------------- */

typedef int aclError;
typedef void *aclrtContext;
typedef void *aclrtStream;
typedef struct aclDataBuffer aclDataBuffer;
typedef struct aclmdlDataset aclmdlDataset;
typedef struct aclmdlDesc aclmdlDesc;
typedef uint16_t aclFloat16;

#define ACL_MAX_DIM_CNT 128
#define ACL_MAX_TENSOR_NAME_LEN 128
#define ACL_DYNAMIC_TENSOR_NAME "ascend_mbatch_shape_data"

typedef struct {
  char name[ACL_MAX_TENSOR_NAME_LEN];
  size_t dimCount;
  int64_t dims[ACL_MAX_DIM_CNT];
} aclmdlIODims;

typedef struct {
  size_t batchCount;
  uint64_t batch[ACL_MAX_DIM_CNT];
} aclmdlBatch;

typedef struct {
  size_t hwCount;
  uint64_t hw[ACL_MAX_DIM_CNT][2];
} aclmdlHW;

_Static_assert(sizeof(void *) == 8, "LP64 only");
_Static_assert(sizeof(aclmdlIODims) == 1160, "aclmdlIODims size");
_Static_assert(offsetof(aclmdlIODims, dimCount) == 128, "dimCount");
_Static_assert(offsetof(aclmdlIODims, dims) == 136, "dims");
_Static_assert(sizeof(aclmdlBatch) == 1032, "aclmdlBatch size");
_Static_assert(sizeof(aclmdlHW) == 2056, "aclmdlHW size");

typedef enum {
  ACL_DT_UNDEFINED = -1,
  ACL_FLOAT = 0,
  ACL_FLOAT16 = 1,
  ACL_INT8 = 2,
  ACL_INT32 = 3,
  ACL_UINT8 = 4,
  ACL_INT16 = 6,
  ACL_UINT16 = 7,
  ACL_UINT32 = 8,
  ACL_INT64 = 9,
  ACL_UINT64 = 10,
  ACL_DOUBLE = 11,
  ACL_BOOL = 12,
  ACL_BF16 = 27,
} aclDataType;

typedef enum {
  ACL_FORMAT_UNDEFINED = -1,
  ACL_FORMAT_NCHW = 0,
  ACL_FORMAT_NHWC = 1,
  ACL_FORMAT_ND = 2,
  ACL_FORMAT_NC1HWC0 = 3,
  ACL_FORMAT_FRACTAL_Z = 4,
  ACL_FORMAT_NC1HWC0_C04 = 12,
  ACL_FORMAT_FRACTAL_NZ = 29,
} aclFormat;

typedef enum {
  ACL_MEMCPY_HOST_TO_HOST = 0,
  ACL_MEMCPY_HOST_TO_DEVICE = 1,
  ACL_MEMCPY_DEVICE_TO_HOST = 2,
  ACL_MEMCPY_DEVICE_TO_DEVICE = 3,
  ACL_MEMCPY_DEFAULT = 4,
} aclrtMemcpyKind;

typedef enum {
  ACL_MEM_MALLOC_HUGE_FIRST = 0,
  ACL_MEM_MALLOC_HUGE_ONLY = 1,
  ACL_MEM_MALLOC_NORMAL_ONLY = 2,
} aclrtMemMallocPolicy;

typedef enum { ACL_DEVICE = 0, ACL_HOST = 1 } aclrtRunMode;

_Static_assert(sizeof(aclDataType) == 4 && sizeof(aclFormat) == 4 && sizeof(aclrtRunMode) == 4, "enums are 4 bytes");

/* Error codes: static const int in the vendor headers (not exported), so literal here. */
enum {
  ACL_SUCCESS = 0,
  ACL_ERROR_INVALID_PARAM = 100000,
  ACL_ERROR_UNINITIALIZE = 100001,
  ACL_ERROR_REPEAT_INITIALIZE = 100002,
  ACL_ERROR_INVALID_FILE = 100003,
  ACL_ERROR_INVALID_MODEL_ID = 100011,
  ACL_ERROR_PARSE_MODEL = 100013,
  ACL_ERROR_READ_MODEL_FAILURE = 100014,
  ACL_ERROR_MODEL_SIZE_INVALID = 100015,
  ACL_ERROR_MODEL_INPUT_NOT_MATCH = 100017,
  ACL_ERROR_MODEL_OUTPUT_NOT_MATCH = 100018,
  ACL_ERROR_MODEL_NOT_DYNAMIC = 100019,
  ACL_ERROR_REPEAT_FINALIZE = 100037,
  ACL_ERROR_BAD_ALLOC = 200000,
  ACL_ERROR_INVALID_DEVICE = 200002,
  ACL_ERROR_FAILURE = 500001,
  ACL_ERROR_GE_FAILURE = 500002,
  ACL_ERROR_RT_FAILURE = 500003,
  ACL_ERROR_RT_PARAM_INVALID = 107000,
  ACL_ERROR_RT_INVALID_DEVICEID = 107001,
  ACL_ERROR_RT_CONTEXT_NULL = 107002,
  ACL_ERROR_RT_STREAM_CONTEXT = 107003,
  ACL_ERROR_RT_MODEL_CONTEXT = 107004,
  ACL_ERROR_RT_MEMORY_ALLOCATION = 207001,
  ACL_ERROR_RT_DEV_SETUP_ERROR = 507033,
  ACL_ERROR_RT_STREAM_SYNC_TIMEOUT = 507046,
};

/* ---- vendor entry points (real prototypes) ----------------------------------------------- */

/* libacl_rt.so half */
SIMACL_API aclError aclInit(const char *configPath);
SIMACL_API aclError aclFinalize(void);
SIMACL_API const char *aclGetRecentErrMsg(void);
SIMACL_API aclError aclsysGetVersionStr(char *pkgName, char *versionStr);
SIMACL_API aclError aclrtGetVersion(int32_t *majorVersion, int32_t *minorVersion, int32_t *patchVersion);
SIMACL_API aclError aclrtSetDevice(int32_t deviceId);
SIMACL_API aclError aclrtResetDevice(int32_t deviceId);
SIMACL_API aclError aclrtGetDeviceCount(uint32_t *count);
SIMACL_API aclError aclrtGetRunMode(aclrtRunMode *runMode);
SIMACL_API aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId);
SIMACL_API aclError aclrtDestroyContext(aclrtContext context);
SIMACL_API aclError aclrtSetCurrentContext(aclrtContext context);
SIMACL_API aclError aclrtGetCurrentContext(aclrtContext *context);
SIMACL_API aclError aclrtCreateStream(aclrtStream *stream);
SIMACL_API aclError aclrtDestroyStream(aclrtStream stream);
SIMACL_API aclError aclrtSynchronizeStream(aclrtStream stream);
SIMACL_API aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout);
SIMACL_API aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy);
SIMACL_API aclError aclrtFree(void *devPtr);
SIMACL_API aclError aclrtMallocHost(void **hostPtr, size_t size);
SIMACL_API aclError aclrtFreeHost(void *hostPtr);
SIMACL_API aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind);
SIMACL_API aclDataBuffer *aclCreateDataBuffer(void *data, size_t size);
SIMACL_API aclError aclDestroyDataBuffer(const aclDataBuffer *dataBuffer);
SIMACL_API void *aclGetDataBufferAddr(const aclDataBuffer *dataBuffer);
SIMACL_API size_t aclGetDataBufferSizeV2(const aclDataBuffer *dataBuffer);

/* libacl_mdl.so half */
SIMACL_API aclError aclmdlLoadFromFile(const char *modelPath, uint32_t *modelId);
SIMACL_API aclError aclmdlLoadFromMem(const void *model, size_t modelSize, uint32_t *modelId);
SIMACL_API aclError aclmdlUnload(uint32_t modelId);
SIMACL_API aclmdlDesc *aclmdlCreateDesc(void);
SIMACL_API aclError aclmdlDestroyDesc(aclmdlDesc *modelDesc);
SIMACL_API aclError aclmdlGetDesc(aclmdlDesc *modelDesc, uint32_t modelId);
SIMACL_API size_t aclmdlGetNumInputs(aclmdlDesc *modelDesc);
SIMACL_API size_t aclmdlGetNumOutputs(aclmdlDesc *modelDesc);
SIMACL_API size_t aclmdlGetInputSizeByIndex(aclmdlDesc *modelDesc, size_t index);
SIMACL_API size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *modelDesc, size_t index);
SIMACL_API aclError aclmdlGetInputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims);
SIMACL_API aclError aclmdlGetOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims);
SIMACL_API aclError aclmdlGetCurOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims);
SIMACL_API aclDataType aclmdlGetInputDataType(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API aclDataType aclmdlGetOutputDataType(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API aclFormat aclmdlGetInputFormat(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API aclFormat aclmdlGetOutputFormat(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API const char *aclmdlGetInputNameByIndex(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API const char *aclmdlGetOutputNameByIndex(const aclmdlDesc *modelDesc, size_t index);
SIMACL_API aclError aclmdlGetInputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index);
SIMACL_API aclmdlDataset *aclmdlCreateDataset(void);
SIMACL_API aclError aclmdlDestroyDataset(const aclmdlDataset *dataset);
SIMACL_API aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *dataBuffer);
SIMACL_API size_t aclmdlGetDatasetNumBuffers(const aclmdlDataset *dataset);
SIMACL_API aclDataBuffer *aclmdlGetDatasetBuffer(const aclmdlDataset *dataset, size_t index);
SIMACL_API aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output);
SIMACL_API aclError aclmdlExecuteAsync(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output,
                                       aclrtStream stream);
SIMACL_API aclError aclmdlGetDynamicBatch(const aclmdlDesc *modelDesc, aclmdlBatch *batch);
SIMACL_API aclError aclmdlGetDynamicHW(const aclmdlDesc *modelDesc, size_t index, aclmdlHW *hw);
SIMACL_API aclError aclmdlSetDynamicBatchSize(uint32_t modelId, aclmdlDataset *dataset, size_t index,
                                              uint64_t batchSize);
SIMACL_API aclError aclmdlSetDynamicHWSize(uint32_t modelId, aclmdlDataset *dataset, size_t index, uint64_t height,
                                           uint64_t width);
SIMACL_API aclError aclmdlGetInputDynamicGearCount(const aclmdlDesc *modelDesc, size_t index, size_t *gearCount);

/* ---- simulator control API (exported from the rt half; not vendor symbols) ---------------- */

/* Live counts, in this order (SIMACL_LIVE_*): fills min(n, SIMACL_LIVE_COUNT) values. */
enum {
  SIMACL_LIVE_INIT = 0,      /* 1 while aclInit'ed */
  SIMACL_LIVE_MODELS,        /* loaded, not unloaded */
  SIMACL_LIVE_DEV_BUFFERS,   /* aclrtMalloc'ed, not freed */
  SIMACL_LIVE_DEV_BYTES,     /* their rounded sizes */
  SIMACL_LIVE_HOST_BUFFERS,  /* aclrtMallocHost'ed, not freed */
  SIMACL_LIVE_DATASETS,
  SIMACL_LIVE_DATA_BUFFERS,
  SIMACL_LIVE_CONTEXTS,      /* explicit contexts + live default contexts */
  SIMACL_LIVE_STREAMS,
  SIMACL_LIVE_DEVICES,       /* aclrtSetDevice references not yet reset */
  SIMACL_LIVE_DESCS,
  SIMACL_LIVE_TASKS,         /* ExecuteAsync work not yet finished */
  SIMACL_LIVE_COUNT
};
SIMACL_API void simacl_live_counts(int64_t *out, int32_t n);
/* Named counter or gauge (FORMAT.md section 5); -1 for an unknown name. */
SIMACL_API int64_t simacl_counter(const char *name);
/* Zero the event counters (not live state, not faults). */
SIMACL_API void simacl_reset_counters(void);
/* Fault injection (FORMAT.md section 6). */
SIMACL_API void simacl_inject_fault(const char *fn, int64_t nth, int32_t code, int32_t times);
SIMACL_API void simacl_set_mem_cap(int64_t bytes);
SIMACL_API void simacl_device_fault(int32_t code); /* 0 clears; aclrtResetDevice clears too */
SIMACL_API void simacl_unstall(void);
SIMACL_API void simacl_null_strings(int32_t mask); /* 1 version calls fail, 2 aclGetRecentErrMsg NULL; -1 env */
SIMACL_API void simacl_set_jitter_us(int64_t us, uint64_t seed);
SIMACL_API void simacl_set_latency_us(int64_t us); /* -1 = per model */
SIMACL_API void simacl_set_device_count(int32_t n);
SIMACL_API void simacl_set_run_mode(int32_t mode); /* only while no device buffer is live */
/* 1: aclmdlGetOutputDims of a model with gears gives the largest gear's dims, as CANN documents
   ("in the dynamic-shape scenario ... the maximum batch/image size profile"); 0: -1 kept; -1: back
   to $ACLSIM_OUTPUT_DIMS (1 unless it is "declared"). */
SIMACL_API void simacl_set_output_dims_max(int32_t on);
SIMACL_API int32_t simacl_output_dims_max(void);

/* Parse an ACLSIM1 image without loading it (0 or the load error code): for the fuzz harness. */
SIMACL_API aclError simacl_parse_model(const void *data, size_t size);

/* ---- internal interface mdl half -> rt half (exported because it crosses .so files) -------- */

typedef struct simacl_ctx simacl_ctx;
/* Shared prologue: not initialised -> 100001, device fault -> its code, injected fault of fn,
 * then (needCtx) no current context -> 107002. Sets the error message on failure. */
SIMACL_API aclError simacl_enter(const char *fn, int needCtx, simacl_ctx **ctx);
SIMACL_API aclError simacl_fail(aclError code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
SIMACL_API void simacl_count(const char *name, int64_t delta);
SIMACL_API int32_t simacl_fault_check(const char *fn);
SIMACL_API int32_t simacl_run_mode(void);
SIMACL_API int32_t simacl_device_fault_code(void);
/* Data-buffer / dataset registries (rt half owns buffers; mdl half owns datasets). */
SIMACL_API int simacl_buffer_valid(const aclDataBuffer *b);
/* Host-accessible view of [addr, addr+len) for the model to read/write: a device buffer's data
 * (ACL_HOST: its shadow) or, in ACL_DEVICE run mode, addr itself. NULL = not acceptable. */
SIMACL_API uint8_t *simacl_device_view(const void *addr, size_t len, int *isDevice);
/* Pin (+1) / unpin (-1) the device allocation holding addr while queued work uses it: aclrtFree
 * of a pinned buffer is refused (counter free_in_use) instead of a use-after-free. */
SIMACL_API void simacl_device_pin(const void *addr, int delta);
/* Latency of one run in microseconds: the override or modelUs, plus jitter. */
SIMACL_API int64_t simacl_run_latency_us(int64_t modelUs, int64_t modelJitterUs);
/* Streams: run fn(arg) on the stream's worker; done(arg, status) frees arg. */
typedef aclError (*simacl_job_fn)(void *arg);
SIMACL_API aclError simacl_stream_enqueue(aclrtStream stream, simacl_ctx *ctx, simacl_job_fn fn,
                                          void (*destroy)(void *), void *arg);
/* Sleep us, but return early with the device fault code if one is raised meanwhile. */
SIMACL_API aclError simacl_busy(int64_t us);
/* Block while a "stall" fault holds this run; returns the device fault code if raised. */
SIMACL_API aclError simacl_stall_wait(void);

#endif
