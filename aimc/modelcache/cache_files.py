"""The Hugging Face cache's layout, and its files read without leaving it.

Takes paths in the model cache (``CACHE_DIR``: ``models--org--name/{blobs,refs,snapshots}``)
and hands on what every cache module needs of them: a repository's folder name
(:func:`repo_folder_name`), what a commit hash looks like (:data:`COMMIT`), whether a path
lies inside a folder with links resolved (:func:`inside`), and reads that never follow a
link out of the cache, never open a FIFO or a device and read at most a bounded prefix
(:func:`open_regular`, :func:`read_small`). Nothing here writes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["COMMIT", "inside", "lstat_or_none", "open_regular", "read_small", "repo_folder_name"]

#: A commit hash: what a ref file may name and a snapshot folder is called (never a path).
COMMIT = re.compile(r"[0-9a-f]{40}")


def repo_folder_name(repo: str) -> str:
    """The cache folder of the model repository ``repo``: ``models--org--name``."""
    return f"models--{repo.replace('/', '--')}"


def lstat_or_none(path: Path) -> os.stat_result | None:
    """``path``'s own status (a link's, not its target's); None when it cannot be read."""
    try:
        return path.lstat()
    except OSError:
        return None


def inside(path: Path, folder: Path) -> bool:
    """``path`` (links resolved) lies inside ``folder`` (links resolved)."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        return False


def open_regular(file: Path, root: Path | None = None) -> BinaryIO:
    """``file`` opened for reading when it is a regular file (links followed) and, with
    ``root``, lies inside ``root`` (links resolved): a link out of the cache is never read,
    and a FIFO or a device is never opened (checked first, then again on the descriptor
    opened with ``O_NONBLOCK``, so one swapped in meanwhile cannot make a reader wait).

    Raises:
        OSError: ``file`` is absent, not a regular file, or outside ``root``.
    """
    if root is not None and not inside(file, root):
        raise OSError(errno.EXDEV, "links out of the cache", str(file))
    if not stat.S_ISREG(os.stat(file).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(file))
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(file))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_small(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file ``path`` (:func:`open_regular`); None when it cannot be
    read or holds more than ``limit`` bytes."""
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None
