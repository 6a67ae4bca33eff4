"""A started server's log: the file a run writes, and ``aim-engine logs``' bounded read of it.

The runner opens a fresh ``server.log`` for each start (:func:`new_log`: the previous one
kept as ``server.log.1``, never written through a link) and quotes its last lines when the
server fails (:func:`log_tail`). ``aim-engine logs`` takes a run name and hands on the
log's lines. Only the log of a valid run record is read, and only where aimc writes it:
``server.log`` directly in the record's artifact folder, which must be a real folder (no
symlink anywhere in its path) holding the ``manifest.json`` aimc compiled (its generator
is aimc, not any ``{}``); the log itself is opened without following a symlink and must
be a regular file of this user with no other name (a hard link would show any file the
user can read). A record whose folder or log points anywhere else (``/etc``, another
user's file, a FIFO, a hard link) is refused with one line, and nothing is read. A Docker
run's log is the container's (``docker logs``, the container named by the validated run
name).

Lines are cut at :data:`LINE_MAX` characters, decoded whatever their bytes (invalid UTF-8
is replaced), stripped of control characters and masked (:func:`aimc.core.safety.mask`): a log
may hold a token, or bytes that would drive a terminal. ``--tail N`` (and ``--format
json``, which holds the lines in memory) reads backwards at most :data:`TAIL_MAX` bytes;
the whole log is streamed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from aimc.core.errors import ConfigError, LaunchError, PermissionDeniedError
from aimc.core.ownership import is_aimc_folder
from aimc.core.records import LOG_NAME, MANIFEST_NAME, PREVIOUS_LOG_NAME, RunRecord
from aimc.core.safety import mask

__all__ = [
    "LINE_MAX",
    "TAIL_MAX",
    "clean",
    "docker_logs",
    "follow",
    "log_tail",
    "new_log",
    "open_log",
    "read_lines",
    "stream_lines",
]

#: Longest line shown (characters); the rest is replaced by a note of how much was cut.
LINE_MAX = 16384
#: Most bytes ``--tail N`` reads from the end of the log.
TAIL_MAX = 16 << 20
#: Bytes read at a time.
CHUNK = 1 << 16

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(raw: bytes, dropped: int = 0) -> str:
    """One log line as it may be shown: decoded, cut, control characters replaced, masked
    (``dropped``: bytes of it already left out)."""
    cut = len(raw) - LINE_MAX + dropped
    text = raw[:LINE_MAX].decode("utf-8", "replace")
    text = _CONTROL.sub(" ", mask(text))
    return f"{text} ... ({cut} more bytes)" if cut > 0 else text


def _untrusted(record: RunRecord, why: str) -> ConfigError:
    return ConfigError(
        f"the run record of {record.name} names a log aimc did not write ({why}); not read",
        hint=f"aim-engine stop {record.name}, or remove its record",
    )


def open_log(record: RunRecord) -> int:
    """An open descriptor of the bare-process log of ``record``, checked as the module
    says.

    Raises:
        ConfigError: The record's folder or log is not one aimc wrote (or is gone).
        PermissionDeniedError: The log cannot be read for its permissions.
    """
    folder = record.folder
    if not os.path.isabs(folder) or os.path.realpath(folder) != os.path.normpath(folder):
        raise _untrusted(record, "its folder is not a real folder")
    if record.log != os.path.join(folder, LOG_NAME):
        raise _untrusted(record, f"the log is not {LOG_NAME} in its folder")
    if not is_aimc_folder(Path(folder)):
        raise _untrusted(record, f"its folder holds no {MANIFEST_NAME} written by aimc")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(record.log, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _untrusted(record, "the log is a symlink") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PermissionDeniedError(f"cannot read {record.log}: {exc.strerror}") from None
        if exc.errno == errno.ENOENT:
            raise ConfigError(
                f"{record.name} has no log yet ({record.log} is missing)",
                hint="its server writes the log once it starts",
            ) from None
        raise ConfigError(f"cannot read {record.log}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise _untrusted(record, "the log is not a regular file of this user")
    if info.st_nlink != 1:  # a hard link to a file readable elsewhere (/etc/shadow)
        os.close(fd)
        raise _untrusted(record, "the log has other names (a hard link)")
    return fd


class _Lines:
    """Splits a byte stream into lines, keeping at most :data:`LINE_MAX` bytes (+ a count
    of the rest) of a longer one: memory stays bounded whatever the stream."""

    def __init__(self) -> None:
        self.partial = b""
        self.dropped = 0

    def feed(self, data: bytes) -> list[str]:
        out = []
        parts = data.split(b"\n")
        for part in parts[:-1]:
            out.append(self._line(part))
        self._keep(parts[-1])
        return out

    def flush(self) -> list[str]:
        if not self.partial and not self.dropped:
            return []
        return [self._line(b"")]

    def _keep(self, part: bytes) -> None:
        room = LINE_MAX + 1 - len(self.partial)
        self.partial += part[: max(room, 0)]
        self.dropped += max(len(part) - max(room, 0), 0)

    def _line(self, part: bytes) -> str:
        self._keep(part)
        raw, dropped = self.partial, self.dropped
        self.partial, self.dropped = b"", 0
        return clean(raw, dropped)


def read_lines(fd: int, tail: int) -> tuple[list[str], int]:
    """The last ``tail`` lines of the log (from at most its last :data:`TAIL_MAX` bytes,
    read backwards) and the offset read to."""
    size = os.fstat(fd).st_size
    start = size
    chunks: list[bytes] = []
    newlines = 0
    while start > 0 and newlines <= tail and size - start < TAIL_MAX:
        step = min(CHUNK, start)
        start -= step
        chunk = os.pread(fd, step, start)
        newlines += chunk.count(b"\n")
        chunks.append(chunk)
    data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    if start > 0 and lines:
        lines = lines[1:]  # cut by where reading began
    chosen = lines[-tail:] if tail else []
    return [clean(line) for line in chosen], start + len(data)


def stream_lines(fd: int, emit: Callable[[str], None]) -> int:
    """Emit every line of the log, a chunk at a time; the offset read to."""
    size = os.fstat(fd).st_size
    offset, lines = 0, _Lines()
    while offset < size:
        chunk = os.pread(fd, min(CHUNK, size - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        for line in lines.feed(chunk):
            emit(line)
    for line in lines.flush():
        emit(line)
    return offset


def follow(
    fd: int,
    offset: int,
    running: Callable[[], bool],
    emit: Callable[[str], None],
    poll: float = 0.25,
) -> None:
    """Print lines appended to the log after ``offset`` until ``running()`` is False (then
    what is left), like ``docker logs -f``. A truncated log is read again from its start."""
    lines = _Lines()
    while True:
        alive = running()
        while True:
            size = os.fstat(fd).st_size
            if size < offset:
                offset, lines = 0, _Lines()
            chunk = os.pread(fd, CHUNK, offset) if size > offset else b""
            if not chunk:
                break
            offset += len(chunk)
            for line in lines.feed(chunk):
                emit(line)
        if not alive:
            for line in lines.flush():
                emit(line)
            return
        time.sleep(poll)


def docker_logs(
    record: RunRecord, tail: int | None, follow_: bool, env: dict[str, str]
) -> Iterator[str]:
    """The lines of the run's container (``docker logs``), cleaned like a file's.

    Raises:
        LaunchError: docker is missing or fails.
    """
    argv = ["docker", "logs"]
    if follow_:
        argv.append("--follow")
    if tail is not None:
        argv += ["--tail", str(tail)]
    argv.append(record.name)  # validated: a run name never starts with '-'
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError:
        raise LaunchError("docker is not installed (no docker command on PATH)") from None
    assert proc.stdout is not None
    try:
        lines = _Lines()
        while True:
            chunk = os.read(proc.stdout.fileno(), CHUNK)
            if not chunk:
                break
            yield from lines.feed(chunk)
        yield from lines.flush()
        if proc.wait() != 0:
            raise LaunchError(f"docker logs {record.name} failed (exit {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the log a run writes ---------------------------------------------------------------


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the log, read from its last 16 KiB only, each cleaned
    as ``logs`` shows it (masked, no control characters: the log is the server's text)."""
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        size = os.fstat(fd).st_size if stat.S_ISREG(os.fstat(fd).st_mode) else 0
        raw = os.pread(fd, 16384, max(size - 16384, 0)) if size else b""
    except OSError:
        return ""
    finally:
        os.close(fd)
    return "\n".join(clean(line) for line in raw.splitlines()[-lines:])


def new_log(log: Path) -> int:
    """A new server log for this run, the previous run's kept beside it as
    ``server.log.1`` (replacing the one before): a regular file of the folder, never a link
    (it would be written through and shown) nor a pipe (opening it would wait forever).

    Raises:
        LaunchError: Something else is at its place.
    """
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISREG(os.lstat(log).st_mode):  # a link or a pipe stays, and is refused
            try:
                os.replace(log, log.with_name(PREVIOUS_LOG_NAME))
            except OSError as exc:
                raise LaunchError(
                    f"cannot keep the previous server log as {PREVIOUS_LOG_NAME}: "
                    f"{exc.strerror or exc}",
                    hint=f"remove {log.with_name(PREVIOUS_LOG_NAME)}",
                ) from None
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(log, flags | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise LaunchError(
            f"cannot open the server log {log}: {why}",
            hint="remove it; aimc writes the log as a plain file in the folder",
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LaunchError(
            f"cannot open the server log {log}: not a regular file",
            hint="remove it; aimc writes the log as a plain file in the folder",
        )
    return fd
