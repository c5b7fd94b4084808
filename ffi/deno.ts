/**
 * The Deno adapter: Deno.dlopen over the neutral symbol table.
 * @module
 */
import type { Adapter, Handle, Native, Symbols } from "./abi.ts";
import { type NeutralType, symbols } from "./symbols.ts";

const parameterType = {
  u32: "u32",
  i32: "i32",
  handle: "pointer",
  buffer: "buffer",
  void: "void",
} as const satisfies Record<NeutralType, Deno.NativeType | "void">;

function denoSymbols(): Deno.ForeignLibraryInterface {
  const table: Deno.ForeignLibraryInterface = {};
  for (const [name, def] of Object.entries(symbols)) {
    table[name] = {
      parameters: def.args.map((a) => parameterType[a] as Deno.NativeType),
      result: parameterType[def.result] as Deno.NativeResultType,
    };
  }
  return table;
}

function open(path: string): Native {
  const lib = Deno.dlopen(path, denoSymbols());
  return {
    symbols: lib.symbols as unknown as Symbols,
    path,
    handle: (address: bigint): Handle => Deno.UnsafePointer.create(address) as unknown as Handle,
    view(address: bigint, byteLength: number): ArrayBuffer {
      const pointer = Deno.UnsafePointer.create(address);
      if (byteLength === 0 || pointer === null) return new ArrayBuffer(0);
      return Deno.UnsafePointerView.getArrayBuffer(pointer, byteLength);
    },
    close: () => lib.close(),
  };
}

/** The Deno runtime adapter. */
export const adapter: Adapter = { runtime: "deno", open };
