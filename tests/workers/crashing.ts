// A Pool worker that can be made to die: an error thrown from a timer ends it (an uncaught error).
import { serveModel } from "../../mod.ts";

serveModel((model, message) => {
  const { crash, v } = message as { crash?: boolean; v: number };
  if (crash) setTimeout(() => { throw new Error("boom in worker"); }, 0);
  const [y] = model.run(new Float32Array(6).fill(v));
  return y.data[0];
});
