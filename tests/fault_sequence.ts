/**
 * The seeded fault sequence shared by tests/faults.test.ts (hbdnn simulator) and
 * tests/acl_faults.test.ts (AscendCL simulator): random API calls on two models while the
 * simulator injects faults. After every step every promise has settled (bounded) and every error
 * is typed; with the faults lifted, every open model computes its reference values.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { EdgerunError, type Model, open } from "../mod.ts";
import { uniform } from "./fixtures/inputs.ts";
import { values } from "./helpers.ts";

/** The fault controls both simulators offer (tests/sim/FORMAT.md 6, tests/sim/acl/FORMAT.md 6). */
export interface FaultControls {
  /** Fails calls nth.. of fn (times of them) with code; "task" fails a run, "stall" stalls one. */
  injectFault(fn: string, nth: number, code: number, times?: number): void;
  unstall(): void;
  setMemCap(bytes: number): void;
  /** Device memory in use now (a cap at this value refuses the next allocation). */
  memBytes(): number;
  setJitterUs(us: number, seed?: number): void;
  clearFaults(): void;
}

/** What a backend's sequence injects beyond the shared faults. */
export interface FaultPlan {
  sim: FaultControls;
  /** Two model files computing x * (2 + k) + 1 on a [1, 4] float32 input x. */
  files: readonly string[];
  /** Functions the backend calls, for injected failures, and the codes to fail them with. */
  targets: readonly string[];
  codes: readonly number[];
  /** The device fails as a whole (a reset or a fault state), then the model is used. */
  deviceFails(model: Model, attempt: Attempt): Promise<void>;
  /** A backend's own oddity (corrupt outputs, no error text), then the model is used. */
  oddity(model: Model, attempt: Attempt, pick: <T>(list: readonly T[]) => T): Promise<void>;
}

/** Runs fn bounded; a thrown error is returned, and recorded when it is not typed. */
export type Attempt = (what: string, fn: () => unknown) => Promise<unknown>;

const env = (name: string) => {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
};

/** EDGERUN_FAULT_SEED replays a sequence; EDGERUN_FAULT_STEPS sets its length (make soak: more). */
export const faultSeed = Number(env("EDGERUN_FAULT_SEED") ?? Math.floor(Math.random() * 2 ** 31));
export const faultSteps = Number(env("EDGERUN_FAULT_STEPS") ?? 80);


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

const x = new Float32Array([1, 2, 3, 4]);
const want = (k: number) => Array.from(x, (v) => v * (2 + k) + 1);

/** Runs the sequence; closes every model it opened, then asserts that no error was untyped. */
export async function runFaultSequence(plan: FaultPlan, seed = faultSeed, steps = faultSteps): Promise<void> {
  const { sim, files } = plan;
  const random = uniform(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const log: string[] = [];
  const models: (Model | undefined)[] = [undefined, undefined];
  const untyped: string[] = [];
  const attempt: Attempt = async (what, fn) => {
    try {
      await bounded(Promise.resolve().then(fn), what);
    } catch (e) {
      if (!typed(e)) untyped.push(`${what}: ${e}`);
      return e;
    }
  };
  try {
    for (let step = 0; step < steps; step++) {
      const k = Math.floor(random() * 2);
      const op = Math.floor(random() * 10);
      log.push(`${step}:${op}/${k}`);
      const m = models[k];
      if (op === 0 || !m || m.closed) {
        m?.close();
        await attempt("open", () => (models[k] = open(files[k])));
      } else if (op === 1) {
        sim.injectFault(pick(plan.targets), 1 + Math.floor(random() * 3), pick(plan.codes), random() < 0.8 ? 1 : 2);
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
        await plan.deviceFails(m, attempt);
      } else if (op === 6) {
        await plan.oddity(m, attempt, pick);
      } else if (op === 7) {
        sim.injectFault("stall", 1, 1);
        await attempt("runAsync (stall)", () => m.runAsync(x, { timeoutMs: 20 }));
        sim.unstall();
      } else if (op === 8) {
        sim.setMemCap(random() < 0.5 ? 64 : sim.memBytes());
        await attempt("open (memory cap)", () => open(files[k]).close());
        sim.setMemCap(0);
      } else {
        sim.setJitterUs(2000, seed + step);
        await attempt(random() < 0.5 ? "closeAsync" : "close", () => random() < 0.5 ? m.closeAsync() : m.close());
        sim.setJitterUs(0);
      }
      // Faults lifted: every open model computes correct values (the first run after a fault
      // may still meet a task the fault left behind, so typed failures are allowed).
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
  } finally {
    sim.clearFaults();
    for (const model of models) await model?.closeAsync().catch(() => model.close());
  }
  assert.deepEqual(untyped, [], `untyped errors (seed ${seed})`);
}

/** The input every sequence model gets. */
export const faultInput = x;
