#!/usr/bin/env -S sh -c 'case $npm_config_user_agent in bun/*)exec "$npm_execpath" "$0" "$@";;esac;command -v deno >/dev/null||exec bun "$0" "$@";exec deno run --allow-ffi --allow-read --allow-write --allow-env "$0" "$@"'
/**
 * The `edgerun` command line: `info`, `run`, `perf` and `compare` for .hbm and .onnx models.
 *
 * The shebang picks the runtime when the file is executed (as the package's `edgerun` bin):
 * Bun when Bun launched it (`bunx edgerun`, `bun run edgerun`: Bun sets $npm_config_user_agent
 * and $npm_execpath), else Deno with the permissions the CLI needs (ffi, read, write, env), else
 * Bun. Bun would otherwise execute the shebang's Deno too. Both runtimes skip the line when
 * given the file (`deno run ... cli.ts`, `bun cli.ts`).
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
  // Output was written synchronously and nothing is left to run: exit now, skipping the
  // runtime's teardown (where Deno unloads native libraries under their idle threads).
  process.exit(await main(process.argv.slice(2)));
}
