#!/usr/bin/env bash
# The checks CI runs: formatting, lints, the whole test suite, and the golden verification.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace
echo "== cargo xtask verify"
cargo xtask verify
