/**
 * The .npy reader of npyjs 1.2.0 (`parse` and what it calls), vendored as TypeScript so that
 * edgerun has no bare import: Deno loads mod.ts by path without an import map and Bun resolves
 * nothing from node_modules for it. Behaviour is npyjs's, unchanged (src/npy.ts relies on it:
 * little-endian only, data viewed from its offset to the end of the buffer, booleans as an
 * Array, float16 as Uint16Array bits with convertFloat16: false); types are added.
 *
 * npyjs, Copyright (c) Jordan Matelsky and contributors, Apache License 2.0
 * (http://www.apache.org/licenses/LICENSE-2.0).
 * @module
 */

/** What {@link parse} returns. */
export interface NpyArray {
  /** The data: a TypedArray over the buffer, an Array of booleans or of strings. */
  data: ArrayBufferView | boolean[] | string[];
  /** The shape from the header. */
  shape: number[];
  /** The type code without its byte-order character ("f4", "u1", ...). */
  dtype: string;
  /** Whether the header says Fortran order. */
  fortranOrder: boolean;
}

/** Options of {@link parse}. */
export interface Options {
  /** Convert float16 to float32 (default true). */
  convertFloat16?: boolean;
}

class StringFromCodePoint extends String {
  constructor(buf: ArrayBuffer, byteOffset: number, length?: number) {
    const uint32 = new Uint32Array(buf, byteOffset, length);
    super(String.fromCodePoint(...Array.from(uint32)));
  }
}

const textDecoder = new TextDecoder("latin1");

function readHeader(buf: ArrayBuffer): { headerOffset: number; headerLen: number } {
  const view = new DataView(buf);
  const magic = String.fromCharCode(
    view.getUint8(0),
    view.getUint8(1),
    view.getUint8(2),
    view.getUint8(3),
    view.getUint8(4),
    view.getUint8(5),
  );
  if (magic !== "\x93NUMPY") throw new Error("Not an .npy file");
  const major = view.getUint8(6);
  if (major <= 1) return { headerOffset: 10, headerLen: view.getUint16(8, true) };
  return { headerOffset: 12, headerLen: Number(view.getUint32(8, true)) };
}

function parseDict(dictStr: string): { dtype: string | undefined; fortranOrder: boolean; shape: number[] } {
  const dtype = /'descr'\s*:\s*'([^']+)'/.exec(dictStr)?.[1];
  const fortranOrder = /'fortran_order'\s*:\s*(True|False)/.exec(dictStr)?.[1] === "True";
  const shapeMatch = /'shape'\s*:\s*\(([^)]*)\)/.exec(dictStr)?.[1] ?? "";
  const shape = shapeMatch.split(",").map((s) => s.trim()).filter(Boolean).map((n) => Number(n));
  return { dtype, fortranOrder, shape };
}

function f16toF32(u16: number): number {
  const s = (u16 & 32768) >> 15;
  const e = (u16 & 31744) >> 10;
  const f = u16 & 1023;
  if (e === 0) return (s ? -1 : 1) * Math.pow(2, -14) * (f / Math.pow(2, 10));
  if (e === 31) return f ? NaN : s ? -Infinity : Infinity;
  return (s ? -1 : 1) * Math.pow(2, e - 15) * (1 + f / Math.pow(2, 10));
}

function dtypeToArray(dtype: string, buf: ArrayBuffer, offset: number, opts: Options): NpyArray["data"] {
  const little = dtype.startsWith("<") || dtype.startsWith("|");
  const code = little ? dtype.substring(1) : dtype;
  if (code[0] === "U") {
    const size = parseInt(code.substring(1));
    const all = String(new StringFromCodePoint(buf, offset));
    const strings: string[] = [];
    for (let i = 0; i < all.length; i += size) strings.push(all.substring(i, i + size).replace(/\0/g, ""));
    return strings;
  }
  switch (code) {
    case "b1": {
      if (!little) return new Uint8Array(buf, offset);
      const u8 = new Uint8Array(buf, offset);
      const bools = new Array<boolean>(u8.length);
      for (let i = 0; i < u8.length; i++) bools[i] = u8[i] !== 0;
      return bools;
    }
    case "i1":
      return new Int8Array(buf, offset);
    case "u1":
      return new Uint8Array(buf, offset);
    case "i2":
      return new Int16Array(buf, offset);
    case "u2":
      return new Uint16Array(buf, offset);
    case "i4":
      return new Int32Array(buf, offset);
    case "u4":
      return new Uint32Array(buf, offset);
    case "i8":
      return new BigInt64Array(buf, offset);
    case "u8":
      return new BigUint64Array(buf, offset);
    case "f4":
    case "c8":
      return new Float32Array(buf, offset);
    case "f8":
    case "c16":
      return new Float64Array(buf, offset);
    case "f2": {
      if (opts.convertFloat16 !== false) {
        const u16 = new Uint16Array(buf, offset);
        const f32 = new Float32Array(u16.length);
        for (let i = 0; i < u16.length; i++) f32[i] = f16toF32(u16[i]);
        return f32;
      }
      return new Uint16Array(buf, offset);
    }
    default:
      throw new Error(`Unsupported dtype: ${dtype}`);
  }
}

/** Parses the bytes of a .npy file (npyjs's `parse`). */
export function parse(buf: ArrayBuffer, opts: Options = {}): NpyArray {
  const { headerOffset, headerLen } = readHeader(buf);
  const header = textDecoder.decode(new Uint8Array(buf, headerOffset, headerLen)).trim();
  const { dtype, fortranOrder, shape } = parseDict(header);
  if (!dtype || !shape) throw new Error("Malformed .npy header");
  const data = dtypeToArray(dtype, buf, headerOffset + headerLen, opts);
  return { data, shape, dtype: dtype.slice(1), fortranOrder };
}
