/**
 * Bun worker: blocks in er_completion_wait off the main thread and posts the tags back.
 * Started by ffi/bun.ts; the main thread has already loaded the library.
 * @module
 */
const ffi = await import("bun:ffi" as string) as {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: { er_completion_wait(tags: Uint32Array, cap: number, timeoutMs: number): number };
  };
};

/** The worker's global scope, typed without the DOM/worker libs. */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let wait: ((tags: Uint32Array, cap: number, timeoutMs: number) => number) | undefined;

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as { type: "open"; path: string } | { type: "wait"; cap: number };
  try {
    if (message.type === "open") {
      const lib = ffi.dlopen(message.path, { er_completion_wait: { args: ["ptr", "u32", "i32"], returns: "i32" } });
      wait = lib.symbols.er_completion_wait;
      return;
    }
    const tags = new Uint32Array(message.cap);
    const count = wait!(tags, tags.length, -1);
    scope.postMessage({ count: Math.max(count, 0), tags });
  } catch (e) {
    scope.postMessage({ count: 0, tags: new Uint32Array(0), error: String(e) });
  }
};
