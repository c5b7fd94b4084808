/**
 * The Bun adapter: bun:ffi dlopen over the neutral symbol table.
 * @module
 */
import type { Adapter, Handle, Native, Symbols } from "./abi.ts";
import { type NeutralType, symbols } from "./symbols.ts";

/** The part of bun:ffi this adapter uses (Bun's own types are not a dependency). */
interface BunFFI {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, unknown>; close(): void };
  toArrayBuffer(pointer: number, byteOffset: number, byteLength: number): ArrayBuffer;
}

const bunType = {
  u32: "u32",
  i32: "i32",
  handle: "ptr",
  buffer: "ptr",
  void: "void",
} as const satisfies Record<NeutralType, string>;

const ffi = await import("bun:ffi" as string) as BunFFI;

function open(path: string): Native {
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(symbols)) {
    table[name] = { args: def.args.map((a) => bunType[a]), returns: bunType[def.result] };
  }
  const lib = ffi.dlopen(path, table);
  return {
    symbols: lib.symbols as unknown as Symbols,
    path,
    handle: (address: bigint): Handle => Number(address) as unknown as Handle,
    view(address: bigint, byteLength: number): ArrayBuffer {
      if (byteLength === 0 || address === 0n) return new ArrayBuffer(0);
      return ffi.toArrayBuffer(Number(address), 0, byteLength);
    },
    close: () => lib.close(),
  };
}

/** The Bun runtime adapter. */
export const adapter: Adapter = { runtime: "bun", open };
