#!/usr/bin/env bash
# Installs the Prometheus tools the metrics tests drive (Debian package `prometheus`:
# `promtool check metrics` and a `prometheus` server that scrapes sluice on loopback).
# Safe to run again; does nothing when both are present.
set -euo pipefail

command -v promtool >/dev/null && command -v prometheus >/dev/null && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing prometheus" >&2
# The package's post-install starts a system service where one can run; the tests start
# their own server on a free port, so a running service does no harm.
$SUDO apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
  || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends prometheus >/dev/null; }
