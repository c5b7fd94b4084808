/**
 * Seeded random fault injection on the acl backend (issue 16's harness, for the AscendCL
 * simulator): the sequence of tests/fault_sequence.ts while the simulator fails named calls,
 * fails or stalls executions, caps device memory, puts the device in a fault state, hides error
 * texts and jitters latency (tests/sim/acl/FORMAT.md section 6). At the end nothing is left: the
 * shim's live counts and the simulator's objects; no buffer was freed in use, no model id ran
 * twice at once.
 *
 * EDGERUN_FAULT_SEED replays a sequence; EDGERUN_FAULT_STEPS sets its length (make soak: more).
 */
import assert from "node:assert/strict";
import { test } from "./compat.ts";
import { aclModelFile, useAclSim } from "./acl_helpers.ts";
import type { AclSimLiveCounts } from "./acl_sim_helpers.ts";
import { faultInput, faultSeed, faultSteps, runFaultSequence } from "./fault_sequence.ts";
import { liveCounts, settledTo } from "./live_counts.ts";

const sim = useAclSim();

/** Calls the backend makes at open, run and close (and "task": an execution that fails). */
const TARGETS = [
  "aclrtSetDevice", "aclrtCreateContext", "aclrtSetCurrentContext", "aclrtCreateStream", "aclrtMalloc",
  "aclrtMemcpy", "aclrtFree", "aclmdlLoadFromFile", "aclmdlCreateDesc", "aclmdlGetDesc", "aclmdlCreateDataset",
  "aclCreateDataBuffer", "aclmdlAddDatasetBuffer", "aclmdlExecute", "aclmdlExecuteAsync",
  "aclrtSynchronizeStreamWithTimeout", "aclmdlUnload", "task",
];
/** ACL codes: invalid parameter, bad alloc, runtime failure, device memory, task failure, stream sync. */
const CODES = [100000, 200000, 500001, 507011, 207001, 507899, 507033];
const LEAK_KEYS: (keyof AclSimLiveCounts)[] = ["models", "devBuffers", "hostBuffers", "datasets", "dataBuffers", "streams", "descs", "tasks"];

const files = [0, 1].map((k) =>
  aclModelFile({
    latencyUs: 300 + 700 * k,
    inputs: [{ name: "x", dtype: "FLOAT", dims: [1, 4] }],
    outputs: [{ name: "y", dtype: "FLOAT", dims: [1, 4], a: 2 + k, b: 1 }],
  }, `faulty${k}`)
);

test(`acl faults: ${faultSteps} random steps under injected faults (seed ${faultSeed}, EDGERUN_FAULT_SEED replays)`, async () => {
  const baseline = liveCounts();
  const simBefore = sim.liveCounts();
  const freedInUse = sim.counter("free_in_use");
  const concurrent = sim.counter("concurrent_exec");
  const badHandles = sim.counter("bad_handles");
  await sim.with({}, () =>
    runFaultSequence({
      sim: {
        injectFault: (fn, nth, code, times) => sim.injectFault(fn, nth, code, times),
        unstall: () => sim.unstall(),
        setMemCap: (bytes) => sim.setMemCap(bytes),
        memBytes: () => sim.liveCounts().devBytes,
        setJitterUs: (us, seed) => sim.setJitterUs(us, seed),
        clearFaults: () => sim.clearFaults(),
      },
      files,
      targets: TARGETS,
      codes: CODES,
      // The device fails every call (a driver fault) until it is reset.
      deviceFails: async (model, attempt) => {
        sim.deviceFault(507033);
        await attempt("run (device fault)", () => model.runAsync(faultInput));
      },
      oddity: async (model, attempt) => {
        sim.nullStrings(2); // aclGetRecentErrMsg returns NULL
        sim.injectFault("task", 1, 507899, 1);
        await attempt("run (no error text)", () => model.run(faultInput));
      },
    })
  );
  assert.ok(await settledTo(baseline, 10_000), `shim handles left: ${JSON.stringify(liveCounts())} vs ${JSON.stringify(baseline)}`);
  assert.ok(
    await sim.waitFor(() => LEAK_KEYS.every((key) => sim.liveCounts()[key] <= simBefore[key]), 10_000),
    `simulator objects left (seed ${faultSeed}): ${JSON.stringify(sim.liveCounts())} vs ${JSON.stringify(simBefore)}`,
  );
  assert.equal(sim.counter("free_in_use") - freedInUse, 0, "a buffer was freed while the device used it");
  assert.equal(sim.counter("concurrent_exec") - concurrent, 0, "one model id executed twice at once");
  assert.equal(sim.counter("bad_handles") - badHandles, 0, "a stale handle reached the simulator");
});
