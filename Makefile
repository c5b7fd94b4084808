# edgerun: the stable entry points. Every target installs what it needs first (idempotently,
# pinned versions, from npm and PyPI only) and then acts.
#   make demo    run examples/infer.ts on Deno and Bun (PaddleOCR classifier, ort backend)
#   make test    the whole suite on Deno and on Bun; last line "N passed, N failed"
#   make build   libedgerun.so (zig-out/lib) ; make build-aarch64 for the board
#   make bench   benchmarks, printed as a table

SHELL := /bin/bash
ZIG_VERSION := 0.15.2
TOOLS := .tools
ZIG := $(TOOLS)/py/ziglang/zig
ZIG_STAMP := $(TOOLS)/zig-$(ZIG_VERSION).stamp
NPM_STAMP := node_modules/.edgerun-installed
DENO := node_modules/.bin/deno
BUN := node_modules/.bin/bun
LIB := zig-out/lib/libedgerun.so
SIM := zig-out/sim/libdnn.so
DENO_RUN := $(DENO) run --allow-ffi --allow-read --allow-env

.PHONY: all deps build build-aarch64 sim demo test test-deno test-bun bench check clean

all: build

$(ZIG_STAMP):
	@mkdir -p $(TOOLS)
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/py --upgrade ziglang==$(ZIG_VERSION)
	@test "$$($(ZIG) version)" = "$(ZIG_VERSION)" || { echo "zig $(ZIG_VERSION) expected, got $$($(ZIG) version)"; exit 1; }
	@touch $@

# onnxruntime-node's install script downloads from a host outside the registries: skip scripts,
# then let bun's own installer link its platform binary (it ships in an npm optional dependency).
$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cd node_modules/bun && node install.js
	@touch $@

deps: $(ZIG_STAMP) $(NPM_STAMP)

$(LIB): $(ZIG_STAMP) build.zig $(wildcard shim/*.c shim/*.h shim/include/*.h shim/backends/*.c)
	$(ZIG) build
	@touch $@

build: $(LIB)

build-aarch64: $(ZIG_STAMP)
	$(ZIG) build -Dtarget=aarch64-linux-gnu --prefix zig-out/aarch64

$(SIM): $(ZIG_STAMP) build.zig $(wildcard tests/sim/*.c tests/sim/*.h)
	$(ZIG) build sim
	@touch $@

sim: $(SIM)

demo: deps build
	$(DENO_RUN) examples/infer.ts
	@echo
	$(BUN) run examples/infer.ts

test: deps build sim
	@tests/run.sh

test-deno: deps build sim
	@RUNTIMES=deno tests/run.sh

test-bun: deps build sim
	@RUNTIMES=bun tests/run.sh

bench: deps build
	@mkdir -p zig-out/bench
	$(DENO) run --allow-all bench/run.ts

check: deps
	$(DENO) check mod.ts examples/*.ts
	$(DENO) publish --dry-run --allow-dirty

clean:
	rm -rf zig-out .zig-cache
