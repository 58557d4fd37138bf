#!/usr/bin/env bash
# Installs the load tools the benches drive (Debian packages): wrk, hey and h2load.
# Safe to run again; does nothing when they are all present.
set -euo pipefail

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v hey >/dev/null || missing+=(hey)
command -v h2load >/dev/null || missing+=(nghttp2-client)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing ${missing[*]}" >&2
$SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
