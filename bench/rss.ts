/**
 * Process memory as the soak test reads it, on Deno and on Bun alike: /proc/self/status (Linux)
 * after full garbage collections, so that JS garbage waiting to be collected does not read as a
 * native leak, and after glibc's malloc_trim(0), so that freed memory the allocator keeps in its
 * per-thread arenas does not either. Memory still allocated is never trimmed: a leak stays visible.
 * @module
 */
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  /** Bytes allocated through glibc malloc and not freed (malloc_info): exact, unlike RSS. */
  malloc: number;
  /** Bytes in use on the JS heap. */
  heap: number;
}

/** VmRSS, RssAnon and RssFile of this process, in bytes. */
function residentBytes(): { rss: number; anon: number; file: number } {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, "m").exec(status);
    if (!m) throw new Error(`no ${key} line in /proc/self/status: the soak test needs Linux`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") };
}

interface Libc {
  malloc_trim(pad: bigint): number;
  fopen(path: Uint8Array, mode: Uint8Array): unknown;
  fclose(file: unknown): number;
  malloc_info(options: number, file: unknown): number;
}

let libc: Libc | undefined;

function c(): Libc {
  libc ??= openRawLibrary("libc.so.6", {
    malloc_trim: { args: ["i64"], result: "i32" },
    fopen: { args: ["buffer", "buffer"], result: "handle" },
    fclose: { args: ["handle"], result: "i32" },
    malloc_info: { args: ["i32", "handle"], result: "i32" },
  }).symbols as unknown as Libc;
  return libc;
}

const cString = (s: string) => new TextEncoder().encode(s + "\0");
const infoPath = join(tmpdir(), `edgerun-soak-malloc-${process.pid}.xml`);

/**
 * Bytes glibc malloc has handed out and not had back, over every arena: from malloc_info's
 * process-wide totals, the arenas' memory less their free chunks, plus mmapped chunks. RSS cannot
 * see a small leak that fills free space already resident; this count does.
 */
function mallocInUse(): number {
  const file = c().fopen(cString(infoPath), cString("w"));
  if (!file) throw new Error(`cannot write ${infoPath}`);
  c().malloc_info(0, file);
  c().fclose(file);
  const xml = readFileSync(infoPath, "utf8");
  rmSync(infoPath, { force: true });
  const totals = xml.slice(xml.lastIndexOf("</heap>"));
  const size = (re: RegExp) => Number(re.exec(totals)?.[1] ?? NaN);
  const inUse = size(/<system type="current" size="(\d+)"/) - size(/<total type="fast" count="\d+" size="(\d+)"/) -
    size(/<total type="rest" count="\d+" size="(\d+)"/) + size(/<total type="mmap" count="\d+" size="(\d+)"/);
  if (!Number.isFinite(inUse)) throw new Error("cannot read glibc malloc_info totals");
  return inUse;
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
  c().malloc_trim(0n);
  return { untrimmed, ...residentBytes(), malloc: mallocInUse(), heap: process.memoryUsage().heapUsed };
}
