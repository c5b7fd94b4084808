/**
 * The result of a run.
 * @module
 */
import type { Tensor } from "./tensor.ts";

/** Outputs of a run, in model order, also reachable by name. */
export class Outputs extends Array<Tensor> {
  /** Array methods (map, filter, ...) return plain arrays. */
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
  /** The output called name (throws RangeError if there is none). */
  get(name: string): Tensor {
    const t = this.find((o) => o.name === name);
    if (!t) throw new RangeError(`no output named '${name}'; outputs: ${this.map((o) => o.name).join(", ")}`);
    return t;
  }
  /** Outputs as a record by name. */
  byName(): Record<string, Tensor> {
    return Object.fromEntries(this.map((t) => [t.name, t]));
  }
}
