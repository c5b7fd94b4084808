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
   * Cosine similarity (1 when both are all-zero).
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 0], [0, 1]).cosine); // 0
   * ```
   */
  readonly cosine: number;
  /**
   * Largest |a - b|.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 2.5, 3]).maxAbsDiff); // 0.5
   * ```
   */
  readonly maxAbsDiff: number;
  /**
   * Smallest |a - b|.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 2.5, 3]).minAbsDiff); // 0
   * ```
   */
  readonly minAbsDiff: number;
  /**
   * Mean |a - b|.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2], [2, 4]).meanAbsDiff); // 1.5
   * ```
   */
  readonly meanAbsDiff: number;
  /**
   * Largest |a - b| / max(|b|, tiny).
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1.1, 2], [1, 2]).maxRelDiff); // about 0.1
   * ```
   */
  readonly maxRelDiff: number;
  /**
   * Index of the largest |a - b|.
   *
   * @example
   * ```ts
   * import { compare } from "@edgerun/edgerun";
   * console.log(compare([1, 2, 3], [1, 5, 3]).worstIndex); // 1
   * ```
   */
  readonly worstIndex: number;
}

function asFloat(v: Tensor | TypedArray | readonly number[]): Float32Array | Float64Array {
  if (v instanceof Tensor) return v.toFloat32();
  if (v instanceof Float32Array || v instanceof Float64Array) return v;
  return Float64Array.from(v as ArrayLike<number | bigint>, Number);
}

/**
 * Compares two tensors (or arrays) of the same element count; quantized tensors are
 * dequantized first.
 *
 * @example
 * ```ts
 * import { compare, formatComparison } from "@edgerun/edgerun";
 * const c = compare(new Float32Array([1, 2, 3]), new Float32Array([1, 2, 3.001]));
 * console.log(formatComparison(c));
 * ```
 */
export function compare(
  a: Tensor | TypedArray | readonly number[],
  b: Tensor | TypedArray | readonly number[],
): Comparison {
  const x = asFloat(a);
  const y = asFloat(b);
  if (x.length !== y.length) throw new RangeError(`cannot compare ${x.length} elements with ${y.length}`);
  let dot = 0, nx = 0, ny = 0, sum = 0, max = 0, min = Infinity, rel = 0, worst = 0;
  for (let i = 0; i < x.length; i++) {
    const p = x[i], q = y[i];
    dot += p * q;
    nx += p * p;
    ny += q * q;
    const d = Math.abs(p - q);
    sum += d;
    if (d > max || Number.isNaN(d)) (max = d), (worst = i);
    if (d < min) min = d;
    const r = d / Math.max(Math.abs(q), 1e-12);
    if (r > rel) rel = r;
  }
  const cosine = nx === 0 && ny === 0 ? 1 : dot / (Math.sqrt(nx) * Math.sqrt(ny) || 1);
  return {
    count: x.length,
    cosine,
    maxAbsDiff: max,
    minAbsDiff: x.length ? min : 0,
    meanAbsDiff: x.length ? sum / x.length : 0,
    maxRelDiff: rel,
    worstIndex: worst,
  };
}

/**
 * One line: `Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0`.
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
  return `Cosine Similarity: ${c.cosine.toFixed(4)}  diff: max=${g(c.maxAbsDiff)} min=${g(c.minAbsDiff)} ` +
    `mean=${g(c.meanAbsDiff)}`;
}
