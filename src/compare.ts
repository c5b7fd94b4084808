/**
 * Output comparison: cosine similarity and absolute/relative differences.
 * @module
 */
import type { TypedArray } from "./dtype.ts";
import { Tensor } from "./tensor.ts";

/** The result of {@link compare}. */
export interface Comparison {
  /** Number of elements compared. */
  readonly count: number;
  /** Cosine similarity (1 when both are all-zero). */
  readonly cosine: number;
  /** Largest |a - b|. */
  readonly maxAbsDiff: number;
  /** Smallest |a - b|. */
  readonly minAbsDiff: number;
  /** Mean |a - b|. */
  readonly meanAbsDiff: number;
  /** Largest |a - b| / max(|b|, tiny). */
  readonly maxRelDiff: number;
  /** Index of the largest |a - b|. */
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

/** One line: `Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0`. */
export function formatComparison(c: Comparison): string {
  const g = (v: number) => (v === 0 ? "0.0" : v.toPrecision(4));
  return `Cosine Similarity: ${c.cosine.toFixed(4)}  diff: max=${g(c.maxAbsDiff)} min=${g(c.minAbsDiff)} ` +
    `mean=${g(c.meanAbsDiff)}`;
}
