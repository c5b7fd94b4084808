/**
 * EdgerunError and the one mapper every native status goes through.
 * @module
 */
import type { Native } from "./abi.ts";
import { ER } from "./wire.ts";

/** Status codes of the shim (ER_OK and ER_ERR_* in edgerun.h, from ./wire.ts), by name. */
export const Status = {
  OK: ER.OK,
  INVALID_ARGUMENT: ER.ERR_INVALID_ARGUMENT,
  LIBRARY_NOT_FOUND: ER.ERR_LIBRARY_NOT_FOUND,
  UNSUPPORTED: ER.ERR_UNSUPPORTED,
  FILE: ER.ERR_FILE,
  INVALID_MODEL: ER.ERR_INVALID_MODEL,
  BACKEND: ER.ERR_BACKEND,
  OUT_OF_MEMORY: ER.ERR_OUT_OF_MEMORY,
  STATE: ER.ERR_STATE,
  TIMEOUT: ER.ERR_TIMEOUT,
  BUSY: ER.ERR_BUSY,
  CANCELLED: ER.ERR_CANCELLED,
  NOT_FOUND: ER.ERR_NOT_FOUND,
} as const;

/**
 * Names of the error codes an {@link EdgerunError} can carry.
 *
 * @example
 * ```ts
 * import { EdgerunError, type ErrorCode, open } from "@edgerun/edgerun";
 * const retryable: ErrorCode[] = ["TIMEOUT", "BUSY"];
 * try {
 *   using model = open("model.hbm");
 *   model.run(undefined, { timeoutMs: 5 });
 * } catch (e) {
 *   if (!(e instanceof EdgerunError && retryable.includes(e.code))) throw e;
 * }
 * ```
 */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "LIBRARY_NOT_FOUND"
  | "UNSUPPORTED"
  | "FILE"
  | "INVALID_MODEL"
  | "BACKEND"
  | "OUT_OF_MEMORY"
  | "STATE"
  | "TIMEOUT"
  | "BUSY"
  | "CANCELLED"
  | "NOT_FOUND"
  | "CLOSED"
  | "LOAD_FAILED"
  | "ABI_MISMATCH";

const codeByStatus = new Map<number, ErrorCode>(
  Object.entries(Status).filter(([k]) => k !== "OK").map(([k, v]) => [v, k as ErrorCode]),
);

/** Details carried by an {@link EdgerunError}. */
export interface ErrorDetails {
  /** The backend that failed ("ort", "hbdnn"), if any. */
  backend?: string;
  /** The native or vendor call that failed, if known. */
  call?: string;
  /** The vendor's own error code (0 if none). */
  vendorCode?: number;
  /** The vendor's description of its error. */
  vendorMessage?: string;
  /** The native status (ER_ERR_*), if the error came from the shim. */
  status?: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The error edgerun throws for anything that goes wrong at run time (argument mistakes are
 * TypeError/RangeError). `code` says what kind of failure it is.
 *
 * @example
 * ```ts
 * import { EdgerunError, open } from "@edgerun/edgerun";
 * try {
 *   open("missing.onnx");
 * } catch (e) {
 *   if (e instanceof EdgerunError && e.code === "FILE") console.error(e.message);
 * }
 * ```
 */
export class EdgerunError extends Error {
  /**
   * Always "EdgerunError".
   *
   * @example
   * ```ts
   * import { open } from "@edgerun/edgerun";
   * try {
   *   open("missing.onnx");
   * } catch (e) {
   *   console.log((e as Error).name); // "EdgerunError"
   * }
   * ```
   */
  override name = "EdgerunError";
  /**
   * What kind of failure this is.
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   open("model.hbm");
   * } catch (e) {
   *   if (e instanceof EdgerunError && e.code === "LIBRARY_NOT_FOUND") console.error("hbDNN is not installed");
   *   else throw e;
   * }
   * ```
   */
  readonly code: ErrorCode;
  /**
   * The backend that failed ("ort", "hbdnn"), or "" if none.
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   open("broken.onnx");
   * } catch (e) {
   *   if (e instanceof EdgerunError) console.error(e.backend, e.message); // "ort", ...
   * }
   * ```
   */
  readonly backend: string;
  /**
   * The native or vendor call that failed, or "".
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   using model = open("model.hbm");
   *   model.run();
   * } catch (e) {
   *   if (e instanceof EdgerunError) console.error(`${e.call} failed`); // e.g. "hbDNNInferV2 failed"
   * }
   * ```
   */
  readonly call: string;
  /**
   * The vendor's own error code, or 0.
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   open("model.hbm");
   * } catch (e) {
   *   if (e instanceof EdgerunError && e.vendorCode !== 0) console.error(`vendor error ${e.vendorCode}`);
   * }
   * ```
   */
  readonly vendorCode: number;
  /**
   * The vendor's description of its error, or "".
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   open("model.onnx");
   * } catch (e) {
   *   if (e instanceof EdgerunError) console.error(e.vendorMessage || e.message);
   * }
   * ```
   */
  readonly vendorMessage: string;
  /**
   * The native status (ER_ERR_*), or 0 if the error was raised on the JS side.
   *
   * @example
   * ```ts
   * import { EdgerunError, open } from "@edgerun/edgerun";
   * try {
   *   open("model.onnx");
   * } catch (e) {
   *   if (e instanceof EdgerunError) console.error(e.status === 0 ? "raised in TypeScript" : `shim status ${e.status}`);
   * }
   * ```
   */
  readonly status: number;

  /**
   * Creates an error of the given kind; details say where it came from.
   *
   * @example
   * ```ts
   * import { EdgerunError } from "@edgerun/edgerun";
   * // for code that wraps edgerun and reports failures the same way
   * throw new EdgerunError("INVALID_MODEL", "camera.onnx: expected one input", { backend: "ort" });
   * ```
   */
  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.backend = details.backend ?? "";
    this.call = details.call ?? "";
    this.vendorCode = details.vendorCode ?? 0;
    this.vendorMessage = details.vendorMessage ?? "";
    this.status = details.status ?? 0;
  }
}

const decoder = new TextDecoder();
const scratch = new Uint8Array(2048);

function readString(fn: (buf: Uint8Array, cap: number) => number): string {
  const n = fn(scratch, scratch.length);
  return decoder.decode(scratch.subarray(0, Math.min(n, scratch.length - 1)));
}

/** Builds the EdgerunError for a failed native status from the shim's last-error record. */
export function nativeError(native: Native, status: number, context?: string): EdgerunError {
  const s = native.symbols;
  const message = readString((b, c) => s.er_last_error(b, c));
  const backend = readString((b, c) => s.er_last_error_field(ER.FIELD_BACKEND, b, c));
  const call = readString((b, c) => s.er_last_error_field(ER.FIELD_CALL, b, c));
  const vendorMessage = readString((b, c) => s.er_last_error_field(ER.FIELD_VENDOR_MESSAGE, b, c));
  const code = codeByStatus.get(status) ?? "BACKEND";
  const prefix = context ? `${context}: ` : "";
  return new EdgerunError(code, prefix + (message || `native status ${status}`), {
    backend,
    call,
    vendorCode: s.er_last_vendor_code(),
    vendorMessage,
    status,
  });
}

/** Throws the EdgerunError for status unless it is OK. */
export function check(native: Native, status: number, context?: string): void {
  if (status !== Status.OK) throw nativeError(native, status, context);
}
