/**
 * A runAsync that no shim thread can collect (tests/sim/fail_threads.c, LD_PRELOAD: no thread can
 * be started) is refused before anything reaches the device: er_request_submit makes sure of its
 * worker before the backend starts the run on the caller's thread. Had the task gone out first, it
 * would run on the device for a refused run, and a later close() (no thread to hand the free to)
 * would wait for it on the JS thread: with a stalled device, forever.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "./compat.ts";
import { root, runScript } from "./helpers.ts";
import { simDir, simModelFile } from "./sim_helpers.ts";

const SPEC = {
  name: "poolfail",
  latencyUs: 2000,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 4], a: 2, b: 1 }],
};

function child(body: string, timeoutMs = 30_000) {
  const script = `
    import process from "node:process";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
    import { liveCounts } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
    const sim = useSim();
    const file = ${JSON.stringify(simModelFile(SPEC))};
    ${body}
    process.exit(0);`;
  return runScript(script, {
    EDGERUN_HBDNN_LIB_DIR: simDir(),
    LD_PRELOAD: join(simDir(), "libfailthreads.so"),
    EDGERUN_FAIL_THREADS_OF: "libedgerun",
  }, { timeoutMs });
}

test("hbdnn early tags: a runAsync refused for want of a shim thread submits nothing to the device", () => {
  const r = child(`
    const m = open(file);
    const before = sim.counters();
    const e = await m.runAsync(new Float32Array(4)).then(() => undefined, (e) => e);
    const after = sim.counters();
    m.close();
    console.log(JSON.stringify({ code: e?.code, submitted: after.tasks_submitted - before.tasks_submitted,
      created: after.tasks_created - before.tasks_created, liveAfterReject: after.tasks_live }));`);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(out.code, "BACKEND", JSON.stringify(out));
  // Defect: submitted 1, created 1, liveAfterReject 1 (a rejected run is running on the device).
  assert.deepEqual(out, { code: "BACKEND", submitted: 0, created: 0, liveAfterReject: 0 });
});

test("hbdnn early tags: close() after a runAsync refused for want of a shim thread does not wait for a stalled device", () => {
  // The device stalls the next task (until unstall or a reset). The refused run should have left
  // nothing there; close() must return. Defect: close() blocks the JS thread in
  // hb_request_free -> settle_late(r, 0) -> hbUCPWaitTaskDone(task, 0): the child never exits.
  const r = child(
    `
    const m = open(file);
    sim.injectFault("stall", 1, 1);
    const e = await m.runAsync(new Float32Array(4)).then(() => undefined, (e) => e);
    console.log("rejected", e?.code);
    m.close();
    sim.unstall();
    console.log(JSON.stringify({ code: e?.code, live: liveCounts(), tasks_live: sim.counter("tasks_live") }));`,
    15_000,
  );
  assert.equal(r.signal, null, `the child hung in close() and was killed (${r.signal}); stdout: ${r.stdout}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(out.code, "BACKEND");
  assert.equal(out.tasks_live, 0);
});
