/**
 * The subcommands of the command line: info, run, perf, compare. Each takes parsed arguments and
 * an output sink and returns the exit code.
 * @module
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { backends, loadLibrary } from "../../ffi/load.ts";
import type { Backend } from "../../ffi/backends.ts";
import { compare, formatComparison } from "../compare.ts";
import { type Model, open, openAll, type OpenOptions, type RunOptions } from "../model.ts";
import { toNpy } from "../npy.ts";
import type { Outputs } from "../outputs.ts";
import type { TimeSummary } from "../stats.ts";
import { Tensor } from "../tensor.ts";
import { intOption, numberOption, type Parsed, UsageError } from "./args.ts";
import {
  CliFailure,
  describeFsError,
  describeInput,
  feedFor,
  feedsOf,
  loadInputFiles,
  planInputs,
  type PlannedInput,
  readNpyFile,
  shapeOptions,
} from "./feeds.ts";

/**
 * Where a command writes: stdout lines, stderr text, and whether stderr is a terminal.
 *
 * @example
 * ```ts
 * import { type CliOutput, main } from "@edgerun/edgerun/cli";
 * const lines: string[] = [];
 * const io: CliOutput = { out: (line) => lines.push(line), err: () => {}, errIsTTY: false };
 * const code = await main(["--version"], io);
 * console.log(code, lines);
 * ```
 */
export interface CliOutput {
  /**
   * Writes one line of results to stdout.
   *
   * @example
   * ```ts
   * import type { CliOutput } from "@edgerun/edgerun/cli";
   * const out: CliOutput["out"] = (line) => console.log(line);
   * ```
   */
  out(line: string): void;
  /**
   * Writes text to stderr as it is (no newline added).
   *
   * @example
   * ```ts
   * import type { CliOutput } from "@edgerun/edgerun/cli";
   * let errors = "";
   * const err: CliOutput["err"] = (text) => (errors += text);
   * ```
   */
  err(text: string): void;
  /**
   * True when stderr is a terminal (live progress lines are drawn only then).
   *
   * @example
   * ```ts
   * import type { CliOutput } from "@edgerun/edgerun/cli";
   * const io: CliOutput = { out: console.log, err: (t) => console.error(t), errIsTTY: false };
   * ```
   */
  readonly errIsTTY: boolean;
}

function openOptions(args: Parsed): OpenOptions {
  const backend = args.values.get("backend") ?? "auto";
  // The loaded library's table is the list of backends (open() would load it next anyway).
  const names = ["auto", ...backends().map((b) => b.name)];
  if (!names.includes(backend)) throw new UsageError(`--backend must be one of ${names.join(", ")}, got '${backend}'`);
  const options: OpenOptions = { backend: backend as Backend };
  const model = args.values.get("model");
  if (model !== undefined) options.model = model;
  if (args.values.has("device")) options.device = intOption(args, "device", 0, 63, 0);
  return options;
}

function requireFile(path: string): void {
  if (!existsSync(path)) throw new CliFailure(`cannot open ${path}: no such file`);
}

function positionals(args: Parsed, count: number, what: string): string[] {
  if (args.positionals.length !== count) {
    throw new UsageError(`expected ${what}, got ${args.positionals.length ? args.positionals.join(" ") : "nothing"}`);
  }
  return args.positionals;
}

function runOptions(args: Parsed): RunOptions {
  const options: RunOptions = {};
  if (args.values.has("priority")) options.priority = intOption(args, "priority", 0, 255, 0);
  if (args.values.has("cores")) options.cores = intOption(args, "cores", 1, 15, 0);
  return options;
}

/** `edgerun info MODEL`: every model of the file (or --model), with its inputs, outputs and runtime facts. */
export function infoCommand(args: Parsed, io: CliOutput): number {
  const [path] = positionals(args, 1, "one model file");
  requireFile(path);
  const options = openOptions(args);
  const models = options.model === undefined
    ? openAll(path, { backend: options.backend, device: options.device })
    : new Map([[options.model, open(path, options)]]);
  try {
    const library = loadLibrary();
    io.out(`library: ${library.path}  (ABI ${library.abiVersion}, ${library.runtime})`);
    if (models.size > 1) io.out(`file: ${path}  (${models.size} models: ${[...models.keys()].join(", ")})`);
    for (const model of models.values()) {
      io.out("");
      io.out(model.describe());
    }
  } finally {
    for (const model of models.values()) model.close();
  }
  return 0;
}

/** A file name for an output: safe characters only, unique within the run. */
export function outputFileName(name: string, index: number, taken: Set<string>): string {
  let base = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 200);
  if (base === "") base = `output_${index}`;
  let file = `${base}.npy`;
  for (let n = 1; taken.has(file.toLowerCase()); n++) file = `${base}_${n}.npy`;
  taken.add(file.toLowerCase());
  return file;
}

/** The inputs of a run (files, --shape, random data from --seed), each announced on stderr. */
function plannedInputs(model: Model, args: Parsed, io: CliOutput): PlannedInput[] {
  const seed = intOption(args, "seed", 0, 0xffffffff, 1);
  const files = loadInputFiles(model, args.lists.get("input") ?? []);
  const plan = planInputs(model, files, shapeOptions(model, args.lists.get("shape") ?? []), seed);
  for (const p of plan) io.err(describeInput(p) + "\n");
  return plan;
}

/** `edgerun run MODEL --input NAME=FILE ...`: writes each output to DIR/<name>.npy. */
export async function runCommand(args: Parsed, io: CliOutput): Promise<number> {
  const [path] = positionals(args, 1, "one model file");
  requireFile(path);
  const dir = args.values.get("out") ?? "outputs";
  // Checked before the run (mkdir would say "EEXIST ... mkdir" after it).
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CliFailure(`--out ${dir} is a file, not a directory`);
  const options = runOptions(args);
  await using model = open(path, openOptions(args));
  const plan = plannedInputs(model, args, io);
  const outputs = await model.runAsync(feedsOf(plan), options);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CliFailure(`cannot create ${dir}: ${describeFsError(e)}`);
  }
  const taken = new Set<string>();
  outputs.forEach((tensor, i) => {
    const dequantize = args.flags.has("dequantize") && tensor.quantization !== null;
    const value = dequantize ? new Tensor({ dtype: "float32", shape: tensor.shape, data: tensor.toFloat32() }) : tensor;
    const file = join(dir, outputFileName(tensor.name, i, taken));
    writeWhole(file, toNpy(value));
    io.out(
      `wrote ${file}  (${tensor.name}: ${value.dtype} [${value.shape.join(",")}]${dequantize ? ", dequantized" : ""})`,
    );
  });
  return 0;
}

/**
 * Writes `bytes` to a temporary file next to `file` and renames it over `file`, so a full disk
 * leaves the previous file or none, never a truncated one.
 */
function writeWhole(file: string, bytes: Uint8Array): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, file);
  } catch (e) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Nothing more to do: the message below names the failure.
    }
    throw new CliFailure(`cannot write ${file}: ${describeFsError(e)}`);
  }
}

const fmt = (ms: number) => ms.toFixed(3);

/** `edgerun perf MODEL`: runs repeatedly (K in flight) and prints throughput and latency. */
export async function perfCommand(args: Parsed, io: CliOutput): Promise<number> {
  const [path] = positionals(args, 1, "one model file");
  if (args.values.has("iterations") && args.values.has("seconds")) {
    throw new UsageError("give --iterations or --seconds, not both");
  }
  const iterations = intOption(args, "iterations", 1, 1e9, 100);
  const seconds = numberOption(args, "seconds", 0.001, 86400);
  const inflight = intOption(args, "inflight", 1, 256, 1);
  const warmup = intOption(args, "warmup", 0, 1e6, 3);
  const options = runOptions(args);
  requireFile(path);
  await using model = open(path, { ...openOptions(args), ...(inflight > 1 ? { maxRequests: inflight } : {}) });
  const plan = plannedInputs(model, args, io);
  const feeds = feedsOf(plan);
  // Sync runs are the tight loop; models compiled for several cores only run asynchronously.
  const sync = inflight === 1 && !(Number(model.info.model_bpu_cores) > 1);
  let fed = false;
  const once = async (): Promise<void> => {
    if (!sync) {
      await model.runAsync(feeds, options);
    } else if (!fed) {
      model.run(feeds, options);
      fed = true;
    } else {
      model.run(undefined, options); // the inputs are already in the request's buffers
    }
  };
  for (let i = 0; i < warmup; i++) await once();
  model.resetStats();

  const progress = new Progress(io, seconds === undefined ? iterations : undefined);
  const started = performance.now();
  const deadline = seconds === undefined ? Infinity : started + seconds * 1000;
  let begun = 0;
  let finished = 0;
  const more = () => (seconds === undefined ? begun < iterations : performance.now() < deadline);
  const lane = async () => {
    while (more()) {
      begun++;
      await once();
      finished++;
      progress.update(finished, performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const wallMs = performance.now() - started;
  progress.done();

  const stats = model.stats();
  const fps = finished / (wallMs / 1000);
  if (args.flags.has("json")) {
    io.out(
      JSON.stringify({ model: model.name, backend: model.backend, runs: finished, inflight, wallMs, fps, ...stats }),
    );
    return 0;
  }
  io.out(
    `model: ${model.name}  backend: ${model.backend}  mode: ${sync ? "sync run()" : `runAsync, ${inflight} in flight`}`,
  );
  io.out(`runs: ${finished}  warmup: ${warmup}  wall: ${(wallMs / 1000).toFixed(3)} s  FPS: ${fps.toFixed(2)}`);
  const row = (label: string, t: TimeSummary) =>
    `  ${label.padEnd(12)}${[t.mean, t.p50, t.p99, t.min, t.max].map((v) => fmt(v).padStart(10)).join("")}`;
  io.out(`  ${"latency ms".padEnd(12)}${["mean", "p50", "p99", "min", "max"].map((h) => h.padStart(10)).join("")}`);
  io.out(row("device", stats.device));
  io.out(row("end-to-end", stats.endToEnd));
  return 0;
}

/** The progress line: redrawn in place on a terminal, a line every 10 s otherwise. */
class Progress {
  #io: CliOutput;
  #total: number | undefined;
  #last = 0;
  #drawn = false;

  constructor(io: CliOutput, total: number | undefined) {
    this.#io = io;
    this.#total = total;
  }

  update(done: number, elapsedMs: number): void {
    const every = this.#io.errIsTTY ? 100 : 10_000;
    if (elapsedMs - this.#last < every) return;
    this.#last = elapsedMs;
    const text = `${done}${this.#total ? `/${this.#total}` : ""} runs, ${(done / (elapsedMs / 1000)).toFixed(1)} FPS`;
    if (this.#io.errIsTTY) {
      this.#io.err(`\r\x1b[K${text}`);
      this.#drawn = true;
    } else {
      this.#io.err(text + "\n");
    }
  }

  done(): void {
    if (this.#drawn) this.#io.err("\r\x1b[K");
  }
}

function minCosine(args: Parsed): number {
  return numberOption(args, "min-cosine", -1, 1) ?? DEFAULT_MIN_COSINE;
}

/** The cosine below which `compare` fails (exit code 1). */
export const DEFAULT_MIN_COSINE = 0.99;

/** Prints one comparison line; returns false when it is below the threshold. */
function report(io: CliOutput, label: string, a: Tensor, b: Tensor, threshold: number): boolean {
  let line: string;
  let ok: boolean;
  try {
    const c = compare(a, b);
    ok = c.cosine >= threshold; // NaN fails too
    line = formatComparison(c);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    ok = false;
    line = `cannot compare: ${a.size} elements vs ${b.size}`;
  }
  const shapes = a.shape.join(",") === b.shape.join(",") ? "" : `  (shapes [${a.shape}] vs [${b.shape}])`;
  io.out(`${label}: ${line}${shapes}`);
  if (!ok) io.err(`edgerun: ${label}: cosine below --min-cosine ${threshold}\n`);
  return ok;
}

/** `edgerun compare A B`: two .npy files, or two models fed the same inputs. */
export async function compareCommand(args: Parsed, io: CliOutput): Promise<number> {
  const [pathA, pathB] = positionals(args, 2, "two models or two .npy files");
  const threshold = minCosine(args);
  const npy = [pathA, pathB].map((p) => p.toLowerCase().endsWith(".npy"));
  if (npy[0] !== npy[1]) throw new UsageError("compare takes two .npy files or two models, not one of each");
  if (npy[0]) {
    const a = readNpyFile(pathA);
    const b = readNpyFile(pathB);
    return report(io, `${pathA} vs ${pathB}`, a, b, threshold) ? 0 : 1;
  }
  requireFile(pathA);
  requireFile(pathB);
  const { backend, device } = openOptions(args);
  await using a = open(pathA, { backend, device });
  await using b = open(pathB, { backend, device });
  const plan = plannedInputs(a, args, io);
  if (b.inputs.length !== a.inputs.length) {
    throw new CliFailure(`${pathA} has ${a.inputs.length} inputs, ${pathB} has ${b.inputs.length}`);
  }
  // B's inputs by A's names when it has them all, else in order.
  const byName = a.inputs.every((i) => b.inputs.some((j) => j.name === i.name));
  const feedsB = Object.fromEntries(plan.map((p, i) => {
    const target = byName ? b.inputs.find((j) => j.name === p.info.name)! : b.inputs[i];
    return [target.name, feedFor(target, p.tensor, `${pathB}`)];
  }));
  const [outA, outB] = await Promise.all([a.runAsync(feedsOf(plan)), b.runAsync(feedsB)]);
  const pairs = matchOutputs(outA, outB, pathA, pathB);
  let ok = true;
  for (const [x, y] of pairs) {
    ok = report(io, x.name === y.name ? x.name : `${x.name} vs ${y.name}`, x, y, threshold) && ok;
  }
  return ok ? 0 : 1;
}

function matchOutputs(a: Outputs, b: Outputs, pathA: string, pathB: string): [Tensor, Tensor][] {
  const namesB = new Set(b.map((t) => t.name));
  if (a.every((t) => namesB.has(t.name))) return a.map((t) => [t, b.get(t.name)!]);
  if (a.length !== b.length) {
    throw new CliFailure(`${pathA} has ${a.length} outputs, ${pathB} has ${b.length}, and their names differ`);
  }
  return a.map((t, i) => [t, b[i]]);
}
