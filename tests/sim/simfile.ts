/**
 * Writer and reference implementation for the hbDNN **simulator** model format ("HBSIM1").
 *
 * The simulator (tests/sim/sim_dnn.c + sim_ucp.c, built by `zig build sim` into
 * zig-out/sim/{libdnn.so,libhbucp.so}) is a test double of the RDK S100 runtime. Its "models"
 * are not neural networks: each output element is a documented affine map of one input, so
 * tests can predict results exactly with {@link simExpected}. Format: tests/sim/FORMAT.md.
 *
 * Runtime-neutral TypeScript: no Deno/Bun APIs, no imports.
 * @module
 */

/** S100 (UCP 3.13.6) hbDNNDataType numbering. */
export const SimDType = {
  S4: 0,
  U4: 1,
  S8: 2,
  U8: 3,
  F16: 4,
  S16: 5,
  U16: 6,
  F32: 7,
  S32: 8,
  U32: 9,
  F64: 10,
  S64: 11,
  U64: 12,
  BOOL8: 13,
} as const;

/** A dtype given by name ("S8") or by its S100 number (2). */
export type SimDTypeLike = keyof typeof SimDType | number;

/** hbDNNQuantiType SCALE parameters. Only integer dtypes may be quantized. */
export interface SimQuant {
  /** One scale (per-tensor) or one per index of `axis` (per-axis). Stored as float32, must be > 0. */
  scales: number[];
  /** int32 zero points: omitted/empty = none, else exactly one per scale. */
  zeroPoints?: number[];
  /** Reported quantizeAxis. Required (>= 0, a fixed dim of size scales.length) when per-axis. Default -1. */
  axis?: number;
}

/** One input tensor of a simulated model. */
export interface SimTensorSpec {
  /** Tensor name (1..255 UTF-8 bytes, no NUL). */
  name: string;
  /** Element type. S4/U4 are stored one element per byte in the simulator (value range -8..7 / 0..15). */
  dtype: SimDTypeLike;
  /**
   * validShape, 1..10 dims. -1 = dynamic: inputs get it from the caller before inference; an
   * output's -1 dim i is dim i of its source input in each run (its strides then all -1: dense).
   */
  shape: number[];
  /**
   * Byte stride per dim (may include padding). -1 = dynamic (inputs only), e.g. NV12 Y `[-1,-1,1,1]`.
   * Default: dense strides.
   */
  stride?: number[];
  /** alignedByteSize reported to the caller (-1: none, as for NV12 inputs). Default: the span (0 if dynamic). */
  alignedByteSize?: number;
  /** Quantization (quantiType SCALE); omitted = NONE. */
  quant?: SimQuant;
  /** quantizeAxis reported for a NONE tensor (default -1). Ignored when `quant` is given. */
  quantizeAxis?: number;
  /** Caller-filled strides (model stride -1) must be multiples of this (S100 Y/UV: 32). 0 = none. */
  dynStrideAlign?: number;
}

/** One output tensor: out[j] = a * in_source[j mod len(in_source)] + b (see {@link simExpected}). */
export interface SimOutputSpec extends SimTensorSpec {
  /** Input index read (dequantized) for each output element; -1 = use the element index j itself.
   * Default: 0 if the model has inputs, else -1. */
  source?: number;
  /** Multiplier (float64). Default 1. */
  a?: number;
  /** Offset (float64). Default 0. */
  b?: number;
}

/** One simulated model. Several can be packed in one file (one hbDNNPackedHandle_t). */
export interface SimModelSpec {
  /** Model name, unique in the file (1..255 bytes). */
  name: string;
  /** hbDNNGetCompileBpuCoreNum (1..4). Default 1. >1 forbids sync inference. */
  bpuCoreNum?: number;
  /** Simulated latency in microseconds (0..60e6). Default 0. hbSimSetLatencyUs overrides it. */
  latencyUs?: number;
  /** Simulated BPU "function calls" = preemption points (1..1000). Default 10. 1 = not preemptible. */
  functionCalls?: number;
  /** 0..64 inputs. */
  inputs: SimTensorSpec[];
  /** 1..64 outputs (no dynamic dims or strides). */
  outputs: SimOutputSpec[];
}

const ELEM_SIZE = [1, 1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1];
const MAX_SPAN = 2 ** 40;

/** Resolves a dtype name or number to the S100 number (throws on unknown). */
export function simDType(d: SimDTypeLike): number {
  const n = typeof d === "number" ? d : SimDType[d];
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 13) throw new Error(`simulator: unknown dtype ${d}`);
  return n;
}

/** Bytes per element in the simulator (S4/U4/BOOL8: 1). */
export function simElemSize(d: SimDTypeLike): number {
  return ELEM_SIZE[simDType(d)];
}

/** Dense (unpadded) byte strides of a fully known shape. */
export function simDenseStrides(shape: readonly number[], d: SimDTypeLike): number[] {
  const s = new Array<number>(shape.length);
  let acc = simElemSize(d);
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Bytes spanned by a known layout: offset of the last element + its size. */
export function simSpan(shape: readonly number[], stride: readonly number[], d: SimDTypeLike): number {
  let span = simElemSize(d);
  for (let i = 0; i < shape.length; i++) span += (shape[i] - 1) * stride[i];
  return span;
}

/** Number of elements of a shape. */
export function simCount(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

// ---- numerics: must match sim_dnn.c bit for bit ---------------------------------------------

/** Round half to even (what the simulator uses for every integer conversion). */
export function simRoundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** float64 -> IEEE binary16 bits, round to nearest even. */
export function simF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | simRoundHalfEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let q = simRoundHalfEven((a / 2 ** e) * 1024);
  if (q === 2048) {
    q = 1024;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | (q - 1024);
}

/** IEEE binary16 bits -> number. */
export function simF16Value(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1024 + m) * 2 ** (e - 25);
  return h & 0x8000 ? -v : v;
}

const INT_RANGE: Record<number, [number, number]> = {
  0: [-8, 7],
  1: [0, 15],
  2: [-128, 127],
  3: [0, 255],
  5: [-32768, 32767],
  6: [0, 65535],
  8: [-2147483648, 2147483647],
  9: [0, 4294967295],
};

/** The value an element of dtype `dt` holds after storing `v` unquantized (inputs you write). */
export function simStoredValue(dt: number, v: number | bigint): number {
  const x = Number(v);
  switch (dt) {
    case 4:
      return simF16Value(simF16Bits(x));
    case 7:
      return Math.fround(x);
    default:
      return x;
  }
}

function isIntType(dt: number): boolean {
  return dt !== 4 && dt !== 7 && dt !== 10 && dt !== 13;
}

/** Output element: float result y -> stored value (quantize, round half even, clamp). */
function storeOut(dt: number, y: number, q: SimQuant | undefined, ch: number): number {
  switch (dt) {
    case 4:
      return simF16Value(simF16Bits(y));
    case 7:
      return Math.fround(y);
    case 10:
      return y;
    case 13:
      return y !== 0 ? 1 : 0; // NaN counts as true, as in C
  }
  let v = y;
  if (q) {
    v = v / Math.fround(q.scales[ch]);
    if (q.zeroPoints && q.zeroPoints.length) v = v + q.zeroPoints[ch];
  }
  if (Number.isNaN(v)) v = 0;
  v = simRoundHalfEven(v);
  if (dt === 11) return v >= 2 ** 63 ? 2 ** 63 : v < -(2 ** 63) ? -(2 ** 63) : v + 0; // INT64_MAX reads as 2^63
  if (dt === 12) return v >= 2 ** 64 ? 2 ** 64 : v <= 0 ? 0 : v; // UINT64_MAX reads as 2^64
  const [lo, hi] = INT_RANGE[dt];
  return Math.min(Math.max(v, lo), hi) + 0; // + 0 turns -0 into 0
}

/** Input element: stored raw value -> dequantized float. */
function loadIn(raw: number, q: SimQuant | undefined, ch: number): number {
  if (!q) return raw;
  let v = raw;
  if (q.zeroPoints && q.zeroPoints.length) v = v - q.zeroPoints[ch];
  return v * Math.fround(q.scales[ch]);
}

/** Channel (index along `axis`) of dense logical index j in `shape`; 0 if not per-axis. */
function channelOf(j: number, shape: readonly number[], q: SimQuant | undefined): number {
  if (!q || q.scales.length <= 1) return 0;
  const axis = q.axis ?? -1;
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return Math.floor(j / inner) % shape[axis];
}

/**
 * Reference implementation of the simulator's computation.
 *
 * @param model the spec the file was written from
 * @param inputs per input, its dense logical values (raw stored values: quantized integers for
 *   quantized inputs; bigint allowed for 64-bit types). The element count defines len_k.
 * @param inputShapes actual shapes for inputs with dynamic (-1) dims; only needed for per-axis
 *   quantized inputs (to find each element's channel).
 * @returns per output, its dense logical values as stored by the simulator (quantized integers for
 *   integer outputs; F16/F32 values already rounded; S64/U64 saturation reads as 2^63 / 2^64).
 *   Compare with Object.is / === after decoding the output through its strides.
 */
export function simExpected(
  model: SimModelSpec,
  inputs: ReadonlyArray<ArrayLike<number | bigint>>,
  inputShapes?: ReadonlyArray<readonly number[] | undefined>,
): Float64Array[] {
  if (inputs.length !== model.inputs.length) {
    throw new Error(`simulator: ${model.name} has ${model.inputs.length} inputs, got ${inputs.length}`);
  }
  const deq: Float64Array[] = model.inputs.map((t, k) => {
    const dt = simDType(t.dtype);
    const vals = inputs[k];
    const shape = inputShapes?.[k] ?? t.shape;
    if (t.quant && t.quant.scales.length > 1 && shape.some((d) => d < 0)) {
      throw new Error(`simulator: input ${t.name} is per-axis quantized: pass its actual shape`);
    }
    if (shape.every((d) => d > 0) && simCount(shape) !== vals.length) {
      throw new Error(`simulator: input ${t.name} needs ${simCount(shape)} values, got ${vals.length}`);
    }
    if (vals.length === 0) throw new Error(`simulator: input ${t.name} is empty`);
    const out = new Float64Array(vals.length);
    for (let j = 0; j < vals.length; j++) {
      out[j] = loadIn(simStoredValue(dt, vals[j]), t.quant, channelOf(j, shape, t.quant));
    }
    return out;
  });
  return model.outputs.map((t) => {
    const dt = simDType(t.dtype);
    const src = t.source ?? (model.inputs.length ? 0 : -1);
    // A dynamic output's dim i is dim i of its source input in this run.
    const shape = t.shape.map((d, i) => {
      if (d !== -1) return d;
      const run = inputShapes?.[src]?.[i];
      if (run === undefined) throw new Error(`simulator: output ${t.name} is dynamic: pass its source's shape`);
      return run;
    });
    const n = simCount(shape);
    const a = t.a ?? 1;
    const b = t.b ?? 0;
    const res = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const v = src < 0 ? j : deq[src][j % deq[src].length];
      let y = a * v;
      y = y + b;
      res[j] = storeOut(dt, y, t.quant, channelOf(j, shape, t.quant));
    }
    return res;
  });
}

// ---- byte helpers for tests -------------------------------------------------------------------

function writeElem(dv: DataView, off: number, dt: number, v: number | bigint): void {
  switch (dt) {
    case 0:
    case 2:
      dv.setInt8(off, Number(v));
      return;
    case 1:
    case 3:
    case 13:
      dv.setUint8(off, Number(v));
      return;
    case 4:
      dv.setUint16(off, simF16Bits(Number(v)), true);
      return;
    case 5:
      dv.setInt16(off, Number(v), true);
      return;
    case 6:
      dv.setUint16(off, Number(v), true);
      return;
    case 7:
      dv.setFloat32(off, Number(v), true);
      return;
    case 8:
      dv.setInt32(off, Number(v), true);
      return;
    case 9:
      dv.setUint32(off, Number(v), true);
      return;
    case 10:
      dv.setFloat64(off, Number(v), true);
      return;
    case 11:
      dv.setBigInt64(off, BigInt(v), true);
      return;
    case 12:
      dv.setBigUint64(off, BigInt(v), true);
      return;
  }
}

function readElem(dv: DataView, off: number, dt: number): number {
  switch (dt) {
    case 0:
    case 2:
      return dv.getInt8(off);
    case 1:
    case 3:
    case 13:
      return dv.getUint8(off);
    case 4:
      return simF16Value(dv.getUint16(off, true));
    case 5:
      return dv.getInt16(off, true);
    case 6:
      return dv.getUint16(off, true);
    case 7:
      return dv.getFloat32(off, true);
    case 8:
      return dv.getInt32(off, true);
    case 9:
      return dv.getUint32(off, true);
    case 10:
      return dv.getFloat64(off, true);
    case 11:
      return Number(dv.getBigInt64(off, true));
    default:
      return Number(dv.getBigUint64(off, true));
  }
}

function offsetOf(j: number, shape: readonly number[], stride: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    off += (j % shape[d]) * stride[d];
    j = Math.floor(j / shape[d]);
  }
  return off;
}

/**
 * Lays dense logical values out through `stride` (default dense) into a new buffer of
 * `byteLength` (default: the span); padding bytes get `fill` (default 0). For building inputs.
 */
export function simEncodeTensor(
  dtype: SimDTypeLike,
  values: ArrayLike<number | bigint>,
  shape: readonly number[],
  stride?: readonly number[],
  byteLength?: number,
  fill = 0,
): Uint8Array {
  const dt = simDType(dtype);
  const st = stride ?? simDenseStrides(shape, dt);
  const bytes = new Uint8Array(byteLength ?? simSpan(shape, st, dt)).fill(fill);
  const dv = new DataView(bytes.buffer);
  const n = simCount(shape);
  if (values.length !== n) throw new Error(`simulator: need ${n} values, got ${values.length}`);
  for (let j = 0; j < n; j++) writeElem(dv, offsetOf(j, shape, st), dt, values[j]);
  return bytes;
}

/** Reads dense logical values through `stride` (default dense) - e.g. a raw padded output. */
export function simDecodeTensor(
  dtype: SimDTypeLike,
  bytes: Uint8Array,
  shape: readonly number[],
  stride?: readonly number[],
): Float64Array {
  const dt = simDType(dtype);
  const st = stride ?? simDenseStrides(shape, dt);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = simCount(shape);
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = readElem(dv, offsetOf(j, shape, st), dt);
  return out;
}

// ---- writer ------------------------------------------------------------------------------------

class Writer {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  n = 0;
  private room(k: number): number {
    if (this.n + k > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
      nb.set(this.buf);
      this.buf = nb;
      this.dv = new DataView(nb.buffer);
    }
    const at = this.n;
    this.n += k;
    return at;
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  u16(v: number): void {
    const at = this.room(2); // room() may replace this.dv
    this.dv.setUint16(at, v, true);
  }
  u32(v: number): void {
    const at = this.room(4); // room() may replace this.dv
    this.dv.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.room(4); // room() may replace this.dv
    this.dv.setInt32(at, v, true);
  }
  i64(v: number): void {
    const at = this.room(8); // room() may replace this.dv
    this.dv.setBigInt64(at, BigInt(v), true);
  }
  u64(v: number): void {
    const at = this.room(8); // room() may replace this.dv
    this.dv.setBigUint64(at, BigInt(v), true);
  }
  f32(v: number): void {
    const at = this.room(4); // room() may replace this.dv
    this.dv.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.room(8); // room() may replace this.dv
    this.dv.setFloat64(at, v, true);
  }
  name(s: string, what: string): void {
    const b = utf8(s);
    if (b.length < 1 || b.length > 255 || b.includes(0)) throw new Error(`simulator: bad ${what} name "${s}"`);
    this.u16(b.length);
    this.bytes(b);
  }
  setU64At(at: number, v: number): void {
    this.dv.setBigUint64(at, BigInt(v), true);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

/** UTF-8 encode without TextEncoder-dependence concerns (TextEncoder is in both runtimes, but keep it pure). */
function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

function isInt(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Throws (with a readable message) on anything the C loader would reject as HB_DNN_INVALID_MODEL. */
function writeTensor(
  w: Writer,
  t: SimTensorSpec,
  isOutput: boolean,
  inputs: readonly SimTensorSpec[],
  where: string,
): void {
  const nin = inputs.length;
  const fail = (m: string): never => {
    throw new Error(`simulator: ${where} "${t.name}": ${m}`);
  };
  const dt = simDType(t.dtype);
  const es = ELEM_SIZE[dt];
  const rank = t.shape.length;
  if (rank < 1 || rank > 10) fail("rank must be 1..10");
  const stride = t.stride ?? (t.shape.some((d) => d === -1) ? null : simDenseStrides(t.shape, dt));
  if (!stride) return fail("a dynamic shape needs an explicit stride");
  if (stride.length !== rank) fail("stride length != rank");
  let dynamic = false;
  const dynOut = isOutput && t.shape.includes(-1);
  for (const d of t.shape) {
    if (d === -1) dynamic = true;
    else if (!isInt(d, 1, 2 ** 30)) fail(`bad dim ${d}`);
  }
  for (const s of stride) {
    if (s === -1 && (!isOutput || dynOut)) dynamic = true;
    else if (dynOut) fail("a dynamic output's strides must all be -1 (dense at run time)");
    else if (!isInt(s, 1, MAX_SPAN)) fail(`bad stride ${s}`);
  }
  if (dynOut) {
    const src = (t as SimOutputSpec).source ?? (nin ? 0 : -1);
    t.shape.forEach((d, i) => {
      if (d === -1 && (src < 0 || src >= nin || i >= inputs[src].shape.length)) {
        fail(`dynamic dim ${i} needs a source input with at least ${i + 1} dims`);
      }
    });
  }
  for (let i = rank - 1; i >= 0; i--) {
    if (stride[i] === -1) continue;
    if (i === rank - 1) {
      if (stride[i] < es) fail("innermost stride smaller than the element");
      continue;
    }
    if (stride[i + 1] === -1 || t.shape[i + 1] === -1) fail(`fixed stride[${i}] over a dynamic inner dim`);
    if (stride[i] < stride[i + 1] * t.shape[i + 1]) fail(`stride[${i}] smaller than dense`);
  }
  const span = dynamic ? 0 : simSpan(t.shape, stride, dt);
  if (span > MAX_SPAN) fail("layout too large");
  const aligned = t.alignedByteSize ?? span;
  if (aligned !== -1 && (!isInt(aligned, 0, Number.MAX_SAFE_INTEGER) || aligned < span)) {
    fail("alignedByteSize smaller than the layout (or -1: not given)");
  }
  const q = t.quant;
  const axis = q ? (q.axis ?? -1) : (t.quantizeAxis ?? -1);
  if (!isInt(axis, -1, rank - 1)) fail("bad quantizeAxis");
  const zps = q?.zeroPoints ?? [];
  if (q) {
    if (!isIntType(dt)) fail("only integer dtypes can be quantized");
    if (q.scales.length < 1) fail("no scales");
    if (zps.length && zps.length !== q.scales.length) fail("zeroPoints length != scales length");
    if (q.scales.length > 1 && (axis < 0 || t.shape[axis] !== q.scales.length)) {
      fail("per-axis scales need axis with shape[axis] == scales.length");
    }
    for (const s of q.scales) if (!(Math.fround(s) > 0) || !Number.isFinite(Math.fround(s))) fail(`bad scale ${s}`);
    for (const z of zps) if (!isInt(z, -(2 ** 31), 2 ** 31 - 1)) fail(`bad zero point ${z}`);
  }
  const dynAlign = t.dynStrideAlign ?? 0;
  if (!isInt(dynAlign, 0, 4096)) fail("dynStrideAlign must be 0..4096");
  w.name(t.name, where);
  w.i32(dt);
  w.i32(rank);
  for (const d of t.shape) w.i32(d);
  for (const s of stride) w.i64(s);
  w.i64(aligned);
  w.i32(q ? 1 : 0);
  w.i32(axis);
  w.i32(q ? q.scales.length : 0);
  for (const s of q?.scales ?? []) w.f32(s);
  w.i32(zps.length);
  for (const z of zps) w.i32(z);
  w.u32(dynAlign);
  if (isOutput) {
    const o = t as SimOutputSpec;
    const src = o.source ?? (nin ? 0 : -1);
    const a = o.a ?? 1;
    const b = o.b ?? 0;
    if (!isInt(src, -1, nin - 1)) fail(`source ${src} is not an input index or -1`);
    if (!Number.isFinite(a) || !Number.isFinite(b)) fail("a and b must be finite");
    w.i32(src);
    w.f64(a);
    w.f64(b);
  }
}

/**
 * Serializes models into one HBSIM1 file image (load it with hbDNNInitializeFromFiles after
 * writing it to disk, or directly with hbDNNInitializeFromDDR). Throws on specs the simulator
 * would reject, with a message saying why.
 */
export function writeSimModelFile(models: readonly SimModelSpec[]): Uint8Array {
  if (models.length < 1 || models.length > 32) throw new Error("simulator: 1..32 models per file");
  const names = new Set<string>();
  const w = new Writer();
  w.bytes(new Uint8Array([0x48, 0x42, 0x53, 0x49, 0x4d, 0x31, 0, 0])); // "HBSIM1\0\0"
  w.u32(1); // version
  w.u32(models.length);
  const sizeAt = w.n;
  w.u64(0); // patched: total file size
  for (const m of models) {
    if (names.has(m.name)) throw new Error(`simulator: duplicate model name "${m.name}"`);
    names.add(m.name);
    const cores = m.bpuCoreNum ?? 1;
    const lat = m.latencyUs ?? 0;
    const fc = m.functionCalls ?? 10;
    if (!isInt(cores, 1, 4)) throw new Error(`simulator: model "${m.name}": bpuCoreNum must be 1..4`);
    if (!isInt(lat, 0, 60_000_000)) throw new Error(`simulator: model "${m.name}": latencyUs must be 0..60e6`);
    if (!isInt(fc, 1, 1000)) throw new Error(`simulator: model "${m.name}": functionCalls must be 1..1000`);
    if (m.inputs.length > 64 || m.outputs.length < 1 || m.outputs.length > 64) {
      throw new Error(`simulator: model "${m.name}": 0..64 inputs and 1..64 outputs`);
    }
    for (const list of [m.inputs, m.outputs]) {
      if (new Set(list.map((t) => t.name)).size !== list.length) {
        throw new Error(`simulator: model "${m.name}": duplicate tensor names`);
      }
    }
    w.name(m.name, "model");
    w.u32(cores);
    w.u32(lat);
    w.u32(fc);
    w.u32(m.inputs.length);
    w.u32(m.outputs.length);
    for (const t of m.inputs) writeTensor(w, t, false, [], `model "${m.name}" input`);
    for (const t of m.outputs) writeTensor(w, t, true, m.inputs, `model "${m.name}" output`);
  }
  w.setU64At(sizeAt, w.n);
  return w.result();
}
