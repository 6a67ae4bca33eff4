"""Downloading a model into the cache, and preparing the cache for a launch.

Takes a repository id, a revision and the Hugging Face cache folder (``CACHE_DIR``); hands
on the snapshot folder holding what vLLM reads of it (:func:`download`), or, for a launch,
the server's environment set to start offline on a complete cached copy
(:func:`prepare_cache`). The hub's answers are checked before anything is written (a
commit hash, a file list with safe names and sizes, room on the disk), every request goes
through :func:`aimc.modelcache.hub_guard.guarded`, weight files resume where they stopped
(:mod:`aimc.modelcache.hub_resume`), and what goes wrong is one of aimc's errors
(:mod:`aimc.modelcache.hub_errors`). ``huggingface_hub`` is imported only when a download runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import whole_line
from aimc.core.errors import CacheError, NetworkError
from aimc.core.safety import mask, shorten
from aimc.core.settings import setting
from aimc.modelcache.cache import IGNORED_PATTERNS, WEIGHT_PATTERNS, human_size, missing_files
from aimc.modelcache.cache_files import COMMIT, repo_folder_name
from aimc.modelcache.checkpoint import cache_snapshot, check_cache_dir, check_revision
from aimc.modelcache.download_progress import Progress
from aimc.modelcache.hub_errors import http_status, hub_errors, network_failure
from aimc.modelcache.hub_guard import Guard, guarded
from aimc.modelcache.hub_resume import fetch_resumable

__all__ = ["download", "prepare_cache"]

#: Most files a repository may list, and the longest name believed.
_MAX_FILES = 20_000
_MAX_NAME = 1000
_SAFE_NAME = re.compile(r"[A-Za-z0-9._+=@,() -]+(/[A-Za-z0-9._+=@,() -]+)*")
#: The hint of every answer that cannot have come from the hub.
_NOT_THE_HUB = "check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror"


@dataclass(frozen=True)
class _Job:
    """One download: ``repo`` at ``revision`` into the cache folder ``cache``."""

    repo: str
    revision: str | None
    cache: Path
    force: bool

    @property
    def folder(self) -> Path:
        """The repository's folder in the cache (``models--org--name``)."""
        return self.cache / repo_folder_name(self.repo)


def prepare_cache(
    plan: Any, use_cache: bool, env: dict[str, str], cache_dir: Path | None = None
) -> list[str]:
    """Prepare the model cache ``cache_dir`` (default:
    :attr:`aimc.core.settings.Settings.cache_dir`)
    for a launch (``env`` is the server's); notes on what was done.

    With ``use_cache`` a model complete in the cache (config, tokenizer, every shard) starts
    offline (``HF_HUB_OFFLINE=1``) on the cached snapshot; one cached incomplete is
    completed first (only the missing files are fetched), and with the hub unreachable this
    fails at once (exit 6) saying what is missing. Without ``use_cache`` the snapshot is
    downloaded afresh first.

    Raises:
        NetworkError: An incomplete cached model cannot be completed (the hub is unreachable).
    """
    if plan.local_model:
        return []
    cache = setting("cache_dir") if cache_dir is None else cache_dir
    check_cache_dir(cache)
    if not use_cache:
        download(plan.model_source, plan.model_revision, cache, force=True)
        env["HF_HUB_OFFLINE"] = "1"
        return [f"downloaded {plan.model_source} afresh into {cache}"]
    snapshot = cache_snapshot(cache, plan.model_source, plan.model_revision)
    if snapshot is None:
        return [f"{plan.model_source} is not in {cache} yet: the server downloads it"]
    missing = missing_files(snapshot)
    if missing:
        try:
            download(plan.model_source, plan.model_revision, cache)
        except NetworkError as exc:
            if "incomplete (missing" in exc.message:
                raise
            raise NetworkError(
                f"{plan.model_source} in {cache} is incomplete (missing: {', '.join(missing)})"
                " and cannot be completed: " + exc.message,
                hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
            ) from None
        snapshot = cache_snapshot(cache, plan.model_source, plan.model_revision)
        missing = missing_files(snapshot) if snapshot is not None else ["a snapshot"]
        if missing:  # the repository names its files otherwise: the server asks the hub
            return [
                f"{plan.model_source} in {cache} still lacks {', '.join(missing)} after "
                "downloading: the server starts online"
            ]
    env["HF_HUB_OFFLINE"] = "1"
    return [f"{plan.model_source} is in {cache}: the server starts offline"]


def _checked_listing(repo: str, listing: list[Any]) -> list[Any]:
    """The hub's file list, refused when a name could leave the snapshot folder (``..``,
    absolute, odd characters) or a size is absurd.

    Raises:
        NetworkError: The hub sent a name or size no repository has.
    """
    if len(listing) > _MAX_FILES:
        raise NetworkError(f"the hub lists {len(listing)} files for {repo}: refusing")
    for info in listing:
        name = str(info.filename)
        if (
            len(name) > _MAX_NAME
            or not _SAFE_NAME.fullmatch(name)
            or any(part in ("", ".", "..") for part in name.split("/"))
        ):
            raise NetworkError(
                f"the hub listed an unsafe file name for {repo}: {shorten(whole_line(name))!r}",
                hint=_NOT_THE_HUB,
            )
        size = info.file_size
        if size is not None and (not isinstance(size, int) or not 0 <= size < 2**60):
            raise NetworkError(f"the hub gave {repo}/{shorten(whole_line(name))} an absurd size")
    return listing


def _check_free_space(repo: str, cache: Path, needed: int) -> None:
    """Refuse a download larger than the free space of ``cache``'s disk.

    Raises:
        CacheError: Not enough free space (both numbers in the message).
    """
    free = shutil.disk_usage(cache).free
    if needed > free:
        raise CacheError(
            f"{repo} needs {human_size(needed)} ({needed} bytes) but {cache} has only "
            f"{human_size(free)} ({free} bytes) free",
            hint="free space with aim-engine cache prune / cache remove, or point CACHE_DIR "
            "at a larger disk",
        )


def _commit(job: _Job) -> str | None:
    """The commit to fetch: ``revision`` when it is a commit hash, else the one the hub
    names for it, checked to be a commit hash before huggingface_hub puts it in a path
    (``snapshots/<commit>``, ``refs/``). None when the hub cannot be reached, is down (5xx)
    or busy (429): the cached copy is used. With ``force`` the hub is always asked, and not
    reaching it is an error.

    Raises:
        NetworkError: The hub named no commit hash, or (with ``force``) cannot be reached.
        huggingface_hub errors: The hub answered with an error (see :func:`hub_errors`).
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import HfApi

    repo, revision = job.repo, job.revision
    pinned = revision is not None and COMMIT.fullmatch(revision) is not None
    if pinned and not job.force:
        return revision
    try:
        sha = HfApi().repo_info(repo, revision=revision, repo_type="model", timeout=30).sha
    except Exception as exc:
        if not network_failure(exc) and (http_status(exc) or 0) < 500 and http_status(exc) != 429:
            raise  # the hub answered: not found, gated, no access
        if not job.force:
            return None
        cached = cache_snapshot(job.cache, repo, revision)
        raise NetworkError(
            "the hub cannot be reached, so nothing was downloaded: "
            + mask(shorten((str(exc).strip().splitlines() or [repr(exc)])[0])),
            hint=f"a cached copy is at {cached}: use it without --force/--no-cache"
            if cached
            else "check the network, a proxy and HF_ENDPOINT",
        ) from None
    if not isinstance(sha, str) or not COMMIT.fullmatch(sha):
        raise NetworkError(
            f"the hub named no commit hash for {repo} at {revision or 'main'}",
            hint=_NOT_THE_HUB,
        )
    return revision if pinned else sha


def _write_ref(cache: Path, repo: str, revision: str, commit: str) -> None:
    """Record that ``revision`` (checked by :func:`check_revision`) names ``commit``:
    ``refs/<revision>``, what huggingface_hub writes for a branch or tag, written whole (a
    fresh temporary file renamed over it) and only inside the repository's folder: no
    folder on the way is a link.

    Raises:
        CacheError: A folder of the refs is a link.
    """
    parent = cache / repo_folder_name(repo) / "refs"
    for part in ["", *revision.split("/")[:-1]]:
        parent = parent / part if part else parent
        parent.mkdir(parents=True, exist_ok=True)
        if parent.is_symlink():
            raise CacheError(
                f"the refs of {repo} in {cache} lead out of the cache (a link)",
                hint=f"remove it (aim-engine cache remove {repo}) and download again",
            )
    ref = parent / revision.rsplit("/", 1)[-1]
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{ref.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(commit)
        os.replace(tmp, ref)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_sizes(repo: str, snapshot: Path, sizes: dict[str, int]) -> None:
    """Every file fetched into ``snapshot`` has the size the listing announced
    (``sizes``); one that does not is removed (its link and the blob it names, both in the
    cache) and nothing is reported complete.

    Raises:
        NetworkError: A file has another size than announced.
    """
    for name, size in sorted(sizes.items()):
        link = snapshot / name
        try:
            got = link.stat().st_size
        except OSError:
            continue  # missing: the caller reports what is missing
        if got == size:
            continue
        blob = link.resolve()
        with contextlib.suppress(OSError):
            if blob.parent == snapshot.parent.parent / "blobs":
                os.unlink(blob)
            os.unlink(link)
        raise NetworkError(
            f"{repo}/{shorten(name)} came with {got} bytes but the hub announced {size}: "
            "removed, the download is not complete",
            hint=_NOT_THE_HUB,
        )


def _listing(job: _Job, commit: str | None) -> list[Any] | None:
    """What the hub lists of ``commit`` to download (huggingface_hub's dry run); None when
    the hub cannot be reached (no ``commit``).

    Raises:
        NetworkError: The hub listed a file name huggingface_hub refuses (``..``).
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import DryRunError

    if commit is None:
        return None
    try:
        return snapshot_download(
            job.repo,
            revision=commit,
            cache_dir=str(job.cache),
            force_download=job.force,
            dry_run=True,
            allow_patterns=WEIGHT_PATTERNS,
            ignore_patterns=IGNORED_PATTERNS,
        )
    except DryRunError:
        return None  # unreachable since: the real call uses what is cached of the commit
    except ValueError as exc:  # huggingface_hub refuses a name with ``..`` itself
        if "filename" not in str(exc):
            raise
        raise NetworkError(
            f"the hub listed an unsafe file name for {job.repo}: "
            + mask(shorten(str(exc).strip().splitlines()[0])),
            hint=_NOT_THE_HUB,
        ) from None


def _allowed_bytes(job: _Job, commit: str | None, listing: list[Any], guard: Guard) -> int:
    """The bytes ``listing`` will download, after its checks: safe names and sizes
    (:func:`_checked_listing`), every file of ``commit`` and with a size, room on the disk;
    the files and their sizes are then what ``guard`` lets through.

    Raises:
        NetworkError: The listing names another commit, or a file without a size.
        CacheError: Not enough free space.
    """
    repo = job.repo
    _checked_listing(repo, listing)
    if any(f.commit_hash != commit for f in listing):
        raise NetworkError(
            f"the hub named another commit than {commit} for files of {repo}", hint=_NOT_THE_HUB
        )
    unknown = sorted(f.filename for f in listing if f.file_size is None)
    if unknown:
        raise NetworkError(
            f"the hub announced no size for {repo}/{shorten(unknown[0])}"
            + (f" and {len(unknown) - 1} more files" if len(unknown) > 1 else "")
            + ": nothing was downloaded",
            hint="check HF_ENDPOINT: the hub names every file's size (X-Linked-Size or "
            "Content-Length)",
        )
    total = sum(f.file_size or 0 for f in listing if f.will_download)
    _check_free_space(repo, job.cache, total)
    guard.allow({f.filename: f.file_size or 0 for f in listing})
    return total


def _fetch(job: _Job, commit: str | None, listing: list[Any] | None) -> Path:
    """The snapshot folder, filled: the folder and the ref naming it first (an interrupted
    download reads as incomplete, not broken), the weight files resumable
    (:func:`aimc.modelcache.hub_resume.fetch_resumable`), then the rest by huggingface_hub.

    Raises:
        NetworkError: Without a ``commit`` (the hub unreachable), nothing is cached.
    """
    if listing is not None and commit is not None:
        (job.folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        if commit != job.revision:
            _write_ref(job.cache, job.repo, job.revision or "main", commit)
    if listing and commit is not None and not job.force:
        sizes = {
            f.filename: f.file_size
            for f in listing
            if f.will_download and f.filename.endswith(".safetensors") and f.file_size is not None
        }
        fetch_resumable(job.repo, commit, sizes, job.cache)
    return _snapshot(job, commit)


def _snapshot(job: _Job, commit: str | None) -> Path:
    """huggingface_hub's download of ``commit`` (without one: what is cached of
    ``revision``); the snapshot folder.

    Raises:
        NetworkError: Without a ``commit``, nothing is cached.
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                job.repo,
                revision=commit or job.revision,
                cache_dir=str(job.cache),
                force_download=job.force,
                local_files_only=commit is None,
                allow_patterns=WEIGHT_PATTERNS,
                ignore_patterns=IGNORED_PATTERNS,
            )
        )
    except LocalEntryNotFoundError as exc:
        if commit is not None or isinstance(exc, IncompleteSnapshotError):
            raise
        raise NetworkError(
            f"{job.repo} is not in {job.cache} and the hub cannot be reached to download it",
            hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
        ) from None


def _check_complete(job: _Job, path: Path, listing: list[Any] | None) -> None:
    """What came has the listed sizes (:func:`_check_sizes`); without a listing (the hub
    unreachable) the cached copy lacks nothing.

    Raises:
        NetworkError: A file has another size, or the cached copy is incomplete.
    """
    if listing is not None:
        _check_sizes(
            job.repo, path, {f.filename: f.file_size or 0 for f in listing if f.will_download}
        )
        return
    missing = missing_files(path)
    if missing:
        raise NetworkError(
            f"{job.repo} in {job.cache} is incomplete (missing: {', '.join(missing)}) and the "
            "hub cannot be reached to complete it",
            hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
        )


def download(
    repo: str,
    revision: str | None,
    cache: Path,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download what vLLM reads of ``repo`` at ``revision`` into the Hugging Face cache
    ``cache``; its snapshot.

    Only :data:`aimc.modelcache.cache.WEIGHT_PATTERNS` are fetched (safetensors, index, config,
    tokenizer, generation config; never ``.bin``/``.pth`` duplicates or ``original/``).
    ``revision`` must be a plain branch, tag or commit name (:func:`check_revision`), and
    the commit the hub names for it a commit hash (:func:`_commit`); that commit is what
    every later request asks for. The hub's file list is checked first
    (:func:`_allowed_bytes`) and the bytes still to fetch are compared with the disk's
    free space (exit 5 with both numbers). Files already complete in the cache are not
    fetched again, and a weight file cut midway is resumed from the byte where it stopped
    (:func:`aimc.modelcache.hub_resume.fetch_resumable`), so an interrupted download resumes with
    what is missing. ``HF_TOKEN`` is read from the environment by ``huggingface_hub`` and
    never written anywhere. Every request, huggingface_hub's included, goes through
    :func:`aimc.modelcache.hub_guard.guarded`: the token only to the hub's own origin, each file's
    answer cut at the size the listing announced (a size not announced is exit 6 before
    any byte), the other answers and the request count bounded, Xet off; a file that came
    with another size is removed (:func:`_check_sizes`). With ``progress`` the bytes
    received are reported on stderr (:class:`aimc.modelcache.download_progress.Progress`).

    With ``force`` every file is fetched again, and the hub is asked first: when it cannot
    be reached this fails (exit 6) instead of quietly handing back the cached copy, so
    "downloaded afresh" is never said of files that were not.

    Raises:
        ConfigError: ``revision`` is not a branch, tag or commit name; see :func:`hub_errors`.
        NetworkError: The hub is unreachable (with ``force``: even if a copy is cached), or
            names no commit hash.
        CacheError: Not enough free space; see also :func:`hub_errors`.
        PermissionDeniedError: see :func:`hub_errors`.
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub.utils.tqdm import disable_progress_bars

    job = _Job(repo, revision, cache, force)
    check_revision(revision)
    check_cache_dir(cache)
    disable_progress_bars()
    with hub_errors(repo, cache), guarded(repo) as guard:
        commit = guard.commit = _commit(job)
        cache.mkdir(parents=True, exist_ok=True)
        listing = _listing(job, commit)  # None: the hub cannot be reached, the cached copy
        total = _allowed_bytes(job, commit, listing, guard) if listing is not None else 0
        with Progress(repo, total, job.folder / "blobs", enabled=progress and total > 0):
            path = _fetch(job, commit, listing)
    _check_complete(job, path, listing)
    # huggingface_hub's listing of every file of the commit (``trees/<commit>.json``) would
    # make a reader without these patterns (the server) call the snapshot incomplete.
    tree = job.folder / "trees" / f"{path.name}.json"
    with contextlib.suppress(OSError):
        if not tree.is_symlink():
            tree.unlink(missing_ok=True)
    return path
