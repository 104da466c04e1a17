#!/usr/bin/env bash
# Runs the whole CTest suite with the emulated runtime and every C/C++ test program built
# with AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan/ (the Rust shim is not
# instrumented; it shares build/cargo when that exists, so it is not compiled again).
# Arguments go to ctest, e.g. scripts/sanitize.sh -R 'pair|rules'. By default the slowest
# tests, which add nothing the others do not under the sanitizers, are left out:
# ledger.capacity (70,000 keys), fuzz.rust (Rust fuzzing, ASan of its own), bench.smoke,
# cargo.test (Rust only) and checkers.* (memcheck cannot run ASan programs; checkers.asan
# is this very run); audit.fork.storm is disabled there (see README.md, "Sanitizers").
# Expect about 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo_dir=()
[ -d build/cargo ] && cargo_dir=(-DCARGO_TARGET_DIR="$PWD/build/cargo")
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DAIG_SANITIZE=ON "${cargo_dir[@]}" >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
if [ $# -eq 0 ]; then
  set -- -E '^(ledger\.capacity|fuzz\.rust|bench\.smoke|cargo\.test|checkers\..*)$'
fi
ctest --output-on-failure -j"$(nproc)" "$@"
