#!/usr/bin/env bash
# Runs the fuzz driver of the intercepted functions (tests-c/tests/fuzz_calls.py) for longer
# than the test suite's smoke run: SECONDS of rounds (default 600), OPS calls per process
# (default 1000). A failure names the seed that replays it: AIG_FUZZ_SEED=N scripts/fuzz.sh.
# Needs a configured and built build/ (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export AIG_BUILD_DIR=$root/build AIG_SOURCE_DIR=$root PYTHONPATH=$root/tests-c PYTHONDONTWRITEBYTECODE=1
export AIG_FUZZ_SECONDS=${1:-600} AIG_FUZZ_OPS=${2:-1000}
exec python3 "$root/tests-c/tests/fuzz_calls.py"
