/*
 * edgerun.h: the flat C ABI of libedgerun.
 *
 * Rules every function follows:
 *   - returns int32_t status (ER_OK = 0, negative ER_ERR_*) unless it returns a plain value;
 *   - results go to caller-provided out-parameters and caller-owned buffers;
 *   - on failure a thread-local last error holds the detail (er_last_error*);
 *   - handles are opaque; every *_free accepts NULL;
 *   - only integers, pointers and caller-owned buffers cross the boundary.
 * Lengths are uint32_t where they can be: 64-bit integers are slow in Deno FFI.
 */
#ifndef EDGERUN_H
#define EDGERUN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ER_API __attribute__((visibility("default")))

/* Bumped on any change of a signature or of the tensor-info layout. */
#define ER_ABI_VERSION 3u

#define ER_MAX_DIMS 10

/* Status codes. */
#define ER_OK 0
#define ER_ERR_INVALID_ARGUMENT (-1)
#define ER_ERR_LIBRARY_NOT_FOUND (-2) /* vendor runtime could not be loaded */
#define ER_ERR_UNSUPPORTED (-3)       /* unknown vendor version, layout, dtype */
#define ER_ERR_FILE (-4)              /* model file missing or unreadable */
#define ER_ERR_INVALID_MODEL (-5)     /* model file rejected by the runtime */
#define ER_ERR_BACKEND (-6)           /* any other vendor failure */
#define ER_ERR_OUT_OF_MEMORY (-7)
#define ER_ERR_STATE (-8)             /* call not valid in the current state */
#define ER_ERR_TIMEOUT (-9)
#define ER_ERR_BUSY (-10)             /* vendor task limit reached */
#define ER_ERR_CANCELLED (-11)
#define ER_ERR_NOT_FOUND (-12)        /* named model or tensor not present */

/* Backends: AUTO picks one by file (er_pack_open). The ids of all backends, these two included,
   are in the shim's table (er_backend_info); the defines are kept for C callers. */
#define ER_BACKEND_AUTO 0u
#define ER_BACKEND_ORT 1u
#define ER_BACKEND_HBDNN 2u
#define ER_BACKEND_ACL 3u

/* Element types. */
#define ER_DTYPE_UNKNOWN 0
#define ER_DTYPE_FLOAT32 1
#define ER_DTYPE_FLOAT64 2
#define ER_DTYPE_FLOAT16 3
#define ER_DTYPE_INT8 4
#define ER_DTYPE_UINT8 5
#define ER_DTYPE_INT16 6
#define ER_DTYPE_UINT16 7
#define ER_DTYPE_INT32 8
#define ER_DTYPE_UINT32 9
#define ER_DTYPE_INT64 10
#define ER_DTYPE_UINT64 11
#define ER_DTYPE_BOOL 12

/* Tensor directions. */
#define ER_INPUT 0u
#define ER_OUTPUT 1u

/* Tensor flags. */
#define ER_TENSOR_DYNAMIC 1u   /* some dimension is unknown until run time */
#define ER_TENSOR_QUANTIZED 2u /* scale/zero-point apply */
#define ER_TENSOR_PADDED 4u    /* strides are not the dense strides */
/* The model gives no shape at all: rank reads 0, and er_request_set_shape takes any rank
   1..ER_MAX_DIMS (an output takes the rank each run gives it). Always set together with
   ER_TENSOR_DYNAMIC. ort only, with ONNX Runtime 1.24 or newer: older ones report such a tensor
   as rank 0 (a scalar) without the flag. */
#define ER_TENSOR_UNKNOWN_RANK 8u

/*
 * Tensor info: a fixed little-endian record of ER_TENSOR_INFO_SIZE bytes.
 *   @0   u32 record size (= ER_TENSOR_INFO_SIZE)
 *   @4   i32 dtype (ER_DTYPE_*)
 *   @8   u32 rank
 *   @12  u32 flags (ER_TENSOR_*)
 *   @16  i64 shape[10]     (-1 = dynamic)
 *   @96  i64 strides[10]   (bytes; -1 = dynamic)
 *   @176 u64 byte size     (bytes allocated per request; 0 if dynamic)
 *   @184 i32 quantization  (0 none, 1 scale)
 *   @188 i32 quant axis    (-1 per-tensor)
 *   @192 u32 scale count
 *   @196 u32 zero-point count
 *   @200 i32 vendor type   (the vendor's raw type number)
 *   @204 u32 name length in bytes (without NUL)
 */
#define ER_TENSOR_INFO_SIZE 208u
/* The offsets above, by name (core.c writes and ffi/wire.ts reads the record with these). */
#define ER_TI_RECORD_SIZE 0
#define ER_TI_DTYPE 4
#define ER_TI_RANK 8
#define ER_TI_FLAGS 12
#define ER_TI_SHAPE 16
#define ER_TI_STRIDES 96
#define ER_TI_BYTE_SIZE 176
#define ER_TI_QUANT_TYPE 184
#define ER_TI_QUANT_AXIS 188
#define ER_TI_SCALE_COUNT 192
#define ER_TI_ZERO_POINT_COUNT 196
#define ER_TI_VENDOR_TYPE 200
#define ER_TI_NAME_LENGTH 204

/*
 * Live tensor of a request: ER_REQ_TENSOR_WORDS u64 words.
 *   [0] data address  [1] byte length  [2] rank  [3..12] shape  [13..22] strides (bytes)
 */
#define ER_REQ_TENSOR_WORDS 23u
/* The word indexes above, by name. */
#define ER_RT_DATA 0
#define ER_RT_BYTES 1
#define ER_RT_RANK 2
#define ER_RT_SHAPE 3
#define ER_RT_STRIDES 13

/* Modes of er_request_write / er_request_read. */
#define ER_COPY_DENSE 0u    /* dense bytes of the tensor's dtype, laid out by stride */
#define ER_COPY_FLOAT32 1u  /* float32 values, quantized / dequantized on the way */

typedef struct er_pack er_pack;
typedef struct er_model er_model;
typedef struct er_request er_request;

ER_API uint32_t er_abi_version(void);

/* Milliseconds of the monotonic clock the shim times runs with (one FFI call: cheaper than a
   runtime's performance.now() on Deno). */
ER_API double er_clock_ms(void);

/* Last error of the calling thread. Each returns the full length; copies at most cap-1 bytes + NUL. */
ER_API uint32_t er_last_error(char *buf, uint32_t cap);
#define ER_FIELD_BACKEND 0u
#define ER_FIELD_CALL 1u
#define ER_FIELD_VENDOR_MESSAGE 2u
ER_API uint32_t er_last_error_field(uint32_t field, char *buf, uint32_t cap);
ER_API int32_t er_last_vendor_code(void);

/*
 * The backends this library was built with, from its one table (shim/backends.c), indexes
 * 0..er_backend_count()-1. er_backend_info writes one row as a JSON object into json (at most
 * cap-1 bytes + NUL; *len gets the full length), ER_ERR_NOT_FOUND past the end:
 *   {"id":1,"name":"ort","extensions":[".onnx",".ort"],"probe":true,"taskLimit":64,
 *    "defaultRequests":4,"honours":["timeoutMs"],"searchPath":"..."}
 *   id               er_pack_open's backend number (stable; 0 is AUTO)
 *   name             the backend's name (er_last_error_field ER_FIELD_BACKEND, model info "backend")
 *   extensions       file name endings AUTO sends to it, tried in table order
 *   probe            whether AUTO also recognises its files by their first bytes (no extension)
 *   taskLimit        runs in flight per process that the backend takes; callers queue beyond it
 *   defaultRequests  buffer sets per model an async caller should use unless told otherwise
 *   honours          run options it acts on, of "priority", "customId", "cores", "timeoutMs";
 *                    it ignores the others (er_request_run still accepts them)
 *   searchPath       what the entries of er_backend_set_search_path are for it
 */
ER_API uint32_t er_backend_count(void);
ER_API int32_t er_backend_info(uint32_t index, char *json, uint32_t cap, uint32_t *len);

/*
 * Extra places to look for a backend's vendor runtime, ':'-separated, tried after the backend's
 * environment variable and before the system search (ort: files; hbdnn: directories).
 */
ER_API int32_t er_backend_set_search_path(uint32_t backend, const char *paths);

/* Loads the vendor runtime of a backend now; ER_OK if usable. version gets its version string. */
ER_API int32_t er_backend_load(uint32_t backend, char *version, uint32_t cap);

/*
 * Opens a model file. A file may pack several models (.hbm); er_pack_model opens one.
 * options: NUL-terminated "key=value;key=value" (may be NULL). Keys:
 *   intra_op_threads, inter_op_threads, graph_optimization (0,1,2,99)  [ort]
 *   device (Ascend device id, default 0)                                [acl]
 */
ER_API int32_t er_pack_open(const char *path, uint32_t backend, const char *options, er_pack **out);
ER_API int32_t er_pack_count(er_pack *pack, uint32_t *out);
ER_API int32_t er_pack_name(er_pack *pack, uint32_t index, char *buf, uint32_t cap, uint32_t *len);
ER_API int32_t er_pack_model(er_pack *pack, uint32_t index, er_model **out);
/* Models keep their pack alive: freeing the pack after opening models is safe. */
ER_API void er_pack_free(er_pack *pack);

/* counts[0] = inputs, counts[1] = outputs. */
ER_API int32_t er_model_counts(er_model *model, uint32_t *counts);
ER_API int32_t er_model_tensor(er_model *model, uint32_t io, uint32_t index, uint8_t *info, uint32_t cap);
ER_API int32_t er_model_tensor_name(er_model *model, uint32_t io, uint32_t index, char *buf, uint32_t cap);
/* Copies up to cap scales and zero points (either pointer may be NULL). */
ER_API int32_t er_model_tensor_quant(er_model *model, uint32_t io, uint32_t index, float *scales,
                                     int32_t *zero_points, uint32_t cap);
/* Model-level facts as a JSON object: backend, versions, device. *len gets the full length. */
ER_API int32_t er_model_info(er_model *model, char *buf, uint32_t cap, uint32_t *len);
/* Adds a reference to a model (for another thread's wrapper); each reference is freed with er_model_free. */
ER_API int32_t er_model_retain(er_model *model);
/* Requests keep their model alive: the model is released with its last request. */
ER_API void er_model_free(er_model *model);

/* A request owns one set of input and output buffers, bound once. One run at a time. */
ER_API int32_t er_request_new(er_model *model, er_request **out);
ER_API void er_request_free(er_request *request);
ER_API int32_t er_request_tensor(er_request *request, uint32_t io, uint32_t index, uint64_t *out);
/* Sets the shape of an input with dynamic dimensions; reallocates and rebinds only on change. */
ER_API int32_t er_request_set_shape(er_request *request, uint32_t index, const int64_t *dims, uint32_t rank);
/* Writes an input from src (len bytes) or reads an output into dst, honouring strides. */
ER_API int32_t er_request_write(er_request *request, uint32_t index, const void *src, uint32_t len, uint32_t mode);
ER_API int32_t er_request_read(er_request *request, uint32_t index, void *dst, uint32_t len, uint32_t mode);
/*
 * Runs synchronously. priority 0..255, custom_id tie-break (smaller first), core_mask BPU cores
 * (bit i = core i, 0 = any), timeout_ms <= 0 waits forever. Backends ignore what they lack.
 */
ER_API int32_t er_request_run(er_request *request, int32_t priority, int32_t custom_id, uint32_t core_mask,
                              int32_t timeout_ms);

/*
 * Asynchronous runs. er_request_submit queues the run on the shim's worker threads and returns at
 * once; when it completes, tag is posted to the request's completion queue. The caller then
 * calls er_request_finish, which returns the run's status (and sets the last error) and makes the
 * request usable again. No native thread ever calls back into the caller.
 */
ER_API int32_t er_request_submit(er_request *request, int32_t priority, int32_t custom_id, uint32_t core_mask,
                                 int32_t timeout_ms, uint32_t tag);
ER_API int32_t er_request_finish(er_request *request);
/* Asks a submitted run to stop early: ort stops at the next node boundary; hbdnn releases its task
 * on a shim thread (a task the device has not started is cancelled). ER_ERR_UNSUPPORTED for a
 * backend that cannot. */
ER_API int32_t er_request_cancel(er_request *request);
/* 1 while a submitted run is unfinished (queued, running, or done but not yet finished). */
ER_API int32_t er_request_busy(er_request *request);
/* 0 when the request can never run again (hbdnn: a task whose release failed may still use its
 * buffers): free it (the shim keeps those buffers) and make another. 1 otherwise. */
ER_API int32_t er_request_usable(er_request *request);
/*
 * Completion queues. Queue 0 is the process-wide default; er_completion_queue_new makes another
 * (ids 1..4095), so that each thread with its own event loop gets exactly the completions of the
 * runs it submitted. Freeing a queue wakes its waiters; its id is handed out again once no thread
 * waits in it; tags posted to a freed queue are dropped. er_request_set_queue picks where a request's completions go (while it is idle).
 */
ER_API int32_t er_completion_queue_new(uint32_t *out);
ER_API int32_t er_completion_queue_free(uint32_t queue);
ER_API int32_t er_request_set_queue(er_request *request, uint32_t queue);
/*
 * Waiting is split in two so that a waiting thread never holds caller memory (a JS realm may end
 * while its waiter sleeps): er_completion_ready blocks until a completion or a wake is ready on
 * the queue (returns 1) or timeout_ms passes (0; < 0: no limit); er_completion_take then copies
 * up to cap ready tags and returns how many (0 after a wake).
 */
ER_API int32_t er_completion_ready(uint32_t queue, int32_t timeout_ms);
ER_API int32_t er_completion_take(uint32_t queue, uint32_t *tags, uint32_t cap);
/* Makes one pending or future er_completion_ready of the queue return at once. */
ER_API int32_t er_completion_wake_on(uint32_t queue);
/* Ready and take on queue 0, in one call. */
ER_API int32_t er_completion_wait(uint32_t *tags, uint32_t cap, int32_t timeout_ms);
ER_API void er_completion_wake(void);
/* Microseconds the native side spent in the request's last run (device time on NPU backends). */
ER_API uint32_t er_request_last_run_us(er_request *request);
/*
 * The request's timing record, ER_TIMING_WORDS doubles the shim rewrites at every run, valid until
 * er_request_free (a binding maps it once and reads a run's times without a call). Times are on
 * er_clock_ms's clock. [0] the native milliseconds of the last run (er_request_last_run_us),
 * [1] when it ended. Submitted runs also stamp each hop: [2] er_request_submit was called,
 * [3] the run started (on the caller's thread, or when a worker thread took it), [4] the shim
 * learned it was over (a device's done-callback, else the end of the backend call), [5] its tag
 * was posted. With er_completion_woke_ms they say where the time between submit and collect went.
 */
#define ER_TIMING_WORDS 6
#define ER_TIMING_SUBMITTED 2
#define ER_TIMING_STARTED 3
#define ER_TIMING_DONE 4
#define ER_TIMING_POSTED 5
ER_API double *er_request_timing(er_request *request);
/*
 * Diagnostics for leak tests: counts[0] live packs, [1] models, [2] requests, [3] submitted runs
 * not yet done on a worker thread. Not part of the versioned ABI (ffi/ does not bind it).
 */
ER_API void er_debug_live_counts(int32_t *counts);
/* Diagnostics for benchmarks: when a thread last woke in er_completion_ready of a queue with a
   tag ready (er_clock_ms's clock; 0 never). Not bound by ffi/. */
ER_API double er_completion_woke_ms(uint32_t queue);
/* Diagnostics for tests: threads asleep in er_completion_ready of a queue. Not bound by ffi/. */
ER_API int32_t er_debug_queue_waiters(uint32_t queue);
/* Worker threads: the most that run at once (default 64, at most 64; created on demand). */
ER_API int32_t er_set_worker_limit(uint32_t limit);

/*
 * Camera frames and normalization (shim/image.c). The image is packed 8-bit RGB or BGR, 3 bytes
 * a pixel, rows `stride` bytes apart (0 = width*3), `len` bytes in all. Both functions write
 * straight into the request's input memory and leave any row padding untouched.
 */
#define ER_IMAGE_RGB 0u
#define ER_IMAGE_BGR 1u
/* NV12 range (Horizon's input_space_and_range): 0 = full ("regular", the default), 1 = video. */
#define ER_NV12_VIDEO_RANGE 1u
/*
 * RGB/BGR -> NV12 (BT.601) into two uint8 inputs: Y [1,H,W,1] and UV [1,H/2,W/2,2], pixels packed,
 * rows at the tensors' (padded) strides. Chroma is the mean of each 2x2 block; H and W must be even.
 */
ER_API int32_t er_request_write_nv12(er_request *request, uint32_t y_index, uint32_t uv_index, const uint8_t *image,
                                     uint32_t len, uint32_t width, uint32_t height, uint32_t stride, uint32_t format,
                                     uint32_t flags);
/* Layouts of er_request_write_normalized (flags & 3), and its channel swap flag. */
#define ER_LAYOUT_AUTO 0u /* from the shape: [1,3,H,W] is NCHW, [1,H,W,3] NHWC */
#define ER_LAYOUT_NCHW 1u
#define ER_LAYOUT_NHWC 2u
#define ER_NORM_SWAP_CHANNELS 4u /* reverse the image's channel order (RGB <-> BGR) */
/*
 * A u8 image -> (x - mean[c]) / std[c] into a float32, float16 or quantized int8/uint8 input
 * ([1,3,H,W] or [1,H,W,3], batch optional). mean_std: 6 floats, mean[3] then std[3], in the
 * input's channel order. Computed as x * (1/std) + (-mean/std) in float32; quantized inputs get
 * round-half-even(v / scale + zero_point), clamped (per tensor or per channel).
 */
ER_API int32_t er_request_write_normalized(er_request *request, uint32_t index, const uint8_t *image, uint32_t len,
                                           uint32_t width, uint32_t height, uint32_t stride, uint32_t flags,
                                           const float *mean_std);

/*
 * Frames of any common camera or decoder format -> a region of an input, in one call
 * (shim/preprocess.c, shim/image.c): crop, resize, letterbox, rotate 180°, then normalize
 * (float32/float16/int8/uint8, NCHW/NHWC) or convert to NV12, at a batch index; everything outside
 * the region is left as it was. Source pixel formats:
 */
#define ER_PIX_RGB 0u
#define ER_PIX_BGR 1u
#define ER_PIX_RGBA 2u
#define ER_PIX_BGRA 3u
#define ER_PIX_GRAY 4u
#define ER_PIX_NV12 5u /* Y rows, then the interleaved UV rows at the same stride (width, height even) */
#define ER_PIX_YUYV 6u /* Y0 U Y1 V, 2 bytes a pixel (width even) */
/* Resize kernels (flags >> 8 & 3): auto = area averaging on an axis shrunk 2x or more, else bilinear. */
#define ER_RESIZE_AUTO 0u
#define ER_RESIZE_BILINEAR 1u /* half-pixel centres, as OpenCV's INTER_LINEAR */
#define ER_RESIZE_AREA 2u
/* Flags of er_request_write_image, besides the layout (flags & 3) and ER_NORM_SWAP_CHANNELS. */
#define ER_IMG_NV12_VIDEO 8u    /* NV12 destination: video range */
#define ER_IMG_SOURCE_VIDEO 16u /* NV12/YUYV source: video range */
#define ER_IMG_LETTERBOX 32u    /* keep the aspect ratio, centre, pad the rest of the region */
#define ER_IMG_ROTATE_180 64u
#define ER_IMG_RESIZE_SHIFT 8u
/* geometry: words of er_request_write_image (uint32 each). A zero width or height means "all". */
#define ER_GEO_FORMAT 0  /* ER_PIX_*, then width, height, stride (0 = packed) */
#define ER_GEO_CROP 4    /* x, y, w, h of the source */
#define ER_GEO_REGION 8  /* x, y, w, h of the input's H x W plane written */
#define ER_GEO_PLACED 12 /* out: x, y, w, h where the image went (the region, or its letterbox) */
#define ER_GEO_BATCH 16
#define ER_GEO_PAD 17 /* pad pixel: c0 | c1 << 8 | c2 << 16, in the source's channel order */
#define ER_GEO_WORDS 18
#define ER_NO_INPUT 0xffffffffu
/*
 * Writes image (len bytes) into input `index`, or, when uv_index is not ER_NO_INPUT, as NV12 into
 * the Y input `index` ([N,H,W,1]) and the UV input uv_index ([N,H/2,W/2,2]; region even). Tensor
 * inputs: [N,3,H,W] / [N,H,W,3] or without N; float32/float16, or int8/uint8 (quantized with the
 * input's parameters if it has them, else as values). mean_std as er_request_write_normalized
 * (NULL: mean 0, std 1); pixels are first resized as 8-bit values, then normalized or converted.
 */
ER_API int32_t er_request_write_image(er_request *request, uint32_t index, uint32_t uv_index, const uint8_t *image,
                                      uint32_t len, uint32_t *geometry, uint32_t flags, const float *mean_std);

#ifdef __cplusplus
}
#endif
#endif
