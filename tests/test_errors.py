"""aimc.errors: the OSError -> PermissionDeniedError rule, written once."""

from __future__ import annotations

import errno

import pytest

from aimc.errors import PermissionDeniedError, permission_denied


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_a_permission_failure_is_permission_denied(code: int) -> None:
    exc = OSError(code, "denied")
    error = permission_denied(exc, "cannot write x", hint="fix it")
    assert isinstance(error, PermissionDeniedError)
    assert (error.message, error.hint, error.exit_code) == ("cannot write x", "fix it", 7)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.ENOENT, errno.EIO, None])
def test_another_os_failure_is_left_to_the_caller(code: int | None) -> None:
    exc = OSError(code, "other") if code is not None else OSError("no errno")
    assert permission_denied(exc, "cannot write x") is None
