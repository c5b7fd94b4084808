/**
 * Element types: names, native numbers, sizes and TypedArrays.
 * @module
 */
import { ER } from "../ffi/wire.ts";

/** Element types edgerun supports, by name, with the shim's numbers (ER_DTYPE_*). */
export const DTYPES = {
  float32: ER.DTYPE_FLOAT32,
  float64: ER.DTYPE_FLOAT64,
  float16: ER.DTYPE_FLOAT16,
  int8: ER.DTYPE_INT8,
  uint8: ER.DTYPE_UINT8,
  int16: ER.DTYPE_INT16,
  uint16: ER.DTYPE_UINT16,
  int32: ER.DTYPE_INT32,
  uint32: ER.DTYPE_UINT32,
  int64: ER.DTYPE_INT64,
  uint64: ER.DTYPE_UINT64,
  bool: ER.DTYPE_BOOL,
} as const satisfies Record<DType, number>;

/**
 * The name of an element type.
 *
 * @example
 * ```ts
 * import { type DType, open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const dtype: DType = model.inputs[0].dtype;
 * const quantized = dtype === "int8" || dtype === "uint8";
 * ```
 */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool";

/**
 * Float16Array where the runtime has one (else float16 data travels as Uint16Array bits).
 *
 * @example
 * ```ts
 * import { type Float16ArrayLike, open } from "@edgerun/edgerun";
 * using model = open("fp16.onnx");
 * const [y] = model.run();
 * const half = y.data as Float16ArrayLike | Uint16Array; // Uint16Array (raw bits) without Float16Array
 * console.log(y.toFloat32()); // the values, either way
 * ```
 */
export interface Float16ArrayLike extends ArrayBufferView {
  /**
   * Number of elements.
   *
   * @example
   * ```ts
   * import { type Float16ArrayLike, hasFloat16Array, open } from "@edgerun/edgerun";
   * using model = open("fp16.onnx");
   * const [y] = model.run();
   * if (hasFloat16Array) console.log((y.data as Float16ArrayLike).length === y.size);
   * ```
   */
  readonly length: number;
  /**
   * An element.
   *
   * @example
   * ```ts
   * import { type Float16ArrayLike, hasFloat16Array, open } from "@edgerun/edgerun";
   * using model = open("fp16.onnx");
   * const [y] = model.run();
   * if (hasFloat16Array) console.log((y.data as Float16ArrayLike)[0]);
   * ```
   */
  [index: number]: number;
  /**
   * A copy of elements [start, end).
   *
   * @example
   * ```ts
   * import { type Float16ArrayLike, hasFloat16Array, open } from "@edgerun/edgerun";
   * using model = open("fp16.onnx");
   * const [y] = model.run();
   * if (hasFloat16Array) console.log((y.data as Float16ArrayLike).slice(0, 4));
   * ```
   */
  slice(start?: number, end?: number): Float16ArrayLike;
}

/**
 * Any TypedArray edgerun reads or writes. float16 is a Float16Array or a Uint16Array of bits.
 *
 * @example
 * ```ts
 * import { open, type TypedArray } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const copies: TypedArray[] = model.inputs.map((input) => input.data.slice());
 * model.run(copies);
 * ```
 */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float16ArrayLike;

type ArrayConstructorOf = {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

const float16Ctor = (globalThis as { Float16Array?: ArrayConstructorOf }).Float16Array;

/**
 * True when float16 tensors are exposed as Float16Array (else Uint16Array).
 *
 * @example
 * ```ts
 * import { hasFloat16Array, open } from "@edgerun/edgerun";
 * using model = open("fp16.onnx");
 * const [y] = model.run();
 * console.log(hasFloat16Array ? "Float16Array" : "Uint16Array of float16 bits", y.data.constructor.name);
 * ```
 */
export const hasFloat16Array: boolean = float16Ctor !== undefined;

const constructors: Record<DType, ArrayConstructorOf> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: float16Ctor ?? Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const byNumber = new Map<number, DType>(Object.entries(DTYPES).map(([k, v]) => [v, k as DType]));

/** The dtype for a shim number, or undefined. */
export function dtypeFromNumber(n: number): DType | undefined {
  return byNumber.get(n);
}

/** Bytes per element. */
export function dtypeSize(dtype: DType): number {
  return constructors[dtype].BYTES_PER_ELEMENT;
}

/** The TypedArray constructor holding a dtype. */
export function arrayConstructor(dtype: DType): ArrayConstructorOf {
  return constructors[dtype];
}

/** A view of dtype over bytes [byteOffset, byteOffset + length * size). */
export function typedView(dtype: DType, buffer: ArrayBufferLike, byteOffset = 0, length?: number): TypedArray {
  const ctor = constructors[dtype];
  return new ctor(buffer, byteOffset, length ?? Math.floor((buffer.byteLength - byteOffset) / ctor.BYTES_PER_ELEMENT));
}

/** Whether a TypedArray may carry data of dtype (float16 also accepts Uint16Array bits). */
export function acceptsArray(dtype: DType, data: ArrayBufferView): boolean {
  const ctor = data.constructor;
  if (ctor === constructors[dtype]) return true;
  if (dtype === "float16") return ctor === Uint16Array || (float16Ctor !== undefined && ctor === float16Ctor);
  return false;
}

/** The constructor name(s) expected for a dtype, for error messages. */
export function expectedArrayName(dtype: DType): string {
  if (dtype === "float16") return float16Ctor ? "Float16Array or Uint16Array" : "Uint16Array";
  if (dtype === "bool") return "Uint8Array";
  return constructors[dtype].name;
}

/*
 * The engine's own length, byteLength, byteOffset and buffer of a TypedArray: a program can shadow
 * the properties on an array (Object.defineProperty), and a length handed to native code must be
 * the real one.
 */
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (name: string) => Object.getOwnPropertyDescriptor(typedArrayPrototype, name)!.get!;
const lengthGetter = intrinsic("length");
const byteLengthGetter = intrinsic("byteLength");
const byteOffsetGetter = intrinsic("byteOffset");
const bufferGetter = intrinsic("buffer");

/** The element count of a TypedArray, as the engine knows it. */
export function lengthOf(view: ArrayBufferView): number {
  return lengthGetter.call(view);
}

/** The byte length of a TypedArray, as the engine knows it. */
export function byteLengthOf(view: ArrayBufferView): number {
  return byteLengthGetter.call(view);
}

/** A plain Uint8Array over exactly the bytes of a TypedArray (its own properties ignored). */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(bufferGetter.call(view), byteOffsetGetter.call(view), byteLengthGetter.call(view));
}

/** The buffer of a TypedArray, as the engine knows it. */
export function bufferOf(view: ArrayBufferView): ArrayBufferLike {
  return bufferGetter.call(view);
}
