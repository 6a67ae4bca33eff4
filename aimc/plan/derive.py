"""A recipe for any local Hugging Face model folder, derived from its ``config.json``.

Takes a folder (``config.json`` + safetensors, as :func:`aimc.app.pipeline.is_model_folder`
tells them from a model id) and a hardware profile; hands on a
:class:`~aimc.check.catalog.Recipe` that serves the folder as the weights for its own dtype on
that hardware, with every GPU count that divides its attention heads. Nothing is written:
the recipe lives in memory, and ``show-config`` says where it came from.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import whole_line
from aimc.core.digest import sha256
from aimc.core.errors import ConfigError
from aimc.core.loader import Document
from aimc.core.safety import shorten
from aimc.domain.recipe import Hardware, Recipe, RecipeRoot
from aimc.modelcache.cache_files import open_regular

__all__ = ["derive_recipe"]

_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
#: config.json ``quant_method`` -> precision (vLLM reads the method from config.json).
#: ``fbgemm_fp8``: Meta's FP8 checkpoints (e.g. Llama-3.1-405B-Instruct-FP8).
_QUANT = {"fp8": "fp8", "fbgemm_fp8": "fp8", "mxfp4": "mxfp4", "awq": "int4", "gptq": "int4"}
#: compressed-tensors (llm-compressor's checkpoints: W8A8, FP8, W4A16) by the weights'
#: (num_bits, type) in every config group.
_COMPRESSED = {(8, "float"): "fp8", (8, "int"): "int8", (4, "int"): "int4"}
_ELEMENT_BYTES = {
    "F64": 8,
    "F32": 4,
    "BF16": 2,
    "F16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


#: Largest config.json read, and the largest model dimension believed.
_MAX_CONFIG = 2**20
_MAX_DIMENSION = 10**13


def _count(value: Any, key: str, where: Path) -> int:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(key)
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: {key} is not a whole number") from None


def _parameters(folder: Path, root: Path | None = None) -> int | None:
    """Element count of every tensor in the folder's safetensors headers; None when one
    cannot be read. Only regular files are read (a FIFO named ``*.safetensors`` would hang
    the command), and with ``root`` (a cached snapshot's repository folder) only those
    inside it: a link out of the cache is never read."""

    total = 0
    files = sorted(folder.glob("*.safetensors"))
    for file in files:
        try:
            with open_regular(file, root) as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(min(length, 100 * 2**20)))
            for key, tensor in header.items():
                if key == "__metadata__":
                    continue
                count = 1
                for dim in tensor.get("shape", []):
                    count *= max(int(dim), 0)
                total += count
        except (OSError, ValueError, TypeError, AttributeError, struct.error, RecursionError):
            return None
    return total if 0 < total < 10**15 else None


def _precision(config: dict[str, Any], config_path: Path) -> str:
    """The weights' precision: their quantization method, else their dtype."""
    qc = config.get("quantization_config") or {}
    if not isinstance(qc, dict):
        raise ConfigError(f"{config_path}: quantization_config is not a JSON object")
    quant = qc.get("quant_method")
    if not quant:
        dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
        return _DTYPES.get(dtype, "bf16")
    if quant == "compressed-tensors":
        groups = qc.get("config_groups")
        kinds: set[tuple[Any, Any]] = set()
        for group in groups.values() if isinstance(groups, dict) else ():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                bits, kind = weights.get("num_bits"), weights.get("type")
                ok = isinstance(bits, int) and not isinstance(bits, bool)
                kinds.add((bits if ok else str(bits)[:20], str(kind)[:20]))
        if len(kinds) == 1 and (found := next(iter(kinds))) in _COMPRESSED:
            return _COMPRESSED[found]
        what = ", ".join(sorted(f"{b}-bit {t}" for b, t in kinds)) or "no config_groups"
        raise ConfigError(
            f"{config_path}: compressed-tensors weights ({shorten(whole_line(what), 80)}) are "
            "not a precision aimc serves",
            hint="aimc serves compressed-tensors checkpoints whose weights are all 8-bit "
            "float (fp8), 8-bit int (int8) or 4-bit int (int4)",
        )
    if str(quant) not in _QUANT:
        shown = shorten(whole_line(str(quant)), 40)
        raise ConfigError(
            f"{config_path}: quantization {shown!r} is not supported by aimc",
            hint="supported: " + ", ".join([*_QUANT, "compressed-tensors"]),
        )
    return _QUANT[str(quant)]


def derive_recipe(folder: Path, hardware: Hardware, repo: str | None = None) -> Recipe:
    """A recipe serving ``folder`` on ``hardware``; with ``repo``, ``folder`` is that
    repository's snapshot in the model cache and the recipe serves the repository (at the
    snapshot's commit, by its id) instead of the folder.

    Raises:
        ConfigError: ``config.json`` is missing or lacks what serving needs.
    """
    # A cached snapshot's files are read only inside its repository folder (models--x).
    root = Path(os.path.abspath(folder.expanduser())).parent.parent if repo else None
    folder = folder.expanduser().resolve()
    config_path = folder / "config.json"
    try:
        str(folder).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{whole_line(str(folder))}: the path is not UTF-8 text") from None
    raw, config = _read_config(config_path, root)
    text = config.get("text_config", config)
    facts = _facts(text, config_path)
    params = _parameters(folder, root)
    hidden = facts["hidden_size"]
    facts["parameters"] = params or 12 * facts["layers"] * hidden * hidden
    precision = _precision(config, config_path)
    data = _recipe_data(folder, config_path, config, facts, precision, hardware, repo)
    doc = Document(path=str(config_path), data=data, sha256=sha256(raw).hexdigest())
    return Recipe(doc, RecipeRoot(folder, "derived"))


def _read_config(config_path: Path, root: Path | None) -> tuple[bytes, dict[str, Any]]:
    """``config.json``'s bytes and its JSON object (read only inside ``root`` when given).

    Raises:
        ConfigError: It cannot be read, is too large or is not a transformers config.
    """
    try:
        with open_regular(config_path, root) as f:
            raw = f.read(_MAX_CONFIG + 1)
        if len(raw) > _MAX_CONFIG:
            raise ConfigError(f"{config_path} is larger than {_MAX_CONFIG // 2**20} MiB")
        config = json.loads(raw)
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"cannot read {config_path}: {shorten(str(exc))}") from None
    if not isinstance(config, dict) or not isinstance(config.get("text_config", {}), dict):
        raise ConfigError(f"{config_path} is not a transformers config (a JSON object)")
    return raw, config


def _facts(text: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """The model facts a recipe gives (layers, heads, dimensions, context, vocabulary) from
    a transformers config (its ``text_config`` when it has one), each within bounds.

    Raises:
        ConfigError: A dimension is missing, not a whole number or out of bounds.
    """
    try:
        heads = int(text["num_attention_heads"])
        hidden = int(text["hidden_size"])
        facts: dict[str, Any] = {
            "layers": int(text["num_hidden_layers"]),
            "hidden_size": hidden,
            "attention_heads": heads,
            "kv_heads": int(text.get("num_key_value_heads") or heads),
            "head_dim": int(text.get("head_dim") or hidden // heads),
            "max_context": int(text.get("max_position_embeddings") or 2048),
        }
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise ConfigError(
            f"{config_path} lacks a model dimension ({shorten(str(exc))})",
            hint="aimc serves decoder models with a transformers config.json",
        ) from None
    if text.get("vocab_size"):
        facts["vocab_size"] = _count(text["vocab_size"], "vocab_size", config_path)
    for key, value in facts.items():
        if not 0 < value <= _MAX_DIMENSION:
            raise ConfigError(
                f"{config_path}: {key} is {value}; expected 1 to {_MAX_DIMENSION}",
                hint="aimc serves decoder models with a transformers config.json",
            )
    return facts


def _recipe_data(
    folder: Path,
    config_path: Path,
    config: dict[str, Any],
    facts: dict[str, Any],
    precision: str,
    hardware: Hardware,
    repo: str | None,
) -> dict[str, Any]:
    """The recipe document: ``folder`` (or ``repo`` at the snapshot's commit) as the
    weights of ``precision``, on every GPU count of ``hardware`` that divides the heads."""
    heads, kv_heads = facts["attention_heads"], facts["kv_heads"]
    counts = [
        g
        for g in (1, 2, 4, 8)
        if g <= hardware.data["gpus_per_node"]
        and heads % g == 0
        and (kv_heads % g == 0 or g % kv_heads == 0)
    ]
    org = "local"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-.") or "model"
    weights: dict[str, Any] = {"path": str(folder)}
    served = folder.name
    if repo is not None:
        org, name = repo.split("/", 1)
        weights = {"repo": repo, "revision": folder.name}
        served = repo
    return {
        "apiVersion": "aimc/v1",
        "kind": "Recipe",
        "model": {
            "id": f"{org}/{name}",
            "description": f"derived from {config_path}",
            "architecture": str((config.get("architectures") or ["unknown"])[0]),
            "facts": facts,
        },
        "weights": {precision: weights},
        # The folder's name (or the repository id) is what clients ask /v1/models for.
        "defaults": {"backend": "vllm", "precision": precision, "served_model_name": served},
        "configurations": [
            {
                "id": "derived",
                "hardware": [hardware.name],
                "precision": [precision],
                "gpus": counts or [1],
            }
        ],
    }
