"""Write stage: artifacts -> a folder, atomically; or compare them with one (``--check``).

Takes {file name: text}; the only stage that writes to disk. A folder is replaced as a
whole: the new files are written to a temporary sibling first and swapped in with renames,
so a failure leaves the previous folder as it was. A folder that holds other files than an
earlier aimc output is never replaced.
"""

from __future__ import annotations

import difflib
import errno
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aimc.errors import AimcError, ConfigError, PermissionDeniedError

__all__ = ["EXECUTABLE", "diff_artifacts", "write_artifacts"]

#: Artifacts written with the executable bit.
EXECUTABLE = frozenset({"launch.sh"})
MANIFEST = "manifest.json"


def _os_error(exc: OSError, what: str) -> AimcError:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"cannot write {what}: {exc.strerror}")
    return AimcError(f"cannot write {what}: {exc.strerror or exc}")


def write_artifacts(outdir: Path, files: Mapping[str, str]) -> None:
    """Replace ``outdir`` with exactly ``files``, atomically.

    Raises:
        ConfigError: ``outdir`` is a file, or a folder that aimc did not write.
        PermissionDeniedError: The folder cannot be written.
    """
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"output {outdir} exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MANIFEST).is_file():
        raise ConfigError(
            f"output folder {outdir} is not empty and holds no {MANIFEST}",
            hint="aimc only replaces folders it wrote; choose another -o",
        )
    parent = outdir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=parent))
    except OSError as exc:
        raise _os_error(exc, str(outdir)) from None
    old: Path | None = None
    try:
        for name, text in sorted(files.items()):
            path = tmp / name
            path.write_text(text, encoding="utf-8", newline="\n")
            os.chmod(path, 0o755 if name in EXECUTABLE else 0o644)
        os.chmod(tmp, 0o755)
        if outdir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=parent))
            os.rmdir(old)
            os.rename(outdir, old)
        os.rename(tmp, outdir)
    except OSError as exc:
        if old is not None and not outdir.exists():
            os.rename(old, outdir)
            old = None
        raise _os_error(exc, str(outdir)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def diff_artifacts(outdir: Path, files: Mapping[str, str]) -> str:
    """A unified diff from what ``outdir`` holds to ``files``; empty when they match."""
    out: list[str] = []
    present = sorted(p.name for p in outdir.iterdir() if p.is_file()) if outdir.is_dir() else []
    for name in sorted(set(files) | set(present)):
        path = outdir / name
        new = files.get(name)
        try:
            current = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            current = "<unreadable>\n"
        if current == new:
            if name in EXECUTABLE and not os.access(path, os.X_OK):
                out.append(f"{path}: not executable\n")
            continue
        if new is None:
            out.append(f"--- {path}\n+++ (not generated)\n@@ unexpected file @@\n")
            continue
        out += difflib.unified_diff(
            (current or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(path) if current is not None else "/dev/null",
            tofile=f"{path} (generated)",
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)
