/**
 * edgerun: run compiled neural-network models on edge NPUs (and on the CPU through ONNX
 * Runtime) from Deno and Bun, through a small native shim.
 *
 * @example
 * ```ts
 * import { open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * console.log(model.describe());
 * const outputs = model.run(new Float32Array(model.inputs[0].byteSize / 4));
 * console.log(outputs[0].shape);
 * ```
 * @module
 */
export { type AsyncRunOptions, type Feed, type Feeds, type InputTensor, Model, type ModelInfo, open, openAll, type OpenOptions, type RunOptions } from "./src/model.ts";
export { type Quantization, Tensor, type TensorInfo } from "./src/tensor.ts";
export { Outputs } from "./src/outputs.ts";
export { type PipelineHandler, Pool, type PoolHandler, type PoolOptions, serveModel, servePipeline } from "./src/pool.ts";
export type { RunStats, TimeSummary } from "./src/stats.ts";
export type { TensorFeed } from "./src/request.ts";
export { type DType, type Float16ArrayLike, hasFloat16Array, type TypedArray } from "./src/dtype.ts";
export { parseNpy, toNpy } from "./src/npy.ts";
export {
  type GeometryOptions,
  type ImageFeed,
  type ImageFormat,
  type ImageLayout,
  type ImageOptions,
  normalized,
  type NormalizeOptions,
  nv12,
  type Nv12Options,
  type PixelFormat,
  type Placement,
  type Rect,
  writeNormalized,
  writeNv12,
} from "./src/image.ts";
export { type Comparable, compare, type Comparison, formatComparison } from "./src/compare.ts";
export { EdgerunError, type ErrorCode } from "./ffi/errors.ts";
export { backends, type LibraryInfo, loadLibrary, runtime, setBackendSearchPath } from "./ffi/load.ts";
export type { Backend, BackendInfo, BackendName, RunOptionName } from "./ffi/backends.ts";
