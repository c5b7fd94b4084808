/**
 * Process exit after async runs. The shim's worker threads outlive every model, and Deno
 * dlcloses libedgerun.so while tearing down at exit: unless the library pins itself, a worker
 * then runs in unmapped code and the process dies of SIGSEGV (seen in ~10% of short scripts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "./compat.ts";
import { root, runScript } from "./helpers.ts";
import { simDir, simModelFile } from "./sim_helpers.ts";

test("exit: libedgerun.so stays mapped when the runtime closes it after async runs started its workers", () => {
  const model = simModelFile({
    name: "exit",
    inputs: [{ name: "x", dtype: "F32", shape: [4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [4] }],
  }, "exit");
  const script = `
    import { readFileSync } from "node:fs";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    import { loadNative } from ${JSON.stringify(join(root, "ffi/load.ts"))};
    const model = open(${JSON.stringify(model)});
    await Promise.all([1, 2, 3].map(() => model.runAsync(new Float32Array(4))));
    model.close();
    const native = loadNative();
    const mapped = () => readFileSync("/proc/self/maps", "utf8").includes(native.path);
    console.log("before close:", mapped());
    native.close(); // what Deno does at exit
    console.log("after close:", mapped());`;
  const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /before close: true\nafter close: true\n/);
});

test("exit: a script that ends right after async runs exits cleanly", () => {
  const model = simModelFile({
    name: "exit2",
    latencyUs: 200,
    inputs: [{ name: "x", dtype: "F32", shape: [4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [4] }],
  }, "exit2");
  const script = `
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    await using model = open(${JSON.stringify(model)});
    await Promise.all([0, 1, 2].map(async () => {
      for (let i = 0; i < 4; i++) await model.runAsync(new Float32Array(4));
    }));
    console.log("done");`;
  for (let i = 0; i < 5; i++) {
    const r = runScript(script, { EDGERUN_HBDNN_LIB_DIR: simDir() });
    assert.equal(r.status, 0, `run ${i}: status ${r.status}, signal ${r.signal}; ${r.stderr}`);
    assert.equal(r.stdout, "done\n");
  }
});
