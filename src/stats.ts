/**
 * Latency statistics of a model: device time (the native run) and end-to-end time (from the
 * call to the result), as hrt_model_exec perf and ais_bench print them.
 * @module
 */

/**
 * Summary of one kind of time, in milliseconds.
 *
 * @example
 * ```ts
 * import { open, type TimeSummary } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * for (let i = 0; i < 100; i++) model.run();
 * const line = (t: TimeSummary) => `mean ${t.mean.toFixed(2)} p50 ${t.p50.toFixed(2)} p99 ${t.p99.toFixed(2)} ms`;
 * console.log(line(model.stats().device));
 * ```
 */
export interface TimeSummary {
  /**
   * Mean.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 100; i++) model.run();
   * const fps = 1000 / model.stats().endToEnd.mean;
   * ```
   */
  readonly mean: number;
  /**
   * Median.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 100; i++) model.run();
   * console.log(`median ${model.stats().device.p50} ms`);
   * ```
   */
  readonly p50: number;
  /**
   * 99th percentile.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 100; i++) model.run();
   * if (model.stats().endToEnd.p99 > 33) console.warn("misses 30 Hz at p99");
   * ```
   */
  readonly p99: number;
  /**
   * Fastest.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 100; i++) model.run();
   * console.log(`best ${model.stats().device.min} ms`);
   * ```
   */
  readonly min: number;
  /**
   * Slowest.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * for (let i = 0; i < 100; i++) model.run();
   * console.log(`worst ${model.stats().endToEnd.max} ms`);
   * ```
   */
  readonly max: number;
}

/**
 * What model.stats() returns.
 *
 * @example
 * ```ts
 * import { open, type RunStats } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * model.run();
 * const stats: RunStats = model.stats();
 * console.log(stats.count, stats.device, stats.endToEnd);
 * ```
 */
export interface RunStats {
  /**
   * Runs recorded since the last reset (percentiles use the latest `window` of them).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * model.run();
   * model.run();
   * console.log(model.stats().count); // 2
   * ```
   */
  readonly count: number;
  /**
   * Time spent in the native run (the device on NPU backends).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * await using model = open("model.hbm");
   * await model.runAsync();
   * const { device, endToEnd } = model.stats();
   * console.log(`queueing and copies: ${(endToEnd.mean - device.mean).toFixed(2)} ms`);
   * ```
   */
  readonly device: TimeSummary;
  /**
   * Time from the run() / runAsync() call to its result, queueing included.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * model.run();
   * console.log(model.stats().endToEnd.p50);
   * ```
   */
  readonly endToEnd: TimeSummary;
}

const EMPTY: TimeSummary = Object.freeze({ mean: 0, p50: 0, p99: 0, min: 0, max: 0 });

/** A fixed-size window of samples plus running totals. */
class Series {
  readonly #window: Float64Array;
  #written = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;
  #count = 0;

  constructor(size: number) {
    this.#window = new Float64Array(size);
  }

  add(ms: number): void {
    this.#window[this.#written++ % this.#window.length] = ms;
    this.#sum += ms;
    this.#count++;
    if (ms < this.#min) this.#min = ms;
    if (ms > this.#max) this.#max = ms;
  }

  summary(): TimeSummary {
    if (this.#count === 0) return EMPTY;
    const n = Math.min(this.#written, this.#window.length);
    const sorted = this.#window.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))];
    return Object.freeze({ mean: this.#sum / this.#count, p50: at(0.5), p99: at(0.99), min: this.#min, max: this.#max });
  }
}

/** Records run times of one model. */
export class StatsRecorder {
  #device: Series;
  #endToEnd: Series;
  #count = 0;
  readonly #size: number;

  constructor(window = 10_000) {
    this.#size = window;
    this.#device = new Series(window);
    this.#endToEnd = new Series(window);
  }

  record(deviceMs: number, endToEndMs: number): void {
    this.#count++;
    this.#device.add(deviceMs);
    this.#endToEnd.add(endToEndMs);
  }

  snapshot(): RunStats {
    return Object.freeze({ count: this.#count, device: this.#device.summary(), endToEnd: this.#endToEnd.summary() });
  }

  reset(): void {
    this.#count = 0;
    this.#device = new Series(this.#size);
    this.#endToEnd = new Series(this.#size);
  }
}
