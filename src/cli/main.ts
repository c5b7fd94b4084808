/**
 * The `edgerun` command line: dispatch, help texts, and errors as one line plus an exit code.
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { EdgerunError } from "../../ffi/errors.ts";
import { backends } from "../../ffi/load.ts";
import { type OptionSpec, parseArgs, UsageError } from "./args.ts";
import {
  type CliOutput,
  compareCommand,
  DEFAULT_MIN_COSINE,
  infoCommand,
  perfCommand,
  runCommand,
} from "./commands.ts";
import { CliFailure, describeFsError } from "./feeds.ts";

/**
 * The package version (kept equal to deno.json and package.json; a test checks it).
 *
 * @example
 * ```ts
 * import { VERSION } from "@edgerun/edgerun/cli";
 * console.log(`edgerun ${VERSION}`);
 * ```
 */
export const VERSION = "0.1.0";

const EXIT_CODES = `Exit codes: 0 success; 1 failure (file, model or run error; compare below --min-cosine;
stdout cannot be written, as on a full disk); 2 usage error (unknown option or subcommand, bad
value, unknown input name). A closed stdout (as in \`| head -1\`) is not an error: the rest of
the output is dropped and the command finishes with its own exit code.`;

const INPUTS = `  --input NAME=FILE.npy   data of input NAME (repeatable; FILE alone fills the next input in order).
                          float32 data feeds quantized, float16 and float64 inputs (converted on the way in).
                          Inputs without a file get deterministic pseudo-random data.
  --shape NAME=DIMS       shape of a random input with dynamic dimensions, e.g. x=1,3,48,192
  --seed N                seed of the random inputs (default 1)`;

/**
 * The --backend values with the files "auto" sends to each, from the loaded library's table; when
 * no libedgerun loads, help still prints, pointing at where the list comes from.
 */
function backendChoices(): string {
  try {
    const list = backends();
    const byFile = list.map((b) => `${b.extensions.join(" ")} ${b.name}`).join(", ");
    return `auto (by file: ${byFile}), ${list.map((b) => b.name).join(", ")}`;
  } catch {
    return "auto (by file), or a backend of libedgerun (it could not be loaded to list them)";
  }
}

/** The help texts, made when asked for: the backend list comes from the library. */
function help(): Record<string, string> {
  const MODEL_OPTIONS = `  --backend B             ${backendChoices()}
  --model NAME            the model inside a file that packs several (.hbm); default the first
  --device N              acl: the Ascend device id (default 0)`;
  return {
    main: `edgerun ${VERSION}: inspect, run, time and compare compiled models (.hbm on hbDNN, .om on AscendCL, .onnx on ONNX Runtime).

Usage: edgerun <command> [options]

Commands:
  info MODEL                       inputs, outputs, quantization, SoC and runtime versions
  run MODEL --input NAME=FILE.npy  run once, write each output to DIR/<output name>.npy
  perf MODEL                       throughput and latency (mean, p50, p99, min, max)
  compare A B                      cosine similarity and differences of two models' outputs or two .npy files

Options: -h, --help (also after a command), --version. EDGERUN_DEBUG=1 adds stack traces to errors.

${EXIT_CODES}`,
    info: `Usage: edgerun info MODEL [options]

Prints every model in the file (or the one --model names): inputs and outputs with dtype, shape,
strides, byte size and quantization, plus what the backend reports (SoC, runtime versions).

${MODEL_OPTIONS}

${EXIT_CODES}`,
    run: `Usage: edgerun run MODEL [--input NAME=FILE.npy ...] [options]

Runs the model once and writes each output to DIR/<output name>.npy (characters other than
letters, digits, '.', '_' and '-' become '_').

${INPUTS}
  --out DIR               output directory (default ./outputs; created if missing)
  --dequantize            write quantized outputs as float32 real values (default: stored integers)
  --priority P            task priority 0..255 (254 high, 255 urgent: preempting)
  --cores MASK            BPU core bit mask 1..15 (1: core 0, 3: cores 0 and 1)
${MODEL_OPTIONS}

${EXIT_CODES}`,
    perf: `Usage: edgerun perf MODEL [options]

Runs the model repeatedly and prints the run count, FPS and latency (device and end-to-end).
A progress line is drawn on stderr when it is a terminal (else one line every 10 s).

  --iterations N          timed runs (default 100)
  --seconds S             run for S seconds instead of a count
  --inflight K            runs in flight at once through runAsync (default 1: synchronous run())
  --warmup W              untimed runs first (default 3)
  --priority P            task priority 0..255 (254 high, 255 urgent: preempting)
  --cores MASK            BPU core bit mask 1..15 (1: core 0, 3: cores 0 and 1)
  --json                  print the results as one JSON object
${INPUTS}
${MODEL_OPTIONS}

${EXIT_CODES}`,
    compare: `Usage: edgerun compare MODEL_A MODEL_B [--input NAME=FILE.npy ...] [options]
       edgerun compare A.npy B.npy [options]

Feeds both models the same inputs and prints one line per output (matched by name, else by
position): cosine similarity and max/min/mean absolute difference; when they differ, also the
largest relative difference (B is the reference) and the flat index of the largest difference.
Quantized outputs are dequantized first.

  --min-cosine C          fail (exit 1) when any cosine is below C (default ${DEFAULT_MIN_COSINE}); NaN always fails
${INPUTS}
  --backend B             ${backendChoices()}; for both models
  --device N              acl: the Ascend device id of both models (default 0)

${EXIT_CODES}`,
  };
}

const SPECS: Record<string, OptionSpec> = {
  info: { values: ["backend", "model", "device"], flags: [] },
  run: {
    values: ["backend", "model", "device", "input", "shape", "seed", "out", "priority", "cores"],
    flags: ["dequantize"],
    repeated: ["input", "shape"],
  },
  perf: {
    values: [
      "backend",
      "model",
      "device",
      "input",
      "shape",
      "seed",
      "iterations",
      "seconds",
      "inflight",
      "warmup",
      "priority",
      "cores",
    ],
    flags: ["json"],
    repeated: ["input", "shape"],
  },
  compare: { values: ["backend", "device", "input", "shape", "seed", "min-cosine"], flags: [], repeated: ["input", "shape"] },
};

const COMMANDS = { info: infoCommand, run: runCommand, perf: perfCommand, compare: compareCommand };

/** The errno name of a failed write on either runtime (Deno's node:fs errors may carry none). */
function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") return code;
  if ((e as Error)?.name === "BrokenPipe") return "EPIPE";
  const os = /\(os error (\d+)\)/.exec(String((e as Error)?.message));
  return os ? ({ 28: "ENOSPC", 32: "EPIPE" } as Record<string, string>)[os[1]] : undefined;
}

/**
 * Output to the process's stdout and stderr, written synchronously: cli.ts exits right after
 * main() returns, and nothing written may be lost then. A reader that closed stdout (EPIPE)
 * wants no more: later lines are dropped and the command still finishes (a `run` writes every
 * output). Other stdout failures (ENOSPC) are the command's failure; stderr's have no one to go to.
 */
function processOutput(): CliOutput {
  let stdoutClosed = false;
  return {
    out: (line) => {
      if (stdoutClosed) return;
      try {
        writeSync(1, line + "\n");
      } catch (e) {
        if (errnoOf(e) === "EPIPE") stdoutClosed = true;
        else throw new CliFailure(`cannot write to stdout: ${describeFsError(e)}`);
      }
    },
    err: (text) => {
      try {
        writeSync(2, text);
      } catch {
        // stderr is gone or full: nowhere left to report to; the exit code still tells.
      }
    },
    errIsTTY: process.stderr.isTTY === true,
  };
}

/** $EDGERUN_DEBUG set: print the stack of every error too. */
function debugging(): boolean {
  try {
    return !!process.env.EDGERUN_DEBUG;
  } catch {
    return false; // Deno without --allow-env
  }
}

/** Mistakes of the user or the environment, worth one line, not a stack trace. */
function isExpected(e: unknown): e is Error {
  return e instanceof CliFailure || e instanceof EdgerunError || e instanceof TypeError || e instanceof RangeError;
}

/**
 * Runs the command line `argv` (without the runtime and script) and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "@edgerun/edgerun/cli";
 * const code = await main(["info", "model.onnx"]);
 * ```
 */
export async function main(argv: readonly string[], io: CliOutput = processOutput()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.err(help().main + "\n");
    return 2;
  }
  if (command === "-h" || command === "--help" || command === "help") {
    io.out(help()[rest[0] in SPECS && command === "help" ? rest[0] : "main"]);
    return 0;
  }
  if (command === "--version" || command === "-V") {
    const versions = process.versions as Record<string, string | undefined>;
    io.out(`edgerun ${VERSION} (${versions.bun ? `bun ${versions.bun}` : `deno ${versions.deno}`})`);
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command as keyof typeof COMMANDS] : undefined;
  try {
    if (!run) throw new UsageError(`unknown command '${command}'; commands: ${Object.keys(COMMANDS).join(", ")}`);
    const args = parseArgs(rest, SPECS[command]);
    if (args.flags.has("help")) {
      io.out(help()[command]);
      return 0;
    }
    return await run(args, io);
  } catch (e) {
    if (debugging() && e instanceof Error) io.err(`${e.stack ?? e.message}\n`);
    if (e instanceof UsageError) {
      const where = run ? ` ${command}` : "";
      io.err(`edgerun: ${e.message} (see edgerun${where} --help)\n`);
      return 2;
    }
    if (isExpected(e)) {
      io.err(`edgerun: ${e.message.split("\n")[0]}\n`);
      return 1;
    }
    // Anything else is a bug in edgerun: keep the stack.
    io.err(`edgerun: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    return 1;
  }
}
