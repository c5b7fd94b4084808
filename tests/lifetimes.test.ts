/**
 * The view lifetime rule (docs/lifetimes.md): every TypedArray or Tensor edgerun hands out is
 * backed by live memory or is empty, on every path that frees. Each case here was a crash, a
 * hang or a wrong result before the rule was enforced; cases that could crash or hang run in a
 * child process, so a failure is a failed test, not a dead suite.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, open, Tensor } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel, identityModel, symbolicBatchModel, unknownRankModel } from "./fixtures/onnx_models.ts";
import { root, runChild, tempFile, values } from "./helpers.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";

const ORT_MODEL = tempFile("lifetimes_f32.onnx", dtypeModel("float32")); // y = x + x, [2,3]
const BATCH_MODEL = tempFile("lifetimes_batch.onnx", symbolicBatchModel()); // y = 2x, [batch,3]
const SIM_MODEL = simModelFile({
  name: "lifetimes",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3] }],
  outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: 3, b: 1 }],
}, "lifetimes");

const imports = `
  import { open, Pool } from ${JSON.stringify(join(root, "mod.ts"))};
  import { gc } from ${JSON.stringify(join(root, "tests/compat.ts"))};
  import { liveCounts } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
  import { useSim } from ${JSON.stringify(join(root, "tests/sim_helpers.ts"))};
  const sim = useSim();
  const tick = () => new Promise((r) => setTimeout(r, 1));
  // A collection from a timer callback, on a shallow stack: Bun scans the stack conservatively,
  // and a stale pointer in a deep frame would keep an object alive by chance.
  const scrub = (n) => (n === 0 ? 0 : scrub(n - 1) + 1); // overwrites old frames with fresh ones
  const collect = () => new Promise((r) => setTimeout(() => { scrub(2000); gc(); r(); }, 1));
`;

const child = (code: string) => runChild(imports + code);

test("lifetimes: views of an unclosed model stay valid after the model is garbage collected (ort, hbdnn)", () => {
  const result = child(`
    const before = { ...liveCounts(), mem: sim.counter("mem_live") };
    // A FinalizationRegistry, not WeakRefs: Deno keeps WeakRef targets alive.
    let gone = 0;
    const watch = new FinalizationRegistry(() => gone++);
    // Opened inside a function: only the returned views reach the models afterwards.
    function use(path, x) {
      const model = open(path);
      watch.register(model, 0);
      const input = model.inputs[0].data;
      const y = model.run(x)[0];
      return { y, data: model.run(x)[0].data, input };
    }
    // In a function of its own, so no frame of the async code below keeps the last one reachable.
    function churn() {
      open(${JSON.stringify(ORT_MODEL)}).run(new Float32Array(6).fill(-9));
    }
    const x = Float32Array.of(1, 2, 3, 4, 5, 6);
    const kept = [use(${JSON.stringify(ORT_MODEL)}, x), use(${JSON.stringify(SIM_MODEL)}, x)];
    // Collect, and churn native memory (models opened and dropped) so freed memory gets reused.
    for (let i = 0; i < 200 && gone < 2; i++) {
      await new Promise((r) => setTimeout(() => { churn(); r(); }, 1));
      await collect();
    }
    const collected = gone === 2;
    const read = kept.map(({ y, data, input }) => {
      input.fill(7); // a kept input view is still writable memory
      return { y: Array.from(y.data), data: Array.from(data), copy: Array.from(y.copy().data), input: input[0] };
    });
    // Once the views are dropped too, everything is freed.
    kept.length = 0;
    let after;
    for (let i = 0; i < 200; i++) {
      await collect();
      after = { ...liveCounts(), mem: sim.counter("mem_live") };
      if (after.models <= before.models && after.requests <= before.requests && after.mem <= before.mem) break;
    }
    console.log(JSON.stringify({ collected, read, before, after }));
  `);
  assert.equal(result.collected, true, "both models were garbage collected while their views lived");
  const [ort, hb] = result.read as { y: number[]; data: number[]; copy: number[]; input: number }[];
  assert.deepEqual(ort, { y: [2, 4, 6, 8, 10, 12], data: [2, 4, 6, 8, 10, 12], copy: [2, 4, 6, 8, 10, 12], input: 7 });
  assert.deepEqual(hb, { y: [4, 7, 10, 13, 16, 19], data: [4, 7, 10, 13, 16, 19], copy: [4, 7, 10, 13, 16, 19], input: 7 });
  const { before, after } = result as Record<string, Record<string, number>>;
  assert.deepEqual(
    [after.packs, after.models, after.requests, after.mem],
    [before.packs, before.models, before.requests, before.mem],
    "nothing leaks once the views are gone",
  );
});

test("lifetimes: a dynamic output's old view is emptied when a run gives it another shape, and on close", () => {
  const result = child(`
    const model = open(${JSON.stringify(BATCH_MODEL)});
    const big = model.run({ data: new Float32Array(600000).fill(1), shape: [200000, 3] })[0];
    const bigLength = big.data.length;
    const small = model.run({ data: Float32Array.of(1, 2, 3), shape: [1, 3] })[0];
    const afterSmall = { bigLength: big.data.length, small: Array.from(small.data) };
    let copyError;
    try { big.copy(); } catch (e) { copyError = e.code; }
    model.close();
    let closedCopy;
    try { small.copy(); } catch (e) { closedCopy = e.code; }
    console.log(JSON.stringify({ bigLength, afterSmall, copyError, smallAfterClose: small.data.length, closedCopy }));
  `);
  assert.deepEqual(result, {
    bigLength: 600000,
    afterSmall: { bigLength: 0, small: [2, 4, 6] },
    copyError: "STATE",
    smallAfterClose: 0,
    closedCopy: "CLOSED",
  });
});

test("lifetimes: close() empties every view it frees (outputs, kept inputs, both backends)", () => {
  useSim();
  for (const path of [ORT_MODEL, SIM_MODEL]) {
    const model = open(path);
    const input = model.inputs[0].data;
    const [y] = model.run(new Float32Array(6).fill(1));
    const alias = new Float32Array(y.data.buffer); // another view of the same memory
    model.close();
    assert.deepEqual([input.length, y.data.length, alias.length], [0, 0, 0], path);
    assert.throws(() => y.copy(), (e) => e instanceof EdgerunError && e.code === "CLOSED");
    assert.throws(() => model.inputs[0].data, (e) => e instanceof EdgerunError && e.code === "CLOSED");
  }
});

test("lifetimes: Pool.create then model.close() before the workers attach: the workers still run the model", () => {
  const worker = join(root, "tests/workers/double.ts");
  const result = child(`
    const before = liveCounts();
    const model = open(${JSON.stringify(ORT_MODEL)});
    const creating = Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 2 });
    model.close(); // before any worker attached
    const pool = await creating;
    const sums = await Promise.all([1, 2, 3, 4].map((v) => pool.run({ values: [v, v, v, v, v, v] })));
    await pool.close();
    let after;
    for (let i = 0; i < 100; i++) {
      after = liveCounts();
      if (after.models <= before.models) break;
      await tick();
    }
    console.log(JSON.stringify({ sums: sums.map((s) => s.sum), before: before.models, after: after.models }));
  `);
  assert.deepEqual(result, { sums: [12, 24, 36, 48], before: 0, after: 0 });
});

test("lifetimes: Pool.create with a worker that never calls serveModel() rejects after startTimeoutMs", () => {
  const worker = join(root, "tests/workers/silent.ts");
  const result = child(`
    const model = open(${JSON.stringify(ORT_MODEL)});
    let error;
    try {
      await Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 2, startTimeoutMs: 300 });
    } catch (e) {
      error = { name: e.name, code: e.code, names: /serveModel/.test(e.message) };
    }
    const stillRuns = Array.from(model.run(new Float32Array(6).fill(1))[0].data);
    model.close();
    console.log(JSON.stringify({ error, stillRuns, models: liveCounts().models }));
  `);
  // Both references the pool took are given back: none is left once the model is closed.
  assert.deepEqual(result, {
    error: { name: "EdgerunError", code: "TIMEOUT", names: true },
    stillRuns: [2, 2, 2, 2, 2, 2],
    models: 0,
  });
});

test("lifetimes: runAsync inside Pool workers settles every run (each realm gets its own completions)", () => {
  const worker = join(root, "tests/workers/async_double.ts");
  const result = child(`
    const model = open(${JSON.stringify(ORT_MODEL)});
    const pool = await Pool.create(model, new URL(${JSON.stringify("file://" + worker)}), { workers: 2 });
    // The main realm runs asynchronously at the same time, on the same native completion machinery.
    const main = Promise.all(Array.from({ length: 50 }, (_, i) =>
      model.runAsync(new Float32Array(6).fill(i)).then((out) => out[0].data[0])));
    const inWorkers = Promise.all(Array.from({ length: 100 }, (_, i) => pool.run({ values: [i, 0, 0, 0, 0, 1] })));
    const [m, w] = await Promise.all([main, inWorkers]);
    await pool.close();
    await model.closeAsync();
    console.log(JSON.stringify({ main: m, workers: w.map((r) => r.sum) }));
  `);
  assert.deepEqual(result.main, Array.from({ length: 50 }, (_, i) => 2 * i));
  assert.deepEqual(result.workers, Array.from({ length: 100 }, (_, i) => 2 * (i + 1)));
});

test("lifetimes: -0 options run, close and exit; inherited option properties are not options", () => {
  const result = child(`
    const model = open(${JSON.stringify(ORT_MODEL)});
    const x = new Float32Array(6).fill(1);
    const sync = Array.from(model.run(x, { priority: -0, customId: -0, timeoutMs: -0 })[0].data);
    const outs = await Promise.all([
      model.runAsync(x, { customId: -0 }),
      model.runAsync(x, { priority: -0 }),
      model.runAsync(x, { timeoutMs: -0 }),
      model.runAsync(x, { cores: [-0] }),
    ]);
    await model.closeAsync();
    let backend;
    try { open(${JSON.stringify(ORT_MODEL)}, { backend: "constructor" }).close(); } catch (e) { backend = e.name; }
    const inherited = open(${JSON.stringify(ORT_MODEL)}, Object.create({ backend: "hbdnn" }));
    const inheritedRun = Array.from(inherited.run(x, Object.create({ priority: 999 }))[0].data);
    inherited.close();
    console.log(JSON.stringify({ sync, async: outs.map((o) => o[0].data[0]), backend, inheritedRun }));
  `);
  assert.deepEqual(result, {
    sync: [2, 2, 2, 2, 2, 2],
    async: [2, 2, 2, 2],
    backend: "RangeError",
    inheritedRun: [2, 2, 2, 2, 2, 2],
  });
});

test("lifetimes: a feed's shape array changed after runAsync() does not change the queued run", async () => {
  await using model = open(BATCH_MODEL, { maxRequests: 1 });
  const first = model.runAsync({ data: Float32Array.of(1, 1, 1), shape: [1, 3] }); // takes the only request
  const shape = [2, 3];
  const queued = model.runAsync({ data: Float32Array.of(1, 2, 3, 4, 5, 6), shape });
  shape[0] = 4; // validated for 6 elements; the queued run must still see [2, 3]
  await first;
  const [y] = await queued;
  assert.deepEqual(y.shape, [2, 3]);
  assert.deepEqual(values(y.data), [2, 4, 6, 8, 10, 12]);
});

test("lifetimes: a path with a NUL is refused instead of opening the part before it", () => {
  assert.throws(() => open(ORT_MODEL + "\0.hbm"), (e) => e instanceof TypeError && /NUL/.test(e.message));
});

test("lifetimes: a free-standing Tensor whose strides reach past its data is refused", () => {
  const bad: [string, () => unknown][] = [
    ["row stride past the end", () => new Tensor({ dtype: "float32", shape: [2, 3], strides: [16, 4], data: new Float32Array(6) })],
    ["shape larger than data", () => new Tensor({ dtype: "float32", shape: [7], data: new Float32Array(6) })],
    ["negative stride", () => new Tensor({ dtype: "float32", shape: [2], strides: [-4], data: new Float32Array(2) })],
    ["misaligned stride", () => new Tensor({ dtype: "float32", shape: [2], strides: [2], data: new Float32Array(2) })],
    ["rank mismatch", () => new Tensor({ dtype: "float32", shape: [2, 1], strides: [4], data: new Float32Array(2) })],
    ["wrong array type", () => new Tensor({ dtype: "float32", shape: [2], data: new Int32Array(2) as never })],
  ];
  for (const [what, make] of bad) assert.throws(make, (e) => e instanceof RangeError || e instanceof TypeError, what);
  // The edges that are fine: an exact fit with padding, and an empty tensor.
  const t = new Tensor({ dtype: "float32", shape: [2, 3], strides: [16, 4], data: new Float32Array(7) });
  assert.deepEqual(values(t.dense()), [0, 0, 0, 0, 0, 0]);
  assert.equal(new Tensor({ dtype: "float32", shape: [0, 3], data: new Float32Array(0) }).size, 0);
});

test("lifetimes: two inputs whose names decode to the same text are refused by name, usable by position", () => {
  const bytes = identityModel("dup_names", [
    { name: "a\u0001", dtype: "float32", shape: [1] },
    { name: "a\u0002", dtype: "float32", shape: [1] },
  ]);
  // Make both names invalid UTF-8 (0xff, 0xfe): each decodes to "a\ufffd".
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0x61 && (bytes[i + 1] === 1 || bytes[i + 1] === 2)) bytes[i + 1] = bytes[i + 1] === 1 ? 0xff : 0xfe;
  }
  using model = open(tempFile("lifetimes_dup.onnx", bytes));
  assert.deepEqual(model.inputs.map((i) => i.name), ["a\ufffd", "a\ufffd"]);
  assert.throws(
    () => model.run({ "a\ufffd": Float32Array.of(1) }),
    (e) => e instanceof TypeError && /several inputs named/.test(e.message),
  );
  const out = model.run([Float32Array.of(1), Float32Array.of(2)]);
  assert.deepEqual(out.map((t) => values(t.data)), [[1], [2]]);
});

test("lifetimes: an ONNX input of unknown rank runs with the shape each feed gives", async () => {
  using model = open(tempFile("lifetimes_any_rank.onnx", unknownRankModel())); // y = x + x, no declared shapes
  const [x] = model.inputs;
  assert.deepEqual([x.unknownRank, x.dynamic, x.shape], [true, true, []]);
  assert.match(model.describe(), /any rank/);
  for (const shape of [[2, 3], [4], [1, 2, 1, 2]]) {
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i + 1);
    const [y] = model.run({ data, shape });
    assert.deepEqual([y.shape, values(y.data)], [shape, values(data, (v) => 2 * v)]);
    assert.equal(model.inputs[0].data.length, data.length, "the input view follows the shape");
    const [z] = await model.runAsync({ data, shape });
    assert.deepEqual([z.shape, values(z.data)], [shape, values(data, (v) => 2 * v)]);
  }
  assert.throws(() => model.run(Float32Array.of(1, 2)), (e) => e instanceof TypeError && /pass \{ data, shape \}/.test(e.message));
  assert.throws(() => model.run({ data: Float32Array.of(1), shape: [] }), RangeError);
  assert.throws(() => model.run({ data: Float32Array.of(1, 2), shape: [3] }), RangeError);
});

test("run options: an option the ort backend ignores is named once per process (console.warn)", () => {
  const result = child(`
    const warnings = [];
    console.warn = (...args) => warnings.push(args.join(" "));
    const model = open(${JSON.stringify(ORT_MODEL)});
    const x = new Float32Array(6);
    for (let i = 0; i < 3; i++) model.run(x, { cores: [1] });
    for (let i = 0; i < 3; i++) model.run(x, { priority: 7, customId: 3 });
    await model.runAsync(x, { priority: 200 }); // orders the async queue: not ignored
    await model.runAsync(x, { cores: 3 });
    model.run(x, { timeoutMs: 1000 });
    model.close();
    console.log(JSON.stringify(warnings));
  `);
  const warnings = Object.values(result) as string[];
  assert.equal(warnings.length, 2, JSON.stringify(warnings));
  assert.match(warnings[0], /ignores the cores run option/);
  assert.match(warnings[1], /ignores the priority run option/);
});
