// onnxruntime-node on Node: the alternative a JS user picks today. Prints JSON timings.
import * as ort from "onnxruntime-node";

const [model, iterations, warmup, dimsText, threads] = process.argv.slice(2);
const dims = dimsText.split(",").map(Number);
const size = dims.reduce((a, b) => a * b, 1);
const data = Float32Array.from({ length: size }, (_, i) => ((i * 2654435761) % 1000) / 500 - 1);
const options = threads ? { intraOpNumThreads: Number(threads) } : {};
const session = await ort.InferenceSession.create(model, options);
const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, dims) };
const times = [];
for (let i = 0; i < Number(warmup) + Number(iterations); i++) {
  const t0 = performance.now();
  await session.run(feeds);
  if (i >= Number(warmup)) times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(JSON.stringify({ mean, p50: times[times.length >> 1], p99: times[Math.floor(times.length * 0.99)], min: times[0] }));
