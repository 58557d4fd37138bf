#!/usr/bin/env bash
# sluice's main job on a fresh machine: install Envoy 1.40, build sluice, validate the example
# config, render it to an Envoy bootstrap and have Envoy 1.40 accept it.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${1:-examples/config.yaml}"
OUT="${SLUICE_OUT:-target/sluice-render.yaml}"

bash scripts/install-envoy.sh
cargo build --locked --release
./target/release/sluice validate -c "$CONFIG"
./target/release/sluice render -c "$CONFIG" > "$OUT"
.venv/bin/envoy --mode validate -c "$OUT" --log-level warn
echo "rendered $CONFIG to $OUT; Envoy 1.40 accepts it"
