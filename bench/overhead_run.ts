/**
 * edgerun's per-run cost on the current runtime (bench/overhead.ts runs it on Deno and Bun):
 * best of ROUNDS rounds' mean microseconds per run, through the public API.
 *   overhead_run.ts TINY_ONNX SIM_0MS SIM_1MS ITERATIONS ROUNDS [tiny|sim]
 * With "tiny" or "sim" only those rows run (bench/overhead.ts runs the simulator rows twice).
 */
import process from "node:process";
import { open } from "../mod.ts";

const [tinyPath, sim0Path, sim1Path, iterationsText, roundsText, only] = process.argv.slice(2);
const iterations = Number(iterationsText);
const rounds = Number(roundsText);

async function best(n: number, body: () => unknown): Promise<number> {
  let min = Infinity;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < n / 10; i++) await body(); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await body();
    min = Math.min(min, ((performance.now() - t0) * 1000) / n);
  }
  return min;
}

function bestSync(n: number, body: () => unknown): number {
  let min = Infinity;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < n / 10; i++) body();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) body();
    min = Math.min(min, ((performance.now() - t0) * 1000) / n);
  }
  return min;
}

const result: Record<string, number> = {};
if (only !== "sim") {
  using tiny = open(tinyPath, { intraOpThreads: 1 });
  const x = new Float32Array(tiny.inputs[0].byteSize / 4).fill(1);
  result.run = bestSync(iterations, () => tiny.run(x));
  const view = tiny.inputs[0].data as Float32Array;
  result.zeroCopy = bestSync(iterations, () => {
    view[0] = 1;
    return tiny.run();
  });
}
if (only !== "tiny") {
  await using sim = open(sim0Path);
  const x = new Float32Array(sim.inputs[0].byteSize / 4).fill(1);
  const n = Math.max(200, iterations / 50);
  result.simSync = bestSync(n, () => sim.run(x));
  result.simAsync = await best(n, () => sim.runAsync(x));
}
if (only !== "tiny") {
  await using sim = open(sim1Path);
  const x = new Float32Array(sim.inputs[0].byteSize / 4).fill(1);
  result.sim1Sync = bestSync(200, () => sim.run(x));
  result.sim1Async = await best(200, () => sim.runAsync(x));
}
console.log(JSON.stringify(result));
