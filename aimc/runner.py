"""Run stage: start a compiled folder's ``launch.sh``, wait until the endpoint answers.

Takes an artifact folder (with ``manifest.json``) and hands on a :class:`RunRecord` once
the server is ready: ``/health`` answers 200 and ``/v1/models`` lists the served model.
Every request to a server carries ``Authorization: Bearer $VLLM_API_KEY`` when the key is
set (:func:`api_key`: the server's environment for a start, the caller's afterwards).
The only stage that starts processes. The script runs in its own session (process group)
with its output in ``server.log`` in the folder (never an unread pipe); the runner fails
fast when the process exits, and on timeout, Ctrl-C, SIGTERM or SIGHUP ends the whole
group (SIGTERM, then SIGKILL) so nothing is orphaned.

What was started is recorded in ``$AIMC_STATE_DIR/runs/NAME.json`` before the runner waits
for readiness, so that ``status`` and ``stop`` find it later. A record is data, never a
path or a promise: it names the process by pid, session id, start time (clock ticks since
boot) and boot id, and nothing is signalled unless the running process still matches all
of them. A record that does not match is stale and is forgotten; one that cannot be read
or checked is skipped with a warning. Names are checked wherever they enter (``--name``,
the plan, records on disk) and are the only thing a record's file name is made from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import secrets
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from aimc.docker_cli import (
    _container,
    _docker,
    _docker_check,
    _docker_rm,
    _refuse_existing_container,
    docker_env,
)
from aimc.errors import AimcError, ConfigError, LaunchError, PermissionDeniedError
from aimc.ownership import verify_artifacts
from aimc.plan import Plan
from aimc.probe import (
    API_KEY_ENV,
    api_key,
    is_ready,
    port_in_use,
    probe,
)
from aimc.process import (
    STOP_GRACE,
    _boot_id,
    _exit_status,
    _held,
    _proc_stat,
    alive,
    kill_group,
    verify,
)
from aimc.records import (
    LOG_NAME,
    MANIFEST_NAME,
    PREVIOUS_LOG_NAME,
    RUN_ID,
    RunRecord,
    validate_name,
)
from aimc.serverlog import clean
from aimc.settings import setting

__all__ = [
    "API_KEY_ENV",
    "Interrupted",
    "RunRecord",
    "alive",
    "api_key",
    "find_record",
    "forget",
    "is_ready",
    "kill_group",
    "load_plan",
    "load_records",
    "port_in_use",
    "probe",
    "refuse_running_in",
    "run_folder",
    "running",
    "running_in",
    "state_dir",
    "stop_record",
    "validate_name",
    "verify",
]

#: Seconds between readiness polls: starts short, grows to the cap.
POLL_START, POLL_MAX = 0.05, 0.25
#: Largest manifest read (bytes); a compiled one is a few KiB.
MANIFEST_MAX = 1 << 20
#: Largest run record read (bytes); a real one is under 1 KiB.
RECORD_MAX = 64 << 10
LAUNCHERS = ("process", "docker")
#: Signals that stop a server still starting, as Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def state_dir() -> Path:
    """Where run records live: :attr:`aimc.settings.Settings.state_dir` (``$AIMC_STATE_DIR``,
    else ``$XDG_STATE_HOME/aimc``, else ``~/.local/state/aimc``)."""
    return setting("state_dir")


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while waiting for readiness; the server was stopped.

    Attributes:
        signum: The signal (SIGINT, SIGTERM or SIGHUP).
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class InvalidRecord(ValueError):
    """A run record that cannot be read or trusted (the reason is the message)."""


def _tail(log: Path, lines: int = 20) -> str:
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


def _open_log(log: Path) -> int:
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


# --- files ------------------------------------------------------------------------------


def _read_bounded(path: Path, limit: int, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Opened without blocking so that a FIFO cannot hang the reader.

    Raises:
        OSError: It cannot be opened.
        ValueError: It is not a regular file, or is larger than ``limit``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ValueError(f"larger than {limit} bytes")
    return b"".join(chunks)


def _state_error(exc: OSError, where: Path) -> AimcError:
    what = f"cannot write run records in {where}: {exc.strerror or exc}"
    hint = "set AIMC_STATE_DIR to a writable folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(what, hint=hint)
    return AimcError(what, hint=hint)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plan_problem(plan: Plan) -> str | None:
    """What makes a plan unusable for the runner, or None."""
    if not _is_int(plan.port) or not 1 <= plan.port <= 65535:
        return f"port must be an integer 1-65535, not {plan.port!r:.40}"
    if plan.launcher not in LAUNCHERS:
        return f"launcher must be one of {', '.join(LAUNCHERS)}, not {plan.launcher!r:.40}"
    if not isinstance(plan.health_path, str) or not plan.health_path.startswith("/"):
        return f"health_path must be a path starting with '/', not {plan.health_path!r:.40}"
    for field in ("served_model_name", "precision", "backend", "name"):
        if not isinstance(getattr(plan, field), str):
            return f"{field} must be a string"
    if not _is_int(plan.gpus) or not _is_int(plan.data_parallel):
        return "gpus and data_parallel must be integers"
    return None


def _load_plan(folder: Path) -> Plan:
    """The plan of a compiled folder; any malformed manifest is a ConfigError."""
    hint = "create it with 'aim-engine compile ... -o DIR'"
    try:
        data = json.loads(_read_bounded(folder / MANIFEST_NAME, MANIFEST_MAX))
        plan = Plan.from_json(data["plan"])
    # The manifest is untrusted input: every way it can be malformed is a user error.
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{folder} is not a compiled aimc folder ({type(exc).__name__}: {reason[:200]})",
            hint=hint,
        ) from None
    problem = _plan_problem(plan)
    if problem:
        raise ConfigError(f"{folder / MANIFEST_NAME} has an invalid plan: {problem}", hint=hint)
    return plan


# --- records ----------------------------------------------------------------------------


def _runs_dir() -> Path:
    return state_dir() / "runs"


def _record_path(name: str) -> Path:
    """The record file of a validated name; always directly inside the runs folder."""
    runs = _runs_dir()
    path = runs / f"{validate_name(name)}.json"
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(runs):
        raise ConfigError(f"invalid run name {name!r}")
    return path


_STR_FIELDS = (
    "name",
    "container_id",
    "endpoint_url",
    "folder",
    "log",
    "launcher",
    "model",
    "precision",
    "backend",
    "health_path",
    "boot_id",
)
_INT_FIELDS = ("pid", "port", "gpu_count", "start_time", "sid")


def _parse_record(data: object, stem: str) -> RunRecord:
    """A record from the JSON data of the file ``STEM.json``.

    Raises:
        InvalidRecord: Anything is missing, of the wrong type or out of range.
    """
    if not isinstance(data, dict):
        raise InvalidRecord("not a JSON object")
    missing = [f for f in (*_STR_FIELDS, *_INT_FIELDS, "started") if f not in data]
    if missing:
        raise InvalidRecord(f"missing {', '.join(missing)} (written by an older aimc?)")
    for field in _STR_FIELDS:
        if not isinstance(data[field], str):
            raise InvalidRecord(f"{field} is not a string")
    for field in _INT_FIELDS:
        if not _is_int(data[field]):
            raise InvalidRecord(f"{field} is not an integer")
    if not (_is_int(data["started"]) or isinstance(data["started"], float)):
        raise InvalidRecord("started is not a number")
    try:
        started = float(data["started"])
    except OverflowError:
        started = math.inf
    if not math.isfinite(started):
        raise InvalidRecord("started is not a finite number")
    try:
        validate_name(data["name"])
    except ConfigError:
        raise InvalidRecord("name is not a valid run name") from None
    if data["name"] != stem:
        raise InvalidRecord("name does not match the file name")
    if data["pid"] <= 1:
        raise InvalidRecord("pid is not a process aimc can have started")
    if data["sid"] != data["pid"]:
        raise InvalidRecord("sid is not pid")
    if data["start_time"] < 0:
        raise InvalidRecord("start_time is negative")
    if not 1 <= data["port"] <= 65535:
        raise InvalidRecord("port is out of range")
    if data["gpu_count"] < 0:
        raise InvalidRecord("gpu_count is negative")
    if data["launcher"] not in LAUNCHERS:
        raise InvalidRecord("unknown launcher")
    if not data["health_path"].startswith("/"):
        raise InvalidRecord("health_path is not a path")
    if not os.path.isabs(data["folder"]):
        raise InvalidRecord("folder is not absolute")
    run_id = data.get("run_id", "")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidRecord("run_id is not 32 hex digits")
    fields = {f: data[f] for f in (*_STR_FIELDS, *_INT_FIELDS)}
    return RunRecord(started=started, run_id=run_id, **fields)


def _read_record(path: Path) -> RunRecord:
    """Raises: InvalidRecord."""
    try:
        raw = _read_bounded(path, RECORD_MAX, follow=False)
    except OSError as exc:
        raise InvalidRecord(exc.strerror or str(exc)) from None
    except ValueError as exc:
        raise InvalidRecord(str(exc)) from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidRecord(f"not JSON ({str(exc)[:80]})") from None
    return _parse_record(data, path.name[: -len(".json")])


def _warn(message: str) -> None:
    from aimc.log import note

    note(message, level="WARNING")


def _record_files() -> Iterator[Path]:
    runs = _runs_dir()
    try:
        names = sorted(entry.name for entry in os.scandir(runs))
    except FileNotFoundError:
        return
    except OSError as exc:
        _warn(f"cannot read run records in {runs}: {exc.strerror or exc}")
        return
    for name in names:
        if name.endswith(".json"):
            yield runs / name


def load_records(warn: bool = True) -> list[RunRecord]:
    """Every valid run record, oldest first.

    A record that cannot be read, or does not hold exactly what aimc writes, is skipped
    with one warning line on stderr (unless ``warn`` is False); it never hides the others.
    """
    out = []
    for path in _record_files():
        try:
            out.append(_read_record(path))
        except InvalidRecord as exc:
            if warn:
                _warn(f"skipped run record {path}: {exc}")
    return sorted(out, key=lambda r: r.started)


def find_record(name: str) -> RunRecord | None:
    """The record of the run ``name`` whether or not its server still runs (None when
    there is none); changes nothing.

    Raises:
        ConfigError: ``name`` is not a valid run name, or its record cannot be read or
            trusted.
    """
    path = _record_path(name)
    if not os.path.lexists(path):
        return None
    try:
        return _read_record(path)
    except InvalidRecord as exc:
        raise ConfigError(
            f"the run record {path} is unusable: {exc}",
            hint="remove it; a new run of the name replaces it",
        ) from None


def no_such_run(
    name: str,
    known: list[str] | None = None,
    what: str = "",
    otherwise: str = "see 'aim-engine status'",
) -> ConfigError:
    """The error for a run name with no (running) server: the nearest known name as the
    hint, else ``otherwise``."""
    from aimc.diagnostics import did_you_mean

    if known is None:
        known = [r.name for r in load_records(warn=False)]
    hint = did_you_mean(name, known) or otherwise
    return ConfigError(f"no server named {name!r}{what}", hint=hint)


def forget(record: RunRecord) -> None:
    """Remove a run record (only if its file still holds this record's process)."""
    path = _record_path(record.name)
    with contextlib.suppress(InvalidRecord):
        current = _read_record(path)
        if (current.pid, current.start_time) != (record.pid, record.start_time):
            return  # replaced meanwhile by a newer run of the same name
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def running(name: str) -> RunRecord | None:
    """The record of the server ``name`` if it is provably running.

    A stale record is forgotten; an unreadable one is removed with a warning (a new run of
    the name replaces it).

    Raises:
        ConfigError: ``name`` is not a valid run name.
    """
    path = _record_path(name)
    if not os.path.lexists(path):
        return None
    try:
        record = _read_record(path)
    except InvalidRecord as exc:
        _warn(f"removed unusable run record {path}: {exc}")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    if verify(record):
        return record
    forget(record)
    return None


def running_in(folder: Path) -> RunRecord | None:
    """The record of a provably running server whose folder is ``folder`` or inside it.

    Writing ``folder`` would replace that server's files (and its log). Changes nothing.
    """
    target = Path(os.path.realpath(folder))
    for record in load_records(warn=False):
        served = Path(record.folder)
        if (served == target or served.is_relative_to(target)) and verify(record):
            return record
    return None


def refuse_running_in(folder: Path) -> None:
    """Raise :class:`ConfigError` when a server runs from ``folder`` (or inside it).

    Raises:
        ConfigError: ``folder`` holds a running server's files.
    """
    record = running_in(folder)
    if record is not None:
        raise ConfigError(
            f"a server named {record.name} is running from {record.folder}; stop it first",
            hint=f"aim-engine stop {record.name}",
        )


def refuse_busy(name: str, folder: Path) -> str:
    """Check a run before its folder is written: a valid name that is not running, and a
    folder no running server uses. Returns the validated name.

    Raises:
        ConfigError: The name is invalid or taken, or ``folder`` holds a running server.
    """
    name = validate_name(name)
    taken = running(name)
    if taken is not None:
        raise ConfigError(
            f"a server named {name} is already running ({taken.endpoint_url})",
            hint=f"stop it with 'aim-engine stop {name}'",
        )
    refuse_running_in(folder)
    return name


def _write_record(record: RunRecord, replace: bool = False) -> None:
    """Write a record atomically.

    Raises:
        FileExistsError: ``replace`` is False and the name has a record (a concurrent run).
        OSError: The runs folder cannot be written.
    """
    path = _record_path(record.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{record.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(record.to_json(), indent=2) + "\n")
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails when the name was claimed meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _check_runs_writable() -> None:
    """Fail before anything starts when a record could not be written.

    Raises:
        PermissionDeniedError: No permission (exit 7).
        AimcError: Any other reason (exit 1).
    """
    runs = _runs_dir()
    try:
        runs.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=runs)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _state_error(exc, runs) from None


def stop_record(record: RunRecord, env: dict[str, str] | None = None) -> bool:
    """Stop a recorded server (its whole process group; the container for Docker).

    Nothing is signalled unless :func:`verify` proves the process is the one aimc started;
    the signals go through a pidfd opened before that proof, where the kernel has pidfds
    (:func:`kill_group`). The record is forgotten either way.

    Returns:
        True if it was stopped, False if the record was stale (nothing signalled).
    """
    # The pidfd is opened before the check: when the check passes it names the process the
    # check read (a pid reused before the open shows another start time), and the signals
    # go through it, so a process that takes the pid after the check (while Docker removes
    # the container, say) is never signalled. Without pidfds: the verified pid, as before.
    with _held(record.pid) as pidfd:
        if not verify(record):
            forget(record)
            return False
        if record.launcher == "docker":
            _docker_rm(
                record.name,
                docker_env(dict(env or os.environ)),
                record.run_id,
                record.container_id,
            )
        kill_group(record.pid, pidfd=pidfd)
    forget(record)
    return True


# --- running ----------------------------------------------------------------------------


class _SignalGuard:
    """While active, SIGINT, SIGTERM and SIGHUP are noted instead of acted on at once.

    The wait loop checks :attr:`signum` between polls, so cleanup is never cut short by a
    signal. Signals that were ignored stay ignored; outside the main thread nothing is
    installed (Python allows handlers only there).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is None or previous == signal.SIG_IGN:
                continue
            self._saved[sig] = previous
            signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)
        self._saved.clear()

    def check(self) -> None:
        """Raises: Interrupted: A stop signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)


def run_folder(
    folder: Path,
    timeout: float,
    name: str | None = None,
    progress: Callable[[float, Path, bool], None] | None = None,
    env: dict[str, str] | None = None,
) -> RunRecord:
    """Start the folder's ``launch.sh`` and wait until its endpoint is ready.

    Nothing in ``folder`` is touched before every check passed, the first being that
    every artifact is what ``manifest.json`` records (:func:`aimc.ownership.verify_artifacts`:
    an edited ``launch.sh`` is never started). The run is recorded as
    soon as the process exists; on failure, timeout or a stop signal the whole group is
    stopped and the record removed.

    Args:
        folder: A compiled artifact folder (relative to the current folder, or absolute).
        timeout: Seconds to wait for readiness.
        name: Run name (default: the plan's name).
        progress: Called while waiting with (elapsed seconds, the server's log file,
            whether ``/health`` answers 200): :class:`aimc.progress.StartWatch`.
        env: Environment for the server (default: this process's).

    Raises:
        ConfigError: The folder is not a compiled aimc folder, an artifact differs from
            its manifest, the name is invalid or taken, or a server runs from the folder.
        LaunchError: The port is taken, the server exited, or it was not ready in time.
        PermissionDeniedError: The state folder cannot be written (nothing was started).
        AimcError: The state folder cannot be written for another reason.
        Interrupted: SIGINT, SIGTERM or SIGHUP arrived while waiting (server stopped).
    """
    if name is not None:
        validate_name(name)
    folder = Path(os.path.abspath(folder))
    script = folder / "launch.sh"
    if not script.is_file() and any(
        (folder / k).is_file() for k in ("deployment.yaml", "leaderworkerset.yaml")
    ):
        raise ConfigError(
            f"{folder} holds Kubernetes manifests (--emit k8s), not a local launch",
            hint=f"kubectl apply -f {folder}; or compile without --emit k8s to run here",
        )
    plan = _load_plan(folder)
    if not script.is_file():
        raise ConfigError(f"{script} is missing", hint="recompile the folder")
    verify_artifacts(folder)  # before any check that starts or records anything
    name = validate_name(plan.name if name is None else name)
    env = docker_env(dict(os.environ if env is None else env))
    key = api_key(env)  # the server gets env: the key it requires, if any
    refuse_busy(name, folder)
    if port_in_use(plan.port):
        raise LaunchError(
            f"port {plan.port} is already in use",
            hint="stop what listens there, or launch with --port N",
        )
    run_id = ""
    if plan.launcher == "docker":
        _docker_check(env)
        _refuse_existing_container(name, env)
        run_id = secrets.token_hex(16)
    _check_runs_writable()
    env["AIM_CONTAINER_NAME"] = name
    env["AIM_RUN_ID"] = run_id
    log = folder / LOG_NAME
    with _SignalGuard() as guard:
        start = time.monotonic()
        out = _open_log(log)
        try:
            proc = subprocess.Popen(
                ["bash", str(script)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {script}: {exc.strerror or exc}") from None
        finally:
            os.close(out)
        recorded: RunRecord | None = None
        try:
            recorded = _record_started(proc.pid, name, plan, folder, log, run_id)
            _wait_ready(proc, plan, timeout, start, log, guard, progress, key, env)
        except BaseException as exc:
            kill_group(proc.pid, grace=5 if guard.signum is not None else STOP_GRACE)
            if plan.launcher == "docker":
                _docker_rm(name, env, run_id)
            proc.wait()
            if recorded is not None:
                forget(recorded)
            if guard.signum is not None and not isinstance(exc, Interrupted):
                # e.g. the progress line failed on a terminal that hung up
                raise Interrupted(guard.signum) from None
            raise
    record = recorded
    found = _container(name, env) if plan.launcher == "docker" else None
    if found is not None and found[1] == run_id:
        record = dataclasses.replace(record, container_id=found[0][:12])
        # The first record already proves the process; a richer one is a bonus.
        with contextlib.suppress(OSError):
            _write_record(record, replace=True)
    return record


def _record_started(
    pid: int, name: str, plan: Plan, folder: Path, log: Path, run_id: str = ""
) -> RunRecord:
    """Record the just started (unreaped) process ``pid``.

    Raises:
        LaunchError: Its identity cannot be read.
        ConfigError: A concurrent run claimed the name.
        PermissionDeniedError, AimcError: The record cannot be written.
    """
    found = _proc_stat(pid)
    if found is None or found.sid != pid:
        raise LaunchError(f"cannot identify the started process {pid} in /proc")
    record = RunRecord(
        name=name,
        pid=pid,
        container_id=f"pid:{pid}",
        port=plan.port,
        endpoint_url=f"http://localhost:{plan.port}",
        folder=str(folder.resolve()),
        log=str(log.resolve()),
        launcher=plan.launcher,
        model=plan.served_model_name,
        gpu_count=plan.total_gpus,
        precision=plan.precision,
        backend=plan.backend,
        health_path=plan.health_path,
        started=time.time(),
        start_time=found.start_time,
        sid=found.sid,
        boot_id=_boot_id(),
        run_id=run_id,
    )
    try:
        _write_record(record)
    except FileExistsError:
        raise ConfigError(
            f"a server named {name} was started meanwhile",
            hint=f"stop it with 'aim-engine stop {name}'",
        ) from None
    except OSError as exc:
        raise _state_error(exc, _runs_dir()) from None
    return record


def _wait_ready(
    proc: subprocess.Popen[bytes],
    plan: Plan,
    timeout: float,
    start: float,
    log: Path,
    guard: _SignalGuard,
    progress: Callable[[float, Path, bool], None] | None,
    key: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Poll until the endpoint is ready, sending ``key`` as the bearer token when given.

    Raises:
        LaunchError: The server exited (the Docker engine stopped, for a container),
            refused the key (HTTP 401/403 on ``/v1/models``), or was not ready after
            ``timeout`` seconds.
        Interrupted: A stop signal arrived.
    """
    delay = POLL_START
    while True:
        guard.check()
        code = _exit_status(proc.pid)
        if code is not None:
            # Its group may still hold children: the caller stops them before reaping.
            if plan.launcher == "docker" and env is not None:
                _docker_still_there(env, code, log)
            raise LaunchError(
                f"the server exited with code {code} after {time.monotonic() - start:.1f} s",
                details=_tail(log),
                hint=f"its log: {log}",
            )
        state = probe(plan.port, plan.health_path, plan.served_model_name, api_key=key)
        if state == "ready":
            guard.check()
            return
        if state == "unauthorized":
            # The server's auth is set up before it listens: this answer will not change.
            raise LaunchError(
                "the server answers but refuses aimc's requests to /v1/models as "
                f"unauthorized: it requires an API key, and {API_KEY_ENV} "
                + ("is not that key" if key else "is not set"),
                details=_tail(log),
                hint=f"start it with the key in {API_KEY_ENV} (aimc passes it through and "
                "sends it as the bearer token); never in its arguments",
            )
        healthy = state == "healthy"
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            raise LaunchError(
                f"the server was not ready after {timeout:g} s; stopped it",
                details=_tail(log),
                hint=f"its log: {log}",
            )
        if progress is not None:
            progress(elapsed, log, healthy)
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


def _docker_still_there(env: dict[str, str], code: int, log: Path) -> None:
    """Raises: LaunchError: ``docker run`` ended because the Docker engine stopped."""
    answer, _ = _docker(["version", "--format", "{{.Server.Version}}"], env, 15)
    if answer != 0:
        where = env.get("DOCKER_HOST", "the default socket")
        raise LaunchError(
            f"the Docker engine ({where}) stopped answering while the server "
            f"started; docker run ended with code {code}",
            details=_tail(log),
            hint="start the Docker engine again, then launch again",
        )


# Public names for the other commands that read runs (logs, bench).
load_plan = _load_plan
