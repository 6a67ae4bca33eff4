"""aimc.errors: the OSError -> PermissionDeniedError rule, written once."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from aimc.errors import CacheError, PermissionDeniedError, permission_denied
from aimc.hub_errors import hub_errors


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


def test_the_model_cache_read_only_is_exit_7_and_full_is_exit_5(tmp_path: Path) -> None:
    """What huggingface_hub raises while writing the cache: a read-only disk is a
    permission error, a full one a cache error."""
    with pytest.raises(PermissionDeniedError) as denied, hub_errors("a/b", tmp_path):
        raise OSError(errno.EROFS, "Read-only file system")
    assert denied.value.message == f"cannot write the model cache {tmp_path}: Read-only file system"
    with pytest.raises(CacheError) as full, hub_errors("a/b", tmp_path):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert full.value.exit_code == 5
    assert full.value.message.startswith(f"cannot use the model cache {tmp_path}: ")
