#!/usr/bin/env bash
# Runs the suite (tests/run.sh) on the aarch64 builds of Deno and Bun under qemu-user, against the
# aarch64 shim, simulator and ONNX Runtime. `make test-aarch64` installs and builds all of these.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
qemu=$(command -v qemu-aarch64-static) || { echo "qemu-aarch64-static not found (make test-aarch64 installs it)"; exit 1; }
# qemu-user resolves the guest's absolute paths under QEMU_LD_PREFIX first. It holds the guest's
# loader and libc (lib -> libc6-arm64-cross) and an arm64 /proc/cpuinfo: qemu 7.2 passes the host's
# x86 one through, and ONNX Runtime's cpuinfo then crashes on load (SIGSEGV at 0 in dlopen).
# The CPU reads as the board's Cortex-A78AE; QEMU_CPU=cortex-a76 is qemu's nearest model (no SVE).
sysroot=$root/.tools/aarch64/sysroot
mkdir -p "$sysroot/proc" && ln -sfn /usr/aarch64-linux-gnu/lib "$sysroot/lib"
for ((i = 0; i < $(getconf _NPROCESSORS_CONF); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd42\nCPU revision\t: 0\n\n' "$i"
done >"$sysroot/proc/cpuinfo"
export QEMU_LD_PREFIX=$sysroot QEMU_CPU=${QEMU_CPU:-cortex-a76}
export EDGERUN_LIB=$root/zig-out/aarch64/lib/libedgerun.so
export EDGERUN_ORT_LIB=$root/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1
# The aarch64 hbDNN simulator (libdnn.so, libhbucp.so) for the simulator tests.
export EDGERUN_SIM_DIR=$root/zig-out/aarch64/sim
# Without binfmt_misc the kernel cannot exec an aarch64 binary: tests that re-run the runtime
# (process.execPath) put this command in front of it.
export EDGERUN_TEST_EXEC_PREFIX=$qemu
deno=$root/.tools/aarch64/deno/deno
bun=$root/.tools/aarch64/bun/bin/bun
for f in "$deno" "$bun" "$EDGERUN_LIB" "$EDGERUN_SIM_DIR/libdnn.so" "$EDGERUN_ORT_LIB"; do
  [ -e "$f" ] || { echo "missing $f (run make test-aarch64)"; exit 1; }
  echo "${f#"$root"/}: $(file -bL "$f" | cut -d, -f1-2)"
done
SKIP_NATIVE=1 DENO="$qemu $deno" BUN="$qemu $bun" exec tests/run.sh
