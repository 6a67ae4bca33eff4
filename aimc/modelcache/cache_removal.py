"""Removing from the model cache: one repository (or revision), or what nothing names.

Takes the Hugging Face cache folder (``CACHE_DIR``) and a model id (and revision), or
nothing for a prune; hands on a :class:`Removal`: what would be deleted and the exact bytes
freed, deleted only by :meth:`Removal.execute`. Planning is built on ``huggingface_hub``'s
own ``scan_cache_dir`` and ``DeleteCacheStrategy`` (planned per repository, see
:func:`_plan`), and every path it would delete is checked to lie inside that repository's
folder first: a link out of the cache is unlinked, never followed. A repository a running
download holds (one of its locks in ``.locks``) is not removed, and an interrupted
download's ``.incomplete`` file is removed only when no download holds it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from aimc.core.diagnostics import whole_line
from aimc.core.errors import CacheError
from aimc.core.safety import shorten
from aimc.modelcache.cache import Entry, human_size, scan
from aimc.modelcache.cache_files import inside, lstat_or_none, repo_folder_name

__all__ = ["Removal", "prune_plan", "removal"]


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
    from huggingface_hub.utils._cache_manager import DeleteCacheStrategy  # heavy: deferred

    name = repo_folder_name(repo)

    # huggingface_hub hands back resolved paths: compare with the resolved cache folder.
    root = cache_dir = Path(os.path.realpath(cache_dir))

    def repo_folder(path: Path) -> bool:
        st = lstat_or_none(path)
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
    from huggingface_hub.utils._cache_manager import DeleteCacheStrategy  # heavy: deferred

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
        st = lstat_or_none(file)
        if st is not None and stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


def _hub_scan(cache_dir: Path) -> Any:
    """huggingface_hub's scan of ``cache_dir`` (``HFCacheInfo``); None if there is none.

    Raises:
        CacheError: The folder cannot be read.
    """
    # huggingface_hub is heavy: imported only when a removal is planned.
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        return scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    except (OSError, ValueError) as exc:
        raise CacheError(f"cannot read the model cache {cache_dir}: {shorten(str(exc))}") from None


def _idle_incomplete(cache_dir: Path, files: Iterable[Path]) -> list[Path]:
    """The ``.incomplete`` files no running download holds (its blob's lock is free)."""
    out = []
    for file in files:
        if not inside(file, cache_dir) or file.is_symlink():
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


def _cached(cache_dir: Path, model: str, folder: Path) -> Entry:
    """The cache's entry of ``model``, which no running download holds.

    Raises:
        CacheError: ``model`` is not in the cache, or is being downloaded.
    """
    entry = next((e for e in scan(cache_dir) if e.model == model), None)
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
    return entry


def _whole_folder(model: str, folder: Path, size: int) -> Removal:
    """Removing the folder of a broken repository (or one with no revision) whole."""
    st = lstat_or_none(folder)
    if st is None or not stat.S_ISDIR(st.st_mode):
        # A link or a file named like a repository: unlink it, never follow it.
        return Removal([model], [], [folder] if st is not None else [], 0)
    return Removal([model], [], [], size, [], [folder])


def _chosen(repo: Any, model: str, revision: str | None) -> list[Any]:
    """The revisions of the scanned ``repo`` that ``revision`` names (all without one).

    Raises:
        CacheError: ``revision`` names none, or is a prefix shorter than 7 characters.
    """
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
    return chosen


def removal(cache_dir: Path, model: str, revision: str | None = None) -> Removal:
    """Plan removing ``model`` (every revision, or the one ``revision`` names: a commit or
    a prefix of one, a branch or tag) from the cache.

    Raises:
        CacheError: The model (or revision) is not in the cache.
    """
    folder = cache_dir / repo_folder_name(model)
    entry = _cached(cache_dir, model, folder)
    if (entry.status == "broken" or not entry.revisions) and revision is None:
        return _whole_folder(model, folder, entry.size_bytes)
    info = _hub_scan(cache_dir)
    repo = next(
        (r for r in (info.repos if info else ()) if r.repo_id == model and r.repo_type == "model"),
        None,
    )
    if repo is None:
        raise CacheError(f"{model} cannot be read by huggingface_hub: {entry.problems[:1]}")
    chosen = _chosen(repo, model, revision)
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
