/** compare() and formatComparison(): values, edge cases, quantized tensors. */
import assert from "node:assert/strict";
import { compare, formatComparison, Tensor } from "../mod.ts";
import { test } from "./compat.ts";

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test("compare: identical data prints the S100 tools' line exactly", () => {
  const c = compare(new Float32Array([0.1, 2, -3]), new Float32Array([0.1, 2, -3]));
  assert.equal(c.cosine, 1);
  assert.equal(c.count, 3);
  assert.equal(formatComparison(c), "Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0");
});

test("compare: cosine, abs, rel differences and the worst index against hand-computed values", () => {
  const a = [1, 2, 3, 4];
  const b = [1, 2.5, 2, 4];
  const c = compare(new Float64Array(a), b);
  const dot = 1 + 5 + 6 + 16;
  close(c.cosine, dot / (Math.sqrt(30) * Math.sqrt(1 + 6.25 + 4 + 16)));
  assert.equal(c.maxAbsDiff, 1);
  assert.equal(c.minAbsDiff, 0);
  assert.equal(c.meanAbsDiff, 1.5 / 4);
  assert.equal(c.maxRelDiff, 0.5); // |3 - 2| / 2
  assert.equal(c.worstIndex, 2);
  assert.equal(
    formatComparison(c),
    `Cosine Similarity: ${c.cosine.toFixed(4)}  diff: max=1.000 min=0.0 mean=0.3750  rel=0.5000  worst=[2]`,
  );
  // Opposite vectors.
  assert.equal(compare([1, -2], [-1, 2]).cosine, -1);
});

test("compare: zero vectors, empty arrays, NaN and infinities", () => {
  assert.equal(compare(new Float32Array(3), new Float32Array(3)).cosine, 1);
  assert.equal(compare(new Float32Array(3), new Float32Array([0, 1, 0])).cosine, 0);
  assert.equal(compare(new Float32Array([0, 1, 0]), new Float32Array(3)).cosine, 0);
  const empty = compare(new Float32Array(0), []);
  assert.deepEqual([empty.count, empty.cosine, empty.maxAbsDiff, empty.meanAbsDiff], [0, 1, 0, 0]);
  const withNaN = compare(new Float32Array([1, 5, NaN, 4, NaN]), new Float32Array([1, 2, 3, 4, 5]));
  assert.ok(Number.isNaN(withNaN.cosine));
  assert.ok(Number.isNaN(withNaN.maxAbsDiff));
  assert.ok(Number.isNaN(withNaN.meanAbsDiff));
  assert.equal(withNaN.minAbsDiff, 0);
  assert.equal(withNaN.worstIndex, 2, "the first NaN is the worst");
  assert.match(formatComparison(withNaN), /^Cosine Similarity: NaN {2}diff: max=NaN .* worst=\[2\]$/);
  assert.ok(Number.isNaN(compare([Infinity], [Infinity]).cosine));
});

test("compare: bigint arrays and int64 tensors compare exactly", () => {
  const big = 2n ** 53n;
  const c = compare(new BigInt64Array([big, 1n]), new BigUint64Array([big, 3n]));
  assert.equal(c.maxAbsDiff, 2);
  assert.equal(c.worstIndex, 1);
  const t = new Tensor({ dtype: "int64", shape: [2], data: new BigInt64Array([big + 2n, big]) });
  const u = new Tensor({ dtype: "int64", shape: [2], data: new BigInt64Array([big, big]) });
  // float32 would round 2^53 + 2 to 2^53; float64 keeps the difference.
  assert.equal(compare(t, u).maxAbsDiff, 2);
});

test("compare: quantized tensors are dequantized (per tensor and per axis)", () => {
  const q = new Tensor({
    dtype: "int8",
    shape: [2],
    data: new Int8Array([4, -6]),
    quantization: { scales: new Float32Array([0.5]), zeroPoints: new Int32Array([2]), axis: -1 },
  });
  const c = compare(q, new Float32Array([1, -4])); // (4-2)*0.5, (-6-2)*0.5
  assert.equal(c.maxAbsDiff, 0);
  const perAxis = new Tensor({
    dtype: "int16",
    shape: [2, 2],
    data: new Int16Array([2, 2, 2, 2]),
    quantization: { scales: new Float32Array([1, 0.25]), zeroPoints: new Int32Array(0), axis: 0 },
  });
  assert.equal(compare(perAxis, [2, 2, 0.5, 0.5]).maxAbsDiff, 0);
});

test("compare: mismatched counts are RangeErrors, other values TypeErrors", () => {
  assert.throws(
    () => compare(new Float32Array(2), new Float32Array(3)),
    (e: unknown) => e instanceof RangeError && /2 elements with 3/.test(e.message),
  );
  assert.throws(() => compare("abc" as unknown as number[], [1]), TypeError);
  assert.throws(() => compare([1], { length: 1 } as unknown as number[]), TypeError);
});
