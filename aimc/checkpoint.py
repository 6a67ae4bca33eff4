"""The model cache and checkpoints: sizes from safetensors headers, cache preparation.

Takes a recipe's weight sources and the Hugging Face cache folder (``CACHE_DIR``); hands on
{source: bytes of weights} for the checkpoints present locally. Only the JSON header at the
start of each ``*.safetensors`` file is read (8-byte length + header), never the tensors,
and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aimc.safety import mask, shorten

__all__ = [
    "cache_snapshot",
    "check_cache_dir",
    "checkpoint_bytes",
    "download",
    "hub_errors",
    "local_sizes",
    "prepare_cache",
]

_MAX_HEADER = 100 * 2**20


def _tensor_bytes(file: Path) -> int:
    with file.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{file}: header of {length} bytes")
        header = json.loads(f.read(length))
    return sum(
        int(v["data_offsets"][1]) - int(v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__"
    )


def checkpoint_bytes(folder: Path) -> int | None:
    """Total tensor bytes of the ``*.safetensors`` files in ``folder``; None if it has none
    or one cannot be read."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        return sum(_tensor_bytes(f) for f in files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error):
        return None


#: What a ref file in the cache may name: a commit hash (never a path).
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: Repository ids and revisions aimc looks up in the cache (no path separators but ``/``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,200}")


def cache_snapshot(cache_dir: Path, repo: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of ``repo`` in a Hugging Face cache (``models--org--name``).

    A ref that is not a commit hash (binary, a path, empty) counts as absent.
    """
    if (
        not _NAME.fullmatch(repo)
        or ".." in repo
        or (revision is not None and (not _NAME.fullmatch(revision) or ".." in revision))
    ):
        return None
    base = cache_dir / f"models--{repo.replace('/', '--')}"
    ref = base / "refs" / (revision or "main")
    try:
        commit = ref.read_bytes()[:100].decode("ascii").strip() if ref.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None
    if commit is not None:
        snapshot = base / "snapshots" / commit
        return snapshot if _COMMIT.fullmatch(commit) and snapshot.is_dir() else None
    if revision and _COMMIT.fullmatch(revision) and (base / "snapshots" / revision).is_dir():
        return base / "snapshots" / revision
    return None


def check_cache_dir(folder: Path) -> None:
    """Refuse a ``CACHE_DIR`` that cannot be a cache folder (a file, unreadable).

    Raises:
        CacheError: ``folder`` exists and is not a readable folder.
    """
    from aimc.errors import CacheError

    try:
        if folder.exists() and not folder.is_dir():
            raise CacheError(
                f"CACHE_DIR {folder} is not a folder", hint="point CACHE_DIR at a folder"
            )
    except OSError as exc:
        raise CacheError(f"cannot read CACHE_DIR {folder}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def hub_errors(repo: str, folder: Path) -> Iterator[None]:
    """Turn what ``huggingface_hub`` raises while filling ``folder`` into aimc's errors.

    ============================================  ===========================
    what went wrong                               error (exit code)
    ============================================  ===========================
    invalid repository id or revision             ConfigError (2)
    repository or revision not found              ConfigError (2)
    gated repository, no or wrong ``HF_TOKEN``    PermissionDeniedError (7)
    hub unreachable, proxy, bad ``HF_ENDPOINT``   NetworkError (6)
    cache not writable, full, or broken           CacheError (5)
    ============================================  ===========================
    """
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from aimc.errors import (
        CacheError,
        ConfigError,
        NetworkError,
        PermissionDeniedError,
    )

    def first_line(exc: BaseException) -> str:
        return mask(shorten(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)))

    try:
        yield
    except HFValidationError as exc:
        raise ConfigError(
            f"{shorten(repo)!r} is not a valid repository id: {first_line(exc)}"
        ) from None
    except GatedRepoError:
        raise PermissionDeniedError(
            f"{repo} is gated: access needs a token of an account that accepted its terms",
            hint="export HF_TOKEN=... (it is read from the environment, never stored)",
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ConfigError(
            f"{repo} was not found on the hub: {first_line(exc)}",
            hint="check the id and revision; private repositories need HF_TOKEN",
        ) from None
    except LocalEntryNotFoundError as exc:
        raise NetworkError(
            f"{repo} is not in {folder} and cannot be downloaded: {first_line(exc)}",
            hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
        ) from None
    except HfHubHTTPError as exc:
        raise NetworkError(f"download of {repo} failed: {first_line(exc)}") from None
    except UnicodeDecodeError:
        raise CacheError(
            f"the cache entry of {repo} in {folder} is broken (a ref is not text)",
            hint="remove it and download again",
        ) from None
    except Exception as exc:
        if not _network_failure(exc):
            raise _cache_failure(exc, folder) from None
        raise NetworkError(
            f"download of {repo} failed: {type(exc).__name__}: {first_line(exc)}",
            hint="check the network, a proxy and HF_ENDPOINT",
        ) from None


def _network_failure(exc: BaseException) -> bool:
    """A connection, proxy, TLS or protocol failure (the standard library's or the HTTP
    client's that huggingface_hub uses, which share no base class with OSError)."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.startswith(
        ("httpx", "httpcore", "requests", "urllib3")
    )


def _cache_failure(exc: Exception, folder: Path) -> Exception:
    """What a non-network failure while filling the cache becomes."""
    from aimc.errors import CacheError, NetworkError, PermissionDeniedError

    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return PermissionDeniedError(f"cannot write the model cache {folder}: {exc.strerror}")
        return CacheError(f"cannot use the model cache {folder}: {mask(shorten(str(exc)))}")
    if isinstance(exc, ValueError) and "HF_ENDPOINT" in str(exc):
        return NetworkError(f"HF_ENDPOINT is not usable: {mask(shorten(str(exc)))}")
    return exc


def local_sizes(sources: Iterable[tuple[str, str | None, bool]], cache_dir: Path) -> dict[str, int]:
    """{source: bytes} for (source, revision, is_local_path) checkpoints found locally."""
    sizes: dict[str, int] = {}
    for source, revision, local in sources:
        folder = Path(source) if local else cache_snapshot(cache_dir, source, revision)
        size = checkpoint_bytes(folder) if folder is not None and folder.is_dir() else None
        if size:
            sizes[source] = size
    return sizes


def prepare_cache(
    plan: Any, use_cache: bool, env: dict[str, str], cache_dir: Path | None = None
) -> list[str]:
    """Prepare the model cache ``cache_dir`` (default: :attr:`aimc.settings.Settings.cache_dir`)
    for a launch (``env`` is the server's); notes on what was done.

    With ``use_cache`` a model complete in the cache (config, tokenizer, every shard) starts
    offline (``HF_HUB_OFFLINE=1``) on the cached snapshot; one cached incomplete is
    completed first (only the missing files are fetched), and with the hub unreachable this
    fails at once (exit 6) saying what is missing. Without ``use_cache`` the snapshot is
    downloaded afresh first.

    Raises:
        NetworkError: An incomplete cached model cannot be completed (the hub is unreachable).
    """
    from aimc.cache import missing_files
    from aimc.errors import NetworkError
    from aimc.settings import setting

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


#: Most files a repository may list, and the longest name believed.
_MAX_FILES = 20_000
_MAX_NAME = 1000
_SAFE_NAME = re.compile(r"[A-Za-z0-9._+=@,() -]+(/[A-Za-z0-9._+=@,() -]+)*")


def _checked_listing(repo: str, listing: list[Any]) -> list[Any]:
    """The hub's file list, refused when a name could leave the snapshot folder (``..``,
    absolute, odd characters) or a size is absurd.

    Raises:
        NetworkError: The hub sent a name or size no repository has.
    """
    from aimc.errors import NetworkError
    from aimc.templating import one_line

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
                f"the hub listed an unsafe file name for {repo}: {shorten(one_line(name))!r}",
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
            )
        size = info.file_size
        if size is not None and (not isinstance(size, int) or not 0 <= size < 2**60):
            raise NetworkError(f"the hub gave {repo}/{shorten(one_line(name))} an absurd size")
    return listing


def _check_free_space(repo: str, cache: Path, needed: int) -> None:
    """Refuse a download larger than the free space of ``cache``'s disk.

    Raises:
        CacheError: Not enough free space (both numbers in the message).
    """
    import shutil

    from aimc.cache import human_size
    from aimc.errors import CacheError

    free = shutil.disk_usage(cache).free
    if needed > free:
        raise CacheError(
            f"{repo} needs {human_size(needed)} ({needed} bytes) but {cache} has only "
            f"{human_size(free)} ({free} bytes) free",
            hint="free space with aim-engine cache prune / cache remove, or point CACHE_DIR "
            "at a larger disk",
        )


#: What a blob may be named (an ETag: a git or LFS hash); anything else is left to
#: huggingface_hub's own download.
_ETAG = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _resumable(repo: str, commit: str, names: list[str], cache: Path) -> None:
    """Fetch the weight files ``names`` of ``repo`` at ``commit`` into the cache's blobs,
    resuming a file cut midway by a previous run (``Range``) from its
    ``blobs/<etag>.resume.incomplete``; huggingface_hub then only links them.

    The part file is held under the blob's lock in ``.locks`` (the one huggingface_hub and
    ``cache prune`` take). The hub may not send more bytes than the size it announced: a
    response that does, or a file that ends short, is a network error, and a response that
    ignores ``Range`` (200) starts the file over.

    Raises:
        NetworkError: The hub sent more or fewer bytes than it announced.
        huggingface_hub errors: see :func:`hub_errors` (called inside it).
    """
    import os
    from urllib.parse import urlsplit

    from filelock import FileLock
    from huggingface_hub import (
        get_hf_file_metadata,
        get_session,
        hf_hub_url,
        hf_raise_for_status,
    )
    from huggingface_hub.utils._headers import build_hf_headers

    from aimc.errors import NetworkError

    folder = cache / f"models--{repo.replace('/', '--')}"
    blobs = folder / "blobs"
    locks = cache / ".locks" / folder.name
    for name in names:
        url = hf_hub_url(repo, name, revision=commit)
        meta = get_hf_file_metadata(url)
        etag, size = meta.etag, meta.size
        if etag is None or not _ETAG.fullmatch(etag) or size is None or not 0 <= size < 2**60:
            continue  # huggingface_hub's own download checks it
        blob = blobs / etag
        if blob.exists():
            continue
        blobs.mkdir(parents=True, exist_ok=True)
        locks.mkdir(parents=True, exist_ok=True)
        part = blobs / f"{etag}.resume.incomplete"
        headers = build_hf_headers()
        if urlsplit(meta.location).netloc != urlsplit(url).netloc:
            headers.pop("authorization", None)  # the token never leaves the hub
            headers.pop("Authorization", None)
        with FileLock(str(locks / f"{etag}.lock")):
            if blob.exists():
                continue
            have = part.stat().st_size if part.is_file() and not part.is_symlink() else 0
            if have > size:
                have = 0
            if have < size:
                headers["Range"] = f"bytes={have}-"
                with get_session().stream(
                    "GET", meta.location, headers=headers, follow_redirects=True, timeout=60
                ) as response:
                    hf_raise_for_status(response)
                    mode = "ab" if response.status_code == 206 and have else "wb"
                    written = have if mode == "ab" else 0
                    with part.open(mode) as out:
                        for chunk in response.iter_bytes():
                            written += len(chunk)
                            if written > size:
                                raise NetworkError(
                                    f"the hub sent more than the {size} bytes it announced "
                                    f"for {repo}/{name}"
                                )
                            out.write(chunk)
                            out.flush()
            got = part.stat().st_size
            if got != size:
                raise NetworkError(
                    f"{repo}/{name} ended after {got} of {size} bytes",
                    hint="run the download again: it resumes where it stopped",
                )
            os.chmod(part, 0o644)
            os.replace(part, blob)


def download(
    repo: str,
    revision: str | None,
    cache: Path,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download what vLLM reads of ``repo`` at ``revision`` into the Hugging Face cache
    ``cache``; its snapshot.

    Only :data:`aimc.cache.WEIGHT_PATTERNS` are fetched (safetensors, index, config,
    tokenizer, generation config; never ``.bin``/``.pth`` duplicates or ``original/``).
    The hub's file list is checked first (:func:`_checked_listing`) and the bytes still to
    fetch are compared with the disk's free space (exit 5 with both numbers). Files
    already complete in the cache are not fetched again, and a weight file cut midway is
    resumed from the byte where it stopped (:func:`_resumable`), so an interrupted
    download resumes with what is missing. ``HF_TOKEN`` is read from the environment by
    ``huggingface_hub`` and never written anywhere. With ``progress`` the bytes received
    are reported on stderr (:class:`aimc.download_progress.Progress`).

    With ``force`` every file is fetched again, and the hub is asked first: when it cannot
    be reached this fails (exit 6) instead of quietly handing back the cached copy, so
    "downloaded afresh" is never said of files that were not.

    Raises:
        NetworkError: The hub is unreachable (with ``force``: even if a copy is cached).
        CacheError: Not enough free space; see also :func:`hub_errors`.
        ConfigError, PermissionDeniedError: see :func:`hub_errors`.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import DryRunError
    from huggingface_hub.utils.tqdm import disable_progress_bars

    from aimc.cache import IGNORED_PATTERNS, WEIGHT_PATTERNS
    from aimc.download_progress import Progress
    from aimc.errors import NetworkError

    check_cache_dir(cache)
    disable_progress_bars()
    with hub_errors(repo, cache):
        if force:
            try:
                HfApi().repo_info(repo, revision=revision, repo_type="model", timeout=30)
            except Exception as exc:
                if not _network_failure(exc):
                    raise
                cached = cache_snapshot(cache, repo, revision)
                raise NetworkError(
                    f"the hub cannot be reached, so nothing was downloaded: {exc}",
                    hint=f"a cached copy is at {cached}: use it without --force/--no-cache"
                    if cached
                    else "check the network, a proxy and HF_ENDPOINT",
                ) from None
        cache.mkdir(parents=True, exist_ok=True)
        try:
            listing = snapshot_download(
                repo,
                revision=revision,
                cache_dir=str(cache),
                force_download=force,
                dry_run=True,
                allow_patterns=WEIGHT_PATTERNS,
                ignore_patterns=IGNORED_PATTERNS,
            )
        except DryRunError:
            listing = None  # offline or unreachable: the real call says which
        except ValueError as exc:  # huggingface_hub refuses a name with ``..`` itself
            if "filename" not in str(exc):
                raise
            raise NetworkError(
                f"the hub listed an unsafe file name for {repo}: "
                + mask(shorten(str(exc).strip().splitlines()[0])),
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
            ) from None
        total = 0
        if listing is not None:
            _checked_listing(repo, listing)
            total = sum(f.file_size or 0 for f in listing if f.will_download)
            _check_free_space(repo, cache, total)
        folder = cache / f"models--{repo.replace('/', '--')}" / "blobs"
        with Progress(repo, total, folder, enabled=progress and total > 0):
            if listing and not force and _COMMIT.fullmatch(listing[0].commit_hash):
                commit = listing[0].commit_hash
                # The snapshot folder first: the ref the listing wrote names it, so an
                # interrupted download reads as incomplete (what is missing), not broken.
                (folder.parent / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
                weights = [f.filename for f in listing if f.will_download]
                weights = sorted(n for n in weights if n.endswith(".safetensors"))
                _resumable(repo, commit, weights, cache)
            path = snapshot_download(
                repo,
                revision=revision,
                cache_dir=str(cache),
                force_download=force,
                allow_patterns=WEIGHT_PATTERNS,
                ignore_patterns=IGNORED_PATTERNS,
            )
    if listing is None:
        from aimc.cache import missing_files

        missing = missing_files(Path(path))
        if missing:
            raise NetworkError(
                f"{repo} in {cache} is incomplete (missing: {', '.join(missing)}) and the hub "
                "cannot be reached to complete it",
                hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
            )
    # huggingface_hub's listing of every file of the commit (``trees/<commit>.json``) would
    # make a reader without these patterns (the server) call the snapshot incomplete.
    tree = cache / f"models--{repo.replace('/', '--')}" / "trees" / f"{Path(path).name}.json"
    with contextlib.suppress(OSError):
        if not tree.is_symlink():
            tree.unlink(missing_ok=True)
    return Path(path)
