/**
 * Writer and reference implementation for the ACL **simulator** model format ("ACLSIM1"), the
 * stand-in for Ascend `.om` files that the ACL simulator (tests/sim/acl/, built by `zig build sim`
 * into zig-out/sim/acl/libascendcl.so and zig-out/sim/acl9/{libacl_rt.so,libacl_mdl.so}) loads.
 * It is not the real OM format: only the first 4 bytes ("IMOD") match real .om files, so a
 * loader's content probe works on both. Format: tests/sim/acl/FORMAT.md.
 *
 * Each output is a documented function of the inputs, so {@link aclSimExpected} predicts the
 * simulator's output bytes exactly.
 *
 * Runtime-neutral TypeScript (no Deno/Bun APIs).
 * @module
 */
import { simCount, simF16Bits, simF16Value, simRoundHalfEven } from "./simfile.ts";

/** aclDataType values (CANN acl_base_rt.h) the simulator supports. */
export const AclDType = {
  FLOAT: 0,
  FLOAT16: 1,
  INT8: 2,
  INT32: 3,
  UINT8: 4,
  INT16: 6,
  UINT16: 7,
  UINT32: 8,
  INT64: 9,
  UINT64: 10,
  DOUBLE: 11,
  BOOL: 12,
  BF16: 27,
} as const;
export type AclDTypeLike = keyof typeof AclDType | number;

/** aclFormat values. */
export const AclFormat = {
  UNDEFINED: -1,
  NCHW: 0,
  NHWC: 1,
  ND: 2,
  NC1HWC0: 3,
  FRACTAL_Z: 4,
  NC1HWC0_C04: 12,
  FRACTAL_NZ: 29,
} as const;
export type AclFormatLike = keyof typeof AclFormat | number;

/** The name of the input the runtime adds to a model with gears (it is appended last). */
export const ACL_DYNAMIC_TENSOR_NAME = "ascend_mbatch_shape_data";

/** One input of a simulated model. */
export interface AclSimTensorSpec {
  /** 1..127 UTF-8 bytes, no NUL, unique among inputs (resp. outputs). */
  name: string;
  dtype: AclDTypeLike;
  /** Default ND. Reported only: the simulator treats every tensor as dense row-major. */
  format?: AclFormatLike;
  /**
   * 0..16 dims, each 1..2^31 or -1. -1 = set by the gear: every -1 dim takes the batch of a
   * dynamic-batch model; a dynamic-HW tensor has exactly two -1 dims, the first takes H, the second W.
   */
  dims: number[];
}

/** One output: `out[j] = store(a * v + b)` (two roundings), v per `op` (FORMAT.md section 3). */
export interface AclSimOutputSpec extends AclSimTensorSpec {
  /** "affine" (default): v = input `source` element j mod its length (source -1: v = j). "sum": v = Σ inputs. */
  op?: "affine" | "sum";
  /** Input index for "affine" (default 0), or -1 for the element index. */
  source?: number;
  /** Default 1. */
  a?: number;
  /** Default 0. */
  b?: number;
}

/** A whole model. At most one of dynamicBatch / dynamicHW. */
export interface AclSimModelSpec {
  inputs: AclSimTensorSpec[];
  outputs: AclSimOutputSpec[];
  /** Simulated run time (µs, default 0; ≤ 60 s). ACLSIM_LATENCY_US / simacl_set_latency_us override it. */
  latencyUs?: number;
  /** Extra random latency [0, jitterUs) per run (µs, default 0). */
  jitterUs?: number;
  /** Batch gears (1..2^20, unique, 1..100 of them). */
  dynamicBatch?: number[];
  /** [H, W] gears (1..2^20 each, unique, 1..100 of them). */
  dynamicHW?: [number, number][];
}

/** A gear for {@link aclSimExpected}: a batch value, or [H, W]. */
export type AclSimGear = number | [number, number];

export function aclDType(d: AclDTypeLike): number {
  const v = typeof d === "number" ? d : AclDType[d];
  if (v === undefined || aclElemSize(v) === 0) throw new Error(`unsupported aclDataType ${d}`);
  return v;
}

function aclFormat(f: AclFormatLike | undefined): number {
  if (f === undefined) return AclFormat.ND;
  return typeof f === "number" ? f : AclFormat[f];
}

/** Bytes per element (0 = unsupported). */
export function aclElemSize(dt: number): number {
  switch (dt) {
    case 2:
    case 4:
    case 12:
      return 1;
    case 1:
    case 27:
    case 6:
    case 7:
      return 2;
    case 0:
    case 3:
    case 8:
      return 4;
    case 9:
    case 10:
    case 11:
      return 8;
    default:
      return 0;
  }
}

/** dims of a tensor at a gear (-1 dims replaced); without a gear, as declared. */
export function aclSimDims(dims: readonly number[], gear?: AclSimGear): number[] {
  let hw = 0;
  return dims.map((d) => {
    if (d !== -1 || gear === undefined) return d;
    if (typeof gear === "number") return gear;
    return gear[hw++ & 1];
  });
}

function gearsOf(spec: AclSimModelSpec): AclSimGear[] {
  return spec.dynamicBatch ?? spec.dynamicHW ?? [];
}

/** What aclmdlGetInput/OutputSizeByIndex reports: the bytes at the largest gear. */
export function aclSimSize(spec: AclSimModelSpec, t: AclSimTensorSpec): number {
  const es = aclElemSize(aclDType(t.dtype));
  const gears = gearsOf(spec);
  const sizes = (gears.length ? gears : [undefined]).map((g) => simCount(aclSimDims(t.dims, g)) * es);
  return Math.max(...sizes);
}

/** The model's inputs as the runtime reports them: the declared ones, then the gear input if any. */
export function aclSimInputs(spec: AclSimModelSpec): AclSimTensorSpec[] {
  const extra: AclSimTensorSpec[] = spec.dynamicHW
    ? [{ name: ACL_DYNAMIC_TENSOR_NAME, dtype: "INT64", dims: [2] }]
    : spec.dynamicBatch
    ? [{ name: ACL_DYNAMIC_TENSOR_NAME, dtype: "INT64", dims: [1] }]
    : [];
  return [...spec.inputs, ...extra];
}

const enc = new TextEncoder();

/** Serialises a model to ACLSIM1 bytes (write them to a `.om` file, or pass to aclmdlLoadFromMem). */
export function writeAclSimModel(spec: AclSimModelSpec): Uint8Array {
  if (spec.dynamicBatch && spec.dynamicHW) throw new Error("one kind of gears per model");
  const parts: number[] = [];
  const bytes = (b: ArrayLike<number>) => {
    for (let i = 0; i < b.length; i++) parts.push(b[i]);
  };
  const dv = new DataView(new ArrayBuffer(8));
  const u32 = (v: number) => (dv.setUint32(0, v, true), bytes(new Uint8Array(dv.buffer, 0, 4)));
  const i32 = (v: number) => (dv.setInt32(0, v, true), bytes(new Uint8Array(dv.buffer, 0, 4)));
  const u64 = (v: number) => (dv.setBigUint64(0, BigInt(v), true), bytes(new Uint8Array(dv.buffer, 0, 8)));
  const i64 = (v: number) => (dv.setBigInt64(0, BigInt(v), true), bytes(new Uint8Array(dv.buffer, 0, 8)));
  const f64 = (v: number) => (dv.setFloat64(0, v, true), bytes(new Uint8Array(dv.buffer, 0, 8)));
  const name = (s: string) => {
    const b = enc.encode(s);
    parts.push(b.length & 0xff, b.length >> 8);
    bytes(b);
  };
  const tensor = (t: AclSimTensorSpec) => {
    name(t.name);
    i32(aclDType(t.dtype));
    i32(aclFormat(t.format));
    i32(t.dims.length);
    t.dims.forEach(i64);
  };
  bytes(enc.encode("IMOD"));
  bytes(enc.encode("ACLSIM1\0"));
  u32(1);
  u64(0); // fileSize, patched below
  u32(spec.inputs.length);
  u32(spec.outputs.length);
  u32(spec.latencyUs ?? 0);
  u32(spec.jitterUs ?? 0);
  u32(spec.dynamicBatch ? 1 : spec.dynamicHW ? 2 : 0);
  u32(gearsOf(spec).length);
  for (const g of spec.dynamicBatch ?? []) u64(g);
  for (const [h, w] of spec.dynamicHW ?? []) u64(h), u64(w);
  spec.inputs.forEach(tensor);
  for (const o of spec.outputs) {
    tensor(o);
    i32(o.op === "sum" ? 1 : 0);
    i32(o.source ?? 0);
    f64(o.a ?? 1);
    f64(o.b ?? 0);
  }
  const out = new Uint8Array(parts);
  new DataView(out.buffer).setBigUint64(16, BigInt(out.length), true);
  return out;
}

// ---- reference computation: must match tests/sim/acl/sim_acl_mdl.c bit for bit --------------

function load(view: DataView, off: number, dt: number): number {
  switch (dt) {
    case 0:
      return view.getFloat32(off, true);
    case 1:
      return simF16Value(view.getUint16(off, true));
    case 2:
      return view.getInt8(off);
    case 3:
      return view.getInt32(off, true);
    case 4:
      return view.getUint8(off);
    case 6:
      return view.getInt16(off, true);
    case 7:
      return view.getUint16(off, true);
    case 8:
      return view.getUint32(off, true);
    case 9:
      return Number(view.getBigInt64(off, true));
    case 10:
      return Number(view.getBigUint64(off, true));
    case 11:
      return view.getFloat64(off, true);
    case 12:
      return view.getUint8(off) !== 0 ? 1 : 0;
    case 27: {
      const f = new DataView(new ArrayBuffer(4));
      f.setUint32(0, view.getUint16(off, true) << 16 >>> 0, true);
      return f.getFloat32(0, true);
    }
    default:
      return 0;
  }
}

/** float64 -> bf16 bits: the upper half of (float)y rounded to nearest even; NaN -> 0x7fc0. */
export function aclBf16Bits(y: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setFloat32(0, y, true);
  const u = f.getUint32(0, true);
  if (Number.isNaN(Math.fround(y))) return ((u >>> 16) & 0x8000) | 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

const INT_RANGE: Record<number, [number, number]> = {
  2: [-128, 127],
  3: [-2147483648, 2147483647],
  4: [0, 255],
  6: [-32768, 32767],
  7: [0, 65535],
  8: [0, 4294967295],
};

function store(view: DataView, off: number, dt: number, y: number): void {
  switch (dt) {
    case 0:
      return view.setFloat32(off, y, true);
    case 1:
      return view.setUint16(off, simF16Bits(y), true);
    case 27:
      return view.setUint16(off, aclBf16Bits(y), true);
    case 11:
      return view.setFloat64(off, y, true);
    case 12:
      return view.setUint8(off, y !== 0 ? 1 : 0); // NaN counts as true
  }
  const v = Number.isNaN(y) ? 0 : simRoundHalfEven(y);
  if (dt === 9) {
    const q = v >= 2 ** 63 ? 2n ** 63n - 1n : v < -(2 ** 63) ? -(2n ** 63n) : BigInt(v);
    return view.setBigInt64(off, q, true);
  }
  if (dt === 10) {
    const q = v >= 2 ** 64 ? 2n ** 64n - 1n : v <= 0 ? 0n : BigInt(v);
    return view.setBigUint64(off, q, true);
  }
  const [lo, hi] = INT_RANGE[dt];
  const q = Math.min(Math.max(v, lo), hi);
  switch (dt) {
    case 2:
      return view.setInt8(off, q);
    case 3:
      return view.setInt32(off, q, true);
    case 4:
      return view.setUint8(off, q);
    case 6:
      return view.setInt16(off, q, true);
    case 7:
      return view.setUint16(off, q, true);
    case 8:
      return view.setUint32(off, q, true);
  }
}

/**
 * The exact bytes the simulator writes for each output, given the declared inputs' bytes (dense,
 * at least the gear's size; the gear input is not passed) and, for a model with gears, the gear.
 * Each result holds only this gear's elements (the simulator leaves the rest of a larger buffer as it was).
 */
export function aclSimExpected(spec: AclSimModelSpec, inputs: readonly Uint8Array[], gear?: AclSimGear): Uint8Array[] {
  if (gearsOf(spec).length && gear === undefined) throw new Error("a model with gears needs the gear");
  const g = gearsOf(spec).length ? gear : undefined;
  const ins = spec.inputs.map((t, k) => {
    const dt = aclDType(t.dtype);
    const len = simCount(aclSimDims(t.dims, g));
    const bytes = inputs[k];
    return { dt, len, es: aclElemSize(dt), view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  });
  return spec.outputs.map((o) => {
    const dt = aclDType(o.dtype);
    const es = aclElemSize(dt);
    const n = simCount(aclSimDims(o.dims, g));
    const out = new Uint8Array(n * es);
    const view = new DataView(out.buffer);
    const a = o.a ?? 1, b = o.b ?? 0, src = o.source ?? 0;
    for (let j = 0; j < n; j++) {
      let v = 0;
      if (o.op === "sum") {
        for (const x of ins) if (x.len) v = v + load(x.view, (j % x.len) * x.es, x.dt);
      } else if (src < 0) {
        v = j;
      } else if (ins[src].len) {
        const x = ins[src];
        v = load(x.view, (j % x.len) * x.es, x.dt);
      }
      let y = a * v;
      y = y + b;
      store(view, j * es, dt, y);
    }
    return out;
  });
}
