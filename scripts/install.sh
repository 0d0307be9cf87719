#!/usr/bin/env bash
# Installs stratforge and everything it needs into ./.venv: the Python package with all extras
# (compiles the simulation core), and from npm the pinned Solidity compiler (solcjs) and the codex/claude
# agent CLIs the explorer can drive (package.json / package-lock.json).
#   bash scripts/install.sh          # everything to run stratforge
#   bash scripts/install.sh --test   # plus what the test-suite needs (pytest, ruff, system packages)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "stratforge needs Python 3.11"' \
    || { echo "install: Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }

extras="all"
if [ "${1:-}" = "--test" ]; then
    extras="test"
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"

# solc 0.8.24 (solcjs), @openai/codex and @anthropic-ai/claude-code, pinned in package.json / package-lock.json.
if command -v npm >/dev/null 2>&1; then
    if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
else
    echo "install: npm not found; Solidity strategies need Node.js and npm (apt-get install nodejs npm)" >&2
fi

if [ "$extras" = "test" ]; then
    bash scripts/install-system-deps.sh
fi
echo "install: done (.venv ready; activate with 'source .venv/bin/activate')"
