#!/usr/bin/env bash
# Runs the suite on each runtime and prints one final line: "N passed, N failed" summed over both.
set -uo pipefail
cd "$(dirname "$0")/.."
runtimes=${RUNTIMES:-"deno bun"}
# A hung run must end as a failure, not stall CI.
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}
# DENO / BUN: the runtime commands (tests/run-aarch64.sh points them at aarch64 builds under qemu).
deno=${DENO:-node_modules/.bin/deno}
bun=${BUN:-node_modules/.bin/bun}
total_pass=0
total_fail=0
status=0
# The native ABI test under ASan+UBSan first (tests/native/, `zig build test`): one failure if it fails.
if [ -z "${SKIP_NATIVE:-}" ]; then
  echo "== native =="
  native_log=$(mktemp)
  timeout 300 "${ZIG:-.tools/py/ziglang/zig}" build test >"$native_log" 2>&1
  native_rc=$?
  native_line=$(grep -E '^native: [0-9]+ checks, [0-9]+ failed' "$native_log" | tail -n 1)
  if [ "$native_rc" -ne 0 ]; then
    grep -v '^native: ' "$native_log" | tail -n 80
    echo "${native_line:-native: no summary} (zig build test exited $native_rc: a failed check, a sanitizer report or a build error above)"
    total_fail=$((total_fail + 1))
    status=1
  else
    echo "$native_line"
  fi
  rm -f "$native_log"
fi
for rt in $runtimes; do
  log=$(mktemp)
  echo "== $rt =="
  case $rt in
    deno) NO_COLOR=1 timeout "$SUITE_TIMEOUT" $deno test --allow-all --quiet tests/ 2>&1 | tee "$log" ;;
    bun) timeout "$SUITE_TIMEOUT" $bun test --timeout 120000 tests/ 2>&1 | tee "$log" ;;
  esac
  rc=${PIPESTATUS[0]}
  if [ "$rt" = deno ]; then
    summary=$(grep -E '^(ok|FAILED) \|' "$log" | tail -n 1)
    pass=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
    fail=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
  else
    pass=$(sed -nE 's/^ *([0-9]+) pass$/\1/p' "$log" | tail -n 1)
    fail=$(sed -nE 's/^ *([0-9]+) fail$/\1/p' "$log" | tail -n 1)
  fi
  if [ -z "$pass" ] || [ -z "$fail" ]; then
    echo "could not read the $rt test summary (exit $rc): counting the run as one failure"
    pass=${pass:-0}
    fail=$(( ${fail:-0} + 1 ))
  fi
  [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
  echo "$rt: $pass passed, $fail failed"
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  [ "$fail" -ne 0 ] && status=1
  rm -f "$log"
done
echo "$total_pass passed, $total_fail failed"
exit $status
