"""Backend facts: each engine's flag vocabulary and environment variables.

Takes nothing; hands on :class:`Vocabulary` objects read from ``aimc/backends/*.json``.
The vLLM file is generated from the pinned vLLM release (``tools/gen_vllm_vocab.py``); the
SGLang one from the server_args.py of its pinned release. Lint uses them to reject unknown
flags and env vars with "did you mean"; the resolver uses :data:`MANAGED` to know which
flags it derives itself.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aimc import _resources

__all__ = ["BACKENDS", "MANAGED", "Vocabulary", "vocabulary"]

BACKENDS = ("vllm", "sglang")

#: Flags the resolver sets from neutral recipe fields or the request; recipes must not set
#: them through ``args``. flag -> what to set instead.
MANAGED: dict[str, dict[str, str]] = {
    "vllm": {
        "model": "the recipe's weights",
        "tensor-parallel-size": "the configuration's gpus",
        "max-model-len": "context_length",
        "gpu-memory-utilization": "memory_utilization",
        "dtype": "the weights' precision",
        "quantization": "the weights' quantization",
        "host": "the launch options",
        "port": "--port",
        "served-model-name": "the request",
        "download-dir": "CACHE_DIR",
        "config": "nothing (aimc writes the config file)",
        "trust-remote-code": "model.trust_remote_code",
    },
    "sglang": {
        "model-path": "the recipe's weights",
        "tp-size": "the configuration's gpus",
        "tensor-parallel-size": "the configuration's gpus",
        "context-length": "context_length",
        "mem-fraction-static": "memory_utilization",
        "dtype": "the weights' precision",
        "quantization": "the weights' quantization",
        "host": "the launch options",
        "port": "--port",
        "served-model-name": "the request",
        "download-dir": "CACHE_DIR",
        "config": "nothing (aimc writes the config file)",
        "trust-remote-code": "model.trust_remote_code",
    },
}


@dataclass(frozen=True)
class Vocabulary:
    """The command-line flags and environment variables of one backend release.

    Attributes:
        backend: ``vllm`` or ``sglang``.
        version: The release the facts were read from.
        flags: flag name (no dashes) -> {value, multiple, choices?, type?, negatable?}.
        env: Names of the backend's own environment variables.
        env_prefix: Prefix that marks a variable as the backend's own (``VLLM_``).
    """

    backend: str
    version: str
    flags: dict[str, dict[str, Any]]
    env: frozenset[str]
    env_prefix: str


@functools.cache
def vocabulary(backend: str) -> Vocabulary:
    """The vocabulary of ``backend`` (one of :data:`BACKENDS`)."""
    data = json.loads(_resources.read_text("backends", f"{backend}.json"))
    return Vocabulary(
        backend=backend,
        version=str(data["version"]),
        flags=dict(data["flags"]),
        env=frozenset(data["env"]),
        env_prefix=f"{backend.upper()}_",
    )
