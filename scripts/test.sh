#!/usr/bin/env bash
# Installs what the tests need and runs them: lint, then the test-suite (slow tests excluded;
# pass -m slow to run only those, or any other pytest arguments).
# PYTHON=python3.12 runs them on Python 3.12 (see scripts/install.sh; VENV=dir for another venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export VENV
bash scripts/install.sh --test
"$VENV/bin/ruff" check src tests benchmarks
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure of the suite, not a pass.
exit $status
