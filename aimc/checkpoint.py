"""The model cache and checkpoints: sizes from safetensors headers, cache preparation.

Takes a recipe's weight sources and the Hugging Face cache folder (``CACHE_DIR``); hands on
{source: bytes of weights} for the checkpoints present locally. Only the JSON header at the
start of each ``*.safetensors`` file is read (8-byte length + header), never the tensors,
and nothing is downloaded.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["cache_snapshot", "checkpoint_bytes", "local_sizes", "prepare_cache"]

_MAX_HEADER = 100 * 2**20


def _tensor_bytes(file: Path) -> int:
    with file.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{file}: header of {length} bytes")
        header = json.loads(f.read(length))
    return sum(
        int(v["data_offsets"][1]) - int(v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__"
    )


def checkpoint_bytes(folder: Path) -> int | None:
    """Total tensor bytes of the ``*.safetensors`` files in ``folder``; None if it has none
    or one cannot be read."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        return sum(_tensor_bytes(f) for f in files)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def cache_snapshot(cache_dir: Path, repo: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of ``repo`` in a Hugging Face cache (``models--org--name``)."""
    base = cache_dir / f"models--{repo.replace('/', '--')}"
    ref = base / "refs" / (revision or "main")
    if ref.is_file():
        snapshot = base / "snapshots" / ref.read_text().strip()
        return snapshot if snapshot.is_dir() else None
    if revision and (base / "snapshots" / revision).is_dir():
        return base / "snapshots" / revision
    return None


def local_sizes(sources: Iterable[tuple[str, str | None, bool]], cache_dir: Path) -> dict[str, int]:
    """{source: bytes} for (source, revision, is_local_path) checkpoints found locally."""
    sizes: dict[str, int] = {}
    for source, revision, local in sources:
        folder = Path(source) if local else cache_snapshot(cache_dir, source, revision)
        size = checkpoint_bytes(folder) if folder is not None and folder.is_dir() else None
        if size:
            sizes[source] = size
    return sizes


def prepare_cache(plan: Any, use_cache: bool, env: dict[str, str]) -> list[str]:
    """Prepare the model cache for a launch (``env`` is the server's); notes on what was done.

    With ``use_cache`` a model already in the cache starts offline (``HF_HUB_OFFLINE=1``);
    without it the snapshot is downloaded afresh first.
    """
    from aimc.build import cache_dir
    from aimc.errors import CacheError, NetworkError

    if plan.local_model:
        return []
    cache = cache_dir()
    if use_cache:
        if cache_snapshot(cache, plan.model_source, plan.model_revision) is not None:
            env["HF_HUB_OFFLINE"] = "1"
            return [f"{plan.model_source} is in {cache}: the server starts offline"]
        return [f"{plan.model_source} is not in {cache} yet: the server downloads it"]
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise CacheError(f"huggingface_hub is not importable: {exc}") from None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        snapshot_download(
            plan.model_source,
            revision=plan.model_revision,
            cache_dir=str(cache),
            force_download=True,
        )
    except PermissionError as exc:
        raise CacheError(f"cannot write the model cache {cache}: {exc.strerror}") from None
    except HfHubHTTPError as exc:
        raise NetworkError(f"download of {plan.model_source} failed: {exc}") from None
    except OSError as exc:
        raise NetworkError(f"download of {plan.model_source} failed: {exc}") from None
    return [f"downloaded {plan.model_source} afresh into {cache}"]
