#!/usr/bin/env bash
# Runs the README's quickstart lines as written and checks what each prints: starts
# `scripts/run.sh` (sluice with its managed Envoy, on examples/config.yaml) in the background,
# waits for /readyz, runs every line of the ```sh block that follows `<!-- quickstart -->` in
# $QUICKSTART_DOC, matches each output against the expectation below, then stops run.sh with
# SIGTERM and checks that sluice and its Envoy both exited cleanly. CI calls it.
# Usage: bash scripts/quickstart-check.sh   (QUICKSTART_DOC=README.md once the block is there)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICKSTART_DOC="${QUICKSTART_DOC:-README.md}"
TARGET="${CARGO_TARGET_DIR:-target}"
READY_URL=http://127.0.0.1:9090/readyz
LOG="$(mktemp -t sluice-quickstart.XXXXXX)"

# What each line must print: the first key the line contains picks its pattern (grep -E,
# matched against the whole output). A quickstart line without an expectation fails, so the
# README and this check cannot drift apart silently.
EXPECT_KEYS=(
  "status.localhost"
  "Accept: text/html"
  "Accept: application/json"
  "sluice probe"
  "alice@example.com"
  "mallory@"
  "/readyz"
)
EXPECT_PATTERNS=(
  "^sluice quickstart: Envoy is serving this page$"
  "^302 http://app\.localhost:8080/\.pomerium/sign_in\?pomerium_redirect_uri=http%3A%2F%2Fapp\.localhost%3A8080%2F&pomerium_issued=[0-9]+&pomerium_expiry=[0-9]+&pomerium_signature=[A-Za-z0-9_-]+$"
  "^401$"
  "^verdict: streaming"
  "^decision: allow"
  "^decision: deny \(403\)"
  "\"ready\":true.*\"state\":\"LIVE\""
)

fail() {
  echo "quickstart-check: FAIL: $*" >&2
  echo "--- run.sh log (last 40 lines) ---" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}

command -v curl >/dev/null || fail "curl is needed: apt-get install -y curl"

# Its own session, so stopping it cannot reach this script, and its pid is sluice's parent.
setsid bash scripts/run.sh > "$LOG" 2>&1 &
run_pid=$!
cleanup() {
  if kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM "$run_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "quickstart-check: started scripts/run.sh (pid $run_pid), log in $LOG"
# The first run builds sluice in release mode: allow 30 minutes, polled every second.
ready=""
for _ in $(seq 1 1800); do
  kill -0 "$run_pid" 2>/dev/null || fail "scripts/run.sh exited before sluice was ready"
  if curl -sf "$READY_URL" >/dev/null 2>&1; then
    ready=yes
    break
  fi
  sleep 1
done
[ -n "$ready" ] || fail "sluice was not ready within 30 minutes ($READY_URL)"

sluice_pid=$(pgrep -P "$run_pid" -f "sluice serve" | head -1 || true)
[ -n "$sluice_pid" ] || fail "no sluice process under run.sh"
envoy_pid=$(pgrep -P "$sluice_pid" | head -1 || true)
[ -n "$envoy_pid" ] || fail "sluice (pid $sluice_pid) runs no Envoy"
echo "quickstart-check: ready; sluice pid $sluice_pid, its Envoy pid $envoy_pid"

# The lines of the marked block.
mapfile -t lines < <(awk '
  /<!-- quickstart -->/ { marked = 1; next }
  marked && /^```sh/ { inside = 1; next }
  inside && /^```/ { exit }
  inside && NF && !/^#/ { print }
' "$QUICKSTART_DOC")
[ "${#lines[@]}" -gt 0 ] || fail "no quickstart block (<!-- quickstart --> then \`\`\`sh) in $QUICKSTART_DOC"

failures=0
for line in "${lines[@]}"; do
  pattern=""
  for i in "${!EXPECT_KEYS[@]}"; do
    if [[ "$line" == *"${EXPECT_KEYS[$i]}"* ]]; then
      pattern="${EXPECT_PATTERNS[$i]}"
      break
    fi
  done
  # The README says target/release/sluice; a build elsewhere (CARGO_TARGET_DIR) runs that one.
  run="${line//target\/release\/sluice/$TARGET/release/sluice}"
  echo "\$ $line"
  set +e
  output=$(timeout 60 bash -c "$run" 2>&1)
  code=$?
  set -e
  printf '%s\n' "$output" | sed 's/^/  /'
  if [ -z "$pattern" ]; then
    echo "  -> FAIL: no expectation for this line in scripts/quickstart-check.sh" >&2
    failures=$((failures + 1))
  elif ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
    echo "  -> FAIL (exit $code): expected a line matching: $pattern" >&2
    failures=$((failures + 1))
  else
    echo "  -> ok"
  fi
done

# Stop as an operator would; both processes must exit cleanly (sluice drains Envoy first).
kill -TERM "$run_pid"
stopped=""
for _ in $(seq 1 300); do
  if ! kill -0 "$run_pid" 2>/dev/null; then
    stopped=yes
    break
  fi
  sleep 0.1
done
[ -n "$stopped" ] || fail "scripts/run.sh did not stop within 30 s of SIGTERM"
set +e
wait "$run_pid"
run_status=$?
set -e
trap - EXIT
[ "$run_status" -eq 0 ] || fail "scripts/run.sh exited with $run_status after SIGTERM"
for pid in "$sluice_pid" "$envoy_pid"; do
  if kill -0 "$pid" 2>/dev/null; then
    fail "process $pid is still running after run.sh stopped"
  fi
done
grep -q "Envoy stopped" "$LOG" || fail "sluice did not report that Envoy stopped"
echo "quickstart-check: run.sh exited 0; sluice ($sluice_pid) and Envoy ($envoy_pid) are gone"

[ "$failures" -eq 0 ] || fail "$failures quickstart line(s) did not print what they should"
echo "quickstart-check: all ${#lines[@]} lines printed what they should"
rm -f "$LOG"
