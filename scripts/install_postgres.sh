#!/usr/bin/env bash
# Debian's PostgreSQL server binaries, for the graph store tests (tests/pg_server.py starts a throwaway cluster
# on a loopback port and stops it by PID; the Debian service is not used). Idempotent.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_postgres.sh: PostgreSQL is missing; run as root (apt-get install postgresql)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql
