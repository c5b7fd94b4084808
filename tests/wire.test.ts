/**
 * ffi/wire.ts against shim/include/edgerun.h: every `#define ER_<name> <number>` of the header is
 * ER.<name> with the same value, or listed below as not needed by TypeScript; every ER entry is in
 * the header. A value changed on one side only fails here, before any FFI call misreads it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ER } from "../ffi/wire.ts";
import { ABI_VERSION, loadNative } from "../ffi/load.ts";
import { backends } from "../mod.ts";
import { test } from "./compat.ts";
import { root } from "./helpers.ts";

/** Header constants TypeScript does not use, and why. */
const NOT_IN_TYPESCRIPT: Record<string, string> = {};

/**
 * ER_BACKEND_<NAME> (other than AUTO): a C caller's name for a backend id. TypeScript takes ids
 * from the shim's table instead; the test below checks each define against its row.
 */
const BACKEND_ID = /^BACKEND_(?!AUTO$)(\w+)$/;

/** The numeric #defines of the header, by name without ER_: 3u, (-1), 0xffffffffu and the like. */
function headerConstants(): Map<string, number> {
  const text = readFileSync(join(root, "shim/include/edgerun.h"), "utf8");
  const found = new Map<string, number>();
  for (const m of text.matchAll(/^#define ER_(\w+)[ \t]+(.*?)\s*(?:\/\*.*)?$/gm)) {
    const literal = /^\(?\s*(-?(?:0x[0-9a-f]+|\d+))u?\s*\)?$/i.exec(m[2]);
    if (!literal) continue; // ER_API and other non-numbers
    assert.ok(!found.has(m[1]), `ER_${m[1]} is defined twice`);
    const digits = literal[1];
    found.set(m[1], digits.startsWith("-") ? -Number(digits.slice(1)) : Number(digits));
  }
  return found;
}

test("wire: every ER constant of ffi/wire.ts is in edgerun.h with the same value", () => {
  const header = headerConstants();
  assert.ok(header.size > 80, `parsed ${header.size} constants`);
  for (const [name, value] of Object.entries(ER)) {
    assert.ok(header.has(name), `ER.${name} is not in edgerun.h`);
    assert.equal(value, header.get(name), `ER.${name}: TypeScript ${value}, edgerun.h ${header.get(name)}`);
  }
});

test("wire: every numeric constant of edgerun.h is in ffi/wire.ts or named as unused", () => {
  for (const name of headerConstants().keys()) {
    const known = Object.hasOwn(ER, name) || Object.hasOwn(NOT_IN_TYPESCRIPT, name) || BACKEND_ID.test(name);
    assert.ok(known, `ER_${name} is missing from ffi/wire.ts`);
  }
  for (const name of Object.keys(NOT_IN_TYPESCRIPT)) {
    assert.ok(headerConstants().has(name) && !Object.hasOwn(ER, name), `NOT_IN_TYPESCRIPT.${name} is stale`);
  }
});

test("wire: each ER_BACKEND_<NAME> of edgerun.h is the id of that backend's row in the shim's table", () => {
  const ids = [...headerConstants()].filter(([name]) => BACKEND_ID.test(name));
  assert.ok(ids.length >= 2, "ER_BACKEND_ORT and ER_BACKEND_HBDNN at least");
  for (const [name, id] of ids) {
    const row = backends().find((b) => b.name === BACKEND_ID.exec(name)![1].toLowerCase());
    assert.equal(row?.id, id, `ER_${name} = ${id}, the table's row: ${JSON.stringify(row)}`);
  }
});

test("wire: the loaded library has the ABI version of ffi/wire.ts", () => {
  assert.equal(loadNative().symbols.er_abi_version(), ER.ABI_VERSION);
  assert.equal(ABI_VERSION, ER.ABI_VERSION);
});
