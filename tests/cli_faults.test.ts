/**
 * The CLI under I/O faults (issue 16 item 8): stdout closed early (EPIPE), stdout on a full
 * device (ENOSPC), an output file that cannot be written whole, and --out naming a file.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tensor, toNpy } from "../mod.ts";
import { cliCommand } from "./cli_helpers.ts";
import { test } from "./compat.ts";
import { tempDir, tempFile } from "./helpers.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import type { SimModelSpec } from "./sim/simfile.ts";

useSim();

// Two outputs; the second (128 KiB) does not fit under the file size limit below.
const BIG: SimModelSpec = {
  name: "big",
  inputs: [{ name: "x", dtype: "F32", shape: [1, 4] }],
  outputs: [
    { name: "small", dtype: "F32", shape: [1, 4], a: 1, b: 0 },
    { name: "large", dtype: "F32", shape: [1, 32768], a: 1, b: 0 },
  ],
};

/** A .npy of BIG's input. */
const zeros = (name: string) =>
  tempFile(name, toNpy(new Tensor({ dtype: "float32", shape: [1, 4], data: new Float32Array(4) })));

/** Runs `script` (sh) with "$@" the CLI command line, in a fresh directory. */
function shell(script: string, args: string[], stdout: "pipe" | number = "pipe") {
  const { argv, env } = cliCommand(args);
  const cwd = mkdtempSync(join(tempDir(), "cli-faults-"));
  const r = spawnSync("sh", ["-c", script, "sh", ...argv], {
    cwd,
    env,
    encoding: "utf8",
    stdio: ["ignore", stdout, "pipe"],
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr, cwd };
}

function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n").filter((l) => !l.startsWith("input "));
  assert.equal(lines.length, 1, `one error line, got:\n${stderr}`);
  assert.match(lines[0], pattern);
}

// The reader of the pipe closes it and only then lets the CLI start (through the fifo "go"), so
// every write of the CLI meets a closed pipe. "code=" reports the CLI's own exit code on fd 3.
const CLOSED_PIPE = `mkfifo go; exec 3>&1; { read -r _ <go; "$@"; echo "code=$?" >&3; } | { exec 0<&-; echo >go; }`;

test("cli faults: stdout closed early (EPIPE) is quiet; the command finishes with its own exit code", () => {
  const model = simModelFile(BIG, "cli-epipe");
  const info = shell(CLOSED_PIPE, ["info", model]);
  assert.equal(info.stderr, "", "nothing on stderr");
  assert.equal(info.stdout, "code=0\n");
  const input = zeros("cli-epipe-x.npy");
  const run = shell(CLOSED_PIPE, ["run", model, "--input", input, "--out", "o"]);
  assert.equal(run.stdout, "code=0\n", run.stderr);
  assert.deepEqual(readdirSync(join(run.cwd, "o")).sort(), ["large.npy", "small.npy"], "every output written");
});

test("cli faults: stdout on a full device is one error line and exit 1", () => {
  const pack = simModelFile(BIG, "cli-enospc");
  const full = openSync("/dev/full", "w");
  try {
    const r = shell(`"$@"`, ["info", pack], full);
    assert.equal(r.code, 1, r.stderr);
    assertOneLine(r.stderr, /^edgerun: cannot write to stdout: .*(no space|ENOSPC)/i);
  } finally {
    closeSync(full);
  }
});

test("cli faults: an output that cannot be written whole leaves no truncated .npy; one error line", () => {
  const model = simModelFile(BIG, "cli-efbig");
  const input = zeros("cli-efbig-x.npy");
  // A 64 KiB file size limit (dash counts 512-byte blocks) with SIGXFSZ ignored: writes past it
  // fail with EFBIG, as a full disk fails them with ENOSPC.
  const r = shell(`trap '' XFSZ; ulimit -f 128; exec "$@"`, ["run", model, "--input", input, "--out", "o"]);
  assert.equal(r.code, 1, r.stderr);
  assertOneLine(r.stderr, /^edgerun: cannot write o\/large\.npy: /);
  assert.deepEqual(readdirSync(join(r.cwd, "o")), ["small.npy"], "no partial or temporary file");
});

test("cli faults: --out naming an existing file says so", () => {
  const model = simModelFile(BIG, "cli-outfile");
  const input = zeros("cli-outfile-x.npy");
  const file = join(mkdtempSync(join(tempDir(), "cli-outfile-")), "taken");
  writeFileSync(file, "");
  const r = shell(`"$@"`, ["run", model, "--input", input, "--out", file]);
  assert.equal(r.code, 1, r.stderr);
  assertOneLine(r.stderr, /^edgerun: --out .*taken is a file, not a directory$/);
});
