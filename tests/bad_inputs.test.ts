/**
 * The bad-input matrix: every way a caller can get the API wrong, one row each, with the error
 * it must produce (class and EdgerunError code) or "works" for the cases that must succeed.
 * Rows that load a vendor runtime differently run in a child process. After the matrix, the
 * shim's live handles and the simulator's tasks and buffers must be back where they started.
 *
 * Decisions the rows pin down:
 * - Resizable ArrayBuffers and growable SharedArrayBuffers are refused (TypeError): their length
 *   can change between the check and the moment a queued run copies the feed in. A fixed-length
 *   SharedArrayBuffer is accepted (the feed is copied in at run start, like any other).
 * - quantize: true with NaN or +-Infinity is an error (INVALID_ARGUMENT from the shim, nothing
 *   written): saturating would turn a sensor fault into a plausible-looking input.
 * - There is no way to unload libedgerun: finalizers and the shim's worker threads may still call
 *   into it, so it stays loaded for the life of the process; asking for another library while it
 *   is loaded is LOAD_FAILED and the models keep working.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as edgerun from "../mod.ts";
import { EdgerunError, loadLibrary, type Model, open, setBackendSearchPath } from "../mod.ts";
import process from "node:process";
import { runtime, test } from "./compat.ts";
import { dtypeModel, multiIoModel } from "./fixtures/onnx_models.ts";
import { root, runScript, tempDir, tempFile, values } from "./helpers.ts";
import { assertNothingLeft, liveCounts } from "./live_counts.ts";
import { simDir, simModelFile, useSim } from "./sim_helpers.ts";
import { simHeld, withHold } from "./sim_hold.ts";
import { simExpected, type SimModelSpec, writeSimModelFile } from "./sim/simfile.ts";

const sim = useSim();
const simBaseline = sim.counters();
const liveBaseline = liveCounts();

const F32 = tempFile("bad_f32.onnx", dtypeModel("float32"));
const MULTI = tempFile("bad_multi.onnx", multiIoModel());
const QUANT: SimModelSpec = {
  name: "quant",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 2] }],
  outputs: [{ name: "y", dtype: "S8", shape: [2, 2], quant: { scales: [0.5] } }],
};
const PADDED: SimModelSpec = {
  name: "padded",
  inputs: [{ name: "a", dtype: "F32", shape: [2, 3], stride: [16, 4] }],
  outputs: [{ name: "p", dtype: "F32", shape: [2, 3], stride: [32, 4], a: 2 }],
};
const QIN: SimModelSpec = {
  name: "qin",
  inputs: [{ name: "q", dtype: "S8", shape: [4], quant: { scales: [0.5], zeroPoints: [1] } }],
  outputs: [{ name: "d", dtype: "F32", shape: [4] }],
};
const SIM_BYTES = writeSimModelFile([QUANT]);
const SIM_QUANT = simModelFile(QUANT, "bad_quant");
const SIM_PADDED = simModelFile(PADDED, "bad_padded");
const SIM_QIN = simModelFile(QIN, "bad_qin");
const ONNX_BYTES = dtypeModel("float32");

type ErrorClass = typeof TypeError | typeof RangeError | typeof EdgerunError;
type Expect = "works" | [ErrorClass, string?];
interface Row {
  name: string;
  run: () => unknown;
  expect: Expect;
}

const x6 = () => Float32Array.from([1, 2, 3, 4, 5, 6]);
const withModel = <T>(path: string, fn: (m: Model) => T): T => {
  using model = open(path);
  return fn(model);
};
const withModelAsync = async <T>(path: string, fn: (m: Model) => Promise<T>): Promise<T> => {
  await using model = open(path);
  return await fn(model);
};
/** A feed whose buffer was transferred away. */
const detached = (): Float32Array => {
  const x = x6();
  (x.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  return x;
};
const closedModel = (path = F32): Model => {
  const model = open(path);
  model.close();
  return model;
};

/** Runs fn on a fresh model while 32 async runs of another hold every hbdnn task slot. */
function whileSlotsFull(fn: (m: Model) => unknown): Promise<unknown> {
  return sim.with({ latencyUs: 100_000, cores: 4 }, async () => {
    using busy = open(SIM_QUANT, { maxRequests: 32 });
    using model = open(SIM_QUANT);
    const runs = Promise.all(Array.from({ length: 32 }, () => busy.runAsync(new Float32Array(4))));
    try {
      assert.ok(await sim.waitFor(() => sim.counter("tasks_live") === 32), "32 tasks in flight");
      return fn(model);
    } finally {
      await runs;
    }
  });
}

/** A fresh process runs `body` (a snippet that may throw); the error it threw is rebuilt here. */
function inChild(body: string, env: Record<string, string>): void {
  const code = `
    import * as edgerun from ${JSON.stringify(join(root, "mod.ts"))};
    try { ${body}; console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ name: e?.name, code: e?.code, message: String(e?.message) })); }`;
  const r = runScript(code, env);
  assert.equal(r.signal, null, `the child was killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  if (out.ok) return;
  if (out.name === "EdgerunError") throw new EdgerunError(out.code, out.message);
  if (out.name === "TypeError") throw new TypeError(out.message);
  if (out.name === "RangeError") throw new RangeError(out.message);
  throw new Error(`${out.name}: ${out.message}`);
}

const rows: Row[] = [
  // ---- feeds: count, names, types, sizes ----
  { name: "too few feeds in an array", run: () => withModel(MULTI, (m) => m.run([new Float32Array(4)])), expect: [TypeError] },
  { name: "too many feeds in an array", run: () => withModel(F32, (m) => m.run([x6(), x6()])), expect: [TypeError] },
  { name: "one bare feed for a 3-input model", run: () => withModel(MULTI, (m) => m.run(new Float32Array(4))), expect: [TypeError] },
  {
    name: "unknown input name",
    run: () => withModel(F32, (m) => m.run({ x: x6(), z: x6() })),
    expect: [TypeError],
  },
  { name: "missing input name", run: () => withModel(MULTI, (m) => m.run({ a: new Float32Array(4) })), expect: [TypeError] },
  { name: "wrong dtype (Float64Array for float32)", run: () => withModel(F32, (m) => m.run(new Float64Array(6))), expect: [TypeError] },
  { name: "wrong dtype (BigInt64Array for float32)", run: () => withModel(F32, (m) => m.run(new BigInt64Array(6))), expect: [TypeError] },
  { name: "wrong dtype on hbdnn (Int8Array for F32)", run: () => withModel(SIM_QUANT, (m) => m.run(new Int8Array(4))), expect: [TypeError] },
  { name: "a plain JS array", run: () => withModel(F32, (m) => m.run([1, 2, 3, 4, 5, 6] as never)), expect: [TypeError] },
  { name: "a DataView", run: () => withModel(F32, (m) => m.run(new DataView(new ArrayBuffer(24)) as never)), expect: [TypeError] },
  { name: "null feeds", run: () => withModel(F32, (m) => m.run(null as never)), expect: [TypeError] },
  { name: "wrong element count", run: () => withModel(F32, (m) => m.run(new Float32Array(5))), expect: [RangeError] },
  { name: "empty TypedArray", run: () => withModel(F32, (m) => m.run(new Float32Array(0))), expect: [RangeError] },
  {
    name: "explicit shape that disagrees with the model",
    run: () => withModel(F32, (m) => m.run({ data: x6(), shape: [3, 2] })),
    expect: [RangeError],
  },
  { name: "detached ArrayBuffer", run: () => withModel(F32, (m) => m.run(detached())), expect: [TypeError] },
  {
    name: "detached ArrayBuffer (runAsync)",
    run: () => withModelAsync(F32, (m) => m.runAsync(detached())),
    expect: [TypeError],
  },
  {
    name: "resizable ArrayBuffer",
    run: () =>
      withModel(F32, (m) => {
        const buffer = new ArrayBuffer(24, { maxByteLength: 48 } as never);
        return m.run(new Float32Array(buffer, 0, 6));
      }),
    expect: [TypeError],
  },
  {
    name: "resizable ArrayBuffer shrunk while the run waits in the queue",
    run: () =>
      withModelAsync(F32, (m) => {
        const buffer = new ArrayBuffer(24, { maxByteLength: 48 }) as ArrayBuffer & { resize(n: number): void };
        const pending = m.runAsync(new Float32Array(buffer));
        buffer.resize(0);
        return pending;
      }),
    expect: [TypeError],
  },
  {
    name: "growable SharedArrayBuffer",
    run: () =>
      withModel(F32, (m) => m.run(new Float32Array(new SharedArrayBuffer(24, { maxByteLength: 48 } as never)))),
    expect: [TypeError],
  },
  {
    name: "fixed-length SharedArrayBuffer (works, same result)",
    run: () =>
      withModel(F32, (m) => {
        const x = new Float32Array(new SharedArrayBuffer(24));
        x.set(x6());
        assert.deepEqual(values(m.run(x)[0].data), [2, 4, 6, 8, 10, 12]);
      }),
    expect: "works",
  },
  {
    name: "fixed-length SharedArrayBuffer on a padded hbdnn input (works)",
    run: () =>
      withModel(SIM_PADDED, (m) => {
        const x = new Float32Array(new SharedArrayBuffer(24));
        x.set(x6());
        assert.deepEqual(values(m.run(x)[0].dense(), Number), [2, 4, 6, 8, 10, 12]);
      }),
    expect: "works",
  },
  // ---- subarray views with offsets ----
  {
    name: "subarray with an offset (ort) equals a dense run",
    run: () =>
      withModel(F32, (m) => {
        const dense = Array.from(m.run(x6())[0].data as Float32Array);
        const big = new Float32Array(11);
        big.set(x6(), 3);
        assert.deepEqual(Array.from(m.run(big.subarray(3, 9))[0].data as Float32Array), dense);
      }),
    expect: "works",
  },
  {
    name: "subarray at an odd byte offset (Uint8Array, hbdnn) equals a dense run",
    run: () =>
      withModel(SIM_QIN, (m) => {
        const dense = Array.from(m.run(Int8Array.from([-3, 0, 5, 127]))[0].data as Float32Array);
        const big = new Int8Array(9);
        big.set([-3, 0, 5, 127], 5);
        assert.deepEqual(Array.from(m.run(big.subarray(5))[0].data as Float32Array), dense);
        assert.deepEqual(dense, Array.from(simExpected(QIN, [[-3, 0, 5, 127]])[0]));
      }),
    expect: "works",
  },
  {
    name: "subarray with an offset into a padded input equals a dense run",
    run: () =>
      withModel(SIM_PADDED, (m) => {
        const dense = values(m.run(x6())[0].dense(), Number);
        const big = new Float32Array(20);
        big.set(x6(), 7);
        assert.deepEqual(values(m.run(big.subarray(7, 13))[0].dense(), Number), dense);
        assert.deepEqual(dense, [2, 4, 6, 8, 10, 12]);
      }),
    expect: "works",
  },
  {
    name: "subarray with an offset, quantized on the way in, equals a dense run",
    run: () =>
      withModel(SIM_QIN, (m) => {
        const f = Float32Array.from([-2, 0, 2.5, 60]);
        const dense = Array.from(m.run({ data: f, quantize: true })[0].data as Float32Array);
        const big = new Float32Array(9);
        big.set(f, 3);
        assert.deepEqual(Array.from(m.run({ data: big.subarray(3, 7), quantize: true })[0].data as Float32Array), dense);
        assert.deepEqual(dense, [-2, 0, 2.5, 60]);
      }),
    expect: "works",
  },
  {
    name: "subarray with an offset (runAsync) equals a dense run",
    run: () =>
      withModelAsync(F32, async (m) => {
        const big = new Float32Array(10);
        big.set(x6(), 4);
        const [y] = await m.runAsync(big.subarray(4));
        assert.deepEqual(values(y.data), [2, 4, 6, 8, 10, 12]);
      }),
    expect: "works",
  },
  {
    name: "an output Tensor of a closed model as a feed",
    run: () => {
      const other = open(F32);
      const [y] = other.run(x6());
      other.close();
      return withModel(F32, (m) => m.run(y));
    },
    expect: [TypeError],
  },
  {
    name: "another model's input view as a feed (zero-copy native memory; works)",
    run: () =>
      withModel(SIM_PADDED, (a) =>
        withModel(F32, (m) => {
          (m.inputs[0].data as Float32Array).set(x6());
          assert.deepEqual(values(a.run(m.inputs[0].data)[0].dense(), Number), [2, 4, 6, 8, 10, 12]);
        })),
    expect: "works",
  },
  {
    name: "a model's own input view and its previous output as feeds (works)",
    run: () =>
      withModel(F32, (m) => {
        (m.inputs[0].data as Float32Array).set(x6());
        const [y] = m.run(m.inputs[0].data);
        assert.deepEqual(values(m.run(y)[0].data), [4, 8, 12, 16, 20, 24]);
      }),
    expect: "works",
  },
  // ---- quantization ----
  {
    name: "quantize with NaN",
    run: () => withModel(SIM_QIN, (m) => m.run({ data: Float32Array.from([0, NaN, 1, 2]), quantize: true })),
    expect: [EdgerunError, "INVALID_ARGUMENT"],
  },
  {
    name: "quantize with +Infinity",
    run: () => withModel(SIM_QIN, (m) => m.run({ data: Float32Array.from([0, 1, Infinity, 2]), quantize: true })),
    expect: [EdgerunError, "INVALID_ARGUMENT"],
  },
  {
    name: "quantize with -Infinity leaves the input untouched",
    run: () =>
      withModel(SIM_QIN, (m) => {
        (m.inputs[0].data as Int8Array).set([9, 9, 9, 9]);
        try {
          m.run({ data: Float32Array.from([0, 1, 2, -Infinity]), quantize: true });
        } finally {
          assert.deepEqual(Array.from(m.inputs[0].data as Int8Array), [9, 9, 9, 9]);
        }
      }),
    expect: [EdgerunError, "INVALID_ARGUMENT"],
  },
  {
    name: "quantize saturates finite values out of range",
    run: () =>
      withModel(SIM_QIN, (m) => {
        m.run({ data: Float32Array.from([1e30, -1e30, 0, 0]), quantize: true });
        assert.deepEqual(Array.from(m.inputs[0].data as Int8Array).slice(0, 2), [127, -128]);
      }),
    expect: "works",
  },
  {
    name: "quantize with an Int8Array",
    run: () => withModel(SIM_QIN, (m) => m.run({ data: new Int8Array(4), quantize: true })),
    expect: [TypeError],
  },
  // ---- run options ----
  { name: "priority 256", run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { priority: 256 })), expect: [RangeError] },
  { name: "priority -1", run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { priority: -1 })), expect: [RangeError] },
  { name: "priority 1.5", run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { priority: 1.5 })), expect: [RangeError] },
  { name: "priority NaN", run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { priority: NaN })), expect: [RangeError] },
  {
    name: "priority as a string",
    run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { priority: "1" as never })),
    expect: [RangeError],
  },
  {
    name: "priority 255 (works)",
    run: () => withModel(SIM_QUANT, (m) => assert.deepEqual(values(m.run(Float32Array.from([1, 2, 3, 4]), { priority: 255 })[0].data), [2, 4, 6, 8])),
    expect: "works",
  },
  {
    name: "core mask without a BPU bit (bit 4)",
    run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { cores: 16 })),
    expect: [RangeError],
  },
  { name: "empty core list", run: () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { cores: [] })), expect: [RangeError] },
  {
    name: "core the board lacks (simulator: 1 core, cores [2])",
    run: () => sim.with({ cores: 1 }, () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { cores: [2] }))),
    expect: [EdgerunError, "INVALID_ARGUMENT"],
  },
  {
    name: "core the board lacks, async",
    run: () => sim.with({ cores: 2 }, () => withModelAsync(SIM_QUANT, (m) => m.runAsync(new Float32Array(4), { cores: [3] }))),
    expect: [EdgerunError, "INVALID_ARGUMENT"],
  },
  {
    name: "core 1 on a 2-core simulator (works)",
    run: () => sim.with({ cores: 2 }, () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { cores: [1] }))),
    expect: "works",
  },
  { name: "negative timeout", run: () => withModel(F32, (m) => m.run(x6(), { timeoutMs: -1 })), expect: [RangeError] },
  { name: "NaN timeout", run: () => withModel(F32, (m) => m.run(x6(), { timeoutMs: NaN })), expect: [RangeError] },
  { name: "Infinity timeout", run: () => withModel(F32, (m) => m.runAsync(x6(), { timeoutMs: Infinity })), expect: [RangeError] },
  { name: "customId NaN", run: () => withModel(F32, (m) => m.run(x6(), { customId: NaN })), expect: [RangeError] },
  {
    name: "duplicate core indexes (works)",
    run: () => withModel(SIM_QUANT, (m) => assert.equal(m.run(new Float32Array(4), { cores: [0, 0] })[0].data.length, 4)),
    expect: "works",
  },
  { name: "maxRequests 0", run: () => open(F32, { maxRequests: 0 }), expect: [RangeError] },
  { name: "maxRequests 1.5", run: () => open(F32, { maxRequests: 1.5 }), expect: [RangeError] },
  { name: "unknown backend for a search path", run: () => setBackendSearchPath("tpu" as never, []), expect: [RangeError] },
  { name: "another library path on open()", run: () => open(F32, { library: "/elsewhere/libedgerun.so" }), expect: [EdgerunError, "LOAD_FAILED"] },
  {
    name: "runAsync while closeAsync() waits for runs in flight",
    run: () =>
      sim.with({ latencyUs: 20_000 }, async () => {
        const m = open(SIM_QUANT);
        const first = m.runAsync(new Float32Array(4));
        const closing = m.closeAsync();
        try {
          return await m.runAsync(new Float32Array(4));
        } finally {
          await first;
          await closing;
          assert.equal(m.closed, true);
        }
      }),
    expect: [EdgerunError, "CLOSED"],
  },
  {
    name: "copy() of an output after close",
    run: () => {
      const m = open(F32);
      const [y] = m.run(x6());
      const kept = y.copy();
      m.close();
      assert.deepEqual(values(kept.data), [2, 4, 6, 8, 10, 12], "a copy outlives its model");
      return y.copy();
    },
    expect: [EdgerunError, "CLOSED"],
  },
  { name: "customId beyond 32 bits", run: () => withModel(F32, (m) => m.run(x6(), { customId: 2 ** 40 })), expect: [RangeError] },
  { name: "unknown run option", run: () => withModel(F32, (m) => m.run(x6(), { prio: 1 } as never)), expect: [TypeError] },
  {
    name: "signal that is not an AbortSignal",
    run: () => withModel(F32, (m) => m.runAsync(x6(), { signal: {} as never })),
    expect: [TypeError],
  },
  // ---- closed models ----
  { name: "run on a closed model", run: () => closedModel().run(x6()), expect: [EdgerunError, "CLOSED"] },
  { name: "runAsync on a closed model", run: () => closedModel().runAsync(x6()), expect: [EdgerunError, "CLOSED"] },
  { name: "describe on a closed model", run: () => closedModel().describe(), expect: [EdgerunError, "CLOSED"] },
  { name: "inputs[0].data of a closed model", run: () => closedModel(SIM_QUANT).inputs[0].data, expect: [EdgerunError, "CLOSED"] },
  {
    name: "close twice (works; closeAsync after close too)",
    run: async () => {
      const m = closedModel(SIM_QUANT);
      m.close();
      await m.closeAsync();
      assert.equal(m.closed, true);
    },
    expect: "works",
  },
  {
    name: "an output read after close",
    run: () => {
      const m = open(F32);
      const [y] = m.run(x6());
      m.close();
      assert.equal(y.data.length, 0);
      return y.dense();
    },
    expect: [EdgerunError, "CLOSED"],
  },
  {
    name: "closing the library while a model is open: no unload API; another library is LOAD_FAILED",
    run: () =>
      withModel(F32, (m) => {
        assert.ok(!Object.keys(edgerun).some((k) => /close.*library|unload/i.test(k)), "a library-close export appeared");
        try {
          loadLibrary(join(tempDir(), "other", "libedgerun.so"));
        } finally {
          assert.deepEqual(values(m.run(x6())[0].data), [2, 4, 6, 8, 10, 12]);
        }
      }),
    expect: [EdgerunError, "LOAD_FAILED"],
  },
  // ---- files ----
  { name: "missing file", run: () => open(join(tempDir(), "nope.onnx")), expect: [EdgerunError, "FILE"] },
  {
    name: "directory instead of a file",
    run: () => {
      const dir = join(tempDir(), "dir.hbm");
      mkdirSync(dir, { recursive: true });
      return open(dir);
    },
    expect: [EdgerunError, "FILE"],
  },
  { name: "empty path", run: () => open(""), expect: [TypeError] },
  { name: "options that are not an object", run: () => open(F32, 3 as never), expect: [TypeError] },
  { name: "empty .onnx", run: () => open(tempFile("empty.onnx", new Uint8Array(0))), expect: [EdgerunError, "INVALID_MODEL"] },
  { name: "empty .hbm", run: () => open(tempFile("empty.hbm", new Uint8Array(0))), expect: [EdgerunError, "INVALID_MODEL"] },
  {
    name: "truncated .onnx",
    run: () => open(tempFile("trunc.onnx", ONNX_BYTES.subarray(0, ONNX_BYTES.length - 9))),
    expect: [EdgerunError, "INVALID_MODEL"],
  },
  {
    name: "corrupt .onnx (bytes flipped in the middle)",
    run: () => {
      const b = ONNX_BYTES.slice();
      for (let i = 8; i < b.length - 8; i += 5) b[i] ^= 0xa5;
      return open(tempFile("corrupt.onnx", b));
    },
    expect: [EdgerunError, "INVALID_MODEL"],
  },
  {
    name: "truncated .hbm (simulator)",
    run: () => open(tempFile("trunc.hbm", SIM_BYTES.subarray(0, SIM_BYTES.length - 3))),
    expect: [EdgerunError, "INVALID_MODEL"],
  },
  {
    name: "corrupt .hbm (simulator, magic)",
    run: () => {
      const b = SIM_BYTES.slice();
      b[1] ^= 0xff;
      return open(tempFile("corrupt.hbm", b));
    },
    expect: [EdgerunError, "INVALID_MODEL"],
  },
  { name: "an ONNX file forced onto hbdnn", run: () => open(F32, { backend: "hbdnn" }), expect: [EdgerunError, "INVALID_MODEL"] },
  { name: "a simulator .hbm forced onto ort", run: () => open(SIM_QUANT, { backend: "ort" }), expect: [EdgerunError, "INVALID_MODEL"] },
  {
    name: "an ONNX file renamed .hbm (content decides nothing: hbdnn refuses it)",
    run: () => open(tempFile("onnx-inside.hbm", ONNX_BYTES)),
    expect: [EdgerunError, "INVALID_MODEL"],
  },
  { name: "unknown model name in a pack", run: () => open(SIM_QUANT, { model: "other" }), expect: [EdgerunError, "NOT_FOUND"] },
  { name: "search path containing ':'", run: () => setBackendSearchPath("hbdnn", ["/a:/b"]), expect: [TypeError] },
  // ---- vendor libraries (fresh processes) ----
  {
    name: "hbdnn vendor libraries missing",
    run: () => inChild(`edgerun.open(${JSON.stringify(SIM_QUANT)})`, { EDGERUN_HBDNN_LIB_DIR: join(tempDir(), "empty-dir") }),
    expect: [EdgerunError, "LIBRARY_NOT_FOUND"],
  },
  {
    name: "hbdnn vendor library of an unknown version (UCP 4.1)",
    run: () => inChild(`edgerun.open(${JSON.stringify(SIM_QUANT)})`, { EDGERUN_HBDNN_LIB_DIR: simDir(), HBSIM_UCP_VERSION: "4.1.0" }),
    expect: [EdgerunError, "UNSUPPORTED"],
  },
  {
    name: "hbdnn vendor library of the J6 generation (UCP 3.0.31)",
    run: () => inChild(`edgerun.open(${JSON.stringify(SIM_QUANT)})`, { EDGERUN_HBDNN_LIB_DIR: simDir(), HBSIM_UCP_VERSION: "3.0.31" }),
    expect: [EdgerunError, "UNSUPPORTED"],
  },
  {
    name: "hbdnn vendor library with an unreadable version string",
    run: () => inChild(`edgerun.open(${JSON.stringify(SIM_QUANT)})`, { EDGERUN_HBDNN_LIB_DIR: simDir(), HBSIM_UCP_VERSION: "dev" }),
    expect: [EdgerunError, "UNSUPPORTED"],
  },
  {
    name: "the simulator's own version loads in a child (works)",
    run: () => inChild(`edgerun.open(${JSON.stringify(SIM_QUANT)}).close()`, { EDGERUN_HBDNN_LIB_DIR: simDir() }),
    expect: "works",
  },
  {
    name: "ONNX Runtime missing",
    run: () => inChild(`edgerun.open(${JSON.stringify(F32)})`, { EDGERUN_ORT_LIB: join(tempDir(), "libonnxruntime.so.1") }),
    expect: [EdgerunError, "LIBRARY_NOT_FOUND"],
  },
  {
    name: "ONNX Runtime path pointing at a file that is not a library",
    run: () => inChild(`edgerun.open(${JSON.stringify(F32)})`, { EDGERUN_ORT_LIB: F32 }),
    expect: [EdgerunError, "LIBRARY_NOT_FOUND"],
  },
  // ---- async lifecycle ----
  {
    name: "more than 32 hbdnn runs at once queue; none fail",
    run: () =>
      sim.with({ latencyUs: 3000 }, async () => {
        const models = [0, 1, 2].map(() => open(SIM_QUANT, { maxRequests: 20 }));
        const before = sim.counters();
        let peak = 0;
        const watch = setInterval(() => (peak = Math.max(peak, sim.counter("tasks_live"))), 1);
        try {
          const runs = Array.from({ length: 50 }, (_, i) => models[i % 3].runAsync(Float32Array.from([i, 1, -1, 0])));
          const outs = await Promise.all(runs);
          outs.forEach((o, i) => assert.deepEqual(values(o[0].data), [Math.min(2 * i, 127), 2, -2, 0]));
          const d = sim.counters();
          assert.equal(d.tasks_created - before.tasks_created, 50);
          assert.equal(d.tasks_failed - before.tasks_failed, 0);
          assert.ok(peak <= 32, `at most 32 live vendor tasks, saw ${peak}`);
        } finally {
          clearInterval(watch);
          for (const m of models) m.close();
        }
      }),
    expect: "works",
  },
  {
    name: "a sync run while 32 async runs hold every vendor task slot waits for one",
    run: () => whileSlotsFull((m) => assert.deepEqual(values(m.run(Float32Array.from([1, 2, 3, 4]))[0].data), [2, 4, 6, 8])),
    expect: "works",
  },
  {
    name: "a sync run whose timeout passes while it waits for a task slot",
    run: () => whileSlotsFull((m) => m.run(new Float32Array(4), { timeoutMs: 5 })),
    expect: [EdgerunError, "TIMEOUT"],
  },
  {
    name: "abort after a run finished: no effect, the result stays",
    run: () =>
      withModelAsync(SIM_QUANT, async (m) => {
        const controller = new AbortController();
        const out = await m.runAsync(Float32Array.from([1, 2, 3, 4]), { signal: controller.signal });
        controller.abort();
        await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(values(out[0].data), [2, 4, 6, 8]);
        assert.deepEqual(values(m.run(Float32Array.from([4, 3, 2, 1]))[0].data), [8, 6, 4, 2]);
      }),
    expect: "works",
  },
  {
    name: "an already aborted signal",
    run: () => withModelAsync(F32, (m) => m.runAsync(x6(), { signal: AbortSignal.abort() })),
    expect: [EdgerunError, "CANCELLED"],
  },
  {
    name: "close while runAsync is on the device rejects it with CLOSED",
    run: () =>
      withHold(sim, async () => {
        const m = open(SIM_QUANT);
        const pending = m.runAsync(new Float32Array(4));
        pending.catch(() => {}); // settled below; observed now so the wait is not an unhandled rejection
        // The device holds the task: it is certainly on the device, and certainly not done.
        assert.ok(await sim.waitFor(() => simHeld(sim) === 1), "the task is on the device");
        m.close();
        return await pending;
      }),
    expect: [EdgerunError, "CLOSED"],
  },
  {
    name: "a sync run that times out",
    run: () => withHold(sim, () => withModel(SIM_QUANT, (m) => m.run(new Float32Array(4), { timeoutMs: 5 }))),
    expect: [EdgerunError, "TIMEOUT"],
  },
];

function checkOutcome(row: Row, error: unknown): void {
  if (row.expect === "works") {
    if (error !== undefined) throw error;
    return;
  }
  const [cls, code] = row.expect;
  assert.ok(error !== undefined, `${row.name}: expected ${cls.name}${code ? ` ${code}` : ""}, it worked`);
  assert.ok(error instanceof cls, `${row.name}: expected ${cls.name}, got ${error}`);
  if (cls === EdgerunError) assert.equal((error as EdgerunError).code, code, String(error));
  else assert.ok(!(error instanceof EdgerunError), `${row.name}: expected a plain ${cls.name}, got ${error}`);
  assert.ok((error as Error).message.length > 0, "the error says what was wrong");
}

const expectation = (e: Expect): string => e === "works" ? "works" : e[1] ? `${e[0].name} ${e[1]}` : e[0].name;

// Bun under qemu-user (make test-aarch64) aborts in JSC's mprotect on any resizable or growable
// buffer, before edgerun is involved: those rows run natively only.
const emulatedBun = runtime === "bun" && !!process.env.EDGERUN_TEST_EXEC_PREFIX;
const needsResizable = (row: Row) => /resizable|growable/.test(row.name);

for (const row of rows) {
  if (emulatedBun && needsResizable(row)) {
    console.log(`bad inputs: skipped under qemu on Bun (JSC cannot reserve a resizable buffer there): ${row.name}`);
    continue;
  }
  test(`bad inputs: ${row.name} -> ${expectation(row.expect)}`, async () => {
    let error: unknown;
    try {
      await row.run();
    } catch (e) {
      error = e;
    }
    checkOutcome(row, error);
  });
}

test("bad inputs: the matrix has at least 40 rows", () => {
  assert.ok(rows.length >= 40, `${rows.length} rows`);
});

test("bad inputs: nothing is left behind (shim handles, simulator tasks and buffers)", async () => {
  await assertNothingLeft(sim, liveBaseline, simBaseline);
});

test("bad inputs: a run(x) feed checked on an earlier run and detached since is refused with the feed's own error", () => {
  // run(x) checks an array once and trusts it while its length holds (bench: a control loop feeds
  // the same array each time); a detached buffer reads length 0, so it is checked again.
  withModel(F32, (m) => {
    const x = x6();
    const y = values(m.run(x)[0].data, Number);
    assert.deepEqual(values(m.run(x)[0].data, Number), y);
    x[0] = 7;
    assert.notDeepEqual(values(m.run(x)[0].data, Number), y, "a rewritten array is copied in again");
    (x.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
    const detachedError = (e: unknown) => e instanceof TypeError && /input 'x': the ArrayBuffer is detached/.test(e.message);
    assert.throws(() => m.run(x), detachedError);
    // Another array of the wrong length after a good one: its own check.
    assert.throws(() => m.run(new Float32Array(5)), RangeError);
    assert.deepEqual(values(m.run(x6())[0].data, Number), y);
  });
});
