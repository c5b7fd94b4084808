/**
 * The one symbol table of libedgerun (shim/include/edgerun.h), in a neutral vocabulary that
 * ffi/deno.ts and ffi/bun.ts translate:
 *   "u32" / "i32"  32-bit integers
 *   "f64"          a double, a number both ways
 *   "i64"          a 64-bit signed integer, a bigint both ways (not used by libedgerun itself;
 *                  for other libraries opened with openRawLibrary, e.g. the test simulator)
 *   "handle"       an opaque native handle (er_pack*, er_model*, er_request*)
 *   "buffer"       caller-owned memory: a TypedArray passed straight through (or null)
 *   "void"         no result
 * A symbol marked `blocking` may wait for a long time: adapters never call it on the JS thread
 * synchronously (Deno: a nonblocking symbol; Bun: a worker thread).
 * @module
 */
export const symbols = {
  er_abi_version: { args: [], result: "u32" },
  er_clock_ms: { args: [], result: "f64" },
  er_last_error: {
    args: [
      "buffer", // char *buf
      "u32", // uint32_t cap
    ],
    result: "u32",
  },
  er_last_error_field: {
    args: [
      "u32", // uint32_t field
      "buffer", // char *buf
      "u32", // uint32_t cap
    ],
    result: "u32",
  },
  er_last_vendor_code: { args: [], result: "i32" },
  er_backend_count: { args: [], result: "u32" },
  er_backend_info: {
    args: [
      "u32", // uint32_t index
      "buffer", // char *json
      "u32", // uint32_t cap
      "buffer", // uint32_t *len
    ],
    result: "i32",
  },
  er_backend_set_search_path: {
    args: [
      "u32", // uint32_t backend
      "buffer", // const char *paths
    ],
    result: "i32",
  },
  er_backend_load: {
    args: [
      "u32", // uint32_t backend
      "buffer", // char *version
      "u32", // uint32_t cap
    ],
    result: "i32",
  },
  er_pack_open: {
    args: [
      "buffer", // const char *path
      "u32", // uint32_t backend
      "buffer", // const char *options
      "buffer", // er_pack **out
    ],
    result: "i32",
  },
  er_pack_count: {
    args: [
      "handle", // er_pack *pack
      "buffer", // uint32_t *out
    ],
    result: "i32",
  },
  er_pack_name: {
    args: [
      "handle", // er_pack *pack
      "u32", // uint32_t index
      "buffer", // char *buf
      "u32", // uint32_t cap
      "buffer", // uint32_t *len
    ],
    result: "i32",
  },
  er_pack_model: {
    args: [
      "handle", // er_pack *pack
      "u32", // uint32_t index
      "buffer", // er_model **out
    ],
    result: "i32",
  },
  er_pack_free: {
    args: [
      "handle", // er_pack *pack
    ],
    result: "void",
  },
  er_model_counts: {
    args: [
      "handle", // er_model *model
      "buffer", // uint32_t *counts
    ],
    result: "i32",
  },
  er_model_tensor: {
    args: [
      "handle", // er_model *model
      "u32", // uint32_t io
      "u32", // uint32_t index
      "buffer", // uint8_t *info
      "u32", // uint32_t cap
    ],
    result: "i32",
  },
  er_model_tensor_name: {
    args: [
      "handle", // er_model *model
      "u32", // uint32_t io
      "u32", // uint32_t index
      "buffer", // char *buf
      "u32", // uint32_t cap
    ],
    result: "i32",
  },
  er_model_tensor_quant: {
    args: [
      "handle", // er_model *model
      "u32", // uint32_t io
      "u32", // uint32_t index
      "buffer", // float *scales
      "buffer", // int32_t *zero_points
      "u32", // uint32_t cap
    ],
    result: "i32",
  },
  er_model_info: {
    args: [
      "handle", // er_model *model
      "buffer", // char *buf
      "u32", // uint32_t cap
      "buffer", // uint32_t *len
    ],
    result: "i32",
  },
  er_model_retain: {
    args: [
      "handle", // er_model *model
    ],
    result: "i32",
  },
  er_model_free: {
    args: [
      "handle", // er_model *model
    ],
    result: "void",
  },
  er_request_new: {
    args: [
      "handle", // er_model *model
      "buffer", // er_request **out
    ],
    result: "i32",
  },
  er_request_free: {
    args: [
      "handle", // er_request *request
    ],
    result: "void",
  },
  er_request_tensor: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t io
      "u32", // uint32_t index
      "buffer", // uint64_t *out
    ],
    result: "i32",
  },
  er_request_set_shape: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t index
      "buffer", // const int64_t *dims
      "u32", // uint32_t rank
    ],
    result: "i32",
  },
  er_request_write: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t index
      "buffer", // const void *src
      "u32", // uint32_t len
      "u32", // uint32_t mode
    ],
    result: "i32",
  },
  er_request_read: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t index
      "buffer", // void *dst
      "u32", // uint32_t len
      "u32", // uint32_t mode
    ],
    result: "i32",
  },
  er_request_run: {
    args: [
      "handle", // er_request *request
      "i32", // int32_t priority
      "i32", // int32_t custom_id
      "u32", // uint32_t core_mask
      "i32", // int32_t timeout_ms
    ],
    result: "i32",
  },
  er_request_submit: {
    args: [
      "handle", // er_request *request
      "i32", // int32_t priority
      "i32", // int32_t custom_id
      "u32", // uint32_t core_mask
      "i32", // int32_t timeout_ms
      "u32", // uint32_t tag
    ],
    result: "i32",
  },
  er_request_finish: {
    args: [
      "handle", // er_request *request
    ],
    result: "i32",
  },
  er_request_cancel: {
    args: [
      "handle", // er_request *request
    ],
    result: "i32",
  },
  er_request_busy: {
    args: [
      "handle", // er_request *request
    ],
    result: "i32",
  },
  er_request_usable: {
    args: [
      "handle", // er_request *request
    ],
    result: "i32",
  },
  er_request_last_run_us: {
    args: [
      "handle", // er_request *request
    ],
    result: "u32",
  },
  er_request_timing: {
    args: [
      "handle", // er_request *request
    ],
    result: "handle", // double *: two doubles, see edgerun.h
  },
  er_completion_queue_new: {
    args: [
      "buffer", // uint32_t *out
    ],
    result: "i32",
  },
  er_completion_queue_free: {
    args: [
      "u32", // uint32_t queue
    ],
    result: "i32",
  },
  er_request_set_queue: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t queue
    ],
    result: "i32",
  },
  er_completion_ready: {
    args: [
      "u32", // uint32_t queue
      "i32", // int32_t timeout_ms
    ],
    result: "i32",
    blocking: true,
  },
  er_completion_take: {
    args: [
      "u32", // uint32_t queue
      "buffer", // uint32_t *tags
      "u32", // uint32_t cap
    ],
    result: "i32",
  },
  er_completion_wake_on: {
    args: [
      "u32", // uint32_t queue
    ],
    result: "i32",
  },
  er_request_write_nv12: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t y_index
      "u32", // uint32_t uv_index
      "buffer", // const uint8_t *image
      "u32", // uint32_t len
      "u32", // uint32_t width
      "u32", // uint32_t height
      "u32", // uint32_t stride
      "u32", // uint32_t format
      "u32", // uint32_t flags
    ],
    result: "i32",
  },
  er_request_write_normalized: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t index
      "buffer", // const uint8_t *image
      "u32", // uint32_t len
      "u32", // uint32_t width
      "u32", // uint32_t height
      "u32", // uint32_t stride
      "u32", // uint32_t flags
      "buffer", // const float *mean_std
    ],
    result: "i32",
  },
  er_request_write_image: {
    args: [
      "handle", // er_request *request
      "u32", // uint32_t index
      "u32", // uint32_t uv_index
      "buffer", // const uint8_t *image
      "u32", // uint32_t len
      "buffer", // uint32_t *geometry
      "u32", // uint32_t flags
      "buffer", // const float *mean_std
    ],
    result: "i32",
  },
  er_set_worker_limit: {
    args: [
      "u32", // uint32_t limit
    ],
    result: "i32",
  },
} as const satisfies SymbolTable;

/** A neutral argument or result type. */
export type NeutralType = "u32" | "i32" | "i64" | "f64" | "handle" | "buffer" | "void";

/** The shape of a neutral symbol table. */
export type SymbolTable = Record<
  string,
  { readonly args: readonly NeutralType[]; readonly result: NeutralType; readonly blocking?: boolean }
>;
