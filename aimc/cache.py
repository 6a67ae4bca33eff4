"""The model cache as a user sees it: what is there, whether it can be served, what can go.

Takes the Hugging Face cache folder (``CACHE_DIR``: ``models--org--name/{blobs,refs,
snapshots}``); hands on one :class:`Entry` per cached model repository with exact sizes,
revisions, last use and whether each snapshot is **complete** for serving (config,
tokenizer, every shard ``model.safetensors.index.json`` names), **incomplete** (what is
missing) or **broken** (a dangling link, a ref to no snapshot, a link out of the cache).
Reading never follows a link out of the cache and reads at most a bounded prefix of any
file. Removal (:func:`removal`, :func:`prune_plan`) is built on ``huggingface_hub``'s own
``scan_cache_dir`` and ``DeleteCacheStrategy`` (planned per repository, see :func:`_plan`),
and every path it would delete is checked to lie inside that repository's folder first: a
link out of the cache is unlinked, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from aimc.diagnostics import whole_line
from aimc.safety import shorten

__all__ = [
    "WEIGHT_PATTERNS",
    "Entry",
    "Removal",
    "Revision",
    "human_size",
    "missing_files",
    "open_regular",
    "prune_plan",
    "removal",
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
_COMMIT = re.compile(r"[0-9a-f]{40}")
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


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None


def _inside(path: Path, folder: Path) -> bool:
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
    if root is not None and not _inside(file, root):
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


def _read_small(path: Path, limit: int) -> bytes | None:
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def missing_files(snapshot: Path) -> list[str]:
    """What ``snapshot`` lacks for serving: config, a tokenizer, weights as safetensors and
    every shard its ``model.safetensors.index.json`` names (in that order; [] = complete).
    Links are followed only inside the snapshot's repository folder."""
    repo = snapshot.parent.parent

    def present(name: str) -> bool:
        file = snapshot / name
        return file.is_file() and _inside(file, repo)

    missing = [] if present("config.json") else ["config.json"]
    if not any(present(name) for name in _TOKENIZERS) and not any(
        f.is_file() and _inside(f, repo) for f in snapshot.glob("*.tiktoken")
    ):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    index = snapshot / "model.safetensors.index.json"
    if present("model.safetensors.index.json"):
        raw = _read_small(index, _MAX_INDEX)
        try:
            weight_map = json.loads(raw or b"")["weight_map"]
            shards = sorted({str(v) for v in weight_map.values()})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return [*missing, "model.safetensors.index.json (unreadable)"]
        for shard in shards:
            bad = shard.startswith("/") or ".." in shard.split("/") or not shard
            if bad or not present(shard):
                missing.append(whole_line(shorten(shard)))
    elif not any(f.is_file() and _inside(f, repo) for f in snapshot.glob("*.safetensors")):
        missing.append("model.safetensors")
    if len(missing) > _MAX_LISTED:
        missing = [*missing[:_MAX_LISTED], f"... {len(missing) - _MAX_LISTED} more"]
    return missing


def _model_id(name: str) -> str:
    return name[len("models--") :].replace("--", "/")


def _entry(repo: Path) -> Entry:
    """Read one ``models--*`` folder; problems make it broken, never raise."""
    problems: list[str] = []
    model = _model_id(repo.name)
    st = _lstat(repo)
    if st is None or stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        what = "a link" if st is not None and stat.S_ISLNK(st.st_mode) else "not a folder"
        return Entry(
            model, repo, "broken", 0, 0, 0, [], [], 0, 0, problems=[f"{repo.name} is {what}"]
        )
    blobs = repo / "blobs"
    size = incomplete = 0
    last_used = last_modified = 0
    if blobs.is_symlink() or (blobs.exists() and not blobs.is_dir()):
        # Snapshot files link into blobs: through a linked blobs folder they would be
        # served from outside the cache.
        problems.append("blobs is not a folder")
    elif blobs.is_dir():
        for blob in blobs.iterdir():
            bst = _lstat(blob)
            if bst is None or not stat.S_ISREG(bst.st_mode):
                continue
            size += bst.st_size
            if blob.name.endswith(".incomplete"):
                incomplete += bst.st_size
            last_used = max(last_used, int(bst.st_atime))
            last_modified = max(last_modified, int(bst.st_mtime))
    # refs: name -> commit
    refs: dict[str, str] = {}
    refs_dir = repo / "refs"
    if refs_dir.is_dir() and not refs_dir.is_symlink():
        for ref in sorted(refs_dir.rglob("*")):
            rst = _lstat(ref)
            if rst is None or stat.S_ISDIR(rst.st_mode):
                continue
            name = ref.relative_to(refs_dir).as_posix()
            raw = _read_small(ref, _MAX_REF) if stat.S_ISREG(rst.st_mode) else None
            commit = raw.decode("ascii", "replace").strip() if raw is not None else ""
            if not _COMMIT.fullmatch(commit):
                problems.append(f"ref {whole_line(shorten(name))} is not a commit hash")
                continue
            refs[name] = commit
    snapshots = repo / "snapshots"
    revisions: list[Revision] = []
    snapshot_dirs: list[Path] = []
    if snapshots.is_symlink() or (snapshots.exists() and not snapshots.is_dir()):
        problems.append("snapshots is not a folder")
    elif snapshots.is_dir():
        snapshot_dirs = sorted(snapshots.iterdir())
    elif not size:
        problems.append("no snapshots folder and no blobs")
    for snap in snapshot_dirs:
        sst = _lstat(snap)
        if sst is None or not stat.S_ISDIR(sst.st_mode):
            problems.append(f"snapshots/{whole_line(shorten(snap.name))} is not a folder")
            continue
        files = 0
        snap_size = 0
        for file in sorted(snap.rglob("*")):
            fst = _lstat(file)
            if fst is None or stat.S_ISDIR(fst.st_mode):
                continue
            files += 1
            where = f"snapshots/{snap.name[:12]}/{file.relative_to(snap).as_posix()}"
            if stat.S_ISLNK(fst.st_mode):
                if not _inside(file, repo):
                    problems.append(f"{whole_line(shorten(where))} links out of the cache")
                    continue
                if not file.exists():
                    problems.append(f"{whole_line(shorten(where))} is a dangling link")
                    continue
                snap_size += file.stat().st_size
            else:
                snap_size += fst.st_size
        names = sorted(n for n, c in refs.items() if c == snap.name)
        missing = missing_files(snap)
        revisions.append(Revision(snap.name, names, files, snap_size, not missing, missing))
    known = {r.commit for r in revisions}
    for name, commit in sorted(refs.items()):
        if commit not in known:
            problems.append(
                f"ref {whole_line(shorten(name))} points at missing revision {commit[:12]}"
            )
    # The revision a launch serves: main's, else a complete one, else any.
    served = next((r for r in revisions if "main" in r.refs), None)
    if served is None and revisions:
        served = next((r for r in revisions if r.complete), revisions[0])
    if problems:
        status = "broken"
    elif served is not None and served.complete:
        status = "complete"
    else:
        status = "incomplete"
    # Blobs and no snapshot: a download stopped before it linked any file.
    missing = served.missing if served is not None else ["every file (no snapshot yet)"]
    if status == "broken":
        missing = []
    return Entry(
        model,
        repo,
        status,
        size,
        incomplete,
        sum(r.files for r in revisions),
        sorted(refs),
        revisions,
        last_used,
        last_modified,
        missing=missing,
        problems=problems[:_MAX_LISTED],
    )


def scan(cache_dir: Path) -> list[Entry]:
    """Every cached model repository in ``cache_dir``, by id ([] if it does not exist).

    Raises:
        CacheError: The folder exists and cannot be read.
    """
    from aimc.errors import CacheError

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
            entries.append(
                Entry(
                    _model_id(folder.name),
                    folder,
                    "broken",
                    0,
                    0,
                    0,
                    [],
                    [],
                    0,
                    0,
                    problems=[f"unreadable: {exc.strerror or exc}"],
                )
            )
    return sorted(entries, key=lambda e: e.model)


@dataclass(frozen=True)
class Removal:
    """What a removal will delete (every path checked to lie in the cache's hub layout)."""

    models: list[str]
    revisions: list[str]
    incomplete_files: list[Path]
    size_bytes: int
    strategies: list[Any] = field(default_factory=list)  # checked DeleteCacheStrategy
    broken_repos: list[Path] = field(default_factory=list)

    def execute(self) -> None:
        """Delete what was planned (links unlinked, never followed)."""
        import shutil

        for strategy in self.strategies:
            strategy.execute()
        for repo in self.broken_repos:
            shutil.rmtree(repo)
        for file in self.incomplete_files:
            file.unlink(missing_ok=True)

    def as_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "revisions": self.revisions,
            "incomplete_files": len(self.incomplete_files),
            "freed_bytes": self.size_bytes,
            "freed": human_size(self.size_bytes),
        }


def _checked(strategy: Any, cache_dir: Path, repo: str) -> Any:
    """``strategy`` with every path outside ``cache_dir``'s folder of ``repo``
    (``models--org--name``) dropped: a blob reached through a link out of the cache is never
    deleted (its link is, with the snapshot folder holding it), and neither is a revision
    of another repository with the same commit hash (``delete_revisions`` takes hashes
    alone, and a fork or a copy of a repository shares its commits)."""
    name = f"models--{repo.replace('/', '--')}"
    from huggingface_hub.utils._cache_manager import DeleteCacheStrategy

    # huggingface_hub hands back resolved paths: compare with the resolved cache folder.
    root = cache_dir = Path(os.path.realpath(cache_dir))

    def repo_folder(path: Path) -> bool:
        st = _lstat(path)
        return (
            path.parent == cache_dir
            and path.name == name
            and st is not None
            and stat.S_ISDIR(st.st_mode)
        )

    def under(path: Path, kind: str) -> bool:
        # path = cache/models--x/<kind>/...; no link on the way there.
        try:
            rel = path.relative_to(cache_dir)
        except ValueError:
            return False
        parts = rel.parts
        if len(parts) < 3 or parts[1] != kind or not repo_folder(cache_dir / parts[0]):
            return False
        parent = Path(os.path.realpath(path.parent))
        return parent == root / Path(*parts[:-1])

    blobs = frozenset(p for p in strategy.blobs if under(p, "blobs"))
    repos = frozenset(p for p in strategy.repos if repo_folder(p))
    return DeleteCacheStrategy(
        expected_freed_size=_freed(blobs, repos),
        blobs=blobs,
        refs=frozenset(p for p in strategy.refs if under(p, "refs")),
        repos=repos,
        snapshots=frozenset(
            p for p in strategy.snapshots if under(p, "snapshots") and not p.is_symlink()
        ),
        files=frozenset(),
        cache_dir=None,
    )


def _plan(repo: Any, commits: set[str], cache_dir: Path) -> Any:
    """huggingface_hub's ``DeleteCacheStrategy`` for the revisions ``commits`` of one
    scanned repository (``CachedRepoInfo``), checked by :func:`_checked`.

    ``HFCacheInfo.delete_revisions`` takes commit hashes alone and keeps one revision per
    hash, so with two repositories sharing a commit (a fork, a copy) it may plan the other
    one's files; this is its rule applied to the one repository: every revision gone means
    the repository folder, else the snapshots, their refs and the blobs no kept revision
    uses."""
    from huggingface_hub.utils._cache_manager import DeleteCacheStrategy

    chosen = [r for r in repo.revisions if r.commit_hash in commits]
    kept = [r for r in repo.revisions if r.commit_hash not in commits]
    none: frozenset[Path] = frozenset()
    if not kept:
        strategy = DeleteCacheStrategy(0, none, none, frozenset([repo.repo_path]), none)
    else:
        used = {f.blob_path for r in kept for f in r.files}
        strategy = DeleteCacheStrategy(
            0,
            blobs=frozenset(f.blob_path for r in chosen for f in r.files) - used,
            refs=frozenset(repo.repo_path / "refs" / ref for r in chosen for ref in r.refs),
            repos=none,
            snapshots=frozenset(r.snapshot_path for r in chosen),
        )
    return _checked(strategy, cache_dir, repo.repo_id)


def _freed(blobs: Iterable[Path], repos: Iterable[Path]) -> int:
    """Exact bytes the blob files and repository folders hold (links count nothing: only
    the link goes). huggingface_hub's own estimate is not exact (it subtracts blobs of
    another repository that happen to have the same name)."""
    files = set(blobs)
    for repo in repos:
        with contextlib.suppress(OSError):
            files.update((repo / "blobs").iterdir())
    total = 0
    for file in files:
        st = _lstat(file)
        if st is not None and stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


def _hub_scan(cache_dir: Path) -> Any:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from aimc.errors import CacheError

    try:
        return scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    except (OSError, ValueError) as exc:
        raise CacheError(f"cannot read the model cache {cache_dir}: {shorten(str(exc))}") from None


def _idle_incomplete(cache_dir: Path, files: Iterable[Path]) -> list[Path]:
    """The ``.incomplete`` files no running download holds (its blob's lock is free)."""
    from filelock import FileLock, Timeout

    out = []
    for file in files:
        if not _inside(file, cache_dir) or file.is_symlink():
            continue
        etag = file.name.split(".")[0]
        lock = cache_dir / ".locks" / file.parent.parent.name / f"{etag}.lock"
        try:
            with FileLock(str(lock), timeout=0):
                out.append(file)
        except (Timeout, OSError):
            continue
    return sorted(out)


def _downloading(cache_dir: Path, folder: str) -> bool:
    """A running download holds one of the locks of ``folder`` (``.locks/models--x/*.lock``,
    taken by huggingface_hub and by aimc's resumable download)."""
    from filelock import FileLock, Timeout

    locks = cache_dir / ".locks" / folder
    try:
        files = sorted(locks.glob("*.lock")) if locks.is_dir() and not locks.is_symlink() else []
    except OSError:
        return False
    for lock in files[:10_000]:
        if lock.is_symlink():
            continue
        try:
            with FileLock(str(lock), timeout=0):
                pass
        except Timeout:
            return True
        except OSError:
            continue
    return False


def removal(cache_dir: Path, model: str, revision: str | None = None) -> Removal:
    """Plan removing ``model`` (every revision, or the one ``revision`` names: a commit or
    a prefix of one, a branch or tag) from the cache.

    Raises:
        CacheError: The model (or revision) is not in the cache.
    """
    from aimc.errors import CacheError

    folder = cache_dir / f"models--{model.replace('/', '--')}"
    entries = {e.model: e for e in scan(cache_dir)}
    entry = entries.get(model)
    if entry is None or "/" not in model or ".." in model or folder.parent != cache_dir:
        raise CacheError(
            f"{whole_line(shorten(model))} is not in the cache {cache_dir}",
            hint="see aim-engine cache list",
        )
    if _downloading(cache_dir, folder.name):
        raise CacheError(
            f"{model} is being downloaded now: nothing was removed",
            hint="wait for the download to end (or stop it), then remove it",
        )
    if (entry.status == "broken" or not entry.revisions) and revision is None:
        st = _lstat(folder)
        if st is None or not stat.S_ISDIR(st.st_mode):
            # A link or a file named like a repository: unlink it, never follow it.
            return Removal([model], [], [folder] if st is not None else [], 0)
        return Removal([model], [], [], entry.size_bytes, [], [folder])
    info = _hub_scan(cache_dir)
    repo = next(
        (r for r in (info.repos if info else ()) if r.repo_id == model and r.repo_type == "model"),
        None,
    )
    if repo is None:
        raise CacheError(f"{model} cannot be read by huggingface_hub: {entry.problems[:1]}")
    chosen = [
        r
        for r in repo.revisions
        if revision is None or r.commit_hash.startswith(revision) or revision in r.refs
    ]
    if not chosen or (revision is not None and len(revision) < 7 and revision not in repo.refs):
        raise CacheError(
            f"{model} has no cached revision {whole_line(shorten(revision or ''))!r}",
            hint="cached: " + ", ".join(sorted(r.commit_hash[:12] for r in repo.revisions)),
        )
    strategy = _plan(repo, {r.commit_hash for r in chosen}, cache_dir)
    incomplete: list[Path] = []
    if len(chosen) == len(repo.revisions):
        incomplete = _idle_incomplete(
            cache_dir,
            (
                f.file_path
                for f in info.incomplete_files
                if f.file_path.parent.parent.name == folder.name
            ),
        )
    return Removal(
        [model],
        sorted(r.commit_hash[:12] for r in chosen),
        incomplete,
        int(strategy.expected_freed_size),
        [strategy],
    )


def prune_plan(cache_dir: Path) -> Removal:
    """Plan removing what no ref names (detached revisions) and interrupted downloads
    (``.incomplete`` files no running download holds)."""
    info = _hub_scan(cache_dir)
    if info is None:
        return Removal([], [], [], 0)
    detached = sorted(
        (r.commit_hash, repo.repo_id)
        for repo in info.repos
        if repo.repo_type == "model"
        for r in repo.revisions
        if not r.refs
    )
    # One plan per repository: a hash detached here may be referenced in another one.
    repos = {r.repo_id: r for r in info.repos if r.repo_type == "model"}
    by_repo: dict[str, set[str]] = {}
    for commit, model in detached:
        by_repo.setdefault(model, set()).add(commit)
    strategies = [
        _plan(repos[model], commits, cache_dir) for model, commits in sorted(by_repo.items())
    ]
    incomplete = _idle_incomplete(cache_dir, (f.file_path for f in info.incomplete_files))
    size = sum(int(s.expected_freed_size) for s in strategies)
    size += sum(f.stat().st_size for f in incomplete if f.exists())
    return Removal(
        sorted({m for _, m in detached}),
        [c[:12] for c, _ in detached],
        incomplete,
        size,
        strategies,
    )
