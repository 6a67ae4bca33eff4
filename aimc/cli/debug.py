"""``aim-engine debug ...``: what aimc knows about recipes (and, later, this machine)."""

from __future__ import annotations

from typing import Any

import click

from aimc.cli.options import format_option, recipes_option
from aimc.cli.report import dump, table

__all__ = ["debug"]


@click.group()
def debug() -> None:
    """Debug commands: recipe-info, gpu-info."""


@debug.command("recipe-info")
@click.argument("model")
@click.option(
    "--gpu-count", type=click.IntRange(1, 64), help="Only configurations that offer this GPU count."
)
@recipes_option
@format_option("table", "json", "yaml")
def recipe_info(model: str, gpu_count: int | None, recipe_dirs: tuple[str, ...], fmt: str) -> None:
    """Display recipe information: source, model facts, weights, configurations."""
    from aimc.catalog import Catalog
    from aimc.resolve import config_id

    recipe = Catalog.default(recipe_dirs).recipe(model)
    data = recipe.data
    confs: list[dict[str, Any]] = []
    for i, conf in enumerate(data["configurations"]):
        if gpu_count is not None and gpu_count not in conf["gpus"]:
            continue
        confs.append(
            {
                "config": config_id(conf, i),
                "backend": conf.get("backend", data.get("defaults", {}).get("backend", "vllm")),
                **{k: conf[k] for k in ("hardware", "precision", "gpus")},
                **{k: conf[k] for k in ("args", "env", "weights") if k in conf},
            }
        )
    info = {
        "model": recipe.model_id,
        "path": recipe.path,
        "source": recipe.root.label,
        "sha256": recipe.doc.sha256,
        "facts": data["model"]["facts"],
        "weights": data["weights"],
        "defaults": data.get("defaults", {}),
        "configurations": confs,
    }
    if fmt != "table":
        click.echo(dump(info, fmt))
        return
    click.echo(f"model:   {info['model']}")
    click.echo(f"recipe:  {info['path']} ({info['source']}, sha256 {info['sha256']})")
    click.echo("facts:   " + ", ".join(f"{k}={v}" for k, v in info["facts"].items()))
    for precision, w in info["weights"].items():
        click.echo(f"weights: {precision}: {w.get('repo') or w.get('path')}")
    click.echo("")
    if not confs:
        click.echo(f"no configuration offers {gpu_count} GPUs")
        return
    click.echo(table(confs, ["config", "backend", "hardware", "precision", "gpus"]))


@debug.command("gpu-info")
@click.option(
    "--detailed",
    is_flag=True,
    help="Also show every detection method tried, and the visibility variables.",
)
@recipes_option
@format_option("table", "json")
def gpu_info(detailed: bool, recipe_dirs: tuple[str, ...], fmt: str) -> None:
    """Display GPU information: the GPUs detected and the hardware profile they match."""
    from aimc.catalog import Catalog
    from aimc.detect import detect
    from aimc.errors import AimcError
    from aimc.hardware import local_target, match_profiles

    catalog = Catalog.default(recipe_dirs)
    detection = detect()
    profiles = match_profiles(detection.gpus, catalog)
    target: str | None = None
    notes: list[str] = []
    try:
        resolved = local_target(catalog, detection, gpus_required=False)
        target, notes = resolved.hardware.name, resolved.notes
    except AimcError as exc:  # mixed GPU models: reported, not fatal here
        notes = [exc.message + (f" ({exc.hint})" if exc.hint else "")]
    rows = [{**g.to_json(), "profile": p} for g, p in zip(detection.gpus, profiles, strict=True)]
    if fmt == "json":
        data: dict[str, Any] = {
            "gpu_count": len(rows),
            "gpus": rows,
            "target": target,
            "notes": notes,
            "warnings": detection.warnings,
            "hidden": detection.hidden,
        }
        if detailed:
            full = detection.to_json()
            data.update(probes=full["probes"], visibility=full["visibility"])
        click.echo(dump(data, "json"))
        return
    if rows:
        click.echo(
            table(
                [
                    {
                        **r,
                        "memory_gib": f"{r['memory_total_mib'] / 1024:.1f}"
                        if r["memory_total_mib"]
                        else None,
                        "free_gib": f"{r['memory_free_mib'] / 1024:.1f}"
                        if r["memory_free_mib"] is not None
                        else None,
                    }
                    for r in rows
                ],
                [
                    "index",
                    "vendor",
                    "model",
                    "architecture",
                    "memory_gib",
                    "free_gib",
                    "device_id",
                    "profile",
                ],
            )
        )
    else:
        click.echo("no GPU detected")
    for note in notes:
        click.echo(f"target: {note}")
    for warning in detection.warnings:
        click.echo(f"warning: {warning}")
    if detailed:
        click.echo("")
        click.echo(table([p.__dict__ for p in detection.probes], ["method", "status", "detail"]))
        for name, value in detection.visibility.items():
            click.echo(f"{name}={value!r}")
