/** Pool: workers share one loaded model; errors come back typed; close detaches every worker. */
import assert from "node:assert/strict";
import { EdgerunError, open, Pool } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { tempFile, values } from "./helpers.ts";

const workerModule = new URL("./workers/double.ts", import.meta.url);

test("pool: two workers run the shared model and return post-processed results", async () => {
  using model = open(tempFile("pool_f32.onnx", dtypeModel("float32")));
  await using pool = await Pool.create(model, workerModule, { workers: 2 });
  assert.equal(pool.size, 2);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => pool.run<{ sum: number; model: string }>({ values: [i, 1, 1, 1, 1, 1] })),
  );
  results.forEach((r, i) => {
    assert.equal(r.sum, 2 * (i + 5));
    assert.equal(r.model, model.name);
  });
  // The main thread's model is untouched by the workers' runs.
  assert.deepEqual(values(model.run(new Float32Array(6).fill(3))[0].data), [6, 6, 6, 6, 6, 6]);
});

test("pool: a handler's error is rejected with its class; the pool keeps working", async () => {
  using model = open(tempFile("pool_err.onnx", dtypeModel("float32")));
  await using pool = await Pool.create(model, workerModule, { workers: 1 });
  await assert.rejects(pool.run({ values: [], fail: "type" }), (e) => e instanceof TypeError && e.message === "bad message");
  await assert.rejects(pool.run({ values: [1, 2] }), (e) => e instanceof RangeError && /expects 6 elements/.test(e.message));
  assert.equal((await pool.run<{ sum: number }>({ values: [1, 1, 1, 1, 1, 1] })).sum, 12);
});

test("pool: close waits for messages in flight, then refuses new ones", async () => {
  using model = open(tempFile("pool_close.onnx", dtypeModel("float32")));
  const pool = await Pool.create(model, workerModule, { workers: 2 });
  const pending = Array.from({ length: 8 }, () => pool.run<{ sum: number }>({ values: [1, 1, 1, 1, 1, 1] }));
  await pool.close();
  for (const r of await Promise.all(pending)) assert.equal(r.sum, 12);
  await assert.rejects(pool.run({ values: [] }), (e) => e instanceof EdgerunError && e.code === "CLOSED");
  await assert.rejects(Pool.create(model, workerModule, { workers: 0 }), RangeError);
});
