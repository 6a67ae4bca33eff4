"""What goes wrong while filling the model cache from the hub, as aimc's errors.

Takes what ``huggingface_hub`` (or the HTTP client under it, or the disk) raised while a
download filled a cache folder, and hands on the :class:`aimc.core.errors.AimcError` a user
sees: one line, masked and shortened, with its exit code (:func:`_hub_error` has the
table). :func:`network_failure` and :func:`http_status` tell a hub that cannot be reached
from one that answered, for the download's own decisions. ``huggingface_hub`` is imported
only when a failure is translated (it is heavy).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from aimc.core.diagnostics import whole_line
from aimc.core.errors import (
    AimcError,
    CacheError,
    ConfigError,
    NetworkError,
    PermissionDeniedError,
    permission_denied,
)
from aimc.core.safety import mask, shorten

__all__ = ["NOT_THE_HUB", "first_line", "http_status", "hub_errors", "network_failure"]

#: The hint of every answer that cannot have come from the hub.
NOT_THE_HUB = "check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror"


@contextlib.contextmanager
def hub_errors(repo: str, folder: Path) -> Iterator[None]:
    """Turn what ``huggingface_hub`` raises while filling ``folder`` into aimc's errors
    (:func:`_hub_error`); aimc's own errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        raise _hub_error(exc, repo, folder) from None


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type when it has none), masked, then
    shortened (a secret is masked whole before any of it can be cut)."""
    text = str(exc).strip()
    return shorten(mask(whole_line(text.splitlines()[0] if text else type(exc).__name__)))


def _unwrapped(exc: Exception) -> Exception:
    """What a forced download's bare ``ValueError("Force download failed ...")`` wraps."""
    for _ in range(8):  # a forced download's ValueError, and what it wraps
        if type(exc) is not ValueError or not isinstance(exc.__cause__, Exception):
            break
        exc = exc.__cause__
    return exc


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
    exc = _unwrapped(exc)
    if isinstance(exc, AimcError):
        return exc
    mapped = _hub_answer(exc, repo, folder) or _malformed(exc, repo, folder)
    if mapped is not None:
        return mapped
    if not network_failure(exc):
        return _cache_failure(exc, folder)
    return NetworkError(
        f"download of {repo} failed: {type(exc).__name__}: {first_line(exc)}",
        hint="check the network, a proxy and HF_ENDPOINT",
    )


def _hub_answer(exc: Exception, repo: str, folder: Path) -> AimcError | None:
    """The error for one of ``huggingface_hub``'s own (the hub answered, or could not be
    asked); None for anything else."""
    # huggingface_hub is heavy: imported only when a download failed.
    from huggingface_hub.errors import (
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

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
    if isinstance(exc, HfHubHTTPError) and http_status(exc) == 401:
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
    return None


def _malformed(exc: Exception, repo: str, folder: Path) -> AimcError | None:
    """The error for an answer (or a cache entry) not shaped as the hub makes them; None
    for anything else."""
    if isinstance(exc, (KeyError, TypeError, json.JSONDecodeError)):  # an answer's shape
        return NetworkError(
            f"the hub's answer for {repo} is not what the hub sends "
            f"({type(exc).__name__}: {first_line(exc)})",
            hint=NOT_THE_HUB,
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
            hint=NOT_THE_HUB,
        )
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of the answer ``exc`` carries, if any."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def network_failure(exc: BaseException) -> bool:
    """A connection, proxy, TLS or protocol failure (the standard library's or the HTTP
    client's that huggingface_hub uses, which share no base class with OSError)."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.startswith(
        ("httpx", "httpcore", "requests", "urllib3")
    )


def _cache_failure(exc: Exception, folder: Path) -> Exception:
    """What a non-network failure while filling the cache becomes."""
    if isinstance(exc, OSError):
        return permission_denied(
            exc, f"cannot write the model cache {folder}: {exc.strerror}"
        ) or CacheError(f"cannot use the model cache {folder}: {mask(shorten(str(exc)))}")
    if isinstance(exc, ValueError) and "HF_ENDPOINT" in str(exc):
        return NetworkError(f"HF_ENDPOINT is not usable: {mask(shorten(str(exc)))}")
    return exc
