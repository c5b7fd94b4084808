/**
 * hbdnn after a timeout (issue 10, item 6): a task whose wait timed out ("late") must never be
 * waited for without limit on the caller's thread, neither by the next run nor by close().
 *
 * The simulator's hold (tests/sim_hold.ts) keeps every finished task running until released, so
 * "the device is still busy" is a state the test sets, not a race against the clock. Its bound
 * only keeps a failing test from hanging (the old code blocked until the hold ran out).
 */
import assert from "node:assert/strict";
import { EdgerunError, type Model, open } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";
import { assertNothingLeft, type LiveCounts, liveCounts } from "./live_counts.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import { simHeld, withHold as withSimHold } from "./sim_hold.ts";

const sim = useSim();
const held = () => simHeld(sim);
const withHold = <T>(fn: () => T | Promise<T>) => withSimHold(sim, fn);

const MODEL = simModelFile({
  name: "late",
  latencyUs: 1000,
  functionCalls: 1,
  inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 3, b: 1 }],
}, "late");
const x = new Float32Array([1, 2, 3, 4]);

function isTimeout(e: unknown): boolean {
  assert.ok(e instanceof EdgerunError, `expected an EdgerunError, got ${e}`);
  assert.equal(e.code, "TIMEOUT", e.message);
  return true;
}

test("hbdnn: behind a late task, a run with timeoutMs fails with TIMEOUT instead of waiting for it; close() does not wait", async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  await withHold(async () => {
    const model = open(MODEL);
    assert.throws(() => model.run(x, { timeoutMs: 20 }), isTimeout);
    assert.ok(await sim.waitFor(() => held() === 1), "the device holds the late task");
    const before = sim.counters();
    assert.throws(() => model.run(x, { timeoutMs: 20 }), isTimeout);
    const after = sim.counters();
    // Had the run waited for the late task, the device would have completed it by now.
    assert.equal(after.tasks_completed - before.tasks_completed, 0, "the run gave up while the late task still ran");
    assert.equal(after.tasks_created - before.tasks_created, 0, "no task was queued behind the late one");
    assert.equal(held(), 1, "the late task is still on the device");
    model.close();
    // close() returned with the task still running: the request is freed later, off this thread.
    assert.equal(held(), 1, "close() returned while the device still held the late task");
    assert.equal(sim.counter("tasks_live"), 1, "the late task is not released before the device is done");
    assert.ok(liveCounts().requests > baseline.requests, "the request waits for the device before it is freed");
  });
  await assertNothingLeft(sim, baseline, simBefore);
});

test("hbdnn: behind a late task, a run without a timeout waits for it and then succeeds", async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  const model = open(MODEL);
  await withHold(() => {
    assert.throws(() => model.run(x, { timeoutMs: 20 }), isTimeout);
  });
  // Released: the late task ends, and the next run (no timeout) may wait for it.
  assert.deepEqual(values(model.run(x)[0].data), [4, 7, 10, 13]);
  model.close();
  await assertNothingLeft(sim, baseline, simBefore);
});

/** A model with one request whose runAsync timed out: its task is late, held by the device. */
async function modelWithLateAsyncRun(baseline: LiveCounts): Promise<Model> {
  const model = open(MODEL, { maxRequests: 1 });
  await assert.rejects(model.runAsync(x, { timeoutMs: 20 }), isTimeout);
  // The worker thread gave up on the task at its own deadline and kept it as late.
  assert.ok(await sim.waitFor(() => liveCounts().submitted === baseline.submitted), "the submitted run returned");
  assert.equal(held(), 1, "the device holds the late task");
  return model;
}

test("hbdnn: close() after a runAsync timeout returns while the late task is still on the device", async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  await withHold(async () => {
    const model = await modelWithLateAsyncRun(baseline);
    model.close();
    assert.equal(held(), 1, "close() returned while the device still held the late task");
    assert.equal(sim.counter("tasks_live"), 1, "the late task is not released before the device is done");
  });
  await assertNothingLeft(sim, baseline, simBefore);
});

test("hbdnn: a runAsync behind a late task honours its own timeout", async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  await withHold(async () => {
    const model = await modelWithLateAsyncRun(baseline);
    const before = sim.counters();
    await assert.rejects(model.runAsync(x, { timeoutMs: 20 }), isTimeout);
    // The worker thread, too, gives up at the deadline rather than when the late task ends.
    assert.ok(await sim.waitFor(() => liveCounts().submitted === baseline.submitted), "the second run returned");
    const after = sim.counters();
    assert.equal(after.tasks_completed - before.tasks_completed, 0, "the run gave up while the late task still ran");
    assert.equal(after.tasks_created - before.tasks_created, 0, "no task was queued behind the late one");
    await model.closeAsync();
  });
  await assertNothingLeft(sim, baseline, simBefore);
});
