/**
 * Signals during runs (issue 16 item 7): a sync run() holds the JavaScript thread, so a signal
 * handler waits for it; with runAsync the handler runs while the run is still on the device.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { test } from "./compat.ts";
import { root, scriptCommand } from "./helpers.ts";
import { simDir, simModelFile, useSim } from "./sim_helpers.ts";
import { HOLD_BOUND_US } from "./sim_hold.ts";

useSim();

test("signals: a SIGINT handler runs while a runAsync is in flight (the run held on the device)", async () => {
  const model = simModelFile({
    name: "sig",
    inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [1, 4], a: 1, b: 0 }],
  });
  // The child holds its task on the simulated device (hbSimHold) until the bound, far beyond the
  // test: "ready" means the run is in flight, and the handler must run before it settles.
  const script = `
    import process from "node:process";
    import { open } from ${JSON.stringify(join(root, "mod.ts"))};
    import { openRawLibrary } from ${JSON.stringify(join(root, "ffi/load.ts"))};
    const sim = openRawLibrary(${JSON.stringify(join(simDir(), "libhbucp.so"))}, {
      hbSimHold: { args: ["i64"], result: "void" },
      hbSimCounter: { args: ["buffer"], result: "i64" },
    }).symbols;
    const held = () => Number(sim.hbSimCounter(new TextEncoder().encode("tasks_held\\0")));
    const m = open(${JSON.stringify(model)});
    let settled = false;
    process.on("SIGINT", () => {
      console.log("sigint: settled " + settled + ", held " + held());
      process.exit(0);
    });
    sim.hbSimHold(${HOLD_BOUND_US}n);
    m.runAsync(new Float32Array(4)).then(() => (settled = true), () => (settled = true));
    while (held() < 1) await new Promise((r) => setTimeout(r, 1));
    console.log("ready");`;
  const c = scriptCommand(script, { EDGERUN_HBDNN_LIB_DIR: simDir() });
  const child = spawn(c.cmd, c.args, { env: c.env, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let signalled = false;
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", (d) => {
    stdout += d;
    if (!signalled && stdout.includes("ready\n")) {
      signalled = true;
      // process.kill, not child.kill: Deno then reports the signal sent as the way the child ended.
      process.kill(child.pid!, "SIGINT");
    }
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s]))
  );
  assert.equal(stdout, "ready\nsigint: settled false, held 1\n", stderr);
  assert.deepEqual([code, signal], [0, null], stderr);
});
