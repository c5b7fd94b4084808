/** Every failure path of the hbdnn backend, against the simulator: files, models, libraries. */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import { dtypeModel } from "./fixtures/onnx_models.ts";
import { root, tempDir, tempFile, runScript } from "./helpers.ts";
import { simDir, simModelFile, throwsEdgerun, useSim } from "./sim_helpers.ts";
import { type SimModelSpec, writeSimModelFile } from "./sim/simfile.ts";

useSim();

const SPEC: SimModelSpec = {
  name: "ok",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 2] }],
  outputs: [{ name: "y", dtype: "S8", shape: [2, 2], quant: { scales: [0.5] } }],
};
const GOOD = writeSimModelFile([SPEC]);

const invalidModel = {
  vendorCode: -600002,
  backend: "hbdnn",
  call: "hbDNNInitializeFromFiles",
  vendorMessage: /INVALID_MODEL/,
};

test("hbdnn errors: a missing .hbm file is FILE", () => {
  const path = join(tempDir(), "no-such-model.hbm");
  throwsEdgerun(() => open(path), "FILE", { message: /does not exist/ });
  throwsEdgerun(() => open(path, { backend: "hbdnn" }), "FILE", { message: /no-such-model\.hbm/ });
});

test("hbdnn errors: a directory is FILE", () => {
  const dir = join(tempDir(), "a-directory.hbm");
  mkdirSync(dir, { recursive: true });
  throwsEdgerun(() => open(dir), "FILE", { message: /directory/ });
  throwsEdgerun(() => open(dir, { backend: "hbdnn" }), "FILE", { message: /directory/ });
});

test("hbdnn errors: an empty .hbm file is INVALID_MODEL", () => {
  throwsEdgerun(() => open(tempFile("empty.hbm", new Uint8Array(0))), "INVALID_MODEL", { message: /empty/ });
});

test("hbdnn errors: truncated files (every length) are INVALID_MODEL with the runtime's code and text", () => {
  for (let n = 1; n < GOOD.length; n += n < 40 ? 1 : 7) {
    const path = tempFile("truncated.hbm", GOOD.subarray(0, n));
    const e = throwsEdgerun(() => open(path), "INVALID_MODEL", invalidModel);
    assert.match(e.message, /cannot load .*truncated\.hbm/);
    assert.match(e.message, /-600002/);
  }
});

test("hbdnn errors: corrupt files (magic, version, size field, trailing bytes, bad fields) are INVALID_MODEL", () => {
  const corrupt: [string, (b: Uint8Array) => Uint8Array][] = [
    ["magic", (b) => (b[0] ^= 0xff, b)],
    ["version", (b) => (b[8] = 2, b)],
    ["model count 0", (b) => (b[12] = 0, b)],
    ["size field", (b) => (b[16] += 1, b)],
    ["trailing byte", (b) => Uint8Array.from([...b, 0])],
    ["name length past the end", (b) => (b[24] = 0xff, b[25] = 0xff, b)],
  ];
  for (const [what, damage] of corrupt) {
    const bytes = damage(GOOD.slice());
    throwsEdgerun(() => open(tempFile(`corrupt.hbm`, bytes)), "INVALID_MODEL", invalidModel);
    throwsEdgerun(() => open(tempFile(`corrupt.bin`, bytes), { backend: "hbdnn" }), "INVALID_MODEL", {
      vendorCode: -600002,
    });
    void what;
  }
  // A dtype outside 0..13 in the first input (after the header, name, 3 u32 and the tensor name).
  const at = 24 + 2 + SPEC.name.length + 20 + 2 + 1;
  const bad = GOOD.slice();
  new DataView(bad.buffer).setInt32(at, 99, true);
  throwsEdgerun(() => open(tempFile("bad-dtype.hbm", bad)), "INVALID_MODEL", invalidModel);
  // The untouched bytes load: the damage above is what was refused.
  using ok = open(tempFile("good.hbm", GOOD));
  assert.equal(ok.name, "ok");
});

test("hbdnn errors: an ONNX file forced onto hbdnn is INVALID_MODEL; a simulator file forced onto ort too", () => {
  const onnx = tempFile("forced.onnx", dtypeModel("float32"));
  throwsEdgerun(() => open(onnx, { backend: "hbdnn" }), "INVALID_MODEL", invalidModel);
  const hbm = simModelFile(SPEC);
  const e = throwsEdgerun(() => open(hbm, { backend: "ort" }), "INVALID_MODEL");
  assert.equal(e.backend, "ort");
  // Without an extension only ONNX content is recognised: anything else needs its backend named.
  const noExtension = tempFile("no-extension", GOOD);
  throwsEdgerun(() => open(noExtension), "UNSUPPORTED", { message: /\.hbm.*backend/ });
  using model = open(noExtension, { backend: "hbdnn" });
  assert.equal(model.backend, "hbdnn");
});

test("hbdnn errors: after failed opens and failed runs, models still open and run", () => {
  throwsEdgerun(() => open(tempFile("junk.hbm", "not a model")), "INVALID_MODEL");
  using model = open(simModelFile(SPEC));
  throwsEdgerun(() => model.run(new Float32Array(4), { cores: [3] }), "INVALID_ARGUMENT", { vendorCode: -100001 });
  const [y] = model.run(new Float32Array([1, -1, 0.25, 100]));
  assert.deepEqual(Array.from(y.data as Int8Array), [2, -2, 0, 127]);
  assert.deepEqual(Array.from(y.toFloat32()), [1, -1, 0, 63.5]);
});

test("hbdnn errors: a closed model fails with CLOSED; its views are emptied", () => {
  const model = open(simModelFile(SPEC));
  const input = model.inputs[0].data;
  const [y] = model.run(new Float32Array(4));
  model.close();
  model.close();
  throwsEdgerun(() => model.run(new Float32Array(4)), "CLOSED");
  throwsEdgerun(() => model.describe(), "CLOSED");
  assert.equal(input.length, 0);
  assert.equal(y.data.length, 0);
});

/** Runs a script in a fresh process of the current runtime (qemu-prefixed under tests/run-aarch64.sh). */
const probe = (model: string) => `
  import { open, EdgerunError } from ${JSON.stringify(join(root, "mod.ts"))};
  try { open(${JSON.stringify(model)}); console.log("opened"); }
  catch (e) { console.log(e instanceof EdgerunError ? e.code + " " + e.backend + " " + e.call + ": " + e.message : "other: " + e); }`;

test("hbdnn errors: missing vendor libraries are LIBRARY_NOT_FOUND naming every path tried", () => {
  const empty = mkdtempSync(join(tempDir(), "no-vendor-libs-"));
  const r = runScript(probe(simModelFile(SPEC)), { EDGERUN_HBDNN_LIB_DIR: empty });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^LIBRARY_NOT_FOUND hbdnn dlopen: /);
  assert.match(r.stdout, /libhbucp\.so \(D-Robotics UCP runtime\) not found/);
  assert.ok(r.stdout.includes(`${empty}/libhbucp.so`), r.stdout);
  assert.match(r.stdout, /\/usr\/hobot\/lib\/libhbucp\.so/);
  assert.match(r.stdout, /EDGERUN_HBDNN_LIB_DIR/);
});

test("hbdnn errors: libhbucp.so without libdnn.so is LIBRARY_NOT_FOUND naming libdnn.so", () => {
  const half = mkdtempSync(join(tempDir(), "ucp-only-"));
  copyFileSync(join(simDir(), "libhbucp.so"), join(half, "libhbucp.so"));
  const r = runScript(probe(simModelFile(SPEC)), { EDGERUN_HBDNN_LIB_DIR: half });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^LIBRARY_NOT_FOUND hbdnn dlopen: cannot open .*: libdnn\.so not found \(libhbucp\.so was: /);
  assert.ok(r.stdout.includes(`${half}/libhbucp.so`), r.stdout);
  assert.ok(r.stdout.includes(`${half}/libdnn.so`), r.stdout);
});

test("hbdnn errors: EDGERUN_HBDNN_LIB_DIR pointing at the simulator loads it in a fresh process", () => {
  const r = runScript(probe(simModelFile(SPEC)), { EDGERUN_HBDNN_LIB_DIR: simDir() });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "opened");
});
