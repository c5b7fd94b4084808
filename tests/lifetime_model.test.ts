/**
 * Runs the model-based lifetime test (tests/lifetime_model.ts) in a child process on this
 * runtime: one fixed seed, and one new seed per run (printed, and in any failure message, so a
 * failure replays with `deno run -A --v8-flags=--expose-gc tests/lifetime_model.ts SEED STEPS`).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runtime, test } from "./compat.ts";
import { root, runScript } from "./helpers.ts";

const STEPS = 300;
const script = readFileSync(join(root, "tests/lifetime_model.ts"), "utf8")
  // The child runs from a temp file: its relative imports point back into tests/.
  .replaceAll(/from "\.\.\/mod\.ts"/g, `from ${JSON.stringify(join(root, "mod.ts"))}`)
  .replaceAll(/from "\.\/([a-z_/]+\.ts)"/g, (_, file) => `from ${JSON.stringify(join(root, "tests", file))}`)
  .replace(`new URL("./workers/double.ts", import.meta.url)`, JSON.stringify("file://" + join(root, "tests/workers/double.ts")));

function sequence(seed: number): void {
  const env = { LIFETIME_SEED: String(seed), LIFETIME_STEPS: String(STEPS) };
  const r = runScript(script, env, { denoFlags: ["--v8-flags=--expose-gc"], timeoutMs: 110_000 });
  assert.equal(r.signal, null, `seed ${seed}: the child was killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, `seed ${seed} (${runtime}): ${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(result.steps, STEPS);
  assert.ok(result.checks > STEPS, `seed ${seed}: only ${result.checks} checks`);
  console.log(`lifetime model (${runtime}): seed ${seed}, ${result.steps} steps, ${result.checks} checks, ${result.models} models`);
}

test("lifetime model: a fixed seed's random sequence reads only live or emptied views, leaks nothing", () => {
  sequence(20261202);
});

test("lifetime model: a new seed each run (printed)", () => {
  const seed = Number(process.env.EDGERUN_LIFETIME_SEED ?? Math.floor(Math.random() * 1e9));
  sequence(seed);
});
