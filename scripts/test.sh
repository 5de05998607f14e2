#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and end-to-end tests.
# Usage: scripts/test.sh   (needs only a Rust toolchain; installs nothing else yet)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --all-targets --locked
