/**
 * Process memory as the soak test reads it, on Deno and on Bun alike: /proc/self/status (Linux)
 * after full garbage collections, so that JS garbage waiting to be collected does not read as a
 * native leak, and after glibc's malloc_trim(0), so that freed memory the allocator keeps in its
 * per-thread arenas does not either. Memory still allocated is never trimmed: a leak stays visible.
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { openRawLibrary } from "../ffi/load.ts";
import { gc } from "../tests/compat.ts";

/** One reading, in bytes. */
export interface MemoryReading {
  /** VmRSS after the collections, before malloc_trim: what a user of the process sees. */
  untrimmed: number;
  /** VmRSS after malloc_trim. */
  rss: number;
  /** RssAnon after malloc_trim: heap, stacks, JIT code (where a leak would be). */
  anon: number;
  /** RssFile: pages of mapped files (code of the runtime and libraries, paged in on use). */
  file: number;
  /** Bytes in use on the JS heap. */
  heap: number;
}

/** VmRSS, RssAnon and RssFile of this process, in bytes. */
export function residentBytes(): { rss: number; anon: number; file: number } {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, "m").exec(status);
    if (!m) throw new Error(`no ${key} line in /proc/self/status: the soak test needs Linux`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") };
}

let libc: { malloc_trim(pad: bigint): number } | undefined;

/** glibc's malloc_trim(0): returns free pages of every malloc arena to the kernel. */
function mallocTrim(): void {
  libc ??= openRawLibrary("libc.so.6", { malloc_trim: { args: ["i64"], result: "i32" } })
    .symbols as unknown as { malloc_trim(pad: bigint): number };
  libc.malloc_trim(0n);
}

/**
 * A reading after two full collections with a pause between them (V8 frees ArrayBuffer memory
 * on a background thread after a collection; FinalizationRegistry callbacks run in a macrotask).
 * Throws when the runtime cannot force a collection.
 */
export async function readMemory(): Promise<MemoryReading> {
  for (let i = 0; i < 2; i++) {
    if (!gc()) throw new Error("cannot force a garbage collection: run Deno with --v8-flags=--expose-gc");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const untrimmed = residentBytes().rss;
  mallocTrim();
  return { untrimmed, ...residentBytes(), heap: process.memoryUsage().heapUsed };
}
