/**
 * The hbdnn backend through the public API, against the hbDNN/UCP simulator (tests/sim/):
 * metadata, padded layouts both ways, dynamic NV12-style inputs, quantization, packs, scheduling
 * options and timeouts. Expected values come from simExpected() (tests/sim/simfile.ts).
 */
import assert from "node:assert/strict";
import { type DType, type Model, open, openAll, type Tensor, type TypedArray } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";
import { simModelFile, throwsEdgerun, useSim } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";
import {
  simCount,
  simDecodeTensor,
  simDenseStrides,
  simElemSize,
  simExpected,
  simF16Bits,
  simF16Value,
  type SimModelSpec,
  simRoundHalfEven,
} from "./sim/simfile.ts";

const sim = useSim();

/** S100 dtype name -> edgerun dtype and the TypedArray a dense feed of it uses. */
const DTYPE_MAP: Record<string, { dtype: DType; array: new (n: number) => TypedArray }> = {
  S8: { dtype: "int8", array: Int8Array },
  U8: { dtype: "uint8", array: Uint8Array },
  F16: { dtype: "float16", array: Uint16Array }, // bits; Float16Array is also accepted
  S16: { dtype: "int16", array: Int16Array },
  U16: { dtype: "uint16", array: Uint16Array },
  F32: { dtype: "float32", array: Float32Array },
  S32: { dtype: "int32", array: Int32Array },
  U32: { dtype: "uint32", array: Uint32Array },
  F64: { dtype: "float64", array: Float64Array },
  S64: { dtype: "int64", array: BigInt64Array },
  U64: { dtype: "uint64", array: BigUint64Array },
  BOOL8: { dtype: "bool", array: Uint8Array },
};

/** Six raw input values per dtype that reach both ends of its range after y = 2x - 1. */
const DTYPE_VALUES: Record<string, (number | bigint)[]> = {
  S8: [-128, -1, 0, 1, 63, 127],
  U8: [0, 1, 2, 127, 128, 255],
  F16: [0.5, -2, 1000, 65504, 2 ** -20, 3.25],
  S16: [-32768, -1, 0, 1, 16383, 32767],
  U16: [0, 1, 2, 32767, 32768, 65535],
  F32: [0.5, -2, 1e38, -3e38, 1e-30, 3.25],
  S32: [-2147483648, -1, 0, 1, 1073741823, 2147483647],
  U32: [0, 1, 2, 2147483647, 2147483648, 4294967295],
  F64: [0.5, -2, 1e300, -1e308, 1e-300, 3.25],
  S64: [-(2n ** 63n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n],
  U64: [0n, 1n, 2n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n],
  BOOL8: [0, 1, 1, 0, 0, 1],
};

/** A dense feed array of S100 dtype `dt` holding these raw values. */
function feedOf(dt: string, vals: ArrayLike<number | bigint>): TypedArray {
  const { array } = DTYPE_MAP[dt];
  const out = new array(vals.length);
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i];
    if (dt === "F16") (out as Uint16Array)[i] = simF16Bits(Number(v));
    else if (dt === "S64" || dt === "U64") (out as BigInt64Array)[i] = BigInt(v);
    else (out as Float64Array)[i] = Number(v);
  }
  return out;
}

/** A tensor's dense values as numbers (float16 decoded from its bits, 64-bit ints through Number). */
function denseNumbers(t: Tensor): number[] {
  const d = t.dense();
  if (t.dtype === "float16") return Array.from(new Uint16Array(d.buffer, d.byteOffset, t.size), simF16Value);
  return values(d, Number);
}

/** The bytes of a tensor's raw (padded) view. */
function rawBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Asserts numbers are identical (Object.is: -0, NaN and infinities included). */
function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (all: ${Array.from(actual)})`);
    }
  }
}

/** Offsets in bytes of every element of a strided layout, in dense order. */
function elementOffsets(shape: readonly number[], strides: readonly number[]): number[] {
  const out: number[] = [];
  for (let j = 0; j < simCount(shape); j++) {
    let off = 0;
    let k = j;
    for (let d = shape.length - 1; d >= 0; d--) {
      off += (k % shape[d]) * strides[d];
      k = Math.floor(k / shape[d]);
    }
    out.push(off);
  }
  return out;
}

/** Dequantizes like the shim's toFloat32: float((q - zp) * scale). */
function dequant(q: number, scale: number, zp: number): number {
  return Math.fround((q - zp) * Math.fround(scale));
}

/** Quantizes a float32 like the shim's quantize feeds: round half even of v / scale + zp, clamped. */
function quant(v: number, scale: number, zp: number, lo: number, hi: number): number {
  const q = simRoundHalfEven(Math.fround(v) / Math.fround(scale) + zp);
  return Math.min(hi, Math.max(lo, q));
}

// ---- metadata --------------------------------------------------------------------------------------

test("hbdnn: every S100 element type maps to its edgerun dtype and round-trips through padded layouts", () => {
  for (const dt of Object.keys(DTYPE_MAP)) {
    const es = simElemSize(dt as never);
    // Rows padded by 8 bytes on the input, by a whole 16-byte block on the output.
    const spec: SimModelSpec = {
      name: `dtype_${dt}`,
      inputs: [{ name: "x", dtype: dt as never, shape: [2, 3], stride: [3 * es + 8, es] }],
      outputs: [{ name: "y", dtype: dt as never, shape: [2, 3], stride: [3 * es + 16, es], a: 2, b: -1 }],
    };
    using model = open(simModelFile(spec), { backend: "hbdnn" });
    const { dtype } = DTYPE_MAP[dt];
    assert.equal(model.backend, "hbdnn");
    assert.equal(model.inputs[0].dtype, dtype, dt);
    assert.equal(model.outputs[0].dtype, dtype, dt);
    assert.deepEqual(model.inputs[0].strides, [3 * es + 8, es], dt);
    assert.deepEqual(model.outputs[0].strides, [3 * es + 16, es], dt);
    assert.equal(model.inputs[0].padded, true);
    assert.equal(model.outputs[0].padded, true);
    const x = DTYPE_VALUES[dt];
    const [y] = model.run(feedOf(dt, x));
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual(y.strides, [3 * es + 16, es]);
    const [expected] = simExpected(spec, [x]);
    assertSame(denseNumbers(y), expected, `${dt} output`);
    // The raw view, read through the model's strides, holds the same values.
    assertSame(simDecodeTensor(dt as never, rawBytes(y.data), [2, 3], y.strides), expected, `${dt} raw view`);
  }
});

test("hbdnn: S4/U4 tensors are refused as UNSUPPORTED when the model opens", () => {
  for (const dt of ["S4", "U4"] as const) {
    const path = simModelFile({
      name: `nibble_${dt}`,
      inputs: [{ name: "x", dtype: dt, shape: [4] }],
      outputs: [{ name: "y", dtype: "F32", shape: [4] }],
    });
    throwsEdgerun(() => open(path), "UNSUPPORTED", { backend: "hbdnn", message: new RegExp(`input 'x'.*${dt}`) });
  }
});

test("hbdnn: shapes, padded strides and byteSize (alignedByteSize) are reported as the runtime gives them", () => {
  const spec: SimModelSpec = {
    name: "layouts",
    inputs: [
      { name: "dense", dtype: "F32", shape: [1, 3, 4, 5] },
      { name: "rows", dtype: "S16", shape: [2, 3, 5], stride: [192, 64, 2], alignedByteSize: 512 },
      { name: "ones", dtype: "U8", shape: [1, 4, 2], stride: [999, 2, 1] }, // a size-1 dim's stride is never stepped
    ],
    outputs: [
      { name: "o_dense", dtype: "F32", shape: [2, 2] },
      { name: "o_rows", dtype: "S8", shape: [3, 10], stride: [16, 1], alignedByteSize: 48 },
      { name: "o_big", dtype: "U16", shape: [2, 3], stride: [8, 2], alignedByteSize: 100 },
    ],
  };
  using model = open(simModelFile(spec));
  const [dense, rows, ones] = model.inputs;
  assert.deepEqual(dense.shape, [1, 3, 4, 5]);
  assert.deepEqual(dense.strides, simDenseStrides([1, 3, 4, 5], "F32"));
  assert.equal(dense.byteSize, 240);
  assert.equal(dense.padded, false);
  assert.equal(dense.dynamic, false);
  assert.equal(dense.quantization, null);
  assert.deepEqual(rows.strides, [192, 64, 2]);
  assert.equal(rows.byteSize, 512, "alignedByteSize larger than the layout wins");
  assert.equal(rows.padded, true);
  assert.deepEqual(ones.strides, [999, 2, 1]);
  assert.equal(ones.padded, false, "strides of size-1 dims do not make a tensor padded");
  const [oDense, oRows, oBig] = model.outputs;
  assert.equal(oDense.byteSize, 16);
  assert.equal(oDense.padded, false);
  assert.deepEqual(oRows.strides, [16, 1]);
  assert.equal(oRows.byteSize, 48);
  assert.equal(oRows.padded, true);
  assert.equal(oBig.byteSize, 100);
  // The buffers behind the views are byteSize long.
  assert.equal(model.inputs[1].data.byteLength, 512);
  const outs = model.run([new Float32Array(60), new Int16Array(30), new Uint8Array(8)]);
  assert.equal(outs.get("o_rows").data.byteLength, 48);
  assert.equal(outs.get("o_big").data.byteLength, 100);
});

test("hbdnn: quantization parameters, per tensor and per axis, with and without zero points", () => {
  const spec: SimModelSpec = {
    name: "quant_meta",
    inputs: [
      { name: "t", dtype: "S8", shape: [2, 4], quant: { scales: [0.25] } },
      { name: "tz", dtype: "U8", shape: [4], quant: { scales: [0.5], zeroPoints: [128], axis: 0 } },
      { name: "a", dtype: "S16", shape: [1, 3, 2], quant: { scales: [0.5, 0.25, 2], zeroPoints: [1, -2, 3], axis: 1 } },
      { name: "plain", dtype: "S32", shape: [2], quantizeAxis: 0 },
    ],
    outputs: [{ name: "y", dtype: "S8", shape: [2, 3], quant: { scales: [0.1, 0.2, 0.3], axis: 1 } }],
  };
  using model = open(simModelFile(spec));
  const [t, tz, a, plain] = model.inputs;
  assert.deepEqual(Array.from(t.quantization!.scales), [0.25]);
  assert.deepEqual(Array.from(t.quantization!.zeroPoints), []);
  assert.equal(t.quantization!.axis, -1);
  assert.deepEqual(Array.from(tz.quantization!.scales), [0.5]);
  assert.deepEqual(Array.from(tz.quantization!.zeroPoints), [128]);
  assert.equal(tz.quantization!.axis, 0);
  assert.deepEqual(Array.from(a.quantization!.scales), [0.5, 0.25, 2]);
  assert.deepEqual(Array.from(a.quantization!.zeroPoints), [1, -2, 3]);
  assert.equal(a.quantization!.axis, 1);
  assert.equal(plain.quantization, null, "quantiType NONE has no quantization, whatever its axis");
  const y = model.outputs[0].quantization!;
  assert.deepEqual(Array.from(y.scales), [0.1, 0.2, 0.3].map(Math.fround));
  assert.equal(y.axis, 1);
});

test("hbdnn: NV12-style Y/UV inputs get their -1 strides filled with 32-byte-aligned rows", () => {
  const spec: SimModelSpec = {
    name: "nv12_fixed",
    inputs: [
      { name: "y", dtype: "U8", shape: [1, 220, 220, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
      { name: "uv", dtype: "U8", shape: [1, 110, 110, 2], stride: [-1, -1, 2, 1], dynStrideAlign: 32 },
      { name: "narrow", dtype: "U8", shape: [1, 3, 40, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
    ],
    outputs: [
      { name: "y_out", dtype: "U8", shape: [1, 220, 220, 1], source: 0 },
      { name: "uv_out", dtype: "U8", shape: [1, 110, 110, 2], source: 1, a: 1, b: 1 },
      { name: "narrow_out", dtype: "S16", shape: [1, 3, 40, 1], source: 2, a: -1 },
    ],
  };
  using model = open(simModelFile(spec));
  const [y, uv, narrow] = model.inputs;
  assert.deepEqual(narrow.strides, [192, 64, 1, 1], "40-byte rows round up to 64 (32-byte multiples, not 16)");
  assert.equal(narrow.byteSize, 192);
  assert.deepEqual(y.shape, [1, 220, 220, 1]);
  assert.deepEqual(y.strides, [49280, 224, 1, 1], "Y 1x220x220x1 => [49280,224,1,1] (A.7.4)");
  assert.equal(y.byteSize, 49280);
  assert.equal(y.padded, true);
  assert.equal(y.dynamic, false);
  assert.deepEqual(uv.strides, [24640, 224, 2, 1]);
  assert.equal(uv.byteSize, 24640);
  assert.equal(uv.padded, true);
  // The simulator refuses strides that are not multiples of 32: a run proves the filled ones are.
  const yData = Uint8Array.from({ length: 220 * 220 }, (_, i) => (i * 7) & 255);
  const uvData = Uint8Array.from({ length: 110 * 110 * 2 }, (_, i) => (i * 13) & 255);
  const nData = Uint8Array.from({ length: 120 }, (_, i) => 255 - i);
  const out = model.run({ y: yData, uv: uvData, narrow: nData });
  const [ey, euv, en] = simExpected(spec, [yData, uvData, nData]);
  assertSame(values(out.get("narrow_out").data, Number), en, "narrow_out");
  assertSame(values(out.get("y_out").data, Number), ey, "y_out");
  assertSame(values(out.get("uv_out").data, Number), euv, "uv_out");
  // The input buffers hold the rows at their padded offsets.
  const yView = model.inputs[0].data as Uint8Array;
  assert.equal(yView[224], yData[220], "row 1 starts at byte 224");
  assert.equal(yView[224 * 219 + 219], yData[220 * 219 + 219]);
});

const NV12_DYNAMIC: SimModelSpec = {
  name: "nv12_dynamic",
  inputs: [
    { name: "y", dtype: "U8", shape: [1, -1, -1, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
    { name: "uv", dtype: "U8", shape: [1, -1, -1, 2], stride: [-1, -1, 2, 1], dynStrideAlign: 32 },
  ],
  outputs: [
    { name: "first_y", dtype: "F32", shape: [1, 40], source: 0, a: 0.5 },
    { name: "first_uv", dtype: "S16", shape: [12], source: 1, a: -1, b: 3 },
  ],
};

/** Runs NV12_DYNAMIC on an h x w image; checks the input layout and the outputs. */
function runNv12(model: Model, h: number, w: number): void {
  const yData = Uint8Array.from({ length: h * w }, (_, i) => (i * 5 + h) & 255);
  const uvData = Uint8Array.from({ length: (h / 2) * (w / 2) * 2 }, (_, i) => (i * 3 + w) & 255);
  const out = model.run({
    y: { data: yData, shape: [1, h, w, 1] },
    uv: { data: uvData, shape: [1, h / 2, w / 2, 2] },
  });
  const row = Math.ceil(w / 32) * 32; // Y rows and UV rows are both w bytes, rounded up to 32
  assert.equal(model.inputs[0].data.byteLength, row * h, `Y ${h}x${w}: ${h} rows of ${row} bytes`);
  assert.equal(model.inputs[1].data.byteLength, row * (h / 2), `UV ${h / 2}x${w / 2}x2: rows of ${row} bytes`);
  const yView = model.inputs[0].data as Uint8Array;
  const uvView = model.inputs[1].data as Uint8Array;
  for (let r = 0; r < h; r++) {
    assert.deepEqual(
      Array.from(yView.subarray(r * row, r * row + w)),
      Array.from(yData.subarray(r * w, (r + 1) * w)),
      `Y row ${r}`,
    );
  }
  for (let r = 0; r < h / 2; r++) {
    assert.deepEqual(
      Array.from(uvView.subarray(r * row, r * row + w)),
      Array.from(uvData.subarray(r * w, (r + 1) * w)),
      `UV row ${r}`,
    );
  }
  const [e1, e2] = simExpected(NV12_DYNAMIC, [yData, uvData]);
  assertSame(denseNumbers(out[0]), e1, `first_y ${h}x${w}`);
  assertSame(denseNumbers(out[1]), e2, `first_uv ${h}x${w}`);
}

test("hbdnn: dynamic Y/UV inputs take their shape from the feed; buffers change only with the shape", () => {
  using model = open(simModelFile(NV12_DYNAMIC));
  const [y, uv] = model.inputs;
  assert.equal(y.dynamic, true);
  assert.deepEqual(y.shape, [1, -1, -1, 1]);
  assert.deepEqual(y.strides, [-1, -1, 1, 1]);
  assert.equal(y.byteSize, 0);
  assert.equal(y.padded, false);
  assert.equal(uv.dynamic, true);
  assert.deepEqual(uv.strides, [-1, -1, 2, 1]);
  throwsEdgerun(() => model.run(), "STATE", { message: /'y' has a dynamic shape/ });
  // Widths that are multiples of 32: the aligned layout is the dense one.
  runNv12(model, 4, 32);
  const view = model.inputs[0].data;
  runNv12(model, 4, 32);
  assert.equal(model.inputs[0].data, view, "same shape, same buffer");
  runNv12(model, 2, 64);
  assert.notEqual(model.inputs[0].data, view, "a new shape rebinds the view");
  runNv12(model, 6, 96);
  runNv12(model, 4, 32);
});

test(
  "hbdnn: dynamic Y/UV inputs whose width is not a multiple of 32 are written row by row at the aligned stride",
  () => {
    using model = open(simModelFile(NV12_DYNAMIC));
    runNv12(model, 4, 20);
    runNv12(model, 2, 40);
    runNv12(model, 6, 34);
  },
);

test("hbdnn: dynamic inputs fed with {quantize: true} are quantized into the aligned rows", () => {
  using model = open(simModelFile({
    name: "dyn_quant",
    inputs: [{
      name: "x",
      dtype: "S8",
      shape: [1, -1, -1, 1],
      stride: [-1, -1, 1, 1],
      dynStrideAlign: 32,
      quant: { scales: [0.5] },
    }],
    outputs: [{ name: "y", dtype: "F32", shape: [12], a: 1 }],
  }));
  const v = Float32Array.from({ length: 3 * 40 }, (_, i) => i * 0.75 - 20);
  const [y] = model.run({ data: v, shape: [1, 3, 40, 1], quantize: true });
  assert.equal(model.inputs[0].data.byteLength, 3 * 64);
  const q = Array.from(v, (f) => quant(f, 0.5, 0, -128, 127));
  assert.deepEqual(
    Array.from((model.inputs[0].data as Int8Array).subarray(64, 104)),
    q.slice(40, 80),
    "row 1 at byte 64",
  );
  assert.deepEqual(
    Array.from((model.inputs[0].data as Int8Array).subarray(128, 168)),
    q.slice(80, 120),
    "row 2 at byte 128",
  );
  assertSame(values(y.data, Number), q.slice(0, 12).map((x) => x * 0.5), "y");
});

test("hbdnn: model.info and describe() report the runtime, the layout and the tensors", () => {
  const spec: SimModelSpec = {
    name: "described",
    bpuCoreNum: 2,
    inputs: [
      { name: "img", dtype: "U8", shape: [1, 4, -1, 1], stride: [-1, -1, 1, 1], dynStrideAlign: 32 },
      { name: "feat", dtype: "S8", shape: [1, 3, 2], stride: [32, 8, 1], quant: { scales: [0.5, 1, 2], axis: 1 } },
    ],
    outputs: [{ name: "logits", dtype: "S16", shape: [1, 10], quant: { scales: [0.125], zeroPoints: [3] } }],
  };
  const path = simModelFile(spec);
  using model = open(path);
  assert.equal(model.name, "described");
  assert.equal(model.path, path);
  assert.equal(model.info.backend, "hbdnn");
  assert.match(String(model.info.soc), /simulator/);
  assert.equal(model.info.ucp_version, "3.13.6");
  assert.equal(model.info.dnn_version, "3.13.6_(simulator)");
  assert.equal(model.info.layout_dims, 10);
  assert.equal(model.info.model_bpu_cores, 2);
  // No /sys/devices/system/bpu off the board: the field is absent (on a board, a count).
  assert.ok(!("board_bpu_cores" in model.info) || typeof model.info.board_bpu_cores === "number");
  const text = model.describe();
  assert.match(text, /^model: described {2}\(.*\.hbm\)$/m);
  assert.match(
    text,
    /backend: hbdnn {2}\(soc=edgerun simulator.*ucp_version=3\.13\.6.*layout_dims=10.*model_bpu_cores=2/,
  );
  assert.match(text, /0\s+img\s+uint8\s+\[1,4,\?,1\]\s+\[\?,\?,1,1\]\s+dynamic\s+-/);
  assert.match(text, /1\s+feat\s+int8\s+\[1,3,2\]\s+\[32,8,1\] padded\s+32\s+axis 1, 3 scales/);
  assert.match(text, /0\s+logits\s+int16\s+\[1,10\]\s+\[20,2\]\s+20\s+scale 0\.125, zp 3/);
});

// ---- padding both ways ----------------------------------------------------------------------------

const PADDED: SimModelSpec = {
  name: "padded",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3, 5], stride: [256, 64, 4] }],
  outputs: [
    { name: "y", dtype: "F32", shape: [2, 3, 5], stride: [160, 32, 4], alignedByteSize: 320, a: 3, b: 0.5 },
    { name: "z", dtype: "S16", shape: [6, 5], stride: [16, 2], a: -1 },
  ],
};

test("hbdnn: dense feeds land in padded inputs element by element; padding bytes are left alone", () => {
  using model = open(simModelFile(PADDED));
  const view = model.inputs[0].data as Float32Array;
  const raw = rawBytes(view);
  raw.fill(0x77);
  const x = Float32Array.from({ length: 30 }, (_, i) => i * 1.5 - 7);
  const out = model.run(x);
  const offsets = elementOffsets([2, 3, 5], [256, 64, 4]);
  const isElement = new Uint8Array(raw.length);
  for (const off of offsets) isElement.fill(1, off, off + 4);
  for (let b = 0; b < raw.length; b++) {
    if (!isElement[b] && raw[b] !== 0x77) assert.fail(`input padding byte ${b} was overwritten (${raw[b]})`);
  }
  assertSame(offsets.map((o) => view[o / 4]), x, "input elements at their strided offsets");
  const [ey, ez] = simExpected(PADDED, [x]);
  assertSame(values(out.get("y").dense(), Number), ey, "y");
  assertSame(values(out.get("z").dense(), Number), ez, "z");
});

test("hbdnn: padded outputs: raw views keep the runtime's 0xCD padding, dense()/toFloat32()/copy() drop it", () => {
  using model = open(simModelFile(PADDED));
  const x = Float32Array.from({ length: 30 }, (_, i) => 100 - i);
  const out = model.run(x);
  const [ey, ez] = simExpected(PADDED, [x]);
  for (const [t, expected, region] of [[out.get("y"), ey, 320], [out.get("z"), ez, 16 * 5 + 10]] as const) {
    const raw = rawBytes(t.data);
    const es = t.dtype === "float32" ? 4 : 2;
    const offsets = elementOffsets(t.shape, t.strides);
    const isElement = new Uint8Array(raw.length);
    for (const off of offsets) isElement.fill(1, off, off + es);
    let padding = 0;
    for (let b = 0; b < region; b++) {
      if (isElement[b]) continue;
      padding++;
      if (raw[b] !== 0xcd) assert.fail(`${t.name}: padding byte ${b} is ${raw[b]}, not 0xCD`);
    }
    assert.ok(padding > 0, `${t.name} has padding`);
    assert.equal(t.data.length, raw.length / es, "data is the whole padded buffer");
    const dense = t.dense();
    assert.equal(dense.length, 30, "dense() has exactly the elements");
    assertSame(values(dense, Number), expected, `${t.name} dense()`);
    assertSame(Array.from(t.toFloat32()), Array.from(expected, Math.fround), `${t.name} toFloat32()`);
    const kept = t.copy();
    assert.equal(kept.padded, false);
    assert.deepEqual(kept.strides, simDenseStrides(t.shape, es === 4 ? "F32" : "S16"));
    assertSame(values(kept.data, Number), expected, `${t.name} copy()`);
  }
  // A copy survives the next run; the view does not.
  const kept = out.get("y").copy();
  const again = model.run(new Float32Array(30));
  assert.equal(again.get("y").dense()[0], 0.5);
  assert.equal(out.get("y").dense()[0], 0.5, "the earlier output is a view of the same buffer");
  assert.equal(kept.data[0], ey[0]);
});

test("hbdnn: zero-copy: writes into model.inputs[i].data at the strided offsets, run() with no feeds", () => {
  using model = open(simModelFile(PADDED));
  const view = model.inputs[0].data as Float32Array;
  assert.equal(view.byteLength, model.inputs[0].byteSize);
  // Garbage in the padding must not matter: the device reads through the strides.
  view.fill(NaN);
  const x = Float32Array.from({ length: 30 }, (_, i) => (i % 7) - 3.25);
  elementOffsets([2, 3, 5], model.inputs[0].strides).forEach((off, j) => (view[off / 4] = x[j]));
  const out = model.run();
  const [ey, ez] = simExpected(PADDED, [x]);
  assertSame(values(out.get("y").dense(), Number), ey, "y");
  assertSame(values(out.get("z").dense(), Number), ez, "z");
  // A second zero-copy write is seen too (no stale input).
  view[0] = 1000;
  assert.equal(model.run().get("y").dense()[0], Math.fround(3 * 1000 + 0.5));
  // The same view object stays valid across runs (no rebinding for fixed shapes).
  assert.equal(model.inputs[0].data, view);
});

test("hbdnn: feeds by record, by array, as Tensor (padded outputs feed a padded input), wrong feeds refused", () => {
  const spec: SimModelSpec = {
    name: "chain",
    inputs: [
      { name: "a", dtype: "S32", shape: [2, 3], stride: [32, 4] },
      { name: "b", dtype: "S32", shape: [2, 3] },
    ],
    outputs: [
      { name: "fromA", dtype: "S32", shape: [2, 3], stride: [16, 4], source: 0, a: 10 },
      { name: "fromB", dtype: "S32", shape: [2, 3], source: 1, b: 1 },
    ],
  };
  using model = open(simModelFile(spec));
  const a = new Int32Array([1, 2, 3, 4, 5, 6]);
  const b = new Int32Array([6, 5, 4, 3, 2, 1]);
  const byRecord = model.run({ b, a });
  assert.deepEqual(values(byRecord.get("fromA").dense(), Number), [10, 20, 30, 40, 50, 60]);
  assert.deepEqual(values(byRecord.get("fromB").dense(), Number), [7, 6, 5, 4, 3, 2]);
  const kept = byRecord.get("fromA").copy();
  // A padded output tensor fed straight back: its dense values go in.
  const chained = model.run([byRecord.get("fromA"), kept]);
  assert.deepEqual(values(chained.get("fromA").dense(), Number), [100, 200, 300, 400, 500, 600]);
  assert.deepEqual(values(chained.get("fromB").dense(), Number), [11, 21, 31, 41, 51, 61]);
  assert.throws(() => model.run({ a, b: new Float32Array(6) }), TypeError);
  assert.throws(() => model.run({ a, b: new Int32Array(5) }), RangeError);
  assert.throws(() => model.run(a), TypeError);
});

// ---- quantization ---------------------------------------------------------------------------------

test("hbdnn: int8/int16 outputs quantized per tensor: stored values and toFloat32() match the simulator", () => {
  const spec: SimModelSpec = {
    name: "q_out_tensor",
    inputs: [{ name: "x", dtype: "F32", shape: [2, 8] }],
    outputs: [
      { name: "q8", dtype: "S8", shape: [2, 8], quant: { scales: [0.05] }, a: 1 },
      { name: "q8z", dtype: "U8", shape: [2, 8], stride: [32, 1], quant: { scales: [0.1], zeroPoints: [100] } },
      { name: "q16", dtype: "S16", shape: [2, 8], quant: { scales: [0.001], zeroPoints: [-5] }, a: 2 },
    ],
  };
  using model = open(simModelFile(spec));
  const x = Float32Array.from([
    -10,
    -6.4,
    -6.35,
    -0.025,
    -0.075,
    0,
    0.025,
    0.075,
    1,
    2.5,
    6.35,
    6.4,
    10,
    13,
    15.5,
    100,
  ]);
  const out = model.run(x);
  const expected = simExpected(spec, [x]);
  out.forEach((t, i) => {
    const q = spec.outputs[i].quant!;
    assertSame(values(t.dense(), Number), expected[i], `${t.name} stored`);
    const zp = q.zeroPoints?.[0] ?? 0;
    assertSame(
      Array.from(t.toFloat32()),
      Array.from(expected[i], (v) => dequant(v, q.scales[0], zp)),
      `${t.name} toFloat32`,
    );
  });
  // Saturation really happened (the test would not see clamping bugs otherwise).
  assert.equal(out.get("q8").dense()[0], -128);
  assert.equal(out.get("q8").dense()[15], 127);
  assert.equal(out.get("q8z").dense()[0], 0);
});

test("hbdnn: outputs quantized per axis (inner, middle and outer axis) dequantize channel by channel", () => {
  const spec: SimModelSpec = {
    name: "q_out_axis",
    inputs: [{ name: "x", dtype: "F32", shape: [2, 3, 4] }],
    outputs: [
      {
        name: "inner",
        dtype: "S8",
        shape: [2, 3, 4],
        quant: { scales: [0.5, 0.25, 1, 2], zeroPoints: [0, 1, -1, 2], axis: 2 },
      },
      {
        name: "middle",
        dtype: "S16",
        shape: [2, 3, 4],
        stride: [64, 16, 2],
        quant: { scales: [0.01, 0.1, 1], axis: 1 },
      },
      { name: "outer", dtype: "U8", shape: [2, 3, 4], quant: { scales: [0.2, 0.05], zeroPoints: [128, 10], axis: 0 } },
    ],
  };
  using model = open(simModelFile(spec));
  const x = Float32Array.from({ length: 24 }, (_, i) => (i - 11) * 0.37);
  const out = model.run(x);
  const expected = simExpected(spec, [x]);
  out.forEach((t, i) => {
    const q = spec.outputs[i].quant!;
    const shape = spec.outputs[i].shape;
    const axis = q.axis!;
    let inner = 1;
    for (let d = axis + 1; d < shape.length; d++) inner *= shape[d];
    const want = Array.from(expected[i], (v, j) => {
      const c = Math.floor(j / inner) % shape[axis];
      return dequant(v, q.scales[c], q.zeroPoints?.[c] ?? 0);
    });
    assertSame(values(t.dense(), Number), expected[i], `${t.name} stored`);
    assertSame(Array.from(t.toFloat32()), want, `${t.name} toFloat32`);
    assert.deepEqual(Array.from(t.quantization!.scales), q.scales.map(Math.fround));
  });
});

test("hbdnn: {quantize: true} quantizes float32 into int8/uint8/int16 inputs: round half to even, clamp", () => {
  const spec: SimModelSpec = {
    name: "q_in",
    inputs: [
      { name: "s8", dtype: "S8", shape: [12], quant: { scales: [0.5] } },
      { name: "u8", dtype: "U8", shape: [12], stride: [2], quant: { scales: [0.5], zeroPoints: [10] } },
      { name: "s16", dtype: "S16", shape: [12], quant: { scales: [0.25], zeroPoints: [-3] } },
    ],
    outputs: [
      { name: "d8", dtype: "F64", shape: [12], source: 0 },
      { name: "du8", dtype: "F64", shape: [12], source: 1 },
      { name: "d16", dtype: "F64", shape: [12], source: 2 },
    ],
  };
  using model = open(simModelFile(spec));
  // Halves of the scale: 0.25 / 0.5 = 0.5 -> 0, 0.75 -> 1.5 -> 2, -0.25 -> -0.5 -> -0, -0.75 -> -2, 1.25 -> 2.5 -> 2.
  const v = Float32Array.from([0.25, 0.75, -0.25, -0.75, 1.25, 1.75, 63.75, 63.25, 1000, -1000, 0.1, -64.25]);
  const out = model.run({
    s8: { data: v, quantize: true },
    u8: { data: v, quantize: true },
    s16: { data: v.map((f) => f * 200), quantize: true },
  });
  const qs8 = Array.from(v, (f) => quant(f, 0.5, 0, -128, 127));
  const qu8 = Array.from(v, (f) => quant(f, 0.5, 10, 0, 255));
  const qs16 = Array.from(v.map((f) => f * 200), (f) => quant(f, 0.25, -3, -32768, 32767));
  assert.deepEqual(qs8.slice(0, 6), [0, 2, 0, -2, 2, 4], "the reference itself rounds half to even");
  assert.deepEqual(values(model.inputs[0].data, Number), qs8);
  assert.deepEqual(elementOffsets([12], [2]).map((o) => model.inputs[1].data[o]), qu8);
  assert.deepEqual(values(model.inputs[2].data, Number), qs16);
  assert.equal(qs16[8], 32767);
  assert.equal(qs16[9], -32768);
  const expected = simExpected(spec, [qs8, qu8, qs16]);
  out.forEach((t, i) => assertSame(values(t.data, Number), expected[i], t.name));
});

test("hbdnn: {quantize: true} on per-axis inputs uses each channel's scale and zero point", () => {
  const spec: SimModelSpec = {
    name: "q_in_axis",
    inputs: [
      { name: "inner", dtype: "S8", shape: [2, 3], quant: { scales: [0.5, 0.25, 2], zeroPoints: [0, 1, -1], axis: 1 } },
      { name: "outer", dtype: "S16", shape: [3, 2], stride: [8, 2], quant: { scales: [0.1, 1, 10], axis: 0 } },
    ],
    outputs: [
      { name: "di", dtype: "F32", shape: [2, 3], source: 0 },
      { name: "do", dtype: "F32", shape: [3, 2], source: 1 },
    ],
  };
  using model = open(simModelFile(spec));
  const inner = Float32Array.from([1, 1, 1, -3.3, 0.125, 300]);
  const outer = Float32Array.from([1.25, -0.35, 2.5, 3.5, 25, 1e6]);
  const out = model.run({ inner: { data: inner, quantize: true }, outer: { data: outer, quantize: true } });
  const qi = Array.from(inner, (f, j) => quant(f, [0.5, 0.25, 2][j % 3], [0, 1, -1][j % 3], -128, 127));
  const qo = Array.from(outer, (f, j) => quant(f, [0.1, 1, 10][Math.floor(j / 2)], 0, -32768, 32767));
  assert.deepEqual(values(model.inputs[0].data, Number), qi);
  assert.deepEqual(elementOffsets([3, 2], [8, 2]).map((o) => model.inputs[1].data[o / 2]), qo);
  const expected = simExpected(spec, [qi, qo]);
  out.forEach((t, i) => assertSame(values(t.data, Number), expected[i], t.name));
});

test("hbdnn: {quantize: true} converts float32 into float16/float64 inputs; bad quantize feeds are refused", () => {
  const spec: SimModelSpec = {
    name: "q_float",
    inputs: [
      { name: "h", dtype: "F16", shape: [6] },
      { name: "d", dtype: "F64", shape: [2] },
      { name: "i", dtype: "S8", shape: [2] },
    ],
    outputs: [{ name: "y", dtype: "F64", shape: [6], source: 0 }],
  };
  using model = open(simModelFile(spec));
  const h = Float32Array.from([1, 1 / 3, 65504, 70000, 2 ** -24, -0.1]);
  const out = model.run({
    h: { data: h, quantize: true },
    d: { data: Float32Array.from([0.1, 2]), quantize: true },
    i: new Int8Array(2),
  });
  const bits = Array.from(h, (f) => simF16Bits(f));
  assert.deepEqual(Array.from(new Uint16Array(model.inputs[0].data.buffer, model.inputs[0].data.byteOffset, 6)), bits);
  assert.deepEqual(values(model.inputs[1].data, Number), [Math.fround(0.1), 2]);
  assertSame(values(out[0].data, Number), bits.map(simF16Value), "y");
  // An integer input without quantization parameters has nothing to quantize with.
  assert.throws(
    () =>
      model.run({ h: new Uint16Array(6), d: new Float64Array(2), i: { data: new Float32Array(2), quantize: true } }),
    TypeError,
  );
  // Non-finite values are refused before anything is written.
  const before = Array.from(model.inputs[0].data as Uint16Array);
  throwsEdgerun(
    () =>
      model.run({
        h: { data: Float32Array.from([1, 2, NaN, 4, 5, 6]), quantize: true },
        d: new Float64Array(2),
        i: new Int8Array(2),
      }),
    "INVALID_ARGUMENT",
    { message: /not finite/ },
  );
  assert.deepEqual(Array.from(model.inputs[0].data as Uint16Array), before);
});

// ---- packs -------------------------------------------------------------------------------------------

const PACK: SimModelSpec[] = [
  {
    name: "first",
    inputs: [{ name: "x", dtype: "F32", shape: [4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [4], a: 2 }],
  },
  {
    name: "second",
    inputs: [{ name: "p", dtype: "S8", shape: [3] }, { name: "q", dtype: "U8", shape: [3] }],
    outputs: [{ name: "r", dtype: "S32", shape: [3], source: 1, a: -1 }],
  },
  { name: "no_inputs", inputs: [], outputs: [{ name: "iota", dtype: "U16", shape: [2, 3], a: 3, b: 1 }] },
];

test("hbdnn: a pack opens its first model by default and any model by name", () => {
  const path = simModelFile(PACK, "pack");
  using first = open(path);
  assert.equal(first.name, "first");
  assert.deepEqual(first.inputs.map((i) => i.name), ["x"]);
  using second = open(path, { model: "second" });
  assert.equal(second.name, "second");
  assert.deepEqual(second.inputs.map((i) => i.name), ["p", "q"]);
  assert.deepEqual(values(second.run([new Int8Array([1, 2, 3]), new Uint8Array([4, 5, 6])])[0].data, Number), [
    -4,
    -5,
    -6,
  ]);
  using none = open(path, { model: "no_inputs", backend: "hbdnn" });
  assert.equal(none.inputs.length, 0);
  assert.deepEqual(values(none.run()[0].data, Number), [1, 4, 7, 10, 13, 16]);
  assert.deepEqual(values(first.run(new Float32Array([1, 2, 3, 4]))[0].data, Number), [2, 4, 6, 8]);
  throwsEdgerun(() => open(path, { model: "third" }), "NOT_FOUND", { message: /first, second, no_inputs/ });
});

test("hbdnn: openAll() returns every model by name; each runs and closes on its own", () => {
  const path = simModelFile(PACK, "pack");
  const models = openAll(path);
  try {
    assert.deepEqual([...models.keys()], ["first", "second", "no_inputs"]);
    for (const [name, m] of models) assert.equal(m.name, name);
    models.get("first")!.close();
    // The pack stays loaded while any of its models is open.
    assert.deepEqual(values(models.get("no_inputs")!.run()[0].data, Number), [1, 4, 7, 10, 13, 16]);
    assert.deepEqual(
      values(models.get("second")!.run({ p: new Int8Array(3), q: new Uint8Array([9, 8, 7]) })[0].data, Number),
      [-9, -8, -7],
    );
    throwsEdgerun(() => models.get("first")!.run(new Float32Array(4)), "CLOSED");
  } finally {
    for (const m of models.values()) m.close();
  }
});

// ---- scheduling options ------------------------------------------------------------------------------

const SIMPLE: SimModelSpec = {
  name: "simple",
  inputs: [{ name: "x", dtype: "F32", shape: [4] }],
  outputs: [{ name: "y", dtype: "F32", shape: [4], a: 1, b: 1 }],
};

test("hbdnn: priority and customId reach the simulator (its completion log records the customId)", () => {
  using model = open(simModelFile(SIMPLE));
  const x = new Float32Array([1, 2, 3, 4]);
  sim.reset();
  for (const [priority, customId] of [[0, 0], [255, 42], [254, -7], [1, 2147483647], [200, -2147483648]]) {
    assert.deepEqual(values(model.run(x, { priority, customId })[0].data, Number), [2, 3, 4, 5]);
  }
  assert.deepEqual(sim.completionLog(), [0, 42, -7, 2147483647, -2147483648]);
  assert.throws(() => model.run(x, { priority: 256 }), RangeError);
});

test("hbdnn: cores: [0] runs; a core the SoC lacks is INVALID_ARGUMENT from hbUCPSubmitTask (-100001)", async () => {
  await sim.with({ cores: 1 }, () => {
    using model = open(simModelFile(SIMPLE));
    const x = new Float32Array([1, 2, 3, 4]);
    assert.equal(sim.counter("cores"), 1);
    for (const cores of [[0], 0b0001, 0, undefined]) {
      assert.deepEqual(values(model.run(x, { cores })[0].data, Number), [2, 3, 4, 5], `cores ${cores}`);
    }
    for (const cores of [[1], [0, 3], 0b0100]) {
      throwsEdgerun(() => model.run(x, { cores }), "INVALID_ARGUMENT", {
        vendorCode: -100001,
        backend: "hbdnn",
        call: "hbUCPSubmitTask",
        vendorMessage: /INVALID_ARGUMENT/,
      });
    }
    // The failed submits leaked no task and the model still runs.
    assert.equal(sim.counter("tasks_live"), 0);
    assert.deepEqual(values(model.run(x)[0].data, Number), [2, 3, 4, 5]);
    sim.setCoreCount(2);
    assert.deepEqual(values(model.run(x, { cores: [1] })[0].data, Number), [2, 3, 4, 5], "core 1 exists now");
    assert.deepEqual(values(model.run(x, { cores: [0, 1] })[0].data, Number), [2, 3, 4, 5]);
  });
});

test("hbdnn: a model compiled for 2 BPU cores needs a SoC with 2 and runs on cores 0..1, never on 'any core' (async, never sync)", async () => {
  await sim.with({ cores: 1 }, () => {
    using model = open(simModelFile({ ...SIMPLE, name: "dual", bpuCoreNum: 2 }));
    assert.equal(model.info.model_bpu_cores, 2);
    const x = new Float32Array([1, 2, 3, 4]);
    throwsEdgerun(() => model.run(x), "INVALID_ARGUMENT", { vendorCode: -100001, call: "hbUCPSubmitTask" });
    sim.setCoreCount(2);
    const before = sim.counter("sync_infer");
    // No cores option: cores 0 and 1 (the runtime refuses "any core" for a multi-core model).
    assert.deepEqual(values(model.run(x)[0].data, Number), [2, 3, 4, 5]);
    assert.equal(sim.counter("sync_infer"), before, "the shim never uses hbDNNInferV2's synchronous mode");
    // One core for a 2-core model: refused by edgerun before submit (the runtime's code is unverified).
    throwsEdgerun(() => model.run(x, { cores: [1] }), "INVALID_ARGUMENT", { message: /compiled for 2 BPU cores/ });
  });
});

// ---- timeouts -----------------------------------------------------------------------------------------

test("hbdnn: a run that ends within timeoutMs succeeds and takes the simulated latency", async () => {
  await sim.with({ latencyUs: 30_000 }, () => {
    using model = open(simModelFile(SIMPLE));
    const t0 = performance.now();
    const [y] = model.run(new Float32Array([0, 0, 0, 1]), { timeoutMs: 5000 });
    const ms = performance.now() - t0;
    assert.deepEqual(values(y.data, Number), [1, 1, 1, 2]);
    assert.ok(ms >= 29, `took ${ms} ms, the simulated latency is 30 ms`);
  });
});

test("hbdnn: a run past timeoutMs fails with TIMEOUT (-200002); the model keeps working; no task or buffer leaks", async () => {
  const path = simModelFile(SIMPLE);
  const memBefore = sim.counter("mem_live");
  const before = sim.counters();
  await sim.with({ latencyUs: 1000 }, async () => {
    using model = open(path);
    // The device holds the task: the run gives up at its deadline, not when the task ends.
    await withHold(sim, () => {
      const t0 = performance.now();
      const err = throwsEdgerun(() => model.run(new Float32Array([1, 1, 1, 1]), { timeoutMs: 20 }), "TIMEOUT", {
        vendorCode: -200002,
        backend: "hbdnn",
        call: "hbUCPWaitTaskDone",
        vendorMessage: /TIMEOUT/,
      });
      assert.ok(performance.now() - t0 >= 19, "waited for the timeout");
      assert.equal(simHeld(sim), 1, "gave up while the task still ran");
      assert.match(err.message, /20 ms/);
      assert.equal(sim.counter("tasks_timed_out") - before.tasks_timed_out, 1);
    });
    // The next run queues behind it on the one core and succeeds, with the latency back to normal.
    sim.setLatencyUs(-1);
    const [y] = model.run(new Float32Array([1, 2, 3, 4]));
    assert.deepEqual(values(y.data, Number), [2, 3, 4, 5]);
    assert.equal(sim.counter("tasks_live"), 0, "both tasks are released");
    const done = await sim.waitFor(() => sim.counter("tasks_completed") - before.tasks_completed >= 2);
    assert.ok(done, "the simulator finished both tasks");
    assert.equal(sim.memCounter(model.inputs[0].data, "inflight"), 0);
  });
  const after = sim.counters();
  assert.equal(after.tasks_live, 0);
  assert.equal(after.tasks_created - before.tasks_created, 2);
  assert.equal(after.tasks_released - before.tasks_released, 2);
  assert.equal(after.mem_live, memBefore, "every buffer was freed at close");
  assert.equal(after.free_in_use - before.free_in_use, 0);
});

test("hbdnn: stats() of sync runs: device time covers the device's latency, end-to-end covers the device time", async () => {
  await sim.with({ latencyUs: 2000 }, () => {
    using model = open(simModelFile({
      name: "stats",
      inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
      outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 1, b: 0 }],
    }));
    for (let i = 0; i < 5; i++) model.run(new Float32Array(4));
    const s = model.stats();
    assert.equal(s.count, 5);
    // Lower bounds only: the simulator spends at least its latency on every task.
    assert.ok(s.device.min >= 2, JSON.stringify(s.device));
    assert.ok(s.endToEnd.min >= s.device.min, JSON.stringify(s));
  });
});

test("hbdnn: stats() of each sync run, feeds or none: end-to-end never less than the device time", async () => {
  // The device time is measured inside the end-to-end window; a record kept in whole microseconds
  // put its start up to 1 us early, so fast runs showed end-to-end < device.
  await sim.with({ latencyUs: 0 }, () => {
    using model = open(simModelFile({
      name: "order",
      inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
      outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 1, b: 0 }],
    }));
    const feed = new Float32Array(4);
    const short: string[] = [];
    for (let i = 0; i < 400; i++) {
      model.resetStats();
      if (i % 2) model.run(feed);
      else model.run();
      const s = model.stats();
      if (s.endToEnd.min < s.device.min) short.push(`run ${i}: ${s.endToEnd.min} < ${s.device.min}`);
    }
    assert.deepEqual(short.slice(0, 3), [], `${short.length} of 400 runs`);
  });
});
