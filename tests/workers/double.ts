// A Pool worker for the tests: runs the shared float32 "y = x + x" model and post-processes in JS.
import { serveModel } from "../../mod.ts";

serveModel((model, message) => {
  const { values, fail } = message as { values: number[]; fail?: string };
  if (fail === "type") throw new TypeError("bad message");
  const [y] = model.run(Float32Array.from(values));
  return { sum: Array.from(y.toFloat32()).reduce((a, b) => a + b, 0), model: model.name };
});
