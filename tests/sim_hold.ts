/**
 * The simulator's hold (hbSimHold, tests/sim/FORMAT.md section 4): tasks that finish their work
 * stay running until released. A test that needs "the device is still busy" sets it as a state
 * instead of racing a latency against the clock. The bound only ends a test whose code blocks on
 * the device (it fails instead of hanging).
 */
import { join } from "node:path";
import { openRawLibrary } from "../ffi/load.ts";
import type { Sim } from "./sim_helpers.ts";

/** Longer than any test needs: reached only when the code under test blocks on the device. */
export const HOLD_BOUND_US = 8_000_000;

let hold: ((us: bigint) => void) | undefined;

/** Holds finished tasks for at most us microseconds (0 releases them at once). */
export function simHold(sim: Sim, us: number): void {
  hold ??= openRawLibrary(join(sim.dir, "libhbucp.so"), { hbSimHold: { args: ["i64"], result: "void" } })
    .symbols.hbSimHold as unknown as (us: bigint) => void;
  hold(BigInt(us));
}

/** Tasks waiting at the hold: done with their work, still running on the device. */
export function simHeld(sim: Sim): number {
  return Number(sim.rawCounter("tasks_held"));
}

/** Runs fn with the device holding every finished task; always releases the hold. */
export async function withHold<T>(sim: Sim, fn: () => T | Promise<T>): Promise<T> {
  simHold(sim, HOLD_BOUND_US);
  try {
    return await fn();
  } finally {
    simHold(sim, 0);
  }
}
