"""``aim-engine compile MODEL [GPU_COUNT]``: write launch artifacts, or check them."""

from __future__ import annotations

import os
from pathlib import Path

import click

from aimc.app.compile import Compilation, compile_to
from aimc.cli.emit_options import EmitArgs, emit_options
from aimc.cli.options import (
    PlanArgs,
    format_option,
    gpu_count_type,
    plan_options,
)
from aimc.cli.report import emit_result, print_error
from aimc.core.diagnostics import github_annotation
from aimc.core.errors import AimcError
from aimc.core.log import line, note

__all__ = ["compile_"]


@click.command("compile")
@click.argument("model")
@click.argument("gpu_count", required=False, type=gpu_count_type())
@plan_options
@emit_options
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    default="build",
    show_default=True,
    help="Folder for the artifacts (replaced as a whole).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 with a diff if OUTPUT differs from what would be generated.",
)
@format_option("text", "json", "github", default="text")
def compile_(
    model: str,
    gpu_count: int | None,
    opts: PlanArgs,
    emit: EmitArgs,
    outdir: Path,
    check: bool,
    fmt: str,
) -> None:
    """Compile MODEL's recipe for a target into launch artifacts.

    Writes launch.sh, aim.env, the backend's config file, compose.yaml (when the target
    has a container image) and manifest.json into OUTPUT; with --emit k8s, Kubernetes
    manifests instead (deployment.yaml, service.yaml, pvc.yaml, and manifest.aimc, a name
    kubectl does not read: kubectl apply -f OUTPUT). The same inputs always give
    byte-identical files.
    """
    emit.check()
    resolved = opts.resolve(model, gpu_count)
    for text in resolved.target.notes:
        note(text)
    done = compile_to(
        resolved, outdir, emit.emit, emit.replicas, check=check, autoscale=emit.autoscale
    )
    if check:
        _report_check(done, fmt)
        return
    if fmt == "json":
        emit_result(done.to_json(), fmt, f"wrote {outdir}")
        return
    for decision in done.plan.decisions:
        note(decision)
    click.echo(f"wrote {outdir}/ ({', '.join(sorted(done.compiled.files))})")
    click.echo(done.summary)


def _report_check(done: Compilation, fmt: str) -> None:
    """``--check``: say whether the folder is up to date (the diff, or one GitHub Actions
    annotation per stale file); exit 1 when it is not."""
    outdir, diff = done.outdir, done.diff
    if fmt == "json" and not diff:
        emit_result(done.to_json(), fmt, f"{outdir} is up to date")
    elif fmt == "json":
        stale = AimcError(f"{outdir} is out of date", hint="run the same command without --check")
        print_error(stale, data=done.to_json())
    elif fmt == "github" and diff:
        _annotate_drift(done)
    elif diff:
        click.echo(diff, nl=False)
        out_of_date = f"{outdir} is out of date; run the same command without --check"
        line("error", out_of_date, "ERROR", text=out_of_date, code="GENERAL_ERROR")
    else:
        click.echo(f"{outdir} is up to date")
    if diff:
        raise click.exceptions.Exit(1)


def _annotate_drift(done: Compilation) -> None:
    """One GitHub Actions annotation per stale file (``--check --format github``)."""
    for name in done.stale():
        where = os.path.relpath(done.outdir / name)
        click.echo(
            github_annotation(
                "error",
                where,
                "aimc drift",
                f"{name} is not what the recipes compile to; run the same command without "
                "--check and commit the result",
            )
        )
    click.echo(f"{done.outdir} is out of date; run the same command without --check")
