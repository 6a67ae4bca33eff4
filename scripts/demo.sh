#!/usr/bin/env bash
# The main job, end to end: install, check the recipe catalog, compile a recipe for a GPU
# target and check the artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
set -x
aim-engine validate
aim-engine validate examples/recipes
aim-engine list models
aim-engine list configs Qwen/Qwen3-32B
aim-engine show-config Qwen/Qwen3-32B --gpu-count 8 --target mi300x --explain
out=$(mktemp -d)/build
aim-engine compile Qwen/Qwen3-32B 8 --target mi300x -o "$out"
cat "$out/launch.sh"
aim-engine compile Qwen/Qwen3-32B 8 --target mi300x -o "$out" --check
