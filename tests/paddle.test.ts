/** The three PaddleOCR models against onnxruntime-node (run under Node) on the same input. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { compare, formatComparison, open } from "../mod.ts";
import { test } from "./compat.ts";
import { deterministicInput, PADDLE_OCR_INPUTS, syntheticDocument } from "./fixtures/inputs.ts";
import { ocrModels, ortReference } from "./helpers.ts";

for (const [kind, spec] of Object.entries(PADDLE_OCR_INPUTS)) {
  test(`paddleocr ${kind}: matches onnxruntime-node (cosine >= 0.99999, max abs diff <= 1e-4)`, () => {
    const path = join(ocrModels, spec.file);
    const shape = [...spec.shape];
    const x = kind === "det" ? syntheticDocument(shape[2], shape[3]) : deterministicInput(shape, spec.seed);
    using model = open(path);
    const outputs = model.run({ data: x, shape });
    const reference = ortReference(path, [{ name: spec.input, dtype: "float32", shape, data: x }]);
    assert.equal(outputs.length, reference.length);
    for (const ref of reference) {
      const mine = outputs.get(ref.name);
      assert.deepEqual(mine.shape, ref.shape, `${ref.name} shape`);
      const expected = new Float32Array(ref.data.buffer, ref.data.byteOffset, ref.data.byteLength / 4);
      const c = compare(mine, expected);
      if (kind === "det") assert.ok(Math.max(...expected) > 0.5, "the detector found text in the synthetic page");
      assert.ok(c.cosine >= 0.99999, `${ref.name}: ${formatComparison(c)}`);
      assert.ok(c.maxAbsDiff <= 1e-4, `${ref.name}: ${formatComparison(c)}`);
    }
  });
}
