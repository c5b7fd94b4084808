/** The acl backend under adversarial use: long gear and format lists, library layouts, views and gears. */
import assert from "node:assert/strict";
import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import { runScript, values } from "./helpers.ts";
import { aclModelFile, aclSimDir, childPrelude, useAclSim } from "./acl_helpers.ts";

useAclSim();

test("acl: info lists of many gears or formats end at a whole entry ('+N more'), never a cut one", () => {
  const hw: [number, number][] = Array.from({ length: 100 }, (_, i) => [100000 + i, 1]);
  using model = open(aclModelFile({
    inputs: [{ name: "x", dtype: "UINT8", dims: [1, -1, -1] }],
    outputs: [{ name: "y", dtype: "UINT8", dims: [1, -1, -1] }],
    dynamicHW: hw,
  }, "adv-gears"));
  const gears = String(model.info.gears).split(",");
  const more = gears.pop()!;
  assert.match(more, /^\+(\d+) more$/);
  assert.equal(gears.length + Number(more.match(/\d+/)![0]), 100);
  gears.forEach((g, i) => assert.equal(g, `${100000 + i}x1`, `gear ${i} is one of the model's`));
  const inputs = Array.from({ length: 40 }, (_, i) => ({ name: `in${i}`, dtype: "FLOAT" as const, format: "NC1HWC0_C04" as const, dims: [2] }));
  using wide = open(aclModelFile({ inputs, outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "adv-formats"));
  const formats = String(wide.info.input_formats).split(",");
  const rest = formats.pop()!;
  assert.match(rest, /^\+\d+ more$/);
  assert.ok(formats.every((f) => f === "NC1HWC0_C04"), String(wide.info.input_formats));
  assert.equal(formats.length + Number(rest.match(/\d+/)![0]), 40);
});

test("acl: a CANN 9 compatibility libascendcl.so without aclmdl* falls back to libacl_rt.so + libacl_mdl.so beside it", () => {
  // The compat library stands in as a link to the simulator's libacl_rt.so (aclrt* only, no aclmdl*).
  const dir = mkdtempSync(join(tmpdir(), "acl-compat-"));
  for (const f of ["libacl_rt.so", "libacl_mdl.so"]) symlinkSync(join(aclSimDir("cann9"), f), join(dir, f));
  symlinkSync(join(aclSimDir("cann9"), "libacl_rt.so"), join(dir, "libascendcl.so"));
  const r = runScript(childPrelude() + `
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [2], a: 3 }] }, "compat");
    using model = open(path);
    console.log(JSON.stringify({ y: [...model.run(new Float32Array([1, 2])).get("y").data], library: model.info.library }));
  `, { EDGERUN_ACL_LIB_DIR: dir });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.deepEqual(out, { y: [3, 6], library: "libacl_rt.so+libacl_mdl.so" });
  // Without the pair, the missing symbol is still the error.
  const lone = mkdtempSync(join(tmpdir(), "acl-compat-lone-"));
  symlinkSync(join(aclSimDir("cann9"), "libacl_rt.so"), join(lone, "libascendcl.so"));
  const r2 = runScript(childPrelude() + `
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "compat-lone");
    try { open(path); console.log(JSON.stringify({ opened: true })); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  `, { EDGERUN_ACL_LIB_DIR: lone, LD_LIBRARY_PATH: "" });
  const out2 = JSON.parse(r2.stdout.trim().split("\n").pop()!);
  assert.equal(out2.code, "UNSUPPORTED", JSON.stringify(out2));
  assert.match(out2.message, /does not export aclmdl/);
});

test("acl: outputs of a model with gears follow the gear when the runtime reports them at the largest gear (no -1, as CANN documents) or as -1", () => {
  const sim = useAclSim();
  try {
    for (const [dimsMax, mode] of [[true, "host"], [true, "device"], [false, "host"], [false, "device"]] as const) {
      sim.setOutputDimsMax(dimsMax);
      sim.setRunMode(mode === "host" ? 1 : 0);
      {
        using model = open(aclModelFile({
          dynamicBatch: [1, 2, 4],
          inputs: [{ name: "x", dtype: "FLOAT", dims: [-1, 3] }],
          outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 3], a: 2 }, { name: "fixed", dtype: "INT32", dims: [2], source: -1 }],
        }, "adv-maxdims"));
        const y1 = model.run({ x: { data: new Float32Array([1, 2, 3]), shape: [1, 3] } }).get("y");
        assert.deepEqual(y1.shape, [1, 3], `${mode}: batch 1 gives one row`);
        assert.deepEqual(values(y1.data), [2, 4, 6]);
        const out = model.run({ x: { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] } });
        assert.deepEqual(out.get("y").shape, [2, 3]);
        assert.deepEqual(values(out.get("y").data), [2, 4, 6, 8, 10, 12]);
        assert.deepEqual(out.get("fixed").shape, [2]);
        assert.deepEqual(values(out.get("fixed").data), [0, 1]);
      }
      {
        using hw = open(aclModelFile({
          dynamicHW: [[2, 3], [4, 5]],
          inputs: [{ name: "img", dtype: "UINT8", dims: [1, -1, -1] }],
          outputs: [{ name: "o", dtype: "UINT8", dims: [1, -1, -1], b: 1 }],
        }, "adv-maxdims-hw"));
        const o = hw.run({ img: { data: new Uint8Array(6).fill(4), shape: [1, 2, 3] } }).get("o");
        assert.deepEqual(o.shape, [1, 2, 3], `${mode}: the 2x3 gear's output`);
        assert.deepEqual(values(o.data), [5, 5, 5, 5, 5, 5]);
      }
    }
  } finally {
    sim.setRunMode(1);
    sim.setOutputDimsMax(undefined);
  }
});

test("acl: closing a model while the device is in a fault state still frees its model, buffers and datasets", async () => {
  const sim = useAclSim();
  const before = sim.liveCounts();
  const handles = sim.counter("bad_handles");
  for (const mode of ["host", "device"] as const) {
    sim.setRunMode(mode === "host" ? 1 : 0);
    const model = open(aclModelFile({
      dynamicBatch: [1, 2],
      inputs: [{ name: "x", dtype: "FLOAT", dims: [-1, 2] }],
      outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 2] }],
    }, "adv-fault-close"));
    try {
      model.run({ x: { data: new Float32Array(2), shape: [1, 2] } });
      await model.runAsync({ x: { data: new Float32Array(4), shape: [2, 2] } }); // a second request
      sim.deviceFault(507033);
      assert.throws(() => model.run({ x: { data: new Float32Array(2), shape: [1, 2] } }), /507033/);
      model.close();
    } finally {
      sim.clearFaults();
      sim.setRunMode(1);
    }
    const after = sim.liveCounts();
    for (const k of ["models", "descs", "devBuffers", "hostBuffers", "datasets", "dataBuffers", "streams"] as const) {
      assert.equal(after[k], before[k], `${mode}: ${k} left after the close: ${after[k]} (before ${before[k]})`);
    }
  }
  assert.equal(sim.counter("bad_handles"), handles);
});
