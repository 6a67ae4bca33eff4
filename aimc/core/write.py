"""Write stage: artifacts -> a folder, atomically; or compare them with one (``--check``).

Takes {file name: text}; the only stage that writes to disk. A folder is replaced as a
whole, and only when aimc can prove it wrote it (:func:`aimc.core.ownership.owned`): its
manifest is aimc's, and every entry in the folder is an artifact that manifest lists,
unchanged since, or the runner's ``server.log`` and ``server.log.1`` (carried over).
Anything else is refused, never deleted. A folder that already holds exactly those files,
as aimc writes them, is left as it is (:func:`_holds`). The manifest (``manifest.json``, or
``manifest.aimc`` beside Kubernetes manifests) is read back by :mod:`aimc.core.ownership`.

The swap is atomic: the new files are written to a hidden sibling
(``.NAME.new-XXXXXXXX``, manifest first) and exchanged with the old folder in one
``renameat2(RENAME_EXCHANGE)`` call; where the kernel or file system lacks it, two renames
run instead, and a folder left aside by a SIGKILL between them (``.NAME.old-XXXXXXXX``) is
put back by the next write. SIGINT, SIGTERM and SIGHUP are held until a write is done.
Leftover siblings are removed only when they are provably aimc's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aimc.core.errors import AimcError, ConfigError, permission_denied
from aimc.core.masking import mask
from aimc.core.ownership import MANIFESTS, RUNTIME_FILES, artifact_name_ok, folder_manifest, owned

if TYPE_CHECKING:
    import ctypes

__all__ = [
    "EXECUTABLE",
    "diff_artifacts",
    "stale_artifacts",
    "write_artifacts",
]

#: Artifacts written with the executable bit.
EXECUTABLE = frozenset({"launch.sh"})
#: The permission bits of a written folder.
_FOLDER_MODE = 0o755


def _mode(name: str) -> int:
    """The permission bits of the written artifact ``name``."""
    return 0o755 if name in EXECUTABLE else 0o644


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_GUARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _os_error(exc: OSError, what: str) -> AimcError:
    message = f"cannot write {what}: {exc.strerror or exc}"
    return permission_denied(exc, message) or AimcError(message)


#: The random part of a temporary sibling's name: :func:`_new_sibling`'s eight hex digits,
#: or the eight characters of :func:`tempfile.mkdtemp`, which earlier versions used.
#: Compiled on first use (re's cache): compiling it costs each start-up ~0.06 ms, and a
#: compile of an up-to-date folder never looks for siblings.
_TEMP_SUFFIX = r"[a-z0-9_]{8}"


def _siblings(outdir: Path, kind: str) -> list[Path]:
    """The temporary siblings aimc would have made for ``outdir`` (``.NAME.new-XXXXXXXX``),
    matched literally (a name with glob characters matches only itself)."""
    prefix = f".{outdir.name}.{kind}-"
    try:
        names = [e.name for e in os.scandir(outdir.parent)]
    except OSError:
        return []
    return sorted(
        outdir.parent / n
        for n in names
        if n.startswith(prefix) and re.fullmatch(_TEMP_SUFFIX, n[len(prefix) :])
    )


def _new_sibling(outdir: Path, kind: str) -> Path:
    """Make an empty hidden sibling ``.NAME.KIND-XXXXXXXX`` (mode 0700) under a name no
    entry has, as :func:`tempfile.mkdtemp` would: tempfile is not imported, since it loads
    shutil, random, bz2 and lzma on every compile (bench/speed.py)."""
    for _ in range(100):
        path = outdir.parent / f".{outdir.name}.{kind}-{os.urandom(4).hex()}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no unused name for a temporary folder", str(outdir))


def _ours(folder: Path) -> bool:
    """A temporary sibling aimc made: a real folder, empty, or one whose manifest is aimc's
    and lists every entry. (A sibling whose manifest was cut short by a kill is left alone:
    it cannot be told from a user's folder.)"""
    if not folder.is_dir() or folder.is_symlink():
        return False
    try:
        return not any(os.scandir(folder)) or (
            folder_manifest(folder) is not None and not owned(folder, check_hashes=False)
        )
    except OSError:
        return False


def _remove_ours(folder: Path) -> None:
    """Remove a folder aimc wrote, its manifest last: a kill midway leaves a folder that
    still proves it is aimc's, so the next write removes the rest."""
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name in MANIFESTS:
                continue
            if entry.is_dir(follow_symlinks=False):
                import shutil  # deferred: only an output with subfolders has any to remove

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        for name in MANIFESTS:
            with contextlib.suppress(OSError):
                os.unlink(folder / name)
        os.rmdir(folder)


def _recover(outdir: Path) -> None:
    """Undo what a killed earlier write left: put a folder set aside back, remove aimc's
    temporary siblings. A sibling that is not provably aimc's is left alone."""
    if not os.path.lexists(outdir):
        for old in _siblings(outdir, "old"):
            if _ours(old) and any((old / name).is_file() for name in MANIFESTS):
                with contextlib.suppress(OSError):
                    os.rename(old, outdir)
                    break
    for leftover in [*_siblings(outdir, "new"), *_siblings(outdir, "old")]:
        if _ours(leftover):
            _remove_ours(leftover)


def _refuse_unowned(outdir: Path) -> None:
    if os.path.islink(outdir):
        raise ConfigError(
            f"output {outdir} is a symbolic link",
            hint="aimc replaces folders, not links: give the real folder with -o",
        )
    if not os.path.lexists(outdir):
        return
    if not outdir.is_dir():
        raise ConfigError(f"output {outdir} exists and is not a folder")
    try:
        problems = owned(outdir)
    except OSError as exc:
        raise _os_error(exc, str(outdir)) from None
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise ConfigError(
            f"output folder {outdir} holds what aimc did not write: {shown}",
            hint="aimc only replaces folders it wrote, unchanged: choose another -o, or move "
            "those files away",
        )


def _renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    import ctypes  # deferred: only to replace a folder (a first write into a new one needs none)

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one system call; False where the system cannot."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes  # loaded by _renameat2

    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _GUARDED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _swap(new: Path, outdir: Path) -> Path | None:
    """Put ``new`` at ``outdir``; returns where the old folder went (to be removed)."""
    if not os.path.lexists(outdir):
        os.rename(new, outdir)
        return None
    if _exchange(new, outdir):
        return new
    old = _new_sibling(outdir, "old")
    os.rmdir(old)
    os.rename(outdir, old)
    try:
        os.rename(new, outdir)
    except OSError:
        os.rename(old, outdir)
        raise
    return old


def write_artifacts(outdir: Path, files: Mapping[str, str]) -> None:
    """Replace ``outdir`` with exactly ``files`` (plus its runtime files), atomically.

    SIGINT, SIGTERM and SIGHUP wait until the write is complete (it takes milliseconds),
    so they never leave a half-done swap; a SIGKILL is undone by the next write.

    Raises:
        ConfigError: ``outdir`` is a file, a link, or a folder that aimc cannot prove it
            wrote (see :func:`owned`).
        PermissionDeniedError: The folder cannot be written.
    """
    outdir = Path(os.path.abspath(outdir))
    if not outdir.name:
        raise ConfigError(f"output {outdir} is not a folder aimc can replace")
    with _signals_blocked():
        _recover(outdir)
        _refuse_unowned(outdir)
        if not _holds(outdir, files):
            _write(outdir, files)


def _holds(outdir: Path, files: Mapping[str, str]) -> bool:
    """Whether ``outdir`` (aimc's, :func:`_refuse_unowned`) holds exactly what :func:`_write`
    would leave there: a folder of its mode and this user's, holding ``files`` (no path with
    a folder) with their bytes, modes and owner, and besides them runtime files alone. Then
    the swap would change nothing but inodes, and the folder is left as it is: a compile of
    an unchanged plan (pre-commit's, CI's) writes nothing, and needs no exchange."""
    user = os.geteuid()
    try:
        info = os.lstat(outdir)
        if not stat.S_ISDIR(info.st_mode) or not _is(info, _FOLDER_MODE, user):
            return False
        if {e.name for e in os.scandir(outdir)} - RUNTIME_FILES != set(files):
            return False
        for name, text in files.items():
            path = os.path.join(outdir, name)
            info = os.lstat(path)
            if "/" in name or not stat.S_ISREG(info.st_mode):
                return False
            if not _is(info, _mode(name), user):
                return False
            with open(path, "rb") as f:
                if f.read() != text.encode("utf-8"):
                    return False
    except (OSError, UnicodeError):
        return False
    return True


def _is(info: os.stat_result, mode: int, user: int) -> bool:
    """Whether an entry has exactly permission bits ``mode`` and owner ``user``."""
    return stat.S_IMODE(info.st_mode) == mode and info.st_uid == user


def _write(outdir: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` to a hidden sibling, carry the runtime files over, swap it in."""
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_sibling(outdir, "new")
    except OSError as exc:
        raise _os_error(exc, str(outdir)) from None
    gone: Path | None = tmp
    try:
        # The manifest first: a folder left half-written still proves it is aimc's.
        if len(set(files) & set(MANIFESTS)) > 1:
            raise AimcError("internal error: artifacts with two manifests")
        for name in sorted(files, key=lambda n: (n not in MANIFESTS, n)):
            if not artifact_name_ok(name):
                raise AimcError(f"internal error: artifact name {name!r} is not a plain path")
            path = tmp / name
            if "/" in name:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[name], encoding="utf-8", newline="\n")
            os.chmod(path, _mode(name))
        for name in sorted(RUNTIME_FILES - set(files)):
            kept = outdir / name
            if kept.is_file() and not kept.is_symlink():
                try:
                    os.link(kept, tmp / name)
                except OSError:
                    import shutil  # deferred: only where a hard link fails

                    shutil.copy2(kept, tmp / name)
        os.chmod(tmp, _FOLDER_MODE)
        gone = _swap(tmp, outdir)
    except OSError as exc:
        raise _os_error(exc, str(outdir)) from None
    finally:
        if gone is not None:
            _remove_ours(gone)


def stale_artifacts(outdir: Path, files: Mapping[str, str]) -> list[str]:
    """The names whose file in ``outdir`` differs from ``files`` (changed, missing, not
    generated, or not executable when it should be), sorted."""
    present = (
        {p.name for p in outdir.iterdir() if p.is_file() and p.name not in RUNTIME_FILES}
        if outdir.is_dir()
        else set()
    )
    stale = []
    for name in sorted(set(files) | present):
        path = outdir / name
        try:
            current = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            current = None
        if current != files.get(name) or (
            name in EXECUTABLE and current is not None and not os.access(path, os.X_OK)
        ):
            stale.append(name)
    return stale


def diff_artifacts(outdir: Path, files: Mapping[str, str]) -> str:
    """A unified diff from what ``outdir`` holds to ``files``; empty when they match. Masked
    (:func:`aimc.core.masking.mask`): an edited artifact may hold a token, and the diff goes to
    a CI log."""
    out: list[str] = []
    present = (
        sorted(p.name for p in outdir.iterdir() if p.is_file() and p.name not in RUNTIME_FILES)
        if outdir.is_dir()
        else []
    )
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
        out += _unified_diff(
            (current or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(path) if current is not None else "/dev/null",
            tofile=f"{path} (generated)",
        )
    return mask("".join(line if line.endswith("\n") else line + "\n" for line in out))


def _unified_diff(current: list[str], new: list[str], fromfile: str, tofile: str) -> list[str]:
    import difflib  # deferred: only ``--check`` of a stale folder diffs

    return list(difflib.unified_diff(current, new, fromfile=fromfile, tofile=tofile))
