/**
 * Finds and loads libedgerun: an explicit path, else $EDGERUN_LIB, else the local build
 * (zig-out/lib next to this package) then the system loader. A failure names every path tried.
 * @module
 */
import { existsSync } from "node:fs";
import process from "node:process";
import type { Adapter, Native } from "./abi.ts";
import { check, EdgerunError } from "./errors.ts";
import type { SymbolTable } from "./symbols.ts";

/** The ABI version this TypeScript code was written for (ER_ABI_VERSION). */
export const ABI_VERSION = 1;

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const adapter: Adapter = isBun ? (await import("./bun.ts")).adapter : (await import("./deno.ts")).adapter;

/** The JS runtime edgerun runs on. */
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
      if (e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied")) throw e;
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
  throw new EdgerunError(
    "LOAD_FAILED",
    `libedgerun.so not found. Build it with \`make build\` or set EDGERUN_LIB. Tried: ${tried.join("; ")}`,
  );
}

/** What {@link loadLibrary} reports about the loaded libedgerun. */
export interface LibraryInfo {
  /** Where it was loaded from. */
  readonly path: string;
  /** Its ABI version (checked against this package's). */
  readonly abiVersion: number;
  /** The JS runtime running it. */
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
