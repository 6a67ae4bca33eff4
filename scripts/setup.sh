#!/usr/bin/env bash
# Create .venv (if missing) and install aimc with its test tools into it. Also fills
# .venv/wheelhouse with aimc's dependencies (and its build backend) as wheels, so that the
# pre-commit hook test can install aimc the way pre-commit does, without the network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
if [ ! -f .venv/wheelhouse/.complete ]; then
  .venv/bin/python -m pip download -q -d .venv/wheelhouse . "setuptools>=77" wheel
  touch .venv/wheelhouse/.complete
fi
