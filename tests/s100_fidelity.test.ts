/**
 * hbdnn against the simulator brought in line with the real UCP 3.13.6 runtime (issue 15; the
 * behaviour table is docs/hbdnn-behaviour.md). Each test names its item. No timing assertions:
 * "the device is busy" is the simulator's hold, and what happened is read from its counters.
 */
import assert from "node:assert/strict";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";
import { simModelFile, throwsEdgerun, useSim, withNativeEnv } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";
import { simExpected, type SimModelSpec } from "./sim/simfile.ts";

const sim = useSim();
const L2M = "HB_DNN_USER_DEFINED_L2M_SIZES";
const CAP = "HB_UCP_MAX_TASK_NUM";

const SIMPLE: SimModelSpec = {
  name: "simple",
  latencyUs: 1000,
  functionCalls: 1,
  inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 1, b: 1 }],
};
const x = new Float32Array([1, 2, 3, 4]);
const y = [2, 3, 4, 5];

function isCode(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof EdgerunError, `expected an EdgerunError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

// ---- 1. multi-core models ---------------------------------------------------------------------

test("s100 (1): a model compiled for 2 cores runs on cores 0..1 by default; a mask with another core count fails before submit", async () => {
  await sim.with({ cores: 2 }, () => {
    using model = open(simModelFile({ ...SIMPLE, name: "dual", bpuCoreNum: 2 }));
    // The simulator refuses "any core" for a multi-core model, as libdnn does.
    assert.deepEqual(values(model.run(x)[0].data, Number), y);
    assert.deepEqual(values(model.run(x, { cores: [0, 1] })[0].data, Number), y);
    const before = sim.counters();
    for (const cores of [[1], 0b0001, [0, 1, 2]]) {
      throwsEdgerun(() => model.run(x, { cores }), "INVALID_ARGUMENT", {
        message: /compiled for 2 BPU cores: cores must name exactly 2 cores/,
      });
    }
    const after = sim.counters();
    assert.equal(after.tasks_created, before.tasks_created, "refused before any task was created");
  });
});

// ---- 2. every -1 stride aligned for the SoC -----------------------------------------------------

const STRIDES: SimModelSpec = {
  name: "strides",
  inputs: [
    { name: "r2", dtype: "F32", shape: [3, 5], stride: [-1, 4] },
    { name: "r5", dtype: "U8", shape: [2, 3, 2, 5, 7], stride: [-1, -1, -1, -1, 1] },
  ],
  outputs: [
    { name: "o2", dtype: "F32", shape: [3, 5], source: 0, a: 2 },
    { name: "o5", dtype: "S16", shape: [2, 3, 2, 5, 7], source: 1, a: -1, b: 3 },
  ],
};

function runStrides(expect2: number[], expect5: number[]): void {
  using model = open(simModelFile(STRIDES));
  assert.deepEqual(model.inputs[0].strides, expect2);
  assert.deepEqual(model.inputs[1].strides, expect5);
  const a = Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3);
  const b = Uint8Array.from({ length: 420 }, (_, i) => (i * 11) & 255);
  const out = model.run({ r2: a, r5: b });
  const [e2, e5] = simExpected(STRIDES, [a, b]);
  assert.deepEqual(values(out.get("o2").dense(), Number), Array.from(e2));
  assert.deepEqual(values(out.get("o5").dense(), Number), Array.from(e5));
}

test("s100 (2): every -1 stride of rank-2 and rank-5 inputs is a multiple of 32 on S100", async () => {
  await sim.with({ soc: "S100" }, () => runStrides([32, 4], [960, 320, 160, 32, 1]));
});

test("s100 (2, 9): on S600 every -1 stride is a multiple of 64 (NV12 width 220 gets 256-byte rows)", async () => {
  await sim.with({ soc: "S600" }, () => {
    runStrides([64, 4], [1920, 640, 320, 64, 1]);
    const spec: SimModelSpec = {
      name: "nv12_s600",
      inputs: [{ name: "y", dtype: "U8", shape: [1, 220, 220, 1], stride: [-1, -1, 1, 1] }],
      outputs: [{ name: "o", dtype: "U8", shape: [1, 220, 220, 1], source: 0 }],
    };
    using model = open(simModelFile(spec));
    assert.match(String(model.info.soc), /S600/);
    assert.deepEqual(model.inputs[0].strides, [56320, 256, 1, 1], "32 would give 224, which S600 refuses");
    const data = Uint8Array.from({ length: 220 * 220 }, (_, i) => (i * 7) & 255);
    assert.deepEqual(values(model.run(data)[0].dense(), Number), Array.from(data));
  });
});

// ---- 3. alignedByteSize = -1 ---------------------------------------------------------------------

test("s100 (3): alignedByteSize -1 (NV12 and dynamic inputs) allocates stride[0] * dim[0]", () => {
  const spec: SimModelSpec = {
    name: "no_size",
    inputs: [
      { name: "y", dtype: "U8", shape: [1, 4, 40, 1], stride: [-1, -1, 1, 1], alignedByteSize: -1 },
      { name: "d", dtype: "U8", shape: [1, -1, -1, 1], stride: [-1, -1, 1, 1], alignedByteSize: -1 },
    ],
    outputs: [
      { name: "oy", dtype: "U8", shape: [1, 4, 40, 1], source: 0, alignedByteSize: -1 },
      { name: "od", dtype: "U8", shape: [6], source: 1 },
    ],
  };
  using model = open(simModelFile(spec));
  assert.equal(model.inputs[0].byteSize, 4 * 64, "4 rows of 64 bytes");
  assert.equal(model.inputs[1].byteSize, 0, "dynamic: sized when its shape is known");
  assert.equal(model.outputs[0].byteSize, 160);
  const yData = Uint8Array.from({ length: 160 }, (_, i) => i);
  const dData = Uint8Array.from({ length: 3 * 20 }, (_, i) => 200 - i);
  const out = model.run({ y: yData, d: { data: dData, shape: [1, 3, 20, 1] } });
  assert.equal(model.inputs[1].data.byteLength, 3 * 32, "stride[0] * dim[0] = 3 rows of 32 bytes");
  assert.deepEqual(values(out.get("oy").dense(), Number), Array.from(yData));
  assert.deepEqual(values(out.get("od").dense(), Number), Array.from(dData.subarray(0, 6)));
});

// ---- 4. dynamic outputs --------------------------------------------------------------------------

const DYN_OUT: SimModelSpec = {
  name: "dyn_out",
  // Rows of 8 float32 are 32 bytes: the input's filled stride is the same for every alignment rule.
  inputs: [{ name: "x", dtype: "F32", shape: [-1, 8], stride: [-1, 4] }],
  outputs: [
    { name: "y", dtype: "F32", shape: [-1, 8], stride: [-1, -1], alignedByteSize: 8 * 8 * 4, a: 2, b: 1 },
    { name: "n", dtype: "S32", shape: [2], source: -1 },
  ],
};

test("s100 (4): a dynamic output takes each run's shape from hbDNNGetTaskOutputTensorProperties", () => {
  using model = open(simModelFile(DYN_OUT));
  assert.equal(model.outputs[0].dynamic, true);
  for (const rows of [2, 5, 1, 8]) {
    const data = Float32Array.from({ length: rows * 8 }, (_, i) => i - rows);
    const out = model.run({ data, shape: [rows, 8] });
    assert.deepEqual(out.get("y").shape, [rows, 8], `${rows} rows`);
    const [e] = simExpected(DYN_OUT, [data], [[rows, 8]]);
    assert.deepEqual(values(out.get("y").dense(), Number), Array.from(e), `${rows} rows`);
    assert.deepEqual(values(out.get("n").data, Number), [0, 1]);
  }
  // Beyond the output's bound the runtime refuses the run; the model keeps working.
  assert.throws(() => model.run({ data: new Float32Array(72), shape: [9, 8] }), EdgerunError);
  assert.deepEqual(oneRow(model), [3, 5, 7, 9, 11, 13, 15, 17]);
  assert.equal(sim.counter("tasks_live"), 0);
});

function oneRow(model: ReturnType<typeof open>): number[] {
  return values(model.run({ data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), shape: [1, 8] }).get("y").dense(), Number);
}

test("s100 (4): runAsync reads dynamic output shapes too", async () => {
  using model = open(simModelFile(DYN_OUT));
  const outs = await Promise.all([3, 6].map((rows) =>
    model.runAsync({ data: new Float32Array(rows * 8).fill(1), shape: [rows, 8] })
  ));
  assert.deepEqual(outs.map((o) => o.get("y").shape), [[3, 8], [6, 8]]);
  assert.deepEqual(values(outs[1].get("y").dense(), Number), new Array(48).fill(3));
});

// ---- 5. the task cap is shared -------------------------------------------------------------------

test("s100 (5): -200001 from the runtime (other UCP users hold the tasks) waits like a full slot, within timeoutMs", async () => {
  await sim.with({}, async () => {
    using model = open(simModelFile(SIMPLE));
    sim.reserveTasks(32);
    const e = throwsEdgerun(() => model.run(x, { timeoutMs: 30 }), "TIMEOUT", { message: /-200001/ });
    assert.match(e.message, /shared with other UCP users/);
    // Without a timeout the run waits until the foreign tasks are gone.
    const refused = sim.counter("tasks_refused");
    const pending = model.runAsync(x);
    assert.ok(await sim.waitFor(() => sim.counter("tasks_refused") > refused), "the runtime refused once");
    sim.reserveTasks(0);
    assert.deepEqual(values((await pending)[0].data, Number), y);
  });
});

test("s100 (5): HB_UCP_MAX_TASK_NUM lowers edgerun's own cap: no task beyond it is even asked for", async () => {
  await withNativeEnv({ [CAP]: "2" }, async () => {
    using model = open(simModelFile(SIMPLE), { maxRequests: 2 });
    const before = sim.counters();
    await withHold(sim, async () => {
      const runs = [model.runAsync(x), model.runAsync(x)];
      assert.ok(await sim.waitFor(() => sim.counter("tasks_live") - before.tasks_live === 2), "two tasks exist");
      throwsEdgerun(() => model.run(x, { timeoutMs: 30 }), "TIMEOUT", { message: /cap is 2 tasks/ });
      assert.equal(sim.counter("tasks_refused"), before.tasks_refused, "the runtime never had to refuse");
      return runs;
    }).then((runs) => Promise.all(runs));
  });
});

// ---- 6. late tasks: no release of a running task on the caller's thread, polled with back-off --------

test("s100 (6): behind a late task, the slot wait polls it with back-off and never releases it while it runs", async () => {
  await withNativeEnv({ [CAP]: "1" }, async () => {
    const late = open(simModelFile(SIMPLE));
    using other = open(simModelFile({ ...SIMPLE, name: "other" }));
    const before = sim.counters();
    await withHold(sim, async () => {
      assert.throws(() => late.run(x, { timeoutMs: 20 }), isCode("TIMEOUT"));
      assert.ok(await sim.waitFor(() => simHeld(sim) === 1), "the device holds the late task");
      const waits = sim.counter("tasks_timed_out");
      // The only slot is the late task's: the run polls it (each poll is a timed-out wait, an
      // ERROR line on a board) until its own timeout.
      assert.throws(() => other.run(x, { timeoutMs: 300 }), isCode("TIMEOUT"));
      const polls = sim.counter("tasks_timed_out") - waits;
      assert.ok(polls >= 1 && polls <= 16, `${polls} polls in 300 ms: back-off bounds them whatever the speed`);
      late.close();
      assert.equal(simHeld(sim), 1, "close() returned with the task still running");
    });
    assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === before.tasks_live), "the late task was released");
    assert.equal(sim.counter("releases_blocked"), before.releases_blocked, "no release waited for a running task");
  });
});

// ---- 7. hbDNNRelease refused while tasks are alive ----------------------------------------------

test("s100 (7): a task whose release failed is kept and retried; hbDNNRelease's -600003 keeps the model handle", async () => {
  await sim.with({}, async () => {
    const before = sim.counters();
    const model = open(simModelFile(SIMPLE));
    // The run's release, its retry when the request is freed, and the retry at pack close fail.
    sim.failRelease(3);
    assert.throws(() => model.run(x), EdgerunError);
    model.close();
    assert.ok(
      await sim.waitFor(() => sim.counter("model_release_refused") - before.model_release_refused === 1),
      "hbDNNRelease was refused (-600003) while the task was alive",
    );
    assert.equal(sim.counter("release_failures") - before.release_failures, 3);
    assert.equal(sim.counter("tasks_live"), before.tasks_live + 1, "the runtime still holds the task");
    // The next pack close retries both: the task, then the model.
    open(simModelFile({ ...SIMPLE, name: "next" })).close();
    assert.equal(sim.counter("tasks_live"), before.tasks_live, "the kept task was released");
    assert.equal(sim.counter("models_released") - before.models_released, 2, "both models were released");
  });
});

// ---- 8. preemption and L2M ------------------------------------------------------------------------

test("s100 (8): priority 254/255 with L2M in use is refused before submit, naming the variable", async () => {
  using model = open(simModelFile(SIMPLE));
  await withNativeEnv({ [L2M]: "6:6:6:6" }, () => {
    const before = sim.counter("tasks_created");
    for (const priority of [254, 255]) {
      throwsEdgerun(() => model.run(x, { priority }), "INVALID_ARGUMENT", { message: /preemption.*L2M.*HB_DNN_USER_DEFINED_L2M_SIZES/ });
    }
    assert.equal(sim.counter("tasks_created"), before, "no task was created");
    assert.deepEqual(values(model.run(x, { priority: 253 })[0].data, Number), y);
  });
  assert.deepEqual(values(model.run(x, { priority: 255 })[0].data, Number), y, "without L2M it preempts");
});

// ---- 9. S600 ---------------------------------------------------------------------------------------

test("s100 (9): S600: a 4-core model fails naming HB_DNN_USER_DEFINED_L2M_SIZES until it is set", async () => {
  await sim.with({ soc: "S600" }, async () => {
    using model = open(simModelFile({ ...SIMPLE, name: "quad", bpuCoreNum: 4 }));
    assert.equal(model.info.model_bpu_cores, 4);
    const e = throwsEdgerun(() => model.run(x), "BACKEND", { message: /HB_DNN_USER_DEFINED_L2M_SIZES/ });
    assert.equal(e.vendorCode, -200003);
    await withNativeEnv({ [L2M]: "6:6:6:6" }, () => {
      assert.deepEqual(values(model.run(x)[0].data, Number), y, "runs on cores 0..3");
    });
    using dual = open(simModelFile({ ...SIMPLE, name: "dual600", bpuCoreNum: 2 }));
    assert.deepEqual(values(dual.run(x)[0].data, Number), y, "the variable is needed for 4-core models only");
  });
});
