"""aimc.errors: the one translation of a failed file operation into an exit code."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from aimc.errors import (
    PERMISSION_ERRNOS,
    AimcError,
    CacheError,
    PermissionDeniedError,
    from_os_error,
)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_a_refused_permission_is_exit_7_whatever_the_caller_expected(code: int) -> None:
    exc = OSError(code, "refused", "/some/file")
    error = from_os_error(exc, "cannot write /some/file: refused", hint="h", otherwise=CacheError)
    assert type(error) is PermissionDeniedError and error.exit_code == 7
    assert (error.message, error.hint) == ("cannot write /some/file: refused", "h")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.ENOENT, errno.EISDIR, None])
def test_any_other_failure_is_the_caller_s_error(code: int | None) -> None:
    exc = OSError(code, "failed") if code is not None else OSError("no errno")
    assert type(from_os_error(exc, "m")) is AimcError
    error = from_os_error(exc, "m", hint="h", otherwise=CacheError)
    assert type(error) is CacheError and error.exit_code == 5 and error.hint == "h"


def test_the_permission_errnos_are_the_three_of_the_callers() -> None:
    """write, the runner's records, bench --save and the model cache each compared with
    these three before the helper existed."""
    assert {errno.EACCES, errno.EPERM, errno.EROFS} == PERMISSION_ERRNOS


def test_write_reports_a_read_only_file_system_as_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's translation goes through the helper: EROFS (no mode can fix it) is
    exit 7 with the folder named, ENOSPC exit 1."""
    import tempfile

    from aimc.write import write_artifacts

    for code, kind in ((errno.EROFS, PermissionDeniedError), (errno.ENOSPC, AimcError)):

        def refuse(*args: object, _code: int = code, **kwargs: object) -> str:
            raise OSError(_code, errno.errorcode[_code])

        with monkeypatch.context() as patch:
            patch.setattr(tempfile, "mkdtemp", refuse)
            with pytest.raises(AimcError) as caught:
                write_artifacts(tmp_path / "out", {"a.txt": "x\n"})
        assert type(caught.value) is kind, caught.value
        assert caught.value.message == f"cannot write {tmp_path / 'out'}: {errno.errorcode[code]}"
