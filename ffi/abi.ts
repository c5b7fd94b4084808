/**
 * The native interface everything above ffi/ depends on. Both runtime adapters
 * (deno.ts, bun.ts) produce a {@link Native}; nothing else touches a runtime's FFI.
 * @module
 */
import type { NeutralType, SymbolTable, symbols } from "./symbols.ts";

declare const handleBrand: unique symbol;
/** An opaque native handle (er_pack*, er_model*, er_request*). Never inspect it. */
export type Handle = { readonly [handleBrand]: "Handle" };

/** Memory passed to a "buffer" parameter: any TypedArray or DataView, or null for NULL. */
export type BufferArg = ArrayBufferView | null;

type ArgType<T extends NeutralType> = T extends "u32" | "i32" ? number
  : T extends "i64" ? bigint
  : T extends "handle" ? Handle
  : T extends "buffer" ? BufferArg
  : never;
type Args<T extends readonly NeutralType[]> = { -readonly [K in keyof T]: T[K] extends NeutralType ? ArgType<T[K]> : never };
type ResultType<T extends NeutralType> = T extends "void" ? void
  : T extends "i64" ? bigint
  : T extends "handle" ? Handle
  : number;

type Table = typeof symbols;
type SyncName = { [K in keyof Table]: Table[K] extends { blocking: true } ? never : K }[keyof Table];
/** Every er_* function that returns promptly, with its JS argument and result types. */
export type Symbols = {
  [K in SyncName]: (...args: Args<Table[K]["args"]>) => ResultType<Table[K]["result"]>;
};

/** A loaded libedgerun. */
export interface Native {
  /** The er_* functions. */
  readonly symbols: Symbols;
  /** The path the library was loaded from. */
  readonly path: string;
  /** Turns a pointer written to an out-parameter into a handle. */
  handle(address: bigint): Handle;
  /** The address of a handle (to hand a handle to another thread of the same process). */
  address(handle: Handle): bigint;
  /** A zero-copy ArrayBuffer over native memory. It must not outlive that memory. */
  view(address: bigint, byteLength: number): ArrayBuffer;
  /**
   * Waits off the JS thread until completions (or a wake) are ready on a queue
   * (er_completion_ready): resolves with 1, or a negative status. No JS memory is handed to the
   * waiting thread; the tags are then taken with er_completion_take. One call at a time per queue.
   */
  waitCompletions(queue: number): Promise<number>;
  /** Milliseconds on er_clock_ms's clock, read the cheapest way the runtime has. */
  readonly clockMs: () => number;
  /** Unloads the library. Every handle becomes invalid. */
  close(): void;
}

/** What a runtime adapter provides. */
export interface Adapter {
  /** "deno" or "bun". */
  readonly runtime: "deno" | "bun";
  /** Loads libedgerun from path (throws the runtime's own error on failure). */
  open(path: string): Native;
  /** Loads any library with a neutral symbol table (tests use it for the simulator's controls). */
  openRaw(path: string, table: SymbolTable): { symbols: Record<string, (...args: never[]) => unknown>; close(): void };
}
