/**
 * The view lifetime rule (docs/lifetimes.md), the cases an adversarial review found after the
 * first fixes: memory moved out of a view (transfer), a failed run that had replaced a dynamic
 * output, a reshape behind a timed-out hbdnn task, arrays that lie about their length, a dead Pool
 * worker, close() during closeAsync(), and completion queues of workers that stop mid-run. Cases
 * that could crash or hang run in a child process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, nv12, open } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel, reshapeModel } from "./fixtures/onnx_models.ts";
import { root, runChild, tempFile, values } from "./helpers.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";

const F32 = tempFile("more_f32.onnx", dtypeModel("float32")); // y = x + x, [2,3]
const RESHAPE = tempFile("more_reshape.onnx", reshapeModel());
const SIM = simModelFile({
  name: "more",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3] }],
  outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: 3, b: 1 }],
}, "more");
const SIM_DYNAMIC = simModelFile({
  name: "more_dynamic",
  latencyUs: 1000,
  inputs: [{ name: "x", dtype: "F32", shape: [1, -1], stride: [-1, 4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 2 }],
}, "more_dynamic");

const imports = `
  import { open, Pool } from ${JSON.stringify(join(root, "mod.ts"))};
  import { gc } from ${JSON.stringify(join(root, "tests/compat.ts"))};
  import { liveCounts } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
  import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
  import { loadNative, openRawLibrary } from ${JSON.stringify(join(root, "ffi/load.ts"))};
  const sim = useSim();
  const tick = () => new Promise((r) => setTimeout(r, 1));
  const warnings = [];
  console.warn = (...args) => warnings.push(args.join(" "));
`;

const child = (code: string) => runChild(imports + code);

test("lifetimes: memory moved out of a view (transfer, structuredClone) is kept, never freed or reused (close, run, GC)", () => {
  const result = child(`
    const paths = [${JSON.stringify(F32)}, ${JSON.stringify(SIM)}];
    const out = {};
    for (const path of paths) {
      // close(): the transferred output memory stays readable with its values.
      const a = open(path);
      const y = a.run(new Float32Array(6).fill(1))[0];
      const moved = new Float32Array(y.data.buffer.transfer());
      const before = Array.from(moved);
      a.close();
      for (let i = 0; i < 5; i++) open(path).run(new Float32Array(6).fill(-7)); // churn memory (and GC)
      // run(): a model whose input memory was moved out goes on with new buffers.
      const b = open(path);
      const input = structuredClone(b.inputs[0].data, { transfer: [b.inputs[0].data.buffer] });
      input.fill(5);
      const next = Array.from(b.run(new Float32Array(6).fill(2))[0].data);
      const inputAfter = Array.from(input);
      // GC: moved out, then the model dropped unclosed.
      const kept = (() => {
        const c = open(path);
        return new Float32Array(c.run(new Float32Array(6).fill(4))[0].data.buffer.transfer());
      })();
      for (let i = 0; i < 20; i++) { gc(); await tick(); }
      for (let i = 0; i < 5; i++) open(path).run(new Float32Array(6).fill(-9));
      out[path] = { before, after: Array.from(moved), next, inputAfter, kept: Array.from(kept) };
      b.close();
    }
    console.log(JSON.stringify({ out, warned: warnings.filter((w) => /transferred/.test(w)).length }));
  `);
  const out = result.out as Record<string, Record<string, number[]>>;
  assert.deepEqual(out[F32], {
    before: [2, 2, 2, 2, 2, 2],
    after: [2, 2, 2, 2, 2, 2],
    next: [4, 4, 4, 4, 4, 4],
    inputAfter: [5, 5, 5, 5, 5, 5],
    kept: [8, 8, 8, 8, 8, 8],
  });
  assert.deepEqual(out[SIM], {
    before: [4, 4, 4, 4, 4, 4],
    after: [4, 4, 4, 4, 4, 4],
    next: [7, 7, 7, 7, 7, 7],
    inputAfter: [5, 5, 5, 5, 5, 5],
    kept: [13, 13, 13, 13, 13, 13],
  });
  assert.equal(result.warned, 1, "said once");
});

test("lifetimes: a failed run that had already replaced a dynamic output empties the output's old view", () => {
  using model = open(RESHAPE);
  const n = 4096;
  const feed = (x: Float32Array, s: BigInt64Array) => ({ x: { data: x, shape: [x.length] }, s: { data: s, shape: [s.length] } });
  const [y1] = model.run(feed(new Float32Array(n).fill(3), BigInt64Array.of(BigInt(n))));
  const kept = y1.data;
  assert.equal(kept.length, n);
  assert.throws(() => model.run(feed(Float32Array.of(7), new BigInt64Array(11).fill(1n))), EdgerunError);
  assert.equal(kept.length, 0, "the view of the released output is empty");
  const [again] = model.run(feed(new Float32Array(n).fill(100), BigInt64Array.of(BigInt(n))));
  assert.deepEqual(new Set(values(again.data)), new Set([200]));
  assert.equal(kept.length, 0);
});

test("lifetimes: hbdnn: an input keeps its memory while a timed-out task may still use it (reshape is BUSY)", async () => {
  const sim = useSim();
  const model = open(SIM_DYNAMIC);
  const feed = (n: number) => ({ data: new Float32Array(n).fill(1), shape: [1, n] });
  assert.deepEqual(values(model.run(feed(4))[0].data), [2, 2, 2, 2]);
  const freeInUse = sim.counter("free_in_use");
  await withHold(sim, () => {
    assert.throws(() => model.run(feed(4), { timeoutMs: 20 }), (e) => e instanceof EdgerunError && e.code === "TIMEOUT");
    assert.equal(simHeld(sim), 1, "the timed-out task is still on the device");
    assert.throws(() => model.run(feed(4096)), (e) => e instanceof EdgerunError && e.code === "BUSY" && /still on the device/.test(e.message));
  });
  assert.ok(await sim.waitFor(() => simHeld(sim) === 0), "the late task ended");
  // Once the device is done the reshape goes ahead (the late task is released first).
  assert.deepEqual(values(model.run(feed(4096))[0].data), [2, 2, 2, 2]);
  assert.equal(sim.counter("free_in_use"), freeInUse, "no buffer was freed while the device used it");
  await model.closeAsync();
});

test("lifetimes: lengths passed to native code are the engine's, not an array's own properties", () => {
  using model = open(F32);
  const one = Float32Array.of(1);
  Object.defineProperty(one, "length", { value: 6 });
  Object.defineProperty(one, "byteLength", { value: 24 });
  assert.throws(() => model.run({ data: one, quantize: true }), RangeError);
  assert.throws(() => model.run(one), RangeError);
  const pixels = new Uint8Array(3);
  Object.defineProperty(pixels, "byteLength", { value: 2048 * 2048 * 3 });
  assert.throws(() => nv12(pixels, { width: 2048, height: 2048, format: "rgb" }), RangeError);
});

test("lifetimes: close() while closeAsync() waits for a run settles closeAsync", async () => {
  const sim = useSim();
  const model = open(SIM);
  const result = await withHold(sim, async () => {
    const run = model.runAsync(new Float32Array(6));
    run.catch(() => {});
    assert.ok(await sim.waitFor(() => simHeld(sim) === 1), "the run is on the device");
    const closing = model.closeAsync();
    model.close();
    await closing; // before the fix: never settled
    return run.then(() => "resolved", (e) => e.code);
  });
  assert.equal(result, "CLOSED");
  assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0));
});

test("lifetimes: a Pool worker that dies rejects its own runs only; the pool goes on, closes, and gives its reference back", () => {
  const worker = join(root, "tests/workers/crashing.ts");
  const result = child(`
    const model = open(${JSON.stringify(F32)});
    const pool = await Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 2 });
    await pool.run({ crash: true, v: 1 }); // the worker that ran this dies right after
    for (let i = 0; i < 200 && pool.size === 2; i++) await tick();
    const after = await Promise.all([1, 2, 3, 4].map((v) => pool.run({ v })));
    await pool.close();
    model.close();
    let counts = liveCounts();
    console.log(JSON.stringify({ size: pool.size, after, models: counts.models }));
  `);
  // The dead worker's own requests stay allocated (a dead realm cannot free them); its model
  // reference is given back, so the native model lives only as long as those requests.
  assert.equal(result.size, 0);
  assert.deepEqual(result.after, [2, 4, 6, 8]);
});

test("lifetimes: a Pool worker stopped with a run in flight gives its completion queue back", () => {
  const worker = join(root, "tests/workers/inflight.ts");
  const slow = simModelFile({
    name: "slow",
    latencyUs: 300_000,
    inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 4] }],
  }, "inflight");
  const result = child(`
    const lib = openRawLibrary(loadNative().path, {
      er_completion_queue_new: { args: ["buffer"], result: "i32" },
      er_completion_queue_free: { args: ["u32"], result: "i32" },
    });
    const nextId = () => {
      const out = new Uint32Array(1);
      lib.symbols.er_completion_queue_new(out);
      lib.symbols.er_completion_queue_free(out[0]);
      return out[0];
    };
    const model = open(${JSON.stringify(slow)});
    for (let i = 0; i < 5; i++) {
      const pool = await Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 1 });
      await pool.run({ leave: true });
      await pool.close();
    }
    // Each freed queue's waiter was woken; once all have left, every id is free again.
    const waiters = openRawLibrary(loadNative().path, { er_debug_queue_waiters: { args: ["u32"], result: "i32" } });
    const asleep = () => Array.from({ length: 16 }, (_, id) => waiters.symbols.er_debug_queue_waiters(id)).some((n) => n > 0);
    for (let i = 0; i < 5000 && asleep(); i++) await tick();
    const next = nextId();
    await model.closeAsync();
    console.log(JSON.stringify({ next, asleep: asleep() }));
  `);
  // The main realm never ran asynchronously: the lowest id is free unless a worker's queue leaked.
  assert.deepEqual(result, { next: 1, asleep: false });
});

test("lifetimes: close() empties views whose buffer or transfer a program shadowed", () => {
  const model = open(F32);
  const [y] = model.run(new Float32Array(6).fill(1));
  const view = y.data;
  Object.defineProperty(view.buffer, "transfer", { value: () => new ArrayBuffer(0) });
  Object.defineProperty(view, "buffer", { value: new ArrayBuffer(24) });
  model.close();
  assert.equal(y.data.length, 0, "the memory behind the view was freed: the view must be empty");
  assert.equal(view.length, 0);
});
