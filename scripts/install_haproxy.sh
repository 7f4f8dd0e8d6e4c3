#!/usr/bin/env bash
# Debian's HAProxy (2.6 in bookworm) for `sie-tools router` and its tests (tests/test_router.py, the chart's
# rendered router configuration in tests/test_chart.py). Idempotent. The package's own service is not wanted:
# the tests start haproxy themselves on loopback ports, so a started system haproxy is stopped again.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
  $SUDO systemctl stop haproxy && $SUDO systemctl disable haproxy >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  $SUDO service haproxy stop >/dev/null 2>&1 || true
fi
/usr/sbin/haproxy -v | head -1
