/**
 * Finds and loads libedgerun: an explicit path, else $EDGERUN_LIB, else the local build
 * (zig-out/lib next to this package) then the system loader. A failure names every path tried
 * and the three ways to get the library.
 * @module
 */
import { existsSync } from "node:fs";
import process from "node:process";
import type { Adapter, Native } from "./abi.ts";
import { check, EdgerunError } from "./errors.ts";
import type { SymbolTable } from "./symbols.ts";

/** The ABI version this TypeScript code was written for (ER_ABI_VERSION). */
export const ABI_VERSION = 2;

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

/** ONNX Runtime candidates that Deno did not let us check (named when ort is not found). */
const ortDenied = new Set<string>();

/** Candidate paths of libedgerun, in the order they are tried. */
export function libraryCandidates(explicit?: string): { path: string; source: string }[] {
  // An explicit choice is the only candidate: a wrong path must fail, not load another build.
  if (explicit) return [{ path: explicit, source: "option" }];
  const fromEnv = env("EDGERUN_LIB");
  if (fromEnv) return [{ path: fromEnv, source: "EDGERUN_LIB" }];
  const list: { path: string; source: string }[] = [];
  const local = localPath("../zig-out/lib/libedgerun.so");
  if (local) list.push({ path: local, source: "local build" });
  list.push({ path: "libedgerun.so", source: "system loader" });
  return list;
}

/** Where ONNX Runtime may be, besides $EDGERUN_ORT_LIB and the system loader. */
function ortCandidates(): string[] {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const tail = `node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1`;
  const paths = [localPath(`../${tail}`)];
  try {
    paths.push(`${process.cwd()}/${tail}`);
  } catch {
    // no read permission for cwd: skip it
  }
  return paths.filter((p): p is string => {
    if (!p) return false;
    try {
      return fileExists(p);
    } catch {
      // Optional places: an app that runs only hbdnn need not grant read access to them.
      ortDenied.add(p);
      return false;
    }
  });
}

/**
 * Adds to an "ONNX Runtime not found" error the candidates Deno did not let us check, with the
 * flag that would, so a missing --allow-read is not mistaken for a missing runtime.
 */
export function withPermissionHint(error: EdgerunError): EdgerunError {
  if (error.code !== "LIBRARY_NOT_FOUND" || error.backend !== "ort" || ortDenied.size === 0) return error;
  const denied = [...ortDenied];
  const dirs = [...new Set(denied.map((p) => p.slice(0, p.lastIndexOf("/"))))];
  return new EdgerunError(
    error.code,
    `${error.message}. Not checked for lack of read permission: ${denied.join(", ")} ` +
      `(grant --allow-read=${dirs.join(",")} or set EDGERUN_ORT_LIB)`,
    error,
  );
}

/** Loads another library through the runtime's FFI with a neutral symbol table. */
export function openRawLibrary(
  path: string,
  table: SymbolTable,
): { symbols: Record<string, (...args: never[]) => unknown>; close(): void } {
  return adapter.openRaw(path, table);
}

const BACKEND_IDS = { ort: 1, hbdnn: 2 } as const;

/**
 * Adds places to look for a backend's vendor runtime (ort: library files; hbdnn: directories),
 * tried after its environment variable ($EDGERUN_ORT_LIB, $EDGERUN_HBDNN_LIB_DIR) and before the
 * system search. Call it before the first model of that backend is opened.
 *
 * @example
 * ```ts
 * import { setBackendSearchPath } from "@edgerun/edgerun";
 * setBackendSearchPath("hbdnn", ["/opt/hobot/lib"]);
 * ```
 */
export function setBackendSearchPath(backend: "ort" | "hbdnn", paths: readonly string[]): void {
  if (!(backend in BACKEND_IDS)) throw new RangeError(`backend must be ort or hbdnn, got '${backend}'`);
  if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string" || p.includes(":"))) {
    throw new TypeError("paths must be an array of strings without ':'");
  }
  const native = loadNative();
  check(native, native.symbols.er_backend_set_search_path(BACKEND_IDS[backend], new TextEncoder().encode(paths.join(":") + "\0")));
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
    const isBareName = !candidate.includes("/");
    if (!isBareName && !fileExists(candidate)) {
      tried.push(`${candidate} (${source}: not found)`);
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
    const ort = ortCandidates();
    if (ort.length) native.symbols.er_backend_set_search_path(1, new TextEncoder().encode(ort.join(":") + "\0"));
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
  lines.push(
    "edgerun ships the C sources of libedgerun (shim/, build.zig), not a binary. Any one of these works:",
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
   * console.log(loadLibrary().abiVersion); // 2
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
