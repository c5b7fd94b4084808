/** .npy round trips and comparison helpers. */
import assert from "node:assert/strict";
import { compare, formatComparison, parseNpy, Tensor, toNpy } from "../mod.ts";
import { test } from "./compat.ts";
import { values } from "./helpers.ts";

test("npy: every dtype round-trips with its shape", () => {
  const cases = [
    new Tensor({ dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }),
    new Tensor({ dtype: "int64", shape: [3], data: new BigInt64Array([1n, -2n, 3n]) }),
    new Tensor({ dtype: "uint8", shape: [1, 1, 2], data: new Uint8Array([0, 255]) }),
    new Tensor({ dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) }),
    new Tensor({ dtype: "float64", shape: [], data: new Float64Array([3.5]) }),
  ];
  for (const t of cases) {
    const back = parseNpy(toNpy(t));
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.shape, t.shape);
    assert.deepEqual(values(back.data), values(t.data));
  }
});

test("npy: malformed files are RangeErrors", () => {
  assert.throws(() => parseNpy(new Uint8Array([1, 2, 3])), RangeError);
  const good = toNpy(new Tensor({ dtype: "float32", shape: [4], data: new Float32Array(4) }));
  assert.throws(() => parseNpy(good.subarray(0, good.length - 1)), /truncated/);
  const bigEndian = good.slice();
  const at = new TextDecoder("latin1").decode(good).indexOf("<f4");
  bigEndian[at] = ">".charCodeAt(0);
  assert.throws(() => parseNpy(bigEndian), /'>f4' is not supported/);
});

test("compare: identical data gives cosine 1 and zero differences", () => {
  const c = compare(new Float32Array([1, 2, 3]), new Float32Array([1, 2, 3]));
  assert.equal(c.cosine, 1);
  assert.equal(formatComparison(c), "Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0");
  const d = compare(new Float32Array([1, 2, 3]), new Float32Array([1, 2, 4]));
  assert.equal(d.maxAbsDiff, 1);
  assert.equal(d.worstIndex, 2);
  assert.ok(d.cosine < 1);
  assert.throws(() => compare(new Float32Array(2), new Float32Array(3)), RangeError);
});
