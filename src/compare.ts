/**
 * Output comparison: cosine similarity and absolute/relative differences.
 * @module
 */
import type { TypedArray } from "./dtype.ts";
import { Tensor } from "./tensor.ts";

/**
 * The result of {@link compare}.
 *
 * @example
 * ```ts
 * import { compare, type Comparison, open } from "@edgerun/edgerun";
 * using onBoard = open("model.hbm");
 * using reference = open("model.onnx");
 * const c: Comparison = compare(onBoard.run()[0], reference.run()[0]);
 * if (c.cosine < 0.999) console.warn(`output differs: worst at ${c.worstIndex}`);
 * ```
 */
export interface Comparison {
  /**
   * Number of elements compared.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 2, 4]).count); // 3
   * ```
   */
  readonly count: number;
  /**
   * Cosine similarity in [-1, 1]: 1 when both are all-zero (or empty), 0 when only one is,
   * NaN when either holds a NaN or an infinity.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 0], [0, 1]).cosine); // 0
   * ```
   */
  readonly cosine: number;
  /**
   * Largest |a - b| (NaN when some difference is NaN).
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 2.5, 3]).maxAbsDiff); // 0.5
   * ```
   */
  readonly maxAbsDiff: number;
  /**
   * Smallest |a - b| (NaN differences are skipped; 0 for no elements).
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 2.5, 3]).minAbsDiff); // 0
   * ```
   */
  readonly minAbsDiff: number;
  /**
   * Mean |a - b| (NaN when some difference is NaN).
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2], [2, 4]).meanAbsDiff); // 1.5
   * ```
   */
  readonly meanAbsDiff: number;
  /**
   * Largest |a - b| / |b| (b is the reference; |b| below 1e-12 counts as 1e-12); NaN as above.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 3], [1, 2]).maxRelDiff); // 0.5
   * ```
   */
  readonly maxRelDiff: number;
  /**
   * Flat (C-order) index of the largest |a - b|: the first NaN difference if any, else 0 when
   * all are equal.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 5, 3]).worstIndex); // 1
   * ```
   */
  readonly worstIndex: number;
}

/**
 * What {@link compare} accepts: a Tensor, any TypedArray (bigint ones too) or a number array.
 *
 * @example
 * ```ts
 * import { type Comparable, compare } from "@edgerun/edgerun";
 * const reference: Comparable = new BigInt64Array([1n, 2n]);
 * console.log(compare([1, 2], reference).cosine); // 1
 * ```
 */
export type Comparable = Tensor | TypedArray | readonly number[];

function asNumbers(v: Comparable, which: string): Float32Array | Float64Array {
  if (v instanceof Tensor) {
    // Quantized and float16 tensors need dequantizing/converting; other dtypes are exact in float64.
    if (v.quantization || v.dtype === "float32" || v.dtype === "float16") return v.toFloat32();
    return Float64Array.from(v.dense() as ArrayLike<number | bigint>, Number);
  }
  if (v instanceof Float32Array || v instanceof Float64Array) return v;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return Float64Array.from(v as ArrayLike<number | bigint>, Number);
  throw new TypeError(`compare: ${which} must be a Tensor, a TypedArray or an array of numbers`);
}

/**
 * Compares two tensors (or arrays) of the same element count, element by element in C order;
 * b is the reference of the relative difference. Quantized tensors are dequantized first.
 *
 * @throws {RangeError} when the element counts differ.
 *
 * @example
 * ```ts
 * import { compare, formatComparison } from "@edgerun/edgerun";
 * const c = compare(new Float32Array([1, 2, 3]), new Float32Array([1, 2, 3.001]));
 * console.log(formatComparison(c));
 * ```
 */
export function compare(a: Comparable, b: Comparable): Comparison {
  const x = asNumbers(a, "a");
  const y = asNumbers(b, "b");
  if (x.length !== y.length) throw new RangeError(`cannot compare ${x.length} elements with ${y.length}`);
  let dot = 0, nx = 0, ny = 0, sum = 0, max = 0, min = Infinity, rel = 0, worst = 0;
  let nan = false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i], q = y[i];
    dot += p * q;
    nx += p * p;
    ny += q * q;
    const d = Math.abs(p - q);
    if (Number.isNaN(d)) {
      if (!nan) worst = i;
      nan = true;
      continue;
    }
    sum += d;
    if (d > max && !nan) (max = d), (worst = i);
    if (d < min) min = d;
    const r = d / Math.max(Math.abs(q), 1e-12);
    if (r > rel) rel = r;
  }
  let cosine: number;
  if (nx === 0 && ny === 0) cosine = 1;
  else if (nx === 0 || ny === 0) cosine = 0;
  else {
    // sqrt(nx * ny) is exactly nx for identical vectors (so they give exactly 1); the product of
    // square roots only when the product overflows.
    const product = nx * ny;
    const norm = Number.isFinite(product) && product > 0 ? Math.sqrt(product) : Math.sqrt(nx) * Math.sqrt(ny);
    cosine = Math.min(1, Math.max(-1, dot / norm));
  }
  return {
    count: x.length,
    cosine,
    maxAbsDiff: nan ? NaN : max,
    minAbsDiff: min === Infinity ? (nan ? NaN : 0) : min,
    meanAbsDiff: nan ? NaN : x.length ? sum / x.length : 0,
    maxRelDiff: nan ? NaN : rel,
    worstIndex: worst,
  };
}

/**
 * One line in the style of the S100 Python tools: `Cosine Similarity: 1.0000  diff: max=0.0
 * min=0.0 mean=0.0`, followed by the largest relative difference and where the largest absolute
 * difference is when there is one.
 *
 * @example
 * ```ts
 * import { compare, formatComparison } from "@edgerun/edgerun";
 * console.log(formatComparison(compare([1, 2, 3], [1, 2, 3])));
 * // Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0
 * ```
 */
export function formatComparison(c: Comparison): string {
  const g = (v: number) => (v === 0 ? "0.0" : v.toPrecision(4));
  const line = `Cosine Similarity: ${c.cosine.toFixed(4)}  diff: max=${g(c.maxAbsDiff)} min=${g(c.minAbsDiff)} ` +
    `mean=${g(c.meanAbsDiff)}`;
  return c.maxAbsDiff === 0 ? line : `${line}  rel=${g(c.maxRelDiff)}  worst=[${c.worstIndex}]`;
}
