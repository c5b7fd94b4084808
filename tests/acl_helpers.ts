/**
 * Shared helpers of the acl backend tests: point the shim at the AscendCL simulator
 * (tests/sim/acl/, through tests/acl_sim_helpers.ts), load it, and write simulator models
 * (tests/sim/omfile.ts) under unique names.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { root } from "./helpers.ts";
import { AclSim, aclSimDir, aclSimRuntimeLibrary, writeAclSimModelFile } from "./acl_sim_helpers.ts";
import { loadSimBackend } from "./sim_helpers.ts";
import type { AclSimModelSpec } from "./sim/omfile.ts";

export { aclSimDir };
export type { AclSimModelSpec };

/** The simulator's control API, with the settings helper the backend tests use. */
export class AclTestSim extends AclSim {
  /** Runs fn in a run mode and/or at a latency; restores the defaults (ACL_HOST, own latency, no faults) after. */
  async with<T>(settings: { latencyUs?: number; runMode?: "host" | "device" }, fn: () => T | Promise<T>): Promise<T> {
    try {
      if (settings.runMode !== undefined) this.setRunMode(settings.runMode === "host" ? 1 : 0);
      if (settings.latencyUs !== undefined) this.setLatencyUs(settings.latencyUs);
      return await fn();
    } finally {
      this.clearFaults();
      this.setLatencyUs(-1);
      if (settings.runMode !== undefined) this.setRunMode(1);
    }
  }
}

let sim: AclTestSim | undefined;

/**
 * Points the acl backend at the libascendcl.so simulator, loads it, and opens the control API on
 * the same file (dlopen of a loaded path returns the same instance: the counters the shim moves).
 */
export function useAclSim(): AclTestSim {
  if (sim) return sim;
  const dir = aclSimDir("classic");
  assert.ok(existsSync(join(dir, "libascendcl.so")), `${dir}/libascendcl.so is missing: build the simulator (zig build sim)`);
  loadSimBackend("acl", dir);
  sim = new AclTestSim(aclSimRuntimeLibrary("classic"));
  return sim;
}

let fileSeq = 0;

/** Writes a simulator model into a fresh temp .om file and returns its path. */
export function aclModelFile(spec: AclSimModelSpec, name = "sim"): string {
  return writeAclSimModelFile(`${name}-${process.pid}-${fileSeq++}`, spec);
}

/** A child script's prelude: open() and these helpers, imported by absolute path. */
export function childPrelude(): string {
  return `import { open, setBackendSearchPath, EdgerunError } from ${JSON.stringify(join(root, "mod.ts"))};\n` +
    `import { aclModelFile, aclSimDir } from ${JSON.stringify(join(root, "tests/acl_helpers.ts"))};\n`;
}
