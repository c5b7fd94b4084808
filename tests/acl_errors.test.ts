/**
 * The acl backend's failures as typed errors: vendor faults injected in the simulator (each with
 * the ACL code and aclGetRecentErrMsg's text), library loading in both layouts, process-state
 * variants (run in child processes: AscendCL is loaded and initialised once per process).
 */
import assert from "node:assert/strict";
import { EdgerunError, open } from "../mod.ts";
import { test } from "./compat.ts";
import { runScript } from "./helpers.ts";
import { aclModelFile, aclSimDir, childPrelude, useAclSim } from "./acl_helpers.ts";
import { throwsEdgerun } from "./sim_helpers.ts";

const sim = useAclSim();

function affine(name: string, extra: { dynamic?: boolean } = {}): string {
  return aclModelFile(extra.dynamic
    ? {
      dynamicBatch: [1, 2],
      inputs: [{ name: "x", dtype: "FLOAT", dims: [-1, 2] }],
      outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 2], a: 2 }],
    }
    : {
      inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }],
      outputs: [{ name: "y", dtype: "FLOAT", dims: [2], a: 2 }],
    }, name);
}

const LEAKS = ["models", "devBuffers", "hostBuffers", "datasets", "dataBuffers", "descs", "streams"] as const;

function assertSameObjects(before: ReturnType<typeof sim.liveCounts>): void {
  const after = sim.liveCounts();
  for (const k of LEAKS) assert.ok(after[k] <= before[k], `${k}: ${after[k]} live, ${before[k]} before`);
}

/** Runs a child script with the simulator's environment; returns its last stdout line, parsed. */
function child(code: string, env: Record<string, string> = {}): Record<string, unknown> {
  const r = runScript(childPrelude() + code, env);
  assert.equal(r.status, 0, `child exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("acl: an execution failure is BACKEND with the ACL code and the runtime's message; the next run succeeds", () => {
  using model = open(affine("exec-fault"));
  sim.injectFault("aclmdlExecute", 1, 500002);
  const e = throwsEdgerun(() => model.run(new Float32Array([1, 2])), "BACKEND", {
    backend: "acl",
    call: "aclmdlExecute",
    vendorCode: 500002,
  });
  assert.match(e.vendorMessage, /injected/);
  assert.match(e.message, /aclmdlExecute returned 500002/);
  assert.deepEqual([...model.run(new Float32Array([1, 2])).get("y").data as Float32Array], [2, 4]);
});

test("acl: each failure carries its own runtime message (aclGetRecentErrMsg is read once, right after the call)", () => {
  using model = open(affine("messages"));
  sim.injectFault("aclmdlExecute", 1, 500002);
  const first = throwsEdgerun(() => model.run(new Float32Array(2)), "BACKEND");
  sim.injectFault("aclmdlExecute", 1, 100000);
  const second = throwsEdgerun(() => model.run(new Float32Array(2)), "INVALID_ARGUMENT", { vendorCode: 100000 });
  assert.match(first.vendorMessage, /500002|injected/);
  assert.match(second.vendorMessage, /100000|injected/);
  assert.notEqual(first.vendorMessage.includes("100000"), true);
});

test("acl: a failed runAsync rejects with the typed error; the model keeps running", async () => {
  await using model = open(affine("async-fault"));
  sim.injectFault("aclmdlExecute", 1, 507033);
  await assert.rejects(model.runAsync(new Float32Array([3, 4])), (e: unknown) => {
    assert.ok(e instanceof EdgerunError);
    assert.equal(e.code, "BACKEND");
    assert.equal(e.vendorCode, 507033);
    assert.equal(e.call, "aclmdlExecute");
    return true;
  });
  assert.deepEqual([...(await model.runAsync(new Float32Array([3, 4]))).get("y").data as Float32Array], [6, 8]);
});

test("acl: device memory refused at open (207001) is OUT_OF_MEMORY, naming the tensor; nothing stays allocated", () => {
  const before = sim.liveCounts();
  sim.injectFault("aclrtMalloc", 2, 207001);
  throwsEdgerun(() => open(affine("oom")), "OUT_OF_MEMORY", { backend: "acl", call: "aclrtMalloc", vendorCode: 207001, message: /output 0/ });
  assertSameObjects(before);
});

test("acl: the memory cap (200000 / 207001) fails the open cleanly and a smaller model opens after", () => {
  const before = sim.liveCounts();
  sim.injectFault("aclmdlLoadFromFile", 1, 200000);
  throwsEdgerun(() => open(affine("bad-alloc")), "OUT_OF_MEMORY", { vendorCode: 200000, call: "aclmdlLoadFromFile" });
  assertSameObjects(before);
  using model = open(affine("after-oom"));
  assert.equal(model.outputs[0].name, "y");
});

test("acl: descriptor and dataset failures at open are typed and leave nothing loaded", () => {
  const before = sim.liveCounts();
  for (const [fn, code] of [["aclmdlGetDesc", 100011], ["aclmdlCreateDataset", 0], ["aclmdlAddDatasetBuffer", 100000], ["aclCreateDataBuffer", 0]] as const) {
    sim.injectFault(fn, 1, code === 0 ? 500001 : code);
    assert.throws(() => open(affine(`open-${fn}`)), (e: unknown) => e instanceof EdgerunError && e.backend === "acl", fn);
    sim.clearFaults();
    assertSameObjects(before);
  }
});

test("acl: a failed copy to the device (ACL_HOST) is BACKEND naming the input; the request runs again after", async () => {
  await sim.with({ runMode: "host" }, () => {
    using model = open(affine("memcpy-fault"));
    sim.injectFault("aclrtMemcpy", 1, 507899);
    throwsEdgerun(() => model.run(new Float32Array([1, 1])), "BACKEND", { call: "aclrtMemcpy", vendorCode: 507899, message: /copying input 0 to the device/ });
    assert.deepEqual([...model.run(new Float32Array([1, 1])).get("y").data as Float32Array], [2, 2]);
  });
});

test("acl: a refused gear (aclmdlSetDynamicBatchSize) is a typed error naming the gear", () => {
  using model = open(affine("gear-fault", { dynamic: true }));
  sim.injectFault("aclmdlSetDynamicBatchSize", 1, 100000);
  throwsEdgerun(() => model.run({ x: new Float32Array(4) }), "INVALID_ARGUMENT", { call: "aclmdlSetDynamicBatchSize", message: /selecting gear 2/ });
  assert.deepEqual([...model.run({ x: new Float32Array([1, 2, 3, 4]) }).get("y").data as Float32Array], [2, 4, 6, 8]);
});

test("acl: a device fault fails runs with its code until it clears", () => {
  using model = open(affine("device-fault"));
  try {
    sim.injectFault("aclmdlExecute", 1, 507033, -1);
    throwsEdgerun(() => model.run(new Float32Array(2)), "BACKEND", { vendorCode: 507033 });
    throwsEdgerun(() => model.run(new Float32Array(2)), "BACKEND", { vendorCode: 507033 });
  } finally {
    sim.clearFaults();
  }
  assert.deepEqual([...model.run(new Float32Array([5, 6])).get("y").data as Float32Array], [10, 12]);
});

test("acl: feeds are checked before native code: a detached buffer, a wrong dtype, a wrong length, an unknown name", () => {
  using model = open(affine("feeds"));
  const detached = new Float32Array(2);
  (detached.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  assert.throws(() => model.run(detached), TypeError);
  assert.throws(() => model.run(new Int32Array(2)), TypeError);
  assert.throws(() => model.run(new Float32Array(3)), RangeError);
  assert.throws(() => model.run({ nope: new Float32Array(2) }), TypeError);
  model.close();
  assert.throws(() => model.run(new Float32Array(2)), (e: unknown) => e instanceof EdgerunError && e.code === "CLOSED");
});

test("acl: setBackendSearchPath('acl') rejects bad paths; an unknown backend name is a RangeError", async () => {
  const { setBackendSearchPath } = await import("../mod.ts");
  assert.throws(() => setBackendSearchPath("acl", ["a:b"]), TypeError);
  assert.throws(() => setBackendSearchPath("npu" as "acl", []), RangeError);
  assert.throws(() => open(affine("backend-name"), { backend: "ascend" as "acl" }), RangeError);
});

test("acl: an .om forced onto another backend, or a non-model forced onto acl, fails typed", () => {
  throwsEdgerun(() => open(affine("forced"), { backend: "ort" }), "INVALID_MODEL");
  const junk = aclModelFile({ inputs: [], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "junk");
  throwsEdgerun(() => open(junk.replace(/\.om$/, ".om"), { backend: "acl" }), "INVALID_MODEL", { backend: "acl" });
});

test("acl: missing library is LIBRARY_NOT_FOUND listing every path tried; the load is retried at the next open", () => {
  const out = child(`
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "missing");
    let first;
    try { open(path); } catch (e) { first = { code: e.code, message: e.message }; }
    setBackendSearchPath("acl", [aclSimDir("classic")]);
    const model = open(path);
    const y = [...model.run(new Float32Array([1, 2])).get("y").data];
    model.close();
    console.log(JSON.stringify({ first, y, library: model.info.library }));
  `, { EDGERUN_ACL_LIB_DIR: "/nonexistent/acl" });
  const first = out.first as { code: string; message: string };
  assert.equal(first.code, "LIBRARY_NOT_FOUND");
  for (const p of ["/nonexistent/acl/libascendcl.so", "/usr/local/Ascend/cann/lib64/libascendcl.so", "/usr/local/Ascend/ascend-toolkit/latest/lib64/libascendcl.so", "/nonexistent/acl/libacl_rt.so", "EDGERUN_ACL_LIB_DIR"]) {
    assert.ok(first.message.includes(p), `${p} not named in: ${first.message}`);
  }
  assert.deepEqual(out.y, [1, 2]);
  assert.equal(out.library, "libascendcl.so");
});

test("acl: the CANN 9 layout (libacl_rt.so + libacl_mdl.so) loads, runs sync and async, and says so", () => {
  const out = child(`
    const path = aclModelFile({ dynamicBatch: [1, 2], inputs: [{ name: "x", dtype: "FLOAT", dims: [-1, 2] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [-1, 2], a: 4 }] }, "cann9");
    await using model = open(path);
    const y = [...model.run({ x: new Float32Array([1, 2, 3, 4]) }).get("y").data];
    const z = [...(await model.runAsync({ x: new Float32Array([5, 6]) })).get("y").data];
    console.log(JSON.stringify({ y, z, library: model.info.library, version: model.info.runtime_version }));
  `, { EDGERUN_ACL_LIB_DIR: aclSimDir("cann9") });
  assert.equal(out.library, "libacl_rt.so+libacl_mdl.so");
  assert.deepEqual(out.y, [4, 8, 12, 16]);
  assert.deepEqual(out.z, [20, 24]);
  assert.equal(typeof out.version, "string");
});

test("acl: a failed device setup (aclrtCreateContext) is a typed error; the device is released and the next open sets it up again", () => {
  const out = child(`
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "init-fault");
    let first;
    try { open(path); } catch (e) { first = { code: e.code, call: e.call, vendorCode: e.vendorCode }; }
    using model = open(path);
    console.log(JSON.stringify({ first, y: [...model.run(new Float32Array([7])).get("y").data] }));
  `, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), ACLSIM_FAULTS: "aclrtCreateContext:1:500001" });
  assert.deepEqual(out.first, { code: "BACKEND", call: "aclrtCreateContext", vendorCode: 500001 });
  assert.deepEqual(out.y, [7]);
});

test("acl: EDGERUN_ACL_FINALIZE=close finalizes at each last close and initialises again at the next open (runtime allowing)", () => {
  const out = child(`
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1], b: 1 }] }, "finalize");
    const ys = [];
    for (let i = 0; i < 3; i++) { using m = open(path); ys.push(m.run(new Float32Array([i])).get("y").data[0]); }
    console.log(JSON.stringify({ ys }));
  `, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), EDGERUN_ACL_FINALIZE: "close", ACLSIM_REINIT: "1" });
  assert.deepEqual(out.ys, [1, 2, 3]);
});

test("acl: EDGERUN_ACL_FINALIZE=close on a runtime that refuses aclInit again: a STATE error naming the variable", () => {
  const out = child(`
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "no-reinit");
    open(path).close();
    let second;
    try { open(path); } catch (e) { second = { code: e.code, message: e.message, vendorCode: e.vendorCode }; }
    console.log(JSON.stringify({ second }));
  `, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), EDGERUN_ACL_FINALIZE: "close" });
  const second = out.second as { code: string; message: string; vendorCode: number };
  assert.equal(second.code, "STATE");
  assert.equal(second.vendorCode, 100002);
  assert.match(second.message, /EDGERUN_ACL_FINALIZE/);
});

test("acl: a process exits cleanly with models open and runs in flight (the exit quiesce finalizes once)", () => {
  const r = runScript(childPrelude() + `
    const path = aclModelFile({ latencyUs: 30000, inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "exit");
    const model = open(path, { maxRequests: 4 });
    for (let i = 0; i < 4; i++) model.runAsync(new Float32Array([i])).catch(() => {});
    setTimeout(() => { console.log("bye"); process.exit(0); }, 10);
  `.replace("setTimeout", "import process from 'node:process';\nsetTimeout"), { EDGERUN_ACL_LIB_DIR: aclSimDir("classic") });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bye/);
});

test("acl: exiting with a timed-out execution on the device waits for that execution before aclFinalize", () => {
  const r = runScript(childPrelude() + `
    const path = aclModelFile({ latencyUs: 200000, inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "exit-late");
    const model = open(path);
    try { model.run(new Float32Array([1]), { timeoutMs: 5 }); } catch (e) { console.log(e.code); }
  `, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic") });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /TIMEOUT/);
  // The simulator says so on stderr when aclFinalize comes while an execution is on the device.
  assert.doesNotMatch(r.stderr, /aclFinalize while/);
});

test("acl: an execution failing on the stream of a timed run is typed with its code; the next timed run succeeds", () => {
  using model = open(affine("stream-fault"));
  sim.injectFault("task", 1, 507011);
  throwsEdgerun(() => model.run(new Float32Array([1, 2]), { timeoutMs: 1000 }), "BACKEND", { vendorCode: 507011 });
  assert.deepEqual([...model.run(new Float32Array([1, 2]), { timeoutMs: 1000 }).get("y").data as Float32Array], [2, 4]);
});

test("acl: the runtime version comes from aclsysGetVersionStr; without one it reads 'unknown'; a NULL error message still gives a typed error", () => {
  const script = `
    const path = aclModelFile({ inputs: [{ name: "x", dtype: "FLOAT", dims: [1] }], outputs: [{ name: "y", dtype: "FLOAT", dims: [1] }] }, "version");
    let version, failure;
    try { open(path, { device: 3 }); } catch (e) { failure = { code: e.code, vendorCode: e.vendorCode, vendorMessage: e.vendorMessage }; }
    { using m = open(path); version = m.info.runtime_version; }
    console.log(JSON.stringify({ version, failure }));
  `;
  const named = child(script, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), ACLSIM_VERSION: "9.0.1" });
  assert.equal(named.version, "9.0.1");
  const none = child(script, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), ACLSIM_NULL: "version,errmsg" });
  assert.equal(none.version, "unknown");
  const failure = none.failure as { code: string; vendorCode: number; vendorMessage: string };
  assert.equal(failure.code, "INVALID_ARGUMENT");
  assert.ok(failure.vendorCode > 0);
  assert.equal(failure.vendorMessage, "no message from the runtime");
});

test("acl: a thread whose context cannot be made current gets a STATE error (107002) naming aclrtSetCurrentContext; the next run succeeds", async () => {
  await using model = open(affine("context-fault"));
  sim.injectFault("aclrtSetCurrentContext", 1, 107002);
  await assert.rejects(model.runAsync(new Float32Array([1, 1])), (e: unknown) => {
    assert.ok(e instanceof EdgerunError);
    assert.equal(e.code, "STATE");
    assert.equal(e.call, "aclrtSetCurrentContext");
    assert.equal(e.vendorCode, 107002);
    return true;
  });
  assert.deepEqual([...(await model.runAsync(new Float32Array([1, 1]))).get("y").data as Float32Array], [2, 2]);
});
