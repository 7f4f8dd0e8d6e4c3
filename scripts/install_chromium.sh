#!/usr/bin/env bash
# Debian's chromium, for the knowledge-graph HTML view test (driven by Playwright for Python with
# executable_path: Playwright's own browser download is never used). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium.sh: chromium is missing; run as root (apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
