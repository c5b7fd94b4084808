/**
 * A request: one set of native input/output buffers of a model, bound once, used by one run
 * at a time. Views over its memory are created once and refreshed only when a shape changes.
 *
 * Lifetimes (docs/lifetimes.md): every ArrayBuffer over a request's memory keeps the Request
 * reachable (owners below), and a Request's native memory is freed only by free(), which
 * detaches every such buffer first, or by the garbage collector once nothing reaches it, so no
 * view can outlive the memory it shows.
 * @module
 */
import type { Handle, Native } from "../ffi/abi.ts";
import { check, EdgerunError } from "../ffi/errors.ts";
import {
  acceptsArray,
  bufferOf,
  byteLengthOf,
  bytesOf,
  dtypeSize,
  expectedArrayName,
  lengthOf,
  type TypedArray,
  typedView,
} from "./dtype.ts";
import type { ImageBinding } from "./image.ts";
import { Outputs } from "./outputs.ts";
import { denseStrides, elementCount, Tensor, type TensorInfo, type TensorSource } from "./tensor.ts";
import { ER } from "../ffi/wire.ts";

const { INPUT: ER_INPUT, OUTPUT: ER_OUTPUT, COPY_DENSE, COPY_FLOAT32, REQ_TENSOR_WORDS: TENSOR_WORDS, MAX_DIMS } = ER;
const { RT_DATA, RT_BYTES, RT_RANK, RT_SHAPE, RT_STRIDES } = ER;

/** Scheduling of one run (already validated). */
export interface Schedule {
  priority: number;
  customId: number;
  coreMask: number;
  timeoutMs: number;
}

/**
 * A feed with an explicit shape (for inputs with dynamic dimensions), or float values to quantize.
 *
 * @example
 * ```ts
 * import { open, type TensorFeed } from "@edgerun/edgerun";
 * using model = open("ocr_rec.onnx"); // input x: float32 [1, 3, 48, -1]
 * const feed: TensorFeed = { data: new Float32Array(3 * 48 * 320), shape: [1, 3, 48, 320] };
 * model.run({ x: feed });
 * ```
 */
export interface TensorFeed {
  /**
   * The elements, dense, in C order.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * model.run({ data: new Float32Array(3 * 48 * 192), shape: [1, 3, 48, 192] });
   * ```
   */
  readonly data: TypedArray;
  /**
   * The shape of this feed (default: the input's shape).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("ocr_rec.onnx");
   * for (const width of [160, 320]) model.run({ data: new Float32Array(3 * 48 * width), shape: [1, 3, 48, width] });
   * ```
   */
  readonly shape?: readonly number[];
  /**
   * data is float32 values to convert to the input's type on the way in: quantized with the
   * input's scale/zero point (round half to even, clamped), or converted for float16/float64.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm"); // an int8 input with a scale
   * model.run({ data: new Float32Array([0.25, -1, 0.5]), quantize: true });
   * ```
   */
  readonly quantize?: boolean;
}

/** A checked feed. */
export interface CheckedFeed {
  data: TypedArray;
  shape: readonly number[];
  quantize: boolean;
  /** An image the shim converts into the input (data is then the image's pixels). */
  image?: ImageBinding;
}

interface Slot {
  info: TensorInfo;
  shape: number[];
  strides: number[];
  address: bigint;
  bytes: number;
  view: TypedArray;
  raw: Uint8Array;
  /** The ArrayBuffer over the native memory (what detach() detaches). */
  buffer: ArrayBuffer;
  /** Set when edgerun emptied the views itself (not a program moving the memory out). */
  emptied?: boolean;
  /** The current strides differ from the dense ones (dynamic inputs: strides the backend filled in). */
  padded: boolean;
}

const detachedGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "detached")?.get;
const transferIntrinsic = (ArrayBuffer.prototype as { transfer?: (n: number) => ArrayBuffer }).transfer;

/** Whether a buffer is detached, as the engine knows it (a program may shadow `detached`). */
function isDetached(buffer: ArrayBufferLike): boolean {
  if (!detachedGetter) return buffer.byteLength === 0;
  try {
    return detachedGetter.call(buffer);
  } catch {
    return false; // a SharedArrayBuffer: never detached
  }
}

/**
 * Empties every view of a request's buffer (detaches it) before its memory is freed or replaced.
 * The slot's own ArrayBuffer and the engine's own transfer are used: a program may shadow `buffer`
 * on a view or `transfer` on a buffer, and a detach that did not happen would leave views over
 * freed memory. Deno and Bun both detach external buffers; a runtime that could not is an error.
 */
function detach(slot: { readonly buffer: ArrayBuffer }): void {
  if (isDetached(slot.buffer)) return;
  if (!transferIntrinsic) {
    throw new EdgerunError("UNSUPPORTED", "this runtime cannot detach ArrayBuffers (ArrayBuffer.prototype.transfer)");
  }
  transferIntrinsic.call(slot.buffer, 0);
}

let warnedEscape = false;

/** A feed checked when the run was called whose buffer was detached before the run started. */
function detachedFeed(info: TensorInfo): TypeError {
  return new TypeError(`input '${info.name}': the feed's ArrayBuffer was detached before the run started`);
}

/** A view's buffer keeps its Request (and so the native memory under it) reachable. */
const owners = new WeakMap<ArrayBuffer, Request>();

/** Frees the native request of a Request the garbage collector found unreachable (no view left). */
const collected = new FinalizationRegistry<{ native: Native; handle: Handle }>(({ native, handle }) =>
  native.symbols.er_request_free(handle)
);

export class Request {
  readonly #native: Native;
  readonly #handle: Handle;
  readonly #inputs: Slot[];
  readonly #outputs: Slot[];
  readonly #outputTensors: Tensor[];
  readonly #dynamicOutputs: number[];
  readonly #words = new BigUint64Array(TENSOR_WORDS);
  /** The shim's er_request_timing record: read after each run instead of calling for it. */
  readonly #timing: Float64Array;
  /** What run() returns: made once, again only when an output tensor is replaced. */
  #outputList: Outputs | undefined;
  #freed = false;
  #queue: unknown;
  /** Inputs given a shape by setShape (reshape() or a feed). */
  readonly #shaped: boolean[] = [];

  constructor(native: Native, model: Handle, inputs: readonly TensorInfo[], outputs: readonly TensorInfo[]) {
    this.#native = native;
    const out = new BigUint64Array(1);
    check(native, native.symbols.er_request_new(model, out), "cannot create a request");
    this.#handle = native.handle(out[0]);
    collected.register(this, { native, handle: this.#handle }, this);
    this.#timing = new Float64Array(native.view(native.address(native.symbols.er_request_timing(this.#handle)), ER.TIMING_WORDS * 8));
    try {
      this.#inputs = inputs.map((info, i) => this.#slot(ER_INPUT, i, info));
      this.#outputs = outputs.map((info, i) => this.#slot(ER_OUTPUT, i, info));
    } catch (e) {
      this.free();
      throw e;
    }
    this.#outputTensors = this.#outputs.map((s, i) => this.#tensor(i, s));
    this.#dynamicOutputs = outputs.flatMap((info, i) => info.dynamic ? [i] : []);
  }

  /** The native handle. */
  get handle(): Handle {
    return this.#handle;
  }

  /** True once free() was called. */
  get freed(): boolean {
    return this.#freed;
  }

  /**
   * True when a program moved native memory out of one of this request's views (the buffer's
   * transfer(), or a transfer list of postMessage / structuredClone): the buffer is detached and
   * edgerun did not do it. That memory now backs an ArrayBuffer edgerun cannot see, so it must
   * never be freed or replaced: free() keeps it, and the model moves to a new request.
   */
  get escaped(): boolean {
    for (const slot of this.#inputs) if (!slot.emptied && isDetached(slot.buffer)) return true;
    for (const slot of this.#outputs) if (!slot.emptied && isDetached(slot.buffer)) return true;
    return false;
  }

  #slot(io: number, index: number, info: TensorInfo): Slot {
    const s = this.#native.symbols;
    const w = this.#words;
    check(this.#native, s.er_request_tensor(this.#handle, io, index, w));
    const rank = Number(w[RT_RANK]);
    const shape: number[] = [];
    const strides: number[] = [];
    for (let d = 0; d < rank; d++) {
      shape.push(Number(BigInt.asIntN(64, w[RT_SHAPE + d])));
      strides.push(Number(BigInt.asIntN(64, w[RT_STRIDES + d])));
    }
    const address = w[RT_DATA];
    const bytes = Number(w[RT_BYTES]);
    const buffer = this.#native.view(address, bytes);
    owners.set(buffer, this);
    const dense = denseStrides(shape, dtypeSize(info.dtype));
    return {
      info,
      shape,
      strides,
      address,
      bytes,
      view: typedView(info.dtype, buffer, 0, Math.floor(bytes / dtypeSize(info.dtype))),
      raw: new Uint8Array(buffer),
      buffer,
      padded: shape.some((d, k) => d > 1 && strides[k] >= 0 && strides[k] !== dense[k]),
    };
  }

  #tensor(index: number, slot: Slot): Tensor {
    const source: TensorSource = {
      read: (dst, float32) => this.#read(index, slot, dst, float32),
    };
    return new Tensor({
      name: slot.info.name,
      dtype: slot.info.dtype,
      shape: slot.shape,
      strides: slot.strides,
      data: slot.view,
      quantization: slot.info.quantization,
    }, source);
  }

  #read(index: number, slot: Slot, dst: TypedArray, float32: boolean): void {
    if (this.#freed) throw new EdgerunError("CLOSED", "this tensor's model was closed; copy() outputs you keep");
    if (this.#outputs[index] !== slot) {
      throw new EdgerunError(
        "STATE",
        `output '${slot.info.name}' was replaced by a later run with another shape; copy() outputs you keep`,
      );
    }
    const mode = float32 ? COPY_FLOAT32 : COPY_DENSE;
    check(this.#native, this.#native.symbols.er_request_read(this.#handle, index, dst, dst.byteLength, mode));
  }

  /** Current view of input i (zero-copy). */
  inputView(i: number): TypedArray {
    return this.#inputs[i].view;
  }

  /** Current shape of input i. */
  inputShape(i: number): readonly number[] {
    return this.#inputs[i].shape;
  }

  /** Current strides (bytes) of input i. */
  inputStrides(i: number): readonly number[] {
    return this.#inputs[i].strides;
  }

  /** Output tensors (views valid until the next run). */
  get outputs(): readonly Tensor[] {
    return this.#outputTensors;
  }

  /** True once input i was given a shape (setShape), so its shape is no longer the declared one. */
  inputShaped(i: number): boolean {
    return this.#shaped[i] === true;
  }

  /** Sets the shape of a dynamic input, reallocating only when it changes. */
  setShape(i: number, shape: readonly number[]): void {
    const slot = this.#inputs[i];
    this.#shaped[i] = true;
    if (slot.shape.length === shape.length && slot.shape.every((d, k) => d === shape[k])) return;
    const dims = new BigInt64Array(shape.map((d) => BigInt(d)));
    check(this.#native, this.#native.symbols.er_request_set_shape(this.#handle, i, dims, dims.length));
    detach(slot);
    this.#inputs[i] = this.#slot(ER_INPUT, i, slot.info);
  }

  /** Writes a checked feed into input i (dense data; padded layouts and quantization go through the shim). */
  feed(i: number, feed: CheckedFeed): void {
    if (feed.image) return this.#feedImage(i, feed.image);
    if (this.#inputs[i].info.dynamic) this.setShape(i, feed.shape);
    if (feed.quantize) this.writeFloat32(i, feed.data as Float32Array);
    else this.write(i, feed.data);
  }

  /** Converts an image into input i natively; an NV12 frame's Y input writes both planes. */
  #feedImage(i: number, { feed, role, partner }: ImageBinding): void {
    if (role === "uv") return;
    const shape = (k: number, r: "y" | "uv" | "image") => {
      const info = this.#inputs[k].info;
      if (info.dynamic) this.setShape(k, feed.shapeFor(info, r));
    };
    shape(i, role);
    if (role === "y") shape(partner, "uv");
    feed.writeTo(this.#native, this.#handle, i, partner);
  }

  /** Writes dense data of the input's dtype into input i. */
  write(i: number, data: TypedArray): void {
    if (isDetached(bufferOf(data))) throw detachedFeed(this.#inputs[i].info);
    this.copyIn(i, data);
  }

  /** write() of data whose buffer was just found attached (checkDense): the run(x) fast path. */
  copyIn(i: number, data: TypedArray): void {
    const slot = this.#inputs[i];
    if (slot.padded) {
      check(this.#native, this.#native.symbols.er_request_write(this.#handle, i, data, byteLengthOf(data), COPY_DENSE));
    } else if (data.constructor === slot.view.constructor) {
      (slot.view as Uint8Array).set(data as Uint8Array);
    } else {
      slot.raw.set(bytesOf(data));
    }
  }

  /** Quantizes (or converts) float32 values into input i. */
  writeFloat32(i: number, values: Float32Array): void {
    if (isDetached(bufferOf(values))) throw detachedFeed(this.#inputs[i].info);
    check(this.#native, this.#native.symbols.er_request_write(this.#handle, i, values, byteLengthOf(values), COPY_FLOAT32));
  }

  /** True after a sync run of this request failed (until the next one succeeds). */
  failed = false;

  /**
   * True after a submitted run of this request was cancelled or timed out (until one succeeds):
   * its task may still be on the device, and the request's next run waits for it. Pools take
   * another request first.
   */
  unsettled = false;

  /** False once the backend says this request can never run again (er_request_usable): drop it. */
  get usable(): boolean {
    return !this.#freed && this.#native.symbols.er_request_usable(this.#handle) !== 0;
  }

  /** True while a submitted run is unfinished. */
  get busy(): boolean {
    return this.#native.symbols.er_request_busy(this.#handle) !== 0;
  }

  /** Milliseconds the native side spent in the last run. */
  get lastRunMs(): number {
    return this.#timing[0];
  }

  /** When the last run ended, on the clock of er_clock_ms. */
  get lastRunEndMs(): number {
    return this.#timing[1];
  }

  /**
   * Starts an asynchronous run; returns the native status (its completion posts tag to the queue
   * of `completions`, this realm's router, which the request is pointed at once).
   */
  submit(schedule: Schedule, tag: number, completions: { adopt(request: Handle): void }): number {
    if (this.#queue !== completions) {
      completions.adopt(this.#handle);
      this.#queue = completions;
    }
    return this.#native.symbols.er_request_submit(
      this.#handle,
      schedule.priority,
      schedule.customId,
      schedule.coreMask,
      schedule.timeoutMs,
      tag,
    );
  }

  /** Collects a completed asynchronous run: its status; on success outputs are current. */
  complete(): number {
    const status = this.#native.symbols.er_request_finish(this.#handle);
    this.#refreshDynamic(status);
    return status;
  }

  /** Asks a running asynchronous run to stop early (where the backend can). */
  cancel(): void {
    this.#native.symbols.er_request_cancel(this.#handle);
  }

  /**
   * Runs synchronously; outputs are refreshed where their shape may have changed. Returns the
   * request's frozen Outputs: the same object for as long as its tensors stay the same.
   */
  run(schedule: Schedule): Outputs {
    const status = this.#native.symbols.er_request_run(
      this.#handle,
      schedule.priority,
      schedule.customId,
      schedule.coreMask,
      schedule.timeoutMs,
    );
    this.#refreshDynamic(status);
    this.failed = status !== 0;
    if (status !== 0) check(this.#native, status);
    if (this.#outputList === undefined) {
      const list = new Outputs();
      for (const t of this.#outputTensors) list.push(t);
      this.#outputList = Object.freeze(list);
    }
    return this.#outputList;
  }

  /**
   * After every run, failed ones too: a run that fails after the backend replaced some dynamic
   * outputs (ort releases the old values as it collects the new ones) must still empty their views.
   */
  #refreshDynamic(status: number): void {
    for (let k = 0; k < this.#dynamicOutputs.length; k++) {
      if (status === 0) this.#refreshOutput(this.#dynamicOutputs[k]);
      else {
        try {
          this.#refreshOutput(this.#dynamicOutputs[k]);
        } catch {
          // The run's own error is the one to report; the view goes, whatever its memory became.
          const slot = this.#outputs[this.#dynamicOutputs[k]];
          detach(slot);
          slot.emptied = true;
        }
      }
    }
  }

  #refreshOutput(i: number): void {
    const old = this.#outputs[i];
    const w = this.#words;
    check(this.#native, this.#native.symbols.er_request_tensor(this.#handle, ER_OUTPUT, i, w));
    const rank = Number(w[RT_RANK]);
    const sameShape = w[RT_DATA] === old.address && Number(w[RT_BYTES]) === old.bytes &&
      old.shape.every((d, k) => d === Number(BigInt.asIntN(64, w[RT_SHAPE + k]))) && rank === old.shape.length;
    if (sameShape && !old.emptied) return;
    // The run released the old memory (or will reuse it for another shape): empty its views.
    detach(old);
    this.#outputs[i] = this.#slot(ER_OUTPUT, i, old.info);
    this.#outputTensors[i] = this.#tensor(i, this.#outputs[i]);
    this.#outputList = undefined;
  }

  /**
   * Frees the native buffers; every view of this request is detached first. Memory a program
   * moved out of a view (see escaped) is kept instead, for the rest of the process.
   */
  free(): void {
    if (this.#freed) return;
    const slots = [...(this.#inputs ?? []), ...(this.#outputs ?? [])];
    if (slots.length && this.escaped) return this.keep();
    this.#freed = true;
    collected.unregister(this);
    for (const slot of slots) detach(slot);
    detach({ buffer: this.#timing.buffer as ArrayBuffer });
    this.#native.symbols.er_request_free(this.#handle);
  }

  /** Never frees this request: its memory backs a buffer outside edgerun's reach. */
  keep(): void {
    if (this.#freed) return;
    this.#freed = true;
    collected.unregister(this);
    if (warnedEscape) return;
    warnedEscape = true;
    console.warn(
      "edgerun: the ArrayBuffer of a view was transferred (transfer(), postMessage or structuredClone), so its " +
        "native memory is kept until the process exits; copy() the values you move instead (docs/lifetimes.md)",
    );
  }
}

/** Checks one feed against an input and returns its dense data and shape. */
export function checkFeed(info: TensorInfo, feed: unknown, where: string): CheckedFeed {
  let data: unknown = feed;
  let shape: readonly number[] | undefined;
  let quantize = false;
  if (ArrayBuffer.isView(feed)) {
    // a TypedArray: checked below
  } else if (feed instanceof Tensor) {
    data = feed.padded ? feed.dense() : feed.data;
    shape = feed.shape;
  } else if (isTensorFeed(feed)) {
    data = feed.data;
    // A copy, checked and kept: a queued run must not see the caller's array change later.
    shape = Array.isArray(feed.shape) ? Object.freeze(feed.shape.map((d) => typeof d === "number" ? d + 0 : d)) : feed.shape;
    quantize = feed.quantize === true;
    if (shape !== undefined && (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))) {
      throw new TypeError(`${where}: shape must be an array of non-negative integers (below 2^53)`);
    }
  }
  const view = checkBuffer(info, data, where);
  if (quantize) {
    if (!(view instanceof Float32Array)) {
      throw new TypeError(`${where}: quantize needs a Float32Array, got ${view.constructor.name}`);
    }
    if (!info.quantization && !["float16", "float32", "float64"].includes(info.dtype)) {
      throw new TypeError(`${where} is ${info.dtype} without quantization parameters: nothing to quantize with`);
    }
  } else if (!acceptsArray(info.dtype, view)) {
    throw new TypeError(
      `${where} expects ${info.dtype} (${expectedArrayName(info.dtype)}), got ${view.constructor.name}`,
    );
  }
  if (info.unknownRank) return { data: checkLength(view, unknownRankShape(shape, where), where), shape: shape!, quantize };
  const finalShape = shape ?? inferShape(info, lengthOf(view), where);
  if (finalShape === info.shape) return { data: checkLength(view, finalShape, where), shape: finalShape, quantize };
  if (finalShape.length !== info.shape.length) {
    throw new RangeError(`${where} has rank ${info.shape.length} (shape ${fmtShape(info.shape)}), got ${fmtShape(finalShape)}`);
  }
  for (let d = 0; d < finalShape.length; d++) {
    if (info.shape[d] >= 0 && info.shape[d] !== finalShape[d]) {
      throw new RangeError(`${where} expects shape ${fmtShape(info.shape)}, got ${fmtShape(finalShape)}`);
    }
  }
  return { data: checkLength(view, finalShape, where), shape: finalShape, quantize };
}

/**
 * The run(x) fast path: a TypedArray feed for an input of fixed shape, checked as checkFeed
 * checks it (type, buffer, element count) without building a CheckedFeed.
 */
export function checkDense(info: TensorInfo, feed: ArrayBufferView, where: string): TypedArray {
  const view = checkBuffer(info, feed, where);
  if (!acceptsArray(info.dtype, view)) {
    throw new TypeError(`${where} expects ${info.dtype} (${expectedArrayName(info.dtype)}), got ${view.constructor.name}`);
  }
  return checkLength(view, info.shape, where);
}

/** A TypedArray (not a DataView) over a live, fixed-length buffer. */
function checkBuffer(info: TensorInfo, data: unknown, where: string): TypedArray {
  if (!ArrayBuffer.isView(data) || data instanceof DataView) {
    throw new TypeError(`${where} must be a ${expectedArrayName(info.dtype)}, got ${describeValue(data)}`);
  }
  const buffer = bufferOf(data) as ArrayBuffer & { resizable?: boolean; growable?: boolean };
  if (isDetached(buffer)) {
    throw new TypeError(`${where}: the ArrayBuffer is detached`);
  }
  // A queued run copies its feeds in later: a buffer that can shrink by then would feed stale data.
  if (buffer.resizable || buffer.growable) {
    throw new TypeError(`${where}: resizable and growable buffers are not accepted; copy the data into a fixed-length one`);
  }
  return data as TypedArray;
}

function checkLength(view: TypedArray, shape: readonly number[], where: string): TypedArray {
  const n = elementCount(shape);
  const length = lengthOf(view);
  if (length !== n) {
    throw new RangeError(`${where} expects ${n} elements (shape ${fmtShape(shape)}), got ${length}`);
  }
  return view;
}

/** An input of unknown rank takes the feed's shape, which must be given (1 to 10 dimensions). */
function unknownRankShape(shape: readonly number[] | undefined, where: string): readonly number[] {
  if (shape === undefined) {
    throw new TypeError(`${where} has no declared shape (any rank): pass { data, shape }`);
  }
  if (shape.length < 1 || shape.length > MAX_DIMS) {
    throw new RangeError(`${where} takes 1 to ${MAX_DIMS} dimensions, got ${fmtShape(shape)}`);
  }
  return shape;
}

function inferShape(info: TensorInfo, length: number, where: string): readonly number[] {
  if (!info.dynamic) return info.shape;
  const unknown = info.shape.filter((d) => d < 0).length;
  if (unknown === 0) return info.shape;
  if (unknown > 1) {
    throw new TypeError(
      `${where} has shape ${fmtShape(info.shape)} with ${unknown} dynamic dimensions: pass { data, shape }`,
    );
  }
  const known = info.shape.reduce((a, d) => d >= 0 ? a * d : a, 1);
  if (known === 0 || length % known !== 0) {
    throw new RangeError(`${where} expects a multiple of ${known} elements (shape ${fmtShape(info.shape)}), got ${length}`);
  }
  return info.shape.map((d) => d >= 0 ? d : length / known);
}

function isTensorFeed(v: unknown): v is TensorFeed {
  return typeof v === "object" && v !== null && !ArrayBuffer.isView(v) && "data" in v &&
    ("shape" in v || "quantize" in v) && ArrayBuffer.isView((v as TensorFeed).data);
}

export { isTensorFeed };

/** "[1,3,?,?]" */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.map((d) => d < 0 ? "?" : String(d)).join(",")}]`;
}

/** A value's kind for error messages: its constructor name, typeof, or "null". */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return (v as object).constructor?.name ?? "object";
}

