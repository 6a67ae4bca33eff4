"""``aim-engine logs NAME [-f] [--tail N]``: the log of a server aimc started."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from aimc.cli.options import Whole, current_settings, format_option
from aimc.cli.report import count, emit_result

if TYPE_CHECKING:
    from aimc.core.records import RunRecord

__all__ = ["logs"]


@click.command()
@click.argument("name")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines until the server stops."
)
@click.option(
    "--tail",
    "-n",
    type=Whole(0, None, "a line count"),
    default=None,
    metavar="N",
    help="Only the last N lines (default: all; --format json: those of the last 16 MiB).",
)
@format_option("text", "json", default="text")
def logs(name: str, follow: bool, tail: int | None, fmt: str) -> None:
    """Print the log of the server NAME (see 'aim-engine status'): its server.log for a
    bare process, the container's log for Docker. Secrets are masked."""
    from aimc.core.errors import ConfigError
    from aimc.core.records import validate_name
    from aimc.run.process import verify
    from aimc.run.runs import find_record, no_such_run

    validate_name(name)
    if follow and fmt == "json":
        raise ConfigError("--follow prints text as it comes; leave out --format json")
    record = find_record(name)
    if record is None:
        raise no_such_run(name)
    if record.launcher == "docker":
        from aimc.run.docker_cli import docker_env
        from aimc.run.serverlog import docker_logs

        env = docker_env(dict(current_settings().server_env()))
        lines = docker_logs(record, tail, follow, env)
        if fmt == "json":
            shown = list(lines)
            emit_result(_data(record, shown), fmt, count(len(shown), "line"))
            return
        for line in lines:
            click.echo(line)
        return

    from aimc.run.serverlog import follow as follow_log
    from aimc.run.serverlog import open_log, read_lines, stream_lines

    fd = open_log(record)
    try:
        if fmt == "json":
            # Held in memory: the lines of at most the last TAIL_MAX bytes.
            shown, _ = read_lines(fd, tail if tail is not None else 1 << 40)
            emit_result(_data(record, shown), fmt, count(len(shown), "line"))
            return
        if tail is None:
            offset = stream_lines(fd, click.echo)
        else:
            shown, offset = read_lines(fd, tail)
            for line in shown:
                click.echo(line)
        if follow:
            follow_log(fd, offset, lambda: verify(record), click.echo)
    finally:
        os.close(fd)


def _data(record: RunRecord, lines: list[str]) -> dict[str, Any]:
    log = record.log if record.launcher == "process" else f"docker logs {record.name}"
    return {"name": record.name, "launcher": record.launcher, "log": log, "lines": lines}
