/**
 * Cross-check (Deno only; a dev tool, not part of the runtime-neutral writer): random HBSIM1
 * models written by simfile.ts are run through the C simulator via Deno FFI, and every output
 * element is compared bit-for-bit (Object.is) with simExpected(). Also checks the 0xCD padding.
 *
 *   zig build sim && deno run --allow-ffi --allow-env tests/sim/simfile_xcheck.ts [iterations]
 */
import {
  simCount,
  simDecodeTensor,
  simDType,
  simElemSize,
  simEncodeTensor,
  simExpected,
  type SimModelSpec,
  type SimOutputSpec,
  type SimTensorSpec,
  writeSimModelFile,
} from "./simfile.ts";

const dir = Deno.env.get("HBSIM_DIR") ?? new URL("../../zig-out/sim/", import.meta.url).pathname;
const ucp = Deno.dlopen(`${dir}libhbucp.so`, {
  hbUCPMallocCached: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  hbUCPMemFlush: { parameters: ["buffer", "i32"], result: "i32" },
  hbUCPFree: { parameters: ["buffer"], result: "i32" },
  hbSimCounter: { parameters: ["buffer"], result: "i64" },
});
const dnn = Deno.dlopen(`${dir}libdnn.so`, {
  hbDNNInitializeFromDDR: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "i32" },
  hbDNNRelease: { parameters: ["pointer"], result: "i32" },
  hbDNNGetModelHandle: { parameters: ["buffer", "pointer", "buffer"], result: "i32" },
  hbDNNGetInputTensorProperties: { parameters: ["buffer", "pointer", "i32"], result: "i32" },
  hbDNNGetOutputTensorProperties: { parameters: ["buffer", "pointer", "i32"], result: "i32" },
  hbDNNInferV2: { parameters: ["pointer", "buffer", "buffer", "pointer"], result: "i32" },
});
const u = ucp.symbols, d = dnn.symbols;
const cstr = (s: string) => new TextEncoder().encode(s + "\0");

// Deterministic PRNG so failures reproduce.
let seed = 0x12345678;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const ri = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[ri(0, xs.length - 1)];

const DTYPES = ["S4", "U4", "S8", "U8", "F16", "S16", "U16", "F32", "S32", "U32", "F64", "S64", "U64", "BOOL8"] as const;
const INTS = new Set(["S4", "U4", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64"]);

function randShape(): number[] {
  return Array.from({ length: ri(1, 4) }, () => ri(1, 5));
}

function randTensor(name: string, isOutput: boolean): SimTensorSpec {
  const dtype = pick(DTYPES);
  const shape = randShape();
  const es = simElemSize(dtype);
  // Padded strides: each dim gets 0..3 extra elements of padding.
  const stride = new Array<number>(shape.length);
  let acc = es * ri(1, 2);
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = acc;
    acc = acc * shape[i] + es * ri(0, 3);
  }
  const t: SimTensorSpec = { name, dtype, shape, stride };
  if (INTS.has(dtype) && rnd() < 0.6) {
    const perAxis = rnd() < 0.5;
    const axis = perAxis ? ri(0, shape.length - 1) : -1;
    const n = perAxis ? shape[axis] : 1;
    const scales = Array.from({ length: n }, () => pick([0.5, 0.25, 1, 3, 0.1, 0.007, 17.5]) * (1 + rnd()));
    const zeroPoints = rnd() < 0.5 ? Array.from({ length: n }, () => ri(-5, 5)) : undefined;
    t.quant = { scales, zeroPoints, axis };
  }
  if (rnd() < 0.3) t.alignedByteSize = undefined; // default = span
  else if (!isOutput || rnd() < 0.5) t.alignedByteSize = Math.ceil((acc + 1) / 64) * 64;
  return t;
}

function randValue(dtype: string): number | bigint {
  switch (dtype) {
    case "S4": return ri(-8, 7);
    case "U4": return ri(0, 15);
    case "S8": return ri(-128, 127);
    case "U8": return ri(0, 255);
    case "BOOL8": return ri(0, 1);
    case "S16": return ri(-32768, 32767);
    case "U16": return ri(0, 65535);
    case "S32": return ri(-2147483648, 2147483647);
    case "U32": return ri(0, 4294967295);
    case "S64": return pick([BigInt(ri(-1e6, 1e6)), -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]);
    case "U64": return pick([BigInt(ri(0, 1e6)), 2n ** 64n - 1n, 2n ** 53n + 1n]);
    default:
      return pick([(rnd() - 0.5) * 10, (rnd() - 0.5) * 1e5, -0, 0.1, 65519.9, 1e-7, 2.5, -3.5, (rnd() - 0.5) * 1e40]);
  }
}

function randModel(idx: number): SimModelSpec {
  const nin = ri(0, 3);
  const inputs = Array.from({ length: nin }, (_, i) => randTensor(`in${i}`, false));
  const outputs = Array.from({ length: ri(1, 3) }, (_, i): SimOutputSpec => ({
    ...randTensor(`out${i}`, true),
    source: nin ? ri(-1, nin - 1) : -1,
    a: pick([1, -1.5, 0.3, 2, 1e-3, 123.456]),
    b: pick([0, 0.5, -7.25, 1e6, 0.1]),
  }));
  return { name: `m${idx}`, inputs, outputs };
}

const PROPS = 176, TENSOR = 200;
type Mem = { sys: Uint8Array; view: Uint8Array };

function alloc(size: number): Mem {
  const sys = new Uint8Array(24);
  if (u.hbUCPMallocCached(sys, BigInt(size), 0) !== 0) throw new Error("malloc");
  const vir = new DataView(sys.buffer).getBigUint64(8, true);
  const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(vir)!, size));
  return { sys, view };
}

let checked = 0;
function runOne(spec: SimModelSpec): void {
  const file = writeSimModelFile([spec]);
  const packed = new BigUint64Array(1);
  const ptrs = new BigUint64Array([BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(file)))]);
  const lens = new Int32Array([file.length]);
  let rc = d.hbDNNInitializeFromDDR(new Uint8Array(packed.buffer), new Uint8Array(ptrs.buffer), new Uint8Array(lens.buffer), 1);
  if (rc !== 0) throw new Error(`load rc=${rc}`);
  const pk = Deno.UnsafePointer.create(packed[0]);
  const h = new BigUint64Array(1);
  rc = d.hbDNNGetModelHandle(new Uint8Array(h.buffer), pk, cstr(spec.name));
  if (rc !== 0) throw new Error(`handle rc=${rc}`);
  const mh = Deno.UnsafePointer.create(h[0]);

  const inT = new Uint8Array(TENSOR * Math.max(1, spec.inputs.length));
  const outT = new Uint8Array(TENSOR * spec.outputs.length);
  const mems: Mem[] = [];
  const values: (number | bigint)[][] = [];
  spec.inputs.forEach((t, i) => {
    const props = inT.subarray(i * TENSOR + 24, i * TENSOR + 24 + PROPS);
    if (d.hbDNNGetInputTensorProperties(props, mh, i) !== 0) throw new Error("props");
    const pv = new DataView(props.buffer, props.byteOffset, PROPS);
    const stride = t.shape.map((_, k) => Number(pv.getBigInt64(96 + 8 * k, true)));
    const aligned = Number(pv.getBigInt64(88, true));
    const vals = Array.from({ length: simCount(t.shape) }, () => randValue(String(t.dtype)));
    values.push(vals);
    const bytes = simEncodeTensor(t.dtype, vals, t.shape, stride, aligned, 0x5a);
    const m = alloc(bytes.length);
    m.view.set(bytes);
    if (u.hbUCPMemFlush(m.sys, 2) !== 0) throw new Error("clean");
    inT.set(m.sys, i * TENSOR);
    mems.push(m);
  });
  const outStrides: number[][] = [];
  const outMems: Mem[] = [];
  spec.outputs.forEach((t, i) => {
    const props = outT.subarray(i * TENSOR + 24, i * TENSOR + 24 + PROPS);
    if (d.hbDNNGetOutputTensorProperties(props, mh, i) !== 0) throw new Error("props");
    const pv = new DataView(props.buffer, props.byteOffset, PROPS);
    outStrides.push(t.shape.map((_, k) => Number(pv.getBigInt64(96 + 8 * k, true))));
    const m = alloc(Number(pv.getBigInt64(88, true)));
    outT.set(m.sys, i * TENSOR);
    outMems.push(m);
  });
  rc = d.hbDNNInferV2(null, outT, inT, mh);
  if (rc !== 0) throw new Error(`infer rc=${rc} for ${JSON.stringify(spec)}`);
  const want = simExpected(spec, values);
  spec.outputs.forEach((t, i) => {
    if (u.hbUCPMemFlush(outMems[i].sys, 1) !== 0) throw new Error("invalidate");
    const got = simDecodeTensor(t.dtype, outMems[i].view, t.shape, outStrides[i]);
    for (let j = 0; j < got.length; j++) {
      if (!Object.is(got[j], want[i][j])) {
        throw new Error(`mismatch ${spec.name}.${t.name}[${j}] dtype ${simDType(t.dtype)}: C ${got[j]} vs TS ${want[i][j]}\n${JSON.stringify(spec)}\ninputs ${values.map((v) => v.map(String))}`);
      }
      checked++;
    }
    // Every byte that is not an element is padding: must be 0xCD.
    const isElem = new Uint8Array(outMems[i].view.length);
    const es = simElemSize(t.dtype);
    for (let j = 0; j < got.length; j++) {
      let off = 0, jj = j;
      for (let k = t.shape.length - 1; k >= 0; k--) {
        off += (jj % t.shape[k]) * outStrides[i][k];
        jj = Math.floor(jj / t.shape[k]);
      }
      isElem.fill(1, off, off + es);
    }
    outMems[i].view.forEach((b, k) => {
      if (!isElem[k] && b !== 0xcd) throw new Error(`padding byte ${k} of ${spec.name}.${t.name} is ${b}`);
    });
  });
  for (const m of [...mems, ...outMems]) if (u.hbUCPFree(m.sys) !== 0) throw new Error("free");
  if (d.hbDNNRelease(pk) !== 0) throw new Error("release");
}

const iterations = Number(Deno.args[0] ?? 300);
for (let i = 0; i < iterations; i++) runOne(randModel(i));
const live = u.hbSimCounter(cstr("mem_live"));
const missed = u.hbSimCounter(cstr("missed_clean"));
if (live !== 0n || missed !== 0n) throw new Error(`mem_live=${live} missed_clean=${missed}`);
console.log(`simulator xcheck OK: ${iterations} random models, ${checked} output elements identical in C and TS`);
ucp.close();
dnn.close();
