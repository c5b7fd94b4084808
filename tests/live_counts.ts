/**
 * The shim's live handle counts (er_debug_live_counts, a diagnostics export that ffi/ does not
 * bind), read through a second dlopen of the loaded libedgerun: the same instance, so the same
 * counters. For leak checks that cover every backend, ort included.
 */
import assert from "node:assert/strict";
import { loadNative, openRawLibrary } from "../ffi/load.ts";
import type { Sim, SimCounterName } from "./sim_helpers.ts";

/** Live packs, models, requests and submitted runs still on a worker thread. */
export interface LiveCounts {
  packs: number;
  models: number;
  requests: number;
  submitted: number;
}

let read: ((out: Int32Array) => void) | undefined;

/** The shim's current live counts. */
export function liveCounts(): LiveCounts {
  if (!read) {
    const lib = openRawLibrary(loadNative().path, { er_debug_live_counts: { args: ["buffer"], result: "void" } });
    read = lib.symbols.er_debug_live_counts as unknown as (out: Int32Array) => void;
  }
  const out = new Int32Array(4);
  read(out);
  return { packs: out[0], models: out[1], requests: out[2], submitted: out[3] };
}

/** Polls until no count exceeds the baseline (true) or timeoutMs passes (false). */
export async function settledTo(baseline: LiveCounts, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  const done = () => {
    const now = liveCounts();
    return (Object.keys(baseline) as (keyof LiveCounts)[]).every((k) => now[k] <= baseline[k]);
  };
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/**
 * Asserts that nothing is left after a case: no live shim handle beyond the baseline, no simulator
 * task, no more simulator buffers than before, and no buffer freed in use or stale handle used.
 */
export async function assertNothingLeft(
  sim: Sim,
  baseline: LiveCounts,
  simBefore: Record<SimCounterName, number>,
  timeoutMs = 5000,
): Promise<void> {
  assert.ok(await settledTo(baseline, timeoutMs), `live handles ${JSON.stringify(liveCounts())} vs ${JSON.stringify(baseline)}`);
  assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 0, timeoutMs), "simulator tasks still live");
  const now = sim.counters();
  assert.ok(now.mem_live <= simBefore.mem_live, `simulator buffers: ${now.mem_live} live, ${simBefore.mem_live} before`);
  assert.equal(now.free_in_use - simBefore.free_in_use, 0, "a buffer was freed while the device used it");
  assert.equal(now.bad_handles - simBefore.bad_handles, 0, "a stale handle reached the vendor API");
}
