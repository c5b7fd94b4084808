#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) and runs each for
# FUZZ_SECONDS (default 60), then prints a table: target, runs, execs/s, coverage, features,
# corpus, crashes. A crash fails its target and keeps the reproducer in zig-out/fuzz/crashes/<target>/
# (replay: zig-out/fuzz/bin/<target> <file>). Exit status 1 if any target crashed or failed to build.
#   FUZZ_SECONDS=10 tests/fuzz/run.sh            bounded CI run
#   FUZZ_TARGETS="options core" tests/fuzz/run.sh   a subset
set -uo pipefail
cd "$(dirname "$0")/../.."
CC=${FUZZ_CC:-clang-14}
SECONDS_EACH=${FUZZ_SECONDS:-60}
out=zig-out/fuzz
mkdir -p "$out/bin" "$out/sim" "$out/logs"

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wno-unused-function -Ishim/include -Ishim -Itests/fuzz"
# Every backend file (shim/backends/*.c) and their table (shim/backends.c).
BACKENDS=$(ls shim/backends/*.c | tr '\n' ' ')
SHIM="shim/core.c shim/tensor.c shim/util.c shim/workers.c shim/backends.c $BACKENDS"
LIBS="-ldl -lpthread -lm"
# compiler-rt's builtins: clang-14 on x86-64 converts float to __fp16 (image's float16 kernel) by a
# libcall libgcc lacks.
BUILTINS=$($CC --rtlib=compiler-rt -print-libgcc-file-name)

# One line per target: name, then the sources linked with its harness tests/fuzz/<name>.c (or, for
# sim_loader and acl_loader, the simulators' own harnesses; core and image include shim/core.c, image also
# shim/image.c, and define the backend table themselves; preprocess includes tests/fuzz/image.c for its test
# backend). To add a target, write tests/fuzz/<name>.c and a seed corpus
# tests/fuzz/corpus/<name>/ (tests/fuzz/make_seeds.py), and add its line here.
ALL_TARGETS=(
  "options     shim/util.c"
  "tensor_copy shim/tensor.c shim/util.c"
  "core        shim/tensor.c shim/util.c shim/workers.c"
  "hbdnn_props shim/core.c shim/tensor.c shim/util.c shim/workers.c shim/backends.c ${BACKENDS/shim\/backends\/hbdnn.c/}"
  "pack_open   $SHIM"
  "sim_loader  tests/sim/sim_dnn.c tests/sim/sim_ucp.c"
  "acl_loader  tests/sim/acl/sim_acl_rt.c tests/sim/acl/sim_acl_mdl.c"
  "image       shim/tensor.c shim/util.c shim/workers.c shim/preprocess.c $BUILTINS"
  "preprocess  shim/tensor.c shim/util.c shim/workers.c shim/preprocess.c $BUILTINS"
)

# The simulator for pack_open, instrumented like the harness (coverage + ASan + UBSan).
build_sim() {
  local flags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fPIC -shared -Itests/sim -Wno-unknown-pragmas"
  flags="$flags -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
  $CC $flags tests/sim/sim_ucp.c -Wl,-soname,libhbucp.so -o "$out/sim/libhbucp.so" -lpthread -lm &&
    $CC $flags tests/sim/sim_dnn.c -Wl,-soname,libdnn.so '-Wl,-rpath,$ORIGIN' -L"$out/sim" -lhbucp \
      -o "$out/sim/libdnn.so" -lpthread -lm
}

build_target() {
  local name=$1; shift
  local harness="tests/fuzz/$name.c" extra=""
  if [ "$name" = sim_loader ]; then harness=tests/sim/sim_fuzz.c; extra="-DSIM_LIBFUZZER -Itests/sim -Wno-unknown-pragmas"; fi
  if [ "$name" = acl_loader ]; then harness=tests/sim/acl/sim_acl_fuzz.c; extra="-DSIM_LIBFUZZER -Itests/sim/acl"; fi
  $CC $CFLAGS $SAN $extra "$harness" "$@" -o "$out/bin/$name" $LIBS
}

selected=${FUZZ_TARGETS:-}
status=0
rows=()
build_sim >"$out/logs/sim-build.log" 2>&1 || { echo "simulator build failed:"; cat "$out/logs/sim-build.log"; exit 1; }
for entry in "${ALL_TARGETS[@]}"; do
  read -r name sources <<<"$entry"
  if [ -n "$selected" ] && [[ " $selected " != *" $name "* ]]; then continue; fi
  log="$out/logs/$name.log"
  # shellcheck disable=SC2086
  if ! build_target "$name" $sources >"$log" 2>&1; then
    echo "== $name: build failed"; tail -n 30 "$log"
    rows+=("$name|-|-|-|-|-|-|BUILD FAILED"); status=1; continue
  fi
  work="$out/corpus/$name" crashes="$out/crashes/$name"
  mkdir -p "$work" "$crashes"
  marker="$out/logs/$name.start" && touch "$marker"
  echo "== $name: ${SECONDS_EACH}s"
  EDGERUN_HBDNN_LIB_DIR="$PWD/$out/sim" \
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$out/bin/$name" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=4096 -timeout=20 \
    -rss_limit_mb=3072 -artifact_prefix="$crashes/" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  speed=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  ncrash=$(find "$crashes" -type f -newer "$marker" | wc -l) # this run's reproducers only
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="CRASH (exit $rc)"; status=1
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -n 12
  fi
  rows+=("$name|${runs:-?}|${speed:-?}|${cov:-?}|${ft:-?}|${corp:-?}|$ncrash|$result")
done
echo
printf '%-12s %10s %9s %7s %8s %7s %8s  %s\n' target runs execs/s cov features corpus crashes result
for row in "${rows[@]}"; do
  IFS='|' read -r a b c d e f g h <<<"$row"
  printf '%-12s %10s %9s %7s %8s %7s %8s  %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h"
done
exit $status
