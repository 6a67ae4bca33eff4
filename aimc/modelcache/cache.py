"""The model cache as a user sees it: what is there, whether it can be served.

Takes the Hugging Face cache folder (``CACHE_DIR``: ``models--org--name/{blobs,refs,
snapshots}``); hands on one :class:`Entry` per cached model repository with exact sizes,
revisions, last use and whether each snapshot is **complete** for serving (config,
tokenizer, every shard ``model.safetensors.index.json`` names), **incomplete** (what is
missing) or **broken** (a dangling link, a ref to no snapshot, a link out of the cache).
Reading never follows a link out of the cache and reads at most a bounded prefix of any
file (:mod:`aimc.modelcache.cache_files`). What can go is planned by
:mod:`aimc.modelcache.cache_removal`.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import whole_line
from aimc.core.errors import CacheError
from aimc.core.safety import shorten
from aimc.modelcache.cache_files import COMMIT, inside, lstat_or_none, read_small

__all__ = [
    "IGNORED_PATTERNS",
    "WEIGHT_PATTERNS",
    "Entry",
    "Revision",
    "human_size",
    "missing_files",
    "scan",
]

#: What vLLM reads from a repository: weights as safetensors (never ``.bin``/``.pth``
#: duplicates, nor ``original/``), config, tokenizer and generation config.
WEIGHT_PATTERNS = [
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.*",
    "preprocessor_config.json",
    "params.json",
    "tekken.json",
    "*.tiktoken",
    "spiece.model",
    "sentencepiece.bpe.model",
    "added_tokens.json",
]
#: Folders of a repository never downloaded (consolidated originals).
IGNORED_PATTERNS = ["original/*", "*.bin", "*.pth", "*.pt", "*.gguf", "*.msgpack", "*.h5"]

#: Any of these makes a tokenizer vLLM can load.
_TOKENIZERS = (
    "tokenizer.json",
    "tokenizer.model",
    "tekken.json",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tiktoken.model",
)
_MAX_INDEX = 64 * 2**20
_MAX_REF = 256
_MAX_LISTED = 20


def human_size(size: int) -> str:
    """``4.0 KiB``: bytes in binary units (exact below 1 KiB)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Revision:
    """One cached snapshot: a commit, the refs naming it, its files and completeness."""

    commit: str
    refs: list[str]
    files: int
    size_bytes: int
    complete: bool
    missing: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "refs": self.refs,
            "files": self.files,
            "size_bytes": self.size_bytes,
            "complete": self.complete,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Entry:
    """One cached model repository (``models--org--name``)."""

    model: str
    path: Path
    status: str  # complete | incomplete | broken
    size_bytes: int
    incomplete_bytes: int
    files: int
    refs: list[str]
    revisions: list[Revision]
    last_used: int
    last_modified: int
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``cache list --format json`` row (``output.schema.json#/$defs/cache_row``)."""
        return {
            "model": self.model,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "size": human_size(self.size_bytes),
            "size_gib": round(self.size_bytes / 2**30, 3),
            "incomplete_bytes": self.incomplete_bytes,
            "files": self.files,
            "revisions": [r.commit[:12] for r in self.revisions],
            "revision_details": [r.as_json() for r in self.revisions],
            "refs": self.refs,
            "missing": self.missing,
            "problems": self.problems,
            "last_used": self.last_used,
            "last_modified": self.last_modified,
            "path": str(self.path),
        }


def missing_files(snapshot: Path) -> list[str]:
    """What ``snapshot`` lacks for serving: config, a tokenizer, weights as safetensors and
    every shard its ``model.safetensors.index.json`` names (in that order; [] = complete).
    Links are followed only inside the snapshot's repository folder."""
    repo = snapshot.parent.parent

    def present(name: str) -> bool:
        file = snapshot / name
        return file.is_file() and inside(file, repo)

    missing = [] if present("config.json") else ["config.json"]
    if not any(present(name) for name in _TOKENIZERS) and not any(
        f.is_file() and inside(f, repo) for f in snapshot.glob("*.tiktoken")
    ):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    index = snapshot / "model.safetensors.index.json"
    if present("model.safetensors.index.json"):
        raw = read_small(index, _MAX_INDEX)
        try:
            weight_map = json.loads(raw or b"")["weight_map"]
            shards = sorted({str(v) for v in weight_map.values()})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return [*missing, "model.safetensors.index.json (unreadable)"]
        for shard in shards:
            bad = shard.startswith("/") or ".." in shard.split("/") or not shard
            if bad or not present(shard):
                missing.append(whole_line(shorten(shard)))
    elif not any(f.is_file() and inside(f, repo) for f in snapshot.glob("*.safetensors")):
        missing.append("model.safetensors")
    if len(missing) > _MAX_LISTED:
        missing = [*missing[:_MAX_LISTED], f"... {len(missing) - _MAX_LISTED} more"]
    return missing


def _model_id(name: str) -> str:
    return name[len("models--") :].replace("--", "/")


def _broken(repo: Path, problem: str) -> Entry:
    """The entry of a repository folder that cannot be read at all."""
    return Entry(_model_id(repo.name), repo, "broken", 0, 0, 0, [], [], 0, 0, problems=[problem])


@dataclass
class _Blobs:
    """What ``blobs/`` holds: bytes, bytes of interrupted downloads, last use and change."""

    size: int = 0
    incomplete: int = 0
    last_used: int = 0
    last_modified: int = 0


def _blobs(repo: Path, problems: list[str]) -> _Blobs:
    """The regular files of ``repo``'s blobs folder, summed (links and folders count nothing)."""
    blobs = repo / "blobs"
    found = _Blobs()
    if blobs.is_symlink() or (blobs.exists() and not blobs.is_dir()):
        # Snapshot files link into blobs: through a linked blobs folder they would be
        # served from outside the cache.
        problems.append("blobs is not a folder")
    elif blobs.is_dir():
        for blob in blobs.iterdir():
            bst = lstat_or_none(blob)
            if bst is None or not stat.S_ISREG(bst.st_mode):
                continue
            found.size += bst.st_size
            if blob.name.endswith(".incomplete"):
                found.incomplete += bst.st_size
            found.last_used = max(found.last_used, int(bst.st_atime))
            found.last_modified = max(found.last_modified, int(bst.st_mtime))
    return found


def _refs(repo: Path, problems: list[str]) -> dict[str, str]:
    """{ref name: commit} of ``repo``'s refs; a ref that names no commit hash is a problem."""
    refs: dict[str, str] = {}
    refs_dir = repo / "refs"
    if refs_dir.is_dir() and not refs_dir.is_symlink():
        for ref in sorted(refs_dir.rglob("*")):
            rst = lstat_or_none(ref)
            if rst is None or stat.S_ISDIR(rst.st_mode):
                continue
            name = ref.relative_to(refs_dir).as_posix()
            raw = read_small(ref, _MAX_REF) if stat.S_ISREG(rst.st_mode) else None
            commit = raw.decode("ascii", "replace").strip() if raw is not None else ""
            if not COMMIT.fullmatch(commit):
                problems.append(f"ref {whole_line(shorten(name))} is not a commit hash")
                continue
            refs[name] = commit
    return refs


def _snapshot_dirs(repo: Path, blob_bytes: int, problems: list[str]) -> list[Path]:
    """The entries of ``repo``'s snapshots folder (each checked by :func:`_revision`)."""
    snapshots = repo / "snapshots"
    if snapshots.is_symlink() or (snapshots.exists() and not snapshots.is_dir()):
        problems.append("snapshots is not a folder")
    elif snapshots.is_dir():
        return sorted(snapshots.iterdir())
    elif not blob_bytes:
        problems.append("no snapshots folder and no blobs")
    return []


def _snapshot_files(snap: Path, repo: Path, problems: list[str]) -> tuple[int, int]:
    """(files, bytes) of the snapshot folder ``snap``; a link out of the cache or a
    dangling one is a problem (and counts no bytes)."""
    files = 0
    size = 0
    for file in sorted(snap.rglob("*")):
        fst = lstat_or_none(file)
        if fst is None or stat.S_ISDIR(fst.st_mode):
            continue
        files += 1
        where = f"snapshots/{snap.name[:12]}/{file.relative_to(snap).as_posix()}"
        if stat.S_ISLNK(fst.st_mode):
            if not inside(file, repo):
                problems.append(f"{whole_line(shorten(where))} links out of the cache")
                continue
            if not file.exists():
                problems.append(f"{whole_line(shorten(where))} is a dangling link")
                continue
            size += file.stat().st_size
        else:
            size += fst.st_size
    return files, size


def _revision(snap: Path, repo: Path, refs: dict[str, str], problems: list[str]) -> Revision | None:
    """The cached snapshot ``snap``: its files, the refs naming it, what it lacks; None
    (and a problem) when it is not a folder."""
    sst = lstat_or_none(snap)
    if sst is None or not stat.S_ISDIR(sst.st_mode):
        problems.append(f"snapshots/{whole_line(shorten(snap.name))} is not a folder")
        return None
    files, size = _snapshot_files(snap, repo, problems)
    names = sorted(n for n, c in refs.items() if c == snap.name)
    missing = missing_files(snap)
    return Revision(snap.name, names, files, size, not missing, missing)


def _status(revisions: list[Revision], problems: list[str]) -> tuple[str, list[str]]:
    """(status, what is missing) of a repository: broken with problems, else complete or
    incomplete as the revision a launch serves (main's, else a complete one, else any)."""
    served = next((r for r in revisions if "main" in r.refs), None)
    if served is None and revisions:
        served = next((r for r in revisions if r.complete), revisions[0])
    if problems:
        return "broken", []
    # Blobs and no snapshot: a download stopped before it linked any file.
    missing = served.missing if served is not None else ["every file (no snapshot yet)"]
    return ("complete" if served is not None and served.complete else "incomplete"), missing


def _entry(repo: Path) -> Entry:
    """Read one ``models--*`` folder; problems make it broken, never raise."""
    st = lstat_or_none(repo)
    if st is None or stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        what = "a link" if st is not None and stat.S_ISLNK(st.st_mode) else "not a folder"
        return _broken(repo, f"{repo.name} is {what}")
    problems: list[str] = []
    blobs = _blobs(repo, problems)
    refs = _refs(repo, problems)
    revisions = [
        revision
        for snap in _snapshot_dirs(repo, blobs.size, problems)
        if (revision := _revision(snap, repo, refs, problems)) is not None
    ]
    known = {r.commit for r in revisions}
    for name, commit in sorted(refs.items()):
        if commit not in known:
            problems.append(
                f"ref {whole_line(shorten(name))} points at missing revision {commit[:12]}"
            )
    status, missing = _status(revisions, problems)
    return Entry(
        _model_id(repo.name),
        repo,
        status,
        blobs.size,
        blobs.incomplete,
        sum(r.files for r in revisions),
        sorted(refs),
        revisions,
        blobs.last_used,
        blobs.last_modified,
        missing=missing,
        problems=problems[:_MAX_LISTED],
    )


def scan(cache_dir: Path) -> list[Entry]:
    """Every cached model repository in ``cache_dir``, by id ([] if it does not exist).

    Raises:
        CacheError: The folder exists and cannot be read.
    """
    try:
        if not cache_dir.is_dir():
            return []
        folders = sorted(p for p in cache_dir.iterdir() if p.name.startswith("models--"))
    except OSError as exc:
        raise CacheError(
            f"cannot read the model cache {cache_dir}: {exc.strerror or exc}"
        ) from None
    entries = []
    for folder in folders:
        try:
            entries.append(_entry(folder))
        except OSError as exc:
            entries.append(_broken(folder, f"unreadable: {exc.strerror or exc}"))
    return sorted(entries, key=lambda e: e.model)
