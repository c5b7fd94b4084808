/**
 * The ACL simulator (tests/sim/acl/) driven straight through FFI on Deno and Bun: the TS writer and
 * reference (tests/sim/omfile.ts) agree byte for byte with the C simulator for every aclDataType,
 * for a gear of a dynamic-batch model, and the simulator's live counts return to zero. Simulator
 * vs reference only: nothing here is about a real Ascend device.
 *
 * The library is used from a private copy, a separate simulator instance: aclInit is once per
 * process, and backend tests in the same process must find the shared instance uninitialised.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { openRawLibrary } from "../ffi/load.ts";
import { AclSim, aclSimRuntimeLibrary } from "./acl_sim_helpers.ts";
import { test } from "./compat.ts";
import { tempDir } from "./helpers.ts";
import {
  AclDType,
  aclSimExpected,
  aclSimInputs,
  type AclSimModelSpec,
  aclSimSize,
  writeAclSimModel,
} from "./sim/omfile.ts";

const source = aclSimRuntimeLibrary("classic");
const present = existsSync(source);
const dir = join(tempDir(), `aclsim-${process.pid}`);
const lib = join(dir, "libascendcl.so");
if (present) {
  mkdirSync(dir, { recursive: true });
  copyFileSync(source, lib);
}

const api = {
  aclInit: { args: ["buffer"], result: "i32" },
  aclrtSetDevice: { args: ["i32"], result: "i32" },
  aclmdlLoadFromMem: { args: ["buffer", "i64", "buffer"], result: "i32" },
  aclmdlUnload: { args: ["u32"], result: "i32" },
  aclrtMalloc: { args: ["buffer", "i64", "i32"], result: "i32" },
  aclrtMallocHost: { args: ["buffer", "i64"], result: "i32" },
  aclrtFree: { args: ["i64"], result: "i32" },
  aclrtFreeHost: { args: ["i64"], result: "i32" },
  aclCreateDataBuffer: { args: ["i64", "i64"], result: "handle" },
  aclDestroyDataBuffer: { args: ["handle"], result: "i32" },
  aclmdlCreateDataset: { args: [], result: "handle" },
  aclmdlDestroyDataset: { args: ["handle"], result: "i32" },
  aclmdlAddDatasetBuffer: { args: ["handle", "handle"], result: "i32" },
  aclmdlSetDynamicBatchSize: { args: ["u32", "handle", "i64", "i64"], result: "i32" },
  aclmdlExecute: { args: ["u32", "handle", "handle"], result: "i32" },
  aclGetRecentErrMsg: { args: [], result: "handle" },
} as const;
// aclrtMemcpy with a device destination, and with a host destination (one signature per table).
const toDevice = { aclrtMemcpy: { args: ["i64", "i64", "buffer", "i64", "i32"], result: "i32" } } as const;
const toHost = { aclrtMemcpy: { args: ["buffer", "i64", "i64", "i64", "i32"], result: "i32" } } as const;

type Handle = unknown;
interface Api {
  aclInit(config: Uint8Array | null): number;
  aclrtSetDevice(id: number): number;
  aclmdlLoadFromMem(model: Uint8Array, size: bigint, id: Uint32Array): number;
  aclmdlUnload(id: number): number;
  aclrtMalloc(out: BigUint64Array, size: bigint, policy: number): number;
  aclrtMallocHost(out: BigUint64Array, size: bigint): number;
  aclrtFree(p: bigint): number;
  aclrtFreeHost(p: bigint): number;
  aclCreateDataBuffer(p: bigint, size: bigint): Handle;
  aclDestroyDataBuffer(b: Handle): number;
  aclmdlCreateDataset(): Handle;
  aclmdlDestroyDataset(s: Handle): number;
  aclmdlAddDatasetBuffer(s: Handle, b: Handle): number;
  aclmdlSetDynamicBatchSize(id: number, s: Handle, index: bigint, batch: bigint): number;
  aclmdlExecute(id: number, input: Handle, output: Handle): number;
}

let opened:
  | { a: Api; h2d: (dst: bigint, src: Uint8Array) => number; d2h: (dst: Uint8Array, src: bigint) => number }
  | undefined;
function acl() {
  if (opened) return opened;
  const a = openRawLibrary(lib, api).symbols as unknown as Api;
  const up = openRawLibrary(lib, toDevice).symbols.aclrtMemcpy as unknown as (...x: unknown[]) => number;
  const down = openRawLibrary(lib, toHost).symbols.aclrtMemcpy as unknown as (...x: unknown[]) => number;
  assert.equal(a.aclInit(null), 0);
  assert.equal(a.aclrtSetDevice(0), 0);
  opened = {
    a,
    h2d: (dst, src) => up(dst, BigInt(src.length), src, BigInt(src.length), 1),
    d2h: (dst, src) => down(dst, BigInt(dst.length), src, BigInt(dst.length), 2),
  };
  return opened;
}

/** Runs spec once through the simulator: input bytes in, output bytes out (each output's full buffer). */
function run(
  spec: AclSimModelSpec,
  inputs: Uint8Array[],
  batch?: number,
  host = false,
): { rc: number; outs: Uint8Array[] } {
  const { a, h2d, d2h } = acl();
  const bytes = writeAclSimModel(spec);
  const id = new Uint32Array(1);
  assert.equal(a.aclmdlLoadFromMem(bytes, BigInt(bytes.length), id), 0);
  const made: { p: bigint; b: Handle }[] = [];
  const dataset = (sizes: number[], data: (Uint8Array | undefined)[]) => {
    const set = a.aclmdlCreateDataset();
    sizes.forEach((size, i) => {
      const out = new BigUint64Array(1);
      assert.equal(host ? a.aclrtMallocHost(out, BigInt(size)) : a.aclrtMalloc(out, BigInt(size), 0), 0);
      if (data[i] && !host) assert.equal(h2d(out[0], data[i]!), 0);
      const b = a.aclCreateDataBuffer(out[0], BigInt(size));
      made.push({ p: out[0], b });
      assert.equal(a.aclmdlAddDatasetBuffer(set, b), 0);
    });
    return set;
  };
  const inSizes = aclSimInputs(spec).map((t) => aclSimSize(spec, t));
  const outSizes = spec.outputs.map((t) => aclSimSize(spec, t));
  const first = made.length;
  const inSet = dataset(inSizes, inputs);
  const outSet = dataset(outSizes, []);
  if (batch !== undefined) {
    assert.equal(a.aclmdlSetDynamicBatchSize(id[0], inSet, BigInt(spec.inputs.length), BigInt(batch)), 0);
  }
  const rc = a.aclmdlExecute(id[0], inSet, outSet);
  const outs = outSizes.map((size, o) => {
    const got = new Uint8Array(size);
    if (rc === 0) assert.equal(d2h(got, made[first + inSizes.length + o].p), 0);
    return got;
  });
  for (const { p, b } of made) {
    assert.equal(a.aclDestroyDataBuffer(b), 0);
    assert.equal(host ? a.aclrtFreeHost(p) : a.aclrtFree(p), 0);
  }
  assert.equal(a.aclmdlDestroyDataset(inSet), 0);
  assert.equal(a.aclmdlDestroyDataset(outSet), 0);
  assert.equal(a.aclmdlUnload(id[0]), 0);
  return { rc, outs };
}

const dtypes = Object.keys(AclDType) as (keyof typeof AclDType)[];

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test("acl simulator: every aclDataType in and out matches omfile.ts byte for byte", () => {
  if (!present) return;
  acl(); // initialised first: the baseline holds the device and its default context
  const sim = new AclSim(lib);
  const before = sim.liveCounts();
  // One input per dtype (random bytes; BOOL as 0/1), one output per dtype reading each input in turn.
  const spec: AclSimModelSpec = {
    inputs: dtypes.map((d, i) => ({ name: `in_${d}`, dtype: d, dims: [3, 1 + (i % 4)] })),
    outputs: dtypes.map((d, i) => ({
      name: `out_${d}`,
      dtype: d,
      dims: [2, 7],
      source: (i * 5) % dtypes.length,
      a: [1, -1.5, 0.3, 1e5][i % 4],
      b: [0, 0.5, -2.25, 7][i % 4],
    })),
  };
  spec.outputs.push({ name: "sum", dtype: "FLOAT", dims: [4], op: "sum" }, {
    name: "index",
    dtype: "FLOAT16",
    dims: [9],
    source: -1,
    a: 0.5,
  });
  const inputs = spec.inputs.map((t, i) => {
    const bytes = randomBytes(aclSimSize(spec, t), 1000 + i);
    if (t.dtype === "BOOL") bytes.forEach((v, j) => (bytes[j] = v & 1));
    // FLOAT/DOUBLE/FLOAT16/BF16 random bits include NaNs and infinities: the reference handles them.
    return bytes;
  });
  const { rc, outs } = run(spec, inputs);
  assert.equal(rc, 0);
  const want = aclSimExpected(spec, inputs);
  want.forEach((w, o) => assert.deepEqual(outs[o].subarray(0, w.length), w, `output ${spec.outputs[o].name}`));
  assert.deepEqual(sim.liveCounts(), before);
});

test("acl simulator: a dynamic-batch gear computes only that gear's rows", () => {
  if (!present) return;
  const spec: AclSimModelSpec = {
    inputs: [{ name: "x", dtype: "FLOAT16", format: "NCHW", dims: [-1, 2, 3] }],
    outputs: [{ name: "y", dtype: "INT16", dims: [-1, 6], a: 100, b: -1 }],
    dynamicBatch: [1, 2, 4],
  };
  const x = randomBytes(aclSimSize(spec, spec.inputs[0]), 7);
  for (let i = 1; i < x.length; i += 2) x[i] &= 0x3b; // keep halves finite and small
  const { rc, outs } = run(spec, [x], 2);
  assert.equal(rc, 0);
  const [want] = aclSimExpected(spec, [x], 2);
  assert.equal(want.length, 2 * 6 * 2);
  assert.deepEqual(outs[0].subarray(0, want.length), want);
});

test("acl simulator: host buffers are refused at execute in ACL_HOST run mode", () => {
  if (!present) return;
  const sim = new AclSim(lib);
  const before = sim.counter("not_device_memory");
  const spec: AclSimModelSpec = {
    inputs: [{ name: "x", dtype: "FLOAT", dims: [4] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [4] }],
  };
  const { rc } = run(spec, [new Uint8Array(16)], undefined, true);
  assert.equal(rc, 100000);
  assert.equal(sim.counter("not_device_memory") - before, 1);
  const live = sim.liveCounts();
  assert.equal(live.models + live.devBuffers + live.hostBuffers + live.datasets + live.dataBuffers, 0);
});
