#!/usr/bin/env bash
# Prints the shim's own cost per call in each mode, against a direct call in the same run,
# with a runtime that does nothing. Numbers, not assertions: compare them with the budgets
# in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
n=${1:-2000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH="$PWD/build/bench/null"
for mode in off audit enforce; do
  ACL_IPC_GUARD_MODE=$mode ACL_IPC_GUARD_LOG="$work/bench.$mode.%p.json" ACL_IPC_GUARD_LEDGER="$work/ledger" \
    LD_PRELOAD="$PWD/build/lib/libacl_ipc_guard.so" build/bench/bench "$n"
  echo
done
