#!/usr/bin/env bash
# The whole test suite: lint, types, tests (with the real vLLM server on the CPU, the tests
# marked "server"; `-m "not server"` skips them for a quick run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-vllm.sh
.venv/bin/ruff check aimc aim_launcher tests examples tools bench
.venv/bin/ruff format --check aimc aim_launcher tests examples tools bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
