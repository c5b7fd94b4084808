/**
 * .npy files (NumPy format 1.0-3.0): parse into a Tensor (through npyjs), serialize a Tensor.
 * @module
 */
import { parse as npyjsParse } from "./vendor/npyjs.ts";
import { EdgerunError } from "../ffi/errors.ts";
import { arrayConstructor, type DType, dtypeSize, type TypedArray } from "./dtype.ts";
import { elementCount, Tensor } from "./tensor.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** numpy type codes (npyjs reports them without the byte-order mark) by edgerun dtype. */
const CODE: Record<DType, string> = {
  float32: "f4",
  float64: "f8",
  float16: "f2",
  int8: "i1",
  uint8: "u1",
  int16: "i2",
  uint16: "u2",
  int32: "i4",
  uint32: "u4",
  int64: "i8",
  uint64: "u8",
  bool: "b1",
};
const DTYPE_OF = new Map(Object.entries(CODE).map(([dtype, code]) => [code, dtype as DType]));

/** Where the header text and the data of .npy bytes are (the preamble npyjs reads too). */
function layout(bytes: Uint8Array): { headerStart: number; dataStart: number } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new RangeError("not a .npy file (bad magic)");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return { headerStart: 10, dataStart: 10 + view.getUint16(8, true) };
  if (major !== 2 && major !== 3) throw new RangeError(`.npy version ${major} is not supported`);
  if (bytes.length < 12) throw new RangeError(".npy header is truncated");
  return { headerStart: 12, dataStart: 12 + view.getUint32(8, true) };
}

/**
 * npyjs 1.2.0 reads only little-endian and single-byte data (a '>' descr is "Unsupported dtype").
 * Big-endian files get their own path: a copy with the data byte-swapped and the descr's '>'
 * turned into '<' (same header length), which npyjs then reads like any other file.
 */
function littleEndianCopy(bytes: Uint8Array, headerStart: number, dataStart: number): Uint8Array {
  const header = new TextDecoder("latin1").decode(bytes.subarray(headerStart, dataStart));
  const match = /'descr'\s*:\s*'>([a-z])(\d+)'/.exec(header);
  if (!match) return bytes;
  const copy = new Uint8Array(bytes);
  copy[headerStart + match.index + match[0].indexOf(">")] = "<".charCodeAt(0);
  const size = Number(match[2]);
  if (size > 1 && "fiu".includes(match[1])) {
    const end = dataStart + Math.floor((copy.length - dataStart) / size) * size;
    for (let at = dataStart; at < end; at += size) copy.subarray(at, at + size).reverse();
  }
  return copy;
}

/**
 * Parses the bytes of a .npy file into a tensor that owns its memory. Reads every dtype edgerun
 * supports, little- or big-endian, in C order.
 *
 * @throws {RangeError} when the bytes are not a well-formed .npy file (bad magic, truncated, ...).
 * @throws {EdgerunError} code UNSUPPORTED for Fortran order and dtypes edgerun has no type for.
 *
 * @example
 * ```ts
 * import { parseNpy } from "@edgerun/edgerun";
 * import { readFileSync } from "node:fs";
 * const tensor = parseNpy(readFileSync("input.npy"));
 * console.log(tensor.dtype, tensor.shape);
 * ```
 */
export function parseNpy(bytes: Uint8Array): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("parseNpy expects a Uint8Array");
  const { headerStart, dataStart } = layout(bytes);
  if (dataStart > bytes.length) throw new RangeError(".npy header is truncated");
  // A fresh buffer (new Uint8Array copies; a Node Buffer's slice() would not): npyjs views the
  // data from its offset to the end of the ArrayBuffer it is given.
  const own = littleEndianCopy(bytes, headerStart, dataStart);
  const buffer = (own === bytes ? new Uint8Array(bytes) : own).buffer;
  let parsed: ReturnType<typeof npyjsParse>;
  try {
    parsed = npyjsParse(buffer as ArrayBuffer, { convertFloat16: false });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/Unsupported dtype/.test(message)) throw unsupported(header(bytes, headerStart, dataStart));
    // TypedArray views over a data section that is not a whole number of elements.
    throw new RangeError(`.npy data is malformed or truncated: ${message}`);
  }
  const code = String(parsed.dtype);
  const dtype = DTYPE_OF.get(code);
  if (!dtype) throw unsupported(header(bytes, headerStart, dataStart));
  if (parsed.fortranOrder) {
    throw new EdgerunError("UNSUPPORTED", ".npy files in Fortran order are not supported; save in C order");
  }
  const shape = parsed.shape;
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`.npy shape [${shape}] is malformed`);
  const count = elementCount(shape);
  const available = Math.floor((bytes.length - dataStart) / dtypeSize(dtype));
  if (available < count) {
    throw new RangeError(`.npy data is truncated: ${count} elements of ${dtype} expected, ${available} present`);
  }
  return new Tensor({ dtype, shape, data: toTyped(dtype, parsed.data as unknown, count) });
}

function header(bytes: Uint8Array, start: number, end: number): string {
  return new TextDecoder("latin1").decode(bytes.subarray(start, end)).trim();
}

function unsupported(headerText: string): EdgerunError {
  const descr = /'descr'\s*:\s*('[^']*'|[^,]*)/.exec(headerText)?.[1] ?? headerText;
  return new EdgerunError(
    "UNSUPPORTED",
    `.npy dtype ${descr} is not supported; edgerun reads ${Object.keys(CODE).join(", ")}`,
  );
}

/**
 * npyjs's data as a dense array of dtype that owns exactly `count` elements: npyjs returns a
 * view to the end of the buffer (trailing bytes included), booleans as a plain Array, and
 * float16 as Uint16Array bits (wrapped as Float16Array where the runtime has it).
 */
function toTyped(dtype: DType, data: unknown, count: number): TypedArray {
  if (dtype === "bool") {
    const list = data as ArrayLike<boolean | number>;
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = list[i] ? 1 : 0;
    return out;
  }
  const view = data as Uint8Array;
  const size = dtypeSize(dtype);
  const bytes = new Uint8Array(view.buffer, view.byteOffset, count * size).slice();
  return new (arrayConstructor(dtype))(bytes.buffer, 0, count);
}

/**
 * Serializes a tensor (dense, C order) as .npy bytes, byte for byte what numpy's np.save writes
 * (format 1.0, or 2.0 for headers over 64 KiB; data aligned to 64 bytes). Quantized tensors are
 * written as their stored integers; use `toFloat32()` first for real values.
 *
 * @example
 * ```ts
 * import { toNpy, Tensor } from "@edgerun/edgerun";
 * const bytes = toNpy(new Tensor({ dtype: "float32", shape: [2], data: new Float32Array([1, 2]) }));
 * ```
 */
export function toNpy(tensor: Tensor): Uint8Array {
  if (!(tensor instanceof Tensor)) throw new TypeError("toNpy expects a Tensor");
  const code = CODE[tensor.dtype];
  if (!code) throw new EdgerunError("UNSUPPORTED", `dtype ${tensor.dtype} cannot be written as .npy`);
  const data = tensor.dense();
  const order = code.endsWith("1") ? "|" : "<"; // numpy marks single-byte types "not applicable"
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(", ")})`;
  const dict = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy: magic, version, length field, then the header (ending "\n") padded with spaces so
  // the data starts on a 64-byte boundary; version 2.0 when the length needs 32 bits.
  const padded = (preamble: number) => Math.ceil((preamble + dict.length + 1) / 64) * 64;
  const v1 = padded(10) - 10 <= 0xffff;
  const preamble = v1 ? 10 : 12;
  const total = padded(preamble);
  const text = dict.padEnd(total - preamble - 1, " ") + "\n";
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = v1 ? 1 : 2;
  const view = new DataView(out.buffer);
  if (v1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), preamble);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}
