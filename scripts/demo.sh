#!/usr/bin/env bash
# The main job, end to end on this machine (no GPU needed): install aimc and the CPU build
# of vLLM, make a tiny model, launch it with aimc, ask it for one completion, stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-vllm.sh
work=$(mktemp -d)
trap '.venv/bin/aim-engine stop --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export AIMC_STATE_DIR="$work/state" CACHE_DIR="$work/cache" HF_HUB_OFFLINE=1
export AIM_PYTHON="$PWD/.venv-vllm/bin/python" LOG_FORMAT=text
port=${DEMO_PORT:-18000}

set -x
.venv/bin/aim-engine validate
.venv-vllm/bin/python examples/make_tiny_llama.py "$work/tiny-llama"
.venv/bin/aim-engine show-config "$work/tiny-llama" --target cpu
.venv/bin/aim-engine launch "$work/tiny-llama" --target cpu --port "$port" \
  --set env.VLLM_CPU_KVCACHE_SPACE=1 --timeout 600
.venv/bin/aim-engine status
.venv/bin/python - "$port" <<'PY'
import json, sys, urllib.request
body = {"model": "tiny-llama", "prompt": "Hello, how are you?", "max_tokens": 8,
        "temperature": 0}
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=60))
print("completion:", repr(answer["choices"][0]["text"]), answer["usage"])
PY
.venv/bin/aim-engine stop aim-tiny-llama
.venv/bin/aim-engine status
