/**
 * Seeded random fault injection (issue 16) on the hbdnn simulator: the sequence of
 * tests/fault_sequence.ts while the simulator fails vendor calls, fails or stalls tasks, caps
 * device memory, corrupts outputs, jitters latency and resets the device. At the end nothing is
 * left: the shim's live counts and the simulator's tasks and buffers.
 *
 * EDGERUN_FAULT_SEED replays a sequence; EDGERUN_FAULT_STEPS sets its length (make soak: more).
 */
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import { faultInput, faultSeed, faultSteps, runFaultSequence } from "./fault_sequence.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { type SimFaultTarget, simModelFile, useSim } from "./sim_helpers.ts";

const sim = useSim();

const TARGETS: SimFaultTarget[] = [
  "hbDNNInitializeFromFiles", "hbDNNGetModelNameList", "hbDNNGetModelHandle", "hbDNNGetInputCount",
  "hbDNNGetOutputCount", "hbDNNGetInputName", "hbDNNGetOutputName", "hbDNNGetInputTensorProperties",
  "hbDNNGetOutputTensorProperties", "hbDNNGetCompileBpuCoreNum", "hbDNNInferV2", "hbDNNRelease",
  "hbUCPSubmitTask", "hbUCPWaitTaskDone", "hbUCPReleaseTask", "hbUCPMallocCached", "hbUCPMemFlush",
  "hbUCPFree", "task",
];
const CODES = [-100001, -100004, -200001, -200003, -200004, -400001, -600002];

const specs = [0, 1].map((k) => ({
  name: `faulty${k}`,
  latencyUs: 300 + 700 * k,
  inputs: [{ name: "x", dtype: "F32" as const, shape: [1, 4] }],
  outputs: [{ name: "y", dtype: "F32" as const, shape: [1, 4], a: 2 + k, b: 1 }],
}));
const files = specs.map((s) => simModelFile(s, s.name));

test(`faults: ${faultSteps} random steps under injected faults (seed ${faultSeed}, EDGERUN_FAULT_SEED replays)`, async () => {
  const baseline = liveCounts();
  const simBefore = sim.counters();
  await sim.with({}, () =>
    runFaultSequence({
      sim: {
        injectFault: (fn, nth, code, times) => sim.injectFault(fn as SimFaultTarget, nth, code, times),
        unstall: () => sim.unstall(),
        setMemCap: (bytes) => sim.setMemCap(bytes),
        memBytes: () => sim.counter("mem_live_bytes"),
        setJitterUs: (us, seed) => sim.setJitterUs(us, seed),
        clearFaults: () => sim.clearFaults(),
      },
      files,
      targets: TARGETS,
      codes: CODES,
      deviceFails: () => Promise.resolve(sim.deviceReset()),
      oddity: async (model, attempt, pick) => {
        sim.corruptOutputs(pick(["nan", "garbage", "off"] as const));
        await attempt("run (corrupt)", () => model.run(faultInput));
        sim.corruptOutputs("off");
      },
    })
  );
  // Refused frees and releases are retried at pack closes: one more open and close gives them a turn.
  open(files[0]).close();
  await assertNothingLeft(sim, baseline, simBefore, 10_000);
});
