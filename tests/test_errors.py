"""aimc.core.errors: the OSError -> PermissionDeniedError rule, written once."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from aimc.core.errors import AimcError, CacheError, PermissionDeniedError, permission_denied
from aimc.core.write import write_artifacts
from aimc.modelcache.hub_errors import hub_errors


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


def test_write_reports_a_read_only_file_system_as_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's translation goes through the same rule: EROFS (no mode can fix it) is
    exit 7 with the folder named, ENOSPC exit 1."""
    for code, kind in ((errno.EROFS, PermissionDeniedError), (errno.ENOSPC, AimcError)):

        def refuse(*args: object, _code: int = code, **kwargs: object) -> str:
            raise OSError(_code, errno.errorcode[_code])

        with monkeypatch.context() as patch:
            patch.setattr(os, "mkdir", refuse)  # where the sibling is made
            with pytest.raises(AimcError) as caught:
                write_artifacts(tmp_path / "out", {"a.txt": "x\n"})
        assert type(caught.value) is kind, caught.value
        assert caught.value.message == f"cannot write {tmp_path / 'out'}: {errno.errorcode[code]}"
