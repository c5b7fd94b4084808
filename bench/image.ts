/**
 * Camera-frame conversion: the shim (writeNv12 / writeNormalized, straight into input memory)
 * against a straightforward JavaScript loop writing the same memory, on a 640x640 RGB frame.
 * Both write the inputs of a simulator model's request (padded NV12 rows, float32 NCHW), so the
 * destination is identical; nothing runs. Each iteration times one shim call and one JS call
 * back to back (performance.now() around each), so machine noise hits both alike; warm-up
 * iterations first. The JS results are checked equal to the shim's before timing.
 *   deno run -A bench/image.ts   |   bun run bench/image.ts     (ITERATIONS=n to change)
 */
import process from "node:process";
import { type Model, open, runtime, writeNormalized, writeNv12 } from "../mod.ts";
import { simModelFile, useSim } from "../tests/sim_helpers.ts";
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
