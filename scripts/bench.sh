#!/usr/bin/env bash
# The shim's cost, measured against the budgets of the interface ("Budgets"): builds
# everything, then bench/run_bench.py prints one table with each figure beside its budget
# (added time over a direct call into a do-nothing runtime in the same run, per mode,
# thread count, live allocations and live keys; memory per live allocation; ltrace on the
# same IPC loop; `acl-ipc-guard report` over 1 GiB and 4 GiB of logs of 64 processes).
# Numbers, not assertions. Takes several minutes; run it on a quiet machine.
#
#   scripts/bench.sh [--quick] [--no-report] [--no-ltrace] [--no-install] [--raw] [--instr]
#
# --quick: few samples and small logs (the smoke test runs this); the same rows.
# ltrace is installed with apt-get when missing and we are root (--no-install: never).
# --instr: also the shim's instructions per call, counted by callgrind (bench/instr.py;
# repeatable on a loaded machine, where the timings are not; needs valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
exec python3 bench/run_bench.py --build build "$@"
