/**
 * Property tests: random simulator models (every dtype, random shapes, padded strides, quantized
 * or not) and random ONNX dtype models, fed random feeds (dense, subarray views at offsets,
 * float values to quantize, wrong sizes and types). Each case must give exactly the reference
 * output (simExpected; x + x for the ONNX models) or a typed error; nothing else.
 *
 * Replay a failure with EDGERUN_PROPERTY_SEED=<seed printed in the failure> (and
 * EDGERUN_PROPERTY_CASES=<n> to change how many cases run).
 */
import assert from "node:assert/strict";
import process from "node:process";
import { type DType, EdgerunError, type Model, open, type TypedArray } from "../mod.ts";
import { arrayConstructor } from "../src/dtype.ts";
import { test } from "./compat.ts";
import { mulberry32 } from "./fixtures/inputs.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { tempFile } from "./helpers.ts";
import { liveCounts, settledTo } from "./live_counts.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import {
  simCount,
  simDenseStrides,
  simElemSize,
  simExpected,
  simF16Bits,
  simF16Value,
  type SimModelSpec,
  type SimOutputSpec,
  simRoundHalfEven,
  type SimTensorSpec,
} from "./sim/simfile.ts";

const sim = useSim();

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  return v ? Number(v) : undefined;
}
const SEED = envNumber("EDGERUN_PROPERTY_SEED") ?? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
const CASES = envNumber("EDGERUN_PROPERTY_CASES") ?? 600;

/** A small seeded generator. */
class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.#next() % (hi - lo + 1));
  }
  /** true with probability p. */
  chance(p: number): boolean {
    return this.#next() / 2 ** 32 < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)];
  }
  /** A float32 in [-range, range]. */
  float(range: number): number {
    return Math.fround((this.#next() / 2 ** 32 * 2 - 1) * range);
  }
}

const SIM_TYPE: Record<DType, SimTensorSpec["dtype"]> = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  int8: "S8",
  uint8: "U8",
  int16: "S16",
  uint16: "U16",
  int32: "S32",
  uint32: "U32",
  int64: "S64",
  uint64: "U64",
  bool: "BOOL8",
};
const DTYPES = Object.keys(SIM_TYPE) as DType[];
/** Integer types the shim can quantize float32 values into. */
const QUANTIZABLE: DType[] = ["int8", "uint8", "int16", "uint16", "int32"];
const RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  int64: [-1000, 1000],
  uint64: [0, 1000],
  bool: [0, 1],
};
/** The array a caller fills: the dtype's own, except float16, which is always fed as bits. */
const arrayFor = (dtype: DType) => (dtype === "float16" ? Uint16Array : arrayConstructor(dtype)) as new (n: number) => TypedArray;

/** Random logical values of a dtype (numbers; float16 as values, written as bits later). */
function randomValues(rng: Rng, dtype: DType, n: number): number[] {
  const range = RANGE[dtype];
  return Array.from({ length: n }, () => {
    if (range) return rng.int(0, range[1] - range[0]) + range[0];
    return dtype === "float16" ? simF16Value(simF16Bits(rng.float(100))) : rng.float(1000);
  });
}

/** The TypedArray a caller passes for these values. */
function toArray(dtype: DType, vals: readonly number[]): TypedArray {
  const out = new (arrayFor(dtype))(vals.length);
  vals.forEach((v, i) => {
    if (dtype === "int64" || dtype === "uint64") (out as BigInt64Array)[i] = BigInt(v);
    else if (dtype === "float16") (out as Uint16Array)[i] = simF16Bits(v);
    else (out as Float32Array)[i] = v;
  });
  return out;
}

/** A random layout: dense, or padded between rows and/or elements. */
function randomStride(rng: Rng, shape: number[], dtype: DType): number[] | undefined {
  if (rng.chance(0.4)) return undefined;
  const elem = simElemSize(SIM_TYPE[dtype]);
  const stride = new Array<number>(shape.length);
  let next = elem * rng.pick([1, 1, 1, 2, 3]);
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = next;
    next = next * shape[d] + elem * rng.pick([0, 0, 1, 5, 16]);
  }
  return stride;
}

function randomShape(rng: Rng): number[] {
  return Array.from({ length: rng.int(1, 4) }, () => rng.int(1, 5));
}

function randomQuant(rng: Rng, dtype: DType) {
  if (!QUANTIZABLE.includes(dtype) || rng.chance(0.5)) return undefined;
  const scales = [rng.pick([0.5, 0.25, 0.1, 2, 0.0078125])];
  return rng.chance(0.5) ? { scales, zeroPoints: [rng.int(-3, 3) + (dtype.startsWith("u") ? 3 : 0)] } : { scales };
}

interface SimCase {
  spec: SimModelSpec;
  feeds: unknown[];
  /** Raw stored values per input (what simExpected reads), or undefined when the feeds are bad. */
  raw?: number[][];
  kind: string;
}

/** Stores a float32 value the way the shim quantizes it (round half to even, clamp). */
function quantizeLike(dtype: DType, q: { scales: number[]; zeroPoints?: number[] } | undefined, v: number): number {
  if (dtype === "float16") return simF16Value(simF16Bits(v));
  if (dtype === "float32" || dtype === "float64") return v;
  const x = simRoundHalfEven(v / Math.fround(q!.scales[0]) + (q!.zeroPoints?.[0] ?? 0));
  const [lo, hi] = RANGE[dtype]!;
  return Math.min(Math.max(x, lo), hi);
}

function simCase(rng: Rng, index: number): SimCase {
  const inputs: (SimTensorSpec & { edtype: DType; actual: number[] })[] = Array.from({ length: rng.int(1, 2) }, (_, k) => {
    const edtype = rng.pick(DTYPES);
    const actual = randomShape(rng);
    const base = { name: `in${k}`, edtype, actual, dtype: SIM_TYPE[edtype], quant: randomQuant(rng, edtype) };
    if (!rng.chance(0.2)) return { ...base, shape: actual, stride: randomStride(rng, actual, edtype) };
    // Dynamic dimensions (-1): the feed gives the shape; strides over a dynamic dimension are
    // left to the runtime (-1), the others stay fixed.
    const shape = actual.map((d) => (rng.chance(0.5) ? -1 : d));
    if (!shape.includes(-1)) shape[0] = -1;
    const dense = simDenseStrides(actual, SIM_TYPE[edtype]);
    return { ...base, shape, stride: shape.map((_, i) => (shape.slice(i + 1).includes(-1) ? -1 : dense[i])) };
  });
  const outputs: SimOutputSpec[] = Array.from({ length: rng.int(1, 2) }, (_, k) => {
    const edtype = rng.pick(DTYPES);
    const shape = randomShape(rng);
    return {
      name: `out${k}`,
      dtype: SIM_TYPE[edtype],
      shape,
      stride: randomStride(rng, shape, edtype),
      quant: randomQuant(rng, edtype),
      source: rng.int(0, inputs.length - 1),
      a: rng.pick([1, 2, -1, 0.5]),
      b: rng.pick([0, 1, -3]),
    };
  });
  const spec: SimModelSpec = { name: `p${index}`, inputs: inputs.map(({ edtype: _, actual: __, ...t }) => t), outputs };
  const kind = rng.pick(["dense", "dense", "offset", "offset", "quantize", "wrong-size", "wrong-type", "wrong-shape", "record"]);
  const raw: number[][] = [];
  const feeds = inputs.map((t) => withShape(t, feedFor(t)));
  const bad = kind.startsWith("wrong");
  return { spec, feeds, raw: bad ? undefined : raw, kind };

  /** Dynamic inputs get { data, shape } (wrong-shape: every input gets a shape one off). */
  function withShape(t: (typeof inputs)[number], feed: unknown): unknown {
    const dynamic = t.shape.includes(-1);
    if (!dynamic && kind !== "wrong-shape") return feed;
    const shape = t.actual.slice();
    if (kind === "wrong-shape") shape[rng.int(0, shape.length - 1)] += 1;
    return ArrayBuffer.isView(feed) ? { data: feed, shape } : { ...(feed as object), shape };
  }

  function feedFor(t: (typeof inputs)[number]): unknown {
    const n = simCount(t.actual);
    const canQuantize = t.quant !== undefined || ["float16", "float32", "float64"].includes(t.edtype);
    if (kind === "quantize" && canQuantize) {
      // Some values land exactly halfway between two steps: rounding must be half to even.
      const step = t.quant?.scales[0] ?? 1;
      const f = Float32Array.from({ length: n }, () => rng.chance(0.3) ? (rng.int(-300, 300) + 0.5) * step : rng.float(60));
      raw.push(Array.from(f, (v) => quantizeLike(t.edtype, t.quant, v)));
      return { data: f, quantize: true };
    }
    const vals = randomValues(rng, t.edtype, n);
    raw.push(vals);
    const dense = toArray(t.edtype, vals);
    if (kind === "offset") {
      const before = rng.int(1, 7);
      const big = new (arrayFor(t.edtype))(before + n + rng.int(0, 3));
      (big as Uint8Array).set(dense as Uint8Array, before);
      return (big as Uint8Array).subarray(before, before + n);
    }
    if (kind === "wrong-size") return new (arrayFor(t.edtype))(n + rng.pick([-1, 1, 3]));
    if (kind === "wrong-type") return new (t.edtype === "float64" ? Float32Array : Float64Array)(n);
    return dense;
  }
}

function readValues(t: { dense(): TypedArray; dtype: DType }): number[] {
  const d = t.dense();
  if (t.dtype === "float16" && d instanceof Uint16Array) return Array.from(d, simF16Value);
  return Array.from(d as ArrayLike<number | bigint>, Number);
}

function same(actual: number[], expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(actual[i] === 0 && expected[i] === 0)) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

function isTyped(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof EdgerunError;
}

/** Outcomes seen, so the run shows it checked outputs and not only errors. */
const tally = { outputs: 0, errors: 0, padded: 0, quantized: 0, dynamic: 0 };

async function runSim(rng: Rng, c: SimCase, useAsync: boolean): Promise<void> {
  using model = open(simModelFile(c.spec, "prop"));
  const feeds = c.kind === "record"
    ? Object.fromEntries(c.spec.inputs.map((t, k) => [t.name, c.feeds[k]]))
    : c.feeds.length === 1 && rng.chance(0.5) ? c.feeds[0] : c.feeds;
  let outputs;
  try {
    outputs = useAsync ? await model.runAsync(feeds as never) : model.run(feeds as never);
  } catch (e) {
    if (!c.raw && isTyped(e)) return void tally.errors++;
    throw e;
  }
  assert.ok(c.raw, `a ${c.kind} feed was accepted`);
  const expected = simExpected(c.spec, c.raw);
  outputs.forEach((t, k) => same(readValues(t), expected[k], `${t.name} (${t.dtype})`));
  tally.outputs++;
  if (model.inputs.some((t) => t.padded) || model.outputs.some((t) => t.padded)) tally.padded++;
  if (model.inputs.some((t) => t.quantization) || model.outputs.some((t) => t.quantization)) tally.quantized++;
  if (model.inputs.some((t) => t.dynamic)) tally.dynamic++;
}

const onnxModels = new Map<DType, Model>();
function onnxModel(dtype: DType): Model {
  let m = onnxModels.get(dtype);
  if (!m) onnxModels.set(dtype, m = open(tempFile(`prop_${dtype}.onnx`, dtypeModel(dtype))));
  return m;
}

/** x + x (wrapping for integers) or Not(x) for bool, computed in JS. */
function onnxExpected(dtype: DType, vals: number[]): number[] {
  if (dtype === "bool") return vals.map((v) => (v ? 0 : 1));
  const out = toArray(dtype, vals.map((v) => 2 * v));
  if (dtype === "float16") return Array.from(out as Uint16Array, simF16Value);
  return Array.from(out as ArrayLike<number | bigint>, Number);
}

async function runOnnx(rng: Rng, useAsync: boolean): Promise<void> {
  const dtype = rng.pick(DTYPES);
  const model = onnxModel(dtype);
  const vals = randomValues(rng, dtype, 6);
  const kind = rng.pick(["dense", "offset", "wrong-size", "wrong-type"]);
  let feed: TypedArray = toArray(dtype, vals);
  if (kind === "offset") {
    const big = new (arrayFor(dtype))(12);
    (big as Uint8Array).set(feed as Uint8Array, 3);
    feed = (big as Uint8Array).subarray(3, 9);
  } else if (kind === "wrong-size") feed = new (arrayFor(dtype))(rng.pick([0, 5, 7]));
  else if (kind === "wrong-type") feed = new (dtype === "float64" ? Float32Array : Float64Array)(6);
  let out;
  try {
    out = useAsync ? await model.runAsync(feed) : model.run(feed);
  } catch (e) {
    if (kind.startsWith("wrong") && isTyped(e)) return void tally.errors++;
    throw e;
  }
  assert.ok(!kind.startsWith("wrong"), `a ${kind} feed was accepted`);
  same(readValues(out[0]), onnxExpected(dtype, vals), `${dtype} y`);
  tally.outputs++;
}

test(`property: ${CASES} random models and feeds give the reference output or a typed error (seed ${SEED})`, async () => {
  const baseline = liveCounts();
  const started = Date.now();
  for (let i = 0; i < CASES; i++) {
    // Each case has its own generator, so one seed replays the whole run or any single case.
    const caseSeed = (SEED + Math.imul(i, 0x9e3779b1)) >>> 0;
    const rng = new Rng(caseSeed);
    const useAsync = rng.chance(0.3);
    let description = "";
    try {
      if (rng.chance(0.25)) {
        description = "onnx";
        await runOnnx(rng, useAsync);
      } else {
        const c = simCase(rng, i);
        description = `${c.kind} ${JSON.stringify(c.spec)}`;
        await runSim(rng, c, useAsync);
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(
        `property case ${i} failed (replay: EDGERUN_PROPERTY_SEED=${SEED}; ${useAsync ? "runAsync" : "run"} ${description}): ${msg}`,
        { cause: e },
      );
    }
  }
  for (const m of onnxModels.values()) m.close();
  onnxModels.clear();
  assert.ok(await settledTo(baseline), "every model and request of the cases was freed");
  assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0), "simulator tasks left");
  console.log(`property: ${CASES} cases in ${Date.now() - started} ms (seed ${SEED}): ${JSON.stringify(tally)}`);
  assert.ok(tally.outputs >= CASES / 2 && tally.errors >= CASES / 10, `too few checked outputs or errors: ${JSON.stringify(tally)}`);
  assert.ok(tally.padded >= CASES / 10 && tally.quantized >= CASES / 10, `too few padded or quantized models: ${JSON.stringify(tally)}`);
});
