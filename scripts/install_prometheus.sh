#!/usr/bin/env bash
# Prometheus and promtool (Debian's `prometheus` package) for the scaling-signal tests (idempotent).
# Only the binaries are used: the tests start their own Prometheus on loopback with a temp config; the
# package's system service is not started (policy-rc.d) or is left alone.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null
prometheus --version 2>&1 | head -1
