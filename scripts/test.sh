#!/usr/bin/env bash
# Runs every test of sluice on a fresh machine: installs what the tests need (Envoy 1.40, the
# Prometheus tools, wrk, the OpenID provider and Chromium), then the whole cargo test suite (unit,
# integration with real Envoy, Prometheus, the provider and Chromium, property tests), then
# a short run of the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-envoy.sh
# The compose test runs `docker-compose config` (the Debian package; it needs no Docker engine,
# so the engine it recommends is left out). Does nothing when it is present.
if ! command -v docker-compose >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing docker-compose" >&2
  $SUDO apt-get install -y --no-install-recommends docker-compose >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends docker-compose >/dev/null; }
fi
bash scripts/install-prometheus.sh
# The fault tests and the soak load Envoy with wrk (Debian packages wrk, hey, nghttp2-client).
bash scripts/install-bench-tools.sh
# The sign-in tests: a real OpenID provider (npm oidc-provider) and headless Chromium.
bash scripts/install-oidc-peers.sh
# The stream tests time every event to 50 ms; on two cores they run on their own, after the
# rest, so the proptests and the 800-connection ext_authz burst do not take their CPU.
# The soak (1,000 route edits with 61 streams open and wrk traffic; about half a minute here)
# likewise runs on its own, last.
stream_tests="streams::sse_"
cargo test --locked -- --skip "$stream_tests" --skip soak::
cargo test --locked --test integration "$stream_tests"
cargo test --locked --test integration soak:: -- --nocapture
# Coverage-guided fuzzing of the config loader, the PPL parser and the credential readers,
# 30 s a target (prints inputs run and coverage; a crash fails the run).
bash scripts/fuzz.sh 30
