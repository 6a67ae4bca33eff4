"""``aim-engine import aim-profiles|vllm-recipes DIR -o RECIPES_DIR``: convert a foreign
recipe collection into an aimc recipe folder (models/ and hardware/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aimc.cli.options import format_option, recipes_option
from aimc.cli.report import count, emit_result, print_diagnostics, print_error

__all__ = ["import_"]


@click.group("import")
def import_() -> None:
    """Convert AMD AIM profiles or vLLM Recipes into aimc recipes (see docs/interop.md)."""


def _command(source: str, what: str, folder: str) -> click.Command:
    @click.command(
        source,
        help=f"Convert a checkout of {what} at DIR (its root or its {folder}/ folder) "
        "into an aimc recipe folder OUT (models/<org>/<name>.yaml, hardware/<name>.yaml, "
        "manifest.json) whose every recipe compiles. Everything without an aimc "
        "equivalent is reported at its file:line; a configuration that cannot run on a "
        "GPU is left out for it (a warning). Exits 2, writing nothing, when anything else "
        "would keep a recipe from compiling (unless --partial, or --fix for the known "
        "migrations). Facts of a model aimc has no recipe for come from its config.json in "
        "the model cache (CACHE_DIR), else from the hub (HF_ENDPOINT; not with --offline or "
        "HF_HUB_OFFLINE=1); a model without facts is linted, not imported (a warning). "
        "OUT is replaced only when aimc wrote it. Use OUT with --recipes OUT; "
        f"lint the collection with 'aim-engine validate --from {source} DIR'.",
    )
    @click.argument("directory", type=click.Path(path_type=Path))
    @click.option(
        "-o",
        "--output",
        "outdir",
        required=True,
        type=click.Path(path_type=Path),
        help="Recipe folder to write (created, or replaced when aimc wrote it).",
    )
    @click.option(
        "--partial",
        is_flag=True,
        help="Write what compiles even when other configurations or models cannot "
        "(those are left out and reported; exit 0).",
    )
    @click.option(
        "--fix",
        is_flag=True,
        help="Apply the known migrations to the pinned backend versions (args and "
        "variables removed or renamed since; each change reported at its line; the table "
        "is in docs/interop.md).",
    )
    @click.option(
        "--offline",
        is_flag=True,
        help="Never ask the hub for a model's facts (its config.json, safetensors headers): "
        "the model cache only. HF_HUB_OFFLINE=1 does the same.",
    )
    @recipes_option
    @format_option("text", "json", default="text")
    def run(
        directory: Path,
        outdir: Path,
        partial: bool,
        fix: bool,
        offline: bool,
        recipe_dirs: tuple[str, ...],
        fmt: str,
    ) -> None:
        _import(source, directory, outdir, (partial, fix, offline), recipe_dirs, fmt)

    return run


def _import(
    source: str,
    directory: Path,
    outdir: Path,
    modes: tuple[bool, bool, bool],
    recipe_dirs: tuple[str, ...],
    fmt: str,
) -> None:
    from aimc import __version__, interop
    from aimc.check.catalog import Catalog
    from aimc.core.diagnostics import format_text
    from aimc.core.errors import ConfigError
    from aimc.core.write import write_artifacts

    partial, fix, offline = modes
    catalog = Catalog.default(recipe_dirs)
    conversion = interop.convert(source, directory, catalog, fix=fix, offline=offline)
    # What would keep a recipe from compiling, at the foreign lines (not the collection's
    # own claims: those are validate --from's).
    interop.check(conversion, catalog, partial=partial, claims=False)
    diagnostics = conversion.diagnostics.sorted(str(directory))
    data = _report(source, directory, outdir, conversion, diagnostics)
    errors = sum(d.severity == "error" for d in diagnostics)
    if (errors and not partial) or not conversion.recipes:
        data.update(recipes=[], hardware=[])  # nothing is written
    if errors and not partial:
        raise_with = ConfigError(
            f"{count(errors, 'error')} converting {directory}; nothing written",
            hint="fix them, pass --fix for the known migrations, or --partial to write "
            "what compiles",
            details=format_text(diagnostics),
        )
        _fail(raise_with, data, fmt)
    if not conversion.recipes:
        _fail(
            ConfigError(
                f"nothing in {directory} converts to an aimc recipe; nothing written",
                details=format_text(diagnostics) or None,
            ),
            data,
            fmt,
        )
    write_artifacts(outdir, interop.render(conversion, source, __version__))
    message = (
        f"imported {count(len(conversion.recipes), 'model')} and "
        f"{count(len(conversion.hardware), 'hardware profile')} from {directory} into {outdir}"
    )
    if fmt == "json":
        emit_result(data, fmt, message)
        return
    print_diagnostics(diagnostics, summary=True)
    click.echo(message)


def _report(
    source: str, directory: Path, outdir: Path, conversion: Any, diagnostics: list[Any]
) -> dict[str, object]:
    """The import report (``schemas/output.schema.json``: ``import_data``)."""
    errors = sum(d.severity == "error" for d in diagnostics)
    return {
        "source": source,
        "input": str(directory),
        "output": str(outdir),
        "files": len(conversion.files),
        "recipes": sorted(conversion.recipes),
        "hardware": sorted(conversion.hardware),
        "errors": errors,
        "warnings": len(diagnostics) - errors,
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def _fail(error: Exception, data: dict[str, object], fmt: str) -> None:
    from aimc.core.errors import AimcError

    assert isinstance(error, AimcError)
    if fmt == "json":
        print_error(error, data=data)
        raise click.exceptions.Exit(error.exit_code)
    raise error  # printed once, its details (the diagnostics) included


import_.add_command(
    _command("aim-profiles", "AMD AIM profiles (amd-enterprise-ai/aim-build)", "profiles")
)
import_.add_command(_command("vllm-recipes", "vLLM Recipes (vllm-project/recipes)", "models"))
