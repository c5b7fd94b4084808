/**
 * The acl tests' model description, written as the simulator's .om stand-in (tests/sim/acl/:
 * "IMOD" "ACLSIM1", version 1, then the tensors; each output is a * source + b elementwise, or
 * a * (sum of the inputs) + b).
 */

/** aclDataType numbers (docs/acl-behaviour.md). */
export const ACL_DTYPES = {
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

/** aclFormat numbers. */
export const ACL_FORMATS = { NCHW: 0, NHWC: 1, ND: 2, NC1HWC0: 3 } as const;

/** One tensor: -1 dims are set by the gear. */
export interface AclTensorSpec {
  name: string;
  dtype: keyof typeof ACL_DTYPES;
  format?: keyof typeof ACL_FORMATS;
  shape: number[];
}

/** An output: a * x + b of input `source` (-1: the element index), or of the sum of all inputs. */
export interface AclOutputSpec extends AclTensorSpec {
  op?: "affine" | "sum";
  source?: number;
  a?: number;
  b?: number;
}

/** A simulated model. */
export interface AclModelSpec {
  inputs: AclTensorSpec[];
  outputs: AclOutputSpec[];
  dynamic?: "batch" | "hw";
  /** batch: [1, 2, 4]; hw: [[224, 224], [448, 448]]. */
  gears?: (number | [number, number])[];
  latencyUs?: number;
  jitterUs?: number;
}

/** The bytes of a simulator model file. */
export function writeAclModelFile(spec: AclModelSpec): Uint8Array {
  const bytes: number[] = [];
  const view = new DataView(new ArrayBuffer(8));
  const put = (n: number) => {
    for (let i = 0; i < n; i++) bytes.push(view.getUint8(i));
  };
  const u16 = (v: number) => (view.setUint16(0, v, true), put(2));
  const u32 = (v: number) => (view.setUint32(0, v, true), put(4));
  const i32 = (v: number) => (view.setInt32(0, v, true), put(4));
  const u64 = (v: number) => (view.setBigUint64(0, BigInt(v), true), put(8));
  const i64 = (v: number) => (view.setBigInt64(0, BigInt(v), true), put(8));
  const f64 = (v: number) => (view.setFloat64(0, v, true), put(8));
  const text = (s: string) => bytes.push(...new TextEncoder().encode(s));
  const kind = spec.dynamic === "batch" ? 1 : spec.dynamic === "hw" ? 2 : 0;
  const gears = spec.gears ?? [];
  text("IMOD");
  text("ACLSIM1\0");
  u32(1);
  const sizeAt = bytes.length;
  u64(0);
  u32(spec.inputs.length);
  u32(spec.outputs.length);
  u32(spec.latencyUs ?? 0);
  u32(spec.jitterUs ?? 0);
  u32(kind);
  u32(gears.length);
  for (const g of gears) {
    if (Array.isArray(g)) (u64(g[0]), u64(g[1]));
    else u64(g);
  }
  const tensor = (t: AclTensorSpec) => {
    const name = new TextEncoder().encode(t.name);
    u16(name.length);
    bytes.push(...name);
    i32(ACL_DTYPES[t.dtype]);
    i32(ACL_FORMATS[t.format ?? "ND"]);
    i32(t.shape.length);
    for (const d of t.shape) i64(d);
  };
  for (const t of spec.inputs) tensor(t);
  for (const t of spec.outputs) {
    tensor(t);
    i32(t.op === "sum" ? 1 : 0);
    i32(t.source ?? 0);
    f64(t.a ?? 1);
    f64(t.b ?? 0);
  }
  const out = new Uint8Array(bytes);
  new DataView(out.buffer).setBigUint64(sizeAt, BigInt(out.length), true);
  return out;
}
