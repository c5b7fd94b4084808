/**
 * Helpers for tests against the ACL (Ascend) **simulator** (tests/sim/acl/, FORMAT.md there):
 * where its libraries are, its simacl_* control API (live counts, counters, fault injection) on
 * the same library instance a backend loads, and writing simulator models to a temp dir.
 *
 * Layouts: "classic" = <simDir>/acl/libascendcl.so; "cann9" = <simDir>/acl9/{libacl_rt.so,
 * libacl_mdl.so} (the control API lives in libacl_rt.so). <simDir> is simDir() of sim_helpers.ts
 * ($EDGERUN_SIM_DIR or zig-out/sim).
 */
import { join } from "node:path";
import { openRawLibrary } from "../ffi/load.ts";
import { cstr, pollUntil, simDir } from "./sim_helpers.ts";
import { tempFile } from "./helpers.ts";
import { type AclSimModelSpec, writeAclSimModel } from "./sim/omfile.ts";

export type AclSimLayout = "classic" | "cann9";

/** The directory holding one layout of the ACL simulator. */
export function aclSimDir(layout: AclSimLayout = "classic"): string {
  return join(simDir(), layout === "classic" ? "acl" : "acl9");
}

/** The library exporting aclInit, aclrt* and the simacl_* control API for a layout. */
export function aclSimRuntimeLibrary(layout: AclSimLayout = "classic"): string {
  return join(aclSimDir(layout), layout === "classic" ? "libascendcl.so" : "libacl_rt.so");
}

/** simacl_live_counts, in its order (SIMACL_LIVE_* in sim_acl.h). */
export interface AclSimLiveCounts {
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
const LIVE_KEYS: (keyof AclSimLiveCounts)[] = [
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

/** Counter and gauge names of simacl_counter (FORMAT.md section 5). */
export type AclSimCounterName =
  | "init"
  | "models_live"
  | "dev_buffers_live"
  | "dev_bytes_live"
  | "host_buffers_live"
  | "datasets_live"
  | "data_buffers_live"
  | "contexts_live"
  | "streams_live"
  | "devices_live"
  | "descs_live"
  | "tasks_live"
  | "stalled_now"
  | "init_calls"
  | "finalize_calls"
  | "errors"
  | "executions"
  | "async_executions"
  | "concurrent_exec"
  | "faults_injected"
  | "sync_timeouts"
  | "free_in_use"
  | "bad_handles"
  | "not_device_memory"
  | "tasks_failed"
  | "tasks_stalled"
  | "device_faults"
  | "device_resets"
  | "memcpy_calls"
  | "mem_cap_refusals"
  | "gears_set"
  | "unload_busy"
  | "models_loaded"
  | "models_unloaded"
  | "finalize_busy";

const table = {
  simacl_live_counts: { args: ["buffer", "i32"], result: "void" },
  simacl_counter: { args: ["buffer"], result: "i64" },
  simacl_reset_counters: { args: [], result: "void" },
  simacl_inject_fault: { args: ["buffer", "i64", "i32", "i32"], result: "void" },
  simacl_set_mem_cap: { args: ["i64"], result: "void" },
  simacl_device_fault: { args: ["i32"], result: "void" },
  simacl_unstall: { args: [], result: "void" },
  simacl_null_strings: { args: ["i32"], result: "void" },
  simacl_set_jitter_us: { args: ["i64", "i64"], result: "void" },
  simacl_set_latency_us: { args: ["i64"], result: "void" },
  simacl_set_device_count: { args: ["i32"], result: "void" },
  simacl_set_run_mode: { args: ["i32"], result: "void" },
  simacl_set_output_dims_max: { args: ["i32"], result: "void" },
} as const;

interface Symbols {
  simacl_live_counts(out: BigInt64Array, n: number): void;
  simacl_counter(name: Uint8Array): bigint;
  simacl_reset_counters(): void;
  simacl_inject_fault(fn: Uint8Array | null, nth: bigint, code: number, times: number): void;
  simacl_set_mem_cap(bytes: bigint): void;
  simacl_device_fault(code: number): void;
  simacl_unstall(): void;
  simacl_null_strings(mask: number): void;
  simacl_set_jitter_us(us: bigint, seed: bigint): void;
  simacl_set_latency_us(us: bigint): void;
  simacl_set_device_count(n: number): void;
  simacl_set_run_mode(mode: number): void;
  simacl_set_output_dims_max(on: number): void;
}


/** The ACL simulator's control API. Open it on the library path the backend loads (same instance). */
export class AclSim {
  readonly #s: Symbols;
  constructor(readonly library: string = aclSimRuntimeLibrary()) {
    this.#s = openRawLibrary(library, table).symbols as unknown as Symbols;
  }

  /** Live handles and resources (leak checks: compare with a baseline taken before the case). */
  liveCounts(): AclSimLiveCounts {
    const out = new BigInt64Array(LIVE_KEYS.length);
    this.#s.simacl_live_counts(out, out.length);
    return Object.fromEntries(LIVE_KEYS.map((k, i) => [k, Number(out[i])])) as unknown as AclSimLiveCounts;
  }

  counter(name: AclSimCounterName): number {
    const v = this.#s.simacl_counter(cstr(name));
    if (v === -1n) throw new Error(`ACL simulator: unknown counter ${name}`);
    return Number(v);
  }

  /** Polls until pred() holds (true) or timeoutMs passes (false). */
  waitFor(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
    return pollUntil(pred, timeoutMs);
  }

  resetCounters(): void {
    this.#s.simacl_reset_counters();
  }

  /** Calls nth.. (times of them; -1 all) of fn fail with code. fn also "task" / "stall" (per run). */
  injectFault(fn: string, nth: number, code: number, times = 1): void {
    this.#s.simacl_inject_fault(cstr(fn), BigInt(nth), code, times);
  }

  setMemCap(bytes: number): void {
    this.#s.simacl_set_mem_cap(BigInt(bytes));
  }

  /** Every non-cleanup call fails with code until aclrtResetDevice (0 ends it now). */
  deviceFault(code: number): void {
    this.#s.simacl_device_fault(code);
  }

  unstall(): void {
    this.#s.simacl_unstall();
  }

  /** Bit 1: version calls fail; bit 2: aclGetRecentErrMsg returns NULL; -1: back to $ACLSIM_NULL. */
  nullStrings(mask: number): void {
    this.#s.simacl_null_strings(mask);
  }

  setJitterUs(us: number, seed = 0): void {
    this.#s.simacl_set_jitter_us(BigInt(us), BigInt(seed));
  }

  /** -1 = each model's own latency. */
  setLatencyUs(us: number): void {
    this.#s.simacl_set_latency_us(BigInt(us));
  }

  setDeviceCount(n: number): void {
    this.#s.simacl_set_device_count(n);
  }

  /** 1 ACL_HOST (default), 0 ACL_DEVICE; only while no device buffer is live. */
  setRunMode(mode: 0 | 1): void {
    this.#s.simacl_set_run_mode(mode);
  }

  /**
   * true: aclmdlGetOutputDims of a model with gears gives the largest gear's dims, as CANN
   * documents (the default); false: the declared -1 kept; undefined: back to $ACLSIM_OUTPUT_DIMS.
   */
  setOutputDimsMax(on: boolean | undefined): void {
    this.#s.simacl_set_output_dims_max(on === undefined ? -1 : on ? 1 : 0);
  }

  /** Every injected fault off: rules, memory cap, device fault, jitter, NULL strings; stalls released. */
  clearFaults(): void {
    this.#s.simacl_inject_fault(null, 0n, 0, 0);
    this.#s.simacl_set_mem_cap(0n);
    this.#s.simacl_device_fault(0);
    this.#s.simacl_set_jitter_us(0n, 0n);
    this.#s.simacl_null_strings(-1);
    this.#s.simacl_unstall();
  }
}

/** Writes a simulator model (tests/sim/omfile.ts) to the per-process temp dir; returns its path. */
export function writeAclSimModelFile(name: string, spec: AclSimModelSpec): string {
  return tempFile(name.endsWith(".om") ? name : `${name}.om`, writeAclSimModel(spec));
}
