/**
 * Tensor descriptions and Tensor values.
 * @module
 */
import { acceptsArray, arrayConstructor, type DType, DTYPES, dtypeSize, expectedArrayName, type TypedArray } from "./dtype.ts";

/**
 * Quantization parameters: real = (q - zeroPoint) * scale, per tensor or per axis.
 *
 * @example
 * ```ts
 * import { open, type Quantization } from "@edgerun/edgerun";
 * using model = open("model.hbm");
 * const q: Quantization | null = model.outputs[0].quantization;
 * if (q) console.log(q.axis < 0 ? `scale ${q.scales[0]}` : `${q.scales.length} scales along axis ${q.axis}`);
 * ```
 */
export interface Quantization {
  /**
   * One scale per tensor, or one per index along `axis`.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const [y] = model.run();
   * const scale = y.quantization?.scales[0] ?? 1;
   * const first = Number(y.data[0]) * scale; // one value by hand; y.toFloat32() does them all
   * ```
   */
  readonly scales: Float32Array;
  /**
   * Zero points, same length as scales, or empty (all zero).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const q = model.inputs[0].quantization;
   * const zeroPoint = q && q.zeroPoints.length ? q.zeroPoints[0] : 0;
   * ```
   */
  readonly zeroPoints: Int32Array;
  /**
   * The axis scales apply along, or -1 for per-tensor.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const q = model.outputs[0].quantization;
   * const perChannel = q !== null && q.axis >= 0;
   * ```
   */
  readonly axis: number;
}

/**
 * What a model says about one of its inputs or outputs.
 *
 * @example
 * ```ts
 * import { open, type TensorInfo } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const show = (t: TensorInfo) => `${t.name}: ${t.dtype}[${t.shape.join(", ")}]`;
 * console.log(model.outputs.map(show).join("\n"));
 * ```
 */
export interface TensorInfo {
  /**
   * The tensor's name in the model.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const names = model.inputs.map((input) => input.name);
   * ```
   */
  readonly name: string;
  /**
   * Element type.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * if (model.inputs[0].dtype === "uint8") model.run(new Uint8Array(model.inputs[0].byteSize));
   * ```
   */
  readonly dtype: DType;
  /**
   * Dimensions; -1 marks a dimension known only at run time.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const [batch, channels, height, width] = model.inputs[0].shape; // -1 where dynamic
   * ```
   */
  readonly shape: readonly number[];
  /**
   * Byte step of each dimension; larger than dense when the device pads rows; -1 if dynamic.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const rowBytes = model.outputs[0].strides.at(-2); // bytes from one row to the next, padding included
   * ```
   */
  readonly strides: readonly number[];
  /**
   * Bytes allocated per request (0 if dynamic).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const input = new Float32Array(model.inputs[0].byteSize / Float32Array.BYTES_PER_ELEMENT);
   * model.run(input);
   * ```
   */
  readonly byteSize: number;
  /**
   * Quantization parameters, or null for a plain tensor.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const quantized = model.inputs.filter((input) => input.quantization !== null).map((input) => input.name);
   * ```
   */
  readonly quantization: Quantization | null;
  /**
   * True when some dimension is known only at run time.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const input = model.inputs[0];
   * if (input.dynamic) model.run({ data: new Float32Array(3 * 48 * 320), shape: [1, 3, 48, 320] });
   * ```
   */
  readonly dynamic: boolean;
  /**
   * True when even the number of dimensions is known only at run time (an ONNX input or output
   * declared without a shape); `shape` is then empty and a feed must give its shape.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * if (model.inputs[0].unknownRank) model.run({ data: new Float32Array(6), shape: [2, 3] });
   * ```
   */
  readonly unknownRank: boolean;
  /**
   * True when strides differ from the dense layout.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const padded = model.outputs.filter((output) => output.padded).map((output) => output.name);
   * ```
   */
  readonly padded: boolean;
}

/** Inits of copies that dense() laid out itself (checked by construction). */
const denseCopies = new WeakSet<object>();

/** Refuses a tensor whose elements (as its shape and strides place them) are not all in data. */
function checkLayout(dtype: DType, shape: readonly number[], strides: readonly number[], data: TypedArray): void {
  if (!Object.hasOwn(DTYPES, dtype)) throw new TypeError(`unknown dtype '${String(dtype)}'`);
  if (!ArrayBuffer.isView(data) || !acceptsArray(dtype, data)) {
    throw new TypeError(`a ${dtype} tensor's data must be a ${expectedArrayName(dtype)}`);
  }
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RangeError(`shape must list non-negative integers, got [${shape.join(", ")}]`);
  }
  if (strides.length !== shape.length || strides.some((st) => !Number.isSafeInteger(st) || st < 0)) {
    throw new RangeError(`strides must list ${shape.length} non-negative integers, got [${strides.join(", ")}]`);
  }
  if (shape.includes(0)) return;
  const size = dtypeSize(dtype);
  let last = 0;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
  if (last % size !== 0 || strides.some((st) => st % size !== 0)) {
    throw new RangeError(`strides [${strides.join(", ")}] are not multiples of the ${size}-byte element`);
  }
  if (last + size > data.byteLength) {
    throw new RangeError(
      `shape [${shape.join(", ")}] with strides [${strides.join(", ")}] reaches byte ${last + size}, ` +
        `past the data's ${data.byteLength} bytes`,
    );
  }
}

/** Dense byte strides of a shape. */
export function denseStrides(shape: readonly number[], elementSize: number): number[] {
  const strides = new Array<number>(shape.length);
  let step = elementSize;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/** Number of elements of a shape. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Reads the dense elements of a strided tensor (as a flat list of element byte offsets). */
function forEachOffset(shape: readonly number[], strides: readonly number[], visit: (offset: number, i: number) => void) {
  const n = elementCount(shape);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let offset = 0;
    for (let d = 0; d < shape.length; d++) offset += index[d] * strides[d];
    visit(offset, i);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

/** How a Tensor reaches the memory behind it (a request's buffer or its own copy). */
export interface TensorSource {
  /** Copies the dense elements into dst (bytes), or dequantizes/converts into a Float32Array. */
  read(dst: TypedArray, float32: boolean): void;
}

/**
 * A tensor value: a TypedArray over its memory plus shape, strides and quantization.
 * Output tensors of a run are views of the request's memory, valid until the next run of the
 * same request; {@link Tensor.copy} keeps one.
 *
 * @example
 * ```ts
 * import { open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const [y] = model.run(new Float32Array(6));
 * const kept = y.copy();  // survives the next run
 * console.log(kept.shape, kept.data);
 * ```
 */
export class Tensor {
  /**
   * The tensor's name (output name, or "" for a free-standing tensor).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (const output of model.run()) console.log(output.name, output.shape);
   * ```
   */
  readonly name: string;
  /**
   * Element type.
   *
   * @example
   * ```ts
   * import { Tensor } from "@edgerun/edgerun";
   * const t = new Tensor({ dtype: "int8", shape: [4], data: new Int8Array([1, -2, 3, -4]) });
   * console.log(t.dtype); // "int8"
   * ```
   */
  readonly dtype: DType;
  /**
   * Dimensions.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const [y] = model.run();
   * const [rows, columns] = y.shape;
   * ```
   */
  readonly shape: readonly number[];
  /**
   * Byte step of each dimension (padded tensors have larger steps than dense ones).
   *
   * @example
   * ```ts
   * import { Tensor } from "@edgerun/edgerun";
   * // two rows of 3 float32 values, each row padded to 16 bytes
   * const t = new Tensor({ dtype: "float32", shape: [2, 3], strides: [16, 4], data: new Float32Array(8) });
   * console.log(t.padded, t.dense().length); // true 6
   * ```
   */
  readonly strides: readonly number[];
  /**
   * Quantization parameters, or null.
   *
   * @example
   * ```ts
   * import { Tensor } from "@edgerun/edgerun";
   * const quantization = { scales: new Float32Array([0.5]), zeroPoints: new Int32Array([0]), axis: -1 };
   * const t = new Tensor({ dtype: "int8", shape: [2], data: new Int8Array([2, 4]), quantization });
   * console.log(t.toFloat32()); // Float32Array [1, 2]
   * ```
   */
  readonly quantization: Quantization | null;
  /**
   * The elements in memory order, padding included when strides are padded.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const [y] = model.run();
   * const probabilities = y.data as Float32Array; // a view: read it before the next run
   * ```
   */
  readonly data: TypedArray;
  #source: TensorSource | undefined;

  /**
   * Wraps data (a TypedArray of dtype) as a tensor; strides default to dense.
   *
   * @example
   * ```ts
   * import { Tensor } from "@edgerun/edgerun";
   * const t = new Tensor({ dtype: "float32", shape: [2, 3], data: new Float32Array(6) });
   * console.log(t.strides); // [12, 4]
   * ```
   */
  constructor(
    init: {
      name?: string;
      dtype: DType;
      shape: readonly number[];
      data: TypedArray;
      strides?: readonly number[];
      quantization?: Quantization | null;
    },
    source?: TensorSource,
  ) {
    this.name = init.name ?? "";
    this.dtype = init.dtype;
    this.shape = Object.freeze([...init.shape]);
    this.strides = Object.freeze([...(init.strides ?? denseStrides(init.shape, dtypeSize(init.dtype)))]);
    this.quantization = init.quantization ?? null;
    this.data = init.data;
    this.#source = source;
    // A request's tensors come from the shim, which checked their layout; a caller's must be
    // checked here: dense() and the shim read every element the strides reach.
    if (!source && !denseCopies.has(init)) checkLayout(this.dtype, this.shape, this.strides, this.data);
  }

  /**
   * Number of elements (padding excluded).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const [y] = model.run();
   * console.log(y.size, y.data.length); // data.length is larger when rows are padded
   * ```
   */
  get size(): number {
    return elementCount(this.shape);
  }

  /**
   * True when the data has padding between rows.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const [y] = model.run();
   * const values = y.padded ? y.dense() : y.data;
   * ```
   */
  get padded(): boolean {
    const dense = denseStrides(this.shape, dtypeSize(this.dtype));
    return this.shape.some((d, i) => d > 1 && dense[i] !== this.strides[i]);
  }

  /**
   * A dense copy of the elements (padding removed), owned by the caller.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const [y] = model.run();
   * const packed = y.dense(); // y.size elements, C order, no row padding
   * ```
   */
  dense(): TypedArray {
    const out = new (arrayConstructor(this.dtype))(this.size);
    if (this.#source) {
      this.#source.read(out, false);
      return out;
    }
    if (!this.padded) {
      // Byte copy: an element-wise set() would convert float16 bits held in a Uint16Array.
      const bytes = this.size * dtypeSize(this.dtype);
      new Uint8Array(out.buffer).set(new Uint8Array(this.data.buffer, this.data.byteOffset, bytes));
      return out;
    }
    const size = dtypeSize(this.dtype);
    const src = new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    const dst = new Uint8Array(out.buffer);
    forEachOffset(this.shape, this.strides, (offset, i) => dst.set(src.subarray(offset, offset + size), i * size));
    return out;
  }

  /**
   * The values as float32, dequantized when the tensor is quantized (a new array).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.hbm");
   * const [logits] = model.run();
   * const scores = logits.toFloat32(); // dequantized with the tensor's scale and zero point
   * ```
   */
  toFloat32(): Float32Array {
    if (this.#source && (this.quantization || this.dtype === "float32" || this.dtype === "float16")) {
      const out = new Float32Array(this.size);
      this.#source.read(out, true);
      return out;
    }
    const dense = this.dense();
    const out = new Float32Array(this.size);
    const q = this.quantization;
    if (!q) {
      if (this.dtype === "float16" && dense instanceof Uint16Array) {
        for (let i = 0; i < out.length; i++) out[i] = halfToFloat(dense[i]);
      } else {
        for (let i = 0; i < out.length; i++) out[i] = Number(dense[i]);
      }
      return out;
    }
    const axis = q.scales.length > 1 ? q.axis : -1;
    const inner = axis >= 0 ? elementCount(this.shape.slice(axis + 1)) : 1;
    const axisLen = axis >= 0 ? this.shape[axis] : 1;
    for (let i = 0; i < out.length; i++) {
      const k = axis >= 0 ? Math.floor(i / inner) % axisLen : 0;
      const zp = q.zeroPoints.length ? q.zeroPoints[q.zeroPoints.length > 1 ? k : 0] : 0;
      out[i] = (Number(dense[i]) - zp) * q.scales[k];
    }
    return out;
  }

  /**
   * An owned dense copy that stays valid after the next run.
   *
   * @example
   * ```ts
   * import { open, type Tensor } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const history: Tensor[] = [];
   * for (let i = 0; i < 3; i++) history.push(model.run()[0].copy());
   * ```
   */
  copy(): Tensor {
    const init = { name: this.name, dtype: this.dtype, shape: this.shape, data: this.dense(), quantization: this.quantization };
    denseCopies.add(init); // dense() made exactly this layout: no second check (runAsync copies every output)
    return new Tensor(init);
  }
}

/** IEEE 754 binary16 bits to a number (for float16 data held as Uint16Array bits). */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
