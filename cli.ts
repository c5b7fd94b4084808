#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-write --allow-env
/**
 * The `edgerun` command line: `info`, `run`, `perf` and `compare` for .hbm and .onnx models.
 *
 * Deno runs this file through the shebang (the permissions it needs are listed there); Bun
 * ignores the shebang line when it runs the file itself (`bun cli.ts ...`).
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write --allow-env jsr:@edgerun/edgerun/cli info model.hbm
 * ```
 * @module
 */
import process from "node:process";
import { main } from "./src/cli/main.ts";

export { main, VERSION } from "./src/cli/main.ts";
export type { CliOutput } from "./src/cli/commands.ts";

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
