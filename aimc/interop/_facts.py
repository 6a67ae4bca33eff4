"""Facts of a model aimc has no recipe for, from its own ``config.json`` in the model cache.

Takes a Hugging Face model cache (``CACHE_DIR``: ``models--org--name/snapshots/<commit>``)
and a model id; hands on the model's facts (layers, heads, dimensions, context from its
``config.json``; parameters from its safetensors headers, else from
``model.safetensors.index.json``'s ``metadata.total_size`` when the checkpoint is
unquantized, one dtype) and where they came from (the repository and the snapshot's
commit), or why they cannot be had. Nothing is guessed: a parameter count aimc cannot
read is a reason, not an estimate. Reads are those of :mod:`aimc.plan.derive` (regular
files inside the repository's cache folder, ``config.json`` at most 1 MiB) and the index at
most 4 MiB; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aimc.core.errors import ConfigError
from aimc.modelcache.cache_files import read_small
from aimc.modelcache.checkpoint import cache_snapshot
from aimc.plan.derive import _facts, _parameters, _read_config

__all__ = ["Found", "cached_facts"]

#: Bytes per element of an unquantized checkpoint's dtype (config.json ``torch_dtype``).
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Largest ``model.safetensors.index.json`` read (a 1T-parameter model's is ~3 MiB).
_MAX_INDEX = 4 * 2**20
_INDEX = "model.safetensors.index.json"
#: The recipe schema's ``model.architecture``.
_ARCHITECTURE = re.compile(r"[A-Za-z0-9_]{1,200}")

#: (facts, architecture, where they came from), or the reason there are none.
Found = tuple[dict[str, Any], str | None, str]


def _total_size(folder: Path, config: dict[str, Any]) -> int | None:
    """Parameters from the safetensors index's ``total_size`` (bytes), for an unquantized
    checkpoint of one float dtype; None otherwise (a quantized one mixes element sizes)."""
    if config.get("quantization_config"):
        return None
    text = config.get("text_config")
    nested = text.get("torch_dtype") if isinstance(text, dict) else None
    dtype = config.get("torch_dtype") or config.get("dtype") or nested
    size = _DTYPE_BYTES.get(str(dtype))
    raw = read_small(folder / _INDEX, _MAX_INDEX)
    if size is None or raw is None:
        return None
    try:
        total = json.loads(raw)["metadata"]["total_size"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        return None
    count = total // size
    return count if 0 < count < 10**15 else None


def cached_facts(cache_dir: Path, repo: str) -> Found | str | None:
    """The facts of ``repo`` from its snapshot (``main``) in the model cache ``cache_dir``;
    the reason (a string) when it is cached but its facts cannot be read; None when it is
    not cached."""
    folder = cache_snapshot(cache_dir, repo)
    if folder is None or not (folder / "config.json").exists():
        return None
    root = folder.parent.parent  # only files inside the repository's cache folder are read
    where = f"config.json of {repo} at revision {folder.name} (model cache)"
    try:
        _raw, config = _read_config(folder / "config.json", root)
        text = config.get("text_config", config)
        facts = _facts(text, folder / "config.json")
    except ConfigError as exc:
        return f"{where}: {exc.message}"
    if not text.get("max_position_embeddings"):  # derive's 2048 would be a guess
        return f"{where} gives no max_position_embeddings (the model's context)"
    parameters = _parameters(folder, root) or _total_size(folder, config)
    if parameters is None:
        return (
            f"{where} gives no parameter count (no readable safetensors headers, and no "
            f"{_INDEX} total_size of an unquantized checkpoint)"
        )
    facts["parameters"] = parameters
    architectures = config.get("architectures")
    architecture = None
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = architectures[0] if _ARCHITECTURE.fullmatch(architectures[0]) else None
    return facts, architecture, where
