/** Every bad input of the Model API is a typed error; closed models fail loudly. */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { EdgerunError, loadLibrary, open } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel, multiIoModel, symbolicBatchModel } from "./fixtures/onnx_models.ts";
import { root, tempDir, tempFile, runScript } from "./helpers.ts";

const f32 = () => tempFile("f32.onnx", dtypeModel("float32"));
const multi = () => tempFile("multi.onnx", multiIoModel());

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof EdgerunError, `expected EdgerunError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test("errors: wrong feed count is a TypeError naming the inputs", () => {
  using model = open(multi());
  assert.throws(() => model.run([new Float32Array(4)]), /has 3 inputs, got 1 feeds/);
  assert.throws(() => model.run(new Float32Array(4)), (e) => e instanceof TypeError && /a, b, c/.test(e.message));
});

test("errors: unknown or missing input name is a TypeError", () => {
  using model = open(multi());
  const a = new Float32Array(4), b = new Float32Array(4), c = new BigInt64Array(1);
  assert.throws(() => model.run({ a, b, c, d: a }), (e) => e instanceof TypeError && /no input 'd'/.test(e.message));
  assert.throws(() => model.run({ a, b }), (e) => e instanceof TypeError && /missing feed for input 'c'/.test(e.message));
});

test("errors: wrong dtype is a TypeError naming the tensor and the expected type", () => {
  using model = open(f32());
  assert.throws(
    () => model.run(new Float64Array(6)),
    (e) => e instanceof TypeError && /input 'x' expects float32 \(Float32Array\), got Float64Array/.test(e.message),
  );
  assert.throws(() => model.run([1, 2, 3, 4, 5, 6] as unknown as Float32Array), TypeError);
  assert.throws(() => model.run(new DataView(new ArrayBuffer(24)) as unknown as Float32Array), TypeError);
});

test("errors: wrong length is a RangeError with the expected count", () => {
  using model = open(f32());
  assert.throws(
    () => model.run(new Float32Array(5)),
    (e) => e instanceof RangeError && /input 'x' expects 6 elements/.test(e.message),
  );
  assert.throws(() => model.run(new Float32Array(0)), RangeError);
  assert.throws(() => model.run({ data: new Float32Array(6), shape: [3, 2] }), RangeError);
});

test("errors: a detached buffer is refused before reaching native code", () => {
  using model = open(f32());
  const x = new Float32Array(6);
  (x.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  assert.throws(() => model.run(x), (e) => e instanceof TypeError && /detached/.test(e.message));
});

test("errors: a failed feed leaves earlier inputs unwritten", () => {
  using model = open(multi());
  const a = model.inputs[0].data as Float32Array;
  a.fill(7);
  assert.throws(() => model.run([new Float32Array(4).fill(1), new Float32Array(3), new BigInt64Array(1)]), RangeError);
  assert.deepEqual(Array.from(a), [7, 7, 7, 7]);
});

test("errors: dynamic inputs with several unknown dimensions need an explicit shape", () => {
  using model = open(tempFile("batch.onnx", symbolicBatchModel()));
  assert.throws(() => model.run(new Float32Array(4)), (e) => e instanceof RangeError && /multiple of 3/.test(e.message));
  assert.throws(() => model.run({ data: new Float32Array(3), shape: [1.5, 2] }), TypeError);
});

test("errors: run options are validated (priority, customId, cores, timeout, unknown keys)", () => {
  using model = open(f32());
  const x = new Float32Array(6);
  assert.throws(() => model.run(x, { priority: 256 }), RangeError);
  assert.throws(() => model.run(x, { priority: -1 }), RangeError);
  assert.throws(() => model.run(x, { priority: 1.5 }), RangeError);
  assert.throws(() => model.run(x, { customId: 2 ** 40 }), RangeError);
  assert.throws(() => model.run(x, { cores: [] }), RangeError);
  assert.throws(() => model.run(x, { cores: [7] }), RangeError);
  assert.throws(() => model.run(x, { timeoutMs: -1 }), RangeError);
  assert.throws(() => model.run(x, { timeoutMs: NaN }), RangeError);
  assert.throws(() => model.run(x, { prio: 1 } as never), (e) => e instanceof TypeError && /unknown run option 'prio'/.test(e.message));
  assert.equal(model.run(x, { priority: 255, customId: 3, cores: [0], timeoutMs: 1000 })[0].data.length, 6);
});

test("errors: open options are validated", () => {
  assert.throws(() => open(f32(), { intraOpThread: 2 } as never), TypeError);
  assert.throws(() => open(f32(), { intraOpThreads: -1 }), RangeError);
  assert.throws(() => open(f32(), { graphOptimization: "max" as never }), RangeError);
  assert.throws(() => open(f32(), { backend: "tpu" as never }), RangeError);
  assert.throws(() => open(""), TypeError);
  assert.throws(() => open(f32(), { model: "other" }), (e) => e instanceof EdgerunError && e.code === "NOT_FOUND");
});

test("errors: use after close fails loudly; close is idempotent; views are emptied", () => {
  const model = open(f32());
  const input = model.inputs[0].data;
  const [y] = model.run(new Float32Array(6).fill(2));
  assert.equal(y.data.length, 6);
  model.close();
  model.close();
  assert.equal(model.closed, true);
  throwsCode(() => model.run(new Float32Array(6)), "CLOSED");
  throwsCode(() => model.describe(), "CLOSED");
  throwsCode(() => model.inputs[0].data, "CLOSED");
  assert.equal(input.length, 0, "the input view no longer reaches freed memory");
  assert.equal(y.data.length, 0, "the output view no longer reaches freed memory");
  assert.throws(() => y.dense(), (e) => e instanceof EdgerunError && e.code === "CLOSED");
});

test("errors: `using` closes the model at the end of the block", () => {
  let escaped;
  {
    using model = open(f32());
    escaped = model;
  }
  assert.equal(escaped.closed, true);
});

test("errors: a missing model file is an EdgerunError with code FILE", () => {
  throwsCode(() => open(join(tempDir(), "no-such-model.onnx")), "FILE", /does not exist/);
});

test("errors: a directory is refused with code FILE", () => {
  const dir = join(tempDir(), "a-directory.onnx");
  mkdirSync(dir, { recursive: true });
  throwsCode(() => open(dir), "FILE", /directory/);
});

test("errors: empty, truncated and corrupt ONNX files are INVALID_MODEL", () => {
  throwsCode(() => open(tempFile("empty.onnx", new Uint8Array(0))), "INVALID_MODEL", /empty/);
  const good = dtypeModel("float32");
  throwsCode(() => open(tempFile("truncated.onnx", good.subarray(0, good.length >> 1))), "INVALID_MODEL");
  throwsCode(() => open(tempFile("garbage.onnx", "this is not a protobuf at all\n".repeat(20))), "INVALID_MODEL");
});

test("errors: native errors carry backend, call and the vendor message", () => {
  try {
    open(tempFile("garbage2.onnx", new Uint8Array(64).fill(0xff)));
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof EdgerunError);
    assert.equal(e.backend, "ort");
    assert.equal(e.call, "CreateSession");
    assert.ok(e.vendorCode > 0);
    assert.ok(e.vendorMessage.length > 0);
  }
});

test("errors: loading a second, different library is refused", () => {
  const info = loadLibrary();
  assert.equal(loadLibrary().path, info.path);
  assert.equal(info.abiVersion, 3);
  throwsCode(() => loadLibrary("/elsewhere/libedgerun.so"), "LOAD_FAILED", /already loaded/);
});

test("errors: a missing libedgerun names every path tried", () => {
  const script = `
    import { open, EdgerunError } from ${JSON.stringify(join(root, "mod.ts"))};
    try { open("x.onnx", { library: "/nonexistent/libedgerun.so" }); }
    catch (e) { console.log(e instanceof EdgerunError ? e.code + ": " + e.message : "other: " + e); }`;
  const r = runScript(script, { EDGERUN_LIB: "/also/missing/libedgerun.so" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^LOAD_FAILED: /);
  assert.match(r.stdout, /\/nonexistent\/libedgerun\.so \(option: not found\)/);
  const viaEnv = runScript(script.replace(`{ library: "/nonexistent/libedgerun.so" }`, "{}"), {
    EDGERUN_LIB: "/also/missing/libedgerun.so",
  });
  assert.match(viaEnv.stdout, /^LOAD_FAILED: .*\/also\/missing\/libedgerun\.so \(EDGERUN_LIB: not found\)/);
});

test("errors: a missing ONNX Runtime is LIBRARY_NOT_FOUND naming the path", () => {
  const script = `
    import { open, EdgerunError } from ${JSON.stringify(join(root, "mod.ts"))};
    try { open(${JSON.stringify(f32())}); }
    catch (e) { console.log(e instanceof EdgerunError ? e.code + " " + e.backend + ": " + e.message : "other: " + e); }`;
  const r = runScript(script, { EDGERUN_ORT_LIB: "/nonexistent/libonnxruntime.so.1" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^LIBRARY_NOT_FOUND ort: /);
  assert.match(r.stdout, /\/nonexistent\/libonnxruntime\.so\.1/);
});
