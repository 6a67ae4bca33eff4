"""Weight files fetched into the cache so that a download cut midway resumes.

Takes a repository, the commit to fetch, {file name: bytes} of its weight files (from the
listing whose total passed the free-space check) and the cache folder; hands on their
blobs in ``models--org--name/blobs/<etag>``, each written through a part file
``<etag>.resume.incomplete`` that a later run continues from the byte where it stopped
(``Range``); ``huggingface_hub`` then only links them. Every part file is held under its
blob's lock in ``.locks`` (the one ``huggingface_hub`` and ``cache prune`` take), opened
without following a link and never waiting on a FIFO, and written with no more bytes than
the listing announced. Run inside :func:`aimc.modelcache.hub_guard.guarded` and
:func:`aimc.modelcache.hub_errors.hub_errors`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from filelock import FileLock

from aimc.core.errors import CacheError, NetworkError
from aimc.modelcache.cache_files import repo_folder_name

__all__ = ["fetch_resumable"]

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


def fetch_resumable(repo: str, commit: str, sizes: dict[str, int], cache: Path) -> None:
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
        huggingface_hub errors: see :func:`aimc.modelcache.hub_errors.hub_errors` (called inside
        it).
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    folder = cache / repo_folder_name(repo)
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
        _fetch(f"{repo}/{name}", meta, url, size, folder, cache / ".locks" / folder.name)


def _fetch(what: str, meta: Any, url: str, size: int, folder: Path, locks: Path) -> None:
    """The blob ``meta.etag`` of the repository ``folder``, fetched from ``meta.location``
    through its part file under its lock, unless it is there already; ``what`` names the
    file in messages."""
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub.utils._headers import build_hf_headers

    blobs = folder / "blobs"
    blob = blobs / meta.etag
    if blob.exists():
        return
    blobs.mkdir(parents=True, exist_ok=True)
    locks.mkdir(parents=True, exist_ok=True)
    part = blobs / f"{meta.etag}.resume.incomplete"
    headers = build_hf_headers()
    if urlsplit(meta.location).netloc != urlsplit(url).netloc:
        headers.pop("authorization", None)  # the token never leaves the hub
        headers.pop("Authorization", None)
    with FileLock(str(locks / f"{meta.etag}.lock")):
        if blob.exists():
            return
        with os.fdopen(_open_part(part), "r+b") as out:
            _fill(out, meta.location, headers, size, what)
            written_file = os.fstat(out.fileno())
        now = os.lstat(part)
        if (now.st_dev, now.st_ino) != (written_file.st_dev, written_file.st_ino):
            raise CacheError(f"{part} was replaced while it was written: nothing was kept")
        os.replace(part, blob)


def _fill(out: BinaryIO, location: str, headers: dict[str, str], size: int, what: str) -> None:
    """The part file ``out`` completed to ``size`` bytes from ``location`` (resumed where
    it stopped; one longer than ``size`` starts over), readable by all.

    Raises:
        NetworkError: The file ended short.
    """
    have = os.fstat(out.fileno()).st_size
    if have > size:
        have = 0
    if have < size:
        headers["Range"] = f"bytes={have}-"
        _stream(out, location, headers, have, size, what)
    got = os.fstat(out.fileno()).st_size
    if got != size:
        raise NetworkError(
            f"{what} ended after {got} of {size} bytes",
            hint="run the download again: it resumes where it stopped",
        )
    os.fchmod(out.fileno(), 0o644)


def _stream(
    out: BinaryIO, location: str, headers: dict[str, str], have: int, size: int, what: str
) -> None:
    """The answer to a ``GET`` of ``location`` written into ``out`` after its first
    ``have`` bytes (from the start when the hub ignored ``Range``), never past ``size``.

    Raises:
        NetworkError: The hub sent more than ``size`` bytes.
    """
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import get_session, hf_raise_for_status

    with get_session().stream(
        "GET", location, headers=headers, follow_redirects=True, timeout=60
    ) as response:
        hf_raise_for_status(response)
        written = have if response.status_code == 206 else 0
        out.seek(written)
        out.truncate()
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > size:
                raise NetworkError(
                    f"the hub sent more than the {size} bytes it announced for {what}"
                )
            out.write(chunk)
            out.flush()
