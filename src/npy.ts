/**
 * .npy files (NumPy format 1.0-3.0): parse into a Tensor, serialize a Tensor.
 * @module
 */
import { arrayConstructor, type DType, dtypeSize } from "./dtype.ts";
import { elementCount, Tensor } from "./tensor.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

const DESCR: Record<string, DType> = {
  "<f4": "float32",
  "<f8": "float64",
  "<f2": "float16",
  "|i1": "int8",
  "|u1": "uint8",
  "<i2": "int16",
  "<u2": "uint16",
  "<i4": "int32",
  "<u4": "uint32",
  "<i8": "int64",
  "<u8": "uint64",
  "|b1": "bool",
};
const DESCR_OF = Object.fromEntries(Object.entries(DESCR).map(([k, v]) => [v, k])) as Record<DType, string>;

/**
 * Parses the bytes of a .npy file (little-endian or single-byte dtypes, C order).
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
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new RangeError("not a .npy file (bad magic)");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new RangeError(".npy header is truncated");
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new RangeError(`.npy version ${major} is not supported`);
  }
  if (offset + headerLen > bytes.length) throw new RangeError(".npy header is truncated");
  const header = new TextDecoder().decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new RangeError(`.npy header is malformed: ${header.trim()}`);
  if (fortran === "True") throw new RangeError(".npy files in Fortran order are not supported; save with C order");
  const dtype = DESCR[descr] ?? (descr === "<b1" ? "bool" : undefined);
  if (!dtype) throw new RangeError(`.npy dtype '${descr}' is not supported (big-endian or non-numeric)`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`.npy shape (${shapeText}) is malformed`);
  const dataOffset = offset + headerLen;
  const count = elementCount(shape);
  const byteLength = count * dtypeSize(dtype);
  if (bytes.length - dataOffset < byteLength) {
    throw new RangeError(`.npy data is truncated: needs ${byteLength} bytes, has ${bytes.length - dataOffset}`);
  }
  // Copy so the tensor owns aligned memory independent of the file buffer.
  const buffer = bytes.slice(dataOffset, dataOffset + byteLength).buffer;
  const data = new (arrayConstructor(dtype))(buffer, 0, count);
  return new Tensor({ dtype, shape, data });
}

/**
 * Serializes a tensor (dense, C order) as .npy bytes (format 1.0).
 *
 * @example
 * ```ts
 * import { toNpy, Tensor } from "@edgerun/edgerun";
 * const bytes = toNpy(new Tensor({ dtype: "float32", shape: [2], data: new Float32Array([1, 2]) }));
 * ```
 */
export function toNpy(tensor: Tensor): Uint8Array {
  const data = tensor.dense();
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(", ")})`;
  let header = `{'descr': '${DESCR_OF[tensor.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so the data starts on a 64-byte boundary, header ends with "\n".
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}
