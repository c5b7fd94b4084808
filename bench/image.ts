/**
 * Camera-frame conversion: the shim (writeNv12 / writeNormalized, straight into input memory)
 * against a straightforward JavaScript loop writing the same memory, on a 640x640 RGB frame.
 * Both write the inputs of a simulator model's request (padded NV12 rows, float32 NCHW), so the
 * destination is identical; nothing runs. Each iteration times one shim call and one JS call
 * back to back (performance.now() around each), so machine noise hits both alike; warm-up
 * iterations first. The JS results are checked equal to the shim's before timing.
 *
 * Preprocessing (shim/preprocess.c): camera frames resized/letterboxed/cropped/rotated into float32
 * inputs, against a separable JavaScript loop with the same integer arithmetic (checked equal first)
 * and, on Bun, against sharp (npm; libvips) resizing the RGB frame, followed by the same JS
 * normalization (sharp cannot read NV12 or YUYV, and its results differ slightly: a different
 * filter, so they are not compared). Last, PaddleOCR det, cls and rec run in turn on ort, each
 * session on its own thread pools and then all on the shared pools (open option sharedThreads).
 *   deno run -A bench/image.ts   |   bun run bench/image.ts     (ITERATIONS=n, PRE_ITERATIONS=n to change)
 */
import process from "node:process";
import { join } from "node:path";
import { type Model, type NormalizeOptions, open, runtime, writeNormalized, writeNv12 } from "../mod.ts";
import { simModelFile, useSim } from "../tests/sim_helpers.ts";
import { ocrModels } from "../tests/helpers.ts";
import { letterboxRect, makeFrame, type RefFrame, type RefRect, sourcePixel, taps } from "../tests/preprocess_ref.ts";
import { printTable } from "./table.ts";

const W = 640, H = 640;
const ITERATIONS = Number(process.env.ITERATIONS ?? 200);
const WARMUP = 20;
const MEAN = [123.675, 116.28, 103.53];
const STD = [58.395, 57.12, 57.375];

/** RGB -> NV12, BT.601 full range, the same 14-bit fixed point as the shim, padded rows. */
function jsNv12(rgb: Uint8Array, y: Uint8Array, yStride: number, uv: Uint8Array, uvStride: number): void {
  for (let r = 0; r < H; r++) {
    for (let x = 0; x < W; x++) {
      const o = (r * W + x) * 3;
      const v = (4899 * rgb[o] + 9617 * rgb[o + 1] + 1868 * rgb[o + 2] + 8192) >> 14;
      y[r * yStride + x] = v > 255 ? 255 : v;
    }
  }
  for (let r = 0; r < H / 2; r++) {
    for (let x = 0; x < W / 2; x++) {
      const a = (2 * r * W + 2 * x) * 3, b = a + W * 3;
      const R = rgb[a] + rgb[a + 3] + rgb[b] + rgb[b + 3];
      const G = rgb[a + 1] + rgb[a + 4] + rgb[b + 1] + rgb[b + 4];
      const B = rgb[a + 2] + rgb[a + 5] + rgb[b + 2] + rgb[b + 5];
      const u = (-2765 * R - 5427 * G + 8192 * B + 8421376) >> 16;
      const v = (8192 * R - 6860 * G - 1332 * B + 8421376) >> 16;
      uv[r * uvStride + 2 * x] = u < 0 ? 0 : u > 255 ? 255 : u;
      uv[r * uvStride + 2 * x + 1] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/** (x - mean) / std into float32 NCHW, the shim's float32 operation order. */
function jsNormalize(rgb: Uint8Array, out: Float32Array): void {
  const plane = W * H;
  for (let c = 0; c < 3; c++) {
    const mul = Math.fround(1 / Math.fround(STD[c]));
    const add = Math.fround(-Math.fround(MEAN[c]) * mul);
    for (let i = 0; i < plane; i++) out[c * plane + i] = Math.fround(rgb[i * 3 + c] * mul) + add;
  }
}

function stats(ms: number[]): { mean: number; p50: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { mean: ms.reduce((a, b) => a + b, 0) / ms.length, p50: sorted[sorted.length >> 1] };
}

function equal(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`${what}: JS and shim differ at ${i}: ${a[i]} vs ${b[i]}`);
}

/** Times shim() and js() in alternation; returns [shim ms, js ms] per iteration. */
function race(shim: () => void, js: () => void): [number[], number[]] {
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const t0 = performance.now();
    shim();
    const t1 = performance.now();
    js();
    const t2 = performance.now();
    if (i >= WARMUP) a.push(t1 - t0), b.push(t2 - t1);
  }
  return [a, b];
}

useSim();
const frame = new Uint8Array(W * H * 3);
for (let i = 0, s = 1; i < frame.length; i++) frame[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;

const nv12Model: Model = open(simModelFile({
  name: "bench_nv12",
  inputs: [
    // 640 is 32-aligned already; 642-byte rows pad to 672 like a camera's odd crop would.
    { name: "y", dtype: "U8", shape: [1, H, W, 1], stride: [672 * H, 672, 1, 1] },
    { name: "uv", dtype: "U8", shape: [1, H / 2, W / 2, 2], stride: [672 * (H / 2), 672, 2, 1] },
  ],
  outputs: [{ name: "o", dtype: "U8", shape: [1], source: 0 }],
}, "bench-image"));
const normModel: Model = open(simModelFile({
  name: "bench_norm",
  inputs: [{ name: "x", dtype: "F32", shape: [1, 3, H, W] }],
  outputs: [{ name: "o", dtype: "F32", shape: [1], source: 0 }],
}, "bench-image"));

const [yIn, uvIn] = nv12Model.inputs;
const yView = yIn.data as Uint8Array, uvView = uvIn.data as Uint8Array;
const jsY = new Uint8Array(yView.length), jsUV = new Uint8Array(uvView.length);
const normView = normModel.inputs[0].data as Float32Array;
const jsNorm = new Float32Array(normView.length);

const nv12Shim = () => writeNv12(nv12Model, frame, { format: "rgb", width: W, height: H });
const nv12Js = () => jsNv12(frame, yView, yIn.strides[1], uvView, uvIn.strides[1]);
const normShim = () => writeNormalized(normModel, frame, { format: "rgb", width: W, height: H, mean: MEAN, std: STD });
const normJs = () => jsNormalize(frame, normView);

// Same bytes from both before timing (the JS versions write copies here).
nv12Shim();
jsNv12(frame, jsY, yIn.strides[1], jsUV, uvIn.strides[1]);
equal(jsY, yView, "NV12 Y");
equal(jsUV, uvView, "NV12 UV");
normShim();
jsNormalize(frame, jsNorm);
equal(jsNorm, normView, "normalize");

const rows: string[][] = [];
for (const [label, shim, js] of [
  ["RGB 640x640 -> NV12 (padded rows)", nv12Shim, nv12Js],
  ["RGB 640x640 -> float32 NCHW mean/std", normShim, normJs],
] as const) {
  const [a, b] = race(shim, js);
  const s = stats(a), j = stats(b);
  rows.push([label, "shim", s.mean.toFixed(3), s.p50.toFixed(3), ""]);
  rows.push([label, "JS loop", j.mean.toFixed(3), j.p50.toFixed(3), (j.p50 / s.p50).toFixed(1) + "x"]);
}
nv12Model.close();
normModel.close();

console.log(`\nedgerun image bench on ${runtime}: ${ITERATIONS} iterations (+${WARMUP} warm-up), shim and JS alternating, ms`);
const header = ["conversion", "by", "mean", "p50", "shim speedup (p50)"];
printTable(header, rows);

// ---- preprocessing ------------------------------------------------------------------------------

const PRE_ITERATIONS = Number(process.env.PRE_ITERATIONS ?? 30);
const PRE_WARMUP = 3;

/** The shim's resize as a plain separable JavaScript loop: taps per column and row, then two passes. */
function jsPreprocess(f: RefFrame, crop: RefRect, w: number, h: number, o: { letterbox?: boolean; rotate?: boolean; pad?: number }, out: Float32Array, std: number): void {
  const placed = o.letterbox ? letterboxRect(crop.width, crop.height, w, h) : { x: 0, y: 0, width: w, height: h };
  const tx = Array.from({ length: placed.width }, (_, i) => taps(crop.width, placed.width, i, crop.width >= 2 * placed.width));
  const ty = Array.from({ length: placed.height }, (_, i) => taps(crop.height, placed.height, i, crop.height >= 2 * placed.height));
  const rows = new Map<number, Int32Array>();
  const row = (sy: number) => {
    let r = rows.get(sy);
    if (r) return r;
    r = new Int32Array(placed.width * 3);
    const px = new Uint8Array(crop.width * 3);
    for (let x = 0; x < crop.width; x++) px.set(sourcePixel(f, crop.x + x, crop.y + sy, false), 3 * x);
    for (let i = 0; i < placed.width; i++) {
      const t = tx[i];
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = 0; k < t.weights.length; k++) acc += t.weights[k] * px[3 * (t.first + k) + c];
        r[3 * i + c] = acc;
      }
    }
    rows.set(sy, r);
    return r;
  };
  const mul = Math.fround(1 / std), plane = w * h;
  const padValue = Math.fround((o.pad ?? 0) * mul);
  out.fill(padValue);
  for (let j = 0; j < placed.height; j++) {
    const t = ty[j];
    const y = placed.y + (o.rotate ? placed.height - 1 - j : j);
    for (let i = 0; i < placed.width; i++) {
      const x = placed.x + (o.rotate ? placed.width - 1 - i : i);
      for (let c = 0; c < 3; c++) {
        let acc = 1 << 21;
        for (let k = 0; k < t.weights.length; k++) acc += t.weights[k] * row(t.first + k)[3 * i + c];
        out[c * plane + y * w + x] = Math.fround((acc >> 22) * mul) + 0;
      }
    }
  }
}

/** What a Node user writes with sharp: resize the RGB frame, then normalize into float32 NCHW in JS. */
type Sharp = (input: Uint8Array, o: { raw: { width: number; height: number; channels: 3 } }) => {
  extract(r: { left: number; top: number; width: number; height: number }): ReturnType<Sharp>;
  rotate(deg: number): ReturnType<Sharp>;
  resize(w: number, h: number, o: { fit: string; kernel: string; background?: object }): ReturnType<Sharp>;
  raw(): { toBuffer(): Promise<Uint8Array> };
};
const sharp: Sharp | undefined = runtime === "bun" ? ((await import("sharp" as string)).default as Sharp) : undefined;

function normalizeRgb(rgb: Uint8Array, out: Float32Array, std: number): void {
  const plane = out.length / 3, mul = Math.fround(1 / std);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = Math.fround(rgb[3 * i + c] * mul);
}

const preModel = (name: string, h: number, w: number): Model =>
  open(simModelFile({ name, inputs: [{ name: "x", dtype: "F32", shape: [1, 3, h, w] }], outputs: [{ name: "o", dtype: "F32", shape: [1], source: 0 }] }, "bench-pre"));

interface PreCase {
  label: string;
  frame: RefFrame;
  rgb: RefFrame; // the same picture as packed RGB, for sharp
  crop: RefRect;
  w: number;
  h: number;
  letterbox?: boolean;
  rotate?: boolean;
}
const yuv = (f: RefFrame) => f; // frames are synthetic: the RGB twin only has to be the same size
const cases: PreCase[] = [
  { label: "NV12 1920x1080 -> letterbox 640x640 f32", frame: makeFrame("nv12", 1920, 1080, 1), rgb: makeFrame("rgb", 1920, 1080, 1), crop: { x: 0, y: 0, width: 1920, height: 1080 }, w: 640, h: 640, letterbox: true },
  { label: "RGB 1280x720 -> resize 640x640 f32", frame: makeFrame("rgb", 1280, 720, 2), rgb: makeFrame("rgb", 1280, 720, 2), crop: { x: 0, y: 0, width: 1280, height: 720 }, w: 640, h: 640 },
  { label: "YUYV 640x480 -> crop, 224x224 f32", frame: yuv(makeFrame("yuyv", 640, 480, 3)), rgb: makeFrame("rgb", 640, 480, 3), crop: { x: 80, y: 0, width: 480, height: 480 }, w: 224, h: 224 },
  { label: "RGB text line crop -> 48x320, rot 180", frame: makeFrame("rgb", 1280, 720, 4), rgb: makeFrame("rgb", 1280, 720, 4), crop: { x: 100, y: 300, width: 600, height: 90 }, w: 320, h: 48, rotate: true },
];

async function timeAsync(fn: () => unknown | Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < PRE_WARMUP + PRE_ITERATIONS; i++) {
    const t0 = performance.now();
    await fn();
    if (i >= PRE_WARMUP) ms.push(performance.now() - t0);
  }
  return ms;
}

const preRows: string[][] = [];
for (const c of cases) {
  const model = preModel("bench_pre", c.h, c.w);
  const view = model.inputs[0].data as Float32Array;
  const js = new Float32Array(view.length);
  const options: NormalizeOptions = {
    format: c.frame.format, width: c.frame.width, height: c.frame.height, crop: c.crop, std: [255, 255, 255],
    letterbox: c.letterbox ? { pad: 114 } : undefined, rotate: c.rotate ? 180 : 0,
  };
  const shim = () => writeNormalized(model, c.frame.data, options);
  const loop = () => jsPreprocess(c.frame, c.crop, c.w, c.h, { letterbox: c.letterbox, rotate: c.rotate, pad: 114 }, js, 255);
  shim();
  loop();
  equal(js, view, c.label);
  const s = stats(await timeAsync(shim)), j = stats(await timeAsync(loop));
  preRows.push([c.label, "shim", s.mean.toFixed(3), s.p50.toFixed(3), ""]);
  preRows.push([c.label, "JS loop", j.mean.toFixed(3), j.p50.toFixed(3), (j.p50 / s.p50).toFixed(1) + "x"]);
  if (sharp) {
    const raw = { raw: { width: c.rgb.width, height: c.rgb.height, channels: 3 as const } };
    const viaSharp = async () => {
      let img = sharp(c.rgb.data, raw).extract({ left: c.crop.x, top: c.crop.y, width: c.crop.width, height: c.crop.height });
      if (c.rotate) img = img.rotate(180);
      const fit = c.letterbox ? "contain" : "fill";
      const rgb = await img.resize(c.w, c.h, { fit, kernel: "linear", background: { r: 114, g: 114, b: 114 } }).raw().toBuffer();
      normalizeRgb(rgb, js, 255);
    };
    const k = stats(await timeAsync(viaSharp));
    preRows.push([c.label, "sharp + JS norm", k.mean.toFixed(3), k.p50.toFixed(3), (k.p50 / s.p50).toFixed(1) + "x"]);
  }
  model.close();
}
console.log(`\nedgerun preprocessing bench on ${runtime}: ${PRE_ITERATIONS} iterations (+${PRE_WARMUP} warm-up) each, ms${sharp ? "" : " (sharp: Bun only)"}`);
printTable(["frame -> input", "by", "mean", "p50", "shim speedup (p50)"], preRows);

// ---- PaddleOCR det, cls, rec in turn: per-session vs shared thread pools (ort) --------------------

function pipeline(shared: boolean): string[][] {
  const o = shared ? { sharedThreads: true } : {};
  using det = open(join(ocrModels, "ch_PP-OCRv4_det_infer.onnx"), o);
  using cls = open(join(ocrModels, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), o);
  using rec = open(join(ocrModels, "ch_PP-OCRv4_rec_infer.onnx"), o);
  det.reshape({ x: [1, 3, 480, 640] });
  cls.reshape({ x: [6, 3, 48, 192] });
  rec.reshape({ x: [6, 3, 48, 320] });
  for (const m of [det, cls, rec]) (m.inputs[0].data as Float32Array).forEach((_, i, a) => (a[i] = Math.sin(i) * 0.5));
  const times: Record<string, number[]> = { det: [], cls: [], rec: [], "det+cls+rec": [] };
  for (let i = 0; i < PRE_WARMUP + PRE_ITERATIONS; i++) {
    const t0 = performance.now();
    det.run();
    const t1 = performance.now();
    cls.run();
    const t2 = performance.now();
    rec.run();
    const t3 = performance.now();
    if (i < PRE_WARMUP) continue;
    times.det.push(t1 - t0), times.cls.push(t2 - t1), times.rec.push(t3 - t2), times["det+cls+rec"].push(t3 - t0);
  }
  const p99 = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))];
  return Object.entries(times).map(([stage, ms]) => [stage, shared ? "shared pools" : "per-session pools", stats(ms).mean.toFixed(2), stats(ms).p50.toFixed(2), p99(ms).toFixed(2)]);
}
const threadRows = [...pipeline(false), ...pipeline(true)].sort((a, b) => a[0].localeCompare(b[0]));
console.log(`\nPaddleOCR det [1,3,480,640] -> cls [6,3,48,192] -> rec [6,3,48,320] in turn on ort, ${runtime}: ${PRE_ITERATIONS} rounds, ms`);
printTable(["stage", "threads", "mean", "p50", "p99"], threadRows);
