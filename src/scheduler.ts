/**
 * Asynchronous runs: a queue per backend in priority order, requests taken from each model's
 * pool, at most the backend's task limit in flight (its row of the shim's table: hbdnn 32 vendor
 * tasks per process).
 * Runs start on the shim's threads and complete through the completion queue, so the event
 * loop never waits on a device.
 * @module
 */
import type { Native } from "../ffi/abi.ts";
import type { BackendInfo } from "../ffi/backends.ts";
import { EdgerunError, nativeError, Status } from "../ffi/errors.ts";
import { completionsOf } from "./completions.ts";
import { Outputs } from "./outputs.ts";
import type { CheckedFeed, Request, Schedule } from "./request.ts";

/** What the scheduler needs from a model. */
export interface RunHost {
  readonly name: string;
  /** Its backend's row: the lane it queues in and that lane's limit. */
  readonly backend: BackendInfo;
  readonly native: Native;
  /** An idle request (the pool grows to its limit), or undefined when all are busy. */
  acquire(): Request | undefined;
  /** Returns a request after its run completed. */
  release(request: Request): void;
  /** Records the times of a finished run. */
  record(deviceMs: number, endToEndMs: number): void;
}

interface Job {
  host: RunHost;
  feeds: (CheckedFeed | undefined)[];
  schedule: Schedule;
  seq: number;
  calledAt: number;
  deadline: number; // performance.now() ms, Infinity if none
  state: "queued" | "running" | "settled";
  request?: Request;
  tag?: number;
  resolve(outputs: Outputs): void;
  reject(error: unknown): void;
  cleanup(): void;
}

interface Lane {
  /** Runs this backend may have in flight in this process. */
  limit: number;
  queue: Job[];
  running: Set<Job>;
  inflight: number;
  /** A drain scheduled after the backend refused a run for lack of vendor task slots. */
  retry?: ReturnType<typeof setTimeout>;
  /** The wait before the next BUSY retry: doubles while runs are refused, reset when one completes. */
  busyDelayMs: number;
}

/** One lane per backend name, made by its first run. */
const lanes = new Map<string, Lane>();

function laneOf(backend: BackendInfo): Lane {
  let lane = lanes.get(backend.name);
  if (!lane) {
    lane = { limit: backend.taskLimit, queue: [], running: new Set(), inflight: 0, busyDelayMs: 0 };
    lanes.set(backend.name, lane);
  }
  return lane;
}
/**
 * Back-off of runs refused with BUSY: 2 ms, doubling to 50 ms, back to 2 ms once a run completes.
 * Slots held by work this lane does not count (a closed model's tasks, timed-out runs) can stay
 * taken for seconds; polling every 2 ms cost about 15% of a core.
 */
const BUSY_RETRY_MIN_MS = 2;
const BUSY_RETRY_MAX_MS = 50;
let sequence = 0;

/** Higher priority first, then smaller customId, then first come. */
function before(a: Job, b: Job): boolean {
  if (a.schedule.priority !== b.schedule.priority) return a.schedule.priority > b.schedule.priority;
  if (a.schedule.customId !== b.schedule.customId) return a.schedule.customId < b.schedule.customId;
  return a.seq < b.seq;
}

function enqueue(lane: Lane, job: Job): void {
  let lo = 0, hi = lane.queue.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(lane.queue[mid], job)) lo = mid + 1;
    else hi = mid;
  }
  lane.queue.splice(lo, 0, job);
}

function settle(job: Job, error: unknown, outputs?: Outputs): void {
  if (job.state === "settled") return;
  job.state = "settled";
  job.feeds = []; // the caller's arrays are no longer needed
  job.cleanup();
  if (error !== undefined) job.reject(error);
  else job.resolve(outputs!);
}

/** Starts queued jobs while their backend has room and their model a free request. */
function drain(lane: Lane): void {
  for (let i = 0; i < lane.queue.length && lane.inflight < lane.limit;) {
    const job = lane.queue[i];
    let request: Request | undefined;
    try {
      request = job.host.acquire();
    } catch (e) {
      // A new request could not be made (out of memory, say): this run fails, the queue goes on.
      lane.queue.splice(i, 1);
      settle(job, e);
      continue;
    }
    if (!request) {
      i++;
      continue;
    }
    lane.queue.splice(i, 1);
    start(lane, job, request);
  }
}

/**
 * Writes a job's feeds and submits it. Whatever throws before the submit succeeds (a feed, the
 * FFI call itself) returns the request to its pool and rejects the run: a request is never left
 * marked busy with nothing running on it.
 */
function start(lane: Lane, job: Job, request: Request): void {
  const { host } = job;
  const completions = completionsOf(host.native);
  let tag: number | undefined;
  let status: number;
  try {
    job.feeds.forEach((feed, i) => feed && request.feed(i, feed));
    tag = completions.register((error) => complete(lane, job, request, error));
    const remaining = job.deadline === Infinity ? 0 : Math.max(1, Math.ceil(job.deadline - performance.now()));
    status = request.submit({ ...job.schedule, timeoutMs: remaining }, tag, completions);
  } catch (e) {
    if (tag !== undefined) completions.forget(tag);
    host.release(request);
    return settle(job, e);
  }
  if (status !== 0) {
    completions.forget(tag);
    const error = nativeError(host.native, status, `cannot start a run of '${host.name}'`);
    host.release(request);
    return settle(job, error);
  }
  job.state = "running";
  job.request = request;
  job.tag = tag;
  lane.running.add(job);
  lane.inflight++;
  completions.expect();
}

function complete(lane: Lane, job: Job, request: Request, lost?: Error): void {
  lane.inflight--;
  lane.running.delete(job);
  const { host } = job;
  if (lost) {
    // The completion queue failed: whether the run ended is unknown here. The request is
    // dropped (the shim frees it once its run is over), never reused.
    settle(job, lost);
    request.free();
    host.release(request);
    return drain(lane);
  }
  const status = request.complete();
  request.unsettled = status === Status.CANCELLED || status === Status.TIMEOUT;
  // A request that can never run again (hbdnn: its task could not be released) is dropped, and
  // the model makes another: it must not go back to the pool to fail every later run.
  if (status !== 0 && !request.usable) request.free();
  if (status === Status.BUSY && job.state === "running") {
    // Vendor task slots are still held by runs this lane no longer counts (a closed model's runs
    // finishing on the device, timed-out tasks): queue the run again and retry shortly.
    host.release(request);
    job.state = "queued";
    job.request = undefined;
    enqueue(lane, job);
    if (lane.retry === undefined) {
      const delay = Math.max(BUSY_RETRY_MIN_MS, lane.busyDelayMs);
      lane.busyDelayMs = Math.min(2 * delay, BUSY_RETRY_MAX_MS);
      lane.retry = setTimeout(() => {
        lane.retry = undefined;
        drain(lane);
      }, delay);
    }
    return;
  }
  lane.busyDelayMs = 0; // progress: a slot may have come free
  if (status !== 0) {
    settle(job, nativeError(host.native, status, `run of '${host.name}' failed`));
  } else if (job.state !== "settled") {
    // The request goes back to the pool now: hand out copies that outlive its next run.
    const outputs = new Outputs();
    try {
      for (const t of request.outputs) outputs.push(t.copy());
      host.record(request.lastRunMs, performance.now() - job.calledAt);
      settle(job, undefined, outputs);
    } catch (e) {
      settle(job, e);
    }
  }
  host.release(request);
  drain(lane);
}

/** Options of runAsync beyond the schedule. */
export interface AsyncOptions {
  signal?: AbortSignal;
  timeoutMs: number;
}

/** Queues a run; the promise settles with owned output tensors or a typed error. */
export function runAsync(host: RunHost, feeds: (CheckedFeed | undefined)[], schedule: Schedule, options: AsyncOptions): Promise<Outputs> {
  const lane = laneOf(host.backend);
  const calledAt = performance.now();
  return new Promise<Outputs>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const signal = options.signal;
    const job: Job = {
      host,
      feeds,
      schedule,
      seq: sequence++,
      calledAt,
      deadline: options.timeoutMs > 0 ? calledAt + options.timeoutMs : Infinity,
      state: "queued",
      resolve,
      reject,
      cleanup: () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      },
    };
    const stop = (error: EdgerunError) => {
      if (job.state === "queued") {
        const at = lane.queue.indexOf(job);
        if (at >= 0) lane.queue.splice(at, 1);
      } else if (job.state === "running") {
        // The device keeps the buffers until the run ends; the completion recycles them.
        job.request?.cancel();
      }
      settle(job, error);
    };
    const onAbort = () =>
      stop(new EdgerunError("CANCELLED", `run of '${host.name}' was aborted`, { cause: signal?.reason }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (options.timeoutMs > 0) {
      timer = setTimeout(
        () => stop(new EdgerunError("TIMEOUT", `run of '${host.name}' did not finish within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    }
    enqueue(lane, job);
    drain(lane);
  });
}

/** Rejects every queued run of a model (on close). */
export function rejectQueued(host: RunHost, error: EdgerunError): void {
  const lane = lanes.get(host.backend.name);
  if (!lane) return;
  for (const job of lane.queue.filter((j) => j.host === host)) {
    lane.queue.splice(lane.queue.indexOf(job), 1);
    settle(job, error);
  }
}

/**
 * A model closes with runs on the device: their requests are freed by the shim when the device
 * is done with them (er_request_free on a running request), so drop them here and reject.
 */
export function abandonRunning(host: RunHost, error: EdgerunError): Request[] {
  const lane = lanes.get(host.backend.name);
  if (!lane) return [];
  const requests: Request[] = [];
  for (const job of [...lane.running].filter((j) => j.host === host)) {
    lane.running.delete(job);
    lane.inflight--;
    completionsOf(host.native).forget(job.tag!);
    requests.push(job.request!);
    settle(job, error);
  }
  drain(lane);
  return requests;
}

/** Runs of any model in flight or queued on a backend (for tests and diagnostics). */
export function backendLoad(backend: string): { inflight: number; queued: number } {
  const lane = lanes.get(backend);
  return { inflight: lane?.inflight ?? 0, queued: lane?.queue.length ?? 0 };
}
