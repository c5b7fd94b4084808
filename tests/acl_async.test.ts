/** The acl backend's async runs, timeouts, cancels and closes against the AscendCL simulator. */
import assert from "node:assert/strict";
import { EdgerunError, open, Pool } from "../mod.ts";
import { test } from "./compat.ts";
import { aclModelFile, useAclSim } from "./acl_helpers.ts";
import type { AclSimLiveCounts } from "./acl_sim_helpers.ts";
import { liveCounts, settledTo } from "./live_counts.ts";

const sim = useAclSim();

function affine(name: string, latencyUs = 0): string {
  return aclModelFile({
    latencyUs,
    inputs: [{ name: "x", dtype: "FLOAT", dims: [1, 4] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [1, 4], a: 3, b: 1 }],
  }, name);
}

const x4 = (v = 1) => new Float32Array([v, v + 1, v + 2, v + 3]);
const y4 = (v = 1) => [3 * v + 1, 3 * v + 4, 3 * v + 7, 3 * v + 10];
const LEAK_KEYS: (keyof AclSimLiveCounts)[] = ["models", "devBuffers", "hostBuffers", "datasets", "dataBuffers", "streams", "descs", "tasks"];

/** Asserts the simulator holds no more objects of the kinds a model owns than at `before`. */
async function assertReleased(before: AclSimLiveCounts): Promise<void> {
  assert.ok(await sim.waitFor(() => LEAK_KEYS.every((k) => sim.liveCounts()[k] <= before[k])), `simulator objects left: ${JSON.stringify(sim.liveCounts())} vs ${JSON.stringify(before)}`);
  assert.equal(sim.counter("free_in_use"), 0, "a buffer was freed while the device used it");
  assert.equal(sim.counter("concurrent_exec"), 0, "one model id executed twice at once");
}

test("acl async: runAsync runs on a shim worker thread (its own current context) and gives run()'s outputs", async () => {
  const before = sim.liveCounts();
  {
    await using model = open(affine("async"));
    const sync = [...model.run(x4(2)).get("y").data as Float32Array];
    const asynced = await Promise.all([1, 2, 3].map(async (v) => [...(await model.runAsync(x4(v))).get("y").data as Float32Array]));
    assert.deepEqual(sync, y4(2));
    assert.deepEqual(asynced, [y4(1), y4(2), y4(3)]);
  }
  await assertReleased(before);
});

test("acl async: timers keep firing while an execution holds the device", async () => {
  await sim.with({}, async () => {
    await using model = open(affine("held"));
    sim.injectFault("stall", 1, 1);
    let settled = false;
    const pending = model.runAsync(x4()).finally(() => (settled = true));
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 1), "the execution is on the device");
    for (let tick = 0; tick < 10; tick++) await new Promise((r) => setTimeout(r, 1));
    assert.equal(settled, false);
    sim.unstall();
    assert.deepEqual([...(await pending).get("y").data as Float32Array], y4());
  });
});

test("acl async: eight runs in flight on one model never execute at once (the model's lock) and all complete", async () => {
  sim.resetCounters();
  await using model = open(affine("eight", 2000), { maxRequests: 8 });
  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => model.runAsync(x4(i))));
  runs.forEach((out, i) => assert.deepEqual([...out.get("y").data as Float32Array], y4(i)));
  assert.equal(sim.counter("concurrent_exec"), 0);
  assert.equal(sim.counter("executions"), 8);
});

test("acl async: two models execute in parallel on shim threads", async () => {
  await sim.with({}, async () => {
    await using a = open(affine("par-a"));
    await using b = open(affine("par-b"));
    // Both executions stall on the device: both are there at once only if they run in parallel.
    sim.injectFault("stall", 1, 1, 2);
    const runs = Promise.all([a.runAsync(x4()), b.runAsync(x4())]);
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 2), "the second execution waited for the first");
    sim.unstall();
    for (const out of await runs) assert.deepEqual([...out.get("y").data as Float32Array], y4());
  });
});

test("acl async: with the model busy, queued runs start by priority, then customId", async () => {
  await sim.with({}, async () => {
    await using model = open(affine("prio"), { maxRequests: 1 });
    sim.injectFault("stall", 1, 1);
    const order: string[] = [];
    const first = model.runAsync(x4()).then(() => order.push("first"));
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 1));
    const queued = [
      model.runAsync(x4(), { priority: 10, customId: 2 }).then(() => order.push("p10 id2")),
      model.runAsync(x4(), { priority: 200 }).then(() => order.push("p200")),
      model.runAsync(x4(), { priority: 10, customId: 1 }).then(() => order.push("p10 id1")),
      model.runAsync(x4(), { priority: 255 }).then(() => order.push("p255")),
    ];
    sim.unstall();
    await Promise.all([first, ...queued]);
    assert.deepEqual(order, ["first", "p255", "p200", "p10 id1", "p10 id2"]);
  });
});

test("acl: a sync run's timeoutMs is real: TIMEOUT (507046) while the execution goes on; the next run waits for it and succeeds", async () => {
  const before = sim.liveCounts();
  {
    using model = open(affine("timeout-sync"));
    // The execution stalls: a timeout that waited for it would never return.
    sim.injectFault("stall", 1, 1);
    const e = assert.throws(() => model.run(x4(), { timeoutMs: 20 }), (err: unknown) => {
      assert.ok(err instanceof EdgerunError);
      assert.equal(err.code, "TIMEOUT");
      assert.equal(err.vendorCode, 507046);
      assert.equal(err.backend, "acl");
      return true;
    });
    void e;
    assert.equal(sim.counter("stalled_now"), 1, "the execution is still on the device");
    sim.unstall();
    assert.deepEqual([...model.run(x4(5)).get("y").data as Float32Array], y4(5));
    assert.equal(sim.liveCounts().streams >= 1, true, "the timed run made its stream");
  }
  await assertReleased(before);
});

test("acl: a run whose timeout passes while another run of the model holds it is TIMEOUT without executing", async () => {
  await sim.with({}, async () => {
    await using model = open(affine("timeout-lock"), { maxRequests: 2 });
    sim.injectFault("stall", 1, 1);
    const held = model.runAsync(x4());
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 1));
    const executions = sim.counter("executions");
    await assert.rejects(model.runAsync(x4(), { timeoutMs: 30 }), (e: unknown) => e instanceof EdgerunError && e.code === "TIMEOUT");
    sim.unstall();
    assert.deepEqual([...(await held).get("y").data as Float32Array], y4());
    assert.ok(await sim.waitFor(() => sim.counter("executions") === executions + 1), "the held run finished");
    assert.equal(sim.counter("executions"), executions + 1, "the timed-out run never executed");
  });
});

test("acl async: runAsync timeoutMs rejects TIMEOUT at the deadline; the model runs again and closes clean", async () => {
  const before = sim.liveCounts();
  const shim = liveCounts();
  {
    await using model = open(affine("timeout-async"));
    sim.injectFault("stall", 1, 1); // a run that waited for the execution would never settle
    await assert.rejects(model.runAsync(x4(), { timeoutMs: 20 }), (e: unknown) => e instanceof EdgerunError && e.code === "TIMEOUT");
    assert.equal(sim.counter("stalled_now"), 1, "the execution is still on the device");
    sim.unstall();
    assert.deepEqual([...(await model.runAsync(x4(3))).get("y").data as Float32Array], y4(3));
  }
  await assertReleased(before);
  assert.ok(await settledTo(shim), "shim handles left");
});

test("acl: close() while a timed-out execution is still on the device returns at once; its buffers go when the device is done", async () => {
  const before = sim.liveCounts();
  const model = open(affine("late-close"));
  sim.injectFault("stall", 1, 1); // a close that waited for the execution would never return
  assert.throws(() => model.run(x4(), { timeoutMs: 10 }), (e: unknown) => e instanceof EdgerunError && e.code === "TIMEOUT");
  model.close();
  assert.equal(sim.counter("stalled_now"), 1, "the execution is still on the device");
  assert.ok(sim.liveCounts().tasks >= 1 && sim.liveCounts().devBuffers > before.devBuffers, "the execution still holds its buffers");
  sim.unstall();
  await assertReleased(before);
});

test("acl async: closeAsync with runs in flight settles every promise and frees everything", async () => {
  const before = sim.liveCounts();
  const shim = liveCounts();
  const model = open(affine("close-inflight", 20_000), { maxRequests: 2 });
  const settled = Promise.allSettled(Array.from({ length: 6 }, (_, i) => model.runAsync(x4(i))));
  await model.closeAsync();
  const results = await settled;
  for (const r of results) {
    if (r.status === "rejected") assert.equal((r.reason as EdgerunError).code, "CLOSED");
  }
  assert.ok(results.some((r) => r.status === "fulfilled"), "the runs on the device finished");
  await assertReleased(before);
  assert.ok(await settledTo(shim), "shim handles left");
});

test("acl async: close() with runs on the device rejects them at once and frees their buffers after", async () => {
  const before = sim.liveCounts();
  const model = open(affine("close-now", 50_000), { maxRequests: 3 });
  const settled = Promise.allSettled(Array.from({ length: 3 }, () => model.runAsync(x4())));
  await new Promise((r) => setTimeout(r, 5));
  model.close();
  const results = await settled;
  assert.ok(results.every((r) => r.status === "rejected" || r.status === "fulfilled"));
  await assertReleased(before);
});

test("acl async: an aborted queued run rejects CANCELLED and never executes", async () => {
  await sim.with({}, async () => {
    await using model = open(affine("abort"), { maxRequests: 1 });
    sim.injectFault("stall", 1, 1);
    const first = model.runAsync(x4());
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 1));
    const executions = sim.counter("executions");
    const controller = new AbortController();
    const aborted = model.runAsync(x4(), { signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, (e: unknown) => e instanceof EdgerunError && e.code === "CANCELLED");
    sim.unstall();
    await first;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sim.counter("executions"), executions + 1);
  });
});

test("acl: 30 open/run/runAsync/close cycles leave no simulator object and no shim handle behind", async () => {
  const before = sim.liveCounts();
  const shim = liveCounts();
  const path = aclModelFile({
    dynamicBatch: [1, 2],
    inputs: [{ name: "x", dtype: "FLOAT", dims: [-1, 2] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 2] }],
  }, "cycles");
  for (let i = 0; i < 30; i++) {
    await using model = open(path);
    model.run({ x: new Float32Array(i % 2 ? 2 : 4) });
    await model.runAsync({ x: new Float32Array(2) });
    if (i % 3 === 0) model.run({ x: new Float32Array(4) }, { timeoutMs: 1000 });
  }
  await assertReleased(before);
  assert.ok(await settledTo(shim), "shim handles left");
  const after = sim.liveCounts();
  assert.equal(after.contexts, 0, "the last close destroyed the context");
  assert.equal(after.devices, 0, "the last close reset the device");
  assert.equal(after.init, 1, "AscendCL stays initialised until exit");
});

test("acl: aclInit once per process: open, close all, open again does not call aclInit again", () => {
  const path = affine("reinit");
  using first = open(path);
  first.close();
  const inits = sim.counter("init_calls");
  using second = open(path);
  assert.deepEqual([...second.run(x4()).get("y").data as Float32Array], y4());
  assert.equal(sim.counter("init_calls"), inits);
  assert.equal(sim.liveCounts().init, 1);
});

test("acl: a Pool's worker threads run the shared model synchronously, each thread with the context made current", async () => {
  using model = open(aclModelFile({
    inputs: [{ name: "x", dtype: "FLOAT", dims: [6] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [6], a: 2 }],
  }, "pool"));
  await using pool = await Pool.create(model, new URL("./workers/double.ts", import.meta.url), { workers: 2 });
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => pool.run<{ sum: number }>({ values: [i, 1, 1, 1, 1, 1] })),
  );
  results.forEach((r, i) => assert.equal(r.sum, 2 * (i + 5)));
  assert.equal(sim.counter("concurrent_exec"), 0);
});

test("acl async: an aborted run waiting for the model's lock leaves its shim thread at once and never executes", async () => {
  await sim.with({}, async () => {
    await using model = open(affine("abort-lock"), { maxRequests: 2 });
    const base = liveCounts().submitted;
    sim.injectFault("stall", 1, 1);
    const first = model.runAsync(x4());
    assert.ok(await sim.waitFor(() => sim.counter("stalled_now") === 1));
    const executions = sim.counter("executions");
    const controller = new AbortController();
    const waiting = model.runAsync(x4(), { signal: controller.signal });
    assert.ok(await sim.waitFor(() => liveCounts().submitted === base + 2), "both runs are on shim threads");
    controller.abort();
    await assert.rejects(waiting, (e: unknown) => e instanceof EdgerunError && e.code === "CANCELLED");
    assert.ok(await sim.waitFor(() => liveCounts().submitted === base + 1, 1000), "the waiting run left its thread");
    sim.unstall();
    await first;
    assert.equal(sim.counter("executions"), executions + 1);
  });
});
