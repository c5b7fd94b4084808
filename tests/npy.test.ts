/** .npy reading (npyjs) and writing against files numpy wrote (tests/fixtures/npy/generate.py). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type DType, EdgerunError, hasFloat16Array, parseNpy, Tensor, toNpy } from "../mod.ts";
import { test } from "./compat.ts";
import { root, values } from "./helpers.ts";
import { simF16Value } from "./sim/simfile.ts";

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(join(root, "tests/fixtures/npy", `${name}.npy`)));

// What generate.py wrote, stated literally: dtype name, TypedArray, values (shape [2, 3]).
const T40 = 2n ** 40n;
const T61 = 2n ** 61n;
const PER_DTYPE: [DType, string, (number | bigint)[]][] = [
  ["float32", "Float32Array", [-1, -0.5, 0, 0.5, 1, 1.5]],
  ["float64", "Float64Array", [-0.5, -0.25, 0, 0.25, 0.5, 0.75]],
  ["float16", hasFloat16Array ? "Float16Array" : "Uint16Array", [-1, -0.5, 0, 0.5, 1, 1.5]],
  ["int8", "Int8Array", [-3, -2, -1, 0, 1, 2]],
  ["uint8", "Uint8Array", [0, 50, 100, 150, 200, 250]],
  ["int16", "Int16Array", [-3000, -2000, -1000, 0, 1000, 2000]],
  ["uint16", "Uint16Array", [0, 13000, 26000, 39000, 52000, 65000]],
  ["int32", "Int32Array", [-2e6, -1e6, 0, 1e6, 2e6, 3e6]],
  ["uint32", "Uint32Array", [0, 8e8, 16e8, 24e8, 32e8, 40e8]],
  ["int64", "BigInt64Array", [-3n * T40, -2n * T40, -T40, 0n, T40, 2n * T40]],
  ["uint64", "BigUint64Array", [0n, T61, 2n * T61, 3n * T61, 4n * T61, 5n * T61]],
  ["bool", "Uint8Array", [0, 1, 0, 1, 0, 1]],
];

for (const [dtype, arrayName, expected] of PER_DTYPE) {
  test(`npy: numpy's ${dtype} file reads with its values and writes back byte for byte`, () => {
    const bytes = fixture(dtype);
    const t = parseNpy(bytes);
    assert.equal(t.dtype, dtype);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.data.constructor.name, arrayName);
    const got = dtype === "float16" && !hasFloat16Array ? values(t.data, simF16Value) : values(t.data);
    assert.deepEqual(got, expected);
    assert.deepEqual(toNpy(t), bytes, "np.save's exact bytes");
  });
}

test("npy: 0-d, empty and 3-D arrays keep their shapes", () => {
  const scalar = parseNpy(fixture("scalar"));
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(values(scalar.data), [7.25]);
  const empty = parseNpy(fixture("empty"));
  assert.deepEqual(empty.shape, [0, 3]);
  assert.equal(empty.data.length, 0);
  const rank3 = parseNpy(fixture("rank3"));
  assert.deepEqual(rank3.shape, [2, 3, 4]);
  assert.deepEqual(values(rank3.data), Array.from({ length: 24 }, (_, i) => i));
  for (const name of ["scalar", "empty", "rank3"]) {
    assert.deepEqual(toNpy(parseNpy(fixture(name))), fixture(name), `${name}: np.save's exact bytes`);
  }
});

test("npy: big-endian files (which npyjs cannot read) are byte-swapped; the caller's bytes stay intact", () => {
  const bytes = fixture("bigendian");
  const before = bytes.slice();
  const t = parseNpy(bytes);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(values(t.data), [-1, -0.5, 0, 0.5, 1, 1.5]);
  assert.deepEqual(bytes, before);
  // Written back little-endian: the same bytes numpy wrote for the little-endian file.
  assert.deepEqual(toNpy(t), fixture("float32"));
});

test("npy: Fortran order and dtypes edgerun lacks are UNSUPPORTED EdgerunErrors", () => {
  assert.throws(() => parseNpy(fixture("fortran")), (e: unknown) => {
    assert.ok(e instanceof EdgerunError && e.code === "UNSUPPORTED");
    assert.match(e.message, /Fortran order/);
    return true;
  });
  assert.throws(() => parseNpy(fixture("complex")), (e: unknown) => {
    assert.ok(e instanceof EdgerunError && e.code === "UNSUPPORTED");
    assert.match(e.message, /'<c8' is not supported/);
    return true;
  });
});

test("npy: malformed bytes are RangeErrors; views into a larger buffer parse", () => {
  assert.throws(() => parseNpy(new Uint8Array([1, 2, 3])), /bad magic/);
  const good = fixture("float32");
  assert.throws(
    () => parseNpy(good.subarray(0, good.length - 4)),
    (e: unknown) => e instanceof RangeError && /truncated/.test(e.message),
  );
  assert.throws(() => parseNpy(good.subarray(0, good.length - 1)), RangeError);
  assert.throws(() => parseNpy(good.subarray(0, 60)), /header is truncated/);
  // A .npy inside a bigger buffer at an odd offset (a Node Buffer from a pool, say).
  const big = new Uint8Array(good.length + 7);
  big.set(good, 3);
  assert.deepEqual(values(parseNpy(big.subarray(3, 3 + good.length)).data), [-1, -0.5, 0, 0.5, 1, 1.5]);
  assert.throws(() => parseNpy("x" as unknown as Uint8Array), TypeError);
});

test("npy: every dtype written by edgerun reads back (values, shape), strided tensors densely", () => {
  for (const [dtype, , expected] of PER_DTYPE) {
    const t = parseNpy(fixture(dtype));
    const back = parseNpy(toNpy(new Tensor({ dtype, shape: [3, 2], data: t.data })));
    assert.deepEqual(back.shape, [3, 2]);
    assert.deepEqual(values(back.data), values(t.data), dtype);
    assert.equal(values(back.data).length, expected.length);
  }
  // Rows padded to 16 bytes: only the 3 real elements of each row are written.
  const padded = new Tensor({
    dtype: "float32",
    shape: [2, 3],
    strides: [16, 4],
    data: new Float32Array([1, 2, 3, 99, 4, 5, 6, 99]),
  });
  assert.deepEqual(values(parseNpy(toNpy(padded)).data), [1, 2, 3, 4, 5, 6]);
});
