"""A file of validation verdicts, keyed by what a verdict depends on (``validate --cache``).

A recipe's diagnostics depend on its bytes, its display path, the catalog folder it sits
in, the hardware profiles it is linted against, and aimc itself (code, schemas, the
engine vocabulary in use). :func:`key` hashes all of them, so an entry is reused only
for the same inputs; anything else is checked afresh. The file is plain JSON written by
aimc (atomically, beside itself), read with a size bound and checked entry by entry: a
damaged or foreign file costs a fresh check, never a crash. It holds what ``validate``
would print about those files, nothing else. A file at the cache path that is not such a
cache (a recipe given by mistake, a link, a pipe) is never read past its bound nor
replaced. The verdicts are trusted like the recipes they describe: whoever can write the
cache can make a file pass, so restore it only from your own CI's cache.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from aimc.core import _resources
from aimc.core.diagnostics import Diagnostic
from aimc.core.digest import sha256
from aimc.core.log import note

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "Verdicts", "code_fingerprint", "key"]

#: A cache file larger than this is not read (and is rewritten).
MAX_BYTES = 16 * 2**20
#: A cache file with more JSON arrays and objects than this is not parsed (memory bound).
MAX_CONTAINERS = 1_000_000
#: Entries kept: those of the last run first, then older ones.
MAX_ENTRIES = 20_000
_FORMAT = "aimc-validate-cache/1"
#: How a cache file starts (aimc writes it compact; a reformatted one is still one).
_HEAD = re.compile(rb'\{\s*"format"\s*:\s*"aimc-validate-cache/1"')
_FIELDS = {"path", "line", "column", "message", "pointer", "severity", "rule", "hint"}


@functools.cache
def code_fingerprint() -> str:
    """sha256 over aimc's code, schemas and pinned vocabularies as installed."""
    digest = sha256()
    package = _resources.path("backends").parent
    files = sorted(package.rglob("*.py")) + sorted(package.glob("backends/*.json"))
    files += sorted(_resources.path("schemas").glob("*.json"))
    for file in files:
        digest.update(str(file.name).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def key(*parts: str) -> str:
    """The cache key of a verdict from everything it depends on."""
    digest = sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _diagnostic(data: Any) -> Diagnostic | None:
    """A stored diagnostic, or None unless every field has the type the report needs."""
    if not isinstance(data, dict) or set(data) != _FIELDS:
        return None
    good = (
        all(isinstance(data[k], str) for k in ("path", "message", "pointer", "rule"))
        and type(data["line"]) is int
        and type(data["column"]) is int
        and data["severity"] in ("error", "warning")
        and (data["hint"] is None or isinstance(data["hint"], str))
    )
    return Diagnostic(**data) if good else None


def _entry(data: Any) -> dict[str, Any] | None:
    """A stored entry, checked: ``diagnostics`` plus the facts the cross-file checks use."""
    if not isinstance(data, dict) or not isinstance(data.get("diagnostics"), list):
        return None
    diagnostics = [_diagnostic(d) for d in data["diagnostics"]]
    if any(d is None for d in diagnostics):
        return None
    kind, identity = data.get("kind"), data.get("identity")
    anchor = _diagnostic(data["anchor"]) if data.get("anchor") is not None else None
    hardware = data.get("hardware")
    if kind not in (None, "Recipe") or not isinstance(hardware, list):
        return None
    if kind == "Recipe" and (not isinstance(identity, str) or anchor is None):
        return None
    if not all(isinstance(h, str) for h in hardware):
        return None
    return {
        "diagnostics": diagnostics,
        "kind": kind,
        "identity": identity,
        "anchor": anchor,
        "hardware": hardware,
    }


def _stored(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "diagnostics": [d.to_json() for d in entry["diagnostics"]],
        "kind": entry["kind"],
        "identity": entry["identity"],
        "anchor": entry["anchor"].to_json() if entry["anchor"] is not None else None,
        "hardware": list(entry["hardware"]),
    }


class Verdicts:
    """The verdicts in one cache file: :meth:`get` / :meth:`put`, then :meth:`save`."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._old: dict[str, Any] = {}
        self._new: dict[str, dict[str, Any]] = {}
        self.hits = 0
        #: What is at the path: "absent", "empty", "cache" (one of ours) or "other" (never
        #: replaced).
        self.found = "other"
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(file, flags)
        except (FileNotFoundError, NotADirectoryError):
            self.found = "absent"  # writing it says why it cannot be written, if so
            return
        except OSError:
            return
        with contextlib.suppress(OSError, ValueError, UnicodeDecodeError, RecursionError):
            with os.fdopen(fd, "rb") as stream:
                if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                    return
                raw = stream.read(MAX_BYTES + 1)
            if not raw:
                self.found = "empty"  # nothing to lose
                return
            if not _HEAD.match(raw):
                return
            self.found = "cache"
            if len(raw) > MAX_BYTES or raw.count(b"[") + raw.count(b"{") > MAX_CONTAINERS:
                return
            data = json.loads(raw)
            if isinstance(data, dict) and data.get("format") == _FORMAT:
                entries = data.get("entries")
                self._old = entries if isinstance(entries, dict) else {}

    def get(self, cache_key: str) -> dict[str, Any] | None:
        """The checked entry stored under ``cache_key``, or None."""
        entry = self._new.get(cache_key) or _entry(self._old.get(cache_key))
        if entry is not None:
            self._new[cache_key] = entry
            self.hits += 1
        return entry

    def put(self, cache_key: str, entry: dict[str, Any]) -> None:
        self._new[cache_key] = entry

    def save(self) -> None:
        """Write this run's entries (then older ones, up to :data:`MAX_ENTRIES`) to a
        temporary file beside the cache file and rename it over; a failure to write
        costs only the cache (the report is not affected)."""
        entries = {k: _stored(v) for k, v in self._new.items()}
        for k, v in self._old.items():
            if len(entries) >= MAX_ENTRIES:
                break
            if k not in entries and isinstance(k, str) and _entry(v) is not None:
                entries[k] = v
        text = json.dumps({"format": _FORMAT, "entries": entries}, separators=(",", ":"))
        if len(text) > MAX_BYTES:
            text = json.dumps({"format": _FORMAT, "entries": {}}, separators=(",", ":"))
        if self.found == "other" or (self.found == "absent" and os.path.lexists(self.file)):
            note(
                f"not writing the validate cache {self.file}: something that is not an aimc "
                "validate cache is there",
                "WARNING",
            )
            return
        import tempfile  # deferred: validate imports this module, only --cache writes a file

        folder = self.file.parent
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".aimc-cache-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(tmp, self.file)
            tmp = None
        except OSError as exc:
            note(
                f"cannot write the validate cache {self.file}: {exc.strerror or exc}",
                "WARNING",
            )
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
