/**
 * One shim thread (er_set_worker_limit(1), process-wide: a child
 * process) and several runs started inline on the caller's thread, with latencies jittered, some
 * with timeouts, a stall released later: every run settles right or with a typed error, outputs are
 * current (strict cache), and nothing is left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "./compat.ts";
import { root, runScript } from "./helpers.ts";
import { simDir, simModelFile } from "./sim_helpers.ts";

const SEED = 4242;

test(`hbdnn early tags: worker limit 1, 8 inline-started runs per round with timeouts and a stall (seed ${SEED})`, () => {
  const file = simModelFile({
    name: "wl1",
    latencyUs: 300,
    inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 2, b: 1 }],
  });
  const script = `
    import process from "node:process";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    import { loadNative } from ${JSON.stringify(join(root, "ffi/load.ts"))};
    import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
    import { liveCounts, settledTo } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
    const sim = useSim();
    const native = loadNative();
    let s = ${SEED};
    const r = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
    const m = open(${JSON.stringify(file)}, { maxRequests: 8 });
    await m.runAsync(new Float32Array(4));
    native.symbols.er_set_worker_limit(1);
    sim.setStrictCache(true);
    sim.setJitterUs(2000, ${SEED});
    const seen = new Set();
    for (let round = 0; round < 20; round++) {
      if (round % 4 === 1) sim.injectFault("stall", 1 + Math.floor(r() * 4), 1, 1);
      const runs = Array.from({ length: 8 }, (_, k) => {
        const v = round * 8 + k;
        const x = new Float32Array([v, v + 1, v + 2, v + 3]);
        const timeoutMs = r() < 0.4 ? 1 + Math.floor(r() * 4) : 0;
        return m.runAsync(x, timeoutMs ? { timeoutMs } : {}).then(
          (o) => Array.from(o[0].data).join(",") === Array.from(x, (q) => 2 * q + 1).join(",") ? "ok" : "wrong " + v,
          (e) => e.code);
      });
      if (round % 4 === 1) { await sim.waitFor(() => Number(sim.rawCounter("tasks_stalled_now")) >= 1, 2000); sim.unstall(); }
      let timer;
      const hung = new Promise((res) => (timer = setTimeout(() => res(["hung"]), 15000)));
      const res = await Promise.race([Promise.all(runs), hung]);
      clearTimeout(timer);
      for (const x of res) seen.add(x);
      if (res.includes("hung")) break;
      sim.clearFaults();
      sim.setJitterUs(2000, 0);
    }
    sim.setJitterUs(0);
    const last = await Promise.all(Array.from({ length: 8 }, (_, k) => m.runAsync(new Float32Array([k, k, k, k]))));
    const lastOk = last.every((o, k) => Array.from(o[0].data).every((q) => q === 2 * k + 1));
    m.close();
    const settled = await settledTo({ packs: 0, models: 0, requests: 0, submitted: 0 }, 10000);
    await sim.waitFor(() => sim.counter("tasks_live") === 0, 10000);
    native.symbols.er_set_worker_limit(64);
    console.log(JSON.stringify({ seen: [...seen].sort(), lastOk, settled, tasks_live: sim.counter("tasks_live"),
      free_in_use: sim.counter("free_in_use"), bad_handles: sim.counter("bad_handles") }));
    process.exit(0);`;
  const res = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() }, { timeoutMs: 120_000 });
  assert.equal(res.signal, null, `killed: ${res.stdout} ${res.stderr}`);
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout.trim().split("\n").pop()!);
  assert.ok(!out.seen.includes("hung"), JSON.stringify(out));
  assert.ok(out.seen.every((x: string) => x === "ok" || x === "TIMEOUT"), JSON.stringify(out));
  assert.deepEqual(
    {
      lastOk: out.lastOk,
      settled: out.settled,
      tasks_live: out.tasks_live,
      free_in_use: out.free_in_use,
      bad_handles: out.bad_handles,
    },
    { lastOk: true, settled: true, tasks_live: 0, free_in_use: 0, bad_handles: 0 },
    JSON.stringify(out),
  );
});
