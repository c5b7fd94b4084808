/**
 * Routes run completions from the shim's queue to their callbacks. One pump per library waits
 * off the JS thread (ffi: Deno nonblocking call, Bun worker) only while runs are in flight.
 * @module
 */
import type { Native } from "../ffi/abi.ts";

export class Completions {
  readonly #native: Native;
  readonly #tags = new Uint32Array(256);
  readonly #handlers = new Map<number, () => void>();
  #nextTag = 1;
  #pumping = false;

  constructor(native: Native) {
    this.#native = native;
  }

  /** Number of runs waiting for completion. */
  get pending(): number {
    return this.#handlers.size;
  }

  /** Reserves a tag whose completion calls handler once. */
  register(handler: () => void): number {
    let tag = this.#nextTag;
    while (tag === 0 || this.#handlers.has(tag)) tag = (tag + 1) >>> 0;
    this.#nextTag = (tag + 1) >>> 0;
    this.#handlers.set(tag, handler);
    return tag;
  }

  /** Starts waiting if not already (call after a successful submit). */
  expect(): void {
    if (!this.#pumping) void this.#pump();
  }

  /** Forgets a tag whose run will never complete to us (its request was orphaned or submit failed). */
  forget(tag: number): void {
    this.#handlers.delete(tag);
    if (this.#handlers.size === 0 && this.#pumping) this.#native.symbols.er_completion_wake();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#handlers.size > 0) {
        const n = await this.#native.waitCompletions(this.#tags);
        for (let i = 0; i < n; i++) {
          const tag = this.#tags[i];
          const handler = this.#handlers.get(tag);
          if (!handler) continue;
          this.#handlers.delete(tag);
          try {
            handler();
          } catch (e) {
            // A handler settles a promise; it must not break the pump for other runs.
            queueMicrotask(() => {
              throw e;
            });
          }
        }
      }
    } finally {
      this.#pumping = false;
    }
  }
}

const byNative = new WeakMap<Native, Completions>();

/** The completion router of a loaded library. */
export function completionsOf(native: Native): Completions {
  let c = byNative.get(native);
  if (!c) {
    c = new Completions(native);
    byNative.set(native, c);
  }
  return c;
}
