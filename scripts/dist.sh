#!/usr/bin/env bash
# make dist: the release artifacts, in zig-out/dist/:
#   libedgerun-<tag>.so (+ .sha256)  for linux-x64-gnu and linux-arm64-gnu, cross-compiled by zig with
#                                    glibc 2.17 symbols at most, stripped; each built twice (the second
#                                    time with an empty zig cache) and refused unless both are the same bytes
#   SHA256SUMS                       the libraries and the npm tarballs
#   npm/<package>/ and *.tgz         @edgerun/edgerun (JavaScript + .d.ts emitted by tsc from the
#                                    TypeScript sources) and @edgerun/<tag> (the library), as `npm pack` makes them
# ffi/release.ts pins the libraries' SHA-256 for the download-on-first-use path: when the build
# differs from the pins, this script rewrites the file (commit it with the release).
set -euo pipefail
cd "$(dirname "$0")/.."
ZIG=${ZIG:-.tools/py/ziglang/zig}
OUT=zig-out/dist
SCOPE=@edgerun
version=$(node -p 'require("./package.json").version')
declare -A TRIPLE=([linux-x64-gnu]=x86_64-linux-gnu.2.17 [linux-arm64-gnu]=aarch64-linux-gnu.2.17)
declare -A CPU=([linux-x64-gnu]=x64 [linux-arm64-gnu]=arm64)
TAGS=(linux-x64-gnu linux-arm64-gnu)

rm -rf "$OUT"
mkdir -p "$OUT/npm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for tag in "${TAGS[@]}"; do
  "$ZIG" build -Dtarget="${TRIPLE[$tag]}" -Dstrip=true --prefix "$work/a/$tag"
  # Reproducibility: the same sources built again from nothing in the local cache give the same bytes.
  "$ZIG" build -Dtarget="${TRIPLE[$tag]}" -Dstrip=true --cache-dir "$work/cache-$tag" --prefix "$work/b/$tag"
  if ! cmp -s "$work/a/$tag/lib/libedgerun.so" "$work/b/$tag/lib/libedgerun.so"; then
    echo "dist: libedgerun for $tag is not reproducible (two builds differ)" >&2
    exit 1
  fi
  cp "$work/a/$tag/lib/libedgerun.so" "$OUT/libedgerun-$tag.so"
  (cd "$OUT" && sha256sum "libedgerun-$tag.so" >"libedgerun-$tag.so.sha256")
done

# Pin the hashes in the source the npm and JSR packages are made from.
node - "$version" "${TAGS[@]}" <<'JS'
const fs = require("fs");
const [version, ...tags] = process.argv.slice(2);
const sums = Object.fromEntries(tags.map((t) => [t, fs.readFileSync(`zig-out/dist/libedgerun-${t}.so.sha256`, "utf8").split(" ")[0]]));
const file = "ffi/release.ts";
const old = fs.readFileSync(file, "utf8");
const body = `  version: ${JSON.stringify(version)},\n  sha256: {\n${tags.map((t) => `    ${JSON.stringify(t)}: ${JSON.stringify(sums[t])},\n`).join("")}  },\n`;
const updated = old.replace(/  version: [^\n]*\n  sha256: \{[^}]*\},\n/, body);
if (updated === old) {
  console.log("dist: ffi/release.ts already pins these libraries");
} else {
  fs.writeFileSync(file, updated);
  console.log("dist: ffi/release.ts updated with the new SHA-256 pins: commit it with the release");
}
JS

# The main package: JavaScript and declarations from the TypeScript sources.
main="$OUT/npm/edgerun"
node_modules/.bin/tsc -p scripts/tsconfig.dist.json --outDir "$main"
# The one module path tsc cannot see: Bun's completion-waiter worker, named by a URL.
grep -q '"./bun_waiter.ts"' "$main/ffi/bun.js"
sed -i 's|"./bun_waiter.ts"|"./bun_waiter.js"|' "$main/ffi/bun.js"
chmod +x "$main/cli.js"
# Disposable and Symbol.dispose for consumers whose tsconfig lib predates them (ES2022 and the
# like): the same global declarations @types/node carries, which merge with TypeScript's own.
cat >"$main/disposable.d.ts" <<'DTS'
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
  interface Disposable {
    [Symbol.dispose](): void;
  }
  interface AsyncDisposable {
    [Symbol.asyncDispose](): PromiseLike<void>;
  }
}
export {};
DTS
# (cli.d.ts drops the shebang tsc copies from cli.ts: a .d.ts may not have one.)
for f in mod.d.ts cli.d.ts; do sed -i -e '1{/^#!/d}' -e '1i /// <reference path="./disposable.d.ts" />' "$main/$f"; done
cp README.md LICENSE "$main/"
node - "$version" "$SCOPE" "${TAGS[@]}" <<'JS'
const fs = require("fs");
const [version, scope, ...tags] = process.argv.slice(2);
const repo = JSON.parse(fs.readFileSync("package.json", "utf8"));
const manifest = {
  name: `${scope}/edgerun`,
  version,
  description: repo.description,
  license: repo.license,
  type: "module",
  exports: {
    ".": { types: "./mod.d.ts", default: "./mod.js" },
    "./cli": { types: "./cli.d.ts", default: "./cli.js" },
    "./package.json": "./package.json",
  },
  types: "./mod.d.ts",
  bin: { edgerun: "./cli.js" },
  files: ["mod.js", "mod.d.ts", "cli.js", "cli.d.ts", "disposable.d.ts", "src/**/*.js", "src/**/*.d.ts", "ffi/**/*.js", "ffi/**/*.d.ts"],
  engines: { deno: ">=2.0.0", bun: ">=1.1.0" },
  os: ["linux"],
  optionalDependencies: Object.fromEntries(tags.map((t) => [`${scope}/${t}`, version])),
};
fs.writeFileSync("zig-out/dist/npm/edgerun/package.json", JSON.stringify(manifest, null, 2) + "\n");
JS

# One package per platform, carrying the library; npm, Bun and Deno install only the one whose
# os/cpu/libc match the machine.
for tag in "${TAGS[@]}"; do
  dir="$OUT/npm/$tag"
  mkdir -p "$dir"
  cp "$OUT/libedgerun-$tag.so" "$dir/libedgerun.so"
  cp LICENSE "$dir/"
  printf '# %s/%s\n\nlibedgerun.so for %s (glibc 2.17 or newer), the prebuilt library of %s/edgerun %s.\nSHA-256: %s\n' \
    "$SCOPE" "$tag" "$tag" "$SCOPE" "$version" "$(cut -d' ' -f1 "$OUT/libedgerun-$tag.so.sha256")" >"$dir/README.md"
  node -e '
    const [scope, tag, version, cpu] = process.argv.slice(1);
    const m = { name: `${scope}/${tag}`, version, description: `libedgerun.so for ${tag}: the prebuilt library of ${scope}/edgerun`,
      license: "MIT", os: ["linux"], cpu: [cpu], libc: ["glibc"], files: ["libedgerun.so"] };
    require("fs").writeFileSync(process.argv[5], JSON.stringify(m, null, 2) + "\n");
  ' "$SCOPE" "$tag" "$version" "${CPU[$tag]}" "$dir/package.json"
done

for pkg in edgerun "${TAGS[@]}"; do
  (cd "$OUT" && npm pack --silent "./npm/$pkg" >/dev/null)
done
(cd "$OUT" && sha256sum libedgerun-*.so ./*.tgz | sed 's| \./| |' >SHA256SUMS)
echo "dist: $OUT"
cat "$OUT/SHA256SUMS"
