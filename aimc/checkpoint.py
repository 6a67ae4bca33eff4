"""Checkpoint sizes from safetensors headers, read from local folders or the model cache.

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

__all__ = ["cache_snapshot", "checkpoint_bytes", "local_sizes"]

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
