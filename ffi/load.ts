/**
 * Finds and loads libedgerun: an explicit path, else $EDGERUN_LIB, else the local build
 * (zig-out/lib next to this package), the per-platform npm package (@edgerun/linux-<arch>-gnu,
 * beside this package or in the app's node_modules), the per-user download cache, then the
 * system loader. When none of the files exists, the prebuilt library is downloaded once at import
 * (into the cache, kept only if its SHA-256 is the one pinned in ./release.ts). A failure names
 * every place tried and the command that fixes it on this runtime.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import type { Adapter, Native } from "./abi.ts";
import { type BackendInfo, type BackendName, type BackendTable, backendTable } from "./backends.ts";
import { check, EdgerunError } from "./errors.ts";
import { RELEASE } from "./release.ts";
import { ER } from "./wire.ts";
import type { SymbolTable } from "./symbols.ts";

/** The ABI version this TypeScript code was written for (ER_ABI_VERSION). */
export const ABI_VERSION: number = ER.ABI_VERSION;

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapter: Adapter = isBun ? (await import("./bun.ts")).adapter : (await import("./deno.ts")).adapter;

/**
 * The JS runtime edgerun runs on.
 *
 * @example
 * ```ts
 * import { runtime } from "@edgerun/edgerun";
 * console.log(runtime === "bun" ? "bun:ffi" : "Deno.dlopen");
 * ```
 */
export const runtime: "deno" | "bun" = adapter.runtime;

/** A Deno permission refusal: passed on as is, so the message names the missing flag. */
function isPermissionError(e: unknown): boolean {
  return e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied");
}

/**
 * Reads an environment variable. A denied read is thrown (Deno: --allow-env=NAME), never taken
 * for unset: that would quietly load another library than the one the variable names.
 */
export function env(name: string): string | undefined {
  try {
    return process.env[name] || undefined;
  } catch (e) {
    if (isPermissionError(e)) throw e;
    return undefined;
  }
}

function localPath(relative: string): string | undefined {
  const url = new URL(relative, import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : undefined;
}

/** Whether a file exists; a denied check is thrown (Deno: --allow-read=PATH), not read as "no". */
function fileExists(path: string): boolean {
  try {
    return existsSync(path);
  } catch (e) {
    if (isPermissionError(e)) throw e;
    return false;
  }
}

/** An optional check: a denied one is remembered in `denied` and read as "no". */
function optionalExists(path: string, denied: Set<string>): boolean {
  try {
    return fileExists(path);
  } catch {
    denied.add(path);
    return false;
  }
}

/** An environment variable that only refines the search: a denied read is unset. */
function optionalEnv(name: string): string | undefined {
  try {
    return env(name);
  } catch {
    return undefined;
  }
}

/** This package's root directory (holding mod.ts, or mod.js in the npm build), when on disk. */
const packageDir = localPath("..")?.replace(/\/$/, "");

/** The platform tag of the prebuilt libraries (npm package @edgerun/<tag>), if there is one. */
export const platformTag: string | undefined = process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64")
  ? `linux-${process.arch}-gnu`
  : undefined;

/** The directory of the program being run (the app), whatever the working directory. */
function appDir(): string | undefined {
  const g = globalThis as { Deno?: { mainModule?: string }; Bun?: { main?: string } };
  try {
    const main = g.Bun?.main ?? g.Deno?.mainModule ?? process.argv[1];
    if (!main) return undefined;
    const path = main.startsWith("file:") ? decodeURIComponent(new URL(main).pathname) : main;
    return path.startsWith("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : undefined;
  } catch {
    return undefined;
  }
}

/** dir and its parents up to /, each with /node_modules/<tail> appended. */
function nodeModulesUp(dir: string | undefined, tail: string): string[] {
  const out: string[] = [];
  for (let d = dir; d; d = d === "/" ? undefined : d.slice(0, d.lastIndexOf("/")) || "/") {
    if (d.endsWith("/node_modules")) continue; // .../node_modules/node_modules/x is never a layout
    out.push(`${d === "/" ? "" : d}/node_modules/${tail}`);
  }
  return out;
}

/** The per-user cache of downloaded libraries: $EDGERUN_CACHE_DIR, else $XDG_CACHE_HOME/edgerun, else ~/.cache/edgerun. */
export function cacheDir(): string | undefined {
  const explicit = optionalEnv("EDGERUN_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = optionalEnv("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/edgerun`;
  const home = optionalEnv("HOME");
  return home ? `${home}/.cache/edgerun` : undefined;
}

/** Where a verified download of this release's library is kept. */
function cachedLibrary(): string | undefined {
  const dir = cacheDir();
  return dir && platformTag ? `${dir}/${RELEASE.version}/${platformTag}/libedgerun.so` : undefined;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The per-platform npm package's library, resolved as a dependency of this package (Node-style). */
function platformPackageLibrary(): string | undefined {
  if (!platformTag || !import.meta.url.startsWith("file:")) return undefined;
  try {
    const manifest = createRequire(import.meta.url).resolve(`@edgerun/${platformTag}/package.json`);
    return manifest.slice(0, manifest.lastIndexOf("/")) + "/libedgerun.so";
  } catch {
    return undefined;
  }
}

/** The files that may hold libedgerun, in the order they are tried, before the system loader. */
function libraryFiles(): { path: string; source: string }[] {
  const list: { path: string; source: string }[] = [];
  const add = (path: string | undefined, source: string) => {
    if (path && !list.some((c) => c.path === path)) list.push({ path, source });
  };
  if (packageDir) add(`${packageDir}/zig-out/lib/libedgerun.so`, "local build");
  if (platformTag) {
    const npm = `npm package @edgerun/${platformTag}`;
    add(platformPackageLibrary(), npm);
    for (const dir of [packageDir, appDir()]) {
      for (const p of nodeModulesUp(dir, `@edgerun/${platformTag}/libedgerun.so`)) add(p, npm);
    }
    add(cachedLibrary(), "download cache");
  }
  return list;
}

/** Candidate paths of libedgerun, in the order they are tried. */
export function libraryCandidates(explicit?: string): { path: string; source: string }[] {
  // An explicit choice is the only candidate: a wrong path must fail, not load another build.
  if (explicit) return [{ path: explicit, source: "option" }];
  const fromEnv = env("EDGERUN_LIB");
  if (fromEnv) return [{ path: fromEnv, source: "EDGERUN_LIB" }];
  // loadNative checks the local build strictly (a denied check is thrown); the other places are
  // optional: one Deno may not read is named in the error, not thrown.
  return [...libraryFiles(), { path: "libedgerun.so", source: "system loader" }];
}

// ---- download on first use -------------------------------------------------------------------

/** Why the download did not give a library (named in the "not found" error), if it was tried. */
let downloadFailure: string | undefined;

/** Where the prebuilt library of this platform is downloaded from: the per-platform npm package's tarball. */
export function downloadUrl(): string | undefined {
  if (!platformTag) return undefined;
  const base = (optionalEnv("EDGERUN_DOWNLOAD_BASE") ?? "https://registry.npmjs.org").replace(/\/+$/, "");
  return `${base}/@edgerun/${platformTag}/-/${platformTag}-${RELEASE.version}.tgz`;
}

/** One file of a (gzip-compressed) tar archive, or undefined. */
async function untarFile(gz: ArrayBuffer, name: string): Promise<Uint8Array | undefined> {
  const tar = new Uint8Array(await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  const text = (from: number, length: number) => new TextDecoder().decode(tar.subarray(from, from + length)).replace(/\0.*$/s, "");
  for (let at = 0; at + 512 <= tar.length;) {
    const entry = text(at, 100);
    if (!entry) break;
    const prefix = text(at + 345, 155);
    const size = parseInt(text(at + 124, 12).trim() || "0", 8);
    const full = prefix ? `${prefix}/${entry}` : entry;
    if (full === name) return tar.slice(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

/**
 * Downloads this release's library into the cache when no library file is on disk and the
 * download is allowed (EDGERUN_DOWNLOAD is not 0, a SHA-256 is pinned for this platform). Never
 * throws: a failure is kept for the "not found" error. Written under a temporary name and renamed,
 * so a concurrent or interrupted download never leaves a partial file.
 */
async function downloadIfMissing(): Promise<void> {
  try {
    if (env("EDGERUN_LIB") || optionalEnv("EDGERUN_DOWNLOAD") === "0") return;
    const pinned = platformTag ? RELEASE.sha256[platformTag] : undefined;
    const target = cachedLibrary();
    if (!pinned || !target) return;
    const denied = new Set<string>();
    if (libraryFiles().some((c) => optionalExists(c.path, denied))) return;
    const url = downloadUrl()!;
    let bytes: Uint8Array | undefined;
    try {
      const response = await fetch(url);
      if (!response.ok) {
        await response.body?.cancel();
        downloadFailure = `${url} (download: HTTP ${response.status})`;
        return;
      }
      bytes = await untarFile(await response.arrayBuffer(), "package/libedgerun.so");
    } catch (e) {
      downloadFailure = `${url} (download: ${e instanceof Error ? e.message.split("\n")[0] : String(e)})`;
      return;
    }
    if (!bytes) {
      downloadFailure = `${url} (download: no package/libedgerun.so in the archive)`;
      return;
    }
    const actual = sha256(bytes);
    if (actual !== pinned) {
      downloadFailure = `${url} (download: checksum mismatch: SHA-256 ${actual}, expected ${pinned} (pinned in ` +
        `ffi/release.ts); the file was refused, not saved, not loaded)`;
      return;
    }
    const dir = target.slice(0, target.lastIndexOf("/"));
    mkdirSync(dir, { recursive: true });
    const temp = `${target}.${process.pid}.${Date.now()}.part`;
    writeFileSync(temp, bytes, { mode: 0o755 });
    renameSync(temp, target);
  } catch (e) {
    downloadFailure = `download into the cache failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
  }
}

await downloadIfMissing();

/** A cached download is used only while its bytes still hash to the pinned value. */
function verifiedCache(path: string): string | undefined {
  const pinned = platformTag ? RELEASE.sha256[platformTag] : undefined;
  if (!pinned) return `${path} (download cache: no SHA-256 pinned for ${platformTag}: not used)`;
  const actual = sha256(readFileSync(path));
  if (actual !== pinned) {
    try {
      rmSync(path);
    } catch {
      // read-only cache: the file stays refused
    }
    return `${path} (download cache: SHA-256 ${actual}, expected ${pinned}: refused and removed)`;
  }
  return undefined;
}

// ---- ONNX Runtime ------------------------------------------------------------------------------

const ORT_VERSION = "1.30.0";

/** ONNX Runtime candidates that Deno did not let us check (named when ort is not found). */
const ortDenied = new Set<string>();
/** Every ONNX Runtime place checked (named when ort is not found). */
const ortTried: string[] = [];

/** Where ONNX Runtime may be, besides $EDGERUN_ORT_LIB and the system loader. */
function ortCandidates(): string[] {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const tail = `onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1`;
  let cwd: string | undefined;
  try {
    cwd = process.cwd();
  } catch {
    // no read permission for cwd: skip it
  }
  const cache = cacheDir();
  const paths = [
    ...nodeModulesUp(packageDir, tail),
    ...nodeModulesUp(appDir(), tail),
    ...(cwd ? [`${cwd}/node_modules/${tail}`] : []),
    ...(cache ? [`${cache}/ort/node_modules/${tail}`] : []),
  ];
  const unique = [...new Set(paths)];
  ortTried.splice(0, ortTried.length, ...unique);
  // Optional places: an app that runs only hbdnn need not grant read access to them.
  return unique.filter((p) => optionalExists(p, ortDenied));
}

/** The command that installs ONNX Runtime where edgerun looks, on this runtime. */
function ortFix(): string {
  if (runtime === "bun") {
    return `cd ${appDir() ?? "<your app>"} && bun add onnxruntime-node@${ORT_VERSION} --ignore-scripts`;
  }
  const cache = cacheDir() ?? "~/.cache/edgerun";
  return `npm install --prefix ${cache}/ort --no-save --ignore-scripts onnxruntime-node@${ORT_VERSION}`;
}

/**
 * Adds to an "ONNX Runtime not found" error every place looked in, the command that installs it
 * on this runtime, and the candidates Deno did not let us check with the flag that would, so a
 * missing --allow-read is not mistaken for a missing runtime.
 */
export function withPermissionHint(error: EdgerunError): EdgerunError {
  if (error.code !== "LIBRARY_NOT_FOUND" || error.backend !== "ort") return error;
  let message = error.message;
  if (ortTried.length) {
    message += `. Looked in: ${ortTried.join(", ")}, then the system loader. ` +
      `Fix (${runtime}): ${ortFix()} (or set EDGERUN_ORT_LIB=/path/to/libonnxruntime.so.1)`;
  }
  if (ortDenied.size) {
    const denied = [...ortDenied];
    const dirs = [...new Set(denied.map((p) => p.slice(0, p.lastIndexOf("/"))))];
    message += `. Not checked for lack of read permission: ${denied.join(", ")} ` +
      `(grant --allow-read=${dirs.join(",")} or set EDGERUN_ORT_LIB)`;
  }
  return message === error.message ? error : new EdgerunError(error.code, message, error);
}

/** Loads another library through the runtime's FFI with a neutral symbol table. */
export function openRawLibrary(
  path: string,
  table: SymbolTable,
): { symbols: Record<string, (...args: never[]) => unknown>; close(): void } {
  return adapter.openRaw(path, table);
}

/**
 * Adds places to look for a backend's vendor runtime (what each backend takes is its
 * `searchPath` in {@link backends}: ort library files, hbdnn directories), tried after its
 * environment variable ($EDGERUN_ORT_LIB, $EDGERUN_HBDNN_LIB_DIR) and before the system search.
 * Call it before the first model of that backend is opened.
 *
 * @example
 * ```ts
 * import { setBackendSearchPath } from "@edgerun/edgerun";
 * setBackendSearchPath("hbdnn", ["/opt/hobot/lib"]);
 * ```
 */
export function setBackendSearchPath(backend: BackendName, paths: readonly string[]): void {
  if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string" || p.includes(":"))) {
    throw new TypeError("paths must be an array of strings without ':'");
  }
  const native = loadNative();
  const table = backendTable(native);
  const row = table.named(backend);
  if (!row) throw new RangeError(`backend must be one of ${table.names}, got '${String(backend)}'`);
  check(native, native.symbols.er_backend_set_search_path(row.id, new TextEncoder().encode(paths.join(":") + "\0")));
}

/**
 * The backends of the loaded libedgerun (loading it if needed), from its one table
 * (shim/backends.c): names, ids, file extensions, task limits, the run options each acts on.
 *
 * @example
 * ```ts
 * import { backends } from "@edgerun/edgerun";
 * for (const b of backends()) console.log(b.name, b.extensions.join(" "), b.taskLimit);
 * ```
 */
export function backends(): readonly BackendInfo[] {
  return backendTable(loadNative()).list;
}

let loaded: Native | undefined;

/** Loads libedgerun once (internal: the native interface). A different path later is an error. */
export function loadNative(path?: string): Native {
  if (loaded) {
    if (path && path !== loaded.path) {
      throw new EdgerunError("LOAD_FAILED", `libedgerun is already loaded from ${loaded.path}; cannot load ${path}`);
    }
    return loaded;
  }
  const tried: string[] = [];
  for (const { path: candidate, source } of libraryCandidates(path)) {
    if (source === "system loader" && downloadFailure) tried.push(downloadFailure);
    const isBareName = !candidate.includes("/");
    const strict = source === "option" || source === "EDGERUN_LIB" || source === "local build";
    const denied = new Set<string>();
    if (!isBareName && !(strict ? fileExists(candidate) : optionalExists(candidate, denied))) {
      tried.push(`${candidate} (${source}: ${denied.size ? `not checked: no read permission (--allow-read=${candidate})` : "not found"})`);
      continue;
    }
    const refused = source === "download cache" ? verifiedCache(candidate) : undefined;
    if (refused) {
      tried.push(refused);
      continue;
    }
    let native: Native;
    try {
      native = adapter.open(candidate);
    } catch (e) {
      if (isPermissionError(e)) throw e;
      tried.push(`${candidate} (${source}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)})`);
      continue;
    }
    const version = native.symbols.er_abi_version();
    if (version !== ABI_VERSION) {
      native.close();
      throw new EdgerunError(
        "ABI_MISMATCH",
        `${candidate} has ABI version ${version}, this edgerun needs ${ABI_VERSION}: rebuild it (make build)`,
      );
    }
    let table: BackendTable;
    try {
      table = backendTable(native); // read once, here: a malformed table fails the load
    } catch (e) {
      native.close();
      throw e;
    }
    // onnxruntime-node's library, found from JavaScript (node_modules), for the ort row if any.
    const ort = table.named("ort");
    const ortPaths = ort ? ortCandidates() : [];
    if (ort && ortPaths.length) native.symbols.er_backend_set_search_path(ort.id, new TextEncoder().encode(ortPaths.join(":") + "\0"));
    loaded = native;
    return native;
  }
  throw new EdgerunError("LOAD_FAILED", notFoundMessage(tried, path !== undefined || env("EDGERUN_LIB") !== undefined));
}

/**
 * What to do when no libedgerun loads. The package ships the shim's C sources, not a binary
 * (JSR takes no native files), so a user from JSR needs the ways to get one, not `make build`.
 */
const ZIG_VERSION = "0.15.2";
// pip --target installs outside the system Python, so it works where PEP 668 blocks plain pip.
const ZIG_BUILD =
  `python3 -m pip install --target .zig ziglang==${ZIG_VERSION} && PYTHONPATH=.zig python3 -m ziglang build`;

function notFoundMessage(tried: string[], explicit: boolean): string {
  const lines = [`libedgerun.so could not be loaded. Tried: ${tried.join("; ")}.`];
  if (explicit) {
    lines.push("The path was given explicitly (library option or EDGERUN_LIB), so no other place was searched.");
  }
  const packageDir = localPath("..");
  const pinned = platformTag ? RELEASE.sha256[platformTag] : undefined;
  if (!explicit && pinned) {
    const pkg = `@edgerun/${platformTag}@${RELEASE.version}`;
    const cache = cacheDir() ?? "~/.cache/edgerun";
    lines.push(
      runtime === "bun"
        ? `Fix (bun): cd ${appDir() ?? "<your app>"} && bun add ${pkg} (the prebuilt library: an optional dependency ` +
          "of @edgerun/edgerun that --omit=optional or --no-optional leaves out)."
        : `Fix (deno): let edgerun download the prebuilt library once into ${cache}: run with --allow-net ` +
          `--allow-env --allow-read --allow-write=${cache} (EDGERUN_DOWNLOAD_BASE names a mirror of the npm ` +
          `registry; EDGERUN_DOWNLOAD=0 turns the download off), or import edgerun as npm:@edgerun/edgerun, ` +
          `whose optional dependency ${pkg} carries it.`,
    );
  } else if (!explicit) {
    lines.push(`No prebuilt libedgerun for ${process.platform}-${process.arch}: build it (1 below).`);
  }
  lines.push(
    "Or build or install it yourself: edgerun ships the C sources of libedgerun (shim/, build.zig). Any one of these works:",
    packageDir
      ? `  1. build it with zig ${ZIG_VERSION} in the package directory: cd ${packageDir} && ` +
        `${ZIG_BUILD} (edgerun looks for zig-out/lib/libedgerun.so there);`
      : `  1. build it with zig ${ZIG_VERSION} in a directory holding the package's files (these modules were ` +
        `loaded from ${new URL("..", import.meta.url)}, not from disk): ${ZIG_BUILD}, then use 2 or 3;`,
    "  2. set EDGERUN_LIB=/path/to/libedgerun.so (or pass { library } to open() / loadLibrary());",
    "  3. install it system-wide: copy it to /usr/lib, or to /usr/local/lib and run ldconfig.",
  );
  lines.push('See "Getting libedgerun.so" in the README.');
  return lines.join("\n");
}

/**
 * What {@link loadLibrary} reports about the loaded libedgerun.
 *
 * @example
 * ```ts
 * import { type LibraryInfo, loadLibrary } from "@edgerun/edgerun";
 * const info: LibraryInfo = loadLibrary();
 * console.log(`${info.path} (ABI ${info.abiVersion}) on ${info.runtime}`);
 * ```
 */
export interface LibraryInfo {
  /**
   * Where it was loaded from.
   *
   * @example
   * ```ts
   * import { loadLibrary } from "@edgerun/edgerun";
   * console.log(loadLibrary().path); // e.g. /usr/local/lib/libedgerun.so
   * ```
   */
  readonly path: string;
  /**
   * Its ABI version (checked against this package's).
   *
   * @example
   * ```ts
   * import { loadLibrary } from "@edgerun/edgerun";
   * console.log(loadLibrary().abiVersion); // 3
   * ```
   */
  readonly abiVersion: number;
  /**
   * The JS runtime running it.
   *
   * @example
   * ```ts
   * import { loadLibrary } from "@edgerun/edgerun";
   * console.log(loadLibrary().runtime); // "deno" or "bun"
   * ```
   */
  readonly runtime: "deno" | "bun";
}

/**
 * Loads libedgerun now (open() does it on first use) and says from where. Later calls return
 * the same library; asking for a different path then is an error.
 *
 * @example
 * ```ts
 * import { loadLibrary } from "@edgerun/edgerun";
 * console.log(loadLibrary().path);
 * ```
 */
export function loadLibrary(path?: string): LibraryInfo {
  const native = loadNative(path);
  return Object.freeze({ path: native.path, abiVersion: native.symbols.er_abi_version(), runtime });
}
