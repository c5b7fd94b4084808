/**
 * What the soak test repeats. Each scenario opens what it needs, then runs `count` iterations at
 * a time (the harness reads RSS between the batches), checking every result on the way: a run
 * that silently did nothing would make a leak test meaningless. The hbdnn and acl scenarios also read
 * their simulator's gauges after every close: no live task and no live buffer may remain.
 * @module
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Model, open } from "../mod.ts";
import { dtypeModel } from "../tests/fixtures/onnx_models.ts";
import { deterministicInput, PADDLE_OCR_INPUTS } from "../tests/fixtures/inputs.ts";
import { ocrModels } from "../tests/helpers.ts";
import { useSim } from "../tests/sim_helpers.ts";
import { writeSimModelFile } from "../tests/sim/simfile.ts";
import { useAclSim } from "../tests/acl_helpers.ts";
import { writeAclSimModel } from "../tests/sim/omfile.ts";

/** An opened scenario: runs iterations in batches, then closes and checks what close left behind. */
export interface Session {
  run(count: number): Promise<void>;
  close(): Promise<void>;
}

export interface Scenario {
  /** Short name, also the command-line selector. */
  name: string;
  /** What one iteration is. */
  what: string;
  /** Measured iterations at scale 1 (warm-up comes on top). */
  iterations: number;
  /**
   * Warm-up iterations before the first reading, as a fraction of `iterations` (default 0.1).
   * Runs warm up for as long as they are measured: on Deno, V8's memory outside the JS heap (and
   * the runtime's code paged in from its binary) climbs for ~100,000 async runs before it levels
   * off, then moves by several MiB either way without a trend (1,000,000-run measurement).
   */
  warmup?: number;
  /** Allowed growth from the warm-up reading to the last reading, in MB (10^6 bytes, as the targets are set). */
  limitMB: number;
  open(workDir: string): Session | Promise<Session>;
}

/** Runs in flight at once in the runAsync scenarios. */
const IN_FLIGHT = 4;

/** The tiny ONNX graph: y = x + x, float32 [2,3]. */
function tinyOnnx(workDir: string): string {
  const path = join(workDir, "add_float32.onnx");
  writeFileSync(path, dtypeModel("float32"));
  return path;
}

/** The simulator's tiny model: y = 2x, float32 [1,64]; the global latency override is 0. */
function tinySim(workDir: string): string {
  useSim().setLatencyUs(0);
  const path = join(workDir, "soak.hbm");
  writeFileSync(path, writeSimModelFile([{
    name: "soak",
    inputs: [{ name: "x", dtype: "F32", shape: [1, 64] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 64], a: 2 }],
  }]));
  return path;
}

/**
 * Checks the simulator's error counters, then zeroes them: the simulator logs every completed
 * task (8 bytes each, up to 2^20 entries) until reset, which is its memory, not ours.
 */
function resetSim(): void {
  const sim = useSim();
  assert.equal(sim.counter("free_in_use"), 0, "simulator: buffers freed while the device used them");
  assert.equal(sim.counter("bad_handles"), 0, "simulator: calls with unknown handles");
  assert.equal(sim.counter("tasks_failed"), 0, "simulator: failed tasks");
  sim.reset();
}

/** The simulator holds no task and no buffer once every model is closed. */
function assertSimIdle(when: string): void {
  const sim = useSim();
  assert.equal(sim.counter("tasks_live"), 0, `simulator: live tasks ${when}`);
  assert.equal(sim.counter("mem_live"), 0, `simulator: live buffers ${when}`);
}

/** The AscendCL simulator's tiny model: y = 2x, float32 [1,64]; the global latency override is 0. */
function tinyAcl(workDir: string): string {
  useAclSim().setLatencyUs(0);
  const path = join(workDir, "soak.om");
  writeFileSync(path, writeAclSimModel({
    inputs: [{ name: "x", dtype: "FLOAT", dims: [1, 64] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [1, 64], a: 2 }],
  }));
  return path;
}

/** The AscendCL simulator's error counters must be zero; then they are zeroed. */
function resetAclSim(): void {
  const sim = useAclSim();
  for (const name of ["free_in_use", "bad_handles", "concurrent_exec", "tasks_failed"] as const) {
    assert.equal(sim.counter(name), 0, `AscendCL simulator: ${name}`);
  }
  sim.resetCounters();
}

/** Once every acl model is closed, the AscendCL simulator holds nothing a model owns. */
function assertAclIdle(when: string): void {
  const live = useAclSim().liveCounts();
  for (const k of ["models", "devBuffers", "hostBuffers", "datasets", "dataBuffers", "streams", "descs", "tasks"] as const) {
    assert.equal(live[k], 0, `AscendCL simulator: live ${k} ${when}`);
  }
}

/** Input elements are i mod 1000 (exact in float32); every output element must be twice that. */
function checkDoubled(out: ArrayLike<number>, v: number, i: number): void {
  if (out[0] !== 2 * v || out[out.length - 1] !== 2 * v) {
    throw new Error(`iteration ${i}: expected ${2 * v}, got ${out[0]} .. ${out[out.length - 1]}`);
  }
}

/** Hooks of the hbdnn scenarios: before each batch, and after close. */
interface SimHooks {
  beforeBatch(): void;
  afterClose(): void;
}

const SIM_HOOKS: SimHooks = {
  beforeBatch: resetSim,
  afterClose() {
    assertSimIdle("after close");
    resetSim();
  },
};

const ACL_HOOKS: SimHooks = {
  beforeBatch: resetAclSim,
  afterClose() {
    assertAclIdle("after close");
    resetAclSim();
  },
};

function syncRuns(model: Model, elements: number, hooks?: SimHooks): Session {
  const x = new Float32Array(elements);
  let i = 0;
  return {
    run(count) {
      hooks?.beforeBatch();
      for (const end = i + count; i < end; i++) {
        const v = i % 1000;
        x.fill(v);
        checkDoubled(model.run(x)[0].data as Float32Array, v, i);
      }
      return Promise.resolve();
    },
    close() {
      model.close();
      hooks?.afterClose();
      return Promise.resolve();
    },
  };
}

function asyncRuns(model: Model, elements: number, hooks?: SimHooks): Session {
  let i = 0;
  return {
    async run(count) {
      hooks?.beforeBatch();
      const end = i + count;
      // Each lane owns its input: feeds are read when the run starts, not when it is queued.
      const lane = async () => {
        const x = new Float32Array(elements);
        while (i < end) {
          const n = i++;
          const v = n % 1000;
          x.fill(v);
          const [y] = await model.runAsync(x);
          checkDoubled(y.data as Float32Array, v, n);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    },
    async close() {
      await model.closeAsync();
      hooks?.afterClose();
    },
  };
}

/** One open, one run (checked) and one close of the PaddleOCR text-direction classifier. */
function paddleCycles(): Session {
  const spec = PADDLE_OCR_INPUTS.cls;
  const path = join(ocrModels, spec.file);
  const shape = [...spec.shape];
  const data = deterministicInput(shape, spec.seed);
  return {
    run(count) {
      for (let i = 0; i < count; i++) {
        const model = open(path);
        const [probs] = model.run({ data, shape });
        const p = probs.data as Float32Array;
        // Softmax over the two directions (0 and 180 degrees).
        if (p.length !== 2 || Math.abs(p[0] + p[1] - 1) > 1e-4) throw new Error(`cycle ${i}: not a softmax: ${p}`);
        model.close();
      }
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/** Open, one run(), one runAsync(), close: the simulator must be idle after every close. */
function simCycles(path: string, hooks: SimHooks = SIM_HOOKS): Session {
  const x = new Float32Array(64);
  let i = 0;
  return {
    async run(count) {
      hooks.beforeBatch();
      for (const end = i + count; i < end; i++) {
        const v = i % 1000;
        x.fill(v);
        const model = open(path);
        checkDoubled(model.run(x)[0].data as Float32Array, v, i);
        const [y] = await model.runAsync(x);
        checkDoubled(y.data as Float32Array, v, i);
        await model.closeAsync();
        hooks.afterClose();
      }
    },
    close: () => Promise.resolve(hooks.beforeBatch()),
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "ort-run",
    warmup: 1,
    what: "run() of a tiny ONNX graph (y = x + x, float32 [2,3])",
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => syncRuns(open(tinyOnnx(dir)), 6),
  },
  {
    name: "ort-runAsync",
    warmup: 1,
    what: `runAsync() of the same graph, ${IN_FLIGHT} in flight`,
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => asyncRuns(open(tinyOnnx(dir)), 6),
  },
  {
    name: "sim-run",
    warmup: 1,
    what: "run() on the hbdnn simulator at 0 latency (y = 2x, float32 [1,64])",
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => syncRuns(open(tinySim(dir)), 64, SIM_HOOKS),
  },
  {
    name: "sim-runAsync",
    warmup: 1,
    what: `runAsync() on the simulator at 0 latency, ${IN_FLIGHT} in flight`,
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => asyncRuns(open(tinySim(dir)), 64, SIM_HOOKS),
  },
  {
    name: "ort-open-close",
    what: "open, one run() and close of the PaddleOCR classifier (cls, [1,3,48,192])",
    iterations: 1_000,
    limitMB: 5,
    open: () => paddleCycles(),
  },
  {
    name: "sim-open-close",
    warmup: 1,
    what: "open, run(), runAsync() and close on the simulator; idle checked after every close",
    iterations: 1_000,
    limitMB: 5,
    open: (dir) => simCycles(tinySim(dir)),
  },
  {
    name: "acl-run",
    warmup: 1,
    what: "run() on the AscendCL simulator at 0 latency (y = 2x, float32 [1,64], ACL_HOST copies)",
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => syncRuns(open(tinyAcl(dir)), 64, ACL_HOOKS),
  },
  {
    name: "acl-runAsync",
    warmup: 1,
    what: `runAsync() on the AscendCL simulator at 0 latency, ${IN_FLIGHT} in flight`,
    iterations: 100_000,
    limitMB: 2,
    open: (dir) => asyncRuns(open(tinyAcl(dir)), 64, ACL_HOOKS),
  },
  {
    name: "acl-open-close",
    warmup: 1,
    what: "open, run(), runAsync() and close on the AscendCL simulator; idle checked after every close",
    iterations: 1_000,
    limitMB: 5,
    open: (dir) => simCycles(tinyAcl(dir), ACL_HOOKS),
  },
];
