/**
 * Dev tool (Deno only): random ACLSIM1 models over every supported aclDataType, run by the ACL
 * simulator (zig-out/sim/acl/libascendcl.so, or $EDGERUN_ACL_SIM_DIR) through FFI, compared byte
 * for byte with aclSimExpected() from omfile.ts. Simulator vs reference only; no real device.
 *   deno run --allow-ffi --allow-env --allow-read tests/sim/omfile_xcheck.ts [n]
 */
import {
  AclDType,
  aclElemSize,
  aclSimDims,
  aclSimExpected,
  aclSimInputs,
  type AclSimModelSpec,
  aclSimSize,
  writeAclSimModel,
} from "./omfile.ts";

const dir = Deno.env.get("EDGERUN_ACL_SIM_DIR") ?? new URL("../../zig-out/sim/acl", import.meta.url).pathname;
const lib = Deno.dlopen(`${dir}/libascendcl.so`, {
  aclInit: { parameters: ["pointer"], result: "i32" },
  aclrtSetDevice: { parameters: ["i32"], result: "i32" },
  aclmdlLoadFromMem: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  aclmdlUnload: { parameters: ["u32"], result: "i32" },
  aclrtMalloc: { parameters: ["buffer", "usize", "i32"], result: "i32" },
  aclrtFree: { parameters: ["pointer"], result: "i32" },
  aclrtMemcpy: { parameters: ["pointer", "usize", "pointer", "usize", "i32"], result: "i32" },
  aclCreateDataBuffer: { parameters: ["pointer", "usize"], result: "pointer" },
  aclDestroyDataBuffer: { parameters: ["pointer"], result: "i32" },
  aclmdlCreateDataset: { parameters: [], result: "pointer" },
  aclmdlDestroyDataset: { parameters: ["pointer"], result: "i32" },
  aclmdlAddDatasetBuffer: { parameters: ["pointer", "pointer"], result: "i32" },
  aclmdlSetDynamicBatchSize: { parameters: ["u32", "pointer", "usize", "u64"], result: "i32" },
  aclmdlSetDynamicHWSize: { parameters: ["u32", "pointer", "usize", "u64", "u64"], result: "i32" },
  aclmdlExecute: { parameters: ["u32", "pointer", "pointer"], result: "i32" },
  aclGetRecentErrMsg: { parameters: [], result: "pointer" },
});
const s = lib.symbols;
const ok = (rc: number, what: string) => {
  if (rc !== 0) {
    const m = s.aclGetRecentErrMsg();
    throw new Error(`${what}: ${rc} ${m ? new Deno.UnsafePointerView(m).getCString() : ""}`);
  }
};
ok(s.aclInit(null), "aclInit");
ok(s.aclrtSetDevice(0), "aclrtSetDevice");

let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
const dtypes = Object.values(AclDType);
const specials = [
  0,
  -0,
  0.5,
  -0.5,
  1.5,
  2.5,
  -2.5,
  65504,
  65520,
  1e-8,
  3.4e38,
  1e300,
  NaN,
  Infinity,
  -Infinity,
  2 ** 63,
  2 ** 64,
  -(2 ** 63),
];

function malloc(n: number): Deno.PointerValue {
  const out = new BigUint64Array(1);
  ok(s.aclrtMalloc(out, BigInt(n), 0), "aclrtMalloc");
  return Deno.UnsafePointer.create(out[0]);
}

const n = Number(Deno.args[0] ?? 300);
for (let iter = 0; iter < n; iter++) {
  const kind = pick([0, 0, 1, 2]);
  const nin = 1 + Math.floor(rnd() * 3);
  const spec: AclSimModelSpec = { inputs: [], outputs: [] };
  if (kind === 1) spec.dynamicBatch = [1, 2 + Math.floor(rnd() * 3)];
  if (kind === 2) spec.dynamicHW = [[2, 3], [1 + Math.floor(rnd() * 4), 5]];
  for (let i = 0; i < nin; i++) {
    const dims = kind === 1
      ? [-1, 1 + Math.floor(rnd() * 4)]
      : kind === 2
      ? [1, 2, -1, -1]
      : [1 + Math.floor(rnd() * 5), 1 + Math.floor(rnd() * 3)];
    spec.inputs.push({ name: `in${i}`, dtype: pick(dtypes), dims });
  }
  for (let o = 0; o < 1 + Math.floor(rnd() * 3); o++) {
    const dims = kind === 1 ? [-1, 3] : kind === 2 ? [-1, -1] : [1 + Math.floor(rnd() * 7)];
    spec.outputs.push({
      name: `out${o}`,
      dtype: pick(dtypes),
      dims,
      op: rnd() < 0.3 ? "sum" : "affine",
      source: Math.floor(rnd() * (nin + 1)) - 1,
      a: pick([1, -1, 0.5, 3, 1e10, 1 / 3]),
      b: pick([0, 0.5, -7, 1e-3, 2 ** 40]),
    });
  }
  const gear = kind === 1 ? pick(spec.dynamicBatch!) : kind === 2 ? pick(spec.dynamicHW!) : undefined;
  const bytes = writeAclSimModel(spec);
  const idBuf = new Uint32Array(1);
  ok(s.aclmdlLoadFromMem(bytes, BigInt(bytes.length), idBuf), "load");
  const id = idBuf[0];
  // Inputs: random bytes of the declared dtype, with special values mixed in through float64.
  const ins = spec.inputs.map((t) => {
    const size = aclSimSize(spec, t);
    const u8 = new Uint8Array(size);
    crypto.getRandomValues(u8);
    const es = aclElemSize(t.dtype as number);
    const dv = new DataView(u8.buffer);
    for (let off = 0; off + es <= size; off += es) {
      if (rnd() < 0.3 && (t.dtype === 0 || t.dtype === 11)) {
        if (t.dtype === 0) dv.setFloat32(off, pick(specials), true);
        else dv.setFloat64(off, pick(specials), true);
      }
      if (t.dtype === 12) u8[off] = u8[off] & 1 ? u8[off] : 0;
    }
    return u8;
  });
  const all = aclSimInputs(spec);
  const inSet = s.aclmdlCreateDataset(), outSet = s.aclmdlCreateDataset();
  const frees: Deno.PointerValue[] = [], bufs: Deno.PointerValue[] = [];
  const add = (set: Deno.PointerValue, size: number, data?: Uint8Array) => {
    const p = malloc(size);
    frees.push(p);
    if (data) ok(s.aclrtMemcpy(p, BigInt(size), Deno.UnsafePointer.of(data), BigInt(size), 1), "memcpy in");
    const b = s.aclCreateDataBuffer(p, BigInt(size));
    bufs.push(b);
    ok(s.aclmdlAddDatasetBuffer(set, b), "add");
    return p;
  };
  all.forEach((t, i) => add(inSet, aclSimSize(spec, t), ins[i]));
  const outs = spec.outputs.map((o) => ({ p: add(outSet, aclSimSize(spec, o)), size: aclSimSize(spec, o) }));
  if (kind === 1) ok(s.aclmdlSetDynamicBatchSize(id, inSet, BigInt(nin), BigInt(gear as number)), "gear");
  if (kind === 2) {
    ok(
      s.aclmdlSetDynamicHWSize(id, inSet, BigInt(nin), BigInt((gear as number[])[0]), BigInt((gear as number[])[1])),
      "gear",
    );
  }
  ok(s.aclmdlExecute(id, inSet, outSet), "execute");
  const want = aclSimExpected(spec, ins, gear as number | [number, number] | undefined);
  outs.forEach(({ p, size }, o) => {
    const got = new Uint8Array(size);
    ok(s.aclrtMemcpy(Deno.UnsafePointer.of(got), BigInt(size), p, BigInt(size), 2), "memcpy out");
    const w = want[o];
    for (let i = 0; i < w.length; i++) {
      if (got[i] !== w[i]) {
        throw new Error(
          `model ${iter} output ${o} (${spec.outputs[o].dtype}) byte ${i}: C ${got[i]} TS ${w[i]}\n${
            JSON.stringify(spec)
          } gear ${gear} dims ${aclSimDims(spec.outputs[o].dims, gear as number)}`,
        );
      }
    }
  });
  bufs.forEach((b) => ok(s.aclDestroyDataBuffer(b), "destroy buffer"));
  frees.forEach((p) => ok(s.aclrtFree(p), "free"));
  ok(s.aclmdlDestroyDataset(inSet), "destroy in");
  ok(s.aclmdlDestroyDataset(outSet), "destroy out");
  ok(s.aclmdlUnload(id), "unload");
}
console.log(`omfile_xcheck: ${n} random models, C and TS agree byte for byte`);
