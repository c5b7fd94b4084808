/**
 * Runs started on the caller's thread whose tags go out from the
 * device's done-callback (core.c run_done_early) while their worker still releases the task and
 * invalidates the outputs, raced against close(), closeAsync(), aborts, timeouts, device resets
 * and stalls, with many models and requests in flight at 0 latency and jittered latencies. The
 * simulator runs in strict cache mode: an output read before its invalidate is stale, so a
 * completion that came out too early shows a wrong value. Randomness is seeded (printed).
 * Afterwards: no shim handle, no simulator task, no buffer freed in use, no stale handle used.
 */
import assert from "node:assert/strict";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import { uniform } from "./fixtures/inputs.ts";
import process from "node:process";

const sim = useSim();
const SEED = Number(process.env.EDGERUN_RACE_SEED ?? 0x5eed1) >>> 0;
console.log(`hbdnn_early_races seed ${SEED} (EDGERUN_RACE_SEED to change)`);


const spec = (name: string, latencyUs: number, a: number) => ({
  name,
  latencyUs,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 8] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 8], a, b: 1 }],
});
const input = (k: number) => Float32Array.from({ length: 8 }, (_, i) => k * 8 + i);
const want = (a: number, k: number) => Array.from(input(k), (v) => Math.fround(a * v + 1));
const codeOf = (e: unknown) => (e instanceof EdgerunError ? e.code : String(e));
const tick = (r: () => number) => {
  const v = r();
  if (v < 0.3) return Promise.resolve();
  if (v < 0.6) return new Promise<void>((res) => queueMicrotask(res));
  return new Promise<void>((res) => setTimeout(res, Math.floor(v * 3)));
};

test("hbdnn early tags: 3 models x 4 requests, 300 runs at 0 latency and jittered, strict cache: every output is its own run's", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  const r = uniform(SEED);
  await sim.with({ latencyUs: 0, strictCache: true, cores: 4 }, async () => {
    for (const jitter of [0, 300]) {
      sim.setJitterUs(jitter, SEED + 1);
      const models = [2, 3, -1].map((a, i) => ({
        a,
        m: open(simModelFile(spec(`mix${i}`, 0, a)), { maxRequests: 4 }),
      }));
      const runs: Promise<string>[] = [];
      for (let k = 0; k < 300; k++) {
        const { a, m } = models[Math.floor(r() * models.length)];
        runs.push(
          m.runAsync(input(k)).then((o) => {
            const got = Array.from(o[0].data as Float32Array);
            return JSON.stringify(got) === JSON.stringify(want(a, k)) ? "ok" : `wrong ${k}: ${got}`;
          }, (e) => `error ${codeOf(e)} ${e.message}`),
        );
        if (r() < 0.2) await tick(r);
      }
      const results = await Promise.all(runs);
      for (const { m } of models) m.close();
      assert.deepEqual(
        [...new Set(results)],
        ["ok"],
        `jitter ${jitter}: ${results.filter((x) => x !== "ok").slice(0, 5)}`,
      );
    }
  });
  await assertNothingLeft(sim, baseline, before);
});

test("hbdnn early tags: close() / closeAsync() at seeded moments while tags come from done-callbacks: every run settles, nothing leaks", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  const r = uniform(SEED + 7);
  await sim.with({ latencyUs: 0, strictCache: true, cores: 2 }, async () => {
    sim.setJitterUs(200, SEED + 2);
    const outcomes = new Set<string>();
    for (let round = 0; round < 60; round++) {
      const m = open(simModelFile(spec(`close${round % 4}`, 0, 2)), { maxRequests: 1 + (round % 4) });
      const n = 1 + Math.floor(r() * 8);
      const runs = Array.from({ length: n }, (_, k) =>
        m.runAsync(input(k)).then((o) => {
          const got = Array.from(o[0].data as Float32Array);
          return JSON.stringify(got) === JSON.stringify(want(2, k)) ? "ok" : `wrong ${k}`;
        }, (e) => codeOf(e)));
      // Wait until some callbacks happened (0..n), then close.
      const target = sim.counter("callbacks") + Math.floor(r() * (n + 1));
      if (r() < 0.5) await sim.waitFor(() => sim.counter("callbacks") >= target, 2000);
      else await tick(r);
      if (r() < 0.5) m.close();
      else await m.closeAsync();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<string[]>((res) => (timer = setTimeout(() => res(["hung"]), 10_000)));
      const res = await Promise.race([Promise.all(runs), hung]);
      clearTimeout(timer);
      for (const x of res) outcomes.add(x);
      assert.ok(!res.includes("hung"), `round ${round}: a run never settled`);
      assert.ok(res.every((x) => x === "ok" || x === "CLOSED" || x === "CANCELLED"), `round ${round}: ${res}`);
    }
    console.log("close outcomes", [...outcomes]);
  });
  await assertNothingLeft(sim, baseline, before);
});

test("hbdnn early tags: aborts and timeouts racing the done-callback: results are right or typed errors, later runs right", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  const r = uniform(SEED + 11);
  await sim.with({ latencyUs: 0, strictCache: true, cores: 2 }, async () => {
    sim.setJitterUs(3000, SEED + 3);
    const m = open(simModelFile(spec("abort", 500, 3)), { maxRequests: 4 });
    const seen = new Set<string>();
    for (let round = 0; round < 40; round++) {
      const runs = Array.from({ length: 6 }, (_, j) => {
        const k = round * 6 + j;
        const c = new AbortController();
        const timeoutMs = r() < 0.3 ? 1 + Math.floor(r() * 3) : 0;
        const p = m.runAsync(input(k), { signal: c.signal, ...(timeoutMs ? { timeoutMs } : {}) }).then((o) => {
          const got = Array.from(o[0].data as Float32Array);
          return JSON.stringify(got) === JSON.stringify(want(3, k)) ? "ok" : `wrong ${k}: ${got}`;
        }, (e) => codeOf(e));
        if (r() < 0.5) {
          const at = sim.counter("callbacks") + Math.floor(r() * 3);
          void sim.waitFor(() => sim.counter("callbacks") >= at, 50).then(() => c.abort());
        }
        return p;
      });
      const res = await Promise.all(runs);
      for (const x of res) seen.add(x);
      assert.ok(res.every((x) => x === "ok" || x === "CANCELLED" || x === "TIMEOUT"), `round ${round}: ${res}`);
    }
    // Every request of the model is reused after the races: each must give current outputs.
    sim.setJitterUs(0);
    const after = await Promise.all(Array.from({ length: 16 }, (_, k) => m.runAsync(input(1000 + k))));
    after.forEach((o, k) => assert.deepEqual(Array.from(o[0].data as Float32Array), want(3, 1000 + k)));
    m.close();
    console.log("abort outcomes", [...seen]);
  });
  await assertNothingLeft(sim, baseline, before, 10_000);
});

test("hbdnn early tags: device reset and stalls while inline-started runs are on the device: all settle, later runs right", async () => {
  const baseline = liveCounts();
  const before = sim.counters();
  const r = uniform(SEED + 13);
  await sim.with({ latencyUs: 0, strictCache: true, cores: 2 }, async () => {
    const m = open(simModelFile(spec("reset", 200, 2)), { maxRequests: 6 });
    await m.runAsync(input(0));
    for (let round = 0; round < 15; round++) {
      sim.injectFault("stall", 1 + Math.floor(r() * 3), 1, 1);
      const runs = Array.from({ length: 6 }, (_, k) =>
        m.runAsync(input(k)).then((o) => {
          const got = Array.from(o[0].data as Float32Array);
          return JSON.stringify(got) === JSON.stringify(want(2, k)) ? "ok" : `wrong ${k}`;
        }, (e) => codeOf(e)));
      await sim.waitFor(() => Number(sim.rawCounter("tasks_stalled_now")) >= 1, 2000);
      if (r() < 0.5) await tick(r);
      if (r() < 0.5) sim.deviceReset();
      else sim.unstall();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<string[]>((res) => (timer = setTimeout(() => res(["hung"]), 15_000)));
      const res = await Promise.race([Promise.all(runs), hung]);
      clearTimeout(timer);
      assert.ok(!res.includes("hung"), `round ${round}: a run never settled`);
      assert.ok(
        res.every((x) => x === "ok" || x === "BACKEND" || x === "DEVICE_LOST" || x === "BUSY"),
        `round ${round}: ${res}`,
      );
      sim.clearFaults();
    }
    const after = await Promise.all(Array.from({ length: 12 }, (_, k) => m.runAsync(input(100 + k))));
    after.forEach((o, k) => assert.deepEqual(Array.from(o[0].data as Float32Array), want(2, 100 + k)));
    m.close();
  });
  // A reset racing a worker that is about to release (or wait for) a task it saw finish makes that
  // call meet a handle the reset invalidated: bad_handles may move (a race of resets the shim
  // handles as "gone", also without inline starts). Everything else must be back.
  assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0, 10_000), "simulator tasks still live");
  assert.ok(
    await sim.waitFor(() => {
      const n = liveCounts();
      return n.requests <= baseline.requests && n.submitted <= baseline.submitted;
    }, 10_000),
    JSON.stringify(liveCounts()),
  );
  assert.equal(sim.counter("free_in_use") - before.free_in_use, 0, "a buffer was freed while the device used it");
  console.log(`reset rounds: ${sim.counter("bad_handles") - before.bad_handles} reset handles met`);
});
