#!/usr/bin/env bash
# The golden gate: every implementation against the golden logits; fails the build on any drift.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo xtask verify
