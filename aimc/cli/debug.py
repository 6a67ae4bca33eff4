"""``aim-engine debug ...``: what aimc knows about recipes (and, later, this machine)."""

from __future__ import annotations

from typing import Any

import click

from aimc.app.pipeline import make_plan
from aimc.app.show import nowhere
from aimc.check.catalog import Catalog
from aimc.check.hardware import Target, local_target, match_profiles, resolve_target
from aimc.cli.options import current_settings, format_option, gpu_count_type, recipes_option
from aimc.cli.report import count, emit_result, table
from aimc.cli.show_config import plan_text
from aimc.core.errors import AimcError, ConfigError
from aimc.detect import Detection, detect
from aimc.domain.recipe import Recipe, config_id
from aimc.plan.candidates import candidates
from aimc.plan.model import Plan
from aimc.plan.request import Request

__all__ = ["debug"]


@click.group()
def debug() -> None:
    """Debug commands: recipe-info, gpu-info."""


@debug.command("recipe-info")
@click.argument("model")
@click.option(
    "--gpu-count",
    type=gpu_count_type(),
    help="Resolve the configuration for this GPU count (on the target; without one, on every "
    "target that offers it), and list only the configurations that offer it.",
)
@click.option(
    "--target",
    default="auto",
    show_default=True,
    metavar="NAME",
    help="Hardware profile to resolve --gpu-count for; auto detects this machine.",
)
@recipes_option
@format_option("table", "json", "yaml")
def recipe_info(
    model: str, gpu_count: int | None, target: str, recipe_dirs: tuple[str, ...], fmt: str
) -> None:
    """Display recipe information: source, model facts, weights, configurations.

    With --gpu-count N, also the configuration for N GPUs resolved: its args, env, image
    and memory estimate per GPU with its verdict, on the target (--target NAME, or GPUs
    detected here), else on every target whose configurations offer N GPUs (those that
    refuse it listed with why). When no target resolves N, exit 2 with the reason, as
    show-config --gpu-count N and launch say it.

    \b
    Data (--format json: the "data" of the success response; yaml: the data alone):
      model, path, source, sha256, facts, weights, defaults, configurations
      resolved    with --gpu-count, one entry per target: target, gpus, configuration,
                  backend, precision, data_parallel, image, launcher, args and env
                  (name: value), memory (the estimate per GPU, GiB), verdict, decisions;
                  error and hint when that target refuses (the others null) while
                  another resolves
    """
    catalog = Catalog.default(recipe_dirs)
    recipe = catalog.recipe(model)
    confs = _configurations(recipe, gpu_count)
    info = _recipe_data(recipe, confs)
    shown: list[tuple[dict[str, Any], Plan | None]] = []
    if gpu_count is not None:
        shown = _resolve_count(catalog, recipe, gpu_count, target)
        info["resolved"] = [entry for entry, _ in shown]
    if fmt != "table":
        emit_result(info, fmt, _recipe_message(recipe, confs, gpu_count, shown))
        return
    _print_recipe(info, confs, gpu_count, shown)


def _configurations(recipe: Recipe, gpu_count: int | None) -> list[dict[str, Any]]:
    """The recipe's configurations (those that offer ``gpu_count`` GPUs, when given)."""
    confs: list[dict[str, Any]] = []
    for i, conf, backend in recipe.configurations():
        if gpu_count is not None and gpu_count not in conf["gpus"]:
            continue
        confs.append(
            {
                "config": config_id(conf, i),
                "backend": backend,
                **{k: conf[k] for k in ("hardware", "precision", "gpus")},
                **{k: conf[k] for k in ("args", "env", "weights") if k in conf},
            }
        )
    return confs


def _recipe_data(recipe: Recipe, confs: list[dict[str, Any]]) -> dict[str, Any]:
    """The data of ``recipe-info`` without ``resolved``."""
    data = recipe.data
    return {
        "model": recipe.model_id,
        "path": recipe.path,
        "source": recipe.root.label,
        "sha256": recipe.doc.sha256,
        "facts": data["model"]["facts"],
        "weights": data["weights"],
        "defaults": data.get("defaults", {}),
        "configurations": confs,
    }


def _recipe_message(
    recipe: Recipe,
    confs: list[dict[str, Any]],
    gpu_count: int | None,
    shown: list[tuple[dict[str, Any], Plan | None]],
) -> str:
    """The success response's message: the configurations, and where the count resolved."""
    plural = "s" if len(confs) != 1 else ""
    message = f"{recipe.model_id}: {len(confs)} configuration{plural}"
    if gpu_count is not None:
        ok = [e["target"] for e, _ in shown if e["error"] is None]
        message += f"; {gpu_count} GPU{'s' if gpu_count != 1 else ''} resolved on " + (
            ", ".join(ok) if ok else "no target"
        )
    return message


def _print_recipe(
    info: dict[str, Any],
    confs: list[dict[str, Any]],
    gpu_count: int | None,
    shown: list[tuple[dict[str, Any], Plan | None]],
) -> None:
    """``recipe-info`` as text."""
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
    for entry, plan in shown:
        click.echo("")
        click.echo(_resolved_text(entry, plan))


def _resolve_count(
    catalog: Catalog, recipe: Recipe, gpus: int, target_name: str
) -> list[tuple[dict[str, Any], Plan | None]]:
    """The configuration for ``gpus`` GPUs resolved on the target (``auto`` with GPUs, or a
    named one), else on every target whose configurations offer that count: (entry, plan
    or None) per target.

    Raises:
        ConfigError: No target resolves the count, as ``show-config --gpu-count`` and
            ``launch`` say it: the target's refusal, or that no configuration offers it.
    """
    settings = current_settings()
    request = Request(model=recipe.model_id, gpus=gpus, default_port=settings.default_port_given)
    resolved = resolve_target(catalog, target_name)
    if target_name != "auto" or resolved.available_gpus is not None:
        targets = [resolved]
    else:  # no GPU here: every target that offers the count
        names = sorted({c.hardware for c in candidates(recipe) if c.gpus == gpus})
        if not names:
            raise nowhere(recipe, request, gpus)
        targets = [Target(catalog.hardware(name)) for name in names]
    out: list[tuple[dict[str, Any], Plan | None]] = []
    refusals: list[AimcError] = []
    for t in targets:
        try:
            plan = make_plan(catalog, request, t, cache_dir=settings.cache_dir)
        except AimcError as exc:
            out.append((_resolved_entry(t.hardware.name, gpus, None, exc), None))
            refusals.append(exc)
            continue
        out.append((_resolved_entry(t.hardware.name, gpus, plan, None), plan))
    if len(refusals) == len(targets) == 1:
        raise refusals[0]
    if refusals and len(refusals) == len(targets):
        raise ConfigError(
            f"no target resolves {recipe.model_id} on {gpus} GPU{'s' if gpus != 1 else ''}",
            hint="; ".join(f"{e['target']}: {e['error']}" for e, _ in out),
        )
    return out


def _resolved_entry(target: str, gpus: int, plan: Any, error: Any) -> dict[str, Any]:
    """One target's resolution for ``--gpu-count``: target, gpus; configuration, backend,
    precision, data_parallel, image, launcher, args and env (name -> value), memory (the
    estimate per GPU in GiB: weights, KV cache, overhead, need, budget, max_context...),
    verdict and decisions; or, when refused, null for those and ``error`` / ``hint``."""
    entry: dict[str, Any] = {"target": target, "gpus": gpus}
    if plan is None:
        keys = ("configuration", "backend", "precision", "data_parallel", "image", "launcher")
        entry.update(dict.fromkeys(keys))
        entry.update(args=None, env=None, memory=None, verdict=None, decisions=[])
        entry.update(error=error.message, hint=error.hint)
        return entry
    entry.update(
        configuration=plan.configuration,
        backend=plan.backend,
        precision=plan.precision,
        data_parallel=plan.data_parallel,
        image=plan.image,
        launcher=plan.launcher,
        args={k: s.value for k, s in plan.args.items()},
        env={k: s.value for k, s in plan.env.items()},
        memory=dict(plan.estimate),
        verdict=plan.estimate["verdict"],
        decisions=list(plan.decisions),
        error=None,
        hint=None,
    )
    return entry


def _resolved_text(entry: dict[str, Any], plan: Any) -> str:
    """One resolution as text: the plan (args, env, image, memory), or the refusal."""
    head = f"{entry['gpus']} GPU{'s' if entry['gpus'] != 1 else ''} on {entry['target']}"
    if plan is None:
        lines = [f"{head}: refused: {entry['error']}"]
        return "\n".join(lines + ([f"hint: {entry['hint']}"] if entry["hint"] else []))
    m = entry["memory"]
    return "\n".join(
        [
            f"{head}: configuration {plan.configuration} resolved",
            f"memory per GPU: weights {m['weights_gib']:.2f} + KV cache {m['kv_gib']:.2f} "
            f"({m['context_length']} tokens) + overhead {m['overhead_gib']:.2f} = "
            f"{m['need_gib']:.2f} of {m['budget_gib']:.2f} GiB usable",
            plan_text(plan, explain=False),
        ]
    )


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
    catalog = Catalog.default(recipe_dirs)
    detection = detect()
    profiles = match_profiles(detection.gpus, catalog)
    target, notes = _local_profile(catalog, detection)
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
        found = f"{count(len(rows), 'GPU')} detected" if rows else "no GPU detected"
        emit_result(data, fmt, found + (f"; target {target}" if target else ""))
        return
    _print_gpus(rows, notes, detection, detailed)


def _local_profile(catalog: Catalog, detection: Detection) -> tuple[str | None, list[str]]:
    """The hardware profile ``--target auto`` resolves to here (None without a GPU) and
    the notes on it; mixed GPU models are a note, not fatal here."""
    try:
        resolved = local_target(catalog, detection, gpus_required=False)
    except AimcError as exc:
        return None, [exc.message + (f" ({exc.hint})" if exc.hint else "")]
    if resolved.available_gpus is None:  # no GPU: auto resolves to no target
        return None, resolved.notes
    return resolved.hardware.name, resolved.notes


def _print_gpus(
    rows: list[dict[str, Any]], notes: list[str], detection: Detection, detailed: bool
) -> None:
    """``gpu-info`` as text: the GPUs (memory in GiB), the target's notes, the warnings,
    and with ``--detailed`` every probe and the visibility variables."""
    if rows:
        shown = [
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
        ]
        columns = ["index", "vendor", "model", "architecture", "memory_gib", "free_gib"]
        click.echo(table(shown, [*columns, "device_id", "profile"]))
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
