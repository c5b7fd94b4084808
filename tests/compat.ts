/**
 * One test API over Deno.test and bun:test, so every test file runs on both runtimes.
 * (The library itself keeps runtime-specific code in ffi/; this is the suite's equivalent.)
 */
type TestFn = () => void | Promise<void>;

interface BunTest {
  test(name: string, fn: TestFn, timeoutMs?: number): void;
}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const bunTest = isBun ? await import("bun:test" as string) as BunTest : undefined;

/** The runtime running the suite. */
export const runtime: "deno" | "bun" = isBun ? "bun" : "deno";

/** Registers a test. */
export function test(name: string, fn: TestFn): void {
  if (bunTest) {
    bunTest.test(name, fn, 120_000);
  } else {
    // Native handles and FinalizationRegistry callbacks outlive single tests by design.
    (globalThis as unknown as { Deno: { test(o: object): void } }).Deno.test({
      name,
      fn,
      sanitizeResources: false,
      sanitizeOps: false,
    });
  }
}

/** Forces a full garbage collection (Deno needs --v8-flags=--expose-gc; returns false if unavailable). */
export function gc(): boolean {
  const bun = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;
  if (bun) {
    bun.gc(true);
    return true;
  }
  const v8gc = (globalThis as { gc?: () => void }).gc;
  if (v8gc) {
    v8gc();
    return true;
  }
  return false;
}
