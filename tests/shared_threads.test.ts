/** open({ sharedThreads: true }) on ort: sessions on ONNX Runtime's global thread pools (shim/backends/ort.c). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { ocrModels, tempFile, values } from "./helpers.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";

test("sharedThreads: models share the process's pools, give the same results, and say so in info", () => {
  const file = tempFile("shared_f32.onnx", dtypeModel("float32"));
  using shared = open(file, { sharedThreads: true });
  using own = open(file);
  assert.equal(shared.info.shared_threads, 1);
  assert.equal(own.info.shared_threads, 0);
  const x = new Float32Array([1, 2, 3, 4, 5, 6]);
  assert.deepEqual(values(shared.run(x)[0].data), values(own.run(x)[0].data));
  // A real model on the shared pools: the PaddleOCR classifier equals its per-session twin.
  const cls = join(ocrModels, "ch_ppocr_mobile_v2.0_cls_infer.onnx");
  using a = open(cls, { sharedThreads: true });
  using b = open(cls);
  const line = { data: new Float32Array(3 * 48 * 192).map((_, i) => Math.sin(i)), shape: [1, 3, 48, 192] };
  assert.deepEqual(values(a.run(line)[0].data), values(b.run(line)[0].data));
});

test("sharedThreads: thread counts cannot be combined with it; it must be a boolean", () => {
  const file = tempFile("shared_bad.onnx", dtypeModel("float32"));
  assert.throws(() => open(file, { sharedThreads: true, intraOpThreads: 2 }), (e) => e instanceof EdgerunError && e.code === "INVALID_ARGUMENT" && /intra_op_threads/.test(e.message));
  assert.throws(() => open(file, { sharedThreads: 1 as unknown as boolean }), TypeError);
  using off = open(file, { sharedThreads: false });
  assert.equal(off.info.shared_threads, 0);
});
