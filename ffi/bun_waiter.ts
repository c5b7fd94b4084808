/**
 * Bun worker: blocks in er_completion_wait_on (one queue) off its realm's thread and posts the tags back.
 * Started by ffi/bun.ts; the main thread has already loaded the library.
 * @module
 */
const ffi = await import("bun:ffi" as string) as {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: { er_completion_wait_on(queue: number, tags: Uint32Array, cap: number, timeoutMs: number): number };
  };
};

/** The worker's global scope, typed without the DOM/worker libs. */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let wait: ((tags: Uint32Array, cap: number) => number) | undefined;

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as { type: "open"; path: string; queue: number } | { type: "wait"; cap: number };
  try {
    if (message.type === "open") {
      const lib = ffi.dlopen(message.path, {
        er_completion_wait_on: { args: ["u32", "ptr", "u32", "i32"], returns: "i32" },
      });
      const queue = message.queue;
      wait = (tags, cap) => lib.symbols.er_completion_wait_on(queue, tags, cap, -1);
      return;
    }
    const tags = new Uint32Array(message.cap);
    const count = wait!(tags, tags.length);
    scope.postMessage({ count, tags });
  } catch (e) {
    scope.postMessage({ count: 0, tags: new Uint32Array(0), error: String(e) });
  }
};
