// onnxruntime-node's session creation time on Node, measured as bench/open_time.ts measures edgerun's.
import * as ort from "onnxruntime-node";

const [roundsText, ...paths] = process.argv.slice(2);
await (await ort.InferenceSession.create(paths[0], { intraOpNumThreads: 1 })).release();
const result = {};
for (const path of paths) {
  let best = Infinity;
  for (let round = 0; round < Number(roundsText); round++) {
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
    best = Math.min(best, performance.now() - t0);
    await session.release();
  }
  result[path] = best;
}
console.log(JSON.stringify(result));
