/** Pool pipelines: one worker hosts several shared models by name; the single-model form is unchanged. */
import assert from "node:assert/strict";
import { open, Pool } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { tempFile } from "./helpers.ts";

const pipelineWorker = new URL("./workers/pipeline.ts", import.meta.url);
const singleWorker = new URL("./workers/double.ts", import.meta.url);

test("pool pipeline: a record of models reaches the handler by name; both run in each worker", async () => {
  using first = open(tempFile("pipe_a.onnx", dtypeModel("float32")));
  using second = open(tempFile("pipe_b.onnx", dtypeModel("float32")));
  await using pool = await Pool.create({ first, second }, pipelineWorker, { workers: 2 });
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => pool.run<{ out: number[]; names: string[] }>({ values: [i, 1, 2, 3, 4, 5] })),
  );
  results.forEach((r, i) => assert.deepEqual(r.out, [4 * i, 4, 8, 12, 16, 20])); // x + x, twice
  assert.deepEqual(results[0].names, [first.name, second.name]);
});

test("pool pipeline: an array is named by its models' names; duplicate names and non-models are refused", async () => {
  using a = open(tempFile("pipe_first.onnx", dtypeModel("float32")));
  await assert.rejects(Pool.create([a, a], pipelineWorker), /two models of the pipeline are named/);
  await assert.rejects(Pool.create([] as never, pipelineWorker), TypeError);
  await assert.rejects(Pool.create({ x: 1 } as never, pipelineWorker), TypeError);
  // A single-model worker (serveModel) cannot serve a pipeline: create() fails, references given back.
  using b = open(tempFile("pipe_second.onnx", dtypeModel("float32")));
  await assert.rejects(Pool.create({ first: a, second: b }, singleWorker, { workers: 1 }), /serve it with servePipeline\(\)/);
  a.close();
  b.close();
});

test("pool pipeline: the single-model form still serves serveModel workers", async () => {
  using model = open(tempFile("pipe_single.onnx", dtypeModel("float32")));
  await using pool = await Pool.create(model, singleWorker, { workers: 1 });
  assert.equal((await pool.run<{ sum: number }>({ values: [1, 1, 1, 1, 1, 1] })).sum, 12);
});
