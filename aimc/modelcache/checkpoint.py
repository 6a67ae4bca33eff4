"""Checkpoints on this machine: where a cached one is, and its size from safetensors headers.

Takes a recipe's weight sources and the Hugging Face cache folder (``CACHE_DIR``); hands on
{source: bytes of weights} for the checkpoints present locally, the snapshot folder of a
cached repository at a revision, and the checks that a revision is a plain name and
``CACHE_DIR`` a folder. Only the JSON header at the start of each ``*.safetensors`` file is
read (8-byte length + header), never the tensors, and nothing is downloaded
(:mod:`aimc.modelcache.download` downloads).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from aimc.core.diagnostics import whole_line
from aimc.core.errors import CacheError, ConfigError
from aimc.core.safety import shorten
from aimc.modelcache.cache_files import COMMIT, open_regular, repo_folder_name

__all__ = [
    "cache_snapshot",
    "check_cache_dir",
    "check_revision",
    "checkpoint_bytes",
    "local_sizes",
]

_MAX_HEADER = 100 * 2**20


def _tensor_bytes(file: Path, root: Path | None = None) -> int:
    with open_regular(file, root) as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{file}: header of {length} bytes")
        header = json.loads(f.read(length))
    return sum(
        int(v["data_offsets"][1]) - int(v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__"
    )


def checkpoint_bytes(folder: Path, root: Path | None = None) -> int | None:
    """Total tensor bytes of the ``*.safetensors`` files in ``folder``; None if it has none
    or one cannot be read. Only regular files are read (never a FIFO or a device), and with
    ``root`` (a cached snapshot's repository folder) only those inside it: a link out of
    the cache is never followed (:func:`aimc.modelcache.cache_files.open_regular`)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        return sum(_tensor_bytes(f, root) for f in files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error):
        return None


#: Repository ids aimc looks up in the cache (no path separators but ``/``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,200}")
#: A revision: a branch, tag or commit name as git allows it, never a path (huggingface_hub
#: writes ``refs/<revision>``): ``/``-separated parts of letters, digits, ``_`` and ``-``
#: with single dots inside, so no part is ``.`` or ``..`` and none starts with a dot.
#: The recipe schema's ``weights.revision`` pattern is the same.
_PART = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
_REVISION = re.compile(rf"{_PART}(?:/{_PART})*")
_MAX_REVISION = 200


def check_revision(revision: str | None) -> None:
    """Refuse a revision that is not a plain branch, tag or commit name (``..``, absolute,
    control characters, too long) before it reaches ``huggingface_hub``, which would write
    the hub's answer to ``refs/<revision>`` wherever that leads.

    Raises:
        ConfigError: ``revision`` is not a branch, tag or commit name.
    """
    if revision is None or (len(revision) <= _MAX_REVISION and _REVISION.fullmatch(revision)):
        return
    raise ConfigError(
        f"revision {shorten(whole_line(revision))!r} is not a branch, tag or commit name",
        hint="a revision is a name such as main, v1.0 or refs/pr/1, or a 40-character commit "
        "hash; never a path",
    )


def cache_snapshot(cache_dir: Path, repo: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of ``repo`` in a Hugging Face cache (``models--org--name``).

    A ref that is not a commit hash (binary, a path, empty) counts as absent.
    """
    if (
        not _NAME.fullmatch(repo)
        or ".." in repo
        or (
            revision is not None
            and (len(revision) > _MAX_REVISION or not _REVISION.fullmatch(revision))
        )
    ):
        return None
    base = cache_dir / repo_folder_name(repo)
    ref = base / "refs" / (revision or "main")
    try:
        commit = ref.read_bytes()[:100].decode("ascii").strip() if ref.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None
    if commit is not None:
        snapshot = base / "snapshots" / commit
        return snapshot if COMMIT.fullmatch(commit) and snapshot.is_dir() else None
    if revision and COMMIT.fullmatch(revision) and (base / "snapshots" / revision).is_dir():
        return base / "snapshots" / revision
    return None


def check_cache_dir(folder: Path) -> None:
    """Refuse a ``CACHE_DIR`` that cannot be a cache folder (a file, unreadable).

    Raises:
        CacheError: ``folder`` exists and is not a readable folder.
    """
    try:
        if folder.exists() and not folder.is_dir():
            raise CacheError(
                f"CACHE_DIR {folder} is not a folder", hint="point CACHE_DIR at a folder"
            )
    except OSError as exc:
        raise CacheError(f"cannot read CACHE_DIR {folder}: {exc.strerror or exc}") from None


def local_sizes(sources: Iterable[tuple[str, str | None, bool]], cache_dir: Path) -> dict[str, int]:
    """{source: bytes} for (source, revision, is_local_path) checkpoints found locally."""
    sizes: dict[str, int] = {}
    for source, revision, local in sources:
        folder = Path(source) if local else cache_snapshot(cache_dir, source, revision)
        root = None if local or folder is None else folder.parent.parent
        size = checkpoint_bytes(folder, root) if folder is not None and folder.is_dir() else None
        if size:
            sizes[source] = size
    return sizes
