/**
 * Finding libedgerun from an installed package (JSR layout: the package's .ts files and sources,
 * no zig-out): the local build inside the package directory is found, and when nothing loads
 * the error names the paths tried and the three ways to get the library.
 */
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { loadLibrary } from "../mod.ts";
import { runtime, test } from "./compat.ts";
import { root, runScript, tempDir } from "./helpers.ts";

/**
 * A copy of the package's modules as an install has them, without a built library. Bun: the npm
 * layout `bunx jsr add` makes, with the npyjs dependency beside it. Deno runs TypeScript under
 * node_modules only from npm packages, so its copy is a plain directory (its import map, named by
 * runScript's --config, resolves npyjs).
 */
function installedPackage(): string {
  const base = mkdtempSync(join(tempDir(), "pkg-"));
  const pkg = runtime === "bun" ? join(base, "node_modules", "@edgerun", "edgerun") : join(base, "edgerun");
  mkdirSync(pkg, { recursive: true });
  if (runtime === "bun") symlinkSync(join(root, "node_modules", "npyjs"), join(base, "node_modules", "npyjs"));
  copyFileSync(join(root, "mod.ts"), join(pkg, "mod.ts"));
  for (const dir of ["src", "ffi"]) cpSync(join(root, dir), join(pkg, dir), { recursive: true });
  return pkg;
}

// EDGERUN_LIB="" reads as unset (the aarch64 suite exports it). The download-on-first-use goes to
// a local port nobody serves (the suite never reaches out; tests/install.ts tests the download),
// into a cache of the test's own.
const NO_ENV_LIB = {
  EDGERUN_LIB: "",
  EDGERUN_DOWNLOAD_BASE: "http://127.0.0.1:9",
  EDGERUN_CACHE_DIR: join(tempDir(), "edgerun-cache"),
};
const TAG = `linux-${process.arch}-gnu`;

function loadScript(pkg: string, options = ""): string {
  return `
    import { loadLibrary, EdgerunError } from ${JSON.stringify(join(pkg, "mod.ts"))};
    try { console.log("LOADED " + loadLibrary(${options}).path); }
    catch (e) { console.log(e instanceof EdgerunError ? e.code + ": " + e.message : "other: " + e); }`;
}

test("loading: without a library, the error names the paths tried and the three ways to get one", () => {
  const pkg = installedPackage();
  const r = runScript(loadScript(pkg), NO_ENV_LIB);
  assert.equal(r.status, 0, r.stderr);
  if (r.stdout.startsWith("LOADED ")) {
    // A system-wide libedgerun exists on this machine: the search ended there, as documented.
    assert.equal(r.stdout.trim(), "LOADED libedgerun.so");
    return;
  }
  const out = r.stdout;
  assert.match(out, /^LOAD_FAILED: libedgerun\.so could not be loaded\./);
  assert.ok(out.includes(`${pkg}/zig-out/lib/libedgerun.so (local build: not found)`), out);
  assert.match(out, /libedgerun\.so \(system loader: /);
  // The per-platform npm package beside the package and up its parents, the download cache, the download.
  assert.ok(out.includes(`${join(pkg, "..")}/node_modules/@edgerun/${TAG}/libedgerun.so (npm package @edgerun/${TAG}: not found)`), out);
  assert.ok(out.includes(`${NO_ENV_LIB.EDGERUN_CACHE_DIR}/0.1.0/${TAG}/libedgerun.so (download cache: not found)`), out);
  assert.ok(out.includes(`http://127.0.0.1:9/@edgerun/${TAG}/-/${TAG}-0.1.0.tgz (download: `), out);
  // The fix for this runtime.
  if (runtime === "bun") assert.match(out, new RegExp(`Fix \\(bun\\): cd .* && bun add @edgerun/${TAG}@0\\.1\\.0`));
  else assert.match(out, /Fix \(deno\): let edgerun download the prebuilt library once .* --allow-net/);
  // 1: build in the package directory, with the pinned zig from PyPI.
  assert.ok(
    out.includes(
      `cd ${pkg}/ && python3 -m pip install --target .zig ziglang==0.15.2 && PYTHONPATH=.zig python3 -m ziglang build`,
    ),
    out,
  );
  // 2: the environment variable or the option; 3: a system install.
  assert.match(out, /set EDGERUN_LIB=\/path\/to\/libedgerun\.so/);
  assert.match(out, /copy it to \/usr\/lib, or to \/usr\/local\/lib and run ldconfig/);
  assert.match(out, /Getting libedgerun\.so/);
  assert.doesNotMatch(out, /make build|explicitly/);

  const explicit = runScript(loadScript(pkg, `"/nonexistent/libedgerun.so"`), NO_ENV_LIB);
  assert.match(explicit.stdout, /Tried: \/nonexistent\/libedgerun\.so \(option: not found\)\.\n/);
  assert.match(explicit.stdout, /given explicitly .* no other place was searched/);
});

test("loading: a library built in the installed package's directory is found there", () => {
  const pkg = installedPackage();
  const built = join(pkg, "zig-out", "lib", "libedgerun.so");
  mkdirSync(join(pkg, "zig-out", "lib"), { recursive: true });
  // The library this suite runs on stands in for the one `python3 -m ziglang build` writes.
  copyFileSync(loadLibrary().path, built);
  const r = runScript(loadScript(pkg), NO_ENV_LIB);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `LOADED ${built}`);
});

test("loading: the per-platform npm package in a node_modules above the package is found, whatever the cwd", () => {
  const pkg = installedPackage();
  const platform = runtime === "bun" ? join(pkg, "..", TAG) : join(pkg, "..", "node_modules", "@edgerun", TAG);
  mkdirSync(platform, { recursive: true });
  copyFileSync(loadLibrary().path, join(platform, "libedgerun.so"));
  const r = runScript(loadScript(pkg), NO_ENV_LIB);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `LOADED ${join(platform, "libedgerun.so")}`);
});

// Deno without --allow-env: tests/permissions.test.ts (the refusal is Deno's own NotCapable error).
