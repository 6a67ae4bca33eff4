#!/usr/bin/env bash
# The whole test suite: lint, types, tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check aimc tests examples tools bench
.venv/bin/ruff format --check aimc tests examples tools bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
