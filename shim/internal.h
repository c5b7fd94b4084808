/* Shared between the shim core and its backends; never exported. */
#ifndef EDGERUN_INTERNAL_H
#define EDGERUN_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "edgerun.h"

#define ER_INTERNAL __attribute__((visibility("hidden")))

/* ---- errors ---------------------------------------------------------------------------- */

/* Sets the thread-local last error and returns code. backend/call may be NULL. */
ER_INTERNAL int32_t er_fail(int32_t code, const char *backend, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, with the vendor's own code and description. */
ER_INTERNAL int32_t er_fail_vendor(int32_t code, const char *backend, const char *call, int32_t vendor_code,
                                   const char *vendor_message, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
ER_INTERNAL void er_clear_error(void);

/* A copy of the calling thread's last error, to carry a worker thread's failure to the caller. */
typedef struct er_saved_error {
  char message[1024];
  char backend[32];
  char call[96];
  char vendor_message[512];
  int32_t vendor_code;
} er_saved_error;
ER_INTERNAL void er_error_save(er_saved_error *out);
ER_INTERNAL void er_error_restore(const er_saved_error *in);

/* Microseconds on the monotonic clock. */
ER_INTERNAL uint64_t er_now_us(void);
/* What is left of timeout_ms since start_us (at least 1), or timeout_ms itself when it is no limit (<= 0). */
ER_INTERNAL int32_t er_time_left(int32_t timeout_ms, uint64_t start_us);

/* ---- options ----------------------------------------------------------------------------- */

/* Finds key in "k=v;k=v" and parses an integer. Returns 1 found, 0 absent, <0 malformed. */
ER_INTERNAL int32_t er_option_int(const char *options, const char *key, int64_t *out);

/* ---- tensors ----------------------------------------------------------------------------- */

typedef struct er_tensor_desc {
  char *name;                  /* owned, malloc'd */
  int32_t dtype;               /* ER_DTYPE_* */
  int32_t vendor_type;         /* raw vendor number */
  uint32_t rank;
  uint32_t flags;              /* ER_TENSOR_* */
  int64_t shape[ER_MAX_DIMS];  /* -1 dynamic */
  int64_t strides[ER_MAX_DIMS];/* bytes; -1 dynamic */
  uint64_t byte_size;          /* per-request allocation; 0 if dynamic */
  int32_t quant_type;          /* 0 none, 1 scale */
  int32_t quant_axis;          /* -1 per tensor */
  uint32_t scale_count;
  float *scales;               /* owned */
  uint32_t zero_point_count;
  int32_t *zero_points;        /* owned */
} er_tensor_desc;

/* The live buffer of one tensor of a request. */
typedef struct er_tensor_buf {
  void *data;
  uint64_t bytes;
  uint32_t rank;
  int64_t shape[ER_MAX_DIMS];
  int64_t strides[ER_MAX_DIMS];
} er_tensor_buf;

ER_INTERNAL uint32_t er_dtype_size(int32_t dtype);
ER_INTERNAL void er_tensor_desc_clear(er_tensor_desc *d);
/* Dense byte strides of shape for an element size; returns the dense byte count (0 if a dim < 0). */
ER_INTERNAL uint64_t er_dense_strides(const int64_t *shape, uint32_t rank, uint32_t elem, int64_t *strides);

/*
 * Copies between a dense buffer and a strided one (dst or src padded by strides), or
 * converts float32 <-> quantized element types. Defined in tensor.c, shared by all backends.
 */
/* Checks that every strided element of buf lies inside it (elem bytes each, no wrap on huge strides). */
ER_INTERNAL int32_t er_check_layout(const er_tensor_desc *desc, const er_tensor_buf *buf, uint32_t elem);
/* The scale and zero point of one index along the quantization axis (axis_index < 0: per tensor). */
ER_INTERNAL void er_quant_params(const er_tensor_desc *d, int64_t axis_index, float *scale, int32_t *zp);
ER_INTERNAL int32_t er_copy_in(const er_tensor_desc *desc, const er_tensor_buf *buf, const void *src, uint64_t len,
                               uint32_t mode);
ER_INTERNAL int32_t er_copy_out(const er_tensor_desc *desc, const er_tensor_buf *buf, void *dst, uint64_t len,
                                uint32_t mode);

/* ---- backends ---------------------------------------------------------------------------- */

typedef struct er_sched {
  int32_t priority;    /* 0..255 */
  int32_t custom_id;
  uint32_t core_mask;  /* bit i = BPU core i; 0 = any */
  int32_t timeout_ms;  /* <= 0 forever */
  /* Submitted runs: set by er_request_cancel (reset at each submit); NULL for sync runs. A backend
     that can stop a run checks it once it is ready to start, so a cancel that came first is kept. */
  const atomic_int *cancel;
  /* Submitted runs: a backend may call done(done_ctx) once, from any thread, when the device has
     finished the run and the thread in request_run is awake to collect it (core.c then hands the
     completion out early). NULL for sync runs. */
  void (*done)(void *ctx);
  void *done_ctx;
} er_sched;

/*
 * What core.c needs from a backend. States are opaque to core.c. A backend fills the tensor
 * descriptions of a model at model_open; the request's er_tensor_buf arrays (allocated by
 * core.c, inputs then outputs) are filled by request_new and kept current by the backend.
 */
typedef struct er_backend_ops {
  const char *name;
  /* dlopen the vendor runtime once; version gets a static string. */
  int32_t (*load)(const char **version);
  int32_t (*pack_open)(const char *path, const char *options, void **pack, uint32_t *model_count);
  const char *(*pack_name)(void *pack, uint32_t index);
  void (*pack_close)(void *pack);
  /* Fills the counts and allocates the description arrays (calloc'd; core.c frees them). */
  int32_t (*model_open)(void *pack, uint32_t index, void **model, uint32_t *n_in, er_tensor_desc **inputs,
                        uint32_t *n_out, er_tensor_desc **outputs);
  void (*model_close)(void *model);
  /* Appends model facts as JSON members ("key":value, comma separated, no braces). */
  int32_t (*model_info)(void *model, char *buf, size_t cap, size_t *len);
  int32_t (*request_new)(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **request);
  void (*request_free)(void *request);
  /* Optional: 1 when request_free would wait for the device (a task that outlived its run's
     timeout); core.c then frees the request on a worker thread so the caller never blocks. */
  int (*request_pending)(void *request);
  /* Optional: dynamic input shapes. Updates inputs[index] (and outputs if known). */
  int32_t (*request_set_shape)(void *request, uint32_t index, const int64_t *dims, uint32_t rank);
  int32_t (*request_run)(void *request, const er_sched *sched);
  /* Optional: starts a submitted run on the caller's thread if that cannot block; 1 when it did
     (the request_run that follows on a worker then collects it), 0 when request_run does it all,
     or an error status (set as the last error) that is the run's result: request_run is not called. */
  int32_t (*request_start)(void *request, const er_sched *sched);
  /* Optional: asks a running request_run (on another thread) to stop early. */
  int32_t (*request_cancel)(void *request);
  /* Optional: 0 when the request can never run again (its owner should drop it); absent = 1. */
  int (*request_usable)(void *request);
} er_backend_ops;

/* Run options a backend acts on (er_backend_desc.honours); it ignores the others. */
#define ER_HONOURS_PRIORITY 1u  /* priority, and with it preemption */
#define ER_HONOURS_CUSTOM_ID 2u /* tie-break among equal priorities */
#define ER_HONOURS_CORES 4u     /* core mask */
#define ER_HONOURS_TIMEOUT 8u   /* timeout_ms stops or abandons a run */

/*
 * One row of the backend table (shim/backends.c): what core.c and the TypeScript side need to
 * know about a backend besides its ops. Its name is ops->name (one spelling). er_backend_info
 * reports a row as JSON; nothing else in the shim or in TypeScript lists backends.
 */
typedef struct er_backend_desc {
  uint32_t id;                    /* er_pack_open's backend number: stable, never reused, not 0 */
  const char *const *extensions;  /* NULL-terminated, with the dot; matched at the end of the path */
  /* Optional: 1 when a file's first bytes (n <= ER_PROBE_BYTES) are this backend's format. Used
     only when no extension matched. */
  int (*probe)(const uint8_t *head, size_t n);
  uint32_t task_limit;            /* runs in flight per process (the vendor's task cap, or ours) */
  uint32_t default_requests;      /* buffer sets per model for runAsync unless maxRequests says */
  uint32_t honours;               /* ER_HONOURS_* */
  const char *search_path;        /* what the entries of er_backend_set_search_path are, for docs */
  const er_backend_ops *ops;
} er_backend_desc;

#define ER_PROBE_BYTES 16

ER_INTERNAL extern const er_backend_desc er_backends[];
ER_INTERNAL extern const uint32_t er_backend_rows;

/* The row of a backend id, or NULL. */
ER_INTERNAL const er_backend_desc *er_backend_find(uint32_t id);

/* The extra search path set with er_backend_set_search_path (a static copy; "" if none). */
ER_INTERNAL const char *er_backend_search_path(uint32_t backend);

/* Resolves a vendor library: tries env dir, then names (system search), then fallback dirs.
 * Appends every path tried to tried (for the error message). Returns the dlopen handle or NULL. */
ER_INTERNAL void *er_dlopen_first(const char *env_var, const char *const *names, const char *const *dirs, int flags,
                                  char *tried, size_t tried_cap);

/* Opens file from, in order: $env_var's directory, the ':'-separated directories of search_path
 * (a backend's er_backend_search_path), the loader's own search (the bare name), then dirs
 * (NULL-terminated). Appends every path tried. */
ER_INTERNAL void *er_dlopen_dirs(const char *env_var, const char *search_path, const char *file,
                                 const char *const *dirs, int flags, char *tried, size_t tried_cap);
/* The file a dlopen handle came from, for messages. */
ER_INTERNAL const char *er_lib_path(void *lib);

/* Worker threads (workers.c): runs fn(arg) on a shim thread; posts tags to a completion queue. */
ER_INTERNAL int32_t er_pool_submit(void (*fn)(void *), void *arg);
/* Queues fn(arg) with its thread made sure of, but wakes no thread until er_pool_start (a worker
   may still take it sooner, woken for another job: the job must wait for what it needs). */
ER_INTERNAL int32_t er_pool_submit_later(void (*fn)(void *), void *arg);
ER_INTERNAL void er_pool_start(void);
/* Keeps libedgerun mapped until the process ends (for threads and exit handlers of its own). */
ER_INTERNAL void er_pin_library(void);
ER_INTERNAL void er_completion_post(uint32_t queue, uint32_t tag);

/*
 * An alarm: fire(arg) runs once on the shim's timer thread when timeout_ms have passed since
 * er_alarm_arm, unless er_alarm_disarm came first. It must be quick (it runs under the timer's
 * lock). After er_alarm_disarm returns, fire is neither running nor going to run; it returns 1 if
 * the alarm fired. The caller owns the struct and keeps it alive while armed.
 */
typedef struct er_alarm {
  void (*fire)(void *arg);
  void *arg;
  uint64_t deadline_us; /* the fields below belong to workers.c */
  struct er_alarm *next;
  int armed, fired;
} er_alarm;
ER_INTERNAL int32_t er_alarm_arm(er_alarm *alarm, uint32_t timeout_ms);
ER_INTERNAL int er_alarm_disarm(er_alarm *alarm);

/* Small JSON writer helpers for model_info. */
ER_INTERNAL void er_json_str(char *buf, size_t cap, size_t *len, const char *key, const char *value, int comma);
ER_INTERNAL void er_json_int(char *buf, size_t cap, size_t *len, const char *key, int64_t value, int comma);

/* The input of a request (fails with ER_ERR_STATE while a submitted run uses it). Defined in core.c. */
ER_INTERNAL int32_t er_request_input(er_request *request, uint32_t index, const er_tensor_desc **desc,
                                     er_tensor_buf **buf);

/* ---- images (image.c): pure kernels, no request, for tests and fuzzers ---- */

/*
 * Packed RGB (bgr = 0) or BGR u8 rows -> NV12 Y and interleaved UV rows, BT.601 full or video
 * range. width and height even and > 0; src rows hold width*3 bytes; writes width bytes of each
 * of the height Y rows and height/2 UV rows, nothing else.
 */
ER_INTERNAL void er_rgb_to_nv12(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t height, int bgr,
                                int video, uint8_t *y, size_t y_stride, uint8_t *uv, size_t uv_stride);

/* Per output channel c: value = src[src_channel[c]] * mul[c] + add[c], then quantized if dtype is (u)int8. */
typedef struct er_norm_params {
  float mul[3];
  float add[3];
  uint8_t src_channel[3];
  int32_t dtype;        /* ER_DTYPE_FLOAT32, FLOAT16, INT8 or UINT8 */
  float scale[3];       /* (u)int8: quantization scale per channel (> 0) */
  int32_t zero_point[3];
} er_norm_params;

/*
 * 3-channel u8 rows -> dst. NCHW (nhwc = 0): element (c, y, x) at c*channel_stride + y*row_stride
 * + x*elem. NHWC: (y, x, c) at y*row_stride + (3x + c)*elem, with channel_stride = elem.
 */
ER_INTERNAL void er_normalize_u8(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t height,
                                 const er_norm_params *p, uint8_t *dst, size_t channel_stride, size_t row_stride,
                                 int nhwc);

#endif
