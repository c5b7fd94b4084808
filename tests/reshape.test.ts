/**
 * model.reshape(): a dynamic input takes a shape before anything is written into it; shape,
 * strides and data then describe it, the old view is emptied (docs/lifetimes.md), run() with no
 * feeds runs on it, and bad shapes change nothing.
 */
import assert from "node:assert/strict";
import { open, writeNormalized } from "../mod.ts";
import { test } from "./compat.ts";
import { tempFile } from "./helpers.ts";
import { identityModel } from "./fixtures/onnx_models.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";

useSim();

const recLike = () => tempFile("reshape_rec.onnx", identityModel("reshape_rec", [{ name: "x", dtype: "float32", shape: ["n", 3, 48, "w"] }]));

test("reshape: inputs[i].shape, strides and data describe the new shape; the old view is emptied; run() uses it", async () => {
  using model = open(recLike());
  const input = model.inputs[0];
  assert.deepEqual(input.shape, [-1, 3, 48, -1], "the declared shape until one is set");
  const before = input.data;
  model.reshape({ x: [2, 3, 48, 320] });
  assert.deepEqual(input.shape, [2, 3, 48, 320]);
  assert.deepEqual(input.strides, [3 * 48 * 320 * 4, 48 * 320 * 4, 320 * 4, 4]);
  assert.equal(input.data.length, 2 * 3 * 48 * 320);
  assert.equal(before.length, 0, "the view of the replaced buffer is empty");
  const data = input.data as Float32Array;
  data.forEach((_, i) => (data[i] = i % 251));
  const [out] = model.run();
  assert.deepEqual(out.shape, [2, 3, 48, 320]);
  assert.deepEqual(Array.from((out.data as Float32Array).subarray(0, 4)), [0, 1, 2, 3]);
  const [later] = await model.runAsync();
  assert.equal((later.data as Float32Array)[250], 250);
  // The same shape again keeps the buffer (and its views).
  model.reshape({ x: [2, 3, 48, 320] });
  assert.equal(data.length, 2 * 3 * 48 * 320);
  // A feed of another shape still reshapes on the fly.
  const [fed] = model.run({ data: new Float32Array(3 * 48 * 8), shape: [1, 3, 48, 8] });
  assert.deepEqual(fed.shape, [1, 3, 48, 8]);
  assert.deepEqual(input.shape, [1, 3, 48, 8]);
  assert.equal(data.length, 0);
});

test("reshape: then a frame is resized into part of the input at a batch index, the rest kept", () => {
  using model = open(recLike());
  model.reshape({ x: [2, 3, 48, 64] });
  const data = model.inputs[0].data as Float32Array;
  data.fill(-1);
  const line = new Uint8Array(40 * 20 * 3).fill(255);
  const placed = writeNormalized(model, line, { format: "rgb", width: 40, height: 20, into: { x: 0, y: 0, width: 24, height: 48 }, batch: 1, std: [255, 255, 255] });
  assert.deepEqual([placed.width, placed.height], [24, 48]);
  assert.deepEqual(model.inputs[0].shape, [2, 3, 48, 64], "the input kept its shape");
  const plane = 48 * 64;
  assert.equal(data[0], -1, "batch 0 untouched");
  assert.equal(data[3 * plane + 23], 1, "the line at batch 1");
  assert.equal(data[3 * plane + 24], -1, "right of the region untouched");
  assert.equal(data[3 * plane + 2 * plane + 47 * 64 + 10], 1);
});

test("reshape: bad shapes are refused and change nothing", () => {
  using model = open(recLike());
  model.reshape({ x: [1, 3, 48, 100] });
  const view = model.inputs[0].data;
  assert.throws(() => model.reshape({ x: [1, 3, 32, 100] }), /input 'x' has shape \[\?,3,48,\?\], cannot take \[1,3,32,100\]/);
  assert.throws(() => model.reshape({ x: [1, 3, 48] }), RangeError);
  assert.throws(() => model.reshape({ x: [1, 3, 48, -2] }), TypeError);
  assert.throws(() => model.reshape({ x: [1, 3, 48, 1.5] }), TypeError);
  assert.throws(() => model.reshape({ y: [1] }), /has no input 'y'/);
  assert.throws(() => model.reshape([[1, 3, 48, 2]] as unknown as Record<string, number[]>), TypeError);
  assert.equal(view.length, 3 * 48 * 100);
  assert.deepEqual(model.inputs[0].shape, [1, 3, 48, 100]);
  model.close();
  assert.throws(() => model.reshape({ x: [1, 3, 48, 8] }), /closed/);
});

test("reshape: a fixed input takes only its own shape; hbdnn dynamic inputs reshape too", () => {
  using fixed = open(tempFile("reshape_fixed.onnx", identityModel("reshape_fixed", [{ name: "x", dtype: "float32", shape: [1, 4] }])));
  fixed.reshape({ x: [1, 4] });
  assert.throws(() => fixed.reshape({ x: [2, 4] }), RangeError);
  using sim = open(simModelFile({
    name: "reshape_sim",
    inputs: [{ name: "x", dtype: "F32", shape: [1, -1, 8], stride: [-1, 32, 4] }],
    outputs: [{ name: "o", dtype: "F32", shape: [4], source: 0 }],
  }, "reshape_sim"));
  sim.reshape({ x: [1, 5, 8] });
  assert.deepEqual(sim.inputs[0].shape, [1, 5, 8]);
  assert.equal(sim.inputs[0].data.length, 40);
  (sim.inputs[0].data as Float32Array).set([1, 2, 3, 4]);
  assert.deepEqual(Array.from(sim.run()[0].data as Float32Array), [1, 2, 3, 4]);
});
