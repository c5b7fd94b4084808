/** The ort backend through the public API: every dtype, multi-I/O, dynamic shapes, zero-copy. */
import assert from "node:assert/strict";
import { hasFloat16Array, open, Tensor, type TypedArray } from "../mod.ts";
import { test } from "./compat.ts";
import { DTYPES, dtypeModel, multiIoModel, nonZeroModel, symbolicBatchModel } from "./fixtures/onnx_models.ts";
import { tempFile, values } from "./helpers.ts";

const modelFile = (name: string, bytes: Uint8Array): string => tempFile(`${name}.onnx`, bytes);

/** Inputs that exercise each type's range, and y = x + x (wrapping) or !x for bool. */
function dtypeCase(dtype: string): { x: TypedArray; expected: ArrayLike<number | bigint> } {
  switch (dtype) {
    case "float32": return { x: new Float32Array([1.5, -2, 0, 3e38, 0.25, -7]), expected: new Float32Array([3, -4, 0, Infinity, 0.5, -14]) };
    case "float64": return { x: new Float64Array([1.5, -2, 0, 1e300, 0.25, -7]), expected: [3, -4, 0, 2e300, 0.5, -14] };
    case "int8": return { x: new Int8Array([1, -2, 127, -128, 0, 60]), expected: new Int8Array([2, -4, -2, 0, 0, 120]) };
    case "uint8": return { x: new Uint8Array([1, 2, 255, 128, 0, 100]), expected: new Uint8Array([2, 4, 254, 0, 0, 200]) };
    case "int16": return { x: new Int16Array([1, -2, 32767, -32768, 0, 1000]), expected: new Int16Array([2, -4, -2, 0, 0, 2000]) };
    case "uint16": return { x: new Uint16Array([1, 2, 65535, 32768, 0, 1000]), expected: new Uint16Array([2, 4, 65534, 0, 0, 2000]) };
    case "int32": return { x: new Int32Array([1, -2, 2147483647, -5, 0, 1e6]), expected: new Int32Array([2, -4, -2, -10, 0, 2e6]) };
    case "uint32": return { x: new Uint32Array([1, 2, 4294967295, 5, 0, 1e6]), expected: new Uint32Array([2, 4, 4294967294, 10, 0, 2e6]) };
    case "int64": return { x: new BigInt64Array([1n, -2n, 2n ** 62n, -5n, 0n, 2n ** 63n - 1n]), expected: new BigInt64Array([2n, -4n, 2n ** 63n, -10n, 0n, -2n]) };
    case "uint64": return { x: new BigUint64Array([1n, 2n, 2n ** 63n, 5n, 0n, 2n ** 64n - 1n]), expected: new BigUint64Array([2n, 4n, 0n, 10n, 0n, 2n ** 64n - 2n]) };
    case "bool": return { x: new Uint8Array([1, 0, 1, 1, 0, 0]), expected: new Uint8Array([0, 1, 0, 0, 1, 1]) };
    case "float16": {
      // float16 bits: 1.0=0x3c00 -> 2.0=0x4000; -2.0=0xc000 -> -4.0=0xc400; 0.5=0x3800 -> 1.0; 65504=0x7bff -> inf=0x7c00
      const bits = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0000, 0x4200]);
      return { x: bits, expected: new Uint16Array([0x4000, 0xc400, 0x3c00, 0x7c00, 0x0000, 0x4600]) };
    }
  }
  throw new Error(dtype);
}

for (const dtype of DTYPES) {
  test(`ort: ${dtype} tensors round-trip through a model`, () => {
    using model = open(modelFile(`dtype_${dtype}`, dtypeModel(dtype)));
    assert.equal(model.inputs[0].dtype, dtype);
    assert.equal(model.outputs[0].dtype, dtype);
    assert.deepEqual(model.inputs[0].shape, [2, 3]);
    const { x, expected } = dtypeCase(dtype);
    const [y] = model.run(x);
    assert.deepEqual(y.shape, [2, 3]);
    let got: ArrayLike<number | bigint> = y.data;
    if (dtype === "float16" && hasFloat16Array) {
      // Compare bit patterns whatever the runtime's array type is.
      got = new Uint16Array(y.data.buffer, y.data.byteOffset, 6);
    }
    assert.deepEqual(values(got), values(expected));
  });
}

test("ort: multi-input/multi-output model takes an array or a record and returns outputs in order", () => {
  using model = open(modelFile("multi_io", multiIoModel()));
  assert.deepEqual(model.inputs.map((i) => i.name), ["a", "b", "c"]);
  assert.deepEqual(model.outputs.map((o) => o.name), ["sum", "prod", "c2"]);
  const a = new Float32Array([1, 2, 3, 4]);
  const b = new Float32Array([10, 20, 30, 40]);
  const c = new BigInt64Array([21n]);
  const out = model.run([a, b, c]);
  assert.deepEqual(values(out[0].data), [11, 22, 33, 44]);
  assert.deepEqual(values(out.get("prod").data), [10, 40, 90, 160]);
  assert.deepEqual(values(out.byName().c2.data), [42n]);
  const again = model.run({ c: new BigInt64Array([5n]), b: a, a: b });
  assert.deepEqual(values(again.get("sum").data), [11, 22, 33, 44]);
  assert.deepEqual(values(again.get("c2").data), [10n]);
  assert.throws(() => again.get("nope"), RangeError);
});

test("ort: symbolic batch rebinds only when the shape changes", () => {
  using model = open(modelFile("symbolic_batch", symbolicBatchModel()));
  assert.deepEqual(model.inputs[0].shape, [-1, 3]);
  assert.equal(model.inputs[0].dynamic, true);
  for (const batch of [1, 3, 3, 7, 0, 2]) {
    const x = Float32Array.from({ length: batch * 3 }, (_, i) => i - 4);
    const before = model.inputs[0].data;
    const [y] = model.run(x);
    assert.deepEqual(y.shape, [batch, 3]);
    assert.deepEqual(values(y.data), values(x, (v) => v * 2));
    if (batch === 3 && before.length === 9) assert.equal(model.inputs[0].data, before, "same shape keeps the buffer");
  }
  const [y] = model.run({ data: new Float32Array(12).fill(1), shape: [4, 3] });
  assert.deepEqual(y.shape, [4, 3]);
});

test("ort: outputs whose shape depends on the data are read back after each run", () => {
  using model = open(modelFile("nonzero", nonZeroModel()));
  let [y] = model.run(new Float32Array([0, 1, 0, 2, 0, 3]));
  assert.deepEqual(y.shape, [2, 3]);
  assert.deepEqual(values(y.data), [0n, 1n, 1n, 1n, 0n, 2n]);
  [y] = model.run(new Float32Array(6));
  assert.deepEqual(y.shape, [2, 0]);
  [y] = model.run(new Float32Array([5, 0, 0, 0, 0, 0]));
  assert.deepEqual(values(y.data), [0n, 0n]);
});

test("ort: zero-copy inputs: write into model.inputs[i].data and run with no feeds", () => {
  using model = open(modelFile("zero_copy", dtypeModel("float32")));
  const input = model.inputs[0].data as Float32Array;
  assert.equal(input.length, 6);
  input.set([1, 2, 3, 4, 5, 6]);
  const [y] = model.run();
  assert.deepEqual(values(y.data), [2, 4, 6, 8, 10, 12]);
  input[0] = 100;
  assert.equal(model.run()[0].data[0], 200);
});

test("ort: output views are reused by the next run; copy() keeps one", () => {
  using model = open(modelFile("views", dtypeModel("int32")));
  const [first] = model.run(new Int32Array([1, 1, 1, 1, 1, 1]));
  const kept = first.copy();
  const [second] = model.run(new Int32Array([5, 5, 5, 5, 5, 5]));
  assert.equal(second.data, first.data, "the same view is reused");
  assert.equal(first.data[0], 10);
  assert.deepEqual(values(kept.data), [2, 2, 2, 2, 2, 2]);
  assert.ok(kept instanceof Tensor);
  assert.deepEqual(values(second.dense()), [10, 10, 10, 10, 10, 10]);
  assert.deepEqual(values(second.toFloat32()), [10, 10, 10, 10, 10, 10]);
});

test("ort: a subarray view with an offset is a valid feed", () => {
  using model = open(modelFile("subarray", dtypeModel("float64")));
  const big = new Float64Array([9, 9, 1, 2, 3, 4, 5, 6, 9]);
  const [y] = model.run(big.subarray(2, 8));
  assert.deepEqual(values(y.data), [2, 4, 6, 8, 10, 12]);
});

test("ort: describe() lists inputs and outputs with dtype and shape", () => {
  using model = open(modelFile("describe", multiIoModel()));
  const text = model.describe();
  assert.match(text, /backend: ort/);
  assert.match(text, /runtime_version=\d+\.\d+/);
  assert.match(text, /a\s+float32\s+\[1,4\]/);
  assert.match(text, /c2\s+int64\s+\[1\]/);
  assert.equal(model.info.backend, "ort");
});

test("ort: session options are applied and reported", () => {
  using model = open(modelFile("options", dtypeModel("float32")), {
    intraOpThreads: 1,
    interOpThreads: 1,
    graphOptimization: "basic",
  });
  assert.equal(model.info.intra_op_threads, 1);
  assert.equal(model.info.graph_optimization, 1);
  assert.deepEqual(values(model.run(new Float32Array(6).fill(1))[0].data), [2, 2, 2, 2, 2, 2]);
});

test("ort: two models run side by side without sharing buffers", () => {
  const file = modelFile("twice", dtypeModel("float32"));
  using a = open(file);
  using b = open(file);
  const [ya] = a.run(new Float32Array(6).fill(1));
  const [yb] = b.run(new Float32Array(6).fill(3));
  assert.equal(ya.data[0], 2);
  assert.equal(yb.data[0], 6);
});

