/**
 * Concurrency stress: close() racing many runAsync calls, abort storms, timeouts racing
 * completion, Pool closed or a worker terminated while runs are out. Every run settles with the
 * right output or a typed error; a watchdog fails a case that hangs; afterwards the shim's live
 * handles and the simulator's tasks and buffers are back at their baseline.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, type Model, open, type Outputs, Pool } from "../mod.ts";
import { test } from "./compat.ts";
import { mulberry32 } from "./fixtures/inputs.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { root, runScript, tempFile, values } from "./helpers.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { simDir, simModelFile, useSim } from "./sim_helpers.ts";
import { withHold } from "./sim_hold.ts";
import type { SimModelSpec } from "./sim/simfile.ts";

const sim = useSim();
const SPEC: SimModelSpec = {
  name: "stress",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3], stride: [16, 4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: 2, b: 1 }],
};
const SIM_PATH = simModelFile(SPEC, "stress");
const ORT_PATH = tempFile("stress_f32.onnx", dtypeModel("float32"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * No task is queued or running on the simulated device. (Counting completed + cancelled against
 * submitted never settled once another file's device reset had dropped tasks: make test runs
 * fault_items.test.ts first, in the same process.)
 */
const deviceIdle = () => sim.rawCounter("tasks_on_device") === 0n;

/** Fails with a clear message instead of hanging when work does not finish in time. */
async function watchdog<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** The input of run i and the output both models give for it (sim: 2x + 1; ort: x + x). */
const input = (i: number) => Float32Array.from({ length: 6 }, (_, k) => i + k);
const expected = (path: string, i: number) => Array.from(input(i), (v) => (path === SIM_PATH ? 2 * v + 1 : 2 * v));

/**
 * Observes runs at once (a rejection left unobserved while the test awaits something else would
 * be reported as unhandled); the result is settled later by {@link outcomes}.
 */
const track = (runs: Promise<Outputs>[]) => Promise.allSettled(runs);

/** Settles every run; each must be the right output or an EdgerunError with an allowed code. */
async function outcomes(
  path: string,
  runs: Promise<PromiseSettledResult<Outputs>[]>,
  allowed: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = { ok: 0 };
  const settled = await runs;
  settled.forEach((s, i) => {
    if (s.status === "fulfilled") {
      assert.deepEqual(values(s.value[0].data, Number), expected(path, i), `run ${i}`);
      counts.ok++;
    } else {
      const e = s.reason;
      assert.ok(e instanceof EdgerunError, `run ${i}: expected an EdgerunError, got ${e}`);
      assert.ok(allowed.includes(e.code), `run ${i}: unexpected ${e.code}: ${e.message}`);
      counts[e.code] = (counts[e.code] ?? 0) + 1;
    }
  });
  return counts;
}

/** pick(n): 0..n-1 from one seeded generator per case, so no case depends on which ran before. */
type Pick = (n: number) => number;
function picker(name: string): Pick {
  let seed = 0x5eed;
  for (const ch of name) seed = Math.imul(seed ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const random = mulberry32(seed);
  return (n) => random() % n;
}

/** Runs a stress case with a watchdog and the leak check after it. */
function stress(name: string, ms: number, body: (pick: Pick) => Promise<void>): void {
  test(`stress: ${name}`, async () => {
    const baseline = liveCounts();
    const simBefore = sim.counters();
    await watchdog(name, ms, body(picker(name)));
    await assertNothingLeft(sim, baseline, simBefore, 10_000);
  });
}

for (const path of [SIM_PATH, ORT_PATH]) {
  const backend = path === SIM_PATH ? "hbdnn" : "ort";

  stress(`${backend}: close() at random points while 100 runAsync calls are in flight`, 30_000, async (pick) => {
    const seen: Record<string, number> = {};
    await sim.with({ latencyUs: 1500 }, async () => {
      for (let round = 0; round < 12; round++) {
        const model = open(path);
        const runs = track(Array.from({ length: 100 }, (_, i) => model.runAsync(input(i))));
        // Some rounds close at once (runs still queued), the others after a random delay.
        if (round % 4 !== 0) await sleep(pick(12));
        if (round % 3 === 0) await model.closeAsync();
        else model.close();
        const c = await outcomes(path, runs, ["CLOSED"]);
        for (const [k, v] of Object.entries(c)) seen[k] = (seen[k] ?? 0) + v;
        assert.throws(() => model.run(input(0)), (e: unknown) => e instanceof EdgerunError && e.code === "CLOSED");
      }
    });
    assert.ok(seen.CLOSED > 0, `some runs were cut off by close: ${JSON.stringify(seen)}`);
  });

  stress(`${backend}: an abort storm over 300 runs`, 30_000, async (pick) => {
    await sim.with({ latencyUs: 500 }, async () => {
      using model = open(path);
      const controllers = Array.from({ length: 300 }, () => new AbortController());
      const runs = track(controllers.map((c, i) => model.runAsync(input(i), { signal: c.signal, priority: pick(256) })));
      const order = controllers.map((_, i) => i).sort(() => (pick(2) ? 1 : -1));
      // The first 100 aborts come before any await: no run can have settled yet, so each of them
      // is CANCELLED whatever the machine's speed. The next 100 race the runs; 100 are never aborted.
      for (const i of order.slice(0, 100)) controllers[i].abort(new Error("storm"));
      for (const i of order.slice(100, 200)) {
        if (pick(4) === 0) await sleep(pick(3));
        controllers[i].abort(new Error("storm"));
      }
      const c = await outcomes(path, runs, ["CANCELLED"]);
      assert.ok(c.CANCELLED >= 100 && c.ok >= 100, JSON.stringify(c));
      // The model still runs normally after the storm.
      assert.deepEqual(values((await model.runAsync(input(7)))[0].data, Number), expected(path, 7));
      assert.deepEqual(values(model.run(input(8))[0].data, Number), expected(path, 8));
    });
  });

  stress(`${backend}: one AbortController shared by 200 runs, aborted mid-flight`, 30_000, async () => {
    await sim.with({ latencyUs: 800 }, async () => {
      using model = open(path);
      const controller = new AbortController();
      const runs = track(Array.from({ length: 200 }, (_, i) => model.runAsync(input(i), { signal: controller.signal })));
      await sleep(3);
      controller.abort();
      await outcomes(path, runs, ["CANCELLED"]);
    });
  });
}

stress("hbdnn: timeouts racing completion (timeout close to the device latency)", 30_000, async (pick) => {
  await sim.with({ latencyUs: 3000 }, async () => {
    using model = open(SIM_PATH);
    const runs: Promise<Outputs>[] = [];
    // Which of these time out depends on the machine; every outcome must be a result or TIMEOUT.
    for (let i = 0; i < 150; i++) runs.push(model.runAsync(input(i), { timeoutMs: 1 + pick(12) }));
    await outcomes(SIM_PATH, track(runs), ["TIMEOUT"]);
    // With the device holding its tasks, timeouts are certain: the racing runs above had some.
    const held = await withHold(sim, () => track(Array.from({ length: 8 }, (_, i) => model.runAsync(input(i), { timeoutMs: 1 + pick(12) }))));
    assert.deepEqual(await outcomes(SIM_PATH, Promise.resolve(held), ["TIMEOUT"]), { ok: 0, TIMEOUT: 8 });
    // Runs that timed out keep their vendor tasks (and slots) while the device still works on
    // them. Once it is done, a sync run must get a slot even though idle pooled requests still
    // hold those finished tasks.
    assert.ok(await sim.waitFor(() => deviceIdle()), "the device finished the late tasks");
    assert.deepEqual(values(model.run(input(3))[0].data, Number), expected(SIM_PATH, 3));
    // Sync runs too: some time out on the device, some finish.
    for (let i = 0; i < 20; i++) {
      try {
        assert.deepEqual(values(model.run(input(i), { timeoutMs: 2 + pick(3) })[0].data, Number), expected(SIM_PATH, i));
      } catch (e) {
        assert.ok(e instanceof EdgerunError && e.code === "TIMEOUT", String(e));
      }
    }
    await withHold(sim, () => {
      assert.throws(() => model.run(input(0), { timeoutMs: 2 }), (e: unknown) => e instanceof EdgerunError && e.code === "TIMEOUT");
    });
    assert.deepEqual(values(model.run(input(1))[0].data, Number), expected(SIM_PATH, 1));
  });
});

stress("hbdnn: timeouts, aborts and close all at once", 30_000, async (pick) => {
  await sim.with({ latencyUs: 2000, cores: 2 }, async () => {
    for (let round = 0; round < 5; round++) {
      const models: Model[] = [open(SIM_PATH), open(SIM_PATH, { maxRequests: 4 })];
      const controller = new AbortController();
      const runs = track(Array.from({ length: 80 }, (_, i) =>
        models[i % 2].runAsync(input(i), {
          signal: i % 3 === 0 ? controller.signal : undefined,
          timeoutMs: i % 4 === 0 ? 1 + pick(8) : 0,
          priority: pick(256),
          cores: [pick(2)],
        })));
      await sleep(pick(6));
      controller.abort();
      await sleep(pick(6));
      models[round % 2].close();
      await outcomes(SIM_PATH, runs, ["CANCELLED", "TIMEOUT", "CLOSED"]);
      for (const m of models) m.close();
    }
    // Runs of closed models and late tasks still finish on the device. sim.with drops back to one
    // core on leaving: a task bound to core 1 left queued then would never run.
    assert.ok(await sim.waitFor(() => liveCounts().submitted === 0 && deviceIdle(), 10_000), "the device drained");
  });
});

const workerModule = new URL("./workers/double.ts", import.meta.url);

stress("pool: close() while 60 runs are out: all finish, then the pool refuses", 60_000, async (pick) => {
  using model = open(ORT_PATH);
  const pool = await Pool.create(model, workerModule, { workers: 2 });
  const runs = Array.from({ length: 60 }, (_, i) => pool.run<{ sum: number }>({ values: Array.from(input(i)) }));
  await sleep(pick(5));
  await pool.close();
  (await Promise.all(runs)).forEach((r, i) => assert.equal(r.sum, expected(ORT_PATH, i).reduce((a, b) => a + b)));
  await assert.rejects(pool.run({ values: [] }), (e) => e instanceof EdgerunError && e.code === "CLOSED");
});

stress("pool: a worker terminated mid-run: its runs reject, the other worker keeps serving", 60_000, async () => {
  using model = open(ORT_PATH);
  // Capture the workers the pool creates, to terminate one from outside as a supervisor might.
  const made: Worker[] = [];
  const Original = globalThis.Worker;
  globalThis.Worker = class extends Original {
    constructor(...args: ConstructorParameters<typeof Worker>) {
      super(...args);
      made.push(this);
    }
  };
  let pool: Pool;
  try {
    pool = await Pool.create(model, workerModule, { workers: 2 });
  } finally {
    globalThis.Worker = Original;
  }
  assert.equal(made.length, 2);
  // Each worker holds its share of the runs (least busy first: 20 each) for 20 ms. Terminating
  // before any await, while the messages are in the workers, makes the split certain.
  const runs = Promise.allSettled(
    Array.from({ length: 40 }, (_, i) => pool.run<{ sum: number }>({ values: Array.from(input(i)), delayMs: 20 })),
  );
  made[0].terminate();
  const settled = await runs;
  let lost = 0;
  settled.forEach((s, i) => {
    if (s.status === "fulfilled") assert.equal(s.value.sum, expected(ORT_PATH, i).reduce((a, b) => a + b));
    else {
      assert.ok(s.reason instanceof EdgerunError && s.reason.code === "CLOSED", String(s.reason));
      lost++;
    }
  });
  const after = await pool.run<{ sum: number }>({ values: [1, 1, 1, 1, 1, 1] });
  assert.equal(after.sum, 12, "the surviving worker serves new runs");
  assert.ok(lost > 0 && lost < 40, `runs lost with the terminated worker: ${lost}`);
  await pool.close();
});

test("stress: processes that exit right after runAsync never crash (worker threads outlive the runtime)", () => {
  // Deno unloads libedgerun at shutdown while a shim worker thread may still be leaving the run it
  // just completed; before the library pinned itself this script died of SIGSEGV about one time
  // in four.
  const script = `
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    const model = open(${JSON.stringify(SIM_PATH)});
    const [y] = await model.runAsync(Float32Array.from([1, 2, 3, 4, 5, 6]));
    console.log("result", Array.from(y.data).join(","));
    model.close();`;
  for (let i = 0; i < 30; i++) {
    const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() });
    assert.equal(r.signal, null, `process ${i} was killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "result 3,5,7,9,11,13");
  }
});
