/**
 * Shared helpers for the hbdnn tests: point the shim at the hbDNN/UCP simulator (tests/sim/),
 * open the simulator's hbSim* control API, write simulator model files, and read its counters.
 *
 * The simulator's directory is $EDGERUN_SIM_DIR (relative paths are taken from the repository
 * root; tests/run-aarch64.sh sets it to zig-out/aarch64/sim), else zig-out/sim (`zig build sim`).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import process from "node:process";
import { EdgerunError, setBackendSearchPath } from "../mod.ts";
import { loadNative, openRawLibrary } from "../ffi/load.ts";
import { backendTable, type BackendName } from "../ffi/backends.ts";
import { type SimModelSpec, writeSimModelFile } from "./sim/simfile.ts";
import { root, tempFile } from "./helpers.ts";

/** The directory holding the simulator's libhbucp.so and libdnn.so. */
export function simDir(): string {
  let dir: string | undefined;
  try {
    dir = process.env.EDGERUN_SIM_DIR || undefined;
  } catch {
    dir = undefined;
  }
  if (!dir) return join(root, "zig-out/sim");
  return isAbsolute(dir) ? dir : join(root, dir);
}

/** Counter names of hbSimCounter (tests/sim/FORMAT.md section 4). */
export type SimCounterName =
  | "tasks_created"
  | "tasks_submitted"
  | "tasks_completed"
  | "tasks_released"
  | "tasks_timed_out"
  | "tasks_cancelled"
  | "tasks_failed"
  | "callbacks"
  | "sync_infer"
  | "mem_alloc"
  | "mem_free"
  | "flush_clean"
  | "flush_invalidate"
  | "missed_clean"
  | "outputs_written"
  | "outputs_invalidated"
  | "preemptions"
  | "free_in_use"
  | "bad_handles"
  | "model_release_refused"
  | "models_released"
  | "tasks_refused"
  | "releases_blocked"
  | "release_failures"
  | "faults_injected"
  | "device_resets"
  | "tasks_reset"
  | "tasks_stalled"
  | "outputs_corrupted"
  | "tasks_live"
  | "mem_live"
  | "mem_live_bytes"
  | "cores"
  | "latency_us";

/** Per-allocation counters of hbSimMemCounter. */
export type SimMemCounterName =
  | "clean"
  | "invalidate"
  | "missed_clean"
  | "device_writes"
  | "outputs_invalidated"
  | "pending_invalidate"
  | "cached"
  | "inflight"
  | "size";

const COUNTERS: readonly SimCounterName[] = [
  "tasks_created",
  "tasks_submitted",
  "tasks_completed",
  "tasks_released",
  "tasks_timed_out",
  "tasks_cancelled",
  "tasks_failed",
  "callbacks",
  "sync_infer",
  "mem_alloc",
  "mem_free",
  "flush_clean",
  "flush_invalidate",
  "missed_clean",
  "outputs_written",
  "outputs_invalidated",
  "preemptions",
  "free_in_use",
  "bad_handles",
  "model_release_refused",
  "models_released",
  "tasks_refused",
  "releases_blocked",
  "release_failures",
  "faults_injected",
  "device_resets",
  "tasks_reset",
  "tasks_stalled",
  "outputs_corrupted",
  "tasks_live",
  "mem_live",
  "mem_live_bytes",
  "cores",
  "latency_us",
];

const controlTable = {
  hbSimCounter: { args: ["buffer"], result: "i64" },
  hbSimReset: { args: [], result: "void" },
  hbSimSetLatencyUs: { args: ["i64"], result: "void" },
  hbSimSetCoreCount: { args: ["i32"], result: "void" },
  hbSimSetStrictCache: { args: ["i32"], result: "void" },
  hbSimCompletionLog: { args: ["buffer", "i32"], result: "i32" },
  hbSimMemCounter: { args: ["buffer", "buffer"], result: "i64" },
  hbSimSetSoc: { args: ["i32"], result: "void" },
  hbSimReserveTasks: { args: ["i32"], result: "void" },
  hbSimFailRelease: { args: ["i32"], result: "void" },
  hbSimInjectFault: { args: ["buffer", "i64", "i32", "i32"], result: "void" },
  hbSimSetMemCap: { args: ["i64"], result: "void" },
  hbSimCorruptOutputs: { args: ["i32"], result: "void" },
  hbSimSetJitterUs: { args: ["i64", "i64"], result: "void" },
  hbSimUnstall: { args: [], result: "void" },
  hbSimDeviceReset: { args: [], result: "void" },
  hbSimNullStrings: { args: ["i32"], result: "void" },
} as const;

interface ControlSymbols {
  hbSimCounter(name: Uint8Array): bigint;
  hbSimReset(): void;
  hbSimSetLatencyUs(us: bigint): void;
  hbSimSetCoreCount(n: number): void;
  hbSimSetStrictCache(on: number): void;
  hbSimCompletionLog(ids: BigInt64Array | null, cap: number): number;
  hbSimMemCounter(address: ArrayBufferView, name: Uint8Array): bigint;
  hbSimSetSoc(soc: number): void;
  hbSimReserveTasks(n: number): void;
  hbSimFailRelease(n: number): void;
  hbSimInjectFault(fn: Uint8Array | null, nth: bigint, code: number, times: number): void;
  hbSimSetMemCap(bytes: bigint): void;
  hbSimCorruptOutputs(mode: number): void;
  hbSimSetJitterUs(us: bigint, seed: bigint): void;
  hbSimUnstall(): void;
  hbSimDeviceReset(): void;
  hbSimNullStrings(mask: number): void;
}

/** Vendor functions the simulator can fail on purpose, and its two task pseudo-functions. */
export type SimFaultTarget =
  | "hbDNNInitializeFromFiles"
  | "hbDNNGetModelNameList"
  | "hbDNNGetModelHandle"
  | "hbDNNGetInputCount"
  | "hbDNNGetOutputCount"
  | "hbDNNGetInputName"
  | "hbDNNGetOutputName"
  | "hbDNNGetInputTensorProperties"
  | "hbDNNGetOutputTensorProperties"
  | "hbDNNGetCompileBpuCoreNum"
  | "hbDNNGetTaskOutputTensorProperties"
  | "hbDNNInferV2"
  | "hbDNNRelease"
  | "hbUCPSubmitTask"
  | "hbUCPWaitTaskDone"
  | "hbUCPReleaseTask"
  | "hbUCPSetTaskDoneCb"
  | "hbUCPMallocCached"
  | "hbUCPMemFlush"
  | "hbUCPFree"
  | "task"
  | "stall";

const encoder = new TextEncoder();
/** A NUL-terminated UTF-8 copy of s, for the simulators' control calls. */
export const cstr = (s: string): Uint8Array => encoder.encode(s + "\0");

/** The simulator's control API (hbSim*), on the same library instance the shim uses. */
export class Sim {
  readonly dir: string;
  readonly #s: ControlSymbols;

  constructor(dir: string, symbols: ControlSymbols) {
    this.dir = dir;
    this.#s = symbols;
  }

  /** One counter or gauge (throws on a name the simulator does not know). */
  counter(name: SimCounterName): number {
    const v = this.#s.hbSimCounter(cstr(name));
    // latency_us reads -1 when no override is set; every other name reads -1 only if unknown.
    if (v === -1n && name !== "latency_us") throw new Error(`simulator: unknown counter ${name}`);
    return Number(v);
  }

  /** Every counter and gauge at once. */
  counters(): Record<SimCounterName, number> {
    return Object.fromEntries(COUNTERS.map((n) => [n, this.counter(n)])) as Record<SimCounterName, number>;
  }

  /** Raw hbSimCounter result (-1 for an unknown name). */
  rawCounter(name: string): bigint {
    return this.#s.hbSimCounter(cstr(name));
  }

  /** A per-allocation counter of the hbUCPMalloc* allocation that holds `view` (-1 if none). */
  memCounter(view: ArrayBufferView, name: SimMemCounterName): number {
    return Number(this.#s.hbSimMemCounter(view, cstr(name)));
  }

  /** Zeroes the counters and the completion log (not the gauges). */
  reset(): void {
    this.#s.hbSimReset();
  }

  /** Global latency override in microseconds; -1 = each model's own latency. */
  setLatencyUs(us: number): void {
    this.#s.hbSimSetLatencyUs(BigInt(us));
  }

  /** Simulated BPU cores (1..4). */
  setCoreCount(n: number): void {
    this.#s.hbSimSetCoreCount(n);
  }

  /** The simulated SoC: "S600" = 4 cores, 64-byte alignment, the L2M rule; "S100" = 1 core. */
  setSoc(soc: "S100" | "S600"): void {
    this.#s.hbSimSetSoc(soc === "S600" ? 1 : 0);
  }

  /** Tasks held by other UCP users of the process (they count against the task cap). */
  reserveTasks(n: number): void {
    this.#s.hbSimReserveTasks(n);
  }

  /** Fault injection: the next n hbUCPReleaseTask calls fail and release nothing. */
  failRelease(n: number): void {
    this.#s.hbSimFailRelease(n);
  }

  /**
   * Fault injection: counting calls of fn from now, call nth (1-based) and the times-1 after it
   * (times -1: every call from nth on) fail with code and do nothing else. "task": the nth task
   * submitted from now finishes with code; "stall": it never completes until unstall() or
   * deviceReset(). code 0 removes fn's rule.
   */
  injectFault(fn: SimFaultTarget, nth: number, code: number, times = 1): void {
    this.#s.hbSimInjectFault(cstr(fn), BigInt(nth), code, times);
  }

  /** Removes every fault rule and every other injected fault (memory cap, corruption, jitter, NULL strings). */
  clearFaults(): void {
    this.#s.hbSimInjectFault(null, 0n, 0, 0);
    this.#s.hbSimSetMemCap(0n);
    this.#s.hbSimCorruptOutputs(0);
    this.#s.hbSimSetJitterUs(0n, 0n);
    this.#s.hbSimNullStrings(-1);
    this.#s.hbSimUnstall();
  }

  /** Device memory cap in bytes over every hbUCPMalloc* allocation (0: none). */
  setMemCap(bytes: number): void {
    this.#s.hbSimSetMemCap(BigInt(bytes));
  }

  /** Outputs of finished tasks: "nan" (all bits set), "garbage" (random bytes) or as computed ("off"). */
  corruptOutputs(mode: "off" | "nan" | "garbage"): void {
    this.#s.hbSimCorruptOutputs(mode === "nan" ? 1 : mode === "garbage" ? 2 : 0);
  }

  /** Each task's latency grows by a random [0, us) (seeded; 0 turns jitter off). */
  setJitterUs(us: number, seed = 0): void {
    this.#s.hbSimSetJitterUs(BigInt(us), BigInt(seed));
  }

  /** Stalled tasks go on and complete. */
  unstall(): void {
    this.#s.hbSimUnstall();
  }

  /** A driver reset: every task handle becomes invalid (-200004) and in-flight tasks are dropped. */
  deviceReset(): void {
    this.#s.hbSimDeviceReset();
  }

  /** Which strings the runtime returns as NULL: versions, the SoC name, error descriptions. */
  nullStrings(what: { version?: boolean; soc?: boolean; desc?: boolean } | "env"): void {
    if (what === "env") return this.#s.hbSimNullStrings(-1);
    this.#s.hbSimNullStrings((what.version ? 1 : 0) | (what.soc ? 2 : 0) | (what.desc ? 4 : 0));
  }

  /** Strict cache mode: the device reads/writes the simulated DRAM copy. */
  setStrictCache(on: boolean): void {
    this.#s.hbSimSetStrictCache(on ? 1 : 0);
  }

  /** customIds of completed tasks, in completion order (since the last reset). */
  completionLog(): number[] {
    const n = this.#s.hbSimCompletionLog(null, 0);
    const ids = new BigInt64Array(Math.max(n, 1));
    const m = this.#s.hbSimCompletionLog(ids, ids.length);
    return Array.from(ids.subarray(0, Math.min(n, m)), Number);
  }

  /**
   * Runs fn with some simulator settings and restores the defaults afterwards, whatever happens
   * (latency -1, 1 core, coherent cache), after the simulator has finished every task.
   */
  async with<T>(
    settings: { latencyUs?: number; cores?: number; strictCache?: boolean; soc?: "S100" | "S600" },
    fn: () => T | Promise<T>,
  ): Promise<T> {
    try {
      if (settings.soc !== undefined) this.setSoc(settings.soc);
      if (settings.latencyUs !== undefined) this.setLatencyUs(settings.latencyUs);
      if (settings.cores !== undefined) this.setCoreCount(settings.cores);
      if (settings.strictCache !== undefined) this.setStrictCache(settings.strictCache);
      return await fn();
    } finally {
      this.setSoc("S100");
      this.reserveTasks(0);
      this.failRelease(0);
      this.clearFaults();
      this.setLatencyUs(-1);
      this.setCoreCount(1);
      this.setStrictCache(false);
    }
  }

  /** Polls until pred() holds (true) or timeoutMs passes (false). */
  waitFor(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
    return pollUntil(pred, timeoutMs);
  }
}

/** Polls every 5 ms until pred() holds (true) or timeoutMs passes (false). */
export async function pollUntil(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

let sim: Sim | undefined;

/** Points a backend at a simulator's directory and loads it now (its id from the shim's table). */
export function loadSimBackend(name: BackendName, dir: string): void {
  setBackendSearchPath(name, [dir]);
  const native = loadNative();
  const version = new Uint8Array(256);
  const rc = native.symbols.er_backend_load(backendTable(native).named(name)!.id, version, version.length);
  if (rc !== 0) throw new EdgerunError("LIBRARY_NOT_FOUND", `${name} backend did not load from ${dir} (status ${rc})`);
}

/**
 * Points the shim's hbdnn backend at the simulator, loads it (libhbucp.so first, RTLD_GLOBAL), and
 * opens the simulator's control API from the same file: dlopen of an already loaded path returns
 * the same instance, so the counters are the ones the shim's calls move.
 */
export function useSim(): Sim {
  if (sim) return sim;
  const dir = simDir();
  for (const f of ["libhbucp.so", "libdnn.so"]) {
    assert.ok(existsSync(join(dir, f)), `${join(dir, f)} is missing: build the simulator (zig build sim)`);
  }
  loadSimBackend("hbdnn", dir);
  const lib = openRawLibrary(join(dir, "libhbucp.so"), controlTable);
  sim = new Sim(dir, lib.symbols as unknown as ControlSymbols);
  return sim;
}

let fileSeq = 0;

/** Writes simulator models into a fresh temp .hbm file and returns its path. */
export function simModelFile(models: SimModelSpec | readonly SimModelSpec[], name = "sim"): string {
  const list = Array.isArray(models) ? models : [models as SimModelSpec];
  return tempFile(`${name}-${process.pid}-${fileSeq++}.hbm`, writeSimModelFile(list));
}

/** The counters that changed between two snapshots, as after - before. */
export function delta(
  before: Record<SimCounterName, number>,
  after: Record<SimCounterName, number>,
): Record<SimCounterName, number> {
  return Object.fromEntries(COUNTERS.map((n) => [n, after[n] - before[n]])) as Record<SimCounterName, number>;
}

/** Asserts fn throws an EdgerunError with this code (and optionally vendor code / message match). */
export function throwsEdgerun(
  fn: () => unknown,
  code: string,
  more: { vendorCode?: number; message?: RegExp; backend?: string; call?: string; vendorMessage?: RegExp } = {},
): EdgerunError {
  let caught: EdgerunError | undefined;
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof EdgerunError, `expected an EdgerunError, got ${e}`);
    caught = e;
  }
  assert.ok(caught, `expected an EdgerunError with code ${code}, nothing was thrown`);
  assert.equal(caught.code, code, caught.message);
  if (more.vendorCode !== undefined) assert.equal(caught.vendorCode, more.vendorCode, caught.message);
  if (more.message) assert.match(caught.message, more.message);
  if (more.backend !== undefined) assert.equal(caught.backend, more.backend, caught.message);
  if (more.call !== undefined) assert.equal(caught.call, more.call, caught.message);
  if (more.vendorMessage) assert.match(caught.vendorMessage, more.vendorMessage);
  return caught;
}

let libc: { setenv(name: Uint8Array, value: Uint8Array, overwrite: number): number; unsetenv(name: Uint8Array): number } |
  undefined;

/**
 * Sets (or, with undefined, removes) a variable in the process's C environment, where the shim and
 * the simulator read it with getenv; the same on Deno and Bun.
 */
export function setNativeEnv(name: string, value: string | undefined): void {
  libc ??= openRawLibrary("libc.so.6", {
    setenv: { args: ["buffer", "buffer", "i32"], result: "i32" },
    unsetenv: { args: ["buffer"], result: "i32" },
  }).symbols as unknown as NonNullable<typeof libc>;
  const rc = value === undefined ? libc.unsetenv(cstr(name)) : libc.setenv(cstr(name), cstr(value), 1);
  assert.equal(rc, 0, `setenv ${name}`);
}

/** Runs fn with C environment variables set (undefined removes one); restores their absence after. */
export async function withNativeEnv<T>(vars: Record<string, string | undefined>, fn: () => T | Promise<T>): Promise<T> {
  try {
    for (const [k, v] of Object.entries(vars)) setNativeEnv(k, v);
    return await fn();
  } finally {
    for (const k of Object.keys(vars)) setNativeEnv(k, undefined);
  }
}
