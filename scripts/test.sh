#!/usr/bin/env bash
# Runs every test of sluice on a fresh machine: installs what the tests need (Envoy 1.40),
# then the whole cargo test suite (unit, integration with real Envoy, property tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-envoy.sh
cargo test --locked
