/**
 * open(), openAll() and the Model class.
 * @module
 */
import type { Handle, Native } from "../ffi/abi.ts";
import { check, EdgerunError, nativeError } from "../ffi/errors.ts";
import { loadNative, withPermissionHint } from "../ffi/load.ts";
import { ER } from "../ffi/wire.ts";
import { type Backend, type BackendInfo, type BackendName, backendTable, RUN_OPTIONS, type RunOptionName } from "../ffi/backends.ts";
import { dtypeFromNumber, lengthOf, type TypedArray } from "./dtype.ts";
import { formatDescription } from "./describe.ts";
import { type CheckedFeed, checkDense, checkFeed, isTensorFeed, Request, type Schedule, type TensorFeed } from "./request.ts";
import { abandonRunning, rejectQueued, type RunHost, runAsync } from "./scheduler.ts";
import { type RunStats, StatsRecorder } from "./stats.ts";
import type { Outputs } from "./outputs.ts";
import { bindImage, type ImageFeed, isImageFeed } from "./image.ts";
import { Tensor, type TensorInfo } from "./tensor.ts";

const GRAPH_LEVEL = { disabled: 0, basic: 1, extended: 2, all: 99 } as const;

/**
 * Options of {@link open}.
 *
 * @example
 * ```ts
 * import { open, type OpenOptions } from "@edgerun/edgerun";
 * const options: OpenOptions = { backend: "hbdnn", model: "detector" };
 * using model = open("pack.hbm", options);
 * ```
 */
export interface OpenOptions {
  /**
   * Which backend runs the model (default "auto": by file extension, then content).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("exported.bin", { backend: "ort" }); // an ONNX file under another name
   * ```
   */
  backend?: Backend;
  /**
   * The model to open inside a file that packs several (.hbm); default the first.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using detector = open("pack.hbm", { model: "detector" });
   * ```
   */
  model?: string;
  /**
   * ort: threads inside one operator (0 = ONNX Runtime's default).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx", { intraOpThreads: 4 });
   * ```
   */
  intraOpThreads?: number;
  /**
   * ort: threads across operators (0 = default).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx", { interOpThreads: 2 });
   * ```
   */
  interOpThreads?: number;
  /**
   * ort: run on ONNX Runtime's process-wide thread pools, shared by every model opened with this
   * option, instead of the session's own (default false). Models run in turn (det, cls, rec) then
   * reuse warm threads rather than each spinning up its own pool on a small CPU. The pool's size is
   * $EDGERUN_ORT_SHARED_THREADS when libedgerun loads ONNX Runtime (default one thread per physical
   * core); intraOpThreads / interOpThreads cannot be combined with it.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using det = open("det.onnx", { sharedThreads: true });
   * using rec = open("rec.onnx", { sharedThreads: true }); // the same threads as det
   * console.log(det.info.shared_threads); // 1
   * ```
   */
  sharedThreads?: boolean;
  /**
   * ort: graph optimization level (default "all").
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx", { graphOptimization: "basic" });
   * ```
   */
  graphOptimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * acl: the Ascend device (NPU) id to run on (default 0; `npu-smi info` lists them).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("resnet.om", { device: 1 });
   * console.log(model.info.device); // 1
   * ```
   */
  device?: number;
  /**
   * Requests (buffer sets) runAsync may use at once for this model (default: the backend's
   * `defaultRequests`, see {@link backends}: ort 4, hbdnn 32, acl 4).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * await using model = open("model.hbm", { maxRequests: 8 });
   * await Promise.all(Array.from({ length: 16 }, () => model.runAsync())); // 8 at a time
   * ```
   */
  maxRequests?: number;
  /**
   * Path to libedgerun.so (else $EDGERUN_LIB, the local build, the system loader).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx", { library: "/opt/edgerun/libedgerun.so" });
   * ```
   */
  library?: string;
}

/**
 * Options of one run. Backends ignore what their hardware lacks (ort: priority, cores).
 *
 * @example
 * ```ts
 * import { open, type RunOptions } from "@edgerun/edgerun";
 * using model = open("model.hbm");
 * const urgent: RunOptions = { priority: 255, timeoutMs: 10 };
 * model.run(undefined, urgent);
 * ```
 */
export interface RunOptions {
  /**
   * Task priority 0..255 (254: high, preempting; 255: urgent, preempting). Default 0.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * model.run(undefined, { priority: 254 }); // high: preempts normal-priority tasks
   * ```
   */
  priority?: number;
  /**
   * Tie-break among equal priorities: smaller runs first. Default 0.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * await using model = open("model.hbm");
   * const frames = [1, 2, 3];
   * await Promise.all(frames.map((frame) => model.runAsync(undefined, { priority: 100, customId: frame })));
   * ```
   */
  customId?: number;
  /**
   * BPU cores allowed to run the task: indexes (e.g. [0]) or a bit mask. Default: any core; a model
   * compiled for n cores runs on cores 0..n-1, and a mask must name exactly n cores.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * model.run(undefined, { cores: [0] });
   * ```
   */
  cores?: readonly number[] | number;
  /**
   * Give up after this many milliseconds (0 or absent: wait forever).
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * try {
   *   model.run(undefined, { timeoutMs: 20 });
   * } catch (e) {
   *   if (!(e instanceof EdgerunError && e.code === "TIMEOUT")) throw e;
   *   console.log("frame dropped");
   * }
   * ```
   */
  timeoutMs?: number;
}

/**
 * Options of {@link Model.runAsync}.
 *
 * @example
 * ```ts
 * import { type AsyncRunOptions, open } from "@edgerun/edgerun";
 * await using model = open("model.hbm");
 * const options: AsyncRunOptions = { priority: 100, signal: AbortSignal.timeout(50) };
 * const outputs = await model.runAsync(undefined, options);
 * ```
 */
export interface AsyncRunOptions extends RunOptions {
  /**
   * Aborting rejects a queued run at once; a run on the device finishes, its result is dropped.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * await using model = open("model.hbm");
   * const controller = new AbortController();
   * const pending = model.runAsync(undefined, { signal: controller.signal });
   * controller.abort(); // rejects the run if it has not started
   * console.log(await pending.catch((e) => e));
   * ```
   */
  signal?: AbortSignal;
}

/**
 * A model input: its description plus a zero-copy view of the default request's buffer.
 *
 * @example
 * ```ts
 * import { type InputTensor, open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const input: InputTensor = model.inputs[0];
 * console.log(input.name, input.dtype, input.shape, input.data.length);
 * ```
 */
export interface InputTensor extends TensorInfo {
  /**
   * The input buffer: write into it and call run() with no feeds to skip the copy.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * (model.inputs[0].data as Float32Array).fill(0.5); // writes the input buffer itself
   * model.run(); // no feeds: runs on the buffers as they are
   * ```
   */
  readonly data: TypedArray;
}

/**
 * One feed: a TypedArray (dense, the input's dtype), a {data, shape} pair, a Tensor, or an image
 * the shim converts (nv12() / normalized()). Its buffer must have a fixed length: views of
 * resizable or growable buffers are refused (TypeError).
 *
 * @example
 * ```ts
 * import { type Feed, open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const dense: Feed = new Float32Array(3 * 48 * 192);
 * const shaped: Feed = { data: new Float32Array(3 * 48 * 320), shape: [1, 3, 48, 320] };
 * const previous: Feed = model.run(dense)[0]; // a Tensor
 * model.run(shaped);
 * console.log(previous.shape);
 * ```
 */
export type Feed = TypedArray | TensorFeed | Tensor | ImageFeed;

/**
 * Feeds of a run: one Feed (single-input models), an array in input order, or a record by name.
 *
 * @example
 * ```ts
 * import { type Feeds, open } from "@edgerun/edgerun";
 * using model = open("two_inputs.onnx");
 * const byName: Feeds = { image: new Float32Array(3 * 224 * 224), scale: new Float32Array([1]) };
 * const inOrder: Feeds = [new Float32Array(3 * 224 * 224), new Float32Array([1])];
 * model.run(byName);
 * model.run(inOrder);
 * ```
 */
export type Feeds = Feed | readonly Feed[] | Readonly<Record<string, Feed>>;

/** @internal A model handed to a worker thread: the library and the native handle's address. */
export interface SharedModel {
  library: string;
  address: bigint;
  path: string;
  name: string;
}

/**
 * Facts about the model and the runtime behind it (from the backend).
 *
 * @example
 * ```ts
 * import { type ModelInfo, open } from "@edgerun/edgerun";
 * using model = open("model.hbm");
 * const info: ModelInfo = model.info;
 * console.log(info.backend, info.soc);
 * ```
 */
export type ModelInfo = Record<string, string | number | boolean | null>;

/**
 * The model handle of a Model the garbage collector found unreachable. Its requests are
 * collected on their own (src/request.ts): a view still in use keeps its request, and the
 * request keeps the native model (er_request_new takes a reference), so nothing under a live
 * view is freed.
 */
const finalizer = new FinalizationRegistry<{ native: Native; model: Handle; request: { current?: Request } }>(
  ({ native, model, request }) => {
    // The last moment the default request's buffers can be checked for memory a program moved out.
    if (request.current?.escaped) request.current.keep();
    native.symbols.er_model_free(model);
  },
);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cString(s: string): Uint8Array {
  return encoder.encode(s + "\0");
}

function readTensorInfo(native: Native, model: Handle, io: number, index: number): TensorInfo {
  const s = native.symbols;
  const raw = new Uint8Array(ER.TENSOR_INFO_SIZE);
  check(native, s.er_model_tensor(model, io, index, raw, raw.length));
  const v = new DataView(raw.buffer);
  const dtypeNumber = v.getInt32(ER.TI_DTYPE, true);
  const dtype = dtypeFromNumber(dtypeNumber);
  if (!dtype) throw new EdgerunError("UNSUPPORTED", `tensor ${index} has an unsupported element type ${dtypeNumber}`);
  const rank = v.getUint32(ER.TI_RANK, true);
  const flags = v.getUint32(ER.TI_FLAGS, true);
  const shape: number[] = [];
  const strides: number[] = [];
  for (let d = 0; d < rank; d++) {
    shape.push(Number(v.getBigInt64(ER.TI_SHAPE + 8 * d, true)));
    strides.push(Number(v.getBigInt64(ER.TI_STRIDES + 8 * d, true)));
  }
  const nameBytes = new Uint8Array(v.getUint32(ER.TI_NAME_LENGTH, true) + 1);
  check(native, s.er_model_tensor_name(model, io, index, nameBytes, nameBytes.length));
  const name = decoder.decode(nameBytes.subarray(0, nameBytes.length - 1));
  let quantization = null;
  if (v.getInt32(ER.TI_QUANT_TYPE, true) !== 0) {
    const scaleCount = v.getUint32(ER.TI_SCALE_COUNT, true);
    const zpCount = v.getUint32(ER.TI_ZERO_POINT_COUNT, true);
    const cap = Math.max(scaleCount, zpCount, 1);
    const scales = new Float32Array(cap);
    const zeroPoints = new Int32Array(cap);
    check(native, s.er_model_tensor_quant(model, io, index, scales, zeroPoints, cap));
    quantization = Object.freeze({
      scales: scales.slice(0, scaleCount),
      zeroPoints: zeroPoints.slice(0, zpCount),
      axis: v.getInt32(ER.TI_QUANT_AXIS, true),
    });
  }
  return Object.freeze({
    name,
    dtype,
    shape: Object.freeze(shape),
    strides: Object.freeze(strides),
    byteSize: Number(v.getBigUint64(ER.TI_BYTE_SIZE, true)),
    quantization,
    dynamic: (flags & ER.TENSOR_DYNAMIC) !== 0,
    unknownRank: (flags & ER.TENSOR_UNKNOWN_RANK) !== 0,
    padded: (flags & ER.TENSOR_PADDED) !== 0,
  });
}

function optionString(options: OpenOptions): string {
  const parts: string[] = [];
  const threads = (key: string, v: number | undefined) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < 0 || v > 1024) throw new RangeError(`${key} must be an integer 0..1024, got ${v}`);
    parts.push(`${key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())}=${v}`);
  };
  if (options.maxRequests !== undefined && (!Number.isInteger(options.maxRequests) || options.maxRequests < 1)) {
    throw new RangeError(`maxRequests must be a positive integer, got ${options.maxRequests}`);
  }
  threads("intraOpThreads", options.intraOpThreads);
  if (options.device !== undefined) {
    if (!Number.isInteger(options.device) || options.device < 0 || options.device > 63) {
      throw new RangeError(`device must be an integer 0..63, got ${options.device}`);
    }
    parts.push(`device=${options.device}`);
  }
  threads("interOpThreads", options.interOpThreads);
  if (options.sharedThreads !== undefined) {
    if (typeof options.sharedThreads !== "boolean") throw new TypeError(`sharedThreads must be a boolean, got ${options.sharedThreads}`);
    if (options.sharedThreads) parts.push("shared_threads=1");
  }
  if (options.graphOptimization !== undefined) {
    const level = Object.hasOwn(GRAPH_LEVEL, options.graphOptimization) ? GRAPH_LEVEL[options.graphOptimization] : undefined;
    if (level === undefined) {
      throw new RangeError(`graphOptimization must be one of ${Object.keys(GRAPH_LEVEL).join(", ")}`);
    }
    parts.push(`graph_optimization=${level}`);
  }
  return parts.join(";");
}

const OPEN_KEYS = new Set([
  "backend",
  "model",
  "intraOpThreads",
  "interOpThreads",
  "sharedThreads",
  "graphOptimization",
  "library",
  "maxRequests",
  "device",
]);
const RUN_KEYS = new Set<string>(RUN_OPTIONS);
const ASYNC_KEYS = new Set([...RUN_KEYS, "signal"]);

function checkKeys(options: object, allowed: Set<string>, what: string): void {
  // for-in, not Object.keys: no array per run; inherited keys are skipped (not options).
  for (const key in options) {
    if (!Object.hasOwn(options, key)) continue;
    if (!allowed.has(key)) throw new TypeError(`unknown ${what} option '${key}'; known: ${[...allowed].join(", ")}`);
  }
}

/** Options already warned about, per backend row. */
const warned = new WeakMap<BackendInfo, Set<RunOptionName>>();

/**
 * Says once per process and backend (console.warn) that a run option has no effect there, so a
 * program written for the NPU learns why it changes nothing on the CPU (docs/run-options.md).
 * Which options a backend acts on is its `honours` (the shim's table). priority and customId
 * still order runAsync's queue, and runAsync keeps its own deadline, on every backend: only sync
 * runs are warned about those. Allocates nothing unless there is something to say.
 */
function warnIgnored(backend: BackendInfo, schedule: Schedule, sync: boolean): void {
  const h = backend.honours;
  const ignored: RunOptionName | undefined = schedule.coreMask !== 0 && !h.includes("cores")
    ? "cores"
    : !sync
    ? undefined
    : schedule.priority !== 0 && !h.includes("priority")
    ? "priority"
    : schedule.customId !== 0 && !h.includes("customId")
    ? "customId"
    : schedule.timeoutMs !== 0 && !h.includes("timeoutMs")
    ? "timeoutMs"
    : undefined;
  if (ignored === undefined) return;
  let said = warned.get(backend);
  if (!said) warned.set(backend, said = new Set());
  if (said.has(ignored)) return;
  said.add(ignored);
  const why = ignored === "cores"
    ? "it does not choose cores per run"
    : ignored === "timeoutMs"
    ? "a sync run waits for it to finish; runAsync's timeout still applies"
    : "it only orders runAsync's queue";
  console.warn(`edgerun: the ${backend.name} backend ignores the ${ignored} run option (${why}); see docs/run-options.md`);
}

/** The schedule of a run without options (shared: runs never change a schedule). */
const DEFAULT_SCHEDULE: Schedule = Object.freeze({ priority: 0, customId: 0, coreMask: 0, timeoutMs: 0 });

/** Validates run options into a schedule. */
export function toSchedule(options?: RunOptions, keys: Set<string> = RUN_KEYS): Schedule {
  if (options === undefined) return DEFAULT_SCHEDULE;
  if (typeof options !== "object" || options === null) throw new TypeError("run options must be an object");
  checkKeys(options, keys, "run");
  const priority = own(options, "priority") ?? 0;
  const customId = own(options, "customId") ?? 0;
  const cores = own(options, "cores");
  const timeoutMs = own(options, "timeoutMs") ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) {
    throw new RangeError(`priority must be an integer 0..255, got ${priority}`);
  }
  if (!Number.isInteger(customId) || customId < -0x80000000 || customId > 0x7fffffff) {
    throw new RangeError(`customId must be a 32-bit integer, got ${customId}`);
  }
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > 0x7fffffff) {
    throw new RangeError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  }
  let coreMask = 0;
  if (typeof cores === "number") {
    if (!Number.isInteger(cores) || cores < 0 || cores > 0xf) throw new RangeError(`cores mask must be 0..15, got ${cores}`);
    coreMask = cores;
  } else if (cores !== undefined) {
    if (!Array.isArray(cores) || cores.length === 0) throw new RangeError("cores must list at least one core index");
    for (const c of cores) {
      if (!Number.isInteger(c) || c < 0 || c > 3) throw new RangeError(`core index must be 0..3, got ${c}`);
      coreMask |= 1 << c;
    }
  }
  // + 0 turns -0 (an integer to Number.isInteger) into 0, which every FFI accepts.
  return { priority: priority + 0, customId: customId + 0, coreMask, timeoutMs: Math.ceil(timeoutMs) + 0 };
}

/** An option the caller set on the object itself: inherited properties are not options. */
function own<T extends object, K extends keyof T>(options: T, key: K): T[K] | undefined {
  return Object.hasOwn(options, key) ? options[key] : undefined;
}

/**
 * A loaded model. Close it with `using`, `close()`, or let the garbage collector do it.
 *
 * @example
 * ```ts
 * import { open } from "@edgerun/edgerun";
 * using model = open("cls.onnx");
 * console.log(model.describe());
 * const outputs = model.run(new Float32Array(model.inputs[0].byteSize / 4));
 * console.log(outputs[0].shape, outputs[0].data);
 * ```
 */
export class Model implements Disposable, AsyncDisposable {
  /**
   * The model file.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * console.log(model.path); // "model.onnx"
   * ```
   */
  readonly path: string;
  /**
   * The model's name (inside its file).
   *
   * @example
   * ```ts
   * import { openAll } from "@edgerun/edgerun";
   * for (const model of openAll("pack.hbm").values()) {
   *   console.log(model.name);
   *   model.close();
   * }
   * ```
   */
  readonly name: string;
  /**
   * The backend running it.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * if (model.backend === "hbdnn") console.log(model.info.soc);
   * ```
   */
  readonly backend: BackendName;
  /**
   * Inputs, with zero-copy views of the default request's buffers.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (const input of model.inputs) console.log(input.name, input.dtype, input.shape);
   * ```
   */
  readonly inputs: readonly InputTensor[];
  /**
   * Output descriptions.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const bytes = model.outputs.reduce((sum, output) => sum + output.byteSize, 0);
   * ```
   */
  readonly outputs: readonly TensorInfo[];
  /**
   * Facts from the backend (runtime version, device, ...).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * console.log(model.info); // e.g. { backend: "ort", runtime_version: "1.30.0", device: "cpu", ... }
   * ```
   */
  readonly info: ModelInfo;

  #native: Native;
  #handle: Handle | null;
  #request: Request;
  #inputInfos: readonly TensorInfo[] = [];
  #idle: Request[] = [];
  #pooled = 0;
  #busy = 0;
  #maxRequests = 1;
  #drainWaiters: (() => void)[] = [];
  #closing = false;
  #stats = new StatsRecorder();
  /** The default request, for the finalizer's last check (a box: the request may be replaced). */
  #finalized: { current?: Request } = {};
  /** "input 'x'" per input, for error messages (made once, not per run). */
  #where: string[] = [];
  /** The last run(x) feed that passed checkDense, and its element count (see run). */
  #checkedFeed: ArrayBufferView | undefined;
  #checkedLength = 0;
  #host!: RunHost;
  /** The backend's row of the shim's table (limits, honoured run options). */
  #backend!: BackendInfo;

  /** Use {@link open} or {@link openAll}. */
  private constructor(native: Native, handle: Handle, path: string, name: string, maxRequests?: number) {
    this.#native = native;
    this.#handle = handle;
    finalizer.register(this, { native, model: handle, request: this.#finalized }, this);
    this.path = path;
    this.name = name;
    try {
      const counts = new Uint32Array(2);
      check(native, native.symbols.er_model_counts(handle, counts));
      const inputs = Array.from({ length: counts[0] }, (_, i) => readTensorInfo(native, handle, 0, i));
      this.outputs = Object.freeze(Array.from({ length: counts[1] }, (_, i) => readTensorInfo(native, handle, 1, i)));
      const len = new Uint32Array(1);
      const buf = new Uint8Array(4096);
      check(native, native.symbols.er_model_info(handle, buf, buf.length, len));
      this.info = Object.freeze(JSON.parse(decoder.decode(buf.subarray(0, Math.min(len[0], buf.length - 1)))));
      const backend = backendTable(native).named(this.info.backend);
      if (!backend) throw new EdgerunError("BACKEND", `model '${name}' reports an unknown backend '${this.info.backend}'`);
      this.#backend = backend;
      this.backend = backend.name;
      this.#inputInfos = inputs;
      this.#where = inputs.map((info) => `input '${info.name}'`);
      this.#request = new Request(native, handle, inputs, this.outputs);
      this.#finalized.current = this.#request;
      this.#maxRequests = Math.min(maxRequests ?? backend.defaultRequests, backend.taskLimit);
      this.#host = this.#makeHost();
      const request = (): Request => this.#live();
      // A dynamic input's shape and strides are the declared ones until reshape() or a feed sets
      // them, then the request's.
      const current = (i: number) => ({
        shape: {
          get: () => {
            const r = request();
            return r.inputShaped(i) ? r.inputShape(i) : inputs[i].shape;
          },
          enumerable: true,
        },
        strides: {
          get: () => {
            const r = request();
            return r.inputShaped(i) ? r.inputStrides(i) : inputs[i].strides;
          },
          enumerable: true,
        },
      });
      this.inputs = Object.freeze(inputs.map((info, i) =>
        Object.freeze(Object.create(info, {
          data: { get: () => request().inputView(i), enumerable: true },
          ...(info.dynamic ? current(i) : {}),
        })) as InputTensor
      ));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** @internal opens model `index` of an open pack. */
  static fromPack(
    native: Native,
    pack: Handle,
    index: number,
    path: string,
    name: string,
    maxRequests?: number,
  ): Model {
    const out = new BigUint64Array(1);
    check(native, native.symbols.er_pack_model(pack, index, out), `cannot open model '${name}' of ${path}`);
    return new Model(native, native.handle(out[0]), path, name, maxRequests);
  }

  /**
   * @internal What a worker needs to attach to this model (see Pool). Takes a native reference
   * now, on this thread, so the model outlives close() until the worker adopts the reference
   * (Model.adopt) or the pool gives it back (Model.unshare).
   */
  share(): SharedModel {
    const handle = this.#live() && this.#handle!;
    check(this.#native, this.#native.symbols.er_model_retain(handle));
    return {
      library: this.#native.path,
      address: this.#native.address(handle),
      path: this.path,
      name: this.name,
    };
  }

  /** @internal Attaches to a model shared by another thread of this process, taking over its reference. */
  static adopt(shared: SharedModel): Model {
    const native = loadNative(shared.library);
    return new Model(native, native.handle(shared.address), shared.path, shared.name);
  }

  /** @internal Gives back the reference of a share() no worker adopted. */
  static unshare(shared: SharedModel): void {
    const native = loadNative(shared.library);
    native.symbols.er_model_free(native.handle(shared.address));
  }

  #makeHost(): RunHost {
    return {
      name: this.name,
      backend: this.#backend,
      native: this.#native,
      acquire: (): Request | undefined => this.#acquire(),
      release: (request: Request): void => this.#release(request),
      record: (deviceMs: number, endToEndMs: number): void => this.#stats.record(deviceMs, endToEndMs),
    };
  }

  /**
   * An idle pooled request, or a new one while the pool is below its limit. One whose last run
   * was cancelled or timed out comes last: its task may still be on a core, and its next run
   * would wait for it while another request could run on a free core.
   */
  #acquire(): Request | undefined {
    if (this.#handle === null) return undefined;
    const settled = this.#idle.findLastIndex((r) => !r.unsettled);
    let request = settled >= 0 ? this.#idle.splice(settled, 1)[0] : undefined;
    if (!request && this.#pooled < this.#maxRequests) {
      request = new Request(this.#native, this.#handle, this.#inputInfos, this.outputs);
      this.#pooled++;
    }
    request ??= this.#idle.pop();
    if (request) this.#busy++;
    return request;
  }

  #release(request: Request): void {
    this.#busy--;
    if (request.freed) this.#pooled--; // dropped by the scheduler: a new one may take its place
    else if (this.#handle === null) request.free();
    else this.#idle.push(request);
    if (this.#busy === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  /**
   * True after close().
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * const model = open("model.onnx");
   * model.close();
   * console.log(model.closed); // true
   * ```
   */
  get closed(): boolean {
    return this.#handle === null;
  }

  #live(): Request {
    if (this.#handle === null) throw new EdgerunError("CLOSED", `model '${this.name}' is closed`);
    // closeAsync() in progress: new work would keep it waiting, possibly forever.
    if (this.#closing) throw new EdgerunError("CLOSED", `model '${this.name}' is closing`);
    // A program moved memory out of one of the views: that request's memory is kept as it is,
    // and the model goes on with a new one (runs and reshapes would rewrite or free it).
    // A failed run can leave a request that never runs again (hbdnn: a task that could not be
    // released may still use its buffers): it is dropped (the shim keeps those buffers) and replaced.
    const unusable = this.#request.failed && !this.#request.usable;
    if (unusable || this.#request.escaped) {
      if (unusable) this.#request.free();
      else this.#request.keep();
      this.#request = new Request(this.#native, this.#handle, this.#inputInfos, this.outputs);
      this.#finalized.current = this.#request;
    }
    return this.#request;
  }

  /**
   * A readable table of the model's inputs and outputs (like `hrt_model_exec model_info`).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * console.log(model.describe());
   * ```
   */
  describe(): string {
    this.#live();
    return formatDescription(this);
  }

  /**
   * Runs the model synchronously and returns its outputs (views valid until the next run).
   * With no feeds, the inputs' current buffers are used as they are (zero-copy).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const outputs = model.run(new Float32Array(model.inputs[0].byteSize / 4), { timeoutMs: 100 });
   * const kept = outputs[0].copy(); // outputs[0] itself is a view, rewritten by the next run
   * ```
   */
  run(feeds?: Feeds, options?: RunOptions): Outputs {
    const started = this.#native.clockMs();
    const request = this.#live();
    const schedule = toSchedule(options);
    if (schedule !== DEFAULT_SCHEDULE) warnIgnored(this.#backend, schedule, true);
    if (feeds !== undefined) {
      // One TypedArray for a one-input model of fixed shape: the common case, checked and
      // written without building a list.
      const infos = this.#inputInfos;
      const only = infos.length === 1 ? infos[0] : undefined;
      if (only && !only.dynamic && ArrayBuffer.isView(feeds)) {
        // A control loop feeds the same array every time: checked once, it stays good while its
        // length does (a detached buffer reads 0; a checked buffer cannot become resizable).
        if (feeds !== this.#checkedFeed || lengthOf(feeds) !== this.#checkedLength) {
          checkDense(only, feeds, this.#where[0]);
          const length = lengthOf(feeds);
          this.#checkedFeed = length > 0 ? feeds : undefined;
          this.#checkedLength = length;
        }
        request.copyIn(0, feeds as TypedArray);
      }
      else {
        const checked = this.#checkFeeds(feeds);
        for (let i = 0; i < checked.length; i++) request.feed(i, checked[i]);
      }
    }
    const outputs = request.run(schedule);
    this.#stats.record(request.lastRunMs, request.lastRunEndMs - started);
    return outputs;
  }

  /**
   * Runs the model without blocking the event loop: the run waits in a priority queue when the
   * backend is busy, then runs on a native thread. Resolves with owned output tensors (copies).
   * Feeds are read when the run starts: leave them unchanged until the promise settles. With no
   * feeds, the inputs of the default request (model.inputs[i].data) are copied in at start.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * await using policy = open("policy.hbm");
   * const state = new Float32Array(policy.inputs[0].byteSize / 4);
   * const [action] = await policy.runAsync(state, { priority: 254, timeoutMs: 20 });
   * ```
   */
  runAsync(feeds?: Feeds, options: AsyncRunOptions = {}): Promise<Outputs> {
    try {
      this.#live();
      const schedule = toSchedule(options, ASYNC_KEYS);
      warnIgnored(this.#backend, schedule, false);
      const signal = Object.hasOwn(options, "signal") ? options.signal : undefined;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
      const checked = feeds === undefined ? this.#currentInputs() : this.#checkFeeds(feeds);
      return runAsync(this.#host, checked, schedule, { signal, timeoutMs: schedule.timeoutMs });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Copies of the default request's inputs (what run() with no feeds would use). */
  #currentInputs(): CheckedFeed[] {
    return this.inputs.map((input, i) => ({
      data: input.data.slice(),
      shape: this.#request.inputShape(i),
      quantize: false,
    }));
  }

  /**
   * Latency statistics of run() and runAsync() since open or the last resetStats().
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * model.run();
   * const { count, device, endToEnd } = model.stats();
   * console.log(count, device.p50, endToEnd.p99);
   * ```
   */
  stats(): RunStats {
    return this.#stats.snapshot();
  }

  /**
   * Clears the statistics.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 10; i++) model.run(); // warm-up
   * model.resetStats();
   * for (let i = 0; i < 100; i++) model.run();
   * console.log(model.stats().device.mean);
   * ```
   */
  resetStats(): void {
    this.#stats.reset();
  }

  #checkFeeds(feeds: Feeds): CheckedFeed[] {
    const inputs = this.inputs;
    const list: unknown[] = new Array(inputs.length);
    if (isImageFeed(feeds) && feeds.kind === "nv12" && inputs.length === 2) {
      list[0] = list[1] = feeds; // a model with just the Y and UV inputs
    } else if (ArrayBuffer.isView(feeds) || feeds instanceof Tensor || isTensorFeed(feeds) || isImageFeed(feeds)) {
      if (inputs.length !== 1) {
        throw new TypeError(
          `model '${this.name}' has ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}): pass an array or a record`,
        );
      }
      list[0] = feeds;
    } else if (Array.isArray(feeds)) {
      if (feeds.length !== inputs.length) {
        throw new TypeError(`model '${this.name}' has ${inputs.length} inputs, got ${feeds.length} feeds`);
      }
      for (let i = 0; i < feeds.length; i++) list[i] = feeds[i];
    } else if (typeof feeds === "object" && feeds !== null) {
      const record = feeds as Record<string, Feed>;
      this.#checkNames(record);
      inputs.forEach((info, i) => {
        if (!(info.name in record)) throw new TypeError(`missing feed for input '${info.name}'`);
        list[i] = record[info.name];
      });
    } else {
      throw new TypeError(`feeds must be a TypedArray, an array or a record, got ${typeof feeds}`);
    }
    // Validate everything before writing anything: a bad feed leaves the inputs untouched.
    return list.map((_, i) => this.#checkOne(list, i));
  }

  /** Every key of a record of feeds names exactly one input. */
  #checkNames(record: Readonly<Record<string, unknown>>): void {
    const names = this.inputs.map((i) => i.name);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) {
      throw new TypeError(
        `model '${this.name}' has several inputs named '${twice}' (names that decode to the same text): ` +
          "pass the feeds as an array, in input order",
      );
    }
    for (const key of Object.keys(record)) {
      if (!this.inputs.some((i) => i.name === key)) {
        throw new TypeError(`model '${this.name}' has no input '${key}'; inputs: ${this.inputs.map((i) => i.name).join(", ")}`);
      }
    }
  }

  #checkOne(list: readonly unknown[], i: number): CheckedFeed {
    const f = list[i];
    if (!isImageFeed(f)) return checkFeed(this.#inputInfos[i], f, this.#where[i]);
    return { data: f.data, shape: this.#inputInfos[i].shape, quantize: false, image: bindImage(this.inputs, list, i) };
  }

  /**
   * Sets the shape of inputs with dynamic dimensions before writing into them: afterwards
   * `inputs[i].shape`, `.strides` and `.data` describe the new shape (zero-copy, like any input),
   * and `run()` with no feeds runs on it. The old `inputs[i].data` of a reshaped input is emptied
   * (docs/lifetimes.md); an unchanged shape keeps it. Fixed dimensions must keep their size; a
   * fixed-shape input accepts only its own shape. Feeds with another shape still reshape on the fly,
   * and so does a plain same-size image conversion; writeNormalized() / writeNv12() with a geometry
   * option (`resize`, `crop`, `into`, `letterbox`, ...) resize the frame into the shape set here.
   *
   * @example
   * ```ts
   * import { open, writeNormalized } from "@edgerun/edgerun";
   * using rec = open("ch_PP-OCRv4_rec_infer.onnx"); // x: float32 [-1, 3, 48, -1]
   * rec.reshape({ x: [1, 3, 48, 320] });
   * console.log(rec.inputs[0].shape, rec.inputs[0].data.length); // [1, 3, 48, 320] 46080
   * const line = new Uint8Array(250 * 40 * 3); // a cropped text line, RGB
   * writeNormalized(rec, line, { format: "rgb", width: 250, height: 40, into: { x: 0, y: 0, width: 300, height: 48 } });
   * const [logits] = rec.run();
   * ```
   */
  reshape(shapes: Readonly<Record<string, readonly number[]>>): void {
    const request = this.#live();
    if (typeof shapes !== "object" || shapes === null || Array.isArray(shapes)) {
      throw new TypeError("reshape takes a record of shapes by input name, e.g. { x: [1, 3, 48, 320] }");
    }
    this.#checkNames(shapes);
    // Everything is checked before anything changes.
    const changes = this.#inputInfos.flatMap((info, i) => Object.hasOwn(shapes, info.name) ? [[i, checkShape(info, shapes[info.name])] as const] : []);
    for (const [i, shape] of changes) request.setShape(i, shape);
  }

  /**
   * @internal Writes some inputs of the default request without running (the others keep their
   * data); used by writeNv12() / writeNormalized().
   */
  writeInputs(feeds: Readonly<Record<string, Feed>>): void {
    const request = this.#live();
    this.#checkNames(feeds);
    const list: unknown[] = this.inputs.map((info) => feeds[info.name]);
    const checked = list.map((f, i) => f === undefined ? undefined : this.#checkOne(list, i));
    checked.forEach((feed, i) => feed && request.feed(i, feed));
  }

  /**
   * Frees the model and its buffers. Idempotent; views of its tensors become empty. Queued
   * runAsync calls are rejected (CLOSED); runs on the device are rejected too, and their buffers
   * are freed by the shim only when the device is done with them. Use closeAsync() to wait.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * const model = open("model.onnx");
   * try {
   *   model.run();
   * } finally {
   *   model.close();
   * }
   * ```
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    this.#checkedFeed = undefined;
    finalizer.unregister(this);
    const closed = new EdgerunError("CLOSED", `model '${this.name}' was closed`);
    if (this.#host) {
      rejectQueued(this.#host, closed);
      for (const request of abandonRunning(this.#host, closed)) request.free();
    }
    for (const request of this.#idle.splice(0)) request.free();
    this.#request?.free();
    this.#native.symbols.er_model_free(handle);
    // Abandoned runs never come back to #release: a closeAsync() waiting for them ends here.
    this.#busy = 0;
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  /**
   * Rejects queued runs (and any new one), waits for the runs on the device to finish, then closes.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * const model = open("model.hbm");
   * const result = model.runAsync().catch((e) => e); // CLOSED if it had not started
   * await model.closeAsync(); // a run already on the device finishes first
   * console.log(await result);
   * ```
   */
  async closeAsync(): Promise<void> {
    if (this.#handle === null) return;
    this.#closing = true;
    rejectQueued(this.#host, new EdgerunError("CLOSED", `model '${this.name}' was closed`));
    while (this.#busy > 0) await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.close();
  }

  /**
   * Same as close().
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * {
   *   using model = open("model.onnx");
   *   model.run();
   * } // closed here
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Same as closeAsync(): `await using model = open(...)`.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * {
   *   await using model = open("model.hbm");
   *   await model.runAsync();
   * } // runs finished, then closed
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.closeAsync();
  }
}

/** The caller's open options, own properties only (inherited ones are not options). */
function openOptions(options: OpenOptions): OpenOptions {
  if (typeof options !== "object" || options === null) throw new TypeError("options must be an object");
  checkKeys(options, OPEN_KEYS, "open");
  const copy: Record<string, unknown> = {};
  for (const key of OPEN_KEYS) if (Object.hasOwn(options, key)) copy[key] = (options as Record<string, unknown>)[key];
  return copy as OpenOptions;
}

function openPack(path: string, options: OpenOptions): { native: Native; pack: Handle; names: string[] } {
  if (typeof path !== "string" || path.length === 0) throw new TypeError("path must be a non-empty string");
  // The shim takes a C string: a NUL would cut the path short and open another file.
  if (path.includes("\0")) throw new TypeError("path must not contain a NUL character");
  const backend: unknown = options.backend ?? "auto";
  if (typeof backend !== "string") throw new RangeError(`backend must be a string, got ${String(backend)}`);
  const optionText = optionString(options);
  const native = loadNative(options.library);
  // The valid names are the loaded library's: its table is the one list of backends.
  const table = backendTable(native);
  const row = table.named(backend);
  if (backend !== "auto" && !row) {
    throw new RangeError(`backend must be "auto" or one of ${table.names}, got '${backend}'`);
  }
  const out = new BigUint64Array(1);
  const s = native.symbols;
  const status = s.er_pack_open(cString(path), row?.id ?? ER.BACKEND_AUTO, cString(optionText), out);
  if (status !== 0) throw withPermissionHint(nativeError(native, status, `cannot open ${path}`));
  const pack = native.handle(out[0]);
  try {
    const count = new Uint32Array(1);
    check(native, s.er_pack_count(pack, count));
    const names: string[] = [];
    const buf = new Uint8Array(1024);
    const len = new Uint32Array(1);
    for (let i = 0; i < count[0]; i++) {
      check(native, s.er_pack_name(pack, i, buf, buf.length, len));
      names.push(decoder.decode(buf.subarray(0, Math.min(len[0], buf.length - 1))));
    }
    return { native, pack, names };
  } catch (e) {
    s.er_pack_free(pack);
    throw e;
  }
}

/**
 * Opens a model file on the backend its extension or content names (see {@link backends}:
 * .onnx on ort, .hbm on hbdnn), or on `options.backend`.
 *
 * @example
 * ```ts
 * import { open } from "@edgerun/edgerun";
 * using model = open("model.onnx", { intraOpThreads: 2 });
 * const out = model.run({ x: new Float32Array(6) });
 * console.log(out.get("y").data);
 * ```
 */
export function open(path: string, options: OpenOptions = {}): Model {
  options = openOptions(options);
  const { native, pack, names } = openPack(path, options);
  try {
    let index = 0;
    if (options.model !== undefined) {
      index = names.indexOf(options.model);
      if (index < 0) {
        throw new EdgerunError("NOT_FOUND", `${path} has no model '${options.model}'; it has: ${names.join(", ")}`);
      }
    }
    if (names.length === 0) throw new EdgerunError("INVALID_MODEL", `${path} contains no model`);
    return Model.fromPack(native, pack, index, path, names[index], options.maxRequests);
  } finally {
    native.symbols.er_pack_free(pack);
  }
}

/**
 * Opens every model packed in a file, by name (an .onnx file holds one).
 *
 * @example
 * ```ts
 * import { openAll } from "@edgerun/edgerun";
 * const models = openAll("pack.hbm");
 * for (const [name, model] of models) console.log(name, model.inputs.length);
 * for (const model of models.values()) model.close();
 * ```
 */
export function openAll(path: string, options: Omit<OpenOptions, "model"> = {}): Map<string, Model> {
  options = openOptions(options);
  const { native, pack, names } = openPack(path, options);
  const models = new Map<string, Model>();
  try {
    names.forEach((name, i) => models.set(name, Model.fromPack(native, pack, i, path, name, options.maxRequests)));
    return models;
  } catch (e) {
    for (const m of models.values()) m.close();
    throw e;
  } finally {
    native.symbols.er_pack_free(pack);
  }
}


/** A shape reshape() may give an input: its rank, its fixed dimensions, non-negative safe integers. */
function checkShape(info: TensorInfo, shape: unknown): readonly number[] {
  const where = `input '${info.name}'`;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new TypeError(`${where}: a shape is an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const rankOk = info.unknownRank ? shape.length >= 1 && shape.length <= ER.MAX_DIMS : shape.length === info.shape.length;
  const fixedOk = info.unknownRank || info.shape.every((d, k) => d < 0 || d === shape[k]);
  if (!rankOk || !fixedOk) {
    throw new RangeError(`${where} has shape [${info.shape.map((d) => d < 0 ? "?" : d).join(",")}], cannot take [${shape.join(",")}]`);
  }
  return Object.freeze(shape.map((d) => d + 0));
}
