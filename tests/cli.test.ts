/**
 * The `edgerun` command line, spawned as a real process on the runtime running the suite (Deno
 * with exactly the permissions of cli.ts's shebang), on a PaddleOCR model (ort) and simulator
 * models (hbdnn). Usage mistakes are also checked in-process through main().
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { backends, open, parseNpy, Tensor, toNpy } from "../mod.ts";
import { main, VERSION } from "../cli.ts";
import { outputFileName } from "../src/cli/commands.ts";
import { randomTensor } from "../src/cli/feeds.ts";
import type { TensorInfo } from "../src/tensor.ts";
import { runtime, test } from "./compat.ts";
import { deterministicInput, PADDLE_OCR_INPUTS } from "./fixtures/inputs.ts";
import { ocrModels, root, tempDir, tempFile, values } from "./helpers.ts";
import { cliCommand, cliPath } from "./cli_helpers.ts";
import { simModelFile, useSim } from "./sim_helpers.ts";
import type { SimModelSpec } from "./sim/simfile.ts";

useSim();

const cls = join(ocrModels, PADDLE_OCR_INPUTS.cls.file);
const clsShape = [...PADDLE_OCR_INPUTS.cls.shape];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in a new process of this runtime, in a fresh directory. */
function cli(
  args: string[],
  cwd = mkdtempSync(join(tempDir(), "cli-")),
  extraEnv: Record<string, string> = {},
): Result & { cwd: string } {
  const { argv: [cmd, ...rest], env } = cliCommand(args, extraEnv);
  const r = spawnSync(cmd, rest, { cwd, env, encoding: "utf8" });
  // A signal would otherwise show only as code null.
  const stderr = r.signal ? `${r.stderr}\n[terminated by ${r.signal}]` : r.stderr;
  return { code: r.status, stdout: r.stdout, stderr, cwd };
}

/** A user mistake: the exit code, and stderr is exactly one line "edgerun: ..." (no stack trace). */
function assertOneLineError(r: Result, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("input "));
  assert.equal(lines.length, 1, `one error line, got:\n${r.stderr}`);
  assert.match(lines[0], /^edgerun: /);
  assert.match(lines[0], pattern);
}

/** In-process main() with captured output. */
async function inProcess(args: string[]): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (l) => (stdout += l + "\n"), err: (t) => (stderr += t), errIsTTY: false });
  return { code, stdout, stderr };
}

// y = 2 * x + 1 from a quantized int8 input (scale 0.5), and an int16 output quantized with 0.25.
const QUANT_MODEL: SimModelSpec = {
  name: "enc",
  latencyUs: 200,
  inputs: [{ name: "img", dtype: "S8", shape: [1, 6], quant: { scales: [0.5] } }],
  outputs: [
    { name: "feat/out:0", dtype: "F32", shape: [1, 6], a: 2, b: 1 },
    { name: "q", dtype: "S16", shape: [1, 6], a: 1, b: 0, quant: { scales: [0.25] } },
  ],
};
// The same function of a float32 input: what the .onnx a .hbm was compiled from computes.
const FLOAT_MODEL: SimModelSpec = {
  name: "enc_float",
  inputs: [{ name: "img", dtype: "F32", shape: [1, 6] }],
  outputs: [
    { name: "feat/out:0", dtype: "F32", shape: [1, 6], a: 2, b: 1 },
    { name: "q", dtype: "F32", shape: [1, 6], a: 1, b: 0 },
  ],
};
const OTHER_MODEL: SimModelSpec = {
  name: "other",
  inputs: [{ name: "x", dtype: "F32", shape: [2, 3] }],
  outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: -1, b: 0.5 }],
};
const realInput = new Float32Array([-1.5, -0.5, 0, 0.5, 2, 3]); // multiples of 0.5: exact in int8 at scale 0.5

test("cli: --version, --help and every subcommand's help", async () => {
  const version = cli(["--version"]);
  assert.equal(version.code, 0, version.stderr);
  const runtimeVersion = runtime === "bun" ? process.versions.bun : process.versions.deno;
  assert.equal(version.stdout.trim(), `edgerun ${VERSION} (${runtime} ${runtimeVersion})`);
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
  assert.equal(VERSION, pkg.version);
  assert.equal(VERSION, deno.version);
  assert.equal(pkg.bin?.edgerun, "./cli.ts");
  assert.equal(deno.exports["./cli"], "./cli.ts");
  const help = cli(["--help"]);
  assert.equal(help.code, 0);
  for (const word of ["info", "run", "perf", "compare", "Exit codes"]) assert.ok(help.stdout.includes(word), word);
  for (const command of ["info", "run", "perf", "compare"]) {
    for (const flag of ["--help", "-h"]) {
      const r = await inProcess([command, flag]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: edgerun ${command} `));
      assert.match(r.stdout, /Exit codes: 0 success; 1 failure .*\s2 usage error/s);
    }
  }
  assert.match((await inProcess(["compare", "-h"])).stdout, /default 0\.99\)/);
  const none = await inProcess([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage: edgerun <command>/);
});

test("cli: executed as a bin, the shebang runs Deno, or Bun when Bun launched it, or Bun without Deno", () => {
  if (process.env.EDGERUN_TEST_EXEC_PREFIX) return; // the shebang would start host binaries, not the emulated ones
  const bin = join(root, "node_modules/.bin");
  const plain = { ...process.env, PATH: `${bin}:/usr/bin:/bin` } as Record<string, string>;
  delete plain.npm_config_user_agent;
  const run = (env: Record<string, string>) =>
    spawnSync(cliPath, ["--version"], { env, encoding: "utf8" }).stdout.trim();
  assert.match(run(plain), /^edgerun \S+ \(deno \d/);
  const viaBun = { ...plain, npm_config_user_agent: "bun/1 npm/? linux x64", npm_execpath: join(bin, "bun") };
  assert.match(run(viaBun), /^edgerun \S+ \(bun \d/);
  const bunOnly = mkdtempSync(join(tempDir(), "bun-only-"));
  symlinkSync(join(bin, "bun"), join(bunOnly, "bun"));
  assert.match(run({ ...plain, PATH: `${bunOnly}:/usr/bin:/bin` }), /^edgerun \S+ \(bun \d/);
});

test("cli info: a PaddleOCR model and a simulator pack (every model, quantization, SoC)", () => {
  const r = cli(["info", cls]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /model: ch_ppocr_mobile_v2\.0_cls_infer/);
  assert.match(r.stdout, /backend: ort .*runtime_version=/);
  assert.match(r.stdout, /0 +x +float32 +\[\?,3,\?,\?\]/);
  assert.match(r.stdout, /softmax_0\.tmp_0/);
  const pack = simModelFile([QUANT_MODEL, OTHER_MODEL], "cli-pack");
  const p = cli(["info", pack]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /2 models: enc, other/);
  assert.match(p.stdout, /soc=edgerun simulator/);
  assert.match(p.stdout, /0 +img +int8 +\[1,6\] .* scale 0\.5/);
  assert.match(p.stdout, /model: other/);
  const one = cli(["info", pack, "--model", "other"]);
  assert.equal(one.code, 0, one.stderr);
  assert.ok(!one.stdout.includes("model: enc "), "only the model asked for");
  assertOneLineError(cli(["info", pack, "--model", "nope"]), 1, /has no model 'nope'; it has: enc, other/);
});

test("cli run: outputs of a PaddleOCR model equal a direct run, written as <name>.npy", () => {
  const x = deterministicInput(clsShape, 5);
  const input = tempFile("cli-cls-x.npy", toNpy(new Tensor({ dtype: "float32", shape: clsShape, data: x })));
  const r = cli(["run", cls, "--input", `x=${input}`, "--out", "res"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote res\/softmax_0\.tmp_0\.npy +\(softmax_0\.tmp_0: float32 \[1,2\]\)/);
  using model = open(cls);
  const [expected] = model.run({ data: x, shape: clsShape });
  const written = parseNpy(readFileSync(join(r.cwd, "res/softmax_0.tmp_0.npy")));
  assert.deepEqual(written.shape, expected.shape);
  assert.deepEqual(values(written.data), values(expected.data));
});

test("cli run: simulator model with a quantized input; names sanitized; --dequantize", () => {
  const path = simModelFile(QUANT_MODEL, "cli-quant");
  // A float32 file feeds the int8 input (quantized on the way in), by position (no NAME=).
  const input = tempFile("cli-real.npy", toNpy(new Tensor({ dtype: "float32", shape: [1, 6], data: realInput })));
  const r = cli(["run", path, "--input", input]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(join(r.cwd, "outputs")).sort(), ["feat_out_0.npy", "q.npy"]);
  const feat = parseNpy(readFileSync(join(r.cwd, "outputs/feat_out_0.npy")));
  assert.deepEqual(values(feat.data), Array.from(realInput, (v) => 2 * v + 1));
  const q = parseNpy(readFileSync(join(r.cwd, "outputs/q.npy")));
  assert.equal(q.dtype, "int16");
  assert.deepEqual(values(q.data), Array.from(realInput, (v) => v / 0.25), "stored integers");
  const d = cli(["run", path, "--input", `img=${input}`, "--dequantize", "--out", "deq"]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /q: float32 \[1,6\], dequantized/);
  const real = parseNpy(readFileSync(join(d.cwd, "deq/q.npy")));
  assert.equal(real.dtype, "float32");
  assert.deepEqual(values(real.data), Array.from(realInput));
});

test("cli run: file names of outputs are safe and unique", () => {
  const taken = new Set<string>();
  assert.equal(outputFileName("feat/out:0", 0, taken), "feat_out_0.npy");
  assert.equal(outputFileName("feat:out/0", 1, taken), "feat_out_0_1.npy");
  assert.equal(outputFileName("../../etc/passwd", 2, taken), "etc_passwd.npy");
  assert.equal(outputFileName("..", 3, taken), "output_3.npy");
  assert.equal(outputFileName("", 4, taken), "output_4.npy");
});

test("cli: random inputs are deterministic per seed, in range, float32 for float and quantized inputs", () => {
  const info = (dtype: TensorInfo["dtype"], quantized = false): TensorInfo => ({
    name: "x",
    dtype,
    shape: [2, 50],
    strides: [],
    byteSize: 0,
    quantization: quantized ? { scales: new Float32Array([0.1]), zeroPoints: new Int32Array(0), axis: -1 } : null,
    dynamic: false,
    unknownRank: false,
    padded: false,
  });
  const a = randomTensor(info("float32"), [2, 50], 7);
  assert.deepEqual(values(a.data), values(randomTensor(info("float32"), [2, 50], 7).data));
  assert.notDeepEqual(values(a.data), values(randomTensor(info("float32"), [2, 50], 8).data));
  assert.deepEqual(a.shape, [2, 50]);
  assert.ok(values(a.data, Number).every((v) => v >= -1 && v < 1));
  assert.ok(new Set(values(a.data)).size > 90, "values vary");
  assert.equal(randomTensor(info("int8", true), [3], 1).dtype, "float32", "quantized inputs get real values");
  assert.equal(randomTensor(info("float16"), [3], 1).dtype, "float32", "converted on the way in");
  const u8 = randomTensor(info("uint8"), [100], 1);
  assert.equal(u8.data.constructor, Uint8Array);
  assert.ok(Math.max(...values(u8.data, Number)) > 128, "the whole uint8 range");
  const i64 = randomTensor(info("int64"), [100], 1);
  assert.equal(i64.data.constructor, BigInt64Array);
  assert.ok(values(i64.data, Number).some((v) => v < 0) && values(i64.data, Number).every((v) => Math.abs(v) <= 100));
  assert.deepEqual(new Set(values(randomTensor(info("bool"), [100], 1).data)), new Set([0, 1]));
});

test("cli perf: the requested run count and sane latencies (sync, in flight, --seconds)", () => {
  const path = simModelFile(QUANT_MODEL, "cli-perf");
  const r = cli(["perf", path, "--iterations", "7", "--warmup", "1", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.runs, 7);
  assert.equal(s.count, 7, "model.stats() saw the timed runs only");
  assert.ok(s.fps > 0 && s.fps < 1e6, `fps ${s.fps}`);
  // The simulator model takes 200 us per run.
  assert.ok(s.device.min >= 0.19, `device min ${s.device.min}`);
  assert.ok(s.device.min <= s.device.p50 && s.device.p50 <= s.device.p99 && s.device.p99 <= s.device.max);
  assert.ok(s.endToEnd.mean >= s.device.mean);
  const k = cli(["perf", path, "--iterations", "12", "--inflight", "3", "--priority", "254", "--cores", "1", "--json"]);
  assert.equal(k.code, 0, k.stderr);
  const ks = JSON.parse(k.stdout);
  assert.deepEqual([ks.runs, ks.count, ks.inflight], [12, 12, 3]);
  const text = cli(["perf", cls, "--shape", "x=1,3,48,192", "--iterations", "5", "--warmup", "0"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /runs: 5 .* FPS: \d+\.\d\d/);
  assert.match(text.stdout, /device +\d+\.\d{3} +\d/);
  assert.match(text.stdout, /end-to-end +\d+\.\d{3}/);
  assert.match(text.stderr, /input x \[1,3,48,192\] float32 from random \(seed 1\)/);
  assert.ok(!text.stderr.includes("\r"), "no live progress line when stderr is not a terminal");
  const timed = cli(["perf", path, "--seconds", "0.2", "--json"]);
  assert.equal(timed.code, 0, timed.stderr);
  const ts = JSON.parse(timed.stdout);
  assert.ok(ts.runs > 0 && ts.wallMs >= 200, `${ts.runs} runs in ${ts.wallMs} ms`);
});

test("cli compare: a model against itself and a quantized model against its float original give cosine 1", () => {
  const x = tempFile(
    "cli-cmp-x.npy",
    toNpy(new Tensor({ dtype: "float32", shape: clsShape, data: deterministicInput(clsShape, 9) })),
  );
  const self = cli(["compare", cls, cls, "--input", `x=${x}`]);
  assert.equal(self.code, 0, self.stderr);
  assert.equal(self.stdout.trim(), "softmax_0.tmp_0: Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0");
  const hbm = simModelFile(QUANT_MODEL, "cli-cmp-q");
  const float = simModelFile(FLOAT_MODEL, "cli-cmp-f");
  const input = tempFile("cli-cmp-real.npy", toNpy(new Tensor({ dtype: "float32", shape: [1, 6], data: realInput })));
  const q = cli(["compare", hbm, float, "--input", `img=${input}`, "--min-cosine", "0.9999"]);
  assert.equal(q.code, 0, q.stderr);
  assert.deepEqual(q.stdout.trim().split("\n"), [
    "feat/out:0: Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0",
    "q: Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0",
  ]);
});

test("cli compare: different data fails with exit 1 under --min-cosine", () => {
  const fixtures = join(root, "tests/fixtures/npy");
  const a = join(fixtures, "float32.npy");
  const b = join(fixtures, "int8.npy");
  const same = cli(["compare", a, a]);
  assert.equal(same.code, 0, same.stderr);
  const loose = cli(["compare", a, b, "--min-cosine", "0.8"]);
  assert.equal(loose.code, 0, loose.stderr);
  const strict = cli(["compare", a, b, "--min-cosine", "0.9999"]);
  assert.equal(strict.code, 1);
  // Hand-computed: dot 8, norms sqrt(4.75) and sqrt(19); |a-b| = 2, 1.5, 1, 0.5, 0, 0.5; b[3] = 0.
  assert.equal(
    strict.stdout,
    `${a} vs ${b}: Cosine Similarity: 0.8421  diff: max=2.000 min=0.0 mean=0.9167  rel=5.000e+11  worst=[0]\n`,
  );
  assert.match(strict.stderr, /^edgerun: .*cosine below --min-cosine 0\.9999\n$/);
  // Two models whose outputs differ (y = -x + 0.5 against z = 2x + 1 on the same random input),
  // matched by position since their names differ.
  const input = [{ name: "img", dtype: "F32", shape: [1, 6] }] as SimModelSpec["inputs"];
  const m1 = simModelFile({
    name: "neg",
    inputs: input,
    outputs: [{ name: "y", dtype: "F32", shape: [1, 6], a: -1, b: 0.5 }],
  });
  const m2 = simModelFile({
    name: "pos",
    inputs: input,
    outputs: [{ name: "z", dtype: "F32", shape: [1, 6], a: 2, b: 1 }],
  });
  const models = cli(["compare", m1, m2]);
  assert.equal(models.code, 1, models.stderr);
  assert.match(models.stdout, /^y vs z: Cosine Similarity: -?\d\.\d{4} {2}diff: max=\d/);
});

test("cli: user mistakes are one line on stderr with exit code 2 (usage) or 1 (failure)", async () => {
  const missing = cli(["run", join(tempDir(), "missing.onnx")]);
  assertOneLineError(missing, 1, /cannot open .*missing\.onnx: no such file/);
  const debug = cli(["run", join(tempDir(), "missing.onnx")], undefined, { EDGERUN_DEBUG: "1" });
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, /^CliFailure: cannot open .*\n +at .*requireFile/, "EDGERUN_DEBUG adds the stack");
  assertOneLineError(cli(["perf", cls, "--iterations", "x"]), 2, /--iterations must be an integer/);
  const wrongShape = tempFile(
    "cli-bad-shape.npy",
    toNpy(new Tensor({ dtype: "float32", shape: [2, 3], data: new Float32Array(6) })),
  );
  assertOneLineError(
    cli(["run", cls, "--input", `x=${wrongShape}`]),
    1,
    /input 'x' has rank 4 \(shape \[\?,3,\?,\?\]\), got \[2,3\]/,
  );
  assertOneLineError(cli(["run", cls, "--input", "nope=a.npy"]), 2, /has no input 'nope'; its inputs: x/);
  const cases: [string[], number, RegExp][] = [
    [["frob"], 2, /unknown command 'frob'/],
    [["info"], 2, /expected one model file, got nothing/],
    [["perf", cls, "--bogus"], 2, /unknown option '--bogus'/],
    [["perf", cls, "--iterations", "3", "--seconds", "1"], 2, /--iterations or --seconds, not both/],
    [["perf", cls, "--inflight"], 2, /--inflight needs a value/],
    [["run", cls], 2, /dynamic shape \[\?,3,\?,\?\]: give --input x=FILE\.npy or --shape x=DIMS/],
    [["run", cls, "--shape", "x=1,3,a"], 2, /is not a shape/],
    [["run", cls, "--input", "x=does-not-exist.npy"], 1, /cannot read does-not-exist\.npy: no such file/],
    [
      ["run", cls, "--input", `x=${join(root, "tests/fixtures/npy/int8.npy")}`],
      1,
      /input 'x' takes float32, the file holds int8/,
    ],
    [["run", cls, "--input", `x=${join(root, "tests/fixtures/npy/fortran.npy")}`], 1, /Fortran order/],
    // The valid names are the shim's table (tests/backends.test.ts checks the list itself).
    [["run", cls, "--backend", "tpu"], 2, new RegExp(`--backend must be one of auto, ${backends().map((b) => b.name).join(", ")}, got 'tpu'`)],
    [["compare", cls, "a.npy"], 2, /two \.npy files or two models/],
    [["compare", "a.npy", "b.npy", "--min-cosine", "2"], 2, /--min-cosine must be a number -1\.\.1/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await inProcess(args);
    assertOneLineError(r, code, pattern);
  }
  assert.ok(!existsSync(join(root, "outputs")), "failed runs wrote nothing into the repository");
});
