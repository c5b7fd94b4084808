/** runAsync on the hbdnn backend against the simulator: event loop, priorities, limits, leaks. */
import assert from "node:assert/strict";
import { EdgerunError, type Model, open } from "../mod.ts";
import { test } from "./compat.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";
import { values } from "./helpers.ts";

const sim = useSim();

function affineModel(name = "affine", functionCalls = 10): string {
  return simModelFile({
    name,
    latencyUs: 1000,
    functionCalls,
    inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 3, b: 1 }],
  }, name);
}

async function settleAll(model: Model): Promise<void> {
  await model.closeAsync();
  assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0), "every simulated task was released");
}

test("hbdnn async: timers keep firing while a task runs on the device", async () => {
  const model = open(affineModel("slow"));
  let settled = false;
  // The device holds the task (set before the run starts, so even a 1 ms task cannot finish
  // first): the timers below fire while it is still running, so the event loop was never
  // blocked on it (whatever the machine's speed).
  const pending = await withHold(sim, async () => {
    const pending = model.runAsync(new Float32Array([1, 2, 3, 4])).finally(() => (settled = true));
    assert.ok(await sim.waitFor(() => simHeld(sim) === 1), "the task is on the device");
    for (let tick = 0; tick < 10; tick++) await new Promise((r) => setTimeout(r, 1));
    assert.equal(simHeld(sim), 1, "the task is still running");
    assert.equal(settled, false, "the run has not settled");
    return pending;
  });
  assert.deepEqual(values((await pending)[0].data), [4, 7, 10, 13]);
  await settleAll(model);
});

test("hbdnn async: with the BPU busy, priority 255 submitted last completes before queued priority-0 runs; customId breaks ties", async () => {
  await sim.with({ latencyUs: 1000 }, async () => {
    const model = open(affineModel("prio"));
    sim.reset();
    const x = new Float32Array(4);
    // The device holds the first task until every other run is queued behind it.
    const runs = await withHold(sim, async () => {
      const first = model.runAsync(x, { customId: 1 });
      assert.ok(await sim.waitFor(() => simHeld(sim) === 1), "the first task occupies the core");
      // Submitted in reverse customId order: the simulator must order them by customId, not arrival.
      const normal = [14, 13, 12, 11, 10].map((id) => model.runAsync(x, { customId: id }));
      assert.ok(await sim.waitFor(() => sim.counter("tasks_submitted") >= 6), "five runs queued");
      const urgent = model.runAsync(x, { priority: 255, customId: 99 });
      assert.ok(await sim.waitFor(() => sim.counter("tasks_submitted") >= 7), "the urgent run queued");
      return [first, ...normal, urgent];
    });
    await Promise.all(runs);
    const log = sim.completionLog();
    assert.deepEqual(log.filter((id) => id !== 1 && id !== 99), [10, 11, 12, 13, 14], `completion log ${log}`);
    assert.ok(log.indexOf(99) < log.indexOf(10), `urgent run after queued ones: ${log}`);
    await settleAll(model);
  });
});

test("hbdnn async: beyond 32 live tasks calls queue in priority order instead of failing", async () => {
  await sim.with({ latencyUs: 5_000 }, async () => {
    const model = open(affineModel("cap"), { maxRequests: 32 });
    sim.reset();
    const x = new Float32Array([1, 1, 1, 1]);
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, sim.counter("tasks_live"))), 1);
    const low = Array.from({ length: 40 }, (_, i) => model.runAsync(x, { customId: 100 + i }));
    const high = model.runAsync(x, { priority: 200, customId: 7 });
    const results = await Promise.all([...low, high]);
    clearInterval(watch);
    for (const r of results) assert.deepEqual(values(r[0].data), [4, 4, 4, 4]);
    assert.ok(peak <= 32, `peak live tasks ${peak}`);
    const log = sim.completionLog();
    assert.equal(log.length, 41);
    // The high-priority call waited in edgerun's queue (the device held 32) and jumped the 8 queued ones.
    assert.ok(log.indexOf(7) < log.indexOf(132), `completion log ${log}`);
    await settleAll(model);
  });
});

test("hbdnn async: 1000 concurrent runs complete with correct outputs and leak no task or buffer", async () => {
  const memBefore = sim.counter("mem_live");
  const model = open(affineModel("many"));
  const runs = Array.from({ length: 1000 }, (_, i) =>
    model.runAsync(new Float32Array([i, -i, 0.5, 1])).then((out) => ({ i, y: out[0] })));
  for (const { i, y } of await Promise.all(runs)) assert.deepEqual(values(y.data), [3 * i + 1, -3 * i + 1, 2.5, 4]);
  await settleAll(model);
  assert.equal(sim.counter("mem_live"), memBefore, "every hbUCPMallocCached buffer was freed");
});

test("hbdnn async: cores reach the simulator (a core the board lacks is an error)", async () => {
  await sim.with({ cores: 2 }, async () => {
    const model = open(affineModel("cores"));
    await model.runAsync(new Float32Array(4), { cores: [1] });
    await assert.rejects(model.runAsync(new Float32Array(4), { cores: [3] }), (e) => {
      assert.ok(e instanceof EdgerunError);
      assert.equal(e.code, "INVALID_ARGUMENT");
      assert.equal(e.vendorCode, -100001);
      return true;
    });
    await settleAll(model);
  });
});

test("hbdnn async: a timeout or abort of a run on the device rejects now; its buffers return when the task ends", async () => {
  await sim.with({ latencyUs: 1000 }, async () => {
    const model = open(affineModel("timeout"), { maxRequests: 1 });
    await withHold(sim, async () => {
      await assert.rejects(model.runAsync(new Float32Array(4), { timeoutMs: 20 }), (e) => e instanceof EdgerunError && e.code === "TIMEOUT");
      assert.equal(simHeld(sim), 1, "rejected at the deadline, not when the task ended");
      const controller = new AbortController();
      const aborted = model.runAsync(new Float32Array(4), { signal: controller.signal });
      setTimeout(() => controller.abort(), 10);
      await assert.rejects(aborted, (e) => e instanceof EdgerunError && e.code === "CANCELLED");
      assert.ok(simHeld(sim) >= 1, "aborted while the device still ran a task");
    });
    // The single request is reused once the device is done with it.
    const out = await model.runAsync(new Float32Array([1, 1, 1, 1]));
    assert.deepEqual(values(out[0].data), [4, 4, 4, 4]);
    await settleAll(model);
  });
});

test("hbdnn async: close() with runs on the device frees their buffers only after the device is done", async () => {
  await sim.with({ latencyUs: 50_000 }, async () => {
    const memBefore = sim.counter("mem_live");
    const freeInUseBefore = sim.counter("free_in_use");
    const model = open(affineModel("close"), { maxRequests: 4 });
    const runs = Array.from({ length: 8 }, () => model.runAsync(new Float32Array(4)));
    await sim.waitFor(() => sim.counter("tasks_live") >= 1);
    model.close();
    const settled = await Promise.allSettled(runs);
    assert.ok(settled.every((s) => s.status === "rejected" && (s.reason as EdgerunError).code === "CLOSED"));
    assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0));
    assert.ok(await sim.waitFor(() => sim.counter("mem_live") === memBefore), "buffers freed after the tasks ended");
    assert.equal(sim.counter("free_in_use"), freeInUseBefore, "no buffer was freed while the device used it");
  });
});
