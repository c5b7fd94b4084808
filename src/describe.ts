/**
 * The describe() table.
 * @module
 */
import { fmtShape } from "./request.ts";
import type { TensorInfo } from "./tensor.ts";

interface Describable {
  readonly name: string;
  readonly path: string;
  readonly backend: string;
  readonly info: Readonly<Record<string, unknown>>;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
}


function quantText(t: TensorInfo): string {
  const q = t.quantization;
  if (!q) return "-";
  const axis = q.axis >= 0 && q.scales.length > 1 ? `axis ${q.axis}, ${q.scales.length} scales` : `scale ${q.scales[0]}`;
  const zp = q.zeroPoints.length ? (q.zeroPoints.length > 1 ? ", zero points" : `, zp ${q.zeroPoints[0]}`) : "";
  return axis + zp;
}

function table(title: string, tensors: readonly TensorInfo[]): string[] {
  const header = ["#", "name", "dtype", "shape", "strides (bytes)", "bytes", "quantization"];
  const rows = tensors.map((t, i) => [
    String(i),
    t.name,
    t.dtype,
    t.unknownRank ? "any rank" : fmtShape(t.shape),
    t.unknownRank ? "-" : fmtShape(t.strides) + (t.padded ? " padded" : ""),
    t.dynamic ? "dynamic" : String(t.byteSize),
    quantText(t),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => "  " + cells.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [`${title} (${tensors.length}):`, line(header), ...rows.map(line)];
}

/** acl models compiled with gears: which shapes the dynamic dimensions may take. */
function gearLines(info: Readonly<Record<string, unknown>>): string[] {
  if (typeof info.gears !== "string") return [];
  const kind = info.dynamic === "hw" ? "height x width" : "batch";
  return [`gears (${kind}; a dynamic input's shape picks one): ${info.gears.split(",").join(", ")}`];
}

/** Formats a model's description as a table. */
export function formatDescription(model: Describable): string {
  const facts = Object.entries(model.info)
    .filter(([k]) => k !== "backend" && k !== "gears" && k !== "dynamic")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
  return [
    `model: ${model.name}  (${model.path})`,
    `backend: ${model.backend}${facts ? `  (${facts})` : ""}`,
    ...gearLines(model.info),
    ...table("inputs", model.inputs),
    ...table("outputs", model.outputs),
  ].join("\n");
}
