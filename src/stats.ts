/**
 * Latency statistics of a model: device time (the native run) and end-to-end time (from the
 * call to the result), as hrt_model_exec perf and ais_bench print them.
 * @module
 */

/** Summary of one kind of time, in milliseconds. */
export interface TimeSummary {
  /** Mean. */
  readonly mean: number;
  /** Median. */
  readonly p50: number;
  /** 99th percentile. */
  readonly p99: number;
  /** Fastest. */
  readonly min: number;
  /** Slowest. */
  readonly max: number;
}

/** What model.stats() returns. */
export interface RunStats {
  /** Runs recorded since the last reset (percentiles use the latest `window` of them). */
  readonly count: number;
  /** Time spent in the native run (the device on NPU backends). */
  readonly device: TimeSummary;
  /** Time from the run() / runAsync() call to its result, queueing included. */
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
