#!/usr/bin/env bash
# Installs what the tests need and runs them: lint, then the test-suite (slow tests excluded;
# pass -m slow to run only those, or any other pytest arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check src tests benchmarks
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure of the suite, not a pass.
exit $status
