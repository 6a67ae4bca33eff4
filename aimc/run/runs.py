"""Run records: what aimc started, kept in ``$AIMC_STATE_DIR/runs/NAME.json``.

Takes run names and :class:`~aimc.core.records.RunRecord` values and hands on what is known of
the servers aimc started: every valid record (:func:`load_records`), one by name
(:func:`find_record`), the ones provably running (:func:`running`, :func:`running_in`),
and the checks made before a folder is written or a server started (:func:`refuse_busy`,
:func:`check_runs_writable`). A run is recorded (:func:`record_started`) as soon as its
process exists, before the runner waits for readiness, so that ``status`` and ``stop``
find it later.

A record is data, never a path or a promise: it names the process by pid, session id,
start time (clock ticks since boot) and boot id, and nothing is signalled
(:func:`stop_record`) unless the running process still matches all of them. A record that
does not match is stale and is forgotten; one that cannot be read or checked is skipped
with a warning. Names are checked wherever they enter (``--name``, the plan, records on
disk) and are the only thing a record's file name is made from.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

from aimc.core.diagnostics import did_you_mean
from aimc.core.errors import AimcError, ConfigError, LaunchError, permission_denied
from aimc.core.log import note
from aimc.core.records import RUN_ID, RunRecord, validate_name
from aimc.plan.model import Plan
from aimc.run.docker_cli import _docker_rm, docker_env
from aimc.run.process import _boot_id, _held, _proc_stat, kill_group, verify
from aimc.run.record_files import record_files, runs_dir, state_dir
from aimc.run.runplan import LAUNCHERS, is_int, read_bounded

__all__ = [
    "InvalidRecord",
    "check_runs_writable",
    "find_record",
    "forget",
    "load_records",
    "no_such_run",
    "record_started",
    "refuse_busy",
    "refuse_running_in",
    "running",
    "running_in",
    "state_dir",
    "stop_record",
    "update_record",
]

#: Largest run record read (bytes); a real one is under 1 KiB.
RECORD_MAX = 64 << 10


class InvalidRecord(ValueError):
    """A run record that cannot be read or trusted (the reason is the message)."""


def _state_error(exc: OSError, where: Path) -> AimcError:
    what = f"cannot write run records in {where}: {exc.strerror or exc}"
    hint = "set AIMC_STATE_DIR to a writable folder"
    return permission_denied(exc, what, hint=hint) or AimcError(what, hint=hint)


def _record_path(name: str) -> Path:
    """The record file of a validated name; always directly inside the runs folder."""
    runs = runs_dir()
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
        if not is_int(data[field]):
            raise InvalidRecord(f"{field} is not an integer")
    if not (is_int(data["started"]) or isinstance(data["started"], float)):
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
        raw = read_bounded(path, RECORD_MAX, follow=False)
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
    note(message, level="WARNING")


def load_records(warn: bool = True) -> list[RunRecord]:
    """Every valid run record, oldest first.

    A record that cannot be read, or does not hold exactly what aimc writes, is skipped
    with one warning line on stderr (unless ``warn`` is False); it never hides the others.
    """
    out = []
    for path in record_files():
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
    import tempfile  # deferred: compile reads records (refuse_running_in), writes none

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


def check_runs_writable() -> None:
    """Fail before anything starts when a record could not be written.

    Raises:
        PermissionDeniedError: No permission (exit 7).
        AimcError: Any other reason (exit 1).
    """
    import tempfile  # deferred: as in :func:`_write_record`

    runs = runs_dir()
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


def record_started(
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
        raise _state_error(exc, runs_dir()) from None
    return record


def update_record(record: RunRecord) -> None:
    """Replace the record of a run with a richer one (its container id, once known).

    The first record already proves the process: a failure to write this one is ignored.
    """
    with contextlib.suppress(OSError):
        _write_record(record, replace=True)
