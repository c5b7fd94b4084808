/**
 * Shared helpers of the acl tests: point the shim at the AscendCL simulator (tests/sim/acl/),
 * open its simacl_* control API on the library instance the shim loaded, and write simulator
 * model files (.om stand-ins).
 *
 * The simulator's directories: $EDGERUN_ACL_SIM_DIR (libascendcl.so) and $EDGERUN_ACL9_SIM_DIR
 * (libacl_rt.so + libacl_mdl.so), relative to the repository root, else zig-out/sim/acl and
 * zig-out/sim/acl9 (`zig build sim`).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import process from "node:process";
import { EdgerunError, setBackendSearchPath } from "../mod.ts";
import { loadNative, openRawLibrary } from "../ffi/load.ts";
import { root, tempFile } from "./helpers.ts";
import { type AclModelSpec, writeAclModelFile } from "./acl_omfile.ts";
import { pollUntil } from "./sim_helpers.ts";

export type { AclModelSpec };

/** The simulator's directory for one library layout. */
export function aclSimDir(layout: "ascendcl" | "cann9" = "ascendcl"): string {
  const env = layout === "ascendcl" ? "EDGERUN_ACL_SIM_DIR" : "EDGERUN_ACL9_SIM_DIR";
  let dir: string | undefined;
  try {
    dir = process.env[env] || undefined;
  } catch {
    dir = undefined;
  }
  if (!dir) return join(root, layout === "ascendcl" ? "zig-out/sim/acl" : "zig-out/sim/acl9");
  return isAbsolute(dir) ? dir : join(root, dir);
}

/** Live counts of the simulator, in simacl_live_counts order (tests/sim/acl/sim_acl.h). */
export interface AclLive {
  init: number;
  models: number;
  devBuffers: number;
  devBytes: number;
  hostBuffers: number;
  datasets: number;
  dataBuffers: number;
  contexts: number;
  streams: number;
  devices: number;
  descs: number;
  tasks: number;
}

const LIVE_KEYS: (keyof AclLive)[] = [
  "init",
  "models",
  "devBuffers",
  "devBytes",
  "hostBuffers",
  "datasets",
  "dataBuffers",
  "contexts",
  "streams",
  "devices",
  "descs",
  "tasks",
];

const controlTable = {
  simacl_live_counts: { args: ["buffer", "i32"], result: "void" },
  simacl_counter: { args: ["buffer"], result: "i64" },
  simacl_reset_counters: { args: [], result: "void" },
  simacl_inject_fault: { args: ["buffer", "i64", "i32", "i32"], result: "void" },
  simacl_set_mem_cap: { args: ["i64"], result: "void" },
  simacl_set_latency_us: { args: ["i64"], result: "void" },
  simacl_set_run_mode: { args: ["i32"], result: "void" },
  simacl_set_device_count: { args: ["i32"], result: "void" },
  simacl_unstall: { args: [], result: "void" },
  simacl_device_fault: { args: ["i32"], result: "void" },
} as const;

interface ControlSymbols {
  simacl_live_counts(out: BigInt64Array, n: number): void;
  simacl_counter(name: Uint8Array): bigint;
  simacl_reset_counters(): void;
  simacl_inject_fault(fn: Uint8Array | null, nth: bigint, code: number, times: number): void;
  simacl_set_mem_cap(bytes: bigint): void;
  simacl_set_latency_us(us: bigint): void;
  simacl_set_run_mode(mode: number): void;
  simacl_set_device_count(n: number): void;
  simacl_unstall(): void;
  simacl_device_fault(code: number): void;
}

const encoder = new TextEncoder();
const cstr = (s: string): Uint8Array => encoder.encode(s + "\0");

/** The simulator's control API, on the same library instance the shim uses. */
export class AclSim {
  readonly dir: string;
  readonly #s: ControlSymbols;

  constructor(dir: string, symbols: ControlSymbols) {
    this.dir = dir;
    this.#s = symbols;
  }

  /** Live objects (init, models, buffers, datasets, contexts, streams, devices, descs, tasks). */
  live(): AclLive {
    const out = new BigInt64Array(LIVE_KEYS.length);
    this.#s.simacl_live_counts(out, out.length);
    return Object.fromEntries(LIVE_KEYS.map((k, i) => [k, Number(out[i])])) as unknown as AclLive;
  }

  /** A named counter (throws on a name the simulator does not know). */
  counter(name: string): number {
    const v = this.#s.simacl_counter(cstr(name));
    if (v === -1n) throw new Error(`simulator: unknown counter ${name}`);
    return Number(v);
  }

  /** Zeroes the event counters. */
  reset(): void {
    this.#s.simacl_reset_counters();
  }

  /** Call nth of fn from now (and times-1 after it) fails with code; code 0 removes fn's rule. */
  injectFault(fn: string, nth: number, code: number, times = 1): void {
    this.#s.simacl_inject_fault(cstr(fn), BigInt(nth), code, times);
  }

  /** Removes every fault rule, the memory cap and a device fault; lets stalled runs go on. */
  clearFaults(): void {
    this.#s.simacl_inject_fault(null, 0n, 0, 0);
    this.#s.simacl_set_mem_cap(0n);
    this.#s.simacl_device_fault(0);
    this.#s.simacl_unstall();
  }

  /** Every execution's latency in microseconds (-1: each model's own). */
  setLatencyUs(us: number): void {
    this.#s.simacl_set_latency_us(BigInt(us));
  }

  /** "host" (ACL_HOST: device memory apart, copies) or "device" (ACL_DEVICE); only with no device buffer live. */
  setRunMode(mode: "host" | "device"): void {
    this.#s.simacl_set_run_mode(mode === "host" ? 1 : 0);
  }

  /** Simulated devices. */
  setDeviceCount(n: number): void {
    this.#s.simacl_set_device_count(n);
  }

  /** Lets stalled executions complete. */
  unstall(): void {
    this.#s.simacl_unstall();
  }

  /** Runs fn with settings and restores the defaults afterwards, whatever happens. */
  async with<T>(settings: { latencyUs?: number; runMode?: "host" | "device" }, fn: () => T | Promise<T>): Promise<T> {
    try {
      if (settings.runMode !== undefined) this.setRunMode(settings.runMode);
      if (settings.latencyUs !== undefined) this.setLatencyUs(settings.latencyUs);
      return await fn();
    } finally {
      this.clearFaults();
      this.setLatencyUs(-1);
      if (settings.runMode !== undefined) this.setRunMode("host");
    }
  }

  /** Polls until pred() holds (true) or timeoutMs passes (false). */
  waitFor(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
    return pollUntil(pred, timeoutMs);
  }
}

let sim: AclSim | undefined;

/**
 * Points the acl backend at the libascendcl.so simulator, loads it, and opens the control API
 * from the same file (dlopen of a loaded path returns the same instance, so the counters are the
 * ones the shim's calls move).
 */
export function useAclSim(): AclSim {
  if (sim) return sim;
  const dir = aclSimDir("ascendcl");
  assert.ok(existsSync(join(dir, "libascendcl.so")), `${dir}/libascendcl.so is missing: build the simulator (zig build sim)`);
  setBackendSearchPath("acl", [dir]);
  const native = loadNative();
  const version = new Uint8Array(256);
  const rc = native.symbols.er_backend_load(3, version, version.length);
  if (rc !== 0) throw new EdgerunError("LIBRARY_NOT_FOUND", `acl backend did not load from ${dir} (status ${rc})`);
  const lib = openRawLibrary(join(dir, "libascendcl.so"), controlTable);
  sim = new AclSim(dir, lib.symbols as unknown as ControlSymbols);
  return sim;
}

let fileSeq = 0;

/** Writes a simulator model into a fresh temp .om file and returns its path. */
export function aclModelFile(spec: AclModelSpec, name = "sim"): string {
  return tempFile(`${name}-${process.pid}-${fileSeq++}.om`, writeAclModelFile(spec));
}

/** A test snippet's prelude: mod.ts and the helpers, imported by absolute path. */
export function childPrelude(): string {
  return `import { open, setBackendSearchPath, EdgerunError } from ${JSON.stringify(join(root, "mod.ts"))};\n` +
    `import { aclModelFile, aclSimDir } from ${JSON.stringify(join(root, "tests/acl_helpers.ts"))};\n`;
}
