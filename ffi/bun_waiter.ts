/**
 * Bun worker: blocks in er_completion_ready (one queue) off its realm's thread and posts back when
 * completions are ready. Started by ffi/bun.ts; the main thread has already loaded the library.
 * @module
 */
const ffi = await import("bun:ffi" as string) as {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: { er_completion_ready(queue: number, timeoutMs: number): number };
  };
};

/** The worker's global scope, typed without the DOM/worker libs. */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let wait: (() => number) | undefined;

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as { type: "open"; path: string; queue: number } | { type: "wait" };
  try {
    if (message.type === "open") {
      const lib = ffi.dlopen(message.path, { er_completion_ready: { args: ["u32", "i32"], returns: "i32" } });
      const queue = message.queue;
      wait = () => lib.symbols.er_completion_ready(queue, -1);
      return;
    }
    scope.postMessage({ ready: wait!() });
  } catch (e) {
    scope.postMessage({ ready: 0, error: String(e) });
  }
};
