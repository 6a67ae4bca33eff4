"""Jinja's compiled templates kept on disk, so a template is compiled once, not per run.

Compiling the templates (Jinja's lexer, parser and code generator) costs about a third of
what importing Jinja costs, on every ``compile``. :class:`CompiledTemplates` is Jinja's
bytecode cache hook: it keeps each template's compiled code object in
``aimc/emit/__pycache__/jinja/``, where Python keeps aimc's own bytecode, with the same
trust (whoever can write there can change aimc's code), and not at all when
Python writes no bytecode (``PYTHONDONTWRITEBYTECODE``) or the folder is not writable.

- Keyed by content: a file's name is the SHA-256 of the template's name and source, the
  Jinja and Python versions and the environment's options, so an edited template, another
  Jinja or another environment never loads another's code.
- Kept in a :class:`~aimc.core.filecache.FileCache`: checked (a header, the SHA-256 of
  the body and the body, ``marshal``; a file that is short, altered, too big or not a code
  object is ignored and rewritten), written atomically, bounded (at most :data:`MAX_FILES`
  files of at most :data:`MAX_BYTES` each; past that the oldest go) and never an error:
  any failure to read or write it means compiling as without it. The rendered text is
  the same either way.
"""

from __future__ import annotations

import marshal
import sys
import types
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket, BytecodeCache

from aimc.core.digest import sha256
from aimc.core.filecache import MAX_BYTES, MAX_FILES, FileCache

__all__ = ["MAX_BYTES", "MAX_FILES", "CompiledTemplates"]

_HEADER = b"aimc-jinja-code 1\n"
_SUFFIX = ".j2c"


class CompiledTemplates(BytecodeCache):
    """Compiled templates in ``folder`` (made on first write), keyed by ``tag`` too (the
    environment's options)."""

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder = folder
        self.tag = f"{tag}|{jinja2.__version__}|{sys.implementation.cache_tag}|{sys.version}"
        # readable as aimc's own bytecode is
        self.files = FileCache(folder, _HEADER, _SUFFIX, 0o644)

    def _key(self, bucket: Bucket) -> str:
        key = f"{self.tag}|{bucket.key}|{bucket.checksum}".encode("utf-8", "surrogatepass")
        return sha256(key).hexdigest()

    def _file(self, bucket: Bucket) -> Path:
        return self.files.path(self._key(bucket))

    def load_bytecode(self, bucket: Bucket) -> None:
        body = self.files.read(self._key(bucket))
        if body is None:
            return
        try:
            code: Any = marshal.loads(body)
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(code, types.CodeType):
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self.files.write(self._key(bucket), marshal.dumps(bucket.code))
