"""Parsed YAML files kept by the SHA-256 of their bytes, so a recipe or hardware profile
read before needs no YAML parser.

Importing ruamel.yaml and parsing the recipe and the target's profile is most of what
loading costs a ``compile`` or ``show-config`` (issue 26). :func:`kept` and :func:`keep`
are :func:`aimc.core.loader.read_document`'s cache, in ``aimc/core/__pycache__/yaml/``: a
:class:`~aimc.core.filecache.FileCache` (checked, atomic, bounded, never an error, written
only where Python writes bytecode; the trust of aimc's own bytecode beside it; files
readable by their owner only, a file's data is the user's).

- Keyed by content: a file's name is the SHA-256 of the document's bytes and of the code
  that parses them (:data:`LOADER_MODULES`' source, :mod:`aimc.core.yaml_walk`'s and
  :mod:`aimc.core.yaml11`'s, ruamel.yaml's ``__init__`` which names its version, its C
  parser's file and the Python version), so an edited file or another parser never reads
  another's result.
- What is kept is what the loader hands on for a document it accepted (the data, the
  positions of its values and keys), as ``marshal`` writes it: every type kept as it
  was (a non-string key stays one). A document the loader refuses is never kept, so its
  diagnostics come from the loader every time.
- At most :data:`MAX_FILES` files are kept (the shipped catalog is 30), and at most
  :data:`MAX_WRITES` written per process, so a command that reads a large catalog
  (``list``) fills the cache over a few runs instead of replacing all of it on every run.
"""

from __future__ import annotations

import functools
import importlib.util
import marshal
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aimc.core import digest
from aimc.core.filecache import FileCache, code_digest

__all__ = ["LOADER_MODULES", "MAX_FILES", "MAX_WRITES", "Parsed", "cache", "keep", "kept"]

#: The modules whose code turns a document's bytes into what is kept.
LOADER_MODULES = (
    "aimc.core.loader",
    "aimc.core.yaml_fast",
    "aimc.core.yaml_limits",
    "aimc.core.diagnostics",
    __name__,
)
#: Code that decides whether a document is refused (or, :mod:`aimc.core.yaml11`, how a
#: plain decimal reads), hashed from its file without importing it (the loader imports it
#: only to parse).
_PARSING_MODULES = ("ruamel.yaml", "aimc.core.yaml_walk", "aimc.core.yaml11")
#: Most files kept, and most files one process writes.
MAX_FILES = 256
MAX_WRITES = 32
_HEADER = b"aimc-yaml 1\n"
_SUFFIX = ".yml.marshal"
_written = [0]

#: What the loader hands on: the data, the value positions and the key positions.
Parsed = tuple[Any, Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]]


def cache() -> FileCache:
    """The folder of parsed files, beside aimc's bytecode of this package."""
    folder = Path(__file__).parent / "__pycache__" / "yaml"
    return FileCache(folder, _HEADER, _SUFFIX, 0o600, MAX_FILES)


@functools.cache
def _code() -> bytes | None:
    """The digest of the parsing code (None when it cannot be told: nothing is kept)."""
    try:
        parser = importlib.util.find_spec("_ruamel_yaml")
        where = parser.origin if parser is not None and parser.origin else ""
        size = os.stat(where).st_size if where else 0
        return code_digest(LOADER_MODULES, _PARSING_MODULES) + f"{where}|{size}".encode()
    except (LookupError, OSError, ValueError, ImportError):
        return None


def _key(sha256: str) -> str | None:
    code = _code()
    if code is None:
        return None
    return digest.sha256(code + b"|" + sha256.encode()).hexdigest()


def kept(sha256: str) -> Parsed | None:
    """What was kept for the document whose bytes have this hex ``sha256``, or None."""
    key = _key(sha256)
    body = cache().read(key) if key is not None else None
    if body is None:
        return None
    try:
        found: Any = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(found, tuple)
        or len(found) != 3
        or not isinstance(found[1], dict)
        or not isinstance(found[2], dict)
    ):
        return None
    parsed: Parsed = found
    return parsed


def keep(sha256: str, parsed: Parsed) -> None:
    """Keep ``parsed`` for the document whose bytes have this hex ``sha256`` (nothing past
    :data:`MAX_WRITES` in this process, or when ``marshal`` cannot write it)."""
    key = _key(sha256)
    if key is None or _written[0] >= MAX_WRITES:
        return
    try:
        body = marshal.dumps((parsed[0], dict(parsed[1]), dict(parsed[2])))
    except ValueError:
        return
    _written[0] += 1
    cache().write(key, body)
