#!/usr/bin/env node
/**
 * Reference runner: executes an ONNX model with onnxruntime-node (CPU EP) and
 * writes the outputs as raw little-endian binaries.
 *
 *   node tests/ref/ort_reference.mjs <model.onnx> <request.json>
 *
 * request.json:
 *   {
 *     "inputs": [ { "name": "x", "dtype": "float32", "shape": [2, 3], "file": "x.bin" }, ... ],
 *     "outputDir": "out",                      // created if missing
 *     "outputs": ["y"],                        // optional: subset/order of outputs (default: all, model order)
 *     "graphOptimizationLevel": "all"          // optional: disabled|basic|extended|layout|all (default "all")
 *   }
 * Relative "file" / "outputDir" paths are resolved against the directory of request.json.
 * dtypes: float32 float64 float16 int8 uint8 int16 uint16 int32 uint32 int64 uint64 bool
 * (bool = 1 byte per element, 0/1; float16 = raw IEEE binary16 bits).
 *
 * Session: 1 intra-op thread, 1 inter-op thread, sequential execution, CPU EP.
 *
 * stdout (on success, exit 0): { "outputs": [ { "name", "dtype", "shape", "file" } ] }
 * with absolute output file paths (<outputDir>/<index>_<sanitized name>.bin).
 * On error: message on stderr, nothing on stdout, exit 1 (2 for usage errors).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { endianness } from "node:os";
import { dirname, join, resolve } from "node:path";
import ort from "onnxruntime-node";

const ELEM = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};
const OPT_LEVELS = ["disabled", "basic", "extended", "layout", "all"];

class UsageError extends Error {}

function fail(msg) {
  throw new Error(msg);
}

function checkShape(shape, what) {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    fail(`${what}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape.reduce((a, b) => a * b, 1);
}

function readInput(spec, baseDir, index) {
  const what = `input #${index}${spec && spec.name ? ` "${spec.name}"` : ""}`;
  if (!spec || typeof spec !== "object") fail(`${what}: must be an object {name, dtype, shape, file}`);
  if (typeof spec.name !== "string" || !spec.name) fail(`${what}: missing "name"`);
  const Ctor = ELEM[spec.dtype];
  if (!Ctor) fail(`${what}: unsupported dtype ${JSON.stringify(spec.dtype)} (supported: ${Object.keys(ELEM).join(", ")})`);
  const count = checkShape(spec.shape, what);
  if (typeof spec.file !== "string" || !spec.file) fail(`${what}: missing "file"`);
  const path = resolve(baseDir, spec.file);
  let buf;
  try {
    buf = readFileSync(path);
  } catch (e) {
    fail(`${what}: cannot read ${path}: ${e.message}`);
  }
  const expected = count * Ctor.BYTES_PER_ELEMENT;
  if (buf.length !== expected) {
    fail(`${what}: ${path} has ${buf.length} bytes, expected ${expected} (${spec.dtype} x [${spec.shape.join(",")}])`);
  }
  // Copy into a fresh, aligned ArrayBuffer (Buffer may be a pooled, unaligned slice).
  const bytes = new Uint8Array(expected);
  bytes.set(buf);
  const data = new Ctor(bytes.buffer, 0, count);
  return new ort.Tensor(spec.dtype, data, spec.shape);
}

function sanitize(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}

async function main(argv) {
  if (argv.length !== 2) throw new UsageError("usage: node tests/ref/ort_reference.mjs <model.onnx> <request.json>");
  if (endianness() !== "LE") fail("this reference runner assumes a little-endian host");
  const [modelPath, requestPath] = argv.map((p) => resolve(p));

  let request;
  try {
    request = JSON.parse(readFileSync(requestPath, "utf8"));
  } catch (e) {
    fail(`cannot read request ${requestPath}: ${e.message}`);
  }
  const baseDir = dirname(requestPath);
  if (!request || !Array.isArray(request.inputs)) fail(`request ${requestPath}: "inputs" must be an array`);
  if (typeof request.outputDir !== "string" || !request.outputDir) fail(`request ${requestPath}: missing "outputDir"`);
  const level = request.graphOptimizationLevel ?? "all";
  if (!OPT_LEVELS.includes(level)) fail(`graphOptimizationLevel must be one of ${OPT_LEVELS.join("|")}, got ${JSON.stringify(level)}`);

  let modelBytes;
  try {
    modelBytes = readFileSync(modelPath);
  } catch (e) {
    fail(`cannot read model ${modelPath}: ${e.message}`);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(new Uint8Array(modelBytes), {
      executionProviders: ["cpu"],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: level,
    });
  } catch (e) {
    fail(`cannot load model ${modelPath}: ${e.message}`);
  }

  const feeds = {};
  request.inputs.forEach((spec, i) => {
    const t = readInput(spec, baseDir, i);
    if (!session.inputNames.includes(spec.name)) {
      fail(`input "${spec.name}" is not a model input (model inputs: ${session.inputNames.join(", ")})`);
    }
    if (spec.name in feeds) fail(`input "${spec.name}" given twice`);
    const meta = (session.inputMetadata ?? []).find((m) => m.name === spec.name);
    if (meta && meta.isTensor && meta.type !== spec.dtype) {
      fail(`input "${spec.name}": dtype ${spec.dtype} given but the model expects ${meta.type}`);
    }
    feeds[spec.name] = t;
  });
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) fail(`missing inputs: ${missing.join(", ")} (model inputs: ${session.inputNames.join(", ")})`);

  const wanted = request.outputs ?? session.outputNames;
  if (!Array.isArray(wanted) || !wanted.every((n) => typeof n === "string")) fail(`"outputs" must be an array of names`);
  for (const n of wanted) {
    if (!session.outputNames.includes(n)) fail(`"${n}" is not a model output (model outputs: ${session.outputNames.join(", ")})`);
  }

  let results;
  try {
    results = await session.run(feeds, wanted);
  } catch (e) {
    fail(`inference failed: ${e.message}`);
  }

  const outDir = resolve(baseDir, request.outputDir);
  mkdirSync(outDir, { recursive: true });
  const outputs = wanted.map((name, i) => {
    const t = results[name];
    if (!t || typeof t.type !== "string" || !t.dims) fail(`output "${name}" is not a tensor`);
    if (!(t.type in ELEM)) fail(`output "${name}" has unsupported dtype ${t.type}`);
    const d = t.data;
    if (!ArrayBuffer.isView(d)) fail(`output "${name}" (${t.type}) has no typed-array data`);
    const file = join(outDir, `${i}_${sanitize(name)}.bin`);
    writeFileSync(file, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    return { name, dtype: t.type, shape: Array.from(t.dims, Number), file };
  });
  await session.release?.();
  return { outputs };
}

main(process.argv.slice(2)).then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + "\n");
  },
  (e) => {
    process.stderr.write(`ort_reference: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
