/** `edgerun info|run|perf|compare` on .om files (the acl backend against the AscendCL simulator). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseNpy, Tensor, toNpy } from "../mod.ts";
import { test } from "./compat.ts";
import { tempDir, tempFile, values } from "./helpers.ts";
import { cliCommand } from "./cli_helpers.ts";
import { aclModelFile, aclSimDir } from "./acl_helpers.ts";
import { simModelFile } from "./sim_helpers.ts";

function cli(args: string[], extraEnv: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string; cwd: string } {
  const cwd = mkdtempSync(join(tempDir(), "acl-cli-"));
  const { argv: [cmd, ...rest], env } = cliCommand(args, { EDGERUN_ACL_LIB_DIR: aclSimDir("classic"), ...extraEnv });
  const r = spawnSync(cmd, rest, { cwd, env, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.signal ? `${r.stderr}\n[${r.signal}]` : r.stderr, cwd };
}

const BATCH = aclModelFile({
  dynamicBatch: [1, 2, 4],
  inputs: [{ name: "img", dtype: "FLOAT", format: "NCHW", dims: [-1, 6] }],
  outputs: [{ name: "feat/out:0", dtype: "FLOAT", dims: [-1, 6], a: 2, b: 1 }],
}, "cli-batch");

test("acl cli info: an .om prints backend acl, the runtime facts, formats and the gears", () => {
  const r = cli(["info", BATCH]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /backend: acl +\(runtime_version=[^,]+, library=libascendcl\.so, device=0, run_mode=\w+/);
  assert.match(r.stdout, /gears \(batch; a dynamic input's shape picks one\): 1, 2, 4/);
  assert.match(r.stdout, /img +float32 +\[\?,6\]/);
  assert.doesNotMatch(r.stdout, /ascend_mbatch_shape_data/);
  const bad = cli(["info", BATCH, "--device", "9"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /aclrtSetDevice/);
});

test("acl cli run: --input and --shape at a gear write each output as .npy with the gear's shape", () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6]);
  const input = tempFile("acl-cli-img.npy", toNpy(new Tensor({ dtype: "float32", shape: [2, 6], data })));
  const r = cli(["run", BATCH, "--input", `img=${input}`, "--out", "out"]);
  assert.equal(r.code, 0, r.stderr);
  const y = parseNpy(new Uint8Array(readFileSync(join(r.cwd, "out", "feat_out_0.npy"))));
  assert.deepEqual(y.shape, [2, 6]);
  assert.deepEqual(values(y.data), [...data].map((v) => 2 * v + 1));
  const random = cli(["run", BATCH, "--shape", "img=4,6", "--out", "o"]);
  assert.equal(random.code, 0, random.stderr);
  assert.deepEqual(parseNpy(new Uint8Array(readFileSync(join(random.cwd, "o", "feat_out_0.npy")))).shape, [4, 6]);
  const wrong = cli(["run", BATCH, "--shape", "img=3,6"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /matches no gear of the model; its batch gears are 1,2,4/);
});

test("acl cli perf: sync and in-flight runs of an .om, with device times", () => {
  const path = aclModelFile({
    latencyUs: 300,
    inputs: [{ name: "x", dtype: "FLOAT16", dims: [1, 8] }],
    outputs: [{ name: "y", dtype: "FLOAT16", dims: [1, 8] }],
  }, "cli-perf");
  const r = cli(["perf", path, "--iterations", "6", "--warmup", "1", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.backend, "acl");
  assert.equal(s.runs, 6);
  assert.ok(s.device.min >= 0.29, `device min ${s.device.min}`);
  const k = cli(["perf", path, "--iterations", "8", "--inflight", "2", "--priority", "200", "--json"]);
  assert.equal(k.code, 0, k.stderr);
  assert.deepEqual([JSON.parse(k.stdout).runs, JSON.parse(k.stdout).inflight], [8, 2]);
});

test("acl cli compare: an .om against the .hbm of the same function (two NPU backends) gives cosine 1", () => {
  const om = aclModelFile({
    inputs: [{ name: "img", dtype: "FLOAT", dims: [1, 6] }],
    outputs: [{ name: "feat", dtype: "FLOAT", dims: [1, 6], a: 2, b: 1 }],
  }, "cli-cmp");
  const hbm = simModelFile({
    name: "enc",
    inputs: [{ name: "img", dtype: "F32", shape: [1, 6] }],
    outputs: [{ name: "feat", dtype: "F32", shape: [1, 6], a: 2, b: 1 }],
  }, "cli-cmp-hbm");
  const input = tempFile("acl-cli-cmp.npy", toNpy(new Tensor({ dtype: "float32", shape: [1, 6], data: new Float32Array([-1.5, -0.5, 0, 0.5, 2, 3]) })));
  const r = cli(["compare", om, hbm, "--input", `img=${input}`, "--min-cosine", "0.9999"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "feat: Cosine Similarity: 1.0000  diff: max=0.0 min=0.0 mean=0.0");
  const self = cli(["compare", om, om, "--input", `img=${input}`, "--device", "0"]);
  assert.equal(self.code, 0, self.stderr);
});

test("acl cli: --backend acl forces the backend; --device takes 0..63 only", () => {
  const path = aclModelFile({ inputs: [{ name: "x", dtype: "INT8", dims: [4] }], outputs: [{ name: "y", dtype: "INT8", dims: [4] }] }, "cli-force");
  const renamed = tempFile("acl-cli-model.bin", new Uint8Array(readFileSync(path)));
  const r = cli(["info", renamed, "--backend", "acl"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /backend: acl/);
  const bad = cli(["info", path, "--device", "64"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--device must be an integer 0\.\.63/);
});
