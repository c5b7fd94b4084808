# edgerun: the stable entry points. Every target installs what it needs first (idempotently,
# pinned versions, from npm and PyPI only) and then acts.
#   make demo    run examples/ocr.ts (PP-OCR det -> cls -> rec on a PNG) and examples/infer.ts on Deno and Bun
#   make test    the whole suite on Deno and on Bun; last line "N passed, N failed"
#   make build   libedgerun.so (zig-out/lib) ; make build-aarch64 for the board
#   make test-aarch64  the suite on aarch64 Deno and Bun under qemu-user (apt: qemu-user-static)
#   make bench   benchmarks, printed as a table
#   make check   type check (code and JSDoc examples), lint, doc lint, publish dry run
#   make fuzz    libFuzzer targets of tests/fuzz/ (apt: clang-14), FUZZ_SECONDS each (default 60)
#   make soak    leak and soak test (RSS table); make soak SOAK_SCALE=0.1 for the short CI variant
#   make dist    release artifacts in zig-out/dist: libedgerun.so for linux-x64-gnu and linux-arm64-gnu
#                (reproducible, SHA-256 each) and the npm tarballs (scripts/dist.sh)
#   make test-install  installs the dist from a local npm registry (verdaccio) and a local download
#                server into fresh apps, runs models on Deno and Bun; last line "N passed, N failed"

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

# aarch64: the board's build, and Deno/Bun for arm64 (npm, apart from the x86 toolchain) run under qemu.
AARCH64 := zig-out/aarch64
LIB_AARCH64 := $(AARCH64)/lib/libedgerun.so
SIM_AARCH64 := $(AARCH64)/sim/libdnn.so
AARCH64_DENO := @deno/linux-arm64-glibc@2.9.5
AARCH64_BUN := @oven/bun-linux-aarch64@1.4.5
AARCH64_NPM_STAMP := $(TOOLS)/aarch64/deno-$(lastword $(subst @, ,$(AARCH64_DENO)))-bun-$(lastword $(subst @, ,$(AARCH64_BUN))).stamp
AARCH64_APT := qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross libstdc++6-arm64-cross
AARCH64_APT_STAMP := $(TOOLS)/aarch64/apt.stamp
FUZZ_APT := clang-14 libclang-rt-14-dev
FUZZ_APT_STAMP := $(TOOLS)/fuzz/apt.stamp
FUZZ_SECONDS ?= 60
# make soak SOAK_SCALE=0.1 is the bounded CI variant.
SOAK_SCALE ?= 1

# make test-install: verdaccio, the local npm registry the dist is published to (scripts/verdaccio/).
VERDACCIO_DIR := $(TOOLS)/verdaccio-6.8.0
VERDACCIO_STAMP := $(VERDACCIO_DIR)/.installed

.PHONY: all deps build build-aarch64 sim demo test test-deno test-bun test-aarch64 bench check fuzz soak clean \
	dist test-install

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

$(LIB_AARCH64): $(ZIG_STAMP) build.zig $(wildcard shim/*.c shim/*.h shim/include/*.h shim/backends/*.c)
	$(ZIG) build -Dtarget=aarch64-linux-gnu --prefix $(AARCH64)
	@touch $@

build-aarch64: $(LIB_AARCH64)

$(SIM): $(ZIG_STAMP) build.zig $(wildcard tests/sim/*.c tests/sim/*.h tests/sim/acl/*.c tests/sim/acl/*.h)
	$(ZIG) build sim
	@touch $@

sim: $(SIM)

$(SIM_AARCH64): $(ZIG_STAMP) build.zig $(wildcard tests/sim/*.c tests/sim/*.h tests/sim/acl/*.c tests/sim/acl/*.h)
	$(ZIG) build sim -Dtarget=aarch64-linux-gnu --prefix $(AARCH64)
	@touch $@

# apt-get update only when the install fails on stale or missing package lists.
$(AARCH64_APT_STAMP):
	@mkdir -p $(@D)
	dpkg -s $(AARCH64_APT) >/dev/null 2>&1 || apt-get install -y -q $(AARCH64_APT) || \
		{ apt-get update -q && apt-get install -y -q $(AARCH64_APT); }
	@touch $@

$(FUZZ_APT_STAMP):
	@mkdir -p $(@D)
	dpkg -s $(FUZZ_APT) >/dev/null 2>&1 || apt-get install -y -q $(FUZZ_APT) || \
		{ apt-get update -q && apt-get install -y -q $(FUZZ_APT); }
	@touch $@

# npm refuses to install another platform's package: fetch the tarballs (npm pack) and unpack them.
$(AARCH64_NPM_STAMP):
	@rm -rf $(@D)/deno $(@D)/bun && mkdir -p $(@D)/deno $(@D)/bun
	cd $(@D) && tar -xzf "$$(npm pack --silent $(AARCH64_DENO))" --strip-components=1 -C deno
	cd $(@D) && tar -xzf "$$(npm pack --silent $(AARCH64_BUN))" --strip-components=1 -C bun
	@rm -f $(@D)/*.tgz
	@touch $@

demo: deps build
	$(DENO_RUN) examples/ocr.ts
	@echo
	$(BUN) run examples/ocr.ts
	@echo
	$(DENO_RUN) examples/infer.ts
	@echo
	$(BUN) run examples/infer.ts

test: deps build sim
	@tests/run.sh

test-deno: deps build sim
	@RUNTIMES=deno tests/run.sh

test-bun: deps build sim
	@RUNTIMES=bun tests/run.sh

test-aarch64: deps $(LIB_AARCH64) $(SIM_AARCH64) $(AARCH64_APT_STAMP) $(AARCH64_NPM_STAMP)
	@tests/run-aarch64.sh

bench: deps build sim
	@mkdir -p zig-out/bench
	$(DENO) run --allow-all bench/overhead.ts
	$(DENO) run --allow-all bench/run.ts
	$(DENO) run --allow-all bench/async.ts
	$(BUN) run bench/async.ts
	$(DENO) run --allow-all bench/image.ts
	$(BUN) run bench/image.ts

fuzz: $(FUZZ_APT_STAMP)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

# Leak and soak test: RSS over 100,000 runs and 1,000 open/close cycles on Deno and Bun (bench/soak.ts).
soak: deps build sim
	$(DENO) run --allow-all bench/soak.ts --runtimes deno,bun --scale $(SOAK_SCALE)
	# The seeded fault tests (hbdnn: tests/faults.test.ts, acl: tests/acl_faults.test.ts), far longer than in
	# make test: 20,000 steps each per runtime at scale 1.
	EDGERUN_FAULT_STEPS=$$(awk 'BEGIN { print int(20000 * $(SOAK_SCALE)) }') $(DENO) test --allow-all tests/faults.test.ts tests/acl_faults.test.ts
	EDGERUN_FAULT_STEPS=$$(awk 'BEGIN { print int(20000 * $(SOAK_SCALE)) }') $(BUN) test --timeout 3600000 tests/faults.test.ts tests/acl_faults.test.ts

check: deps
	$(DENO) check mod.ts examples/*.ts bench/*.ts tests/*.ts
	$(DENO) check --doc-only $(wildcard *.ts) src/*.ts ffi/*.ts
	$(DENO) lint
	$(DENO) doc --lint mod.ts $(wildcard cli.ts)
	$(DENO) publish --dry-run --allow-dirty

dist: deps $(ZIG_STAMP)
	@scripts/dist.sh

$(VERDACCIO_STAMP): scripts/verdaccio/package.json scripts/verdaccio/package-lock.json
	@mkdir -p $(VERDACCIO_DIR)
	cp scripts/verdaccio/package.json scripts/verdaccio/package-lock.json $(VERDACCIO_DIR)/
	cd $(VERDACCIO_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

test-install: deps sim dist $(VERDACCIO_STAMP)
	@$(DENO) run --allow-all tests/install.ts

clean:
	rm -rf zig-out .zig-cache
