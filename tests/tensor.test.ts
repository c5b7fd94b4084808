/** Tensor conversions on caller-made tensors (no native library involved). */
import assert from "node:assert/strict";
import { Tensor } from "../mod.ts";
import { test } from "./compat.ts";

// 1.0, -2.0, 0.5, 65504 (largest half), a subnormal (2^-24), +Infinity and NaN, as binary16 bits.
const HALF_BITS = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x7e00];
const HALF_VALUES = [1, -2, 0.5, 65504, 2 ** -24, Infinity, NaN];

test("float16 held as Uint16Array bits: dense() keeps the bits and toFloat32() decodes them", () => {
  const t = new Tensor({ dtype: "float16", shape: [HALF_BITS.length], data: Uint16Array.from(HALF_BITS) });
  const dense = t.dense();
  assert.deepEqual([...new Uint16Array(dense.buffer, dense.byteOffset, dense.length)], HALF_BITS);
  assert.deepEqual([...t.toFloat32()], HALF_VALUES);
});

test("dense() of an unpadded view with an offset copies only that view's elements", () => {
  const backing = Float32Array.from([9, 9, 1, 2, 3, 4, 9]);
  const t = new Tensor({ dtype: "float32", shape: [2, 2], data: backing.subarray(2, 6) });
  assert.deepEqual(Array.from(t.dense() as Iterable<number>), [1, 2, 3, 4]);
});

test("dense() of a row-padded tensor drops the padding", () => {
  // 2 rows of 3 int16 values, rows 8 bytes apart (one padding element each).
  const data = Int16Array.from([1, 2, 3, -1, 4, 5, 6, -1]);
  const t = new Tensor({ dtype: "int16", shape: [2, 3], data, strides: [8, 2] });
  assert.equal(t.padded, true);
  assert.deepEqual(Array.from(t.dense() as Iterable<number>), [1, 2, 3, 4, 5, 6]);
});
