/**
 * The backends of the loaded libedgerun, read once from the shim's table (shim/backends.c,
 * er_backend_count / er_backend_info). Every per-backend fact in TypeScript comes from here: ids,
 * extensions, task limits, default request counts, which run options a backend acts on. The only
 * backend list written in TypeScript is the {@link Backend} type, for editors; tests/backends.test.ts
 * checks that it names exactly the shim's rows.
 * @module
 */
import type { Native } from "./abi.ts";
import { check, EdgerunError } from "./errors.ts";

/**
 * A backend name for {@link open}'s `backend` option: "auto" picks one by file extension, then by
 * content. The names are those of the shim's table (see {@link backends}).
 *
 * @example
 * ```ts
 * import { type Backend, open } from "@edgerun/edgerun";
 * const backend: Backend = "ort";
 * using model = open("model.onnx", { backend });
 * ```
 */
export type Backend = "auto" | "ort" | "hbdnn" | "acl";

/**
 * The name of one backend (a {@link Backend} other than "auto").
 *
 * @example
 * ```ts
 * import { type BackendName, open } from "@edgerun/edgerun";
 * using model = open("model.onnx");
 * const name: BackendName = model.backend;
 * ```
 */
export type BackendName = Exclude<Backend, "auto">;

/**
 * A run option a backend may act on or ignore.
 *
 * @example
 * ```ts
 * import { backends, type RunOptionName } from "@edgerun/edgerun";
 * const wanted: RunOptionName = "priority";
 * console.log(backends().filter((b) => b.honours.includes(wanted)).map((b) => b.name));
 * ```
 */
export type RunOptionName = "priority" | "customId" | "cores" | "timeoutMs";

/** The run options a backend may honour (the shim's "honours" names); open() accepts these. */
export const RUN_OPTIONS: readonly RunOptionName[] = ["priority", "customId", "cores", "timeoutMs"];

/**
 * One row of the shim's backend table.
 *
 * @example
 * ```ts
 * import { backends, type BackendInfo } from "@edgerun/edgerun";
 * const ort: BackendInfo | undefined = backends().find((b) => b.name === "ort");
 * console.log(ort?.extensions); // [".onnx", ".ort"]
 * ```
 */
export interface BackendInfo {
  /**
   * The shim's number for it (er_pack_open's backend argument).
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * for (const b of backends()) console.log(b.id, b.name);
   * ```
   */
  readonly id: number;
  /**
   * Its name: the `backend` option's value, `model.backend`, `EdgerunError.backend`.
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * console.log(backends().map((b) => b.name).join(", ")); // e.g. "ort, hbdnn"
   * ```
   */
  readonly name: BackendName;
  /**
   * File name endings that "auto" sends to it.
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * const known = backends().flatMap((b) => b.extensions);
   * console.log(known.some((ext) => "model.onnx".endsWith(ext)));
   * ```
   */
  readonly extensions: readonly string[];
  /**
   * Whether "auto" also recognises its files by their first bytes (a file without an extension).
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * console.log(backends().filter((b) => b.probe).map((b) => b.name)); // e.g. ["ort"]
   * ```
   */
  readonly probe: boolean;
  /**
   * Runs in flight per process; runAsync queues beyond it (in priority order).
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * for (const b of backends()) console.log(`${b.name}: ${b.taskLimit} runs at once`);
   * ```
   */
  readonly taskLimit: number;
  /**
   * Requests (buffer sets) a model uses for runAsync unless `maxRequests` says otherwise.
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * for (const b of backends()) console.log(`${b.name}: ${b.defaultRequests} requests per model`);
   * ```
   */
  readonly defaultRequests: number;
  /**
   * The run options it acts on; it ignores the others (runAsync still orders its queue by
   * priority and customId on every backend).
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * for (const b of backends()) console.log(b.name, b.honours.includes("cores") ? "picks cores" : "any core");
   * ```
   */
  readonly honours: readonly RunOptionName[];
  /**
   * What {@link setBackendSearchPath} takes for it (library files or directories).
   *
   * @example
   * ```ts
   * import { backends } from "@edgerun/edgerun";
   * for (const b of backends()) console.log(`${b.name}: ${b.searchPath}`);
   * ```
   */
  readonly searchPath: string;
}

/** The backends of a loaded library: rows in table order and by name. */
export interface BackendTable {
  /** Every row, in the shim's order. */
  readonly list: readonly BackendInfo[];
  /** A row by name (own properties only), or undefined. */
  named(name: unknown): BackendInfo | undefined;
  /** The names, quoted and comma-separated, for error messages: `"ort", "hbdnn"`. */
  readonly names: string;
}

const tables = new WeakMap<Native, BackendTable>();

/** One row as the shim wrote it, checked field by field: a malformed table is a load failure. */
function parseRow(text: string, index: number): BackendInfo {
  const fail = (why: string) => new EdgerunError("LOAD_FAILED", `libedgerun's backend ${index} is malformed (${why}): ${text}`);
  let row: Record<string, unknown>;
  try {
    row = JSON.parse(text);
  } catch {
    throw fail("not JSON");
  }
  const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  if (!isCount(row.id)) throw fail("id");
  if (typeof row.name !== "string" || !/^[a-z][a-z0-9_]*$/.test(row.name) || row.name === "auto") throw fail("name");
  if (!strings(row.extensions)) throw fail("extensions");
  if (typeof row.probe !== "boolean") throw fail("probe");
  if (!isCount(row.taskLimit) || !isCount(row.defaultRequests)) throw fail("limits");
  if (!strings(row.honours) || !(row.honours as string[]).every((o) => (RUN_OPTIONS as readonly string[]).includes(o))) throw fail("honours");
  if (typeof row.searchPath !== "string") throw fail("searchPath");
  return Object.freeze({
    id: row.id as number,
    name: row.name as BackendName,
    extensions: Object.freeze([...row.extensions as string[]]),
    probe: row.probe,
    taskLimit: row.taskLimit as number,
    defaultRequests: row.defaultRequests as number,
    honours: Object.freeze([...row.honours as RunOptionName[]]),
    searchPath: row.searchPath,
  });
}

/** The backend table of a loaded library, read on first use and frozen. */
export function backendTable(native: Native): BackendTable {
  let table = tables.get(native);
  if (table) return table;
  const s = native.symbols;
  const list: BackendInfo[] = [];
  const len = new Uint32Array(1);
  let buf = new Uint8Array(1024);
  for (let i = 0; i < s.er_backend_count(); i++) {
    check(native, s.er_backend_info(i, buf, buf.length, len));
    if (len[0] >= buf.length) {
      buf = new Uint8Array(len[0] + 1);
      check(native, s.er_backend_info(i, buf, buf.length, len));
    }
    list.push(parseRow(new TextDecoder().decode(buf.subarray(0, len[0])), i));
  }
  const byName = new Map(list.map((b) => [b.name as string, b]));
  if (byName.size !== list.length || new Set(list.map((b) => b.id)).size !== list.length) {
    throw new EdgerunError("LOAD_FAILED", "libedgerun's backend table names or numbers a backend twice");
  }
  table = Object.freeze({
    list: Object.freeze(list),
    named: (name: unknown) => typeof name === "string" ? byName.get(name) : undefined,
    names: list.map((b) => `"${b.name}"`).join(", "),
  });
  tables.set(native, table);
  return table;
}
