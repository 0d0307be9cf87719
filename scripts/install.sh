#!/usr/bin/env bash
# Installs stratforge and everything it needs into ./.venv: the Python package with all extras
# (compiles the simulation core), and from npm the pinned Solidity compiler (solcjs) and the codex/claude
# agent CLIs the explorer can drive (package.json / package-lock.json).
#   bash scripts/install.sh          # everything to run stratforge
#   bash scripts/install.sh --test   # plus what the test-suite needs (pytest, ruff, system packages)
# Python 3.11 or 3.12: python3.11 by default, else python3.12, else python3; choose one with
# PYTHON=python3.12 (a name on PATH or a path). VENV=dir puts the environment elsewhere than .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
supported() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' >/dev/null 2>&1; }

if [ -n "${PYTHON:-}" ]; then
    # A pyenv shim on PATH only runs when its version is selected: fall back to pyenv's own copy.
    if ! supported "$PYTHON" && command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare 2>/dev/null); do
            candidate="$(pyenv root)/versions/$v/bin/$PYTHON"
            if [ -x "$candidate" ] && supported "$candidate"; then PYTHON="$candidate"; break; fi
        done
    fi
else
    PYTHON=python3
    for candidate in python3.11 python3.12; do
        if supported "$candidate"; then PYTHON="$candidate"; break; fi
    done
fi
supported "$PYTHON" || { echo "install: Python 3.11 or 3.12 is required (set PYTHON=/path/to/python3.12)"; exit 1; }
want="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

extras="all"
if [ "${1:-}" = "--test" ]; then
    extras="test"
fi

if [ -x "$VENV/bin/python" ]; then
    have="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
    if [ "$have" != "$want" ]; then
        echo "install: $VENV has Python $have, recreating it with Python $want"
        rm -rf "$VENV"
    fi
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[${extras}]"

# solc 0.8.24 (solcjs), @openai/codex and @anthropic-ai/claude-code, pinned in package.json / package-lock.json.
if command -v npm >/dev/null 2>&1; then
    if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
else
    echo "install: npm not found; Solidity strategies need Node.js and npm (apt-get install nodejs npm)" >&2
fi

if [ "$extras" = "test" ]; then
    bash scripts/install-system-deps.sh
fi
echo "install: done ($VENV ready with Python $want; activate with 'source $VENV/bin/activate')"
