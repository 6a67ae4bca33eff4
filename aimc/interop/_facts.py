"""Facts of a model aimc has no recipe for, from its own ``config.json`` in the model cache.

Takes a Hugging Face model cache (``CACHE_DIR``: ``models--org--name/snapshots/<commit>``)
and a model id; hands on the model's facts (layers, heads, dimensions, context from its
``config.json``; parameters from its safetensors headers, else from
``model.safetensors.index.json``'s ``metadata.total_size`` when the checkpoint is
unquantized, one dtype) and where they came from (the repository and the snapshot's
commit), or why they cannot be had. Nothing is guessed: a parameter count aimc cannot
read is a reason, not an estimate. Reads are those of :mod:`aimc.plan.derive` (regular
files inside the repository's cache folder, ``config.json`` at most 1 MiB) and the index at
most 4 MiB; nothing is downloaded. :mod:`aimc.interop._hub_facts` reads the same files
from the hub with the same rules (:func:`config_facts`, :func:`index_parameters`,
:func:`header_parameters`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aimc.core.errors import ConfigError
from aimc.core.safety import holds_secret
from aimc.modelcache.cache_files import read_small
from aimc.modelcache.checkpoint import cache_snapshot
from aimc.plan.derive import _facts, _parameters, _read_config

__all__ = [
    "INDEX",
    "MAX_CONFIG",
    "MAX_INDEX",
    "Found",
    "cached_facts",
    "config_facts",
    "header_parameters",
    "index_parameters",
    "no_parameters",
    "parsed_config",
]

#: Bytes per element of an unquantized checkpoint's dtype (config.json ``torch_dtype``).
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Largest ``config.json`` read (:mod:`aimc.plan.derive`'s bound).
MAX_CONFIG = 2**20
#: Largest ``model.safetensors.index.json`` read (a 1T-parameter model's is ~3 MiB).
MAX_INDEX = 4 * 2**20
INDEX = "model.safetensors.index.json"
#: The recipe schema's ``model.architecture``.
_ARCHITECTURE = re.compile(r"[A-Za-z0-9_]{1,200}")
#: The largest parameter count believed (as :func:`aimc.plan.derive._parameters`).
_MAX_PARAMETERS = 10**15

#: (facts, architecture, where they came from), or the reason there are none.
Found = tuple[dict[str, Any], str | None, str]


def index_parameters(raw: bytes | None, config: dict[str, Any]) -> int | None:
    """Parameters from the safetensors index ``raw``'s ``total_size`` (bytes), for an
    unquantized checkpoint of one float dtype; None otherwise (a quantized one mixes element
    sizes; an index without a whole positive ``total_size``)."""
    if config.get("quantization_config") or raw is None:
        return None
    text = config.get("text_config")
    nested = text.get("torch_dtype") if isinstance(text, dict) else None
    dtype = config.get("torch_dtype") or config.get("dtype") or nested
    size = _DTYPE_BYTES.get(str(dtype))
    if size is None:
        return None
    try:
        total = json.loads(raw)["metadata"]["total_size"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        return None
    count = total // size
    return count if 0 < count < _MAX_PARAMETERS else None


def header_parameters(header: Any) -> int:
    """The element count of every tensor of one safetensors header (parsed JSON), as
    :func:`aimc.plan.derive._parameters` counts a cached file's.

    Raises:
        ValueError: The header is not a safetensors header (a shape that is not a list of
            whole numbers, a count past any model's).
    """
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    total = 0
    for key, tensor in header.items():
        if key == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list):
            raise ValueError(f"tensor {key[:60]!r} has no shape")
        count = 1
        for dim in shape:
            if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < _MAX_PARAMETERS:
                raise ValueError(f"tensor {key[:60]!r} has a shape of no whole numbers")
            count *= dim
        total += count
        if total >= _MAX_PARAMETERS:
            raise ValueError("more parameters than any model has")
    return total


def parsed_config(raw: bytes, where: str) -> dict[str, Any] | str:
    """``config.json``'s bytes as a transformers config (a JSON object, its ``text_config``
    one too); the reason when they are not (as :func:`aimc.plan.derive._read_config`)."""
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return f"{where} is not JSON ({str(exc)[:80]})"
    if not isinstance(config, dict) or not isinstance(config.get("text_config", {}), dict):
        return f"{where} is not a transformers config (a JSON object)"
    return config


def config_facts(config: dict[str, Any], where: str) -> tuple[dict[str, Any], str | None] | str:
    """The facts of a transformers ``config`` but its parameter count (its ``text_config``
    when it has one) and its architecture (none when it is not a class name, or holds a
    token); the reason when it lacks one (never derive's defaults: no context is a
    reason)."""
    text = config.get("text_config", config)
    try:
        facts = _facts(text, Path("config.json"))
    except ConfigError as exc:
        return f"{where}: {exc.message}"
    if not text.get("max_position_embeddings"):  # derive's 2048 would be a guess
        return f"{where} gives no max_position_embeddings (the model's context)"
    architectures = config.get("architectures")
    architecture = None
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        name = architectures[0]
        # A hub echoing the caller's token (or any token-shaped word) is never written.
        architecture = name if _ARCHITECTURE.fullmatch(name) and not holds_secret(name) else None
    return facts, architecture


def no_parameters(where: str) -> str:
    """The reason of a model whose parameter count cannot be read."""
    return (
        f"{where} gives no parameter count (no readable safetensors headers, and no "
        f"{INDEX} total_size of an unquantized checkpoint)"
    )


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
    except ConfigError as exc:
        return f"{where}: {exc.message}"
    found = config_facts(config, where)
    if isinstance(found, str):
        return found
    facts, architecture = found
    parameters = _parameters(folder, root) or index_parameters(
        read_small(folder / INDEX, MAX_INDEX), config
    )
    if parameters is None:
        return no_parameters(where)
    facts["parameters"] = parameters
    return facts, architecture, where
