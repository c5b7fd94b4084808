// A Pool worker for the tests: runs the shared float32 "y = x + x" model and post-processes in JS.
import { serveModel } from "../../mod.ts";

serveModel(async (model, message) => {
  const { values, fail, delayMs } = message as { values: number[]; fail?: string; delayMs?: number };
  if (fail === "type") throw new TypeError("bad message");
  // Keeps the message in the worker for a while (to terminate a worker mid-run).
  if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
  const [y] = model.run(Float32Array.from(values));
  return { sum: Array.from(y.toFloat32()).reduce((a, b) => a + b, 0), model: model.name };
});
