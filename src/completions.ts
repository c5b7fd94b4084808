/**
 * Routes run completions to their callbacks. Each realm (the main thread, every Worker: this
 * module is evaluated once per realm) has its own native completion queue, so a realm only ever
 * sees the tags of its own runs. One pump per queue waits off the JS thread (ffi: Deno
 * nonblocking call, Bun worker) only while runs are in flight.
 * @module
 */
import type { Handle, Native } from "../ffi/abi.ts";
import { check, EdgerunError, nativeError } from "../ffi/errors.ts";

export class Completions {
  readonly #native: Native;
  readonly #tags = new Uint32Array(256);
  readonly #handlers = new Map<number, (error?: Error) => void>();
  readonly #queue: number;
  #nextTag = 1;
  #pumping = false;
  #retired = false;

  constructor(native: Native) {
    this.#native = native;
    const out = new Uint32Array(1);
    check(native, native.symbols.er_completion_queue_new(out), "cannot create a completion queue");
    this.#queue = out[0];
  }

  /** Points a request's completions at this realm's queue (once per request). */
  adopt(request: Handle): void {
    check(this.#native, this.#native.symbols.er_request_set_queue(request, this.#queue));
  }

  /** Number of runs waiting for completion. */
  get pending(): number {
    return this.#handlers.size;
  }

  /**
   * Reserves a tag whose completion calls handler once (with an error if the queue itself
   * failed: the run's outcome is then unknown to this realm).
   */
  register(handler: (error?: Error) => void): number {
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
    if (this.#handlers.size === 0 && this.#pumping) this.#native.symbols.er_completion_wake_on(this.#queue);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#handlers.size > 0) {
        const ready = await this.#native.waitCompletions(this.#queue);
        if (ready < 0) return this.#failAll(nativeError(this.#native, ready, "waiting for run completions failed"));
        const n = this.#native.symbols.er_completion_take(this.#queue, this.#tags, this.#tags.length);
        if (n < 0) return this.#failAll(nativeError(this.#native, n, "taking run completions failed"));
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
    } catch (e) {
      // Every run waiting here gets a typed error (a Bun waiter that could not start or died).
      this.#failAll(
        e instanceof EdgerunError ? e : new EdgerunError("BUSY", `waiting for run completions failed: ${e}`, { cause: e }),
      );
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Gives the native queue back (once). Its waiter is woken and runs still out in this realm
   * fail here; their tags are dropped by the shim. Used when the realm is about to end.
   */
  retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    this.#native.symbols.er_completion_queue_free(this.#queue);
  }

  #failAll(error: Error): void {
    const handlers = [...this.#handlers.values()];
    this.#handlers.clear();
    for (const handler of handlers) {
      try {
        handler(error);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

const byNative = new WeakMap<Native, Completions>();

/**
 * Gives this realm's completion queue back (a Pool worker that is about to stop: queue ids are
 * a process-wide resource). A later run in this realm makes a new one.
 */
export function retireCompletions(native: Native): void {
  byNative.get(native)?.retire();
  byNative.delete(native);
}

/** The completion router of a loaded library. */
export function completionsOf(native: Native): Completions {
  let c = byNative.get(native);
  if (!c) {
    c = new Completions(native);
    byNative.set(native, c);
  }
  return c;
}
