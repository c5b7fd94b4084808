/**
 * The examples run as a user runs them (a fresh process of the runtime under test, from the
 * repository root) and print what their headers promise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { runtime, test } from "./compat.ts";
import { root } from "./helpers.ts";

/** Runs an example with the Deno permissions its header names. */
function runExample(file: string, args: string[] = [], denoAllow = ["ffi", "read", "env"]): string {
  const allow = denoAllow.map((p) => `--allow-${p}`);
  const runArgs = runtime === "bun" ? ["run", file, ...args] : ["run", ...allow, file, ...args];
  const prefix = process.env.EDGERUN_TEST_EXEC_PREFIX;
  const [cmd, ...rest] = prefix ? [prefix, process.execPath, ...runArgs] : [process.execPath, ...runArgs];
  const r = spawnSync(cmd, rest, { cwd: root, encoding: "utf8", timeout: 300_000 });
  assert.equal(r.status, 0, `${file} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The lines after "text:" up to the timing line. */
function recognized(stdout: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.indexOf("text:");
  assert.ok(start >= 0, `no "text:" in the output:\n${stdout}`);
  return lines.slice(start + 1).filter((l) => l !== "" && !l.startsWith("time:"));
}

const truth = readFileSync(`${root}/tests/fixtures/ocr/lines.txt`, "utf8").trimEnd().split("\n");

test("examples/ocr.ts: det -> cls -> rec recognises the fixture's text exactly", () => {
  const out = runExample("examples/ocr.ts");
  assert.deepEqual(recognized(out), truth);
  assert.match(out, /dir 0°/);
});

test("examples/ocr.ts: an upside-down page is turned by the classifier and still read exactly", () => {
  const out = runExample("examples/ocr.ts", ["tests/fixtures/ocr/lines_180.png"]);
  assert.deepEqual(recognized(out), [...truth].reverse()); // the page is upside down: its last line comes first
  assert.doesNotMatch(out, /dir 0°/);
});

for (const backend of ["sim", "ort"]) {
  test(`examples/robot_loop.ts --backend ${backend}: runs the 50 Hz loop and prints its summary`, () => {
    const out = runExample("examples/robot_loop.ts", ["--backend", backend, "--seconds", "0.4"], ["ffi", "read", "write", "env"]);
    // Deadline misses depend on the machine's load: the summary is checked, not the count.
    assert.match(out, /robot loop on (deno|bun) \((hbdnn simulator|ort)\): 20 ticks at 50 Hz/);
    assert.match(out, /loop latency \(frame -> encoder -> policy\): p50 [\d.]+ ms, p99 [\d.]+ ms/);
    assert.match(out, /deadline misses: \d+ of 20/);
    assert.match(out, /background model: \d+ runs at low priority/);
  });
}
