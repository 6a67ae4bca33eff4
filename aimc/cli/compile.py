"""``aim-engine compile MODEL [GPU_COUNT]``: write launch artifacts, or check them."""

from __future__ import annotations

from pathlib import Path

import click

from aimc.cli.options import (
    EmitArgs,
    PlanArgs,
    emit_options,
    format_option,
    gpu_count_type,
    plan_options,
)
from aimc.cli.report import emit_result, print_error

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
    from aimc.emitters import compiled as emitted
    from aimc.emitters import emitter
    from aimc.log import note
    from aimc.write import diff_artifacts, write_artifacts

    emit.check()
    resolved = opts.resolve(model, gpu_count)
    for text in resolved.target.notes:
        note(text)
    target = resolved.target.hardware.name
    compiled = emitted(emit.emit, resolved.plan, resolved.request, target, emit.replicas)
    plan = compiled.plan
    if check:
        from aimc.errors import AimcError

        diff = diff_artifacts(outdir, compiled.files)
        data = {"output": str(outdir), "diff": diff}
        if fmt == "json" and not diff:
            emit_result(data, fmt, f"{outdir} is up to date")
        elif fmt == "json":
            stale = AimcError(
                f"{outdir} is out of date", hint="run the same command without --check"
            )
            print_error(stale, data=data)
        elif fmt == "github" and diff:
            _annotate_drift(outdir, compiled.files)
        elif diff:
            click.echo(diff, nl=False)
            from aimc.log import line

            out_of_date = f"{outdir} is out of date; run the same command without --check"
            line("error", out_of_date, "ERROR", text=out_of_date, code="GENERAL_ERROR")
        else:
            click.echo(f"{outdir} is up to date")
        if diff:
            raise click.exceptions.Exit(1)
        return
    from aimc.runs import refuse_running_in

    refuse_running_in(outdir)  # never replace the folder (and log) of a running server
    write_artifacts(outdir, compiled.files)
    summary = (
        f"{plan.model_id} on {plan.hardware['name']}: {plan.backend} {plan.precision}, "
        + (f"{plan.nodes} nodes x " if plan.nodes > 1 else "")
        + f"{plan.gpus} GPU{'s' if plan.gpus != 1 else ''}"
        + (f" x {plan.data_parallel} replicas" if plan.data_parallel > 1 else "")
        + (f" (devices {','.join(map(str, plan.devices))})" if plan.devices is not None else "")
        + f", configuration {plan.configuration}"
    )
    if (extra := emitter(emit.emit).summary) is not None:
        summary += f"; {extra(emit.replicas)}"
    if fmt == "json":
        written = {
            "output": str(outdir),
            "artifacts": sorted(compiled.files),
            "model": plan.model_id,
            "target": plan.hardware["name"],
            "backend": plan.backend,
            "precision": plan.precision,
            "gpu_count": plan.gpus,
            "devices": plan.devices,
            "configuration": plan.configuration,
            "decisions": plan.decisions,
        }
        emit_result(written, fmt, f"wrote {outdir}")
        return
    for decision in plan.decisions:
        note(decision)
    click.echo(f"wrote {outdir}/ ({', '.join(sorted(compiled.files))})")
    click.echo(summary)


def _annotate_drift(outdir: Path, files: dict[str, str]) -> None:
    """One GitHub Actions annotation per stale file (``--check --format github``)."""
    import os

    from aimc.diagnostics import github_annotation
    from aimc.write import stale_artifacts

    for name in stale_artifacts(outdir, files):
        where = os.path.relpath(outdir / name)
        click.echo(
            github_annotation(
                "error",
                where,
                "aimc drift",
                f"{name} is not what the recipes compile to; run the same command without "
                "--check and commit the result",
            )
        )
    click.echo(f"{outdir} is out of date; run the same command without --check")
