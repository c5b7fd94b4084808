// A Pool worker that runs the shared float32 "y = x + x" model with runAsync (completions in a worker realm).
import { serveModel } from "../../mod.ts";

serveModel(async (model, message) => {
  const { values } = message as { values: number[] };
  const [y] = await model.runAsync(Float32Array.from(values));
  return { sum: Array.from(y.toFloat32()).reduce((a, b) => a + b, 0) };
});
