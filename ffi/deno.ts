/**
 * The Deno adapter: Deno.dlopen over the neutral symbol table. Blocking symbols become
 * `nonblocking` ones (a Promise, run on Deno's blocking thread pool).
 * @module
 */
import type { Adapter, Handle, Native, Symbols } from "./abi.ts";
import { type NeutralType, type SymbolTable, symbols } from "./symbols.ts";

const parameterType = {
  u32: "u32",
  i32: "i32",
  i64: "i64",
  f64: "f64",
  handle: "pointer",
  buffer: "buffer",
  void: "void",
} as const satisfies Record<NeutralType, Deno.NativeType | "void">;

function denoSymbols(source: SymbolTable = symbols): Deno.ForeignLibraryInterface {
  const table: Deno.ForeignLibraryInterface = {};
  for (const [name, def] of Object.entries(source)) {
    table[name] = {
      parameters: def.args.map((a) => parameterType[a] as Deno.NativeType),
      result: parameterType[def.result] as Deno.NativeResultType,
      nonblocking: "blocking" in def && def.blocking,
    };
  }
  return table;
}

function open(path: string): Native {
  const lib = Deno.dlopen(path, denoSymbols());
  const ready = lib.symbols.er_completion_ready as unknown as (queue: number, timeoutMs: number) => Promise<number>;
  return {
    symbols: lib.symbols as unknown as Symbols,
    path,
    handle: (address: bigint): Handle => Deno.UnsafePointer.create(address) as unknown as Handle,
    address: (handle: Handle): bigint => BigInt(Deno.UnsafePointer.value(handle as unknown as Deno.PointerValue)),
    view(address: bigint, byteLength: number): ArrayBuffer {
      const pointer = Deno.UnsafePointer.create(address);
      if (byteLength === 0 || pointer === null) return new ArrayBuffer(0);
      return Deno.UnsafePointerView.getArrayBuffer(pointer, byteLength);
    },
    waitCompletions: (queue: number): Promise<number> => ready(queue, -1),
    // Deno's performance.now() costs more than this FFI call.
    clockMs: lib.symbols.er_clock_ms as unknown as () => number,
    close: () => lib.close(),
  };
}

function openRaw(path: string, table: SymbolTable) {
  const lib = Deno.dlopen(path, denoSymbols(table));
  return { symbols: lib.symbols as unknown as Record<string, (...args: never[]) => unknown>, close: () => lib.close() };
}

/** The Deno runtime adapter. */
export const adapter: Adapter = { runtime: "deno", open, openRaw };
