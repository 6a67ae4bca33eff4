"""The ``aim-engine`` / ``aimc`` command line.

One click group; each command lives in its own module and is imported only when it runs,
so ``aim-engine --help`` and ``aim-engine validate`` stay fast. User errors
(:class:`~aimc.errors.AimcError`) print one line (and a hint) and exit with their code;
anything else is an internal error, shown with a traceback under ``--debug`` or
``AIM_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from aimc import __version__

__all__ = ["main"]

#: command name -> "module:attribute"
COMMANDS = {
    "cache": "aimc.cli.cache:cache",
    "compile": "aimc.cli.compile:compile_",
    "launch": "aimc.cli.serve:launch",
    "run": "aimc.cli.serve:run",
    "status": "aimc.cli.serve:status",
    "stop": "aimc.cli.serve:stop",
    "debug": "aimc.cli.debug:debug",
    "list": "aimc.cli.listing:list_",
    "show-config": "aimc.cli.show_config:show_config",
    "validate": "aimc.cli.validate:validate",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from aimc.diagnostics import did_you_mean

            hint = did_you_mean(name, COMMANDS)
            ctx.fail(
                f"no such command {name!r}." + (f" {hint[0].upper()}{hint[1:]}" if hint else "")
            )
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aim-engine")
@click.option(
    "--debug",
    is_flag=True,
    envvar="AIM_DEBUG",
    help="Show tracebacks of internal errors (also AIM_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """aimc: compile LLM serving recipes into launch artifacts, and run them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("AIM_DEBUG", "0") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console scripts; returns only in tests (standalone_mode off)."""
    from aimc.errors import AimcError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=args, prog_name="aim-engine", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except AimcError as exc:
        from aimc.cli.report import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
    except Exception as exc:
        if _debug_requested(args):
            raise
        from aimc.safety import mask, shorten

        click.echo(f"internal error: {type(exc).__name__}: {mask(shorten(str(exc)))}", err=True)
        click.echo("hint: run again with --debug for a traceback, and report it", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
