/**
 * Model open time through the public API on the current runtime: the library and ONNX Runtime
 * load once (not counted), then each model is opened and closed ROUNDS times; prints the best
 * milliseconds per model as JSON.  open_time.ts ROUNDS MODEL...
 */
import process from "node:process";
import { open } from "../mod.ts";

const [roundsText, ...paths] = process.argv.slice(2);
open(paths[0], { intraOpThreads: 1 }).close(); // loads libedgerun and ONNX Runtime
const result: Record<string, number> = {};
for (const path of paths) {
  let best = Infinity;
  for (let round = 0; round < Number(roundsText); round++) {
    const t0 = performance.now();
    const model = open(path, { intraOpThreads: 1 });
    best = Math.min(best, performance.now() - t0);
    model.close();
  }
  result[path] = best;
}
console.log(JSON.stringify(result));
