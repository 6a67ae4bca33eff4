"""``aim-engine validate [PATH...]``: check recipe files and folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from aimc.backends import use_installed
from aimc.check.catalog import Catalog
from aimc.check.checker import check_paths
from aimc.cli.options import OneOf, format_option, recipes_option
from aimc.cli.report import count, emit_result, print_error
from aimc.core.diagnostics import format_github, format_text
from aimc.core.errors import ConfigError
from aimc.core.log import note

__all__ = ["validate"]

# check_paths is imported above, not in the command: a command's module loads while the
# garbage collector is paused (aimc/__main__.py), and the checker (schema, lint, the
# policy) is most of what validate loads.


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@recipes_option
@format_option("text", "json", "github", default="text")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 2).")
@click.option(
    "--backend-from-env",
    is_flag=True,
    help="Check vLLM engine args against the vLLM that $AIM_PYTHON (else this Python) "
    "imports, instead of the pinned snapshot.",
)
@click.option(
    "--cache",
    "cache",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Keep verdicts in FILE and reuse them for files whose content, place, hardware "
    "profiles and aimc version are unchanged (e.g. a CI cache).",
)
@click.option(
    "--from",
    "source",
    type=OneOf(["aim-profiles", "vllm-recipes"]),
    help="PATHS are checkouts of a foreign collection (AMD AIM profiles, vLLM Recipes), "
    "each its root or the format's own folder (profiles/, models/): lint them through the "
    "conversion of 'aim-engine import', at the original lines.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="With --from: a dry run of 'import --fix'. Prints the known migrations as a "
    "unified diff of the collection's files (--format text; apply it with git apply), "
    "then the problems left after them. Changes nothing.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="With --from: never ask the hub for the facts of a model aimc has no recipe for "
    "(its config.json, safetensors headers); the model cache only. HF_HUB_OFFLINE=1 does "
    "the same.",
)
def validate(
    paths: tuple[Path, ...],
    recipe_dirs: tuple[str, ...],
    fmt: str,
    strict: bool,
    backend_from_env: bool,
    cache: Path | None,
    source: str | None,
    fix: bool,
    offline: bool,
) -> None:
    """Validate recipes and hardware profiles.

    PATHS are files or folders (searched for *.yaml and *.yml); without any, the shipped
    catalog and every --recipes / $AIMC_RECIPES directory are checked. Exits 0 when all
    files are valid, 2 otherwise, after printing every problem as
    path:LINE:COL: error: message (at /pointer). With --format json: the success
    response with the report as data, or, when invalid, the error response
    (CONFIGURATION_ERROR) with the same report as data. With --format github: GitHub
    Actions workflow commands (::error file=...,line=...,col=...::message), paths
    relative to the current folder, so a pull request shows each problem at its line.
    """
    if backend_from_env:
        python = os.environ.get("AIM_PYTHON") or sys.executable
        note(f"engine args checked against {use_installed('vllm', python)} of {python}")
    catalog = Catalog.default(recipe_dirs)
    _check_modes(source, cache, fix, offline)
    if source is not None:
        # Deferred: the converters of foreign collections load only for --from.
        from aimc.interop import check_collections

        result, changes = check_collections(source, list(paths), catalog, fix=fix, offline=offline)
        if fix and fmt == "text":
            _print_patch(changes)
    else:
        result = check_paths(list(paths), catalog, cache)
    files = count(len(result.files), "file")
    if fmt == "json" and result.ok(strict):
        emit_result(result.to_json(strict), fmt, f"{files} valid")
    elif fmt == "json":
        problems = f"{count(result.errors, 'error')}, {count(result.warnings, 'warning')}"
        error = ConfigError(
            f"{problems} in {files}" + (" (--strict)" if strict else ""),
            details=format_text(result.diagnostics),
        )
        print_error(error, data=result.to_json(strict))
    elif fmt == "github":
        click.echo(format_github(result.diagnostics) or f"{files} valid")
    elif result.diagnostics:
        click.echo(format_text(result.diagnostics))
    else:
        click.echo(f"{files} valid")
    if not result.ok(strict):
        raise click.exceptions.Exit(2)


def _check_modes(source: str | None, cache: Path | None, fix: bool, offline: bool) -> None:
    """Refuse the options of one kind of input given with the other.

    Raises:
        ConfigError: ``--cache`` with ``--from``; ``--fix`` or ``--offline`` without it.
    """
    if source is not None and cache is not None:
        raise ConfigError("--cache applies to aimc recipes, not to --from collections")
    for flag, given in (("--fix", fix), ("--offline", offline)):
        if given and source is None:
            raise ConfigError(f"{flag} applies to --from collections", hint="add --from FORMAT")


def _print_patch(changes: list[Any]) -> None:
    """The migrations ``import --fix`` would make, as a diff of the collection's files."""
    from aimc.interop._migrations import patch

    text, missed = patch(changes)
    if text:
        click.echo(text, nl=False)
    if missed:
        click.echo(f"# {count(missed, 'change')} not in the diff (flow-style text): see below")
    if not changes:
        click.echo("# nothing to migrate")
