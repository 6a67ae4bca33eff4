"""The ``aim-engine`` / ``aimc`` command line.

One click group; each command lives in its own module and is imported only when it runs,
so ``aim-engine --help`` and ``aim-engine validate`` stay fast. User errors
(:class:`~aimc.core.errors.AimcError`) print one line (and a hint) and exit with their code;
anything else is an internal error, shown with a traceback under ``--debug`` or
``AIM_DEBUG=1``. The group loads :class:`~aimc.core.settings.Settings` once (``--debug`` is its
flag for ``debug``) and keeps it in ``ctx.obj["settings"]`` for the commands
(:func:`aimc.cli.options.current_settings`).

With ``--format json`` anywhere in the arguments, every failure :func:`main` sees is
printed as the JSON error response on stdout (:func:`aimc.cli.report.print_error`), those
click raises before the command's options are read included:

==========================================  =====================  ==========
failure                                     ``error.code``         exit
==========================================  =====================  ==========
an :class:`~aimc.core.errors.AimcError`          its ``code``           its code
usage error (missing argument, bad or       CONFIGURATION_ERROR    2
unknown option or value, unknown command:
one ``error:`` line and a ``hint:``)
any other exception (a bug)                 INTERNAL_ERROR         1
Ctrl-C; SIGTERM, SIGHUP while ``run`` or    INTERRUPTED            128 + signal
``launch`` waits
==========================================  =====================  ==========
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from aimc import __version__
from aimc.core.settings import Settings

if TYPE_CHECKING:
    from aimc.core.errors import AimcError

__all__ = ["main"]

#: Whether the running command asked for debug (``--debug`` or ``AIM_DEBUG``), for ``main``;
#: whether the entry point paused the garbage collector for start-up (:mod:`aimc.__main__`).
_session = {"debug": False, "gc_paused": False}

#: command name -> "module:attribute"
COMMANDS = {
    "bench": "aimc.cli.bench:bench",
    "cache": "aimc.cli.cache:cache",
    "compile": "aimc.cli.compile:compile_",
    "launch": "aimc.cli.serve:launch",
    "run": "aimc.cli.serve:run",
    "status": "aimc.cli.serve:status",
    "stop": "aimc.cli.serve:stop",
    "debug": "aimc.cli.debug:debug",
    "import": "aimc.cli.interop:import_",
    "list": "aimc.cli.listing:list_",
    "logs": "aimc.cli.logs:logs",
    "show-config": "aimc.cli.show_config:show_config",
    "validate": "aimc.cli.validate:validate",
}


#: command name -> its help's first sentence, what ``aim-engine --help`` lists: the help
#: page imports no command module (each one pulls in its use case). tests/test_cli_startup.py
#: ties every entry to the command's own help.
SUMMARIES = {
    "bench": "Benchmark NAME (a server aimc started) or URL (an OpenAI endpoint): time to "
    "first token, inter-token latency, output tokens/s, requests/s, with a seeded synthetic "
    "workload.",
    "cache": "Model cache commands (CACHE_DIR, default /workspace/model-cache).",
    "compile": "Compile MODEL's recipe for a target into launch artifacts.",
    "debug": "Debug commands: recipe-info, gpu-info.",
    "import": "Convert AMD AIM profiles or vLLM Recipes into aimc recipes (see docs/interop.md).",
    "launch": "Launch MODEL (a recipe's model id, or a local model folder): compile, run, wait.",
    "list": "List available models, recipes, or configurations.",
    "logs": "Print the log of the server NAME (see 'aim-engine status'): its server.log for a "
    "bare process, the container's log for Docker.",
    "run": "Run a folder written by 'aim-engine compile' and wait until it serves.",
    "show-config": "Display the configuration MODEL resolves to, and the alternatives on the "
    "target.",
    "status": "Show the servers aimc started (stale records of exited servers are removed).",
    "stop": "Stop the server NAME (or --all): its whole process group, or its container.",
    "validate": "Validate recipes and hardware profiles.",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used; its help
    page lists the commands from :data:`SUMMARIES`, importing none."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # A stand-in command shortens a summary exactly as click shortens the real help.
        rows = [(n, click.Command(n, help=SUMMARIES[n]).get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        _resume_gc()
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from aimc.core.diagnostics import did_you_mean

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
    help="Show tracebacks of internal errors; verbose server logs for launch (also AIM_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """aimc: compile LLM serving recipes into launch artifacts, and run them."""
    ctx.ensure_object(dict)
    # --debug is given only when set; AIM_DEBUG decides otherwise (no click envvar: it
    # made every command a usage error for values click does not read as a boolean).
    settings = Settings.load(debug=True if debug else None)
    _session["debug"] = settings.debug
    ctx.obj["settings"] = settings
    ctx.obj["debug"] = settings.debug


def _format_asked(argv: list[str]) -> str:
    """The value of the last ``--format`` in ``argv`` (``table`` without one)."""
    fmt = "table"
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--format" and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif word.startswith("--format="):
            fmt = word.partition("=")[2]
    return fmt


def _debug_requested(argv: list[str]) -> bool:
    """Show the traceback of an internal error: ``--debug`` (the group's or launch's), or
    ``AIM_DEBUG`` read by the settings the group loaded."""
    return "--debug" in argv or _session["debug"]


def _resume_gc() -> None:
    """Start-up is over (the command's module is loaded): freeze what it made and turn the
    collector back on, if the entry point paused it (:mod:`aimc.__main__`)."""
    if _session["gc_paused"]:
        _session["gc_paused"] = False
        gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None, *, gc_paused: bool = False) -> Any:
    """The command line (:mod:`aimc.__main__` is the console scripts' entry); returns only
    in tests (standalone_mode off). ``gc_paused``: the caller turned the garbage collector
    off for start-up; it is back on before the command runs (:func:`_resume_gc`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _session["debug"] = False
    _session["gc_paused"] = gc_paused
    try:
        return _main(args)
    finally:
        _resume_gc()  # --help, --version, a usage error: no command was loaded


def _main(args: list[str]) -> Any:
    from aimc.cli import report
    from aimc.core.errors import AimcError, InternalError

    # Usage errors come before the command reads its --format: they take the one asked.
    fmt = _format_asked(args)
    report.set_format(fmt)
    as_json = fmt == "json"
    try:
        code = cli.main(args=args, prog_name="aim-engine", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort as exc:  # click's form of a KeyboardInterrupt (Ctrl-C)
        sys.exit(_interrupted(exc.__cause__ or exc, as_json, "Aborted."))
    except click.ClickException as exc:
        status = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        # aimc's lines (error, hint: see '... --help'), not click's usage block; even when
        # the command took "--format" as another option's value.
        report.set_format("json" if as_json else "table")
        report.print_error(_click_error(exc))
        sys.exit(status)
    except AimcError as exc:
        report.print_error(exc)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(130)
    except KeyboardInterrupt as exc:
        sys.exit(_interrupted(exc, as_json))
    except Exception as exc:
        from aimc.core.safety import mask, shorten

        what = f"{type(exc).__name__}: {mask(shorten(str(exc)))}"
        hint = "run again with --debug for a traceback, and report it"
        error = InternalError(f"internal error: {what}", hint=hint)
        debug = _debug_requested(args)
        if as_json:
            report.print_error(error)
        elif _log_format() == "json":
            import traceback

            from aimc.core.log import line

            trace = "".join(traceback.format_exception(exc)) if debug else None
            line("error", error.message, "ERROR", code=error.code, hint=hint, traceback=trace)
            sys.exit(1)
        if debug:
            raise
        if not as_json:
            click.echo(f"internal error: {what}", err=True)
            click.echo(f"hint: {hint}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted(exc: BaseException, as_json: bool, text: str | None = None) -> int:
    """Report a stop signal (Ctrl-C; the runner's ``Interrupted`` carries its ``signum``):
    the JSON error response under ``--format json``, one record under ``LOG_FORMAT=json``,
    else ``text`` (click's ``Aborted.``) when given; the exit status, 128 + the signal's
    number."""
    signum = getattr(exc, "signum", signal.SIGINT)
    if as_json or _log_format() == "json":
        from aimc.cli.report import print_error
        from aimc.core.errors import StoppedBySignal

        name = signal.Signals(signum).name
        print_error(StoppedBySignal(f"interrupted by {name}", signum=signum))
    elif text:
        click.echo(text, err=True)
    return 128 + int(signum)


def _log_format() -> str:
    """``LOG_FORMAT`` (json or text) for what :func:`main` writes on stderr itself."""
    from aimc.core.settings import setting

    return setting("log_format")


def _click_error(exc: click.ClickException) -> AimcError:
    """A click error as the error it reports: a usage error is a configuration error."""
    from aimc.core.errors import AimcError, ConfigError

    ctx = getattr(exc, "ctx", None)
    hint = getattr(exc, "hint", None)  # a "did you mean" (aimc.cli.options.BadValue)
    if hint is None and ctx is not None:
        hint = f"see '{ctx.command_path} --help'"
    message = " ".join(exc.format_message().split()).removesuffix(".")  # may span lines
    if isinstance(exc, click.UsageError):
        return ConfigError(message, hint=hint)
    return AimcError(message, hint=hint)
