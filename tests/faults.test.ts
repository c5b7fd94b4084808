/**
 * Seeded random fault injection (issue 16): random sequences of API calls on the hbdnn simulator
 * while it fails vendor calls, fails or stalls tasks, caps device memory, corrupts outputs, jitters
 * latency and resets the device. After every step: every promise settled (bounded), every error
 * typed, and, with the faults lifted, every open model computes the right values. At the end
 * nothing is left: the shim's live counts and the simulator's tasks and buffers.
 *
 * EDGERUN_FAULT_SEED replays a sequence; EDGERUN_FAULT_STEPS sets its length (make soak: more).
 */
import assert from "node:assert/strict";
import process from "node:process";
import { EdgerunError, type Model, open } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { type SimFaultTarget, simModelFile, useSim } from "./sim_helpers.ts";

const sim = useSim();
const env = (name: string) => {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
};
const seed = Number(env("EDGERUN_FAULT_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const steps = Number(env("EDGERUN_FAULT_STEPS") ?? 80);

/** mulberry32: small, seedable, the same on both runtimes. */
function rng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TARGETS: SimFaultTarget[] = [
  "hbDNNInitializeFromFiles", "hbDNNGetModelNameList", "hbDNNGetModelHandle", "hbDNNGetInputCount",
  "hbDNNGetOutputCount", "hbDNNGetInputName", "hbDNNGetOutputName", "hbDNNGetInputTensorProperties",
  "hbDNNGetOutputTensorProperties", "hbDNNGetCompileBpuCoreNum", "hbDNNInferV2", "hbDNNRelease",
  "hbUCPSubmitTask", "hbUCPWaitTaskDone", "hbUCPReleaseTask", "hbUCPMallocCached", "hbUCPMemFlush",
  "hbUCPFree", "task",
];
const CODES = [-100001, -100004, -200001, -200003, -200004, -400001, -600002];

const specs = [0, 1].map((k) => ({
  name: `faulty${k}`,
  latencyUs: 300 + 700 * k,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 4], a: 2 + k, b: 1 }],
}));
const files = specs.map((s) => simModelFile(s, s.name));
const x = new Float32Array([1, 2, 3, 4]);
const want = (k: number) => Array.from(x, (v) => v * (2 + k) + 1);

const typed = (e: unknown) => e instanceof EdgerunError || e instanceof TypeError || e instanceof RangeError;

async function bounded<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: never settled`)), ms)));
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

test(`faults: ${steps} random steps under injected faults (seed ${seed}, EDGERUN_FAULT_SEED replays)`, async () => {
  const random = rng(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const baseline = liveCounts();
  const simBefore = sim.counters();
  const log: string[] = [];
  const models: (Model | undefined)[] = [undefined, undefined];
  const untyped: string[] = [];
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await bounded(Promise.resolve().then(fn), what);
    } catch (e) {
      if (!typed(e)) untyped.push(`${what}: ${e}`);
      return e;
    }
  };
  try {
    await sim.with({}, async () => {
      for (let step = 0; step < steps; step++) {
        const k = Math.floor(random() * 2);
        const op = Math.floor(random() * 10);
        log.push(`${step}:${op}/${k}`);
        const m = models[k];
        if (op === 0 || !m || m.closed) {
          m?.close();
          await attempt("open", () => (models[k] = open(files[k])));
        } else if (op === 1) {
          sim.injectFault(pick(TARGETS), 1 + Math.floor(random() * 3), pick(CODES), random() < 0.8 ? 1 : 2);
        } else if (op === 2) {
          await attempt("run", () => m.run(x, random() < 0.3 ? { timeoutMs: 5 } : undefined));
        } else if (op === 3 || op === 4) {
          const controller = new AbortController();
          // Each promise is observed at once (a rejection is never unhandled), checked below.
          const runs = Array.from({ length: 1 + Math.floor(random() * 6) }, () =>
            m.runAsync(x, random() < 0.3 ? { timeoutMs: 1 + Math.floor(random() * 5) } : { signal: controller.signal })
              .then(() => undefined, (e: unknown) => e));
          if (random() < 0.3) controller.abort();
          if (random() < 0.2) m.close();
          for (const e of await bounded(Promise.all(runs), "runAsync")) {
            if (e !== undefined && !typed(e)) untyped.push(`runAsync: ${e}`);
          }
        } else if (op === 5) {
          sim.deviceReset();
        } else if (op === 6) {
          sim.corruptOutputs(pick(["nan", "garbage", "off"] as const));
          await attempt("run (corrupt)", () => m.run(x));
          sim.corruptOutputs("off");
        } else if (op === 7) {
          sim.injectFault("stall", 1, 1);
          await attempt("runAsync (stall)", () => m.runAsync(x, { timeoutMs: 20 }));
          sim.unstall();
        } else if (op === 8) {
          sim.setMemCap(random() < 0.5 ? 64 : sim.counter("mem_live_bytes"));
          await attempt("open (memory cap)", () => open(files[k]).close());
          sim.setMemCap(0);
        } else {
          sim.setJitterUs(2000, seed + step);
          await attempt(random() < 0.5 ? "closeAsync" : "close", () => random() < 0.5 ? m.closeAsync() : m.close());
          sim.setJitterUs(0);
        }
        // Faults lifted: every open model computes correct values (the first run after a fault
        // may still meet a task the fault left behind, so one typed failure is allowed).
        sim.clearFaults();
        for (const [j, model] of models.entries()) {
          if (!model || model.closed) continue;
          let got: number[] | undefined;
          for (let tries = 0; tries < 3 && !got; tries++) {
            try {
              got = values((await bounded(model.runAsync(x), `check runAsync of model ${j}`))[0].data, Number);
            } catch (e) {
              if (!typed(e)) untyped.push(`check: ${e}`);
            }
          }
          assert.deepEqual(got, want(j), `model ${j} after step ${step} (seed ${seed}): ${log.slice(-5).join(" ")}`);
          assert.deepEqual(values(model.run(x)[0].data, Number), want(j), `sync run of model ${j} after step ${step} (seed ${seed})`);
        }
      }
    });
  } finally {
    sim.clearFaults();
    for (const model of models) await model?.closeAsync().catch(() => model.close());
  }
  assert.deepEqual(untyped, [], `untyped errors (seed ${seed})`);
  // Refused frees and releases are retried at pack closes: one more open and close gives them a turn.
  open(files[0]).close();
  await assertNothingLeft(sim, baseline, simBefore, 10_000);
});
