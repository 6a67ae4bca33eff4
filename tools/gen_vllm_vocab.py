"""Regenerate ``aimc/backends/vllm.json``, the pinned vLLM's flags and env vars.

Run with the interpreter of an environment where the pinned vLLM is installed (here the
CPU build: scripts/setup-vllm.sh)::

    .venv-vllm/bin/python tools/gen_vllm_vocab.py cpu > aimc/backends/vllm.json

The extraction itself is ``aimc/backends/vllm_vocabulary.py`` (also what ``aim-engine validate
--backend-from-env`` runs).
"""

from __future__ import annotations

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(
        str(Path(__file__).resolve().parent.parent / "aimc" / "backends" / "vllm_vocabulary.py"),
        run_name="__main__",
    )
