/**
 * The command line's argument parser: `--name value`, `--name=value`, boolean flags, repeated
 * options, `-h`, and `--` ending the options.
 * @module
 */

/** A mistake in the command line itself (exit code 2). */
export class UsageError extends Error {
  /** Builds the error; the message is printed after "edgerun: ". */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What one subcommand accepts: options that take a value, boolean flags, repeatable options. */
export interface OptionSpec {
  /** Options taking a value (without the leading "--"). */
  readonly values: readonly string[];
  /** Boolean flags (without the leading "--"). */
  readonly flags: readonly string[];
  /** Value options that may be given several times (their values collect into a list). */
  readonly repeated?: readonly string[];
}

/** A parsed command line. */
export interface Parsed {
  /** Arguments that are not options, in order. */
  readonly positionals: string[];
  /** The last value of each single-value option. */
  readonly values: Map<string, string>;
  /** Every value of each repeatable option, in order. */
  readonly lists: Map<string, string[]>;
  /** Flags that were given. */
  readonly flags: Set<string>;
}

/** Parses argv against a spec; unknown options and missing values are UsageErrors. */
export function parseArgs(argv: readonly string[], spec: OptionSpec): Parsed {
  const parsed: Parsed = { positionals: [], values: new Map(), lists: new Map(), flags: new Set() };
  const repeated = new Set(spec.repeated ?? []);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      parsed.flags.add("help");
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-" && !/^-\d/.test(arg)) throw new UsageError(`unknown option '${arg}'`);
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (spec.flags.includes(name) || name === "help") {
      if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    if (!spec.values.includes(name)) throw new UsageError(`unknown option '--${name}'`);
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length || argv[i + 1].startsWith("--")) throw new UsageError(`option --${name} needs a value`);
      value = argv[++i];
    }
    if (repeated.has(name)) {
      const list = parsed.lists.get(name) ?? [];
      list.push(value);
      parsed.lists.set(name, list);
    } else {
      if (parsed.values.has(name)) throw new UsageError(`option --${name} given twice`);
      parsed.values.set(name, value);
    }
  }
  return parsed;
}

/** An integer option within [min, max], or its default. */
export function intOption(parsed: Parsed, name: string, min: number, max: number, fallback: number): number {
  const text = parsed.values.get(name);
  if (text === undefined) return fallback;
  const n = /^[+-]?(0x[0-9a-f]+|\d+)$/i.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${min}..${max}, got '${text}'`);
  }
  return n;
}

/** A finite number option within [min, max], or undefined when absent. */
export function numberOption(parsed: Parsed, name: string, min: number, max: number): number | undefined {
  const text = parsed.values.get(name);
  if (text === undefined) return undefined;
  const n = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number ${min}..${max}, got '${text}'`);
  }
  return n;
}

/** "NAME=VALUE" split at the first "=" (NAME may be empty when there is no "="). */
export function splitAssignment(text: string): { name: string | undefined; value: string } {
  const eq = text.indexOf("=");
  return eq < 0 ? { name: undefined, value: text } : { name: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** "1,3,224,224" or "1x3x224x224" as a shape. */
export function parseShape(text: string, what: string): number[] {
  const parts = text.split(/[,x]/).map((s) => s.trim());
  const dims = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (text.trim() === "" || dims.some((d) => !Number.isSafeInteger(d))) {
    throw new UsageError(`${what}: '${text}' is not a shape like 1,3,224,224`);
  }
  return dims;
}
