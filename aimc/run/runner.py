"""Run stage: start a compiled folder's ``launch.sh``, wait until the endpoint answers.

Takes an artifact folder (with ``manifest.json``) and hands on a :class:`RunRecord` once
the server is ready: ``/health`` answers 200 and ``/v1/models`` lists the served model.
Every request to a server carries ``Authorization: Bearer $VLLM_API_KEY`` when the key is
set (:func:`aimc.run.probe.api_key`: the server's environment for a start, the caller's
afterwards). The only stage that starts processes. The script runs in its own session
(process group) with its output in ``server.log`` in the folder (never an unread pipe); the
runner fails fast when the process exits, and on timeout, Ctrl-C, SIGTERM or SIGHUP ends
the whole group (SIGTERM, then SIGKILL) so nothing is orphaned.

The steps are others': the folder's plan (:mod:`aimc.run.runplan`), the run records that
``status`` and ``stop`` read (:mod:`aimc.run.runs`: written as soon as the process exists,
before the runner waits for readiness), the server log (:mod:`aimc.run.serverlog`), stop
signals (:mod:`aimc.run.interrupts`), readiness (:mod:`aimc.run.probe`), the process group
(:mod:`aimc.run.process`) and Docker (:mod:`aimc.run.docker_cli`). This module orders them.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aimc.core.errors import ConfigError, LaunchError
from aimc.core.ownership import verify_artifacts
from aimc.core.records import LOG_NAME, RunRecord, validate_name
from aimc.plan.model import Plan
from aimc.run.docker_cli import (
    _container,
    _docker,
    _docker_check,
    _docker_rm,
    _refuse_existing_container,
    docker_env,
)
from aimc.run.interrupts import Interrupted, SignalGuard
from aimc.run.probe import API_KEY_ENV, api_key, port_in_use, probe
from aimc.run.process import STOP_GRACE, _exit_status, kill_group
from aimc.run.runplan import load_plan
from aimc.run.runs import check_runs_writable, forget, record_started, refuse_busy, update_record
from aimc.run.serverlog import log_tail, new_log

__all__ = ["run_folder"]

#: Seconds between readiness polls: starts short, grows to the cap.
POLL_START, POLL_MAX = 0.05, 0.25

#: ``(elapsed seconds, the server's log file, whether /health answers 200)``, called while
#: the runner waits: :class:`aimc.run.progress.StartWatch`.
Progress = Callable[[float, Path, bool], None]


@dataclass(frozen=True)
class _Start:
    """One start of a compiled folder: what its steps share.

    Attributes:
        folder: The artifact folder (absolute).
        plan: Its plan.
        name: The run name (validated).
        env: The server's environment (with ``AIM_CONTAINER_NAME`` and ``AIM_RUN_ID``).
        key: The API key requests carry (from ``env``), or None.
        run_id: The container label of a Docker run ("" for a bare process).
    """

    folder: Path
    plan: Plan
    name: str
    env: dict[str, str]
    key: str | None
    run_id: str

    @property
    def log(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def docker(self) -> bool:
        return self.plan.launcher == "docker"


def run_folder(
    folder: Path,
    timeout: float,
    name: str | None = None,
    progress: Progress | None = None,
    env: dict[str, str] | None = None,
) -> RunRecord:
    """Start the folder's ``launch.sh`` and wait until its endpoint is ready.

    Nothing in ``folder`` is touched before every check passed, the first being that
    every artifact is what ``manifest.json`` records (:func:`aimc.core.ownership.verify_artifacts`:
    an edited ``launch.sh`` is never started). The run is recorded as
    soon as the process exists; on failure, timeout or a stop signal the whole group is
    stopped and the record removed.

    Args:
        folder: A compiled artifact folder (relative to the current folder, or absolute).
        timeout: Seconds to wait for readiness.
        name: Run name (default: the plan's name).
        progress: Called while waiting with (elapsed seconds, the server's log file,
            whether ``/health`` answers 200): :class:`aimc.run.progress.StartWatch`.
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
    plan = _checked_plan(folder)  # before any check that starts or records anything
    start = _preflight(folder, plan, validate_name(plan.name if name is None else name), env)
    record = _start_and_wait(start, timeout, progress)
    return _with_container(record, start)


def _checked_plan(folder: Path) -> Plan:
    """The plan of a folder that holds a local launch whose every artifact is what its
    manifest records.

    Raises:
        ConfigError: Kubernetes manifests, not a compiled folder, no ``launch.sh``, or an
            artifact that differs from the manifest.
    """
    script = folder / "launch.sh"
    if not script.is_file() and any(
        (folder / k).is_file() for k in ("deployment.yaml", "leaderworkerset.yaml")
    ):
        raise ConfigError(
            f"{folder} holds Kubernetes manifests (--emit k8s), not a local launch",
            hint=f"kubectl apply -f {folder}; or compile without --emit k8s to run here",
        )
    plan = load_plan(folder)
    if not script.is_file():
        raise ConfigError(f"{script} is missing", hint="recompile the folder")
    verify_artifacts(folder)
    return plan


def _preflight(folder: Path, plan: Plan, name: str, env: dict[str, str] | None) -> _Start:
    """Everything checked that can be checked before the server starts: the name is free,
    no server runs from the folder, the port is free, Docker answers (for a container) and
    the run can be recorded. The start, with the server's environment.

    Raises:
        ConfigError, LaunchError, PermissionDeniedError, AimcError: As :func:`run_folder`.
    """
    server_env = docker_env(dict(os.environ if env is None else env))
    key = api_key(server_env)  # the server gets env: the key it requires, if any
    refuse_busy(name, folder)
    if port_in_use(plan.port):
        raise LaunchError(
            f"port {plan.port} is already in use",
            hint="stop what listens there, or launch with --port N",
        )
    run_id = ""
    if plan.launcher == "docker":
        _docker_check(server_env)
        _refuse_existing_container(name, server_env)
        run_id = secrets.token_hex(16)
    check_runs_writable()
    server_env["AIM_CONTAINER_NAME"] = name
    server_env["AIM_RUN_ID"] = run_id
    return _Start(folder, plan, name, server_env, key, run_id)


def _spawn(start: _Start) -> subprocess.Popen[bytes]:
    """Start ``launch.sh`` in its own session, its output in a new ``server.log``.

    Raises:
        LaunchError: The log cannot be opened, or the script cannot be started.
    """
    script = start.folder / "launch.sh"
    out = new_log(start.log)
    try:
        return subprocess.Popen(
            ["bash", str(script)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=start.folder,
            env=start.env,
            start_new_session=True,
        )
    except OSError as exc:
        raise LaunchError(f"cannot start {script}: {exc.strerror or exc}") from None
    finally:
        os.close(out)


def _start_and_wait(start: _Start, timeout: float, progress: Progress | None) -> RunRecord:
    """Start the server, record it and wait until it is ready; on any failure (a stop
    signal included) stop its whole group, remove its container and forget its record.

    Raises:
        LaunchError, ConfigError, PermissionDeniedError, AimcError, Interrupted.
    """
    with SignalGuard() as guard:
        began = time.monotonic()
        proc = _spawn(start)
        recorded: RunRecord | None = None
        try:
            recorded = record_started(
                proc.pid, start.name, start.plan, start.folder, start.log, start.run_id
            )
            _wait_ready(proc, start, timeout, began, guard, progress)
        except BaseException as exc:
            kill_group(proc.pid, grace=5 if guard.signum is not None else STOP_GRACE)
            if start.docker:
                _docker_rm(start.name, start.env, start.run_id)
            proc.wait()
            if recorded is not None:
                forget(recorded)
            if guard.signum is not None and not isinstance(exc, Interrupted):
                # e.g. the progress line failed on a terminal that hung up
                raise Interrupted(guard.signum) from None
            raise
    return recorded


def _with_container(record: RunRecord, start: _Start) -> RunRecord:
    """The record with its container's id, when a Docker run's container carries the
    run's label (the record is rewritten; the first one already proves the process)."""
    found = _container(start.name, start.env) if start.docker else None
    if found is None or found[1] != start.run_id:
        return record
    record = dataclasses.replace(record, container_id=found[0][:12])
    update_record(record)
    return record


def _wait_ready(
    proc: subprocess.Popen[bytes],
    start: _Start,
    timeout: float,
    began: float,
    guard: SignalGuard,
    progress: Progress | None,
) -> None:
    """Poll until the endpoint is ready, sending the run's API key as the bearer token
    when it has one.

    Raises:
        LaunchError: The server exited (the Docker engine stopped, for a container),
            refused the key (HTTP 401/403 on ``/v1/models``), or was not ready after
            ``timeout`` seconds.
        Interrupted: A stop signal arrived.
    """
    plan, log = start.plan, start.log
    delay = POLL_START
    while True:
        guard.check()
        _refuse_exited(proc, start, began)
        state = probe(plan.port, plan.health_path, plan.served_model_name, api_key=start.key)
        if state == "ready":
            guard.check()
            return
        if state == "unauthorized":
            # The server's auth is set up before it listens: this answer will not change.
            raise _unauthorized(start)
        elapsed = time.monotonic() - began
        if elapsed > timeout:
            raise LaunchError(
                f"the server was not ready after {timeout:g} s; stopped it",
                details=log_tail(log),
                hint=f"its log: {log}",
            )
        if progress is not None:
            progress(elapsed, log, state == "healthy")
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


def _refuse_exited(proc: subprocess.Popen[bytes], start: _Start, began: float) -> None:
    """Raises: LaunchError: The server exited (its group may still hold children: the
    caller stops them before reaping)."""
    code = _exit_status(proc.pid)
    if code is None:
        return
    if start.docker:
        _docker_still_there(start.env, code, start.log)
    raise LaunchError(
        f"the server exited with code {code} after {time.monotonic() - began:.1f} s",
        details=log_tail(start.log),
        hint=f"its log: {start.log}",
    )


def _unauthorized(start: _Start) -> LaunchError:
    """The server refuses aimc's requests to ``/v1/models``: it wants another API key."""
    return LaunchError(
        "the server answers but refuses aimc's requests to /v1/models as "
        f"unauthorized: it requires an API key, and {API_KEY_ENV} "
        + ("is not that key" if start.key else "is not set"),
        details=log_tail(start.log),
        hint=f"start it with the key in {API_KEY_ENV} (aimc passes it through and "
        "sends it as the bearer token); never in its arguments",
    )


def _docker_still_there(env: dict[str, str], code: int, log: Path) -> None:
    """Raises: LaunchError: ``docker run`` ended because the Docker engine stopped."""
    answer, _ = _docker(["version", "--format", "{{.Server.Version}}"], env, 15)
    if answer != 0:
        where = env.get("DOCKER_HOST", "the default socket")
        raise LaunchError(
            f"the Docker engine ({where}) stopped answering while the server "
            f"started; docker run ended with code {code}",
            details=log_tail(log),
            hint="start the Docker engine again, then launch again",
        )
