/**
 * The Bun adapter: bun:ffi dlopen over the neutral symbol table. Bun has no asynchronous FFI,
 * so blocking symbols run on a Worker that loads the same library (after the main thread has
 * loaded it: concurrent dlopen from fresh Workers is unsafe in Bun) and posts results back.
 * @module
 */
import type { Adapter, Handle, Native, Symbols } from "./abi.ts";
import { EdgerunError } from "./errors.ts";
import { type NeutralType, type SymbolTable, symbols } from "./symbols.ts";

/** The part of bun:ffi this adapter uses (Bun's own types are not a dependency). */
interface BunFFI {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, unknown>; close(): void };
  toArrayBuffer(pointer: number, byteOffset: number, byteLength: number): ArrayBuffer;
}

/** A Bun Worker: the standard Worker plus ref/unref. */
interface BunWorker extends Worker {
  ref(): void;
  unref(): void;
}

const bunType = {
  u32: "u32",
  i32: "i32",
  i64: "i64",
  f64: "f64",
  handle: "ptr",
  buffer: "ptr",
  void: "void",
} as const satisfies Record<NeutralType, string>;

const ffi = await import("bun:ffi" as string) as BunFFI;

/** The bun:ffi symbol table for libedgerun. */
export function bunSymbols(source: SymbolTable = symbols): Record<string, { args: string[]; returns: string }> {
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(source)) {
    table[name] = { args: def.args.map((a) => bunType[a]), returns: bunType[def.result] };
  }
  return table;
}

/**
 * Runs er_completion_ready on a worker, one per queue (so one per realm); the worker holds the
 * process only while a wait is out.
 */
function completionWaiter(path: string): (queue: number) => Promise<number> {
  const waiters = new Map<number, () => Promise<number>>();
  return (queue) => {
    let wait = waiters.get(queue);
    if (!wait) waiters.set(queue, wait = queueWaiter(path, queue));
    return wait();
  };
}

function queueWaiter(path: string, queue: number): () => Promise<number> {
  let worker: BunWorker | undefined;
  let pending: { resolve: (n: number) => void; reject: (e: unknown) => void } | undefined;
  // A waiter that cannot start (no thread left) or dies fails the wait with a typed error: the
  // runs waiting on it are rejected (src/completions.ts) and the next wait starts a new waiter.
  const lost = (message: string, cause?: unknown) => {
    const dead = worker;
    worker = undefined;
    try {
      dead?.terminate();
    } catch {
      // already gone
    }
    const p = pending;
    pending = undefined;
    p?.reject(new EdgerunError("BUSY", message, cause === undefined ? undefined : { cause }));
  };
  return () => {
    if (pending) return Promise.reject(new EdgerunError("STATE", "waitCompletions is already waiting"));
    if (!worker) {
      try {
        worker = new Worker(new URL("./bun_waiter.ts", import.meta.url)) as BunWorker;
      } catch (e) {
        worker = undefined;
        return Promise.reject(
          new EdgerunError("BUSY", `cannot start the completion waiter worker (${e}); runs are retried on the next call`, {
            cause: e,
          }),
        );
      }
      const self = worker;
      worker.onmessage = (event: MessageEvent<{ ready: number; error?: string }>) => {
        const p = pending!;
        pending = undefined;
        self.unref();
        if (event.data.error) return p.reject(new EdgerunError("BUSY", `completion waiter: ${event.data.error}`));
        p.resolve(event.data.ready);
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault?.();
        if (worker === self) lost(`the completion waiter worker failed: ${event.message ?? event}`, event.error);
      };
      worker.onmessageerror = () => {
        if (worker === self) lost("the completion waiter worker sent an unreadable message");
      };
      worker.addEventListener("close", () => {
        if (worker === self) lost("the completion waiter worker stopped");
      });
      worker.postMessage({ type: "open", path, queue });
    }
    return new Promise<number>((resolve, reject) => {
      pending = { resolve, reject };
      worker!.ref();
      worker!.postMessage({ type: "wait" });
    });
  };
}

/**
 * er_clock_ms's clock from performance.now(), far cheaper than an FFI call in Bun: both count
 * CLOCK_MONOTONIC, so they differ by a constant. Each sample reads the native clock first, so
 * the largest difference seen is never later than the native clock: a time taken with it never
 * comes out after one the shim stamps.
 */
function monotonicClock(nativeMs: () => number): () => number {
  let offset = -Infinity;
  for (let i = 0; i < 64; i++) {
    const native = nativeMs();
    offset = Math.max(offset, native - performance.now());
  }
  return () => performance.now() + offset;
}

function open(path: string): Native {
  const lib = ffi.dlopen(path, bunSymbols());
  const symbols = lib.symbols as unknown as Symbols;
  return {
    symbols,
    path,
    handle: (address: bigint): Handle => Number(address) as unknown as Handle,
    address: (handle: Handle): bigint => BigInt(handle as unknown as number),
    view(address: bigint, byteLength: number): ArrayBuffer {
      if (byteLength === 0 || address === 0n) return new ArrayBuffer(0);
      return ffi.toArrayBuffer(Number(address), 0, byteLength);
    },
    waitCompletions: completionWaiter(path),
    clockMs: monotonicClock(symbols.er_clock_ms),
    close: () => lib.close(),
  };
}

function openRaw(path: string, table: SymbolTable) {
  const lib = ffi.dlopen(path, bunSymbols(table));
  return { symbols: lib.symbols as Record<string, (...args: never[]) => unknown>, close: () => lib.close() };
}

/** The Bun runtime adapter. */
export const adapter: Adapter = { runtime: "bun", open, openRaw };
