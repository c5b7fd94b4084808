/**
 * A pool of Workers sharing loaded models, for apps whose JS pre/post-processing is the
 * bottleneck. Each worker attaches to the models' native handles (no second load) and runs
 * its own requests; the pool hands each message to the least busy worker. A pool shares one
 * model ({@link serveModel}) or a pipeline of several by name ({@link servePipeline}).
 * @module
 */
import { EdgerunError } from "../ffi/errors.ts";
import { loadNative } from "../ffi/load.ts";
import { retireCompletions } from "./completions.ts";
import { Model, type SharedModel } from "./model.ts";

/**
 * Options of {@link Pool.create}.
 *
 * @example
 * ```ts
 * import { open, Pool, type PoolOptions } from "@edgerun/edgerun";
 * const options: PoolOptions = { workers: 4 };
 * using model = open("det.onnx");
 * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url), options);
 * ```
 */
export interface PoolOptions {
  /**
   * Number of workers (default 2).
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url), { workers: 3 });
   * console.log(pool.size); // 3
   * ```
   */
  workers?: number;
  /**
   * How long a worker may take to start and attach before create() rejects (default 30000 ms):
   * a worker module that never calls serveModel() fails instead of hanging.
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url), { startTimeoutMs: 5000 });
   * ```
   */
  startTimeoutMs?: number;
}

interface Pending {
  slot: Slot;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Slot {
  worker: Worker;
  busy: number;
  /** The worker's own terminate(). */
  stop: () => void;
  /** Set once the worker is being detached and stopped, or has died. */
  retired?: Promise<void>;
  /** The native model references this worker adopted (given back by the pool if it dies attached). */
  shared: SharedModel[];
  /** The worker was asked to detach: from then on it may have released its reference itself. */
  detachSent?: boolean;
}

/** How long a detaching worker may take to release its model before it is stopped anyway. */
const DETACH_GRACE_MS = 5000;

type Reply = { type: "ready" } | { type: "result"; id: number; value: unknown } | {
  type: "error";
  id: number;
  error: SerializedError;
};

/** An error sent from a worker; returned: an attach failed before the worker took its reference. */
interface SerializedError {
  name: string;
  message: string;
  code?: string;
  returned?: boolean;
}

/**
 * Workers that share a model. The worker module calls {@link serveModel} with a handler.
 *
 * @example
 * ```ts
 * // main.ts
 * import { open, Pool } from "@edgerun/edgerun";
 * const model = open("det.onnx");
 * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url), { workers: 2 });
 * const boxes = await pool.run({ image: new Uint8Array(640 * 640 * 3) });
 * ```
 */
export class Pool implements AsyncDisposable {
  readonly #slots: Slot[];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(slots: Slot[]) {
    this.#slots = slots;
    for (const slot of slots) {
      // A worker terminated from outside (a supervisor, a test) must neither strand its runs nor
      // keep its native model reference: its runs are rejected, then it detaches and stops.
      slot.worker.terminate = () => void this.#retire(slot);
      slot.worker.onmessage = (event: MessageEvent<Reply | { type: "exiting" }>) => {
        // The worker called self.close(): Deno reports that to no one (no event), so serveModel
        // says so first. Handled as a death: its runs reject, its reference comes back.
        if (event.data.type === "exiting") this.#died(slot, "it called self.close()");
        else this.#reply(event.data);
      };
      // Bun also ends a worker that stopped by itself with a close event (and an error event).
      slot.worker.addEventListener("close", () => this.#died(slot, "it stopped"));
      // An uncaught error (thrown from a timer, an unawaited rejection) ends the worker: only its
      // own runs fail, and the pool goes on with the others.
      slot.worker.onerror = (event: ErrorEvent) => {
        event.preventDefault?.();
        this.#died(slot, event.message);
      };
    }
  }

  /**
   * Starts the workers one after another (each loads libedgerun only after the previous one
   * has: Bun's concurrent dlopen from new Workers is unsafe) and attaches each to the model, or
   * to every model of a pipeline: an array (named by each model's name) or a record by name,
   * which the worker serves with {@link servePipeline}.
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url));
   * using det = open("det.onnx"), cls = open("cls.onnx"), rec = open("rec.onnx");
   * await using ocr = await Pool.create({ det, cls, rec }, new URL("./ocr_worker.ts", import.meta.url));
   * ```
   */
  static async create(
    models: Model | readonly Model[] | Readonly<Record<string, Model>>,
    workerModule: URL | string,
    options: PoolOptions = {},
  ): Promise<Pool> {
    if (typeof options !== "object" || options === null) throw new TypeError("pool options must be an object");
    const count = (Object.hasOwn(options, "workers") ? options.workers : undefined) ?? 2;
    if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError(`workers must be 1..64, got ${count}`);
    const startTimeoutMs = (Object.hasOwn(options, "startTimeoutMs") ? options.startTimeoutMs : undefined) ?? 30_000;
    if (typeof startTimeoutMs !== "number" || !(startTimeoutMs > 0) || startTimeoutMs > 0x7fffffff) {
      throw new RangeError(`startTimeoutMs must be a positive number of milliseconds, got ${startTimeoutMs}`);
    }
    const { names, list, single } = pipelineModels(models);
    // Native references per worker and model, taken before the first await: a model closed while
    // the workers start stays alive until each worker has adopted its reference or given it back.
    const shares: SharedModel[][] = [];
    try {
      for (let i = 0; i < count; i++) {
        const mine: SharedModel[] = [];
        shares.push(mine);
        for (const model of list) mine.push(model.share());
      }
    } catch (e) {
      for (const shared of shares.flat()) Model.unshare(shared);
      throw e;
    }
    let adopted = 0;
    const slots: Slot[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const worker = new Worker(workerModule, { type: "module" });
        slots.push({ worker, busy: 0, stop: worker.terminate.bind(worker), shared: shares[i] });
        await new Promise<void>((resolve, reject) => {
          let sent = false;
          const timer = setTimeout(() => {
            // Sent but not answered: the worker may still adopt the references, so they are not given back.
            if (sent) adopted++;
            reject(
              new EdgerunError(
                "TIMEOUT",
                `pool worker ${i} did not attach within ${startTimeoutMs} ms: does ${workerModule} call serveModel() or servePipeline()?`,
              ),
            );
          }, startTimeoutMs);
          worker.onmessage = (event: MessageEvent<Reply | { type: "hello" }>) => {
            // Attach only once the worker listens: Bun drops messages that arrive while a
            // worker module is still evaluating (top-level await).
            if (event.data.type === "hello" && !sent) {
              sent = true;
              worker.postMessage({ type: "attach", shared: shares[i], names, single });
            } else if (event.data.type === "ready") {
              clearTimeout(timer);
              adopted++;
              resolve();
            } else if (event.data.type === "error") {
              clearTimeout(timer);
              // The worker gave the references back only if it could not load the library.
              if (!event.data.error.returned) adopted++;
              reject(toError(event.data.error));
            }
          };
          worker.onerror = (event: ErrorEvent) => {
            event.preventDefault?.();
            clearTimeout(timer);
            if (sent) adopted++;
            reject(new EdgerunError("BACKEND", `pool worker ${i} failed to start: ${event.message}`));
          };
        });
      }
    } catch (e) {
      for (const s of slots) s.stop();
      for (const shared of shares.slice(adopted).flat()) Model.unshare(shared);
      throw e;
    }
    return new Pool(slots);
  }

  /**
   * Number of workers.
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url));
   * const frames = Array.from({ length: pool.size * 2 }, () => new Uint8Array(640 * 640 * 3));
   * await Promise.all(frames.map((image) => pool.run({ image })));
   * ```
   */
  get size(): number {
    return this.#slots.filter((s) => !s.retired).length;
  }

  /**
   * Sends a message to the least busy worker; resolves with its handler's result.
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url));
   * const image = new Uint8Array(640 * 640 * 3);
   * const scores = await pool.run<Float32Array>({ image }, [image.buffer]); // image moves to the worker
   * ```
   */
  run<T = unknown>(message: unknown, transfer: Transferable[] = []): Promise<T> {
    if (this.#closed) return Promise.reject(new EdgerunError("CLOSED", "the pool is closed"));
    const live = this.#slots.filter((s) => !s.retired);
    if (live.length === 0) {
      return Promise.reject(new EdgerunError("CLOSED", "every worker of the pool was terminated or died"));
    }
    const slot = live.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.#nextId++;
    slot.busy++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { slot, resolve: resolve as (v: unknown) => void, reject });
      slot.worker.postMessage({ type: "run", id, message }, transfer);
    });
  }

  #reply(reply: Reply): void {
    if (reply.type === "ready") return;
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    pending.slot.busy--;
    if (reply.type === "result") pending.resolve(reply.value);
    else pending.reject(toError(reply.error));
  }

  /** A worker that died: its runs reject, its model reference is given back, the pool shrinks. */
  #died(slot: Slot, message: string): void {
    if (slot.retired) return;
    slot.retired = Promise.resolve();
    const left = this.size;
    const error = new EdgerunError(
      "BACKEND",
      `a pool worker died (${message}); the pool goes on with ${left} worker${left === 1 ? "" : "s"}`,
    );
    for (const [id, p] of this.#pending) {
      if (p.slot !== slot) continue;
      this.#pending.delete(id);
      p.reject(error);
    }
    slot.busy = 0;
    slot.stop();
    // A dead worker runs no more JS: unless it was told to detach (and may have released it), its
    // reference is ours to give back. Its requests are not reachable from here and stay allocated.
    if (!slot.detachSent) for (const shared of slot.shared) Model.unshare(shared);
  }

  /**
   * Waits for messages in flight, then stops the workers (each detaches from the model).
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * using model = open("det.onnx");
   * const pool = await Pool.create(model, new URL("./worker.ts", import.meta.url));
   * try {
   *   await pool.run({ image: new Uint8Array(640 * 640 * 3) });
   * } finally {
   *   await pool.close();
   * }
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending.values()].map((p) =>
      new Promise<void>((done) => {
        const { resolve, reject } = p;
        p.resolve = (v) => (resolve(v), done());
        p.reject = (e) => (reject(e), done());
      })
    ));
    await Promise.all(this.#slots.map((slot) => slot.retired ?? this.#detach(slot)));
  }

  /** A worker terminated from outside: reject its runs, then detach and stop it. */
  #retire(slot: Slot): Promise<void> {
    if (slot.retired) return slot.retired;
    const error = new EdgerunError("CLOSED", "the pool worker running this message was terminated");
    for (const [id, p] of this.#pending) {
      if (p.slot !== slot) continue;
      this.#pending.delete(id);
      p.reject(error);
    }
    slot.busy = 0;
    return this.#detach(slot);
  }

  /** Lets the worker release its model reference, then stops it (after a grace period at most). */
  #detach(slot: Slot): Promise<void> {
    slot.detachSent = true;
    slot.retired = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DETACH_GRACE_MS);
      slot.worker.onmessage = (event: MessageEvent<{ type: string }>) => {
        if (event.data.type !== "detached") return;
        clearTimeout(timer);
        resolve();
      };
      slot.worker.postMessage({ type: "detach" });
    }).then(() => slot.stop());
    return slot.retired;
  }

  /**
   * Same as close().
   *
   * @example
   * ```ts
   * import { open, Pool } from "@edgerun/edgerun";
   * {
   *   using model = open("det.onnx");
   *   await using pool = await Pool.create(model, new URL("./worker.ts", import.meta.url));
   *   await pool.run({ image: new Uint8Array(640 * 640 * 3) });
   * } // workers stopped here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The models of Pool.create: one (single), an array named by model names, or a record by name. */
function pipelineModels(models: unknown): { names: string[]; list: Model[]; single: boolean } {
  if (models instanceof Model) return { names: [models.name], list: [models], single: true };
  const entries: [string, unknown][] = Array.isArray(models)
    ? models.map((m) => [m instanceof Model ? m.name : "", m])
    : typeof models === "object" && models !== null
    ? Object.entries(models)
    : [];
  if (entries.length === 0 || entries.some(([, m]) => !(m instanceof Model))) {
    throw new TypeError("Pool.create takes a Model, an array of Models or a record of Models by name");
  }
  const names = entries.map(([name]) => name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new TypeError(`two models of the pipeline are named '${twice}': pass a record to name them apart`);
  }
  return { names, list: entries.map(([, m]) => m as Model), single: false };
}

function toError(e: SerializedError): Error {
  if (e.code) return new EdgerunError(e.code as never, e.message);
  if (e.name === "TypeError") return new TypeError(e.message);
  if (e.name === "RangeError") return new RangeError(e.message);
  return new Error(e.message);
}

/**
 * The worker side's handler: gets the shared model and a message, returns the reply.
 *
 * @example
 * ```ts
 * import { type PoolHandler, serveModel } from "@edgerun/edgerun";
 * const handler: PoolHandler = (model, message) => model.run(message as Float32Array)[0].toFloat32();
 * serveModel(handler);
 * ```
 */
export type PoolHandler = (model: Model, message: unknown) => unknown | Promise<unknown>;

/**
 * The worker side's handler of a pipeline pool: gets the shared models by name and a message.
 *
 * @example
 * ```ts
 * import { type PipelineHandler, servePipeline } from "@edgerun/edgerun";
 * const handler: PipelineHandler = ({ det, rec }, message) => {
 *   const [map] = det.run(message as Float32Array);
 *   return rec.run(map.toFloat32())[0].toFloat32();
 * };
 * servePipeline(handler);
 * ```
 */
export type PipelineHandler = (models: Readonly<Record<string, Model>>, message: unknown) => unknown | Promise<unknown>;

/**
 * Serves a Pool from inside a worker module: attaches to the shared model and answers each
 * message with handler(model, message). Results are posted back (structured clone).
 *
 * @example
 * ```ts
 * // worker.ts
 * import { serveModel } from "@edgerun/edgerun";
 * serveModel((model, message) => {
 *   const { image } = message as { image: Uint8Array };
 *   const input = new Float32Array(image.length).map((_, i) => image[i] / 255);
 *   return model.run(input)[0].toFloat32();
 * });
 * ```
 */
export function serveModel(handler: PoolHandler): void {
  serve((models, message) => handler(Object.values(models)[0], message), true);
}

/**
 * Serves a pipeline Pool (`Pool.create([det, cls, rec], url)` or `Pool.create({ det, cls, rec }, url)`)
 * from inside a worker module: attaches to every shared model and answers each message with
 * handler(models, message), the models by name (an array's by each model's name).
 *
 * @example
 * ```ts
 * // ocr_worker.ts
 * import { servePipeline, writeNormalized } from "@edgerun/edgerun";
 * servePipeline(({ det, cls, rec }, message) => {
 *   const { rgb, width, height } = message as { rgb: Uint8Array; width: number; height: number };
 *   writeNormalized(det, rgb, { format: "rgb", width, height, resize: "auto", std: [255, 255, 255] });
 *   return det.run()[0].toFloat32();
 * });
 * ```
 */
export function servePipeline(handler: PipelineHandler): void {
  serve(handler, false);
}

function serve(handler: PipelineHandler, single: boolean): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent) => void) | null;
    postMessage(message: unknown, transfer?: Transferable[]): void;
  };
  let models: Record<string, Model> | undefined;
  let library: string | undefined;
  // A handler (or anything in the worker) calling self.close() ends the worker without any event
  // on Deno: tell the pool first, so the runs sent here reject instead of never settling.
  const self = (globalThis as unknown as { self?: { close?: () => void } }).self;
  const closeSelf = self?.close;
  if (self && typeof closeSelf === "function") {
    self.close = () => {
      scope.postMessage({ type: "exiting" });
      closeSelf.call(self);
    };
  }
  scope.onmessage = async (event: MessageEvent) => {
    const data = event.data as
      | { type: "attach"; shared: SharedModel[]; names: string[]; single: boolean }
      | { type: "run"; id: number; message: unknown }
      | { type: "detach" };
    if (data.type === "attach") {
      try {
        loadNative(data.shared[0].library);
      } catch (e) {
        scope.postMessage({ type: "error", id: 0, error: { ...serialize(e), returned: true } });
        return;
      }
      const adopted: Record<string, Model> = {};
      let next = 0; // data.shared[next..] are references this worker still has to adopt or give back
      try {
        if (single && !data.single) {
          throw new TypeError(`this pool shares ${data.names.length} models (${data.names.join(", ")}): serve it with servePipeline()`);
        }
        while (next < data.shared.length) {
          const k = next++;
          adopted[data.names[k]] = Model.adopt(data.shared[k]); // on failure the reference was released with the model
        }
        models = adopted;
        library = data.shared[0].library;
        scope.postMessage({ type: "ready" });
      } catch (e) {
        for (const model of Object.values(adopted)) model.close();
        for (const shared of data.shared.slice(next)) Model.unshare(shared);
        scope.postMessage({ type: "error", id: 0, error: serialize(e) });
      }
    } else if (data.type === "run") {
      try {
        const value = await handler(models!, data.message);
        scope.postMessage({ type: "result", id: data.id, value });
      } catch (e) {
        scope.postMessage({ type: "error", id: data.id, error: serialize(e) });
      }
    } else if (data.type === "detach") {
      for (const model of Object.values(models ?? {})) model.close();
      // The realm is about to stop: its completion queue id goes back to the process.
      if (library !== undefined) retireCompletions(loadNative(library));
      scope.postMessage({ type: "detached" });
    }
  };
  scope.postMessage({ type: "hello" });
}

function serialize(e: unknown): SerializedError {
  if (e instanceof EdgerunError) return { name: e.name, message: e.message, code: e.code };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "Error", message: String(e) };
}
