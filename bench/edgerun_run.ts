// edgerun's sync run() on the current runtime (Deno or Bun). Prints JSON timings.
import process from "node:process";
import { open } from "../mod.ts";

const [model, iterations, warmup, dimsText, threads] = process.argv.slice(2);
const dims = dimsText.split(",").map(Number);
const size = dims.reduce((a, b) => a * b, 1);
const data = Float32Array.from({ length: size }, (_, i) => ((i * 2654435761) % 1000) / 500 - 1);
using m = open(model, threads ? { intraOpThreads: Number(threads) } : {});
const feed = { data, shape: dims };
const times: number[] = [];
for (let i = 0; i < Number(warmup) + Number(iterations); i++) {
  const t0 = performance.now();
  m.run(feed);
  if (i >= Number(warmup)) times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(JSON.stringify({ mean, p50: times[times.length >> 1], p99: times[Math.floor(times.length * 0.99)], min: times[0] }));
