/**
 * Tensor descriptions and Tensor values.
 * @module
 */
import { arrayConstructor, type DType, dtypeSize, type TypedArray } from "./dtype.ts";

/** Quantization parameters: real = (q - zeroPoint) * scale, per tensor or per axis. */
export interface Quantization {
  /** One scale per tensor, or one per index along `axis`. */
  readonly scales: Float32Array;
  /** Zero points, same length as scales, or empty (all zero). */
  readonly zeroPoints: Int32Array;
  /** The axis scales apply along, or -1 for per-tensor. */
  readonly axis: number;
}

/** What a model says about one of its inputs or outputs. */
export interface TensorInfo {
  /** The tensor's name in the model. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions; -1 marks a dimension known only at run time. */
  readonly shape: readonly number[];
  /** Byte step of each dimension; larger than dense when the device pads rows; -1 if dynamic. */
  readonly strides: readonly number[];
  /** Bytes allocated per request (0 if dynamic). */
  readonly byteSize: number;
  /** Quantization parameters, or null for a plain tensor. */
  readonly quantization: Quantization | null;
  /** True when some dimension is known only at run time. */
  readonly dynamic: boolean;
  /** True when strides differ from the dense layout. */
  readonly padded: boolean;
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
  /** The tensor's name (output name, or "" for a free-standing tensor). */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Byte step of each dimension (padded tensors have larger steps than dense ones). */
  readonly strides: readonly number[];
  /** Quantization parameters, or null. */
  readonly quantization: Quantization | null;
  /** The elements in memory order, padding included when strides are padded. */
  readonly data: TypedArray;
  #source: TensorSource | undefined;

  /** Wraps data (a TypedArray of dtype) as a tensor; strides default to dense. */
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
  }

  /** Number of elements (padding excluded). */
  get size(): number {
    return elementCount(this.shape);
  }

  /** True when the data has padding between rows. */
  get padded(): boolean {
    const dense = denseStrides(this.shape, dtypeSize(this.dtype));
    return this.shape.some((d, i) => d > 1 && dense[i] !== this.strides[i]);
  }

  /** A dense copy of the elements (padding removed), owned by the caller. */
  dense(): TypedArray {
    const out = new (arrayConstructor(this.dtype))(this.size);
    if (this.#source) {
      this.#source.read(out, false);
      return out;
    }
    if (!this.padded) {
      (out as Uint8Array).set(this.data as Uint8Array);
      return out;
    }
    const size = dtypeSize(this.dtype);
    const src = new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    const dst = new Uint8Array(out.buffer);
    forEachOffset(this.shape, this.strides, (offset, i) => dst.set(src.subarray(offset, offset + size), i * size));
    return out;
  }

  /** The values as float32, dequantized when the tensor is quantized (a new array). */
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
      for (let i = 0; i < out.length; i++) out[i] = Number(dense[i]);
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

  /** An owned dense copy that stays valid after the next run. */
  copy(): Tensor {
    return new Tensor({
      name: this.name,
      dtype: this.dtype,
      shape: this.shape,
      data: this.dense(),
      quantization: this.quantization,
    });
  }
}
