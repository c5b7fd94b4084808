/** The acl backend against the AscendCL simulator: model info, every dtype, multi-IO, gears, run modes. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import type { AclDType } from "./sim/omfile.ts";
import { simF16Bits, simF16Value, simRoundHalfEven as rhe } from "./sim/simfile.ts";
import { aclModelFile, useAclSim } from "./acl_helpers.ts";
import { throwsEdgerun } from "./sim_helpers.ts";

const sim = useAclSim();

type AclDtype = keyof typeof AclDType;

const INT_RANGE: Partial<Record<AclDtype, [number, number]>> = {
  INT8: [-128, 127],
  UINT8: [0, 255],
  INT16: [-32768, 32767],
  UINT16: [0, 65535],
  INT32: [-2147483648, 2147483647],
  UINT32: [0, 4294967295],
  INT64: [-(2 ** 53), 2 ** 53],
  UINT64: [0, 2 ** 53],
};

/** Little-endian bytes of values as dtype stores them (after rounding and clamping). */
function encode(dtype: AclDtype, values: number[]): Uint8Array {
  const size = { FLOAT: 4, FLOAT16: 2, DOUBLE: 8, BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, INT32: 4, UINT32: 4, INT64: 8, UINT64: 8, BF16: 2 }[dtype];
  const view = new DataView(new ArrayBuffer(size * values.length));
  values.forEach((v, i) => {
    const at = i * size;
    const range = INT_RANGE[dtype];
    const n = range ? Math.min(Math.max(rhe(v), range[0]), range[1]) : v;
    switch (dtype) {
      case "FLOAT": return view.setFloat32(at, v, true);
      case "DOUBLE": return view.setFloat64(at, v, true);
      case "FLOAT16": return view.setUint16(at, simF16Bits(v), true);
      case "BOOL": return view.setUint8(at, v !== 0 ? 1 : 0);
      case "INT8": return view.setInt8(at, n);
      case "UINT8": return view.setUint8(at, n);
      case "INT16": return view.setInt16(at, n, true);
      case "UINT16": return view.setUint16(at, n, true);
      case "INT32": return view.setInt32(at, n, true);
      case "UINT32": return view.setUint32(at, n, true);
      case "INT64": return view.setBigInt64(at, BigInt(n), true);
      case "UINT64": return view.setBigUint64(at, BigInt(n), true);
    }
  });
  return new Uint8Array(view.buffer);
}

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Inputs per dtype, with values that round and clamp (y = 2x + 1; bool: y = x). */
const PARITY: Record<Exclude<AclDtype, "BF16">, number[]> = {
  FLOAT: [0.5, -1.25, 3, 1e3, -7.5, 0.1],
  FLOAT16: [0.5, -1.25, 3, 1000, -7.5, 0.099975586],
  DOUBLE: [0.5, -1.25, 3, 1e300, -7.5, 0.1],
  INT8: [0, -3, 5, 100, -100, 63],
  UINT8: [0, 3, 5, 200, 127, 1],
  INT16: [0, -3, 5, 20000, -20000, 100],
  UINT16: [0, 3, 5, 40000, 1, 2],
  INT32: [0, -3, 5, 2000000000, -2000000000, 7],
  UINT32: [0, 3, 5, 3000000000, 1, 2],
  INT64: [0, -3, 5, 2 ** 40, -(2 ** 40), 7],
  UINT64: [0, 3, 5, 2 ** 40, 1, 2],
  BOOL: [0, 1, 1, 0, 1, 0],
};

for (const [dtype, xs] of Object.entries(PARITY) as [Exclude<AclDtype, "BF16">, number[]][]) {
  test(`acl: ${dtype.toLowerCase()} in and out matches the JS reference (y = a*x + b, rounded and clamped as the device stores)`, () => {
    const a = dtype === "BOOL" ? 1 : 2, b = dtype === "BOOL" ? 0 : 1;
    using model = open(aclModelFile({
      inputs: [{ name: "x", dtype, dims: [2, 3] }],
      outputs: [{ name: "y", dtype, dims: [2, 3], a, b }],
    }, `parity-${dtype}`));
    assert.equal(model.backend, "acl");
    // The input's stored form first (a float16 input holds rounded halves), then the function.
    const stored = encode(dtype, xs);
    bytesOf(model.inputs[0].data).set(stored);
    const decoded = decodeStored(dtype, stored);
    const out = model.run().get("y");
    assert.deepEqual(out.shape, [2, 3]);
    assert.deepEqual([...bytesOf(out.data)], [...encode(dtype, decoded.map((x) => a * x + b))]);
  });
}

/** The numbers a stored input holds (what the device reads). */
function decodeStored(dtype: AclDtype, bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.length / 6;
  return Array.from({ length: 6 }, (_, i) => {
    const at = i * size;
    switch (dtype) {
      case "FLOAT": return view.getFloat32(at, true);
      case "DOUBLE": return view.getFloat64(at, true);
      case "FLOAT16": return simF16Value(view.getUint16(at, true));
      case "BOOL": return view.getUint8(at) ? 1 : 0;
      case "INT8": return view.getInt8(at);
      case "UINT8": return view.getUint8(at);
      case "INT16": return view.getInt16(at, true);
      case "UINT16": return view.getUint16(at, true);
      case "INT32": return view.getInt32(at, true);
      case "UINT32": return view.getUint32(at, true);
      case "INT64": return Number(view.getBigInt64(at, true));
      case "UINT64": return Number(view.getBigUint64(at, true));
      default: return 0;
    }
  });
}

test("acl: open() picks acl for .om; info names the runtime, library, device, run mode and formats", () => {
  using model = open(aclModelFile({
    inputs: [{ name: "images", dtype: "FLOAT", format: "NCHW", dims: [1, 3, 4, 4] }],
    outputs: [{ name: "logits", dtype: "FLOAT", dims: [1, 48] }],
  }, "info"));
  assert.equal(model.backend, "acl");
  assert.equal(model.info.backend, "acl");
  assert.equal(typeof model.info.runtime_version, "string");
  assert.notEqual(model.info.runtime_version, "");
  assert.equal(model.info.library, "libascendcl.so");
  assert.equal(model.info.device, 0);
  assert.ok(model.info.run_mode === "host" || model.info.run_mode === "device");
  assert.equal(model.info.input_formats, "NCHW");
  assert.equal(model.info.output_formats, "ND");
  assert.equal(model.info.gears, undefined);
  assert.deepEqual(model.inputs[0].shape, [1, 3, 4, 4]);
  assert.equal(model.inputs[0].byteSize, 4 * 48);
  assert.ok((model.inputs[0].data as Float32Array).every((v) => v === 0), "a new request's input view reads zeros");
  assert.match(model.describe(), /backend: acl .*run_mode=/);
});

test("acl: a BF16 tensor is refused at open, naming the type and its aclDataType number", () => {
  const path = aclModelFile({
    inputs: [{ name: "x", dtype: "BF16", dims: [4] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [4] }],
  }, "bf16");
  throwsEdgerun(() => open(path), "UNSUPPORTED", { backend: "acl", message: /input 'x' has element type BF16 \(aclDataType 27\)/ });
});

test("acl: several inputs and outputs, each output from its own source or the sum, other dtypes mixed", () => {
  using model = open(aclModelFile({
    inputs: [
      { name: "a", dtype: "FLOAT", dims: [1, 4] },
      { name: "b", dtype: "FLOAT", dims: [1, 4] },
      { name: "k", dtype: "INT32", dims: [4] },
    ],
    outputs: [
      { name: "a3", dtype: "FLOAT", dims: [1, 4], source: 0, a: 3 },
      { name: "b_plus", dtype: "DOUBLE", dims: [1, 4], source: 1, b: 0.5 },
      { name: "sum", dtype: "FLOAT", dims: [1, 4], op: "sum" },
      { name: "index", dtype: "INT64", dims: [2, 2], source: -1 },
      { name: "k16", dtype: "INT16", dims: [4], source: 2, a: -1 },
    ],
  }, "multi"));
  assert.deepEqual(model.inputs.map((t) => t.name), ["a", "b", "k"]);
  assert.deepEqual(model.outputs.map((t) => t.name), ["a3", "b_plus", "sum", "index", "k16"]);
  const out = model.run({
    a: new Float32Array([1, 2, 3, 4]),
    b: new Float32Array([10, 20, 30, 40]),
    k: new Int32Array([5, -6, 7, -8]),
  });
  assert.deepEqual([...out.get("a3").data as Float32Array], [3, 6, 9, 12]);
  assert.deepEqual([...out.get("b_plus").data as Float64Array], [10.5, 20.5, 30.5, 40.5]);
  assert.deepEqual([...out.get("sum").data as Float32Array], [16, 16, 40, 36]);
  assert.deepEqual([...out.get("index").data as BigInt64Array], [0n, 1n, 2n, 3n]);
  assert.deepEqual([...out.get("k16").data as Int16Array], [-5, 6, -7, 8]);
});

function batchModel(gears = [1, 2, 4, 8]): string {
  return aclModelFile({
    dynamicBatch: gears,
    inputs: [{ name: "x", dtype: "FLOAT", format: "NCHW", dims: [-1, 3] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 3], a: 2, b: 1 }],
  }, "batch");
}

test("acl: dynamic batch: the -1 dim is dynamic, the gear input is hidden, info and describe() list the gears", () => {
  using model = open(batchModel());
  assert.deepEqual(model.inputs.map((t) => t.name), ["x"]);
  assert.deepEqual(model.inputs[0].shape, [-1, 3]);
  assert.equal(model.inputs[0].dynamic, true);
  assert.equal(model.outputs[0].dynamic, true);
  assert.equal(model.info.dynamic, "batch");
  assert.equal(model.info.gears, "1,2,4,8");
  assert.match(model.describe(), /gears \(batch; a dynamic input's shape picks one\): 1, 2, 4, 8/);
});

test("acl: dynamic batch: each gear's feed runs at that gear, outputs take its shape, back and forth", () => {
  using model = open(batchModel());
  for (const batch of [2, 8, 1, 4, 2]) {
    const x = Float32Array.from({ length: batch * 3 }, (_, i) => i + batch);
    const y = model.run({ x }).get("y");
    assert.deepEqual(y.shape, [batch, 3]);
    assert.deepEqual([...y.data as Float32Array], [...x].map((v) => 2 * v + 1));
  }
  assert.ok(sim.counter("gears_set") > 0);
});

test("acl: dynamic batch: a batch that is no gear is INVALID_ARGUMENT naming the gears; the model still runs after", () => {
  using model = open(batchModel([1, 2, 4]));
  throwsEdgerun(() => model.run({ x: new Float32Array(9) }), "INVALID_ARGUMENT", {
    backend: "acl",
    message: /input 'x': shape \[3,3\] matches no gear of the model; its batch gears are 1,2,4/,
  });
  throwsEdgerun(() => model.run({ x: { data: new Float32Array(24), shape: [8, 3] } }), "INVALID_ARGUMENT", {
    message: /batch gears are 1,2,4/,
  });
  assert.deepEqual([...model.run({ x: new Float32Array([1, 1, 1, 2, 2, 2]) }).get("y").data as Float32Array], [3, 3, 3, 5, 5, 5]);
});

test("acl: dynamic batch: several dynamic inputs must agree on the gear", () => {
  using model = open(aclModelFile({
    dynamicBatch: [1, 2],
    inputs: [{ name: "p", dtype: "FLOAT", dims: [-1, 2] }, { name: "q", dtype: "FLOAT", dims: [-1, 2] }],
    outputs: [{ name: "s", dtype: "FLOAT", dims: [-1, 2], op: "sum" }],
  }, "agree"));
  throwsEdgerun(() => model.run({ p: new Float32Array(2), q: new Float32Array(4) }), "INVALID_ARGUMENT", {
    message: /inputs 'p' and 'q' select different gears/,
  });
  const s = model.run({ p: new Float32Array([1, 2, 3, 4]), q: new Float32Array([10, 20, 30, 40]) }).get("s");
  assert.deepEqual(s.shape, [2, 2]);
  assert.deepEqual([...s.data as Float32Array], [11, 22, 33, 44]);
});

function hwModel(): string {
  return aclModelFile({
    dynamicHW: [[2, 3], [4, 4]],
    inputs: [{ name: "img", dtype: "FLOAT", format: "NCHW", dims: [1, 1, -1, -1] }],
    outputs: [{ name: "out", dtype: "FLOAT", format: "NCHW", dims: [1, 1, -1, -1], a: -1 }],
  }, "hw");
}

test("acl: dynamic height/width: the shape picks the gear, outputs follow; a size that is no gear names the gears", () => {
  using model = open(hwModel());
  assert.equal(model.info.dynamic, "hw");
  assert.equal(model.info.gears, "2x3,4x4");
  assert.match(model.describe(), /gears \(height x width; .*\): 2x3, 4x4/);
  const small = model.run({ img: { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [1, 1, 2, 3] } }).get("out");
  assert.deepEqual(small.shape, [1, 1, 2, 3]);
  assert.deepEqual([...small.data as Float32Array], [-1, -2, -3, -4, -5, -6]);
  const big = model.run({ img: { data: new Float32Array(16).fill(2), shape: [1, 1, 4, 4] } }).get("out");
  assert.deepEqual(big.shape, [1, 1, 4, 4]);
  assert.deepEqual([...big.data as Float32Array], new Array(16).fill(-2));
  throwsEdgerun(() => model.run({ img: { data: new Float32Array(12), shape: [1, 1, 3, 4] } }), "INVALID_ARGUMENT", {
    message: /shape \[1,1,3,4\] matches no gear of the model; its height x width gears are 2x3,4x4/,
  });
});

test("acl: a dynamic input never given a shape fails the run naming the gears (no gear is guessed)", () => {
  using model = open(hwModel());
  throwsEdgerun(() => model.run(), "INVALID_ARGUMENT", { message: /no shape yet.*2x3,4x4|pass \{ data, shape \}/ });
});

test("acl: ACL_HOST run mode copies around each run; ACL_DEVICE hands the device buffers to JS with no copy", async () => {
  for (const mode of ["host", "device"] as const) {
    await sim.with({ runMode: mode }, () => {
      const before = sim.counter("memcpy_calls");
      {
        using model = open(aclModelFile({
          inputs: [{ name: "x", dtype: "FLOAT", dims: [4] }],
          outputs: [{ name: "y", dtype: "FLOAT", dims: [4], a: 10 }],
        }, `mode-${mode}`));
        assert.equal(model.info.run_mode, mode);
        assert.ok((model.inputs[0].data as Float32Array).every((v) => v === 0), `${mode}: the view starts zeroed`);
        for (let i = 0; i < 3; i++) {
          assert.deepEqual([...model.run({ x: new Float32Array([1, 2, 3, i]) }).get("y").data as Float32Array], [10, 20, 30, 10 * i]);
        }
      }
      const copies = sim.counter("memcpy_calls") - before;
      if (mode === "host") assert.equal(copies, 6, "one copy in and one out per run");
      else assert.equal(copies, 0, "zero copy");
    });
  }
});

test("acl: the device option picks the device; an id the runtime lacks is INVALID_ARGUMENT with the ACL code; a bad value is a RangeError", () => {
  const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "dev");
  sim.setDeviceCount(2);
  try {
    using one = open(path, { device: 1 });
    assert.equal(one.info.device, 1);
    assert.deepEqual([...one.run({ x: new Float32Array([4, 5]) }).get("y").data as Float32Array], [4, 5]);
    const e = throwsEdgerun(() => open(path, { device: 7 }), "INVALID_ARGUMENT", { backend: "acl", call: "aclrtSetDevice" });
    assert.ok(e.vendorCode !== 0);
  } finally {
    sim.setDeviceCount(1);
  }
  assert.throws(() => open(path, { device: 64 }), RangeError);
  assert.throws(() => open(path, { device: -1 }), RangeError);
  assert.throws(() => open(path, { device: 1.5 }), RangeError);
});

test("acl: a corrupt or truncated .om is INVALID_MODEL with the vendor code and aclGetRecentErrMsg's text; nothing stays loaded", () => {
  const before = sim.liveCounts();
  const good = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "good");
  const bytes = new Uint8Array(readFileSync(good));
  const corrupt = aclModelFile({ inputs: [], outputs: [] }, "corrupt");
  writeFileSync(corrupt, bytes.map((b, i) => (i >= 4 && i < 11 ? 0x41 : b)));
  const e1 = throwsEdgerun(() => open(corrupt), "INVALID_MODEL", { backend: "acl", call: "aclmdlLoadFromFile" });
  assert.ok(e1.vendorCode > 0);
  assert.match(e1.vendorMessage, /simulator|not/);
  const truncated = aclModelFile({ inputs: [], outputs: [] }, "truncated");
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 3));
  throwsEdgerun(() => open(truncated), "INVALID_MODEL", { backend: "acl" });
  const after = sim.liveCounts();
  assert.equal(after.models, before.models);
  assert.equal(after.descs, before.descs);
});

test("acl: a model without inputs runs (its output from the element index)", () => {
  using model = open(aclModelFile({ inputs: [], outputs: [{ name: "i", dtype: "INT32", dims: [2, 2], source: -1, a: 10 }] }, "noinput"));
  assert.equal(model.inputs.length, 0);
  assert.deepEqual([...model.run().get("i").data as Int32Array], [0, 10, 20, 30]);
});
