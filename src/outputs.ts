/**
 * The result of a run.
 * @module
 */
import type { Tensor } from "./tensor.ts";

/**
 * Outputs of a run, in model order, also reachable by name.
 *
 * @example
 * ```ts
 * import { open, type Outputs } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const outputs: Outputs = model.run();
 * const [first] = outputs; // by position
 * console.log(first.shape, outputs.get(model.outputs[0].name) === first); // or by name: true
 * ```
 */
export class Outputs extends Array<Tensor> {
  /**
   * Array methods (map, filter, ...) return plain arrays.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("model.onnx");
   * const shapes = model.run().map((t) => t.shape); // a plain Array, not an Outputs
   * ```
   */
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
  /**
   * The output called name (throws RangeError if there is none).
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * const outputs = model.run();
   * const boxes = outputs.get("boxes").toFloat32();
   * const scores = outputs.get("scores").toFloat32();
   * ```
   */
  get(name: string): Tensor {
    const t = this.find((o) => o.name === name);
    if (!t) throw new RangeError(`no output named '${name}'; outputs: ${this.map((o) => o.name).join(", ")}`);
    return t;
  }
  /**
   * Outputs as a record by name.
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * const { boxes, scores } = model.run().byName();
   * console.log(boxes.shape, scores.shape);
   * ```
   */
  byName(): Record<string, Tensor> {
    return Object.fromEntries(this.map((t) => [t.name, t]));
  }
}
