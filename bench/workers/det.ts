// Pool worker for the bench: one detector run per message, on the shared model.
import { serveModel } from "../../mod.ts";

serveModel((model, message) => {
  const { data, shape } = message as { data: Float32Array; shape: number[] };
  const [y] = model.run({ data, shape });
  return y.shape[2];
});
