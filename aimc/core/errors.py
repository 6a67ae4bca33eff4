"""Errors that aimc reports to users, each with its documented exit code.

Every user-facing failure is an :class:`AimcError` subclass. The CLI prints its message
(and hint) on one line each, or under ``--format json`` the error response with its
:attr:`AimcError.code`, and exits with :attr:`AimcError.exit_code`; it never prints a
traceback for these. Anything else that escapes is an internal bug
(:class:`InternalError`; traceback with ``--debug``). A failed file operation becomes one
through :func:`permission_denied`: permission refused is exit 7 wherever it happens.

Exit codes (from the AIM Engine API reference) and the ``error.code`` that
``--format json`` prints with each (``schemas/output.schema.json#/$defs/error_code``). The
codes are stable: one per exit code, plus ``INTERNAL_ERROR`` (a bug) and ``INTERRUPTED`` (a
stop signal); a new one is added here, in the schema and in docs/environment.md together.

=======  ======================  ==============================================
exit     error code              meaning
=======  ======================  ==============================================
0        -                       success
1        GENERAL_ERROR           general error (e.g. ``compile --check`` found
                                 the folder out of date)
1        INTERNAL_ERROR          a bug in aimc (traceback with ``--debug``)
2        CONFIGURATION_ERROR     bad recipe, bad flag, usage error (missing
                                 argument, unknown option or command), no
                                 matching configuration
3        GPU_DETECTION_FAILED    GPU detection error
4        MODEL_LAUNCH_FAILED     server died, health check timed out
5        CACHE_ERROR             model cache error
6        NETWORK_ERROR           network error
7        PERMISSION_DENIED       permission error
128+N    INTERRUPTED             stopped by signal N: 130 Ctrl-C (SIGINT),
                                 143 SIGTERM, 129 SIGHUP
=======  ======================  ==============================================
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from aimc.core.diagnostics import Diagnostic

__all__ = [
    "AimcError",
    "CacheError",
    "ConfigError",
    "GPUDetectionError",
    "InternalError",
    "LaunchError",
    "NetworkError",
    "PermissionDeniedError",
    "StoppedBySignal",
    "ValidationFailed",
    "permission_denied",
]


class AimcError(Exception):
    """Base class of every error aimc reports to a user.

    Args:
        message: One line saying what went wrong.
        hint: Optional one line saying what to do about it.
        details: Optional longer text (the ``details`` field of the error JSON).
    """

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "GENERAL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_json(self) -> dict[str, str]:
        """The ``error`` object of the seed's error response: ``code`` and ``message``,
        then ``hint`` and ``details`` when there are (never empty)."""
        body = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.details:
            body["details"] = self.details
        return body


class ConfigError(AimcError):
    """Bad recipe, bad flag or no configuration that matches the request."""

    exit_code = 2
    code = "CONFIGURATION_ERROR"


class ValidationFailed(ConfigError):
    """One or more files failed validation; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        errors = [d for d in diagnostics if d.severity == "error"]
        n = len(errors)
        files = sorted({d.path for d in errors})
        where = files[0] if len(files) == 1 else f"{len(files)} files"
        super().__init__(f"{n} error{'s' if n != 1 else ''} in {where}")
        self.diagnostics = list(diagnostics)


class GPUDetectionError(AimcError):
    """GPUs were required but could not be detected."""

    exit_code = 3
    code = "GPU_DETECTION_FAILED"


class LaunchError(AimcError):
    """The model server did not start or did not become healthy."""

    exit_code = 4
    code = "MODEL_LAUNCH_FAILED"


class CacheError(AimcError):
    """The model cache could not be read or filled."""

    exit_code = 5
    code = "CACHE_ERROR"


class NetworkError(AimcError):
    """A network operation failed."""

    exit_code = 6
    code = "NETWORK_ERROR"


class PermissionDeniedError(AimcError):
    """Permission was denied (a file, a device, the Docker socket)."""

    exit_code = 7
    code = "PERMISSION_DENIED"


class InternalError(AimcError):
    """A bug: an exception that is not an :class:`AimcError` escaped a command."""

    exit_code = 1
    code = "INTERNAL_ERROR"


class StoppedBySignal(AimcError):
    """A stop signal (Ctrl-C's SIGINT, SIGTERM, SIGHUP) ended the command.

    The exit status is ``128 + signum`` (130 for Ctrl-C); :attr:`exit_code` is Ctrl-C's.

    Args:
        message: One line saying what was stopped.
        signum: The signal's number.
    """

    exit_code = 130
    code = "INTERRUPTED"

    def __init__(self, message: str, *, signum: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.signum = signum


#: What an :class:`OSError` says when permission is missing (a read-only file system too).
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def permission_denied(
    exc: OSError, message: str, *, hint: str | None = None
) -> PermissionDeniedError | None:
    """``PermissionDeniedError(message)`` when ``exc`` failed for a permission (``EACCES``,
    ``EPERM``, ``EROFS``), else None: ``permission_denied(exc, what) or CacheError(what)``."""
    if exc.errno in _DENIED:
        return PermissionDeniedError(message, hint=hint)
    return None
