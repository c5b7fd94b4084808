/** Spawning the `edgerun` CLI (cli.ts) as a real process of the runtime running the suite. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runtime } from "./compat.ts";
import { root } from "./helpers.ts";
import { simDir } from "./sim_helpers.ts";

export const cliPath: string = join(root, "cli.ts");

/** The Deno permissions cli.ts's shebang grants (so the tests fail if they do not suffice). */
export function shebangFlags(): string[] {
  const first = readFileSync(cliPath, "utf8").split("\n")[0];
  const match = /exec deno run ((?:--allow-[a-z]+ )+)"\$0"/.exec(first);
  assert.ok(match, `unexpected shebang: ${first}`);
  return match[1].trim().split(" ");
}

/** The argv and environment that run the CLI with `args` on this runtime, against the simulator. */
export function cliCommand(
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): { argv: string[]; env: Record<string, string> } {
  const runArgs = runtime === "deno" ? ["run", ...shebangFlags(), cliPath, ...args] : [cliPath, ...args];
  const prefix = process.env.EDGERUN_TEST_EXEC_PREFIX;
  const argv = prefix ? [prefix, process.execPath, ...runArgs] : [process.execPath, ...runArgs];
  const env: Record<string, string | undefined> = { ...process.env, EDGERUN_HBDNN_LIB_DIR: simDir(), NO_COLOR: "1" };
  delete env.LD_LIBRARY_PATH;
  delete env.EDGERUN_DEBUG;
  Object.assign(env, extraEnv);
  return { argv, env: env as Record<string, string> };
}
