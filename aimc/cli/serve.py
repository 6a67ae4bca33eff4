"""``aim-engine launch``, ``run``, ``status`` and ``stop``: servers started and watched."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aimc.app.launch import LAUNCHED, prepare, start
from aimc.cli.emit_options import EmitArgs, emit_options
from aimc.cli.options import (
    PlanArgs,
    Seconds,
    current_settings,
    format_option,
    gpu_count_type,
    plan_options,
)
from aimc.cli.report import count, emit_result, print_error, table
from aimc.core.errors import ConfigError, StoppedBySignal
from aimc.core.log import line, note
from aimc.core.records import RunRecord, validate_name
from aimc.run.interrupts import Interrupted
from aimc.run.probe import API_KEY_ENV, api_key, probe
from aimc.run.process import verify
from aimc.run.progress import StartWatch, for_stderr
from aimc.run.runner import run_folder
from aimc.run.runs import forget, load_records, no_such_run, stop_record

__all__ = ["launch", "run", "status", "stop"]


def _timeout_option(f: Any) -> Any:
    """``--timeout``: None when not given, so that the settings apply
    ``--timeout > $DEFAULT_TIMEOUT > 600`` (:mod:`aimc.core.settings`)."""
    return click.option(
        "--timeout",
        type=Seconds(1),
        default=None,
        show_default="$DEFAULT_TIMEOUT or 600",
        help="Seconds to wait for the endpoint to be ready.",
    )(f)


def _name_option(f: Any) -> Any:
    return click.option(
        "--name", metavar="NAME", help="Name of the run (default: the plan's, e.g. aim-qwen3-32b)."
    )(f)


def _started(record: RunRecord, fmt: str, seconds: float) -> None:
    if fmt == "json":
        emit_result(record.seed_data("running"), fmt, LAUNCHED)
        return
    click.echo(
        f"ready: {record.endpoint_url} serves {record.model} "
        f"({record.container_id}, {seconds:.1f} s)"
    )
    click.echo(f"log:   {record.log}")
    click.echo(f"stop:  aim-engine stop {record.name}")


def _run(fmt: str, begin: Callable[[StartWatch], RunRecord]) -> None:
    """Start a server with ``begin`` (given the progress watch) and report it: ready, or
    stopped by a signal (exit 128 + the signal)."""
    # The server's phase while it starts: a status line on a terminal, else notes.
    watch = for_stderr(fmt)
    began = time.monotonic()
    try:
        record = begin(watch)
    except BaseException as exc:
        # After SIGHUP the terminal may be gone: reporting must not change the exit code.
        with contextlib.suppress(OSError, ValueError):
            watch.close()
            if isinstance(exc, Interrupted):
                _report_stop(exc, fmt)
        if isinstance(exc, Interrupted):
            raise click.exceptions.Exit(128 + exc.signum) from None
        raise
    with contextlib.suppress(OSError, ValueError):
        watch.done(time.monotonic() - began, Path(record.log))
    _started(record, fmt, time.monotonic() - began)


def _report_stop(exc: Interrupted, fmt: str) -> None:
    what = signal.Signals(exc.signum).name
    message = f"{what} while waiting for the server; stopped it"
    if fmt == "json":
        print_error(StoppedBySignal(f"stopped: {message}", signum=exc.signum))
    else:
        line("stopped", message, "ERROR", code="INTERRUPTED")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_timeout_option
@_name_option
@format_option("text", "json", default="text")
def run(folder: Path, timeout: float | None, name: str | None, fmt: str) -> None:
    """Run a folder written by 'aim-engine compile' and wait until it serves."""
    if name is not None:
        validate_name(name)
    settings = current_settings().with_flags(default_timeout=timeout)
    env = settings.server_env()
    _run(
        fmt,
        lambda watch: run_folder(
            folder, settings.default_timeout, name=name, progress=watch, env=env
        ),
    )


@click.command()
@click.argument("model")
@click.argument("gpu_count", required=False, type=gpu_count_type())
@plan_options
@emit_options
@_timeout_option
@_name_option
@click.option(
    "--use-cache/--no-cache",
    default=True,
    show_default=True,
    help="Use the cached model if it is in CACHE_DIR (start offline), or download it afresh first.",
)
@click.option(
    "--debug",
    "debug_server",
    is_flag=True,
    help="Debug mode: verbose server logs, tracebacks for internal errors (also AIM_DEBUG=1).",
)
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    help="Folder for the compiled artifacts (default: in the state folder).",
)
@format_option("text", "json", default="text")
def launch(
    model: str,
    gpu_count: int | None,
    opts: PlanArgs,
    emit: EmitArgs,
    timeout: float | None,
    name: str | None,
    use_cache: bool,
    debug_server: bool,
    outdir: Path | None,
    fmt: str,
) -> None:
    """Launch MODEL (a recipe's model id, or a local model folder): compile, run, wait.

    GPU_COUNT is auto-detected when left out. The artifacts are written to --output (or
    a folder in the state directory) and run like 'aim-engine run'.
    """
    emit.check()
    if emit.emit != "local":
        raise ConfigError(
            f"launch runs the local artifacts; --emit {emit.emit} artifacts are for a cluster",
            hint=f"aim-engine compile {model} --target NAME --emit {emit.emit} -o DIR, then "
            "kubectl apply -f DIR",
        )
    if name is not None:
        validate_name(name)
    settings = current_settings().with_flags(
        default_timeout=timeout, debug=True if debug_server else None
    )
    # Debug: the backend's verbose-log settings go into the plan (aim.env, docker -e,
    # compose), so they reach the server under either launcher.
    resolved = opts.resolve(model, gpu_count, debug=settings.debug)
    target = resolved.target
    prepared = prepare(
        resolved.plan,
        resolved.request,
        target.hardware.name,
        settings,
        name=name,
        folder=outdir,
        use_cache=use_cache,
    )
    if fmt != "json":
        for text in (*target.notes, *prepared.notes):
            note(text)
        note(f"compiled: {prepared.folder}")
    _run(fmt, lambda watch: start(prepared, settings.default_timeout, watch))


#: Seconds ``status`` waits for each of a server's two answers (``/health``, ``/v1/models``)
#: before calling it "starting": a busy server is slow to answer, not starting.
STATUS_TIMEOUT = 5.0


#: ``status`` of a server by what :func:`aimc.run.probe.probe` found.
_STATES = {"ready": "running", "unauthorized": "unauthorized"}


def _status_rows() -> list[dict[str, Any]]:
    """Each provably running server with its state: ``running``, ``starting``, or
    ``unauthorized`` (it answers ``/health``, but ``/v1/models`` refuses the caller's
    ``VLLM_API_KEY``, or its absence: the caller lacks the key it was started with)."""
    key = api_key()  # the caller's: a server started with a key wants it on /v1/*
    rows = []
    for record in load_records():
        if not verify(record):
            forget(record)  # gone, or its pid now names another process: a stale record
            continue
        found = probe(record.port, record.health_path, record.model, STATUS_TIMEOUT, key)
        state = _STATES.get(found, "starting")
        if state == "unauthorized":
            note(
                f"{record.name} answers, but refuses /v1/models as unauthorized: set "
                f"{API_KEY_ENV} to the API key it was started with",
                level="WARNING",
            )
        rows.append(
            {
                **record.seed_data(state),
                "name": record.name,
                "pid": record.pid,
                "model": record.model,
                "folder": record.folder,
                "log": record.log,
            }
        )
    return rows


@click.command()
@format_option("table", "json", default="table")
def status(fmt: str) -> None:
    """Show the servers aimc started (stale records of exited servers are removed)."""
    rows = _status_rows()
    if fmt == "json":
        emit_result(rows, fmt, f"{count(len(rows), 'server')} started by aimc")
        return
    if not rows:
        click.echo("no server running")
        return
    click.echo(table(rows, ["name", "status", "endpoint_url", "model", "container_id", "folder"]))


@click.command()
@click.argument("name", required=False)
@click.option("--all", "stop_all", is_flag=True, help="Stop every server aimc started.")
@format_option("text", "json", default="text")
def stop(name: str | None, stop_all: bool, fmt: str) -> None:
    """Stop the server NAME (or --all): its whole process group, or its container."""
    if stop_all == bool(name):
        raise ConfigError("give a NAME or --all", hint="see 'aim-engine status'")
    records = load_records()
    chosen = records if stop_all else [r for r in records if r.name == name]
    if name and not chosen:
        raise no_such_run(name, [r.name for r in records])
    stopped: list[str] = []
    stale: list[str] = []
    for record in chosen:
        if stop_record(record):
            stopped.append(record.name)
        else:
            stale.append(record.name)
            note(
                f"the record of {record.name} is stale (pid {record.pid} is gone or is not "
                "the process aimc started); forgot it, signalled nothing",
                level="WARNING",
            )
    if fmt == "json":
        data = {"stopped": stopped, "stale": stale}
        emit_result(data, fmt, f"stopped {count(len(stopped), 'server')}")
    else:
        click.echo(f"stopped: {', '.join(stopped)}" if stopped else "no server running")
