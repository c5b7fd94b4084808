/**
 * The hbdnn backend's resource and cache discipline, read from the simulator's counters: every
 * hbUCPMallocCached is freed, every task released, inputs CLEANed before and outputs INVALIDATEd
 * after each run; in strict cache mode (the device sees only what was flushed) results stay right.
 */
import assert from "node:assert/strict";
import { open, openAll } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";
import { delta, simModelFile, useSim } from "./sim_helpers.ts";
import { simExpected, type SimModelSpec } from "./sim/simfile.ts";

const sim = useSim();

const MULTI: SimModelSpec = {
  name: "multi",
  inputs: [
    { name: "a", dtype: "F32", shape: [2, 3], stride: [16, 4] },
    { name: "b", dtype: "S8", shape: [4], quant: { scales: [0.5], zeroPoints: [1] } },
  ],
  outputs: [
    { name: "p", dtype: "F32", shape: [2, 3], stride: [32, 4], source: 0, a: 2 },
    { name: "q", dtype: "S16", shape: [4], source: 1, a: 3, b: 1 },
    { name: "r", dtype: "U8", shape: [8], source: -1 },
  ],
};

const A = Float32Array.from([1, 2, 3, 4, 5, 6]);
const B = Int8Array.from([-3, 0, 5, 127]);

test("hbdnn leaks: open allocates one cached buffer per tensor; close frees them all", () => {
  const before = sim.counters();
  const model = open(simModelFile(MULTI));
  const opened = delta(before, sim.counters());
  assert.equal(opened.mem_alloc, 5, "2 inputs + 3 outputs");
  assert.equal(opened.mem_live, 5);
  const bytes = [...model.inputs, ...model.outputs].reduce((n, t) => n + t.byteSize, 0);
  assert.equal(opened.mem_live_bytes, bytes, "each buffer is byteSize long");
  for (const input of model.inputs) {
    assert.equal(sim.memCounter(input.data, "cached"), 1, `${input.name} comes from hbUCPMallocCached`);
    assert.equal(sim.memCounter(input.data, "size"), input.byteSize);
  }
  model.run([A, B]);
  model.close();
  const closed = delta(before, sim.counters());
  assert.equal(closed.mem_free, 5);
  assert.equal(closed.mem_live, 0);
  assert.equal(closed.mem_live_bytes, 0);
  assert.equal(closed.free_in_use, 0);
  assert.equal(sim.counter("tasks_live"), 0);
});

test("hbdnn leaks: each run creates, submits, completes and releases one task; flushes once per tensor", () => {
  using model = open(simModelFile(MULTI));
  const runs = 5;
  const before = sim.counters();
  for (let i = 0; i < runs; i++) {
    const out = model.run([A.map((v) => v + i), B]);
    assert.deepEqual(values(out.get("p").dense(), Number), Array.from(A, (v) => 2 * (v + i)));
  }
  const d = delta(before, sim.counters());
  assert.equal(d.tasks_created, runs);
  assert.equal(d.tasks_submitted, runs);
  assert.equal(d.tasks_completed, runs);
  assert.equal(d.tasks_released, runs);
  assert.equal(d.tasks_failed, 0);
  assert.equal(d.tasks_cancelled, 0);
  assert.equal(d.sync_infer, 0);
  assert.equal(d.bad_handles, 0);
  assert.equal(sim.counter("tasks_live"), 0);
  assert.equal(d.flush_clean, runs * 2, "one CLEAN per input per run");
  assert.equal(d.flush_invalidate, runs * 3, "one INVALIDATE per output per run");
  assert.equal(d.missed_clean, 0);
  assert.equal(d.outputs_written, runs * 3);
  assert.equal(d.outputs_invalidated, runs * 3, "every device write was invalidated before the CPU read it");
  assert.equal(d.mem_alloc, 0, "runs allocate nothing");
  // Per buffer: each input CLEANed once per run, each output INVALIDATEd once per run, nothing pending.
  for (const input of model.inputs) {
    assert.ok(sim.memCounter(input.data, "clean") >= runs, input.name);
    assert.equal(sim.memCounter(input.data, "missed_clean"), 0, input.name);
    assert.equal(sim.memCounter(input.data, "inflight"), 0, input.name);
  }
  const outs = model.run([A, B]);
  for (const out of outs) {
    assert.equal(sim.memCounter(out.data, "pending_invalidate"), 0, out.name);
    assert.equal(sim.memCounter(out.data, "device_writes"), sim.memCounter(out.data, "outputs_invalidated"), out.name);
  }
});

test("hbdnn leaks: zero-copy writes are CLEANed before the device reads them (no missed clean)", () => {
  using model = open(simModelFile(MULTI));
  const before = sim.counters();
  const a = model.inputs[0].data as Float32Array;
  for (let i = 0; i < 3; i++) {
    a[0] = 10 * i; // element (0,0)
    a[4 + 2] = -i; // element (1,2): row stride 16 bytes = 4 floats
    const p = model.run().get("p").dense();
    assert.equal(p[0], 20 * i);
    assert.equal(p[5], i === 0 ? 0 : -2 * i);
  }
  const d = delta(before, sim.counters());
  assert.equal(d.missed_clean, 0);
  assert.equal(d.flush_clean, 6);
});

test("hbdnn leaks: strict cache mode (device sees only flushed memory): results stay right run after run", async () => {
  await sim.with({ strictCache: true }, () => {
    using model = open(simModelFile(MULTI));
    const before = sim.counters();
    for (let i = 0; i < 4; i++) {
      const a = A.map((v) => v * (i + 1));
      const b = B.map((v) => v - i);
      const out = model.run([a, b]);
      const expected = simExpected(MULTI, [a, b]);
      out.forEach((t, k) => assert.deepEqual(values(t.dense(), Number), Array.from(expected[k]), `${t.name} run ${i}`));
      // Zero-copy too: a stale input or a stale output would show here.
      (model.inputs[0].data as Float32Array)[0] = 1000 + i;
      assert.equal(model.run().get("p").dense()[0], 2 * (1000 + i));
    }
    const d = delta(before, sim.counters());
    assert.equal(d.missed_clean, 0);
    assert.equal(d.outputs_invalidated, d.outputs_written);
  });
});

test("hbdnn leaks: failed runs (bad core) release their task and keep no buffer pinned", async () => {
  await sim.with({ cores: 1 }, () => {
    using model = open(simModelFile(MULTI));
    const before = sim.counters();
    for (let i = 0; i < 40; i++) assert.throws(() => model.run([A, B], { cores: [2] }));
    const d = delta(before, sim.counters());
    assert.equal(d.tasks_created, 40);
    assert.equal(d.tasks_released, 40, "every task created is released, even when submit fails");
    assert.equal(sim.counter("tasks_live"), 0);
    // More failures than the 32-task cap: a leaked slot would have turned into BUSY by now.
    assert.deepEqual(values(model.run([A, B]).get("q").dense(), Number), Array.from(simExpected(MULTI, [A, B])[1]));
    for (const input of model.inputs) assert.equal(sim.memCounter(input.data, "inflight"), 0);
  });
});

test("hbdnn leaks: a dynamic input reallocated for a new shape frees the old buffer", () => {
  const spec: SimModelSpec = {
    name: "dyn",
    inputs: [{ name: "y", dtype: "U8", shape: [1, -1, -1, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 }],
    outputs: [{ name: "o", dtype: "U8", shape: [4] }],
  };
  const before = sim.counters();
  {
    using model = open(simModelFile(spec));
    assert.equal(delta(before, sim.counters()).mem_live, 1, "the dynamic input waits for its shape");
    for (const [h, w] of [[2, 32], [4, 64], [4, 64], [1, 32], [8, 128]]) {
      model.run({ data: new Uint8Array(h * w).fill(h), shape: [1, h, w, 1] });
      assert.equal(delta(before, sim.counters()).mem_live, 2, `${h}x${w}: one input and one output buffer live`);
    }
  }
  const d = delta(before, sim.counters());
  assert.equal(d.mem_live, 0);
  assert.equal(d.mem_alloc, d.mem_free);
  assert.equal(d.free_in_use, 0);
});

test("hbdnn leaks: openAll() models close independently; the last close leaves nothing behind", () => {
  const path = simModelFile([MULTI, { ...MULTI, name: "multi2" }]);
  const before = sim.counters();
  const models = openAll(path);
  assert.equal(delta(before, sim.counters()).mem_live, 10);
  models.get("multi")!.close();
  assert.equal(delta(before, sim.counters()).mem_live, 5);
  models.get("multi2")!.run([A, B]);
  models.get("multi2")!.close();
  const d = delta(before, sim.counters());
  assert.equal(d.mem_live, 0);
  assert.equal(d.model_release_refused, 0);
});

test(
  "hbdnn leaks: closing a model right after a timed-out run frees its buffers once the device is done",
  async () => {
    const before = sim.counters();
    await sim.with({ latencyUs: 150_000 }, async () => {
      const model = open(simModelFile(MULTI));
      assert.throws(
        () => model.run([A, B], { timeoutMs: 10 }),
        (e: unknown) => (e as { code?: string }).code === "TIMEOUT",
      );
      model.close();
      const done = await sim.waitFor(() => sim.counter("tasks_completed") - before.tasks_completed >= 1, 3000);
      assert.ok(done, "the simulator finished the orphaned task");
      // close() hands the request to a worker thread that frees it once the device is done.
      assert.ok(await sim.waitFor(() => sim.counter("mem_live") === before.mem_live), "buffers freed after the task ended");
    });
    const d = delta(before, sim.counters());
    assert.equal(d.free_in_use, 0, "hbUCPFree was refused for a buffer still in use by the device");
    assert.equal(d.mem_live, 0, "buffers leaked");
  },
);
