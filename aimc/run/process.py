"""Processes aimc started: read from ``/proc``, proven to be ours, signalled as a group.

A run record names its server by pid, session id, start time (clock ticks since boot) and
boot id; :func:`verify` checks all of them against the live process before anything is
signalled, and signals go through a pidfd opened before that check (the whole group with
Linux 6.9's ``PIDFD_SIGNAL_PROCESS_GROUP``), so a reused pid is never signalled.
:func:`kill_group` ends a group with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aimc.core.records import RunRecord

__all__ = ["PIDFD_SIGNAL_PROCESS_GROUP", "STOP_GRACE", "alive", "kill_group", "verify"]

#: Seconds a stopped group gets between SIGTERM and SIGKILL.
STOP_GRACE = 15.0


@dataclass(frozen=True)
class _Stat:
    state: str
    pgrp: int
    sid: int
    start_time: int


def _proc_stat(pid: int) -> _Stat | None:
    """Fields of ``/proc/PID/stat``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes()[:4096].decode("ascii", "replace")
        # The command name (field 2) may hold spaces and ')': split after the last ')'.
        fields = text.rsplit(")", 1)[1].split()
        return _Stat(fields[0], int(fields[2]), int(fields[3]), int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    found = _proc_stat(pid)
    return found is None or found.state != "Z"


def verify(record: RunRecord) -> bool:
    """True when the record's process runs and is provably the one aimc started.

    Its pid must run (not as a zombie) with the recorded session id and start time, on the
    same boot, in the record's folder (aimc starts ``launch.sh`` there, and it execs the
    server or docker without changing folder). The stat fields can be read by anyone, so
    a forged record could name any session leader (a login shell, tmux); the working
    folder, readable only by the process's owner, must also be the compiled folder.
    Reads ``/proc`` only; signals nothing.
    """
    if record.pid <= 1:
        return False
    if record.boot_id and _boot_id() and record.boot_id != _boot_id():
        return False
    found = _proc_stat(record.pid)
    return (
        found is not None
        and found.state != "Z"
        and found.sid == record.sid == record.pid
        and found.start_time == record.start_time
        and _works_in(record.pid, record.folder)
    )


def _works_in(pid: int, folder: str) -> bool:
    """True when ``pid``'s working folder is ``folder`` (also once it was removed)."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd.removesuffix(" (deleted)") in (folder, os.path.realpath(folder))


#: ``pidfd_send_signal`` flag: signal the process group of the pidfd's process, named by
#: the pidfd rather than by a number (Linux 6.9, include/uapi/linux/pidfd.h
#: ``PIDFD_SIGNAL_PROCESS_GROUP``; older kernels answer EINVAL).
PIDFD_SIGNAL_PROCESS_GROUP = 1 << 2


def _pidfd_open(pid: int) -> int | None:
    """A pidfd of ``pid`` (Linux 5.3, Python 3.9), or None where there is none: no such
    process, a kernel or platform without pidfds, or a sandbox that forbids them."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None or not hasattr(signal, "pidfd_send_signal"):
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


@contextlib.contextmanager
def _held(pid: int) -> Iterator[int | None]:
    """:func:`_pidfd_open` of ``pid`` for the block, closed after it."""
    fd = _pidfd_open(pid)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _pidfd_signal(pidfd: int, sig: int) -> bool | None:
    """Send ``sig`` to the process group led by the pidfd's process, through the pidfd.

    Returns:
        True when sent, False when the group has no member left (or the signal is not
        permitted), None when this kernel cannot signal a group through a pidfd (before
        Linux 6.9): the caller falls back to the leader's pidfd and ``killpg``.
    """
    try:
        signal.pidfd_send_signal(pidfd, sig, None, PIDFD_SIGNAL_PROCESS_GROUP)
    except (ProcessLookupError, PermissionError):
        return False
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        return False
    return True


def _signal_group(pgid: int, sig: int, pidfd: int | None) -> None:
    """Send ``sig`` to the process group ``pgid``; through ``pidfd`` (the leader's, opened
    before the leader was verified as ours) where the kernel allows.

    The group: with Linux 6.9's ``PIDFD_SIGNAL_PROCESS_GROUP`` the kernel signals the group
    of the pidfd's own ``struct pid``, which a reused number can never name (also after the
    leader exited: the pidfd keeps it), and nothing goes by number. Before 6.9 the leader
    is signalled through its pidfd (never a process that took its pid), and the rest of
    the group by number, ``killpg``, as without pidfds: the verified path, where members
    that outlived their leader are still reached, and the remaining window is the group's
    number being taken by another session after the check.
    """
    if pidfd is not None:
        if _pidfd_signal(pidfd, sig) is not None:
            return
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int, pidfd: int | None = None) -> bool:
    if pidfd is not None and _pidfd_signal(pidfd, 0) is False:
        return False  # no member of the pidfd's group is left
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg succeeds while zombies remain; look for a live member.
    for entry in Path("/proc").glob("[0-9]*"):
        found = _proc_stat(int(entry.name))
        if found is not None and found.pgrp == pgid and found.state != "Z":
            return True
    return False


def kill_group(pgid: int, grace: float = STOP_GRACE, pidfd: int | None = None) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds.

    The caller proves that the group is the one it started (:func:`verify`, or an unreaped
    child of its own), and passes the leader's pidfd opened before that proof where it has
    one: the signals then go through it (:func:`_signal_group`), so a pid reused after the
    proof is never signalled. ``pgid`` <= 1 would name the caller's own group or init's:
    refused.

    Raises:
        ValueError: ``pgid`` is not a process group id aimc can have started.
    """
    if isinstance(pgid, bool) or not isinstance(pgid, int) or pgid <= 1:
        raise ValueError(f"refusing to signal process group {pgid!r}")
    _signal_group(pgid, signal.SIGTERM, pidfd)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid, pidfd):
        time.sleep(0.05)
    # Once its last member is gone the group id may be reused: SIGKILL only live members.
    if _group_alive(pgid, pidfd):
        _signal_group(pgid, signal.SIGKILL, pidfd)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pgid, pidfd):
        time.sleep(0.05)


def _exit_status(pid: int) -> int | None:
    """The exit status of our child ``pid`` once it exited (negative: killed by that
    signal), else None. It is left unreaped, so neither its pid nor its group id can be
    reused until the caller waits for it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -1
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return int(info.si_status)
    return -int(info.si_status)
