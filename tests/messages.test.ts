/**
 * Messages and noise under faults (issue 16 item 9): out of file descriptors, a model compiled
 * for more BPU cores than the SoC has, ONNX Runtime's own stderr log, an ONNX Runtime allocation
 * failure, and the back-off of runs refused with BUSY.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import { expandModel, reshapeModel } from "./fixtures/onnx_models.ts";
import { root, runScript, tempFile, values } from "./helpers.ts";
import { simDir, simModelFile, throwsEdgerun, useSim } from "./sim_helpers.ts";
import type { SimModelSpec } from "./sim/simfile.ts";

const sim = useSim();
const SPEC: SimModelSpec = {
  name: "msg",
  inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 2, b: 1 }],
};
const x = new Float32Array([1, 2, 3, 4]);
const mod = JSON.stringify(join(root, "mod.ts"));

test("messages: out of file descriptors (EMFILE) says too many open files, not 'cannot be read'", () => {
  const model = simModelFile({ ...SPEC, name: "emfile" });
  // A low limit so the child can use up its descriptors quickly; the libraries are loaded first.
  const r = runScript(
    `
    import { openSync } from "node:fs";
    import { open } from ${mod};
    open(${JSON.stringify(model)}).close();
    const fds = [];
    try { for (;;) fds.push(openSync("/dev/null", "r")); } catch { /* EMFILE */ }
    try { open(${JSON.stringify(model)}); console.log("opened"); }
    catch (e) { console.log(e.code, e.message); }`,
    { EDGERUN_HBDNN_LIB_DIR: simDir() },
    { shell: "ulimit -n 128" },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^FILE .*too many open files/m);
});

test("messages: a model compiled for more BPU cores than the SoC has names both counts", async () => {
  await sim.with({}, () => {
    // The simulator's S100 mode has one core, as the S100 does.
    using model = open(simModelFile({ ...SPEC, name: "dual", bpuCoreNum: 2 }));
    throwsEdgerun(() => model.run(x), "INVALID_ARGUMENT", {
      message: /compiled for 2 BPU cores; this SoC, .*S100.*, has 1/,
    });
  });
});

test("messages: a failed ONNX Runtime run is thrown, not also logged to stderr; EDGERUN_ORT_LOG turns the log on", () => {
  const model = tempFile("msg-reshape.onnx", reshapeModel());
  const script = `
    import { open } from ${mod};
    const m = open(${JSON.stringify(model)});
    try {
      m.run({ x: new Float32Array(4), s: { data: new BigInt64Array([5n]), shape: [1] } });
      console.log("ran");
    } catch (e) { console.log("threw", e.code); }`;
  const quiet = runScript(script);
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stdout, "threw BACKEND\n");
  assert.equal(quiet.stderr, "", "ONNX Runtime logged nothing");
  const loud = runScript(script, { EDGERUN_ORT_LOG: "error" });
  assert.equal(loud.stdout, "threw BACKEND\n");
  assert.match(loud.stderr, /onnxruntime/, "asked for, ONNX Runtime's log is there");
});

test("messages: runs refused with BUSY are retried with a back-off, not every 2 ms", async () => {
  await sim.with({}, async () => {
    using model = open(simModelFile({ ...SPEC, name: "busy" }));
    const before = sim.counter("faults_injected");
    // Every submit is refused for lack of task slots (-200001) until the faults are cleared.
    sim.injectFault("hbUCPSubmitTask", 1, -200001, 1_000_000);
    const run = model.runAsync(x);
    // 300 ms of refusals: polling every 2 ms retried about 150 times; 2 ms doubling to 50 ms
    // gives at most 11 (a slow machine retries less, never more).
    await new Promise((r) => setTimeout(r, 300));
    const retries = sim.counter("faults_injected") - before;
    sim.clearFaults();
    assert.deepEqual(values((await run)[0].data, Number), [3, 5, 7, 9]);
    assert.ok(retries >= 1 && retries <= 12, `retries in 300 ms: ${retries}`);
  });
});

test("messages: an ONNX Runtime allocation failure is OUT_OF_MEMORY, as the hbdnn backend's is", () => {
  using model = open(tempFile("expand.onnx", expandModel()));
  assert.deepEqual(values(model.run({ x: new Float32Array([3]), shape: new BigInt64Array([4n]) })[0].data, Number), [3, 3, 3, 3]);
  // 2^42 floats (16 TiB): the arena refuses the output.
  throwsEdgerun(() => model.run({ x: new Float32Array([3]), shape: new BigInt64Array([1n << 42n]) }), "OUT_OF_MEMORY", { message: /allocate/, backend: "ort" });
  // The model goes on.
  assert.deepEqual(values(model.run({ x: new Float32Array([2]), shape: new BigInt64Array([2n]) })[0].data, Number), [2, 2]);
});

test("messages: a shim thread that cannot be created (thread limit) is BACKEND naming the limit, not OUT_OF_MEMORY", () => {
  // tests/sim/fail_threads.c makes pthread_create fail with EAGAIN for libedgerun's threads only.
  const script = `
    import { open } from ${mod};
    const m = open(${JSON.stringify(simModelFile(SPEC))});
    const [y] = m.run(new Float32Array([1, 2, 3, 4])); // sync runs need no shim thread
    console.log("sync:", Array.from(y.data).join(","));
    const e = await m.runAsync(new Float32Array(4)).then(() => undefined, (e) => e);
    console.log("async:", e?.constructor.name, e?.code, e?.call, e?.message);
    m.close();`;
  const r = runScript(script, {
    EDGERUN_HBDNN_LIB_DIR: simDir(),
    LD_PRELOAD: join(simDir(), "libfailthreads.so"),
    EDGERUN_FAIL_THREADS_OF: "libedgerun",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sync: 3,5,7,9$/m);
  assert.match(r.stdout, /^async: EdgerunError BACKEND pthread_create .*thread limit is reached \(ulimit -u/m);
});
