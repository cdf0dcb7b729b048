#!/usr/bin/env bash
# The project's test command (README): format check, clippy with warnings as errors, and
# every test of the workspace, simulator scenarios included.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
