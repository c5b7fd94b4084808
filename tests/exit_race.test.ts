/**
 * Issue 16, item 6: a process that exits while ONNX Runtime kernels run on the shim's threads. exit()
 * runs ORT's static destructors; before shim/backends/ort.c quiesced running sessions at exit, the
 * kernels then failed under them (Deno logged an ORT error in every trial). 100 trials per runtime,
 * four at a time, each a child that starts slow runs and exits while they are on native threads:
 * every child must exit 0, with no signal and nothing on stderr (ORT's error log turned on).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { test } from "./compat.ts";
import { matMulChainModel } from "./fixtures/onnx_models.ts";
import { root, runScript, scriptCommand, tempFile } from "./helpers.ts";

// Under qemu-user (tests/run-aarch64.sh) each child takes seconds: fewer trials keep the suite in time.
const TRIALS = process.env.EDGERUN_TEST_EXEC_PREFIX ? 12 : 100;
const AT_ONCE = 4;
const CHAIN = tempFile("exit_race_chain.onnx", matMulChainModel(process.env.EDGERUN_TEST_EXEC_PREFIX ? 60 : 1500, 256));

const child = `
  import process from "node:process";
  import { open } from ${JSON.stringify(join(root, "mod.ts"))};
  import { liveCounts } from ${JSON.stringify(join(root, "tests/live_counts.ts"))};
  const model = open(${JSON.stringify(CHAIN)}, { intraOpThreads: 2 });
  const x = new Float32Array(256 * 256);
  for (let i = 0; i < 3; i++) model.runAsync(x).catch(() => {});
  // Exit while the runs are on the shim's threads (each takes far longer than this wait).
  while (liveCounts().submitted === 0) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 20));
  process.exit(0);
`;

function trial(): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const c = scriptCommand(child, { EDGERUN_ORT_LOG: "error", NO_COLOR: "1" });
  return new Promise((resolve) => {
    const p = spawn(c.cmd, c.args, { env: c.env, cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

test("exit: 100 processes exiting while ONNX Runtime runs on shim threads exit 0, with no ORT error and no crash", async () => {
  const bad: string[] = [];
  for (let done = 0; done < TRIALS; done += AT_ONCE) {
    const results = await Promise.all(Array.from({ length: Math.min(AT_ONCE, TRIALS - done) }, trial));
    for (const r of results) {
      if (r.code !== 0 || r.signal !== null || r.stderr.trim() !== "") {
        bad.push(`exit ${r.code} signal ${r.signal}: ${r.stderr.trim().split("\n")[0]}`);
      }
    }
  }
  assert.deepEqual(bad, [], `${bad.length} of ${TRIALS} trials failed; first: ${bad[0]}`);
});

test("exit: a process that only ran ONNX Runtime synchronously exits 0 (the exit handler's library stays mapped)", () => {
  // No worker thread ever started, so nothing else pinned libedgerun: a runtime that unloads it
  // before exit() must not leave the exit handler pointing into unmapped code.
  const r = runScript(`
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    const model = open(${JSON.stringify(CHAIN)}, { intraOpThreads: 1 });
    console.log(model.inputs.length);
  `);
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});
