/**
 * Camera frames into model inputs (shim/image.c through src/image.ts): RGB/BGR -> NV12 into
 * padded Y/UV inputs of simulator models, and normalization into ONNX float32/float16 inputs
 * (NCHW, NHWC, channel swap) and quantized simulator inputs. Expected values come from the
 * straightforward JS references below, which use the shim's formulas (same 14-bit integer
 * coefficients; same float32 operation order), so every comparison is exact. A float BT.601
 * check bounds the fixed-point error to 1.
 */
import assert from "node:assert/strict";
import {
  EdgerunError,
  type Model,
  normalized,
  nv12,
  open,
  type TypedArray,
  writeNormalized,
  writeNv12,
} from "../mod.ts";
import { Status } from "../ffi/errors.ts";
import { loadNative } from "../ffi/load.ts";
import { test } from "./compat.ts";
import { tempFile } from "./helpers.ts";
import { identityModel } from "./fixtures/onnx_models.ts";
import { simModelFile, throwsEdgerun, useSim } from "./sim_helpers.ts";
import { simF16Bits, type SimModelSpec, simRoundHalfEven } from "./sim/simfile.ts";
import { refNv12 } from "./preprocess_ref.ts";

useSim();

// ---- references ---------------------------------------------------------------------------

interface Frame {
  data: Uint8Array;
  width: number;
  height: number;
  stride: number;
}

/** A deterministic test frame with row padding (filled with junk the conversion must ignore). */
function makeFrame(width: number, height: number, seed: number, pad = 0): Frame {
  const stride = width * 3 + pad;
  const data = new Uint8Array(stride * height);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  // Pure colours and extremes in the first pixels: clamping and the matrix corners.
  const corners = [[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 0]];
  corners.forEach((c, i) => i < width && data.set(c, i * 3));
  return { data, width, height, stride };
}

/** Rows of a strided plane, without the padding. */
function planeRows(view: Uint8Array, rows: number, rowBytes: number, stride: number): Uint8Array {
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) out.set(view.subarray(r * stride, r * stride + rowBytes), r * rowBytes);
  return out;
}

/** Asserts every byte outside the rows' first rowBytes still holds `fill`. */
function assertPadding(view: Uint8Array, rows: number, rowBytes: number, stride: number, fill: number, what: string) {
  for (let i = 0; i < view.length; i++) {
    const inRow = i < rows * stride && i % stride < rowBytes;
    if (!inRow && view[i] !== fill) assert.fail(`${what}: padding byte ${i} is ${view[i]}, expected ${fill}`);
  }
}

function assertBytes(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** (x - mean) / std as the shim computes it: x * fround(1/std) + fround(-mean/std), in float32. */
function refNormalize(
  f: Frame,
  o: { format: "rgb" | "bgr"; channels?: "rgb" | "bgr"; mean: number[]; std: number[] },
  nhwc: boolean,
): Float32Array {
  const swap = (o.channels ?? o.format) !== o.format;
  const out = new Float32Array(3 * f.width * f.height);
  for (let c = 0; c < 3; c++) {
    const mul = Math.fround(1 / Math.fround(o.std[c]));
    const add = Math.fround(-Math.fround(o.mean[c]) * mul);
    const sc = swap ? 2 - c : c;
    for (let r = 0; r < f.height; r++) {
      for (let x = 0; x < f.width; x++) {
        const v = Math.fround(Math.fround(f.data[r * f.stride + 3 * x + sc] * mul) + add);
        out[nhwc ? (r * f.width + x) * 3 + c : (c * f.height + r) * f.width + x] = v;
      }
    }
  }
  return out;
}

// ---- NV12 ------------------------------------------------------------------------------------

test("image: the fixed-point NV12 reference is BT.601 within 1 (full and video range)", () => {
  const f = makeFrame(16, 8, 7);
  for (const range of ["full", "video"] as const) {
    const { y, uv } = refNv12(f, "rgb", range);
    const [sy, sc, off] = range === "full" ? [1, 1, 0] : [219 / 255, 224 / 255, 16];
    for (let r = 0; r < f.height; r++) {
      for (let x = 0; x < f.width; x++) {
        const o = r * f.stride + 3 * x;
        const [R, G, B] = [f.data[o], f.data[o + 1], f.data[o + 2]];
        const yf = off + sy * (0.299 * R + 0.587 * G + 0.114 * B);
        assert.ok(Math.abs(y[r * f.width + x] - yf) <= 1, `${range} Y(${x},${r}) ${y[r * f.width + x]} vs ${yf}`);
      }
    }
    for (let r = 0; r < f.height / 2; r++) {
      for (let x = 0; x < f.width / 2; x++) {
        const m = [0, 1, 2].map((c) => {
          let s = 0;
          for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) s += f.data[(2 * r + dy) * f.stride + 3 * (2 * x + dx) + c];
          return s / 4;
        });
        const u = 128 + sc * (-0.168736 * m[0] - 0.331264 * m[1] + 0.5 * m[2]);
        const v = 128 + sc * (0.5 * m[0] - 0.418688 * m[1] - 0.081312 * m[2]);
        assert.ok(Math.abs(uv[r * f.width + 2 * x] - Math.min(255, u)) <= 1, `${range} U(${x},${r})`);
        assert.ok(Math.abs(uv[r * f.width + 2 * x + 1] - Math.min(255, v)) <= 1, `${range} V(${x},${r})`);
      }
    }
  }
  // White is 255 / 235 and grey has neutral chroma: the coefficient rows sum exactly.
  const white: Frame = { data: new Uint8Array(12).fill(255), width: 2, height: 2, stride: 6 };
  assert.deepEqual([...refNv12(white, "rgb", "full").y], [255, 255, 255, 255]);
  assert.deepEqual([...refNv12(white, "rgb", "video").y], [235, 235, 235, 235]);
  assert.deepEqual([...refNv12(white, "rgb", "full").uv], [128, 128]);
});

/** A simulator model whose Y/UV inputs (shape fixed, strides filled by the shim) come back as outputs. */
function nv12Spec(h: number, w: number, extra = false): SimModelSpec {
  return {
    name: `nv12_${h}x${w}`,
    inputs: [
      ...(extra ? [{ name: "scale", dtype: "F32" as const, shape: [1, 4] }] : []),
      { name: "y", dtype: "U8", shape: [1, h, w, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
      { name: "uv", dtype: "U8", shape: [1, h / 2, w / 2, 2], stride: [-1, -1, 2, 1], dynStrideAlign: 32 },
    ],
    outputs: [
      { name: "y_out", dtype: "U8", shape: [1, h, w, 1], source: extra ? 1 : 0 },
      { name: "uv_out", dtype: "U8", shape: [1, h / 2, w / 2, 2], source: extra ? 2 : 1 },
    ],
  };
}

test("image: writeNv12 converts into padded Y/UV inputs in place; padding is untouched; run() reads it", () => {
  const h = 6, w = 20; // rows of 20 bytes padded to 32
  using model = open(simModelFile(nv12Spec(h, w)));
  const [yIn, uvIn] = model.inputs;
  assert.deepEqual(yIn.strides, [192, 32, 1, 1]);
  assert.deepEqual(uvIn.strides, [96, 32, 2, 1]);
  const cases = [
    { format: "rgb", range: "full", pad: 0 },
    { format: "bgr", range: "full", pad: 5 },
    { format: "rgb", range: "video", pad: 3 },
    { format: "bgr", range: "video", pad: 0 },
  ] as const;
  for (const [n, c] of cases.entries()) {
    const what = `${c.format}/${c.range}/pad ${c.pad}`;
    const yView = model.inputs[0].data as Uint8Array;
    const uvView = model.inputs[1].data as Uint8Array;
    yView.fill(0xcd);
    uvView.fill(0xcd);
    const f = makeFrame(w, h, 100 + n, c.pad);
    writeNv12(model, f.data, { format: c.format, width: w, height: h, stride: f.stride, range: c.range });
    const ref = refNv12(f, c.format, c.range);
    assertBytes(planeRows(yView, h, w, 32), ref.y, `${what} Y`);
    assertBytes(planeRows(uvView, h / 2, w, 32), ref.uv, `${what} UV`);
    assertPadding(yView, h, w, 32, 0xcd, `${what} Y`);
    assertPadding(uvView, h / 2, w, 32, 0xcd, `${what} UV`);
    const out = model.run();
    assertBytes(out.get("y_out").data as Uint8Array, ref.y, `${what} y_out`);
    assertBytes(out.get("uv_out").data as Uint8Array, ref.uv, `${what} uv_out`);
  }
});

test("image: a 640x640 frame (rows already 32-aligned) matches the reference", () => {
  using model = open(simModelFile(nv12Spec(640, 640)));
  const f = makeFrame(640, 640, 3);
  writeNv12(model, f.data, { format: "rgb", width: 640, height: 640 });
  const ref = refNv12(f, "rgb", "full");
  assertBytes(model.inputs[0].data as Uint8Array, ref.y, "Y");
  assertBytes(model.inputs[1].data as Uint8Array, ref.uv, "UV");
});

test("image: nv12() feeds run() and runAsync(): alone, by name, and into pooled requests", async () => {
  const h = 4, w = 34;
  using model = open(simModelFile(nv12Spec(h, w)));
  const f1 = makeFrame(w, h, 1), f2 = makeFrame(w, h, 2), f3 = makeFrame(w, h, 3);
  const r1 = refNv12(f1, "rgb", "full"), r2 = refNv12(f2, "bgr", "full"), r3 = refNv12(f3, "rgb", "video");
  const out1 = model.run(nv12(f1.data, { format: "rgb", width: w, height: h }));
  assertBytes(out1.get("y_out").data as Uint8Array, r1.y, "run(frame) Y");
  const frame2 = nv12(f2.data, { format: "bgr", width: w, height: h });
  const out2 = model.run({ uv: frame2, y: frame2 });
  assertBytes(out2.get("uv_out").data as Uint8Array, r2.uv, "run({y, uv}) UV");
  const frame3 = nv12(f3.data, { format: "rgb", width: w, height: h, range: "video" });
  const [a, b] = await Promise.all([model.runAsync(frame3), model.runAsync([frame2, frame2])]);
  assertBytes(a.get("y_out").data as Uint8Array, r3.y, "runAsync Y");
  assertBytes(a.get("uv_out").data as Uint8Array, r3.uv, "runAsync UV");
  assertBytes(b.get("uv_out").data as Uint8Array, r2.uv, "runAsync([f, f]) UV");
});

test("image: an NV12 frame among other inputs; Y/UV found by shape whatever their order", () => {
  const h = 2, w = 8;
  using model = open(simModelFile(nv12Spec(h, w, true)));
  const f = makeFrame(w, h, 9);
  const ref = refNv12(f, "rgb", "full");
  writeNv12(model, f.data, { format: "rgb", width: w, height: h });
  assertBytes(model.run().get("y_out").data as Uint8Array, ref.y, "writeNv12 with an extra input");
  const frame = nv12(f.data, { format: "rgb", width: w, height: h });
  const out = model.run({ scale: new Float32Array(4), y: frame, uv: frame });
  assertBytes(out.get("uv_out").data as Uint8Array, ref.uv, "record feed");
  assert.throws(() => model.run({ scale: new Float32Array(4), y: frame, uv: new Uint8Array(8) }), /feeds two inputs/);
  assert.throws(() => model.run(frame), /has 3 inputs/);
});

test("image: dynamic Y/UV inputs take their shape from the frame", () => {
  const spec: SimModelSpec = {
    name: "nv12_dyn",
    inputs: [
      { name: "y", dtype: "U8", shape: [1, -1, -1, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
      { name: "uv", dtype: "U8", shape: [1, -1, -1, 2], stride: [-1, -1, 2, 1], dynStrideAlign: 32 },
    ],
    outputs: [
      { name: "first_y", dtype: "U8", shape: [8], source: 0 },
      { name: "first_uv", dtype: "U8", shape: [8], source: 1 },
    ],
  };
  using model = open(simModelFile(spec));
  for (const [h, w] of [[4, 20], [2, 64]]) {
    const f = makeFrame(w, h, h * w);
    const ref = refNv12(f, "bgr", "full");
    const out = model.run(nv12(f.data, { format: "bgr", width: w, height: h }));
    const row = Math.ceil(w / 32) * 32;
    // A dynamic input's shape is the one the frame gave it; its declared shape stays in model.describe().
    assert.deepEqual(model.inputs[0].shape, [1, h, w, 1]);
    assert.deepEqual(model.inputs[1].strides, [(h / 2) * row, row, 2, 1]);
    assertBytes(out.get("first_y").data as Uint8Array, ref.y.subarray(0, 8), `${h}x${w} Y`);
    assertBytes(out.get("first_uv").data as Uint8Array, ref.uv.subarray(0, 8), `${h}x${w} UV`);
    assertBytes(planeRows(model.inputs[0].data as Uint8Array, h, w, row), ref.y, `${h}x${w} Y rows`);
  }
});

// ---- normalization ---------------------------------------------------------------------------

const IMAGENET = { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] };

test("image: normalization into ONNX float32 inputs, NCHW and NHWC, mean/std, RGB/BGR", () => {
  const h = 5, w = 7;
  const path = tempFile("image-norm.onnx", identityModel("norm", [
    { name: "nchw", dtype: "float32", shape: [1, 3, h, w] },
    { name: "nhwc", dtype: "float32", shape: [1, h, w, 3] },
  ]));
  using model = open(path);
  const f = makeFrame(w, h, 42, 2);
  const cases = [
    { format: "rgb", ...IMAGENET },
    { format: "bgr", channels: "rgb", ...IMAGENET },
    { format: "rgb", channels: "bgr", mean: [0, 0, 0], std: [255, 255, 255] },
    { format: "bgr", mean: [1, 2, 3], std: [-2, 0.5, 3] },
  ] as const;
  for (const c of cases) {
    const what = JSON.stringify(c);
    const o = { ...c, mean: [...c.mean], std: [...c.std] };
    writeNormalized(model, f.data, { ...o, width: w, height: h, stride: f.stride, input: "nchw" });
    writeNormalized(model, f.data, { ...o, width: w, height: h, stride: f.stride, input: "nhwc", layout: "nhwc" });
    const chw = refNormalize(f, o, false), hwc = refNormalize(f, o, true);
    assertBytes(model.inputs[0].data as Float32Array, chw, `${what} NCHW input`);
    assertBytes(model.inputs[1].data as Float32Array, hwc, `${what} NHWC input`);
    const out = model.run();
    assertBytes(out.get("nchw_out").data as Float32Array, chw, `${what} NCHW output`);
    assertBytes(out.get("nhwc_out").data as Float32Array, hwc, `${what} NHWC output`);
  }
  // A channel swap really moves channels: R of an RGB image is channel 2 of a BGR input.
  writeNormalized(model, f.data, { format: "rgb", channels: "bgr", width: w, height: h, stride: f.stride, input: "nchw" });
  assert.equal((model.inputs[0].data as Float32Array)[2 * h * w], f.data[0]);
});

test("image: normalized() feeds run() and runAsync(); float16 inputs get round-to-nearest-even halves", async () => {
  const h = 4, w = 6;
  const path = tempFile("image-norm16.onnx", identityModel("norm16", [
    { name: "x", dtype: "float16", shape: [1, 3, h, w] },
  ]));
  using model = open(path);
  const f = makeFrame(w, h, 5);
  const o = { format: "bgr" as const, ...IMAGENET };
  const expected = Array.from(refNormalize(f, o, false), simF16Bits);
  const feed = normalized(f.data, { ...o, width: w, height: h });
  const bits = (t: { data: TypedArray }) => new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2);
  assertBytes(bits(model.run(feed)[0]), expected, "run");
  assertBytes(bits((await model.runAsync(feed))[0]), expected, "runAsync");
});

test("image: normalization into a quantized int8 simulator input with padded rows (NCHW)", () => {
  const h = 3, w = 5;
  const spec: SimModelSpec = {
    name: "norm_q",
    inputs: [{
      name: "x",
      dtype: "S8",
      shape: [1, 3, h, w],
      stride: [3 * h * 16, h * 16, 16, 1],
      quant: { scales: [0.025], zeroPoints: [-3] },
    }],
    outputs: [{ name: "x_out", dtype: "F32", shape: [1, 3, h, w], source: 0 }],
  };
  using model = open(simModelFile(spec));
  const f = makeFrame(w, h, 11);
  const o = { format: "rgb" as const, mean: [128, 100, 50], std: [40, 30, 2] };
  const view = model.inputs[0].data as Int8Array;
  view.fill(-51); // 0xCD
  writeNormalized(model, f.data, { ...o, width: w, height: h });
  const values = refNormalize(f, o, false);
  const q = Array.from(values, (v) => Math.min(127, Math.max(-128, simRoundHalfEven(Math.fround(Math.fround(v / Math.fround(0.025)) - 3)))));
  assert.ok(q.includes(127) && q.includes(-128), "the frame reaches both clamps");
  const rows = new Int8Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let r = 0; r < h; r++) rows.set(view.subarray((c * h + r) * 16, (c * h + r) * 16 + w), (c * h + r) * w);
  assertBytes(rows, q, "quantized values");
  assertPadding(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 3 * h, w, 16, 0xcd, "int8 rows");
  // The simulator dequantizes what it reads: (q - zp) * scale.
  assertBytes(model.run()[0].data as Float32Array, q.map((v) => Math.fround((v + 3) * Math.fround(0.025))), "dequantized");
});

test("image: per-channel uint8 quantization (NHWC) rounds ties to even", () => {
  const h = 2, w = 8;
  const spec: SimModelSpec = {
    name: "norm_qc",
    inputs: [{
      name: "x",
      dtype: "U8",
      shape: [1, h, w, 3],
      quant: { scales: [2, 4, 0.5], zeroPoints: [0, 10, 7], axis: 3 },
    }],
    outputs: [{ name: "x_out", dtype: "F32", shape: [1], source: 0 }],
  };
  using model = open(simModelFile(spec));
  const f = makeFrame(w, h, 12);
  writeNormalized(model, f.data, { format: "bgr", channels: "rgb", width: w, height: h });
  const scales = [2, 4, 0.5], zps = [0, 10, 7];
  const values = refNormalize(f, { format: "bgr", channels: "rgb", mean: [0, 0, 0], std: [1, 1, 1] }, true);
  const q = Array.from(values, (v, i) => {
    const c = i % 3;
    return Math.min(255, Math.max(0, simRoundHalfEven(Math.fround(v / scales[c]) + zps[c])));
  });
  // x / 2 and x / 4 land on .5 for some pixels: round half to even, not half away from zero.
  assert.ok(values.some((v, i) => i % 3 === 0 && v % 4 === 1), "the frame has ties that round down");
  assertBytes(model.inputs[0].data as Uint8Array, q, "quantized values");
});

// ---- errors ----------------------------------------------------------------------------------

test("image: argument errors are TypeError/RangeError before native code", () => {
  const img = new Uint8Array(4 * 4 * 3);
  const o = { format: "rgb" as const, width: 4, height: 4 };
  assert.throws(() => nv12(new Float32Array(48) as unknown as Uint8Array, o), TypeError);
  assert.throws(() => nv12(img, { ...o, width: 3 }), /even/);
  assert.throws(() => nv12(img, { ...o, height: 5 }), RangeError); // odd, and too short
  assert.throws(() => nv12(img.subarray(1), o), /needs 48 bytes, got 47/);
  assert.throws(() => nv12(img, { ...o, stride: 11 }), /stride must be an integer >= width \* 3/);
  assert.throws(() => nv12(img, { ...o, format: "rgbx" as "rgb" }), /format must be one of rgb, bgr, rgba/);
  assert.throws(() => nv12(img, { ...o, range: "tv" as "full" }), /range/);
  assert.throws(() => nv12(img, { ...o, mean: [0, 0, 0] } as unknown as typeof o), /unknown option 'mean'/);
  assert.throws(() => normalized(img, { ...o, std: [1, 0, 1] }), /std must not be 0/);
  assert.throws(() => normalized(img, { ...o, mean: [1, 2] }), /3 finite numbers/);
  assert.throws(() => normalized(img, { ...o, layout: "chw" as "nchw" }), /layout/);
  assert.throws(() => normalized(img, { ...o, width: 0 }), /width must be a positive integer/);
});

test("image: tensor mismatches are EdgerunErrors naming the input (dtype, shape, layout, quantization)", () => {
  const h = 4, w = 6;
  const spec: SimModelSpec = {
    name: "wrong",
    inputs: [
      { name: "f", dtype: "F32", shape: [1, h, w, 1] },
      { name: "uv", dtype: "U8", shape: [1, h / 2, w / 2, 2], stride: [-1, -1, 2, 1], dynStrideAlign: 32 },
      { name: "plain_u8", dtype: "U8", shape: [1, 3, h, w] },
      { name: "y_wide", dtype: "U8", shape: [1, h, w + 2, 1] },
      { name: "uv_strided", dtype: "U8", shape: [1, h / 2, w / 2, 2], stride: [256, 64, 4, 1] },
      { name: "y", dtype: "U8", shape: [1, h, w, 1] },
      { name: "square", dtype: "F32", shape: [1, 3, 3, 3] },
      { name: "q_axis", dtype: "S8", shape: [1, 3, h, w], quant: { scales: [1, 1, 1, 1, 1, 1], axis: 3 } },
    ],
    outputs: [{ name: "o", dtype: "U8", shape: [1], source: 1 }],
  };
  using model = open(simModelFile(spec));
  const f = makeFrame(w, h, 1);
  const frame = nv12(f.data, { format: "rgb", width: w, height: h });
  const feeds = (y: string, uv: string) => ({ [y]: frame, [uv]: frame });
  const m = model as Model;
  throwsEdgerun(() => m.writeInputs(feeds("f", "uv")), "INVALID_ARGUMENT", { message: /NV12 Y input 'f' must be uint8/ });
  throwsEdgerun(() => m.writeInputs(feeds("y_wide", "uv")), "INVALID_ARGUMENT", {
    message: /'y_wide' has shape \[1,4,8,1\]; the image needs \[1,4,6,1\]/,
  });
  throwsEdgerun(() => m.writeInputs(feeds("y", "uv_strided")), "UNSUPPORTED", { message: /'uv_strided' has strides/ });
  assert.throws(() => writeNv12(model, f.data, { format: "rgb", width: w, height: h }), /cannot tell .* NV12 inputs apart/);
  const norm = { format: "rgb" as const, width: w, height: h };
  throwsEdgerun(() => writeNormalized(model, f.data, { ...norm, input: "plain_u8" }), "INVALID_ARGUMENT", {
    message: /'plain_u8' .* must be float32, float16, or int8\/uint8 with quantization parameters/,
  });
  throwsEdgerun(() => writeNormalized(model, f.data, { ...norm, input: "f" }), "INVALID_ARGUMENT", {
    message: /'f' has shape \[1,4,6,1\]; a 6x4 image needs \[1,3,H,W\] or \[1,H,W,3\]/,
  });
  throwsEdgerun(() => writeNormalized(model, f.data, { ...norm, input: "f", layout: "nhwc" }), "INVALID_ARGUMENT", {
    message: /needs \[1,H,W,3\] \(NHWC\)/,
  });
  const sq = makeFrame(3, 3, 2);
  throwsEdgerun(() => writeNormalized(model, sq.data, { format: "rgb", width: 3, height: 3, input: "square" }), "INVALID_ARGUMENT", {
    message: /reads as NCHW and as NHWC: give the layout/,
  });
  writeNormalized(model, sq.data, { format: "rgb", width: 3, height: 3, input: "square", layout: "nhwc" });
  throwsEdgerun(() => writeNormalized(model, f.data, { ...norm, input: "q_axis" }), "UNSUPPORTED", {
    message: /quantized with 6 scales on axis 3/,
  });
  assert.throws(() => writeNormalized(model, f.data, norm), /has 8 inputs .*: name one with \{ input \}/);
  assert.throws(() => writeNormalized(model, f.data, { ...norm, input: "nope" }), /has no input 'nope'/);
  assert.throws(() => m.writeInputs({ y: normalized(f.data, norm), f: normalized(f.data, norm) }), EdgerunError);
  const twice = normalized(f.data, norm);
  assert.throws(() => m.writeInputs({ square: twice, f: twice }), /feeds one input/);
});

test("image: the shim validates its own arguments (null image, short buffer, odd size, same input twice)", () => {
  const h = 2, w = 4;
  using model = open(simModelFile(nv12Spec(h, w)));
  const native = loadNative();
  const s = native.symbols;
  const out = new BigUint64Array(1);
  assert.equal(s.er_request_new(native.handle(model.share().address), out), 0);
  const req = native.handle(out[0]);
  const lastError = () => {
    const buf = new Uint8Array(512);
    const n = s.er_last_error(buf, buf.length);
    return new TextDecoder().decode(buf.subarray(0, Math.min(n, 511)));
  };
  const img = makeFrame(w, h, 4).data;
  try {
    assert.equal(s.er_request_write_nv12(req, 0, 1, img, img.length, w, h, 0, 0, 0), 0);
    assert.equal(s.er_request_write_nv12(req, 0, 1, null, img.length, w, h, 0, 0, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /image must not be NULL/);
    assert.equal(s.er_request_write_nv12(req, 0, 1, img, img.length - 1, w, h, 0, 0, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /holds 23 bytes; 4x2 pixels at a row stride of 12 need 24/);
    assert.equal(s.er_request_write_nv12(req, 0, 1, img, img.length, w - 1, h, 0, 0, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /even width and height, got 3x2/);
    assert.equal(s.er_request_write_nv12(req, 0, 0, img, img.length, w, h, 0, 0, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /two different inputs/);
    assert.equal(s.er_request_write_nv12(req, 0, 1, img, img.length, w, h, 5, 0, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /row stride 5 is shorter/);
    assert.equal(s.er_request_write_nv12(req, 0, 1, img, img.length, w, h, 0, 2, 0), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /unknown image format 2/);
    assert.equal(s.er_request_write_nv12(req, 0, 7, img, img.length, w, h, 0, 0, 0), Status.NOT_FOUND);
    assert.match(lastError(), /input index 7 out of range/);
    assert.equal(s.er_request_write_normalized(req, 0, img, img.length, w, h, 0, 0, null), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /mean_std must not be NULL/);
    const ms = Float32Array.from([0, 0, 0, 1, Number.NaN, 1]);
    assert.equal(s.er_request_write_normalized(req, 0, img, img.length, w, h, 0, 0, ms), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /channel 1: mean 0 and std nan must be finite/);
    assert.equal(s.er_request_write_normalized(req, 0, img, img.length, w, h, 0, 3, ms), Status.INVALID_ARGUMENT);
    assert.match(lastError(), /layout 3/);
  } finally {
    s.er_request_free(req);
  }
});
