/**
 * The FinalizationRegistry backstop: models dropped without close() (with their pooled requests)
 * are freed once the garbage collector collects them. Runs in a child process so the collector
 * can be forced (Deno: --v8-flags=--expose-gc; Bun: Bun.gc(true)); checked with the shim's live
 * handle counts and the simulator's live buffers and tasks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "./compat.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { root, runChild, tempFile } from "./helpers.ts";
import { simModelFile } from "./sim_helpers.ts";

const SIM_MODEL = simModelFile({
  name: "dropped",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3], stride: [32, 4] }],
  outputs: [{ name: "y", dtype: "S8", shape: [2, 3], quant: { scales: [0.5] } }],
}, "finalizer");
const ORT_MODEL = tempFile("finalizer_f32.onnx", dtypeModel("float32"));

const script = (keepThem: boolean, waitMs: number) => `
  import { open } from ${JSON.stringify(join(root, "mod.ts"))};
  import { gc } from ${JSON.stringify(join(root, "tests/compat.ts"))};
  import { liveCounts } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
  import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
  const sim = useSim();
  const snapshot = () => ({ ...liveCounts(), mem_live: sim.counter("mem_live"), tasks_live: sim.counter("tasks_live") });
  const before = snapshot();
  const kept = [];
  // Opened and used inside a function so nothing on this stack keeps them reachable.
  async function useAndDrop() {
    for (let i = 0; i < 3; i++) {
      const hb = open(${JSON.stringify(SIM_MODEL)});
      const ort = open(${JSON.stringify(ORT_MODEL)});
      await Promise.all([hb.runAsync(new Float32Array(6)), hb.runAsync(new Float32Array(6)), ort.runAsync(new Float32Array(6))]);
      hb.run(new Float32Array(6));
      if (${keepThem}) kept.push(hb, ort);
    }
  }
  await useAndDrop();
  const opened = snapshot();
  const forced = gc();
  const end = Date.now() + ${waitMs};
  let after = snapshot();
  while (Date.now() < end && (after.models > before.models || after.mem_live > before.mem_live)) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    after = snapshot();
  }
  console.log(JSON.stringify({ forced, before, opened, after }));`;


test("finalizer: models dropped without close() are freed after GC (native handles, simulator buffers)", () => {
  const { forced, before, opened, after } = runChild(script(false, 10_000)) as Record<string, Record<string, number>>;
  assert.equal(forced, true, "the child could force a garbage collection");
  assert.ok(opened.models >= before.models + 6, `the models were live before GC: ${JSON.stringify(opened)}`);
  assert.ok(opened.requests >= before.requests + 9, `pooled requests were live before GC: ${JSON.stringify(opened)}`);
  assert.ok(opened.mem_live > before.mem_live, "simulator buffers were live before GC");
  assert.deepEqual(
    [after.packs, after.models, after.requests, after.submitted, after.mem_live, after.tasks_live],
    [before.packs, before.models, before.requests, before.submitted, before.mem_live, before.tasks_live],
    `after GC: ${JSON.stringify(after)}, before: ${JSON.stringify(before)}`,
  );
});

test("finalizer: models still referenced are not freed by GC (the check above can fail)", () => {
  const { before, after } = runChild(script(true, 1000)) as Record<string, Record<string, number>>;
  assert.equal(after.models, before.models + 6, JSON.stringify(after));
  assert.ok(after.mem_live > before.mem_live);
});
