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
- Checked: a file holds a header, the SHA-256 of its body and the body (``marshal``); a
  file that is short, altered, too big or not a code object is ignored and rewritten.
- Written atomically (a temporary file, then a rename) and bounded: at most
  :data:`MAX_FILES` files of at most :data:`MAX_BYTES` each; past that the oldest go.
- Never an error: any failure to read or write it means compiling as without it. The
  rendered text is the same either way.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket, BytecodeCache

__all__ = ["MAX_BYTES", "MAX_FILES", "CompiledTemplates"]

_HEADER = b"aimc-jinja-code 1\n"
_DIGEST = 32
#: Most files the folder keeps, and the biggest one read or written.
MAX_FILES = 64
MAX_BYTES = 1 << 20
_SUFFIX = ".j2c"


class CompiledTemplates(BytecodeCache):
    """Compiled templates in ``folder`` (made on first write), keyed by ``tag`` too (the
    environment's options)."""

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder = folder
        self.tag = f"{tag}|{jinja2.__version__}|{sys.implementation.cache_tag}|{sys.version}"

    def _file(self, bucket: Bucket) -> Path:
        key = f"{self.tag}|{bucket.key}|{bucket.checksum}".encode("utf-8", "surrogatepass")
        return self.folder / (hashlib.sha256(key).hexdigest() + _SUFFIX)

    def load_bytecode(self, bucket: Bucket) -> None:
        code = _read(self._file(bucket))
        if code is not None:
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if sys.dont_write_bytecode or bucket.code is None:
            return
        body = marshal.dumps(bucket.code)
        data = _HEADER + hashlib.sha256(body).digest() + body
        if len(data) > MAX_BYTES:
            return
        try:
            self.folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            _write(self._file(bucket), data)
            _bound(self.folder)
        except OSError:
            return  # a cache: compiling again next time is the fallback


def _read(file: Path) -> types.CodeType | None:
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    start = len(_HEADER) + _DIGEST
    if len(data) > MAX_BYTES or not data.startswith(_HEADER) or len(data) <= start:
        return None
    body = data[start:]
    if hashlib.sha256(body).digest() != data[len(_HEADER) : start]:
        return None
    try:
        code: Any = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def _write(file: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o644)  # readable as aimc's own bytecode is
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _bound(folder: Path) -> None:
    """Remove the oldest files (and stale temporary ones) past :data:`MAX_FILES`."""
    files = [p for p in folder.iterdir() if p.name.endswith(_SUFFIX)]
    if len(files) <= MAX_FILES:
        return
    # newest first, the temporary files of writers that died last
    files.sort(key=lambda p: (not p.name.startswith(".tmp-"), p.stat().st_mtime), reverse=True)
    for stale in files[MAX_FILES:]:
        stale.unlink(missing_ok=True)
