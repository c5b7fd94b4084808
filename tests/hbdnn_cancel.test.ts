/**
 * Cancels of submitted hbdnn runs against what else is going on (issue 16 item 3, adversarial):
 * a close() while other runs wait for the task slots the closed runs hold, an abort of a task
 * already on a core while another core is free, an abort while the run waits for a task slot, and
 * the simulator's counters (bad handles, buffers freed in use, tasks) after each. States come from
 * the simulator (holds, stalls, reserved slots), never from the clock; the bounds of sim.waitFor
 * only end a case whose code under test blocks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { root, runScript, values } from "./helpers.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { simDir, simModelFile, useSim } from "./sim_helpers.ts";
import { backendLoad } from "../src/scheduler.ts";

const sim = useSim();
const x = new Float32Array([1, 2, 3, 4]);
const SPEC = {
  name: "cancel",
  latencyUs: 1000,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 4], a: 2, b: 1 }],
};
const expected = [3, 5, 7, 9];
const cancelled = (e: unknown) => e instanceof EdgerunError && e.code === "CANCELLED";

/** Runs a script in a child process with the simulator's control API; returns its last line, parsed. */
function child(body: string): Record<string, unknown> {
  const script = `
    import process from "node:process";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    import { loadNative } from ${JSON.stringify(join(root, "ffi/load.ts"))};
    import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
    import { simHeld, withHold } from ${JSON.stringify(join(root, "tests/sim_hold.ts"))};
    import { liveCounts, settledTo } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
    const sim = useSim();
    const x = new Float32Array([1, 2, 3, 4]);
    const file = ${JSON.stringify(simModelFile({ ...SPEC, name: "child" }))};
    ${body}
    process.exit(0);`;
  const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() }, { timeoutMs: 60_000 });
  assert.equal(r.signal, null, `the child was killed by ${r.signal}: ${r.stdout} ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("hbdnn cancel: close() with a run on the device when no other shim thread may start: the run's request and task still go", () => {
  // One shim thread: the closed run's own. Its task must be given back without a second one.
  // (Whether the run's thread is still inside the run when close() frees its request depends on
  // thread scheduling: rounds until it is.)
  const out = child(`
    const native = loadNative();
    const rounds = [];
    for (let round = 0; round < 12; round++) {
      const a = open(file);
      await a.runAsync(x);
      native.symbols.er_set_worker_limit(1);
      await withHold(sim, async () => {
        const run = a.runAsync(x).catch((e) => e.code);
        if (!await sim.waitFor(() => simHeld(sim) === 1)) throw new Error("the run did not reach the device");
        a.close();
        await run;
      });
      const settled = await settledTo({ packs: 0, models: 0, requests: 0, submitted: 0 }, 5000);
      native.symbols.er_set_worker_limit(64);
      rounds.push(settled && sim.counter("tasks_live") === 0 ? "ended" : "stuck");
      if (!settled) break;
    }
    console.log(JSON.stringify({ rounds: [...new Set(rounds)], live: liveCounts(), tasks_live: sim.counter("tasks_live") }));`);
  assert.deepEqual(out.rounds, ["ended"], JSON.stringify(out));
});

test("hbdnn cancel: close() of 32 runs on the device while another model's runs wait for their task slots: every run ends", () => {
  // 32 runs of model a hold every task slot (one on the held core, 31 queued on the device); 32
  // runs of b start on shim threads as a's are abandoned and wait for slots: 64 threads, the
  // pool's limit. The cancelled runs of a must not need a 65th thread to give their slots back.
  // (Whether the pool is full when they try depends on thread scheduling: rounds until one is.)
  const out = child(`
    const rounds = [];
    for (let round = 0; round < 12; round++) {
      const a = open(file, { maxRequests: 32 });
      const b = open(file, { maxRequests: 32 });
      const before = sim.counters();
      let later;
      await withHold(sim, async () => {
        const runs = Promise.allSettled(Array.from({ length: 32 }, () => a.runAsync(x)));
        if (!await sim.waitFor(() => simHeld(sim) === 1 && sim.counter("tasks_submitted") - before.tasks_submitted === 32)) {
          throw new Error("a's runs did not reach the device");
        }
        later = Array.from({ length: 32 }, () => b.runAsync(x).then((o) => Array.from(o[0].data).join(","), (e) => e.code));
        a.close();
        await runs;
      });
      let timer;
      const hung = new Promise((r) => (timer = setTimeout(() => r("hung"), 10000)));
      const results = await Promise.race([Promise.all(later), hung]);
      clearTimeout(timer);
      rounds.push(results === "hung" ? "hung" : [...new Set(results)].join(" "));
      if (results === "hung") break;
      b.close();
    }
    console.log(JSON.stringify({ rounds: [...new Set(rounds)], live: liveCounts(), tasks_live: sim.counter("tasks_live") }));`);
  assert.deepEqual(out.rounds, [expected.join(",")], JSON.stringify(out));
});

test("hbdnn cancel: aborting a run whose task is on a core does not make the next run wait for that task while a core is free", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  await sim.with({ cores: 2 }, async () => {
    const model = open(simModelFile({ ...SPEC, name: "stuck" }), { maxRequests: 2 });
    // The first task keeps core 0 (stalled); core 1 stays free.
    sim.injectFault("stall", 1, 1, 1);
    const controller = new AbortController();
    const first = model.runAsync(x, { signal: controller.signal });
    assert.ok(await sim.waitFor(() => Number(sim.rawCounter("tasks_stalled_now")) === 1));
    controller.abort();
    await assert.rejects(first, cancelled);
    // Once the aborted run is back (if it comes back while its task still runs), a new run goes.
    assert.ok(await sim.waitFor(() => sim.counter("releases_blocked") - before.releases_blocked === 1));
    await sim.waitFor(() => backendLoad("hbdnn").inflight === 0, 2000);
    const next = model.runAsync(x);
    const ran = await sim.waitFor(() => sim.counter("tasks_completed") - before.tasks_completed === 1);
    sim.unstall();
    assert.deepEqual(values((await next)[0].data, Number), expected);
    assert.ok(ran, "the next run waited for the aborted run's task although core 1 was free");
    model.close();
  });
  await assertNothingLeft(sim, baseline, before);
});

for (const callbacks of [true, false]) {
  test(`hbdnn cancel: a run aborted while it waits for a task slot ends there, no task made${callbacks ? "" : " (runtime without done-callbacks)"}`, async () => {
    const baseline = liveCounts();
    const before = sim.counters();
    await sim.with({}, async () => {
      const model = open(simModelFile({ ...SPEC, name: "noslot" }));
      assert.deepEqual(values((await model.runAsync(x))[0].data, Number), expected);
      const start = liveCounts();
      const mid = sim.counters();
      if (!callbacks) sim.injectFault("hbUCPSetTaskDoneCb", 1, -100004, -1);
      // Other UCP users of the process hold every task slot: the run waits in the shim.
      sim.reserveTasks(32);
      const controller = new AbortController();
      const run = model.runAsync(x, { signal: controller.signal });
      assert.ok(await sim.waitFor(() => sim.counter("tasks_refused") - mid.tasks_refused >= 2));
      controller.abort();
      await assert.rejects(run, cancelled);
      // The aborted run leaves the shim's thread while the slots are still taken...
      const ended = await sim.waitFor(() => liveCounts().submitted <= start.submitted);
      sim.reserveTasks(0);
      assert.ok(await sim.waitFor(() => liveCounts().submitted <= start.submitted));
      const d = sim.counters();
      assert.ok(ended, "the aborted run went on waiting for a task slot");
      // ...and never puts a task on the device.
      assert.equal(d.tasks_submitted - mid.tasks_submitted, 0, "a task was submitted for an aborted run");
      assert.equal(d.tasks_completed - mid.tasks_completed, 0, "an aborted run's task ran");
      sim.clearFaults();
      assert.deepEqual(values((await model.runAsync(x))[0].data, Number), expected);
      model.close();
    });
    await assertNothingLeft(sim, baseline, before);
  });
}

test("hbdnn async: a submitted run reaches the device from the caller's thread, even while every shim thread waits for another run", () => {
  // One shim thread, busy waiting for a held run: the next run must still be on the device when
  // runAsync returns (the device may preempt or queue it), not wait for a thread to submit it.
  const out = child(`
    const native = loadNative();
    const m = open(file, { maxRequests: 2 });
    await m.runAsync(x); // its thread: the only one
    native.symbols.er_set_worker_limit(1);
    let onDevice, runs;
    await withHold(sim, async () => {
      const first = m.runAsync(x);
      if (!await sim.waitFor(() => simHeld(sim) === 1)) throw new Error("the first run did not reach the device");
      const before = sim.counter("tasks_submitted");
      const second = m.runAsync(x);
      onDevice = sim.counter("tasks_submitted") - before;
      runs = Promise.all([first, second]);
    });
    const results = (await runs).map((o) => Array.from(o[0].data).join(","));
    native.symbols.er_set_worker_limit(64);
    m.close();
    console.log(JSON.stringify({ onDevice, results, tasks_live: sim.counter("tasks_live") }));`);
  assert.deepEqual(out, { onDevice: 1, results: [expected.join(","), expected.join(",")], tasks_live: 0 });
});
