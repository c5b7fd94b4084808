/**
 * Every public symbol has an @example: the symbols and members `deno doc --json` lists for the
 * entry points deno.json exports (functions, classes and their public members, interfaces and
 * their members, type aliases, variables, enums, namespaces), minus those tagged @internal or
 * @ignore. `make check` type-checks
 * the examples themselves (deno check --doc-only).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "./compat.ts";
import { root } from "./helpers.ts";

// The host's pinned Deno: deno doc is a static view of the sources, whatever runtime runs the test.
const deno = `${root}node_modules/.bin/deno`;

interface JsDoc {
  tags?: { kind: string }[];
}
interface DocMember {
  name?: string;
  kind?: string;
  jsDoc?: JsDoc;
  accessibility?: string;
  location?: { filename: string; line: number };
}
interface DocDeclaration {
  kind: string;
  jsDoc?: JsDoc;
  location: { filename: string; line: number };
  def?: Record<string, unknown> & { elements?: DocSymbol[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

const hasTag = (doc: JsDoc | undefined, kind: string) => !!doc?.tags?.some((t) => t.kind === kind);
const hidden = (doc: JsDoc | undefined) => hasTag(doc, "internal") || hasTag(doc, "ignore");
const where = (loc: { filename: string; line: number } | undefined) =>
  loc ? `${loc.filename.replace(`file://${root}`, "")}:${loc.line}` : "?";

// Member lists deno doc shows (type aliases: those of an object literal type), each with its kind.
const MEMBER_LISTS: Record<string, string> = {
  constructors: "constructor",
  properties: "property",
  methods: "method",
  callSignatures: "call signature",
  indexSignatures: "index signature",
  members: "enum member",
};

function membersOf(decl: DocDeclaration): [string, DocMember[]][] {
  const def = decl.def ?? {};
  const source = decl.kind === "typeAlias"
    ? ((def.tsType as { kind?: string; value?: Record<string, unknown> } | undefined)?.kind === "typeLiteral"
      ? (def.tsType as { value: Record<string, unknown> }).value
      : {})
    : def;
  return Object.keys(MEMBER_LISTS).map((list) => [list, (source[list] as DocMember[] | undefined) ?? []]);
}

function memberName(list: string, m: DocMember): string {
  if (list === "constructors") return "constructor";
  if (list === "callSignatures") return "(call signature)";
  if (list === "indexSignatures") return "[index signature]";
  return m.name ?? "?";
}

/** "Name (kind, file:line)" for each public symbol or member of a deno doc --json tree without an @example. */
function missingExamples(doc: { nodes: Record<string, { symbols: DocSymbol[] }> }): string[] {
  const missing: string[] = [];
  const visit = (symbols: DocSymbol[], prefix: string) => {
    for (const symbol of symbols) {
      const decls = symbol.declarations.filter((d) => d.kind !== "import" && !hidden(d.jsDoc));
      if (decls.length === 0) continue;
      const name = prefix + symbol.name;
      // Overloads and merged declarations share one page: one example among them is enough.
      if (!decls.some((d) => hasTag(d.jsDoc, "example"))) {
        missing.push(`${name} (${decls[0].kind}, ${where(decls[0].location)})`);
      }
      for (const decl of decls) {
        if (decl.kind === "namespace") visit(decl.def?.elements ?? [], `${name}.`);
        for (const [list, members] of membersOf(decl)) {
          const visible = members.filter((m) => m.accessibility !== "private" && !hidden(m.jsDoc));
          const names = new Set(visible.map((m) => memberName(list, m)));
          for (const member of names) {
            const same = visible.filter((m) => memberName(list, m) === member);
            if (same.some((m) => hasTag(m.jsDoc, "example"))) continue;
            const kind = same[0].kind ?? MEMBER_LISTS[list];
            missing.push(`${name}.${member} (${kind}, ${where(same[0].location ?? decl.location)})`);
          }
        }
      }
    }
  };
  for (const node of Object.values(doc.nodes)) visit(node.symbols, "");
  return missing;
}

function denoDoc(...entries: string[]): { nodes: Record<string, { symbols: DocSymbol[] }> } {
  const out = execFileSync(deno, ["doc", "--json", ...entries], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
  const doc = JSON.parse(out);
  assert.ok(doc && typeof doc.nodes === "object", `unexpected deno doc --json output (version ${doc?.version})`);
  return doc;
}

/** The package's entry points: the files deno.json exports (mod.ts, and cli.ts once it is one). */
function entryPoints(): string[] {
  const config = JSON.parse(readFileSync(`${root}deno.json`, "utf8")) as { exports: string | Record<string, string> };
  return typeof config.exports === "string" ? [config.exports] : Object.values(config.exports);
}

test("every export of the package's entry points has an @example in its JSDoc", () => {
  const entries = entryPoints();
  assert.ok(entries.includes("./mod.ts"), `deno.json exports ${entries.join(", ")}`);
  const missing = missingExamples(denoDoc(...entries));
  assert.deepEqual(
    missing,
    [],
    `these exports of ${entries.join(", ")} have no @example in their JSDoc ` +
      `(add one: a \`\`\`ts block that deno check --doc-only accepts):\n  ${missing.join("\n  ")}`,
  );
});

test("the example checker names every kind of export that lacks one", () => {
  const dir = mkdtempSync(`${tmpdir()}/edgerun-doc-`);
  try {
    const example = "@example\n * ```ts\n * 1;\n * ```";
    writeFileSync(
      `${dir}/probe.ts`,
      `/** ok\n * ${example} */
export function documented(): void {}
/** no example */
export function bare(): void {}
/** ok\n * ${example} */
export class Box {
  /** ok\n * ${example} */
  constructor() {}
  /** no example */
  size = 1;
  /** no example */
  get empty(): boolean { return true; }
  /** ok\n * ${example} */
  open(): void {}
  private secret = 2;
  /** @internal */
  hook(): void {}
}
/** ok\n * ${example} */
export interface Shape {
  /** no example */
  readonly width: number;
  /** no example */
  [key: string]: number;
}
/** no example */
export type Kind = "a" | "b";
/** ok\n * ${example} */
export type Pair = {
  /** no example */
  left: number;
};
/** no example */
export const limit = 3;
/** @internal */
export const hiddenLimit = 4;
`,
    );
    const missing = missingExamples(denoDoc(`${dir}/probe.ts`)).map((line) => line.replace(/ \(.*/, ""));
    assert.deepEqual(missing.sort(), [
      "Box.empty",
      "Box.size",
      "Kind",
      "Pair.left",
      "Shape.[index signature]",
      "Shape.width",
      "bare",
      "limit",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
