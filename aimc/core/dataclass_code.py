"""The code Python's ``@dataclass`` generates for aimc's own classes, compiled once.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__`` (frozen ones also
``__setattr__``, ``__delattr__`` and ``__hash__``) as source text and compiles that text
on every import: for the ~40 classes a ``compile`` imports, about 20 ms of its start, the
same code every run (issue 26). :func:`install` lets ``dataclasses`` run that text through
:func:`_exec`, which takes the code of a text compiled before from
``aimc/core/__pycache__/dataclasses/`` (a :class:`~aimc.core.filecache.FileCache`: checked,
atomic, bounded, never an error, written only where Python writes bytecode; the trust of
aimc's own bytecode beside it) and compiles the others as ``exec`` would.

- Only aimc's classes: text whose class is outside the ``aimc`` package is run as before.
- Keyed by the whole text: a text runs the code compiled from exactly that text, with no
  flags inherited, as ``exec`` compiles it for ``dataclasses``; one file per Python
  (``sys.version`` in its name's key), read once per process.
- Written when the process exits, only when it compiled a text the file did not hold; at
  most :data:`MAX_TEXTS` texts are kept (new ones past that are compiled every run).
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import hashlib
import marshal
import sys
import types
from pathlib import Path
from typing import Any

from aimc.core.filecache import FileCache

__all__ = ["MAX_TEXTS", "cache", "install"]

#: Most generated texts kept (aimc defines about 60 dataclasses, 6 texts at most each;
#: the file stays under the folder's 1 MiB).
MAX_TEXTS = 600
_HEADER = b"aimc-dataclass-code 1\n"
_KEY = hashlib.sha256(f"{sys.version}|{sys.implementation.cache_tag}".encode()).hexdigest()
#: text -> code: what the file holds, then what this process compiled too.
_codes: dict[str, types.CodeType] = {}
_state = {"installed": False, "read": False, "new": False}


def cache() -> FileCache:
    """The folder of the generated code, beside aimc's bytecode of this package."""
    return FileCache(Path(__file__).parent / "__pycache__" / "dataclasses", _HEADER, ".code", 0o644)


def install() -> None:
    """From now on, compile the methods of aimc's dataclasses once (idempotent)."""
    if not _state["installed"] and getattr(dataclasses, "exec", builtins.exec) is builtins.exec:
        dataclasses.exec = _exec  # type: ignore[attr-defined]
        atexit.register(_save)
        _state["installed"] = True


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    """``exec`` as ``dataclasses`` calls it, with the code of aimc's texts kept."""
    module = globals.get("__name__", "") if isinstance(globals, dict) else ""
    if isinstance(source, str) and (module == "aimc" or module.startswith("aimc.")):
        source = _code(source)
    builtins.exec(source, globals, locals)


def _code(text: str) -> types.CodeType:
    if not _state["read"]:
        _state["read"] = True
        _codes.update(_load())
    code = _codes.get(text)
    if code is None:
        code = compile(text, "<string>", "exec", dont_inherit=True)
        if len(_codes) < MAX_TEXTS:
            _codes[text] = code
            _state["new"] = True
    return code


def _load() -> dict[str, types.CodeType]:
    body = cache().read(_KEY)
    if body is None:
        return {}
    try:
        found: Any = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        text: code
        for text, code in found.items()
        if isinstance(text, str) and isinstance(code, types.CodeType)
    }


def _save() -> None:
    if _state["new"]:
        _state["new"] = False
        cache().write(_KEY, marshal.dumps(_codes))
