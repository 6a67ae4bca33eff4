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

from aimc.diagnostics import whole_line
from aimc.safety import mask, shorten

__all__ = [
    "cache_snapshot",
    "check_cache_dir",
    "check_revision",
    "checkpoint_bytes",
    "download",
    "hub_errors",
    "local_sizes",
    "prepare_cache",
]

_MAX_HEADER = 100 * 2**20


def _tensor_bytes(file: Path, root: Path | None = None) -> int:
    from aimc.cache_files import open_regular

    with open_regular(file, root) as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{file}: header of {length} bytes")
        header = json.loads(f.read(length))
    return sum(
        int(v["data_offsets"][1]) - int(v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__"
    )


def checkpoint_bytes(folder: Path, root: Path | None = None) -> int | None:
    """Total tensor bytes of the ``*.safetensors`` files in ``folder``; None if it has none
    or one cannot be read. Only regular files are read (never a FIFO or a device), and with
    ``root`` (a cached snapshot's repository folder) only those inside it: a link out of
    the cache is never followed (:func:`aimc.cache.open_regular`)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        return sum(_tensor_bytes(f, root) for f in files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error):
        return None


#: What a ref file in the cache may name: a commit hash (never a path).
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: Repository ids aimc looks up in the cache (no path separators but ``/``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,200}")
#: A revision: a branch, tag or commit name as git allows it, never a path (huggingface_hub
#: writes ``refs/<revision>``): ``/``-separated parts of letters, digits, ``_`` and ``-``
#: with single dots inside, so no part is ``.`` or ``..`` and none starts with a dot.
#: The recipe schema's ``weights.revision`` pattern is the same.
_PART = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
_REVISION = re.compile(rf"{_PART}(?:/{_PART})*")
_MAX_REVISION = 200


def check_revision(revision: str | None) -> None:
    """Refuse a revision that is not a plain branch, tag or commit name (``..``, absolute,
    control characters, too long) before it reaches ``huggingface_hub``, which would write
    the hub's answer to ``refs/<revision>`` wherever that leads.

    Raises:
        ConfigError: ``revision`` is not a branch, tag or commit name.
    """
    from aimc.errors import ConfigError

    if revision is None or (len(revision) <= _MAX_REVISION and _REVISION.fullmatch(revision)):
        return
    raise ConfigError(
        f"revision {shorten(whole_line(revision))!r} is not a branch, tag or commit name",
        hint="a revision is a name such as main, v1.0 or refs/pr/1, or a 40-character commit "
        "hash; never a path",
    )


def cache_snapshot(cache_dir: Path, repo: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of ``repo`` in a Hugging Face cache (``models--org--name``).

    A ref that is not a commit hash (binary, a path, empty) counts as absent.
    """
    if (
        not _NAME.fullmatch(repo)
        or ".." in repo
        or (
            revision is not None
            and (len(revision) > _MAX_REVISION or not _REVISION.fullmatch(revision))
        )
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
    """Turn what ``huggingface_hub`` raises while filling ``folder`` into aimc's errors
    (:func:`_hub_error`); aimc's own errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        raise _hub_error(exc, repo, folder) from None


def _hub_error(exc: Exception, repo: str, folder: Path) -> Exception:
    """The aimc error for what ``huggingface_hub`` raised while filling ``folder``.

    ============================================  ===========================
    what went wrong                               error (exit code)
    ============================================  ===========================
    invalid repository id or revision             ConfigError (2)
    repository or revision not found              ConfigError (2)
    gated repository, no or wrong ``HF_TOKEN``    PermissionDeniedError (7)
    hub unreachable, proxy, bad ``HF_ENDPOINT``   NetworkError (6)
    an answer not shaped as the hub's (no         NetworkError (6)
    ``id``, not JSON), another size than
    announced, past a bound (:mod:`hub_guard`)
    cache not writable, full, or broken           CacheError (5)
    ============================================  ===========================

    ``huggingface_hub`` wraps the failure of a forced download's first request in a bare
    ``ValueError("Force download failed ...")``: its cause is what is mapped.
    """
    from huggingface_hub.errors import (
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from aimc.errors import (
        AimcError,
        CacheError,
        ConfigError,
        NetworkError,
        PermissionDeniedError,
    )

    def first_line(exc: BaseException) -> str:
        return mask(shorten(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)))

    for _ in range(8):  # a forced download's ValueError, and what it wraps
        if type(exc) is not ValueError or not isinstance(exc.__cause__, Exception):
            break
        exc = exc.__cause__
    if isinstance(exc, AimcError):
        return exc
    if isinstance(exc, HFValidationError):
        return ConfigError(f"{shorten(repo)!r} is not a valid repository id: {first_line(exc)}")
    if isinstance(exc, GatedRepoError):
        return PermissionDeniedError(
            f"{repo} is gated: access needs a token of an account that accepted its terms",
            hint="export HF_TOKEN=... (it is read from the environment, never stored)",
        )
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
        return ConfigError(
            f"{repo} was not found on the hub: {first_line(exc)}",
            hint="check the id and revision; private repositories need HF_TOKEN",
        )
    if isinstance(exc, LocalEntryNotFoundError):
        return NetworkError(
            f"{repo} is not in {folder} and cannot be downloaded: {first_line(exc)}",
            hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
        )
    if isinstance(exc, HfHubHTTPError) and _status(exc) == 401:
        return PermissionDeniedError(
            f"the hub refused the credentials for {repo} (401): check HF_TOKEN",
            hint="HF_TOKEN (read from the environment) must be a valid token of an account "
            "with access to the repository",
        )
    if isinstance(exc, HfHubHTTPError):
        return NetworkError(f"download of {repo} failed: {first_line(exc)}")
    if isinstance(exc, FileMetadataError):  # an answer without the hub's headers
        return NetworkError(
            f"download of {repo} failed: {first_line(exc)}",
            hint="check HF_ENDPOINT and a proxy: the answer did not come from the hub",
        )
    if isinstance(exc, (KeyError, TypeError, json.JSONDecodeError)):  # an answer's shape
        return NetworkError(
            f"the hub's answer for {repo} is not what the hub sends "
            f"({type(exc).__name__}: {first_line(exc)})",
            hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
        )
    if isinstance(exc, UnicodeDecodeError):
        return CacheError(
            f"the cache entry of {repo} in {folder} is broken (a ref is not text)",
            hint="remove it and download again",
        )
    if isinstance(exc, OSError) and exc.errno is None and "Consistency check" in str(exc):
        return NetworkError(  # huggingface_hub: the file came with another size
            f"download of {repo} failed: the hub sent another size than it announced "
            f"({first_line(exc)})",
            hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
        )
    if not _network_failure(exc):
        return _cache_failure(exc, folder)
    return NetworkError(
        f"download of {repo} failed: {type(exc).__name__}: {first_line(exc)}",
        hint="check the network, a proxy and HF_ENDPOINT",
    )


def _status(exc: BaseException) -> int | None:
    """The HTTP status of the answer ``exc`` carries, if any."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


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
        root = None if local or folder is None else folder.parent.parent
        size = checkpoint_bytes(folder, root) if folder is not None and folder.is_dir() else None
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
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
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


def _open_part(part: Path) -> int:
    """A descriptor of the part file ``part`` (``blobs/<etag>.resume.incomplete``) open for
    reading and writing: a regular file, opened without following a link and without
    waiting on a FIFO (``O_NOFOLLOW | O_NONBLOCK``, then checked on the descriptor).
    Anything else found there (a link, a FIFO, an empty folder) is removed, never written
    through: it lies in the cache's blobs folder, which aimc fills, and the file starts over.

    Raises:
        CacheError: What is there cannot be removed (a folder holding files).
    """
    import os
    import stat

    from aimc.errors import CacheError

    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for _ in range(3):
        try:
            st: os.stat_result | None = os.lstat(part)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            try:
                (os.rmdir if stat.S_ISDIR(st.st_mode) else os.unlink)(part)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise CacheError(
                    f"{part} is not a file and cannot be removed: {exc.strerror}",
                    hint="remove it, then download again",
                ) from None
            continue
        try:
            fd = os.open(part, flags, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                continue  # replaced meanwhile: look again
            raise
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.set_blocking(fd, True)
            return fd
        os.close(fd)
    raise CacheError(f"{part} keeps changing: is another program writing the cache?")


def _resumable(repo: str, commit: str, sizes: dict[str, int], cache: Path) -> None:
    """Fetch the weight files of ``repo`` at ``commit`` (``sizes``: {name: bytes} from the
    listing whose total passed the free-space check) into the cache's blobs, resuming a
    file cut midway by a previous run (``Range``) from its
    ``blobs/<etag>.resume.incomplete``; huggingface_hub then only links them.

    The part file is held under the blob's lock in ``.locks`` (the one huggingface_hub and
    ``cache prune`` take) and opened by :func:`_open_part` (never through a link, never a
    FIFO). The size is the listing's: the hub's answer to the request made here must name
    the same, and no more bytes than it are written. A response that sends more, or a file
    that ends short, is a network error, and a response that ignores ``Range`` (200) starts
    the file over.

    Raises:
        NetworkError: The hub named another size, or sent more or fewer bytes than it.
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

    from aimc.errors import CacheError, NetworkError

    folder = cache / f"models--{repo.replace('/', '--')}"
    blobs = folder / "blobs"
    locks = cache / ".locks" / folder.name
    for name, size in sorted(sizes.items()):
        url = hf_hub_url(repo, name, revision=commit)
        meta = get_hf_file_metadata(url)
        etag = meta.etag
        if etag is None or not _ETAG.fullmatch(etag):
            continue  # huggingface_hub's own download checks it
        if meta.size != size:
            raise NetworkError(
                f"the hub listed {size} bytes for {repo}/{name}, then announced {meta.size}",
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
            )
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
            with os.fdopen(_open_part(part), "r+b") as out:
                have = os.fstat(out.fileno()).st_size
                if have > size:
                    have = 0
                if have < size:
                    headers["Range"] = f"bytes={have}-"
                    with get_session().stream(
                        "GET", meta.location, headers=headers, follow_redirects=True, timeout=60
                    ) as response:
                        hf_raise_for_status(response)
                        written = have if response.status_code == 206 else 0
                        out.seek(written)
                        out.truncate()
                        for chunk in response.iter_bytes():
                            written += len(chunk)
                            if written > size:
                                raise NetworkError(
                                    f"the hub sent more than the {size} bytes it announced "
                                    f"for {repo}/{name}"
                                )
                            out.write(chunk)
                            out.flush()
                got = os.fstat(out.fileno()).st_size
                if got != size:
                    raise NetworkError(
                        f"{repo}/{name} ended after {got} of {size} bytes",
                        hint="run the download again: it resumes where it stopped",
                    )
                os.fchmod(out.fileno(), 0o644)
                written_file = os.fstat(out.fileno())
            now = os.lstat(part)
            if (now.st_dev, now.st_ino) != (written_file.st_dev, written_file.st_ino):
                raise CacheError(f"{part} was replaced while it was written: nothing was kept")
            os.replace(part, blob)


def _commit(repo: str, revision: str | None, cache: Path, force: bool) -> str | None:
    """The commit to fetch: ``revision`` when it is a commit hash, else the one the hub
    names for it, checked to be a commit hash before huggingface_hub puts it in a path
    (``snapshots/<commit>``, ``refs/``). None when the hub cannot be reached, is down (5xx)
    or busy (429): the cached copy is used. With ``force`` the hub is always asked, and not
    reaching it is an error.

    Raises:
        NetworkError: The hub named no commit hash, or (with ``force``) cannot be reached.
        huggingface_hub errors: The hub answered with an error (see :func:`hub_errors`).
    """
    from huggingface_hub import HfApi

    from aimc.errors import NetworkError

    pinned = revision is not None and _COMMIT.fullmatch(revision) is not None
    if pinned and not force:
        return revision
    try:
        sha = HfApi().repo_info(repo, revision=revision, repo_type="model", timeout=30).sha
    except Exception as exc:
        if not _network_failure(exc) and (_status(exc) or 0) < 500 and _status(exc) != 429:
            raise  # the hub answered: not found, gated, no access
        if not force:
            return None
        cached = cache_snapshot(cache, repo, revision)
        raise NetworkError(
            "the hub cannot be reached, so nothing was downloaded: "
            + mask(shorten((str(exc).strip().splitlines() or [repr(exc)])[0])),
            hint=f"a cached copy is at {cached}: use it without --force/--no-cache"
            if cached
            else "check the network, a proxy and HF_ENDPOINT",
        ) from None
    if not isinstance(sha, str) or not _COMMIT.fullmatch(sha):
        raise NetworkError(
            f"the hub named no commit hash for {repo} at {revision or 'main'}",
            hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
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
    import os
    import tempfile

    from aimc.errors import CacheError

    folder = cache / f"models--{repo.replace('/', '--')}"
    parent = folder / "refs"
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
    import os

    from aimc.errors import NetworkError

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
            hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
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

    Only :data:`aimc.cache.WEIGHT_PATTERNS` are fetched (safetensors, index, config,
    tokenizer, generation config; never ``.bin``/``.pth`` duplicates or ``original/``).
    ``revision`` must be a plain branch, tag or commit name (:func:`check_revision`), and
    the commit the hub names for it a commit hash (:func:`_commit`); that commit is what
    every later request asks for. The hub's file list is checked first
    (:func:`_checked_listing`) and the bytes still to fetch are compared with the disk's
    free space (exit 5 with both numbers). Files already complete in the cache are not
    fetched again, and a weight file cut midway is resumed from the byte where it stopped
    (:func:`_resumable`), so an interrupted download resumes with what is missing.
    ``HF_TOKEN`` is read from the environment by ``huggingface_hub`` and never written
    anywhere. Every request, huggingface_hub's included, goes through
    :func:`aimc.hub_guard.guarded`: the token only to the hub's own origin, each file's
    answer cut at the size the listing announced (a size not announced is exit 6 before
    any byte), the other answers and the request count bounded, Xet off; a file that came
    with another size is removed (:func:`_check_sizes`). With ``progress`` the bytes
    received are reported on stderr (:class:`aimc.download_progress.Progress`).

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
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        DryRunError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
    )
    from huggingface_hub.utils.tqdm import disable_progress_bars

    from aimc.cache import IGNORED_PATTERNS, WEIGHT_PATTERNS
    from aimc.download_progress import Progress
    from aimc.errors import NetworkError
    from aimc.hub_guard import guarded

    check_revision(revision)
    check_cache_dir(cache)
    disable_progress_bars()
    with hub_errors(repo, cache), guarded(repo) as guard:
        commit = guard.commit = _commit(repo, revision, cache, force)
        cache.mkdir(parents=True, exist_ok=True)
        listing = None  # the hub cannot be reached: the cached copy, if any
        if commit is not None:
            try:
                listing = snapshot_download(
                    repo,
                    revision=commit,
                    cache_dir=str(cache),
                    force_download=force,
                    dry_run=True,
                    allow_patterns=WEIGHT_PATTERNS,
                    ignore_patterns=IGNORED_PATTERNS,
                )
            except DryRunError:
                pass  # unreachable since: the real call uses what is cached of the commit
            except ValueError as exc:  # huggingface_hub refuses a name with ``..`` itself
                if "filename" not in str(exc):
                    raise
                raise NetworkError(
                    f"the hub listed an unsafe file name for {repo}: "
                    + mask(shorten(str(exc).strip().splitlines()[0])),
                    hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful "
                    "mirror",
                ) from None
        total = 0
        if listing is not None:
            _checked_listing(repo, listing)
            if any(f.commit_hash != commit for f in listing):
                raise NetworkError(
                    f"the hub named another commit than {commit} for files of {repo}",
                    hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful "
                    "mirror",
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
            _check_free_space(repo, cache, total)
            guard.allow({f.filename: f.file_size or 0 for f in listing})
        folder = cache / f"models--{repo.replace('/', '--')}" / "blobs"
        with Progress(repo, total, folder, enabled=progress and total > 0):
            if listing is not None and commit is not None:
                # The snapshot folder first, then the ref naming it: an interrupted download
                # reads as incomplete (what is missing), not broken.
                (folder.parent / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
                if commit != revision:
                    _write_ref(cache, repo, revision or "main", commit)
            if listing and commit is not None and not force:
                sizes = {
                    f.filename: f.file_size
                    for f in listing
                    if f.will_download
                    and f.filename.endswith(".safetensors")
                    and f.file_size is not None
                }
                _resumable(repo, commit, sizes, cache)
            try:
                path = snapshot_download(
                    repo,
                    revision=commit or revision,
                    cache_dir=str(cache),
                    force_download=force,
                    local_files_only=commit is None,
                    allow_patterns=WEIGHT_PATTERNS,
                    ignore_patterns=IGNORED_PATTERNS,
                )
            except LocalEntryNotFoundError as exc:
                if commit is not None or isinstance(exc, IncompleteSnapshotError):
                    raise
                raise NetworkError(
                    f"{repo} is not in {cache} and the hub cannot be reached to download it",
                    hint="check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
                ) from None
    if listing is not None:
        _check_sizes(
            repo, Path(path), {f.filename: f.file_size or 0 for f in listing if f.will_download}
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
