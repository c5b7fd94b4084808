/**
 * Inputs of the command line: .npy files by input name, `--shape` for dynamic inputs, and
 * deterministic pseudo-random data for inputs given no file.
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import type { InputTensor, Model } from "../model.ts";
import { parseNpy } from "../npy.ts";
import { fmtShape, type TensorFeed } from "../request.ts";
import { arrayConstructor, type DType } from "../dtype.ts";
import { elementCount, Tensor, type TensorInfo } from "../tensor.ts";
import { parseShape, splitAssignment, UsageError } from "./args.ts";

/** Reads a .npy file; a missing or unreadable file is one clear error. */
export function readNpyFile(path: string): Tensor {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new Error("is a directory");
    bytes = readFileSync(path);
  } catch (e) {
    throw new CliFailure(`cannot read ${path}: ${describeFsError(e)}`);
  }
  try {
    return parseNpy(bytes);
  } catch (e) {
    throw new CliFailure(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A runtime failure of a command with a message fit to print as it is (exit code 1). */
export class CliFailure extends Error {
  /** Builds the error; the message is printed after "edgerun: ". */
  constructor(message: string) {
    super(message);
    this.name = "CliFailure";
  }
}

/** "no such file" rather than a Node-style "ENOENT: no such file or directory, stat '...'". */
export function describeFsError(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT" || (e as Error)?.name === "NotFound") return "no such file";
  if (code === "EACCES" || (e as Error)?.name === "PermissionDenied") return "permission denied";
  // Deno's node:fs reports some errors as "<text> (os error N)" without a code.
  if (code === "ENOSPC" || /\(os error 28\)/.test(String((e as Error)?.message))) return "no space left on device";
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/** `--input NAME=FILE` (or FILE alone, for the next input in order) resolved against a model. */
export function loadInputFiles(model: Model, specs: readonly string[]): Map<string, { tensor: Tensor; file: string }> {
  const names = model.inputs.map((i) => i.name);
  const given = new Map<string, { tensor: Tensor; file: string }>();
  let next = 0;
  for (const spec of specs) {
    // Input names may contain "=" (and file names too): the longest input name the text starts
    // with, then "=", names the input; text with no such prefix and no "=" is the next input's file.
    const named = names.filter((n) => spec.startsWith(n + "=")).sort((x, y) => y.length - x.length)[0];
    let input: string;
    let file: string;
    if (named !== undefined) {
      input = named;
      file = spec.slice(named.length + 1);
    } else if (spec.includes("=")) {
      const { name } = splitAssignment(spec);
      throw new UsageError(`model '${model.name}' has no input '${name}'; its inputs: ${names.join(", ")}`);
    } else {
      while (next < names.length && given.has(names[next])) next++;
      if (next >= names.length) throw new UsageError(`more --input files than the model's ${names.length} inputs`);
      input = names[next++];
      file = spec;
    }
    if (given.has(input)) throw new UsageError(`input '${input}' is given twice`);
    if (file === "") throw new UsageError(`--input ${spec}: no file named`);
    given.set(input, { tensor: readNpyFile(file), file });
  }
  return given;
}

/** `--shape NAME=1,3,224,224` options by input name. */
export function shapeOptions(model: Model, specs: readonly string[]): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const spec of specs) {
    let { name, value } = splitAssignment(spec);
    if (name === undefined) {
      if (model.inputs.length !== 1) throw new UsageError(`--shape ${spec}: name the input (NAME=DIMS)`);
      name = model.inputs[0].name;
    }
    if (!model.inputs.some((i) => i.name === name)) {
      throw new UsageError(
        `model '${model.name}' has no input '${name}'; its inputs: ${model.inputs.map((i) => i.name).join(", ")}`,
      );
    }
    shapes.set(name, parseShape(value, `--shape ${name}`));
  }
  return shapes;
}

/** xorshift32: a tiny deterministic generator (same values on every runtime). */
function generator(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  bool: [0, 1],
};

/**
 * Pseudo-random data for an input: float32 in [-1, 1) for float and quantized inputs (converted
 * or quantized on the way in), integers in a small range otherwise.
 */
export function randomTensor(info: TensorInfo, shape: readonly number[], seed: number): Tensor {
  const next = generator(seed);
  const count = elementCount(shape);
  const real = info.quantization !== null || info.dtype.startsWith("float");
  if (real) {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = next() * 2 - 1;
    return new Tensor({ dtype: "float32", shape, data });
  }
  const [lo, hi] = INT_RANGE[info.dtype] ?? [-100, 100];
  const dtype = info.dtype;
  const pick = () => lo + Math.floor(next() * (hi - lo + 1));
  if (dtype === "int64" || dtype === "uint64") {
    const data = dtype === "int64" ? new BigInt64Array(count) : new BigUint64Array(count);
    for (let i = 0; i < count; i++) data[i] = BigInt(dtype === "uint64" ? Math.abs(pick()) : pick());
    return new Tensor({ dtype, shape, data });
  }
  const data = new (arrayConstructor(dtype))(count);
  const slots = data as unknown as { [i: number]: number };
  for (let i = 0; i < count; i++) slots[i] = dtype.startsWith("uint") ? Math.abs(pick()) : pick();
  return new Tensor({ dtype, shape, data });
}

/**
 * A feed of `tensor` for `input`: as it is when the dtypes agree, else float32 data converted
 * (quantized inputs, float16, float64) on the way in; anything else is an error.
 */
export function feedFor(input: TensorInfo, tensor: Tensor, where: string): TensorFeed {
  if (tensor.dtype === input.dtype) return { data: tensor.data, shape: tensor.shape };
  if (tensor.dtype === "float32" && (input.quantization !== null || input.dtype.startsWith("float"))) {
    return { data: tensor.data, shape: tensor.shape, quantize: true };
  }
  const hint = input.quantization ? " (or float32, quantized on the way in)" : "";
  throw new CliFailure(`${where}: input '${input.name}' takes ${input.dtype}${hint}, the file holds ${tensor.dtype}`);
}

/** One input's data and where it came from. */
export interface PlannedInput {
  /** The model input. */
  readonly info: InputTensor;
  /** The data. */
  readonly tensor: Tensor;
  /** "file.npy" or "random (seed N)". */
  readonly source: string;
}

/** The data of every input of a model: given files, else random data of the input's (or --shape) shape. */
export function planInputs(
  model: Model,
  files: ReadonlyMap<string, { tensor: Tensor; file: string }>,
  shapes: ReadonlyMap<string, number[]>,
  seed: number,
): PlannedInput[] {
  return model.inputs.map((info, i) => {
    const given = files.get(info.name);
    if (given) return { info, tensor: given.tensor, source: given.file };
    const shape = shapes.get(info.name) ?? info.shape;
    if (shape.some((d) => d < 0)) {
      throw new UsageError(
        `input '${info.name}' has dynamic shape ${fmtShape(info.shape)}: ` +
          `give --input ${info.name}=FILE.npy or --shape ${info.name}=DIMS`,
      );
    }
    return { info, tensor: randomTensor(info, shape, seed + i), source: `random (seed ${seed + i})` };
  });
}

/** Feeds by input name for a plan. */
export function feedsOf(plan: readonly PlannedInput[]): Record<string, TensorFeed> {
  return Object.fromEntries(plan.map((p) => [p.info.name, feedFor(p.info, p.tensor, p.source)]));
}

/** "x [1,3,48,192] float32 from a.npy" */
export function describeInput(p: PlannedInput): string {
  return `input ${p.info.name} [${p.tensor.shape.join(",")}] ${p.tensor.dtype} from ${p.source}`;
}
