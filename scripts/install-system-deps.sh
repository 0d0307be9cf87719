#!/usr/bin/env bash
# Debian packages the test-suite needs: a PostgreSQL server (storage tests start their own
# throw-away cluster) and Chromium (headless screenshot of the trader dashboard).
# Idempotent: only installs what is missing; safe to call from CI on every run.
set -euo pipefail

need=()
# PostgreSQL: any installed major version under /usr/lib/postgresql/*/bin is enough.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    need+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    need+=(chromium)
fi
if [ "${#need[@]}" -eq 0 ]; then
    echo "install-system-deps: nothing to do (postgresql and chromium present)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install-system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
