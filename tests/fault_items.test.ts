/**
 * Issue 16, one test per numbered fault that edgerun did not survive (each failed before its fix):
 * the simulator injects the fault (tests/sim/FORMAT.md section 6), child processes cover exits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, open } from "../mod.ts";
import process from "node:process";
import { runtime, test } from "./compat.ts";
import { root, runScript, tempDir, tempFile, values } from "./helpers.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { simDir, simModelFile, useSim } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";

const sim = useSim();
const x = new Float32Array([1, 2, 3, 4]);
const SPEC = {
  name: "fault",
  latencyUs: 1000,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 4], a: 2, b: 1 }],
};
const expected = [3, 5, 7, 9];

test("faults (2): after a device reset invalidates every task handle, the model recovers and nothing stays live", async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  await sim.with({}, async () => {
    const model = open(simModelFile(SPEC));
    const runs = await withHold(sim, async () => {
      const runs = Array.from({ length: 4 }, () => model.runAsync(x));
      assert.ok(await sim.waitFor(() => simHeld(sim) === 1 && sim.counter("tasks_submitted") - simBefore.tasks_submitted === 4));
      sim.deviceReset();
      return Promise.allSettled(runs);
    });
    for (const r of runs) {
      assert.equal(r.status, "rejected");
      assert.ok(r.reason instanceof EdgerunError && r.reason.code === "BACKEND", String(r.status === "rejected" && r.reason));
      assert.equal((r.reason as EdgerunError).vendorCode, -200004);
    }
    // Every later run works: the requests were not left "unusable".
    for (let i = 0; i < 3; i++) assert.deepEqual(values((await model.runAsync(x))[0].data, Number), expected);
    assert.deepEqual(values(model.run(x)[0].data, Number), expected);
    model.close();
  });
  await assertNothingLeft(sim, baseline, simBefore);
});

test("faults (2): a request whose task cannot be released is dropped and replaced, sync and async", async () => {
  const baseline = liveCounts();
  await sim.with({}, async () => {
    const model = open(simModelFile(SPEC));
    // The wait fails twice with an unknown code (the task may still run), then its release fails:
    // the request cannot be trusted again.
    sim.injectFault("hbUCPWaitTaskDone", 1, -100004, 2);
    sim.injectFault("hbUCPReleaseTask", 1, -100004, 1);
    await assert.rejects(model.runAsync(x), (e) => e instanceof EdgerunError && e.code === "BACKEND");
    await assert.rejects(model.runAsync(x), (e) => e instanceof EdgerunError);
    for (let i = 0; i < 3; i++) assert.deepEqual(values((await model.runAsync(x))[0].data, Number), expected);
    sim.injectFault("hbUCPWaitTaskDone", 1, -100004, 2);
    sim.injectFault("hbUCPReleaseTask", 1, -100004, 1);
    assert.throws(() => model.run(x), EdgerunError);
    assert.throws(() => model.run(x), EdgerunError);
    assert.deepEqual(values(model.run(x)[0].data, Number), expected);
    model.close();
  });
  assert.ok(liveCounts().requests <= baseline.requests);
});

test("faults (3): aborted runs and a closed model cancel their tasks still queued on the device", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  await sim.with({ cores: 1 }, async () => {
    const model = open(simModelFile(SPEC));
    const controller = new AbortController();
    // The one core holds the first task; the other seven wait in the device's queue.
    const settled = await withHold(sim, async () => {
      const runs = Array.from({ length: 8 }, () => model.runAsync(x, { signal: controller.signal }));
      assert.ok(await sim.waitFor(() => simHeld(sim) === 1 && sim.counter("tasks_submitted") - before.tasks_submitted === 8));
      controller.abort();
      const settled = await Promise.allSettled(runs);
      // Only the queued ones can be cancelled: the held one runs to its end.
      assert.ok(await sim.waitFor(() => sim.counter("tasks_cancelled") - before.tasks_cancelled === 7));
      return settled;
    });
    for (const r of settled) {
      assert.equal(r.status, "rejected");
      assert.ok(r.reason instanceof EdgerunError && r.reason.code === "CANCELLED", String(r.status === "rejected" && r.reason));
    }
    assert.deepEqual(values((await model.runAsync(x))[0].data, Number), expected);
    assert.equal(sim.counter("tasks_completed") - before.tasks_completed, 2, "the held task and the fresh run, nothing stale");
    // close() with runs queued on the device cancels them too (closeAsync() lets them finish).
    const mid = sim.counters();
    const closed = await withHold(sim, async () => {
      const runs = Promise.allSettled(Array.from({ length: 4 }, () => model.runAsync(x)));
      assert.ok(await sim.waitFor(() => simHeld(sim) === 1 && sim.counter("tasks_submitted") - mid.tasks_submitted === 4));
      model.close();
      assert.ok(await sim.waitFor(() => sim.counter("tasks_cancelled") - mid.tasks_cancelled === 3));
      return runs;
    });
    for (const r of closed) assert.ok(r.status === "rejected" && r.reason instanceof EdgerunError && r.reason.code === "CLOSED");
    assert.ok(await sim.waitFor(() => sim.counter("tasks_completed") - mid.tasks_completed === 1));
  });
  await assertNothingLeft(sim, baseline, before);
});

test("faults (4): a failed ONNX Runtime load is retried: a library that appears later is loaded", () => {
  const dir = join(tempDir(), `late-mount-${Math.random().toString(36).slice(2)}`);
  const lib = join(dir, "libonnxruntime.so.1");
  const model = tempFile(`late-${Math.random().toString(36).slice(2)}.onnx`, dtypeModel("float32"));
  const real = join(root, `node_modules/onnxruntime-node/bin/napi-v6/linux/${process.arch === "arm64" ? "arm64" : "x64"}/libonnxruntime.so.1`);
  const script = `
    import { mkdirSync, symlinkSync } from "node:fs";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    try { open(${JSON.stringify(model)}); console.log("first: opened"); } catch (e) { console.log("first:", e.code); }
    mkdirSync(${JSON.stringify(dir)}, { recursive: true });
    symlinkSync(${JSON.stringify(real)}, ${JSON.stringify(lib)}); // the late mount
    const m = open(${JSON.stringify(model)});
    console.log("second: opened", m.backend);
    m.close();`;
  const r = runScript(script, { EDGERUN_ORT_LIB: lib });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /first: LIBRARY_NOT_FOUND\nsecond: opened ort/);
});

test("faults (5): a completion waiter that cannot start rejects the runs with a typed error and is retried", () => {
  const model = simModelFile({ ...SPEC, name: "spawn" });
  // Bun runs completion waits on a Worker: make its creation fail as thread exhaustion does.
  // Deno waits with a nonblocking FFI call (no Worker): the same script must simply work.
  const script = `
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    let unhandled = 0;
    process.on("unhandledRejection", () => unhandled++);
    const RealWorker = globalThis.Worker;
    globalThis.Worker = class { constructor() { throw new Error("Resource temporarily unavailable"); } };
    const m = open(${JSON.stringify(model)});
    let timer;
    const first = await Promise.race([
      m.runAsync(new Float32Array(4)).then(() => "ok", (e) => e.constructor.name + " " + e.code),
      new Promise((r) => (timer = setTimeout(() => r("hung"), 5000))),
    ]);
    clearTimeout(timer);
    console.log("first:", first);
    globalThis.Worker = RealWorker;
    const [y] = await m.runAsync(new Float32Array([1, 2, 3, 4]));
    console.log("second:", Array.from(y.data).join(","));
    await m.closeAsync();
    console.log("unhandled:", unhandled);`;
  const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, runtime === "bun" ? /first: EdgerunError BUSY\n/ : /first: ok\n/);
  assert.match(r.stdout, /second: 3,5,7,9\nunhandled: 0\n/);
});

test("faults (10): runs timing out on a stalled device, reusing requests with timed-out tasks: the process exits once all settled", () => {
  const model = simModelFile({ ...SPEC, name: "stalled", latencyUs: 60_000_000, functionCalls: 1 });
  const script = `
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    const m = open(${JSON.stringify(model)}, { maxRequests: 4 });
    const codes = {};
    const runs = [];
    for (let i = 0; i < 100; i++) {
      runs.push(m.runAsync(new Float32Array(4), { timeoutMs: 50 }).catch((e) => { codes[e.code] = (codes[e.code] ?? 0) + 1; }));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(runs);
    console.log("settled", JSON.stringify(codes));`;
  const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() }, { timeoutMs: 20_000 });
  assert.equal(r.signal, null, `the process did not exit (${r.signal}): ${r.stdout}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /settled \{"TIMEOUT":100\}/);
});

test("faults (1): a Pool worker that ends itself (self.close(), Bun: process.exit()) rejects its runs; the pool shrinks and close() completes", () => {
  const model = simModelFile({ ...SPEC, name: "pool" });
  const worker = join(root, "tests/workers/self_closing.ts");
  const script = `
    import { EdgerunError, open, Pool } from ${JSON.stringify(join(root, "mod.ts"))};
    const bounded = (p) => {
      let timer;
      const hung = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("hung")), 10000)));
      return Promise.race([p, hung]).finally(() => clearTimeout(timer));
    };
    const model = open(${JSON.stringify(model)});
    const pool = await Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 2 });
    const t0 = Date.now();
    const quit = await bounded(pool.run("quit").then(() => "resolved", (e) => e instanceof EdgerunError ? e.code : String(e)));
    const size = pool.size;
    const after = await bounded(pool.run("go"));
    await bounded(pool.close());
    model.close();
    console.error("took", Date.now() - t0);
    console.log(JSON.stringify({ quit, size, after }));`;
  const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() }, { timeoutMs: 60_000 });
  assert.equal(r.signal, null, `the child was killed by ${r.signal}: ${r.stdout}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), { quit: "BACKEND", size: 1, after: expected });
});
