#!/usr/bin/env bash
# Installs the sign-in tests' peers: the OpenID provider and the browser driver (npm packages
# pinned by tests/oidc/package-lock.json, installed offline-capable with `npm ci`), and Debian's
# headless Chromium. Safe to run again; does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../tests/oidc"

command -v node >/dev/null || { echo "the sign-in tests need Node.js (node, npm)" >&2; exit 1; }
# Reinstall when the lock is newer than what is installed.
if [ ! -d node_modules/oidc-provider ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the OpenID provider and playwright-core (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing chromium" >&2
  $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
