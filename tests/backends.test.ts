/**
 * The backend table: the shim's rows (er_backend_count / er_backend_info) as TypeScript reads them,
 * the Backend type against them, and the errors that list them (open(), setBackendSearchPath, the
 * command line).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { backends, EdgerunError, loadLibrary, open, setBackendSearchPath } from "../mod.ts";
import { main } from "../cli.ts";
import { loadNative } from "../ffi/load.ts";
import { backendTable } from "../ffi/backends.ts";
import { test } from "./compat.ts";
import { root, tempFile } from "./helpers.ts";

/** The raw JSON rows, read straight from the shim (not through ffi/backends.ts). */
function rawRows(): Record<string, unknown>[] {
  const s = loadNative().symbols;
  const rows: Record<string, unknown>[] = [];
  const buf = new Uint8Array(2048);
  const len = new Uint32Array(1);
  for (let i = 0; i < s.er_backend_count(); i++) {
    assert.equal(s.er_backend_info(i, buf, buf.length, len), 0);
    rows.push(JSON.parse(new TextDecoder().decode(buf.subarray(0, len[0]))));
  }
  return rows;
}

test("backends: er_backend_info round trip: every row, frozen, in the shim's order; NOT_FOUND past the end", () => {
  const rows = rawRows();
  const list = backends();
  assert.ok(Object.isFrozen(list) && list.every((b) => Object.isFrozen(b) && Object.isFrozen(b.extensions)));
  assert.deepEqual(list.map((b) => ({ ...b, extensions: [...b.extensions], honours: [...b.honours] })), rows);
  const s = loadNative().symbols;
  const len = new Uint32Array(1);
  assert.equal(s.er_backend_info(rows.length, new Uint8Array(16), 16, len), -12);
  // A short buffer still gets the full length (ffi/backends.ts retries with a larger one).
  const small = new Uint8Array(8);
  assert.equal(s.er_backend_info(0, small, small.length, len), 0);
  assert.ok(len[0] > small.length);
  assert.equal(backendTable(loadNative()), backendTable(loadNative()), "read once");
  // The rows the rest of edgerun relies on (today's values; ids are stable).
  const ort = list.find((b) => b.name === "ort")!;
  const hbdnn = list.find((b) => b.name === "hbdnn")!;
  assert.deepEqual([ort.id, [...ort.extensions], ort.probe, ort.taskLimit, ort.defaultRequests], [1, [".onnx", ".ort"], true, 64, 4]);
  assert.deepEqual([hbdnn.id, [...hbdnn.extensions], hbdnn.probe, hbdnn.taskLimit, hbdnn.defaultRequests], [2, [".hbm", ".bin"], false, 32, 32]);
  assert.deepEqual([...ort.honours], ["timeoutMs"]);
  assert.deepEqual([...hbdnn.honours], ["priority", "customId", "cores", "timeoutMs"]);
});

test("backends: the Backend type names exactly the shim's backends, plus auto", () => {
  // The type is for editors; its members are read from the source so that they cannot drift.
  const source = readFileSync(join(root, "ffi/backends.ts"), "utf8");
  const union = /export type Backend =([^;]+);/.exec(source)?.[1];
  assert.ok(union, "export type Backend = ...; in ffi/backends.ts");
  const members = [...union.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  assert.equal(union.replace(/"[^"]+"|\||\s/g, ""), "", `only string literals in the union: ${union}`);
  assert.deepEqual(members.filter((m) => m !== "auto").sort(), backends().map((b) => b.name).sort());
  assert.ok(members.includes("auto"));
});

test("backends: a file of unknown extension and content is UNSUPPORTED, naming every extension and the backend option", () => {
  const path = tempFile("mystery.dat", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]));
  try {
    open(path);
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof EdgerunError, String(e));
    assert.equal(e.code, "UNSUPPORTED");
    for (const b of backends()) {
      assert.ok(e.message.includes(`${b.extensions.join(", ")} (${b.name})`), `${b.name} in: ${e.message}`);
    }
    const names = backends().map((b) => `"${b.name}"`).join(", ");
    assert.ok(e.message.includes(`backend option (one of ${names})`), e.message);
  }
});

test("backends: a bad backend name is a RangeError listing the table's names", () => {
  const names = backends().map((b) => `"${b.name}"`).join(", ");
  assert.throws(() => open("model.onnx", { backend: "tpu" as never }), (e: unknown) =>
    e instanceof RangeError && e.message === `backend must be "auto" or one of ${names}, got 'tpu'`);
  assert.throws(() => setBackendSearchPath("tpu" as never, []), (e: unknown) =>
    e instanceof RangeError && e.message.includes(names));
  // Not an own option name: the table is a Map, so prototype keys are not backends.
  assert.throws(() => open("model.onnx", { backend: "constructor" as never }), RangeError);
  assert.ok(loadLibrary().abiVersion > 0);
});

test("backends: the CLI's --backend takes the table's names and its help lists them", async () => {
  const out: string[] = [];
  let err = "";
  const io = { out: (line: string) => out.push(line), err: (text: string) => (err += text), errIsTTY: false };
  const model = tempFile("bogus_backend.onnx", new Uint8Array([8, 7]));
  assert.equal(await main(["info", model, "--backend", "bogus"], io), 2, err);
  const names = ["auto", ...backends().map((b) => b.name)].join(", ");
  assert.match(err, new RegExp(`^edgerun: --backend must be one of ${names}, got 'bogus'`));
  assert.equal(await main(["info", "--help"], io), 0);
  for (const b of backends()) assert.ok(out.join("\n").includes(`${b.extensions.join(" ")} ${b.name}`), b.name);
});
