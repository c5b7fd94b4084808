/**
 * Preprocessing in the shim (shim/preprocess.c via er_request_write_image): every source format
 * (packed RGB/BGR/RGBA/BGRA/GRAY and NV12/YUYV with row padding), crop, bilinear and area resize,
 * letterbox, rotation, into a region and batch index of uint8, float32, float16, int8 and NV12
 * inputs. Expected values come from the per-pixel references of tests/preprocess_ref.ts: equal
 * bit for bit (the resampled pixels are 8-bit integers, and normalization repeats the shim's
 * float32 operations), with everything outside the region still holding the sentinel.
 */
import assert from "node:assert/strict";
import { EdgerunError, type Model, normalized, open, writeNormalized, writeNv12 } from "../mod.ts";
import { test } from "./compat.ts";
import { tempFile } from "./helpers.ts";
import { identityModel } from "./fixtures/onnx_models.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import { simF16Bits, simRoundHalfEven } from "./sim/simfile.ts";
import {
  makeFrame,
  type RefFormat,
  type RefFrame,
  type RefGeometry,
  refNormalizeValue,
  refNv12,
  refResample,
  sourcePixel,
} from "./preprocess_ref.ts";

useSim();

const SENTINEL = 0xa5;
const FORMATS: RefFormat[] = ["rgb", "bgr", "rgba", "bgra", "gray", "nv12", "yuyv"];
const H = 24, W = 32;

/** Geometries every format goes through: enlarge a crop, shrink 3x (area), letterbox + rotate + pad, a region at batch 1. */
const CASES: { name: string; g: RefGeometry; batch: number }[] = [
  { name: "crop + bilinear up", g: { crop: { x: 3, y: 5, width: 13, height: 9 } }, batch: 0 },
  { name: "area down", g: { crop: { x: 0, y: 0, width: 96, height: 72 } }, batch: 0 },
  { name: "bilinear down", g: { resize: "bilinear", crop: { x: 1, y: 2, width: 60, height: 41 } }, batch: 1 },
  { name: "letterbox + rotate", g: { letterbox: true, pad: [114, 7, 250], rotate: 180, crop: { x: 10, y: 4, width: 70, height: 20 } }, batch: 1 },
  {
    name: "region, video range",
    g: { into: { x: 6, y: 4, width: 18, height: 12 }, sourceRange: "video", resize: "area", crop: { x: 2, y: 2, width: 50, height: 30 } },
    batch: 1,
  },
];

function u8Model(name: string): Model {
  return open(simModelFile({
    name,
    inputs: [{ name: "x", dtype: "U8", shape: [2, H, W, 3] }],
    outputs: [{ name: "o", dtype: "U8", shape: [1], source: 0 }],
  }, name));
}

function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

function options(f: RefFrame, g: RefGeometry, batch: number) {
  return {
    format: f.format,
    width: f.width,
    height: f.height,
    stride: f.stride,
    crop: g.crop,
    into: g.into,
    letterbox: g.letterbox ? { pad: g.pad } : undefined,
    rotate: g.rotate,
    resize: g.resize,
    sourceRange: g.sourceRange,
    batch,
  };
}

test("preprocess: every source format, crop/resize/letterbox/rotate, into uint8 NHWC at a batch index, bit-exact", () => {
  using model = u8Model("pre_u8");
  const view = model.inputs[0].data as Uint8Array;
  for (const format of FORMATS) {
    const f = makeFrame(format, 96, 72, 11 + format.length, 6);
    for (const { name, g, batch } of CASES) {
      view.fill(SENTINEL);
      const placed = writeNormalized(model, f.data, options(f, g, batch));
      const { rgb, region, placed: want } = refResample(f, g, W, H);
      const expected = new Uint8Array(view.length).fill(SENTINEL);
      for (let y = 0; y < region.height; y++) {
        const at = ((batch * H + region.y + y) * W + region.x) * 3;
        expected.set(rgb.subarray(y * region.width * 3, (y + 1) * region.width * 3), at);
      }
      assertSame(view, expected, `${format}, ${name}`);
      assert.deepEqual(
        [placed.x, placed.y, placed.width, placed.height],
        [region.x + want.x, region.y + want.y, want.width, want.height],
        `${format}, ${name}: placement`,
      );
    }
  }
});

test("preprocess: the resize follows OpenCV's conventions (half-pixel bilinear, area means) and is within 1 of exact bilinear", () => {
  using model = open(simModelFile({
    name: "pre_line",
    inputs: [{ name: "x", dtype: "U8", shape: [1, 1, 4, 3] }],
    outputs: [{ name: "o", dtype: "U8", shape: [1], source: 0 }],
  }, "pre_line"));
  const out = () => Array.from(model.inputs[0].data as Uint8Array).filter((_, i) => i % 3 === 0);
  // cv::resize([0, 255], (4, 1), INTER_LINEAR) = [0, 64, 191, 255]
  writeNormalized(model, new Uint8Array([0, 255]), { format: "gray", width: 2, height: 1 });
  assert.deepEqual(out(), [0, 64, 191, 255]);
  // cv::resize(8 values, (4, 1), INTER_AREA) = means of pairs (rounded half up)
  writeNormalized(model, new Uint8Array([10, 20, 30, 41, 50, 50, 0, 255]), { format: "gray", width: 8, height: 1 });
  assert.deepEqual(out(), [15, 36, 50, 128]);

  // Against bilinear in exact arithmetic, an enlargement and a mild reduction: off by at most 1.
  using big = u8Model("pre_exact");
  for (const crop of [{ x: 0, y: 0, width: 11, height: 7 }, { x: 0, y: 0, width: 45, height: 40 }]) {
    const f = makeFrame("rgb", 48, 40, 5);
    writeNormalized(big, f.data, { format: "rgb", width: 48, height: 40, crop, resize: "bilinear" });
    const got = big.inputs[0].data as Uint8Array;
    let worst = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const clampTo = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
        const sx = clampTo((x + 0.5) * crop.width / W - 0.5, crop.width), sy = clampTo((y + 0.5) * crop.height / H - 0.5, crop.height);
        const x0 = Math.floor(sx), y0 = Math.floor(sy), x1 = Math.min(x0 + 1, crop.width - 1), y1 = Math.min(y0 + 1, crop.height - 1);
        const fx = sx - x0, fy = sy - y0;
        for (let c = 0; c < 3; c++) {
          const p = (px: number, py: number) => sourcePixel(f, px, py, false)[c];
          const exact = (1 - fy) * ((1 - fx) * p(x0, y0) + fx * p(x1, y0)) + fy * ((1 - fx) * p(x0, y1) + fx * p(x1, y1));
          worst = Math.max(worst, Math.abs(got[(y * W + x) * 3 + c] - exact));
        }
      }
    }
    assert.ok(worst <= 1, `worst difference from exact bilinear: ${worst}`);
  }
});

test("preprocess: float32 NCHW (mean/std, channel swap), float16 NHWC and quantized int8 equal the reference exactly", () => {
  const mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375];
  using model = open(simModelFile({
    name: "pre_float",
    inputs: [
      { name: "f32", dtype: "F32", shape: [2, 3, H, W] },
      { name: "f16", dtype: "F16", shape: [1, H, W, 3] },
      { name: "s8", dtype: "S8", shape: [1, 3, H, W], quant: { scales: [0.03], zeroPoints: [-5] } },
    ],
    outputs: [{ name: "o", dtype: "F32", shape: [1], source: 0 }],
  }, "pre_float"));
  const f = makeFrame("bgra", 90, 50, 3, 4);
  const g: RefGeometry = { crop: { x: 4, y: 3, width: 80, height: 45 }, letterbox: true, pad: [0, 0, 0] };
  const { rgb } = refResample(f, g, W, H); // BGR order, like the frame
  const opts = { ...options(f, g, 0), mean, std, channels: "rgb" as const };
  const [f32, f16, s8] = model.inputs;

  (f32.data as Float32Array).fill(-7);
  writeNormalized(model, f.data, { ...opts, input: "f32", batch: 1 });
  const want32 = new Float32Array(2 * 3 * H * W).fill(-7);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < H * W; i++) want32[(3 + c) * H * W + i] = refNormalizeValue(rgb[i * 3 + 2 - c], mean[c], std[c]);
  }
  assertSame(f32.data as Float32Array, want32, "float32 NCHW, batch 1");

  writeNormalized(model, f.data, { ...opts, input: "f16" });
  const bits = new Uint16Array((f16.data as Uint16Array).buffer, (f16.data as Uint16Array).byteOffset, H * W * 3);
  const want16 = Array.from({ length: H * W * 3 }, (_, i) => simF16Bits(refNormalizeValue(rgb[i - (i % 3) + 2 - (i % 3)], mean[i % 3], std[i % 3])));
  assertSame(bits, want16, "float16 NHWC");

  writeNormalized(model, f.data, { ...opts, input: "s8" });
  const want8 = new Int8Array(3 * H * W);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < H * W; i++) {
      const v = refNormalizeValue(rgb[i * 3 + 2 - c], mean[c], std[c]);
      want8[c * H * W + i] = Math.min(127, Math.max(-128, simRoundHalfEven(Math.fround(Math.fround(v / Math.fround(0.03)) - 5))));
    }
  }
  assertSame(s8.data as Int8Array, want8, "int8 quantized NCHW");
});

test("preprocess: NV12 destination with padded rows, a region at batch 1, the rest untouched", () => {
  const yStride = 64, uvStride = 64;
  using model = open(simModelFile({
    name: "pre_nv12",
    inputs: [
      { name: "y", dtype: "U8", shape: [2, H, W, 1], stride: [yStride * H, yStride, 1, 1] },
      { name: "uv", dtype: "U8", shape: [2, H / 2, W / 2, 2], stride: [uvStride * H / 2, uvStride, 2, 1] },
    ],
    outputs: [{ name: "o", dtype: "U8", shape: [1], source: 0 }],
  }, "pre_nv12"));
  const [yIn, uvIn] = model.inputs;
  for (const format of ["yuyv", "bgr", "nv12"] as const) {
    const f = makeFrame(format, 100, 60, 9, 2);
    const g: RefGeometry = { into: { x: 4, y: 2, width: 20, height: 16 }, letterbox: true, pad: [16, 128, 128], rotate: 180 };
    (yIn.data as Uint8Array).fill(SENTINEL);
    (uvIn.data as Uint8Array).fill(SENTINEL);
    writeNv12(model, f.data, { ...options(f, g, 1), range: "video" });
    const { rgb, region } = refResample(f, g, W, H);
    const planes = refNv12({ data: rgb, width: region.width, height: region.height, stride: region.width * 3 }, format === "bgr" ? "bgr" : "rgb", "video");
    const wantY = new Uint8Array((yIn.data as Uint8Array).length).fill(SENTINEL);
    const wantUV = new Uint8Array((uvIn.data as Uint8Array).length).fill(SENTINEL);
    for (let r = 0; r < region.height; r++) {
      wantY.set(planes.y.subarray(r * region.width, (r + 1) * region.width), yStride * H + (region.y + r) * yStride + region.x);
    }
    for (let r = 0; r < region.height / 2; r++) {
      wantUV.set(planes.uv.subarray(r * region.width, (r + 1) * region.width), uvStride * H / 2 + (region.y / 2 + r) * uvStride + region.x);
    }
    assertSame(yIn.data as Uint8Array, wantY, `${format}: Y`);
    assertSame(uvIn.data as Uint8Array, wantUV, `${format}: UV`);
  }
});

test("preprocess: feeds shape a dynamic ONNX input from `into` and run on both the sync and async paths", async () => {
  using model = open(tempFile("pre_dyn.onnx", identityModel("pre_dyn", [{ name: "x", dtype: "float32", shape: [1, 3, "h", "w"] }])));
  const f = makeFrame("rgb", 50, 20, 4);
  const g: RefGeometry = { crop: { x: 5, y: 2, width: 40, height: 16 }, into: { x: 0, y: 0, width: 30, height: 12 }, rotate: 180 };
  const feed = normalized(f.data, { ...options(f, g, 0), std: [255, 255, 255] });
  const { rgb } = refResample(f, g, 30, 12);
  const want = new Float32Array(3 * 12 * 30);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 12 * 30; i++) want[c * 360 + i] = refNormalizeValue(rgb[i * 3 + c], 0, 255);
  const [sync] = model.run(feed);
  assert.deepEqual(sync.shape, [1, 3, 12, 30]);
  assertSame(sync.data as Float32Array, want, "run(feed)");
  const [later] = await model.runAsync(feed);
  assertSame(later.data as Float32Array, want, "runAsync(feed)");
  assert.deepEqual(feed.placement && [feed.placement.x, feed.placement.width, feed.placement.rotated], [0, 30, true]);
});

test("preprocess: letterbox placement maps model coordinates back to the frame", () => {
  using model = open(simModelFile({
    name: "pre_box",
    inputs: [{ name: "x", dtype: "U8", shape: [1, 64, 64, 3] }],
    outputs: [{ name: "o", dtype: "U8", shape: [1], source: 0 }],
  }, "pre_box"));
  const frame = new Uint8Array(128 * 72 * 3).fill(200);
  const placed = writeNormalized(model, frame, { format: "rgb", width: 128, height: 72, letterbox: { pad: 114 } });
  assert.deepEqual([placed.x, placed.y, placed.width, placed.height, placed.scaleX], [0, 14, 64, 36, 0.5]);
  assert.deepEqual(placed.toSource(32, 32), [64, 36]);
  const view = model.inputs[0].data as Uint8Array;
  assert.equal(view[0], 114); // padding above the image
  assert.equal(view[(20 * 64 + 10) * 3], 200); // the image
  const flipped = writeNormalized(model, frame, { format: "rgb", width: 128, height: 72, crop: { x: 0, y: 0, width: 64, height: 64 }, rotate: 180 });
  assert.deepEqual(flipped.toSource(0, 0), [64, 64]);
});

test("preprocess: bad geometry is refused before anything is written (TypeError/RangeError in JS, INVALID_ARGUMENT from the shim)", () => {
  using model = u8Model("pre_err");
  const f = makeFrame("rgb", 40, 30, 1);
  const base = { format: "rgb" as const, width: 40, height: 30 };
  assert.throws(() => normalized(f.data, { ...base, crop: { x: 30, y: 0, width: 20, height: 10 } }), RangeError);
  assert.throws(() => normalized(f.data, { ...base, into: { x: 0, y: 0, width: 0, height: 4 } }), RangeError);
  assert.throws(() => normalized(f.data, { ...base, rotate: 90 as 0 }), RangeError);
  assert.throws(() => normalized(f.data, { ...base, letterbox: { pad: 300 } }), RangeError);
  assert.throws(() => normalized(f.data.subarray(0, 1000), { ...base, format: "nv12" }), RangeError);
  const view = model.inputs[0].data as Uint8Array;
  view.fill(SENTINEL);
  const shim = (o: object, what: RegExp) =>
    assert.throws(() => writeNormalized(model, f.data, { ...base, ...o }), (e) => e instanceof EdgerunError && e.code === "INVALID_ARGUMENT" && what.test(e.message));
  shim({ into: { x: 20, y: 0, width: 20, height: 4 } }, /region 20x4 at \(20,0\) does not fit in 32x24/);
  shim({ batch: 2 }, /batch index 2 is outside input 'x'/);
  assert.ok(view.every((v) => v === SENTINEL), "nothing written");
  assert.throws(() => writeNv12(model, f.data, { ...base, letterbox: true }), TypeError); // no Y and UV inputs
});
