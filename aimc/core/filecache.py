"""Files kept by key beside aimc's own bytecode: checked, atomic, bounded, never an error.

What :mod:`aimc.emit.template_cache` (Jinja's compiled templates) and
:mod:`aimc.emit.rendered` (rendered artifacts) keep between runs, each in its own folder under
``aimc/emit/__pycache__/``, with the trust of aimc's bytecode there: whoever can write
that folder can already change aimc's code. A :class:`FileCache` is one such folder:

- Keyed by the caller: a file's name is the key (a hex digest of everything its body is
  made from) and the folder's suffix.
- Checked: a file holds the folder's header, the SHA-256 of its body and the body; a file
  that is short, altered, too big or of another kind reads as missing.
- Written only where Python writes bytecode (not under ``PYTHONDONTWRITEBYTECODE``),
  atomically (a temporary file, then a rename) and bounded: at most ``max_files``
  (:data:`MAX_FILES` unless the folder says) files of at most :data:`MAX_BYTES` each;
  past that the oldest go.
- Never an error: a file that cannot be read is missing, one that cannot be written is
  not written.

:func:`code_digest` is the part of a key that names the code a body was made by.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aimc.core.digest import sha256

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["MAX_BYTES", "MAX_FILES", "FileCache", "code_digest"]

#: Most files a folder keeps (unless it says), and the biggest one read or written.
MAX_FILES = 64
MAX_BYTES = 1 << 20
_DIGEST = 32


class FileCache:
    """The files of ``folder`` (made on first write) named ``KEY + suffix``, each starting
    with ``header``; written with permissions ``mode``, at most ``max_files`` kept."""

    def __init__(
        self, folder: Path, header: bytes, suffix: str, mode: int, max_files: int = MAX_FILES
    ) -> None:
        self.folder = folder
        self.header = header
        self.suffix = suffix
        self.mode = mode
        self.max_files = max_files

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.folder / (key + self.suffix)

    def read(self, key: str) -> bytes | None:
        """The body kept for ``key``, or None (no file, or one that fails a check)."""
        try:
            with open(self.path(key), "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except (OSError, ValueError):
            return None
        start = len(self.header) + _DIGEST
        if len(data) > MAX_BYTES or not data.startswith(self.header) or len(data) <= start:
            return None
        body = data[start:]
        if sha256(body).digest() != data[len(self.header) : start]:
            return None
        return body

    def write(self, key: str, body: bytes) -> None:
        """Keep ``body`` for ``key``; nothing when Python writes no bytecode, the file
        would be too big, or the folder cannot be written."""
        data = self.header + sha256(body).digest() + body
        if sys.dont_write_bytecode or len(data) > MAX_BYTES:
            return
        try:
            self.folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            self._replace(self.path(key), data)
            self._bound()
        except (OSError, ValueError):
            return  # a cache: making the body again next time is the fallback

    def _replace(self, file: Path, data: bytes) -> None:
        import tempfile  # deferred: a cache is written on a miss only, read on every run

        fd, temp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=self.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(temp, self.mode)
            os.replace(temp, file)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _bound(self) -> None:
        """Remove the oldest files (and stale temporary ones) past ``max_files``."""
        files = [p for p in self.folder.iterdir() if p.name.endswith(self.suffix)]
        if len(files) <= self.max_files:
            return
        # newest first, the temporary files of writers that died last
        files.sort(key=lambda p: (not p.name.startswith(".tmp-"), p.stat().st_mtime), reverse=True)
        for stale in files[self.max_files :]:
            stale.unlink(missing_ok=True)


def code_digest(modules: Iterable[str] = (), packages: Iterable[str] = ()) -> bytes:
    """The SHA-256 of the Python version, the source of each loaded module of ``modules``
    (its file's bytes) and the file of each package or module of ``packages``, found without
    importing it (a package's ``__init__``, where a library names its version).

    Raises:
        LookupError: A module is not loaded, or a package not found.
        OSError: A file cannot be read.
    """
    digest = sha256(sys.version.encode())
    for name in modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file is None:
            raise LookupError(name)
        _add(digest, name, file)
    for name in packages:
        module = sys.modules.get(name)
        spec = module.__spec__ if module is not None else importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise LookupError(name)
        _add(digest, name, spec.origin)
    return digest.digest()


def _add(digest: _Hash, name: str, file: str) -> None:
    with open(file, "rb") as f:
        body = f.read()
    for part in (name.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
