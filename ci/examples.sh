#!/usr/bin/env bash
# The outside crate of examples/outside-kernels, built as a kernel author would build it (its own
# workspace, path dependencies), run through tkbench's gate and benches: its right softmax must pass,
# its wrong one must fail, and `bench --quick` must write a report that carries both.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=examples/outside-kernels/Cargo.toml
# The main workspace's target directory, so that the dependencies built for `cargo xtask` are reused.
export CARGO_TARGET_DIR="$PWD/target"
run() { cargo run --quiet --release --manifest-path "$manifest" -- "$@"; }

cargo fmt --manifest-path "$manifest" -- --check
cargo clippy --quiet --release --manifest-path "$manifest" -- -D warnings

echo "-- the right variant passes the gate"
run verify --op softmax --variant blocked-sum

echo "-- the wrong variant fails it"
status=0
run verify --part ops --op softmax --variant unshifted > target/tkbench-example-wrong.txt || status=$?
if [ "$status" -ne 1 ]; then
    cat target/tkbench-example-wrong.txt
    echo "error: the deliberately wrong softmax was not failed by the gate (exit $status, expected 1)" >&2
    exit 1
fi
grep -q "FAIL" target/tkbench-example-wrong.txt

echo "-- bench --quick times both beside tkbench's own"
out=target/tkbench-example-report
rm -rf "$out"
status=0
run bench --quick --out "$out" || status=$?
# The bench exits 1 because the wrong variant's rows fail; anything else is an error.
if [ "$status" -ne 1 ]; then
    echo "error: bench --quick exited $status (expected 1, for the wrong variant's rows)" >&2
    exit 1
fi
report=$(ls "$out"/*.json)
grep -q '"variant": "blocked-sum"' "$report"
grep -q '"variant": "unshifted"' "$report"
echo "examples: ok ($report)"
