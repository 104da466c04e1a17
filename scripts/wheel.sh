#!/usr/bin/env bash
# Builds the pip wheel (python/pyproject.toml) into BUILD/wheels/: cargo builds the shim and
# its audit module, which are copied into the package python/acl_ipc_guard/, then maturin
# builds the command and packs everything. maturin comes from PyPI into its own venv,
# BUILD/py-tools, once. cargo's target directory is BUILD/cargo, the one CMake uses.
#
#   scripts/wheel.sh [BUILD]     BUILD defaults to build/; prints the wheel's path
#
# Exit 3: maturin could not be installed (no network to PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=$(realpath -m "${1:-build}")
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="$build/cargo"
tools="$build/py-tools"
out="$build/wheels"
pkg="$src/python/acl_ipc_guard"
mkdir -p "$out"
# One build at a time per source tree: the libraries are copied into the source's package.
exec 9<"$pkg"
flock 9

if ! "$tools/bin/maturin" --version >/dev/null 2>&1; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  if ! "$tools/bin/python" -m pip install -q 'maturin>=1.5,<2' >&2; then
    rm -rf "$tools"
    echo "wheel.sh: cannot install maturin from PyPI into $tools" >&2
    exit 3
  fi
fi

# The same cargo command as CMake's (nothing is rebuilt after a CMake build).
cargo build --release --workspace --manifest-path "$src/Cargo.toml" >&2
for so in libacl_ipc_guard.so libacl_ipc_guard_audit.so; do
  install -m 0755 "$CARGO_TARGET_DIR/release/$so" "$pkg/$so"
done

rm -f "$out"/acl_ipc_guard-*.whl
# --compatibility: see README.md, "Install with pip".
(cd "$src/python" && "$tools/bin/maturin" build --release --out "$out" >&2)
ls "$out"/acl_ipc_guard-*.whl
