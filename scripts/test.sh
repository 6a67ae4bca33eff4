#!/usr/bin/env bash
# The whole test suite: lint, types, the import layers (pyproject.toml), tests (with the real vLLM server on the CPU and in a
# container of a real Docker engine, the tests marked "server"; `-m "not server"` skips
# them, and then neither vLLM nor the image is installed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
case " $* " in
  *"not server"*) ./scripts/setup-docker.sh --packages ;;
  *) ./scripts/setup-vllm.sh && ./scripts/setup-docker.sh ;;
esac
.venv/bin/ruff check aimc aim_launcher tests examples tools bench setup.py
.venv/bin/ruff format --check aimc aim_launcher tests examples tools bench setup.py
.venv/bin/mypy
layers=$(.venv/bin/lint-imports --no-cache 2>&1) || { echo "$layers"; exit 1; }
# Every core runs tests (pytest-xdist); the server test modules run on one worker, one after another
# (tests/conftest.py). `-n 0` after the other arguments runs everything in this process.
.venv/bin/python -m pytest -n auto "$@"
