#!/usr/bin/env bash
# The main job, end to end: install, check the recipe catalog, list what it serves.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
set -x
aim-engine validate
aim-engine validate examples/recipes
aim-engine list models
aim-engine list configs Qwen/Qwen3-32B
