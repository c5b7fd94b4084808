/** runAsync on the ort backend: correctness under concurrency, abort, timeout, close, stats. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel, multiIoModel, symbolicBatchModel } from "./fixtures/onnx_models.ts";
import { ocrModels, tempFile, values } from "./helpers.ts";

const detPath = join(ocrModels, "ch_PP-OCRv4_det_infer.onnx");

test("async: 1000 concurrent runAsync calls all complete with their own correct outputs", async () => {
  using model = open(tempFile("async_batch.onnx", symbolicBatchModel()), { maxRequests: 4 });
  const runs = Array.from({ length: 1000 }, (_, i) => {
    const x = new Float32Array([i, -i, i / 2]);
    return model.runAsync(x).then((out) => ({ i, y: out[0] }));
  });
  for (const { i, y } of await Promise.all(runs)) {
    assert.deepEqual(y.shape, [1, 3]);
    assert.deepEqual(values(y.data), [2 * i, -2 * i, i]);
  }
  assert.equal(model.stats().count, 1000);
});

test("async: outputs are owned copies that survive later runs", async () => {
  using model = open(tempFile("async_copies.onnx", dtypeModel("int32")));
  const a = await model.runAsync(new Int32Array(6).fill(1));
  const b = await model.runAsync(new Int32Array(6).fill(4));
  assert.deepEqual(values(a[0].data), [2, 2, 2, 2, 2, 2]);
  assert.deepEqual(values(b[0].data), [8, 8, 8, 8, 8, 8]);
  assert.notEqual(a[0].data.buffer, b[0].data.buffer);
});

test("async: multi-input records and arrays work as in run()", async () => {
  using model = open(tempFile("async_multi.onnx", multiIoModel()));
  const out = await model.runAsync({ a: new Float32Array([1, 2, 3, 4]), b: new Float32Array(4).fill(2), c: new BigInt64Array([3n]) });
  assert.deepEqual(values(out.get("prod").data), [2, 4, 6, 8]);
  assert.deepEqual(values(out.get("c2").data), [6n]);
});

test("async: runAsync with no feeds uses model.inputs[i].data as it is when called", async () => {
  using model = open(tempFile("async_nofeeds.onnx", dtypeModel("float32")));
  (model.inputs[0].data as Float32Array).set([1, 2, 3, 4, 5, 6]);
  const pending = model.runAsync();
  (model.inputs[0].data as Float32Array).fill(0);
  assert.deepEqual(values((await pending)[0].data), [2, 4, 6, 8, 10, 12]);
});

test("async: argument errors reject without running", async () => {
  using model = open(tempFile("async_args.onnx", dtypeModel("float32")));
  await assert.rejects(model.runAsync(new Float64Array(6)), TypeError);
  await assert.rejects(model.runAsync(new Float32Array(6), { priority: 300 }), RangeError);
  await assert.rejects(model.runAsync(new Float32Array(6), { signal: {} as AbortSignal }), TypeError);
  await assert.rejects(model.runAsync(new Float32Array(6), { nope: 1 } as never), TypeError);
  assert.equal(model.stats().count, 0);
});

test("async: an already-aborted signal rejects with CANCELLED and the reason as cause", async () => {
  using model = open(tempFile("async_abort0.onnx", dtypeModel("float32")));
  const reason = new Error("stop");
  await assert.rejects(model.runAsync(new Float32Array(6), { signal: AbortSignal.abort(reason) }), (e) => {
    assert.ok(e instanceof EdgerunError);
    assert.equal(e.code, "CANCELLED");
    assert.equal((e as Error).cause, reason);
    return true;
  });
});

test("async: aborting queued runs rejects them; running ones still finish cleanly", async () => {
  using model = open(detPath, { maxRequests: 1, intraOpThreads: 1 });
  const x = { data: new Float32Array(3 * 96 * 128).fill(0.5), shape: [1, 3, 96, 128] };
  const controller = new AbortController();
  const first = model.runAsync(x);
  const queued = Array.from({ length: 5 }, () => model.runAsync(x, { signal: controller.signal }));
  controller.abort();
  const settled = await Promise.allSettled(queued);
  assert.ok(settled.every((s) => s.status === "rejected" && (s.reason as EdgerunError).code === "CANCELLED"));
  assert.deepEqual((await first)[0].shape, [1, 1, 96, 128]);
  assert.deepEqual((await model.runAsync(x))[0].shape, [1, 1, 96, 128], "the model still works");
});

test("async: timeoutMs rejects a run still queued behind a slow one with TIMEOUT", async () => {
  using model = open(detPath, { maxRequests: 1, intraOpThreads: 1 });
  const big = { data: new Float32Array(3 * 480 * 640).fill(0.5), shape: [1, 3, 480, 640] };
  const slow = model.runAsync(big);
  const small = { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] };
  await assert.rejects(model.runAsync(small, { timeoutMs: 1 }), (e) => e instanceof EdgerunError && e.code === "TIMEOUT");
  await slow;
});

test("async: close() rejects queued and running runs with CLOSED and frees nothing in use", async () => {
  const model = open(detPath, { maxRequests: 1, intraOpThreads: 1 });
  const x = { data: new Float32Array(3 * 96 * 128).fill(0.5), shape: [1, 3, 96, 128] };
  const runs = Array.from({ length: 4 }, () => model.runAsync(x));
  model.close();
  const settled = await Promise.allSettled(runs);
  assert.ok(settled.every((s) => s.status === "rejected" && (s.reason as EdgerunError).code === "CLOSED"));
  await assert.rejects(model.runAsync(x), (e) => e instanceof EdgerunError && e.code === "CLOSED");
});

test("async: await using / closeAsync waits for runs in flight", async () => {
  const x = { data: new Float32Array(3 * 96 * 128).fill(0.5), shape: [1, 3, 96, 128] };
  let pending: Promise<unknown>[] = [];
  let model;
  {
    await using m = open(detPath, { maxRequests: 2 });
    model = m;
    pending = [m.runAsync(x), m.runAsync(x)];
  }
  assert.equal(model.closed, true);
  const settled = await Promise.allSettled(pending);
  assert.ok(settled.every((s) => s.status === "fulfilled"), "runs on the device completed before close");
});

test("async: sync run() and runAsync() use separate buffers", async () => {
  using model = open(tempFile("async_mixed.onnx", dtypeModel("float32")));
  const pending = model.runAsync(new Float32Array(6).fill(1));
  const [y] = model.run(new Float32Array(6).fill(10));
  assert.equal(y.data[0], 20);
  assert.equal((await pending)[0].data[0], 2);
});

test("async: stats() reports count and ordered percentiles; resetStats clears", async () => {
  using model = open(tempFile("async_stats.onnx", dtypeModel("float32")));
  for (let i = 0; i < 20; i++) await model.runAsync(new Float32Array(6));
  for (let i = 0; i < 10; i++) model.run(new Float32Array(6));
  const s = model.stats();
  assert.equal(s.count, 30);
  for (const t of [s.device, s.endToEnd]) {
    assert.ok(t.min >= 0 && t.min <= t.p50 && t.p50 <= t.p99 && t.p99 <= t.max, JSON.stringify(t));
  }
  assert.ok(s.endToEnd.mean >= s.device.mean);
  model.resetStats();
  assert.equal(model.stats().count, 0);
});
