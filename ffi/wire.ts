/**
 * The numbers of the C ABI (shim/include/edgerun.h), in one place: every `#define ER_X` that
 * TypeScript uses is `ER.X` here, with the header's value. tests/wire.test.ts parses the header and
 * checks both ways (each entry exists there with this value; each header constant is here or
 * listed in the test as not needed by TypeScript). Backend ids are not here: they come from the
 * shim's table at load (ffi/backends.ts), except AUTO.
 * @module
 */

/** The constants of edgerun.h, named as there without the `ER_` prefix. */
export const ER = {
  ABI_VERSION: 3,
  MAX_DIMS: 10,

  // Status codes.
  OK: 0,
  ERR_INVALID_ARGUMENT: -1,
  ERR_LIBRARY_NOT_FOUND: -2,
  ERR_UNSUPPORTED: -3,
  ERR_FILE: -4,
  ERR_INVALID_MODEL: -5,
  ERR_BACKEND: -6,
  ERR_OUT_OF_MEMORY: -7,
  ERR_STATE: -8,
  ERR_TIMEOUT: -9,
  ERR_BUSY: -10,
  ERR_CANCELLED: -11,
  ERR_NOT_FOUND: -12,

  BACKEND_AUTO: 0,

  // Element types.
  DTYPE_UNKNOWN: 0,
  DTYPE_FLOAT32: 1,
  DTYPE_FLOAT64: 2,
  DTYPE_FLOAT16: 3,
  DTYPE_INT8: 4,
  DTYPE_UINT8: 5,
  DTYPE_INT16: 6,
  DTYPE_UINT16: 7,
  DTYPE_INT32: 8,
  DTYPE_UINT32: 9,
  DTYPE_INT64: 10,
  DTYPE_UINT64: 11,
  DTYPE_BOOL: 12,

  // Tensor directions and flags.
  INPUT: 0,
  OUTPUT: 1,
  TENSOR_DYNAMIC: 1,
  TENSOR_QUANTIZED: 2,
  TENSOR_PADDED: 4,
  TENSOR_UNKNOWN_RANK: 8,

  // The tensor info record (er_model_tensor): its size and its fields' byte offsets.
  TENSOR_INFO_SIZE: 208,
  TI_RECORD_SIZE: 0,
  TI_DTYPE: 4,
  TI_RANK: 8,
  TI_FLAGS: 12,
  TI_SHAPE: 16,
  TI_STRIDES: 96,
  TI_BYTE_SIZE: 176,
  TI_QUANT_TYPE: 184,
  TI_QUANT_AXIS: 188,
  TI_SCALE_COUNT: 192,
  TI_ZERO_POINT_COUNT: 196,
  TI_VENDOR_TYPE: 200,
  TI_NAME_LENGTH: 204,

  // A request's live tensor (er_request_tensor): u64 words and their indexes.
  REQ_TENSOR_WORDS: 23,
  RT_DATA: 0,
  RT_BYTES: 1,
  RT_RANK: 2,
  RT_SHAPE: 3,
  RT_STRIDES: 13,

  // A request's timing record (er_request_timing): its doubles and the hop stamps of a submitted run.
  TIMING_WORDS: 6,
  TIMING_SUBMITTED: 2,
  TIMING_STARTED: 3,
  TIMING_DONE: 4,
  TIMING_POSTED: 5,

  // Copy modes of er_request_write / er_request_read.
  COPY_DENSE: 0,
  COPY_FLOAT32: 1,

  // Fields of er_last_error_field.
  FIELD_BACKEND: 0,
  FIELD_CALL: 1,
  FIELD_VENDOR_MESSAGE: 2,

  // Camera frames and normalization (shim/image.c, shim/preprocess.c).
  IMAGE_RGB: 0,
  IMAGE_BGR: 1,
  NV12_VIDEO_RANGE: 1,
  LAYOUT_AUTO: 0,
  LAYOUT_NCHW: 1,
  LAYOUT_NHWC: 2,
  NORM_SWAP_CHANNELS: 4,
  PIX_RGB: 0,
  PIX_BGR: 1,
  PIX_RGBA: 2,
  PIX_BGRA: 3,
  PIX_GRAY: 4,
  PIX_NV12: 5,
  PIX_YUYV: 6,
  RESIZE_AUTO: 0,
  RESIZE_BILINEAR: 1,
  RESIZE_AREA: 2,
  IMG_NV12_VIDEO: 8,
  IMG_SOURCE_VIDEO: 16,
  IMG_LETTERBOX: 32,
  IMG_ROTATE_180: 64,
  IMG_RESIZE_SHIFT: 8,
  GEO_FORMAT: 0,
  GEO_CROP: 4,
  GEO_REGION: 8,
  GEO_PLACED: 12,
  GEO_BATCH: 16,
  GEO_PAD: 17,
  GEO_WORDS: 18,
  NO_INPUT: 0xffffffff,
} as const;
