/**
 * The model-based lifetime test (run by tests/lifetime_model.test.ts in a child process, so the
 * collector can be forced and a crash is a failed test): a seeded, replayable random sequence of
 * open, run, runAsync, reshape through dynamic feeds, zero-copy writes, close, closeAsync,
 * dropping models and views, GC and Pool runs, on the ort backend and the hbdnn simulator. After
 * every step each view obtained so far is read and checked against a reference: the values of
 * its model's latest run (or latest input), or empty once that memory was freed or replaced.
 * Ends with the leak check: the shim's live counts and the simulator's live buffers at baseline.
 *
 *   deno run -A --v8-flags=--expose-gc tests/lifetime_model.ts SEED STEPS
 *   bun tests/lifetime_model.ts SEED STEPS
 */
import process from "node:process";
import { EdgerunError, type Model, open, Pool, type Tensor, type TypedArray } from "../mod.ts";
import { gc } from "./compat.ts";
import { uniform } from "./fixtures/inputs.ts";
import { dtypeModel, symbolicBatchModel } from "./fixtures/onnx_models.ts";
import { tempFile } from "./helpers.ts";
import { liveCounts } from "./live_counts.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";

interface Kind {
  name: string;
  path: string;
  /** Batch dimension known only at run time (ort: output reallocated by each run). */
  dynamic: boolean;
  f(x: number): number;
}

const sim = useSim();
const KINDS: Kind[] = [
  { name: "ort", path: tempFile("lm_f32.onnx", dtypeModel("float32")), dynamic: false, f: (x) => x + x },
  { name: "ort-dynamic", path: tempFile("lm_batch.onnx", symbolicBatchModel()), dynamic: true, f: (x) => 2 * x },
  {
    name: "hbdnn",
    path: simModelFile({
      name: "lm",
      inputs: [{ name: "x", dtype: "F32", shape: [2, 3] }],
      outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: 3, b: 1 }],
    }, "lifetime_model"),
    dynamic: false,
    f: (x) => 3 * x + 1,
  },
];
const WORKER = new URL("./workers/double.ts", import.meta.url);

/** What the test knows of one model; never references the Model once it is dropped. */
interface Entry {
  id: number;
  kind: Kind;
  model: Model | null;
  closed: boolean;
  /** Contents of the default request's input and output (undefined before the first write/run). */
  input?: number[];
  output?: number[];
}

interface ViewRecord {
  entry: Entry;
  role: "input" | "output";
  data: TypedArray;
  tensor?: Tensor;
}

interface PendingRun {
  entry: Entry;
  expected: number[];
  promise: Promise<unknown>;
}

const seed = Number(process.argv[2] ?? process.env.LIFETIME_SEED ?? Date.now() % 1e9);
const steps = Number(process.argv[3] ?? process.env.LIFETIME_STEPS ?? 300);
const random = uniform(seed);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
const int = (n: number) => Math.floor(random() * n);

const entries: Entry[] = [];
const views: ViewRecord[] = [];
const pending: PendingRun[] = [];
const log: string[] = [];
let checks = 0;
let nextId = 0;

function fail(message: string): never {
  throw new Error(`seed ${seed}: ${message}\nlast steps:\n  ${log.slice(-15).join("\n  ")}`);
}

function same(a: ArrayLike<number>, b: readonly number[] | undefined, what: string): void {
  checks++;
  if (!b || a.length !== b.length || Array.from(a).some((v, i) => v !== b[i])) {
    fail(`${what}: read [${Array.from(a).slice(0, 8)}] (${a.length}), expected [${b?.slice(0, 8)}] (${b?.length})`);
  }
}

/** Every view read against the reference: its model's current values, or empty. */
function checkViews(): void {
  for (const v of views) {
    const what = `model ${v.entry.id} (${v.entry.kind.name}) ${v.role} view`;
    if (v.entry.closed) {
      checks++;
      if (v.data.length !== 0) fail(`${what}: ${v.data.length} elements after close, expected an empty view`);
      continue;
    }
    // A dynamic tensor's memory is replaced when its shape changes (input) or by each run (ort output).
    if (v.data.length === 0 && v.entry.kind.dynamic) continue;
    same(v.data as Float32Array, v.role === "input" ? v.entry.input : v.entry.output, what);
  }
}

function values(n: number): number[] {
  return Array.from({ length: n }, () => int(19) - 9);
}

function openOne(): void {
  const kind = pick(KINDS);
  const entry: Entry = { id: nextId++, kind, model: open(kind.path), closed: false };
  // A new request's buffers start zeroed (ort) or as the backend left them: learn them once.
  entry.input = Array.from(entry.model!.inputs[0].data as Float32Array);
  entries.push(entry);
  log.push(`open ${entry.id} ${kind.name}`);
  if (random() < 0.5) views.push({ entry, role: "input", data: entry.model!.inputs[0].data });
}

const live = () => entries.filter((e) => e.model && !e.closed);

function syncRun(entry: Entry): void {
  const model = entry.model!;
  const rows = entry.kind.dynamic ? 1 + int(3) : 2;
  const zeroCopy = random() < 0.3 && entry.input !== undefined;
  let input: number[];
  if (zeroCopy) {
    // Write the default request's input in place, then run with no feeds.
    input = values(entry.input!.length);
    (model.inputs[0].data as Float32Array).set(input);
    log.push(`write+run ${entry.id}`);
  } else {
    input = values(rows * 3);
    const feed = entry.kind.dynamic ? { data: Float32Array.from(input), shape: [rows, 3] } : Float32Array.from(input);
    log.push(`run ${entry.id} rows=${input.length / 3}`);
    const [y] = model.run(feed);
    entry.input = input;
    entry.output = input.map(entry.kind.f);
    keepOutput(entry, y);
    return;
  }
  const [y] = model.run();
  entry.input = input;
  entry.output = input.map(entry.kind.f);
  keepOutput(entry, y);
}

function keepOutput(entry: Entry, y: Tensor): void {
  same(y.data as Float32Array, entry.output, `model ${entry.id} run output`);
  if (random() < 0.6) views.push({ entry, role: "output", data: y.data, tensor: y });
  if (random() < 0.3) views.push({ entry, role: "input", data: entry.model!.inputs[0].data });
}

function asyncRun(entry: Entry): void {
  const model = entry.model!;
  const noFeeds = random() < 0.25 && entry.input !== undefined;
  const input = noFeeds ? entry.input! : values(entry.kind.dynamic ? 3 * (1 + int(3)) : 6);
  const feed = noFeeds
    ? undefined
    : entry.kind.dynamic
    ? { data: Float32Array.from(input), shape: [input.length / 3, 3] }
    : Float32Array.from(input);
  log.push(`runAsync ${entry.id}${noFeeds ? " (no feeds)" : ""}`);
  const promise = model.runAsync(feed);
  promise.catch(() => {}); // judged in settleAll; a rejection before then is not unhandled
  pending.push({ entry, expected: input.map(entry.kind.f), promise });
}

/** Settles every pending run: its expected values, or CLOSED when its model closed first. */
async function settleAll(): Promise<void> {
  const runs = pending.splice(0);
  for (const run of runs) {
    try {
      const [y] = (await run.promise) as Tensor[];
      same(y.data as Float32Array, run.expected, `model ${run.entry.id} runAsync result`);
    } catch (e) {
      checks++;
      if (!(e instanceof EdgerunError && e.code === "CLOSED" && run.entry.closed)) {
        fail(`model ${run.entry.id} runAsync failed: ${e}`);
      }
    }
  }
}

async function closeOne(entry: Entry): Promise<void> {
  const model = entry.model!;
  entry.closed = true;
  if (random() < 0.5) {
    log.push(`close ${entry.id}`);
    model.close();
  } else {
    log.push(`closeAsync ${entry.id}`);
    await model.closeAsync(); // runs on the device finish first; queued ones are rejected
  }
}

async function collect(): Promise<void> {
  log.push("gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function poolRound(entry: Entry): Promise<void> {
  log.push(`pool on ${entry.id}`);
  const pool = await Pool.create(entry.model!, WORKER, { workers: 1 });
  const sums = await Promise.all([1, 2, 3].map((v) => pool.run<{ sum: number }>({ values: [v, v, v, v, v, v] })));
  await pool.close();
  same(sums.map((s) => s.sum), [12, 24, 36], `pool on model ${entry.id}`);
}

const baseline = { ...liveCounts(), mem: sim.counter("mem_live") };

/** The random sequence; a function of its own, so no frame of the leak check below holds its locals. */
async function sequence(): Promise<void> {
  for (let step = 0; step < steps; step++) {
    const r = random();
    const open_ = live();
    if (open_.length === 0 || r < 0.08) openOne();
    else if (r < 0.4) syncRun(pick(open_));
    else if (r < 0.6) {
      const entry = pick(open_);
      for (let i = 1 + int(4); i > 0; i--) asyncRun(entry);
    } else if (r < 0.7) await settleAll();
    else if (r < 0.76) await closeOne(pick(open_));
    else if (r < 0.82) {
      // Drop a model unclosed: only the views recorded of it keep its memory, if any.
      const entry = pick(open_);
      log.push(`drop ${entry.id}`);
      entry.model = null;
    } else if (r < 0.88) {
      const n = int(views.length + 1);
      log.push(`forget ${n} views`);
      for (let i = 0; i < n; i++) views.splice(int(views.length), 1);
    } else if (r < 0.96) await collect();
    else if (r < 0.98) {
      const ort = open_.filter((e) => e.kind.name === "ort");
      if (ort.length) await poolRound(pick(ort));
    } else {
      // Write through a kept input view (the model may be dropped: the memory is still live).
      const v = views.filter((v) => v.role === "input" && !v.entry.closed && v.data.length > 0);
      if (v.length) {
        const view = pick(v);
        const input = values(view.data.length);
        log.push(`write view of ${view.entry.id}`);
        (view.data as Float32Array).set(input);
        view.entry.input = input;
      }
    }
    checkViews();
  }

  await settleAll();
  checkViews();
  for (const entry of live()) entry.model!.close();
  entries.length = 0;
  views.length = 0;
}

await sequence();
let after = { ...liveCounts(), mem: sim.counter("mem_live") };
for (let i = 0; i < 300; i++) {
  if (after.models <= baseline.models && after.requests <= baseline.requests && after.mem <= baseline.mem) break;
  gc();
  await new Promise((r) => setTimeout(r, 2));
  after = { ...liveCounts(), mem: sim.counter("mem_live") };
}
if (after.packs > baseline.packs || after.models > baseline.models || after.requests > baseline.requests) {
  fail(`leak: live counts ${JSON.stringify(after)} after, ${JSON.stringify(baseline)} before`);
}
if (after.mem > baseline.mem) fail(`leak: ${after.mem - baseline.mem} simulator buffers still live`);
console.log(JSON.stringify({ seed, steps, checks, models: nextId }));
