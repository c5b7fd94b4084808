// A Pool worker that leaves a slow runAsync out when asked (its realm stops with a run in flight).
import { serveModel } from "../../mod.ts";

serveModel((model, message) => {
  const { leave } = message as { leave?: boolean };
  if (leave) void model.runAsync(new Float32Array(model.inputs[0].byteSize / 4)).catch(() => {});
  return "ok";
});
