"""``aim-engine show-config MODEL``: the resolved plan, and where each value came from."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from aimc.cli.options import PlanArgs, format_option, plan_options
from aimc.cli.report import dump, table

__all__ = ["show_config"]


#: Columns of the candidates table (``--explain`` adds the reason).
CANDIDATE_COLUMNS = [
    "config",
    "backend",
    "precision",
    "gpus",
    "weights_gib",
    "kv_gib",
    "need_gib",
    "budget_gib",
    "max_context",
    "verdict",
]


def candidate_rows(recipe: Any, hardware: Any, request: Any) -> list[dict[str, Any]]:
    """Every configuration the recipe offers on ``hardware``, with its memory verdict."""
    from aimc.policy import assess

    rows = []
    for a in assess(recipe, hardware, request):
        c, est = a.candidate, (a.plan.estimate if a.plan else {})
        rows.append(
            {
                "config": c.config_id,
                "backend": c.backend,
                "precision": c.precision,
                "gpus": c.gpus,
                "weights_gib": est.get("weights_gib"),
                "kv_gib": est.get("kv_gib"),
                "need_gib": est.get("need_gib"),
                "budget_gib": est.get("budget_gib"),
                "max_context": est.get("max_context"),
                "verdict": a.verdict,
                "reason": a.reason,
            }
        )
    return rows


def plan_text(plan: Any, explain: bool) -> str:
    """The plan as text: a summary, the args and env tables, the automatic choices."""
    endpoint = f"http://localhost:{plan.port}"
    lines = [
        f"model:          {plan.model_id} (served as {plan.served_model_name})",
        f"weights:        {plan.model_source}"
        + (f" @ {plan.model_revision}" if plan.model_revision else ""),
        f"target:         {plan.hardware['name']} ({plan.hardware['vendor']} "
        f"{plan.hardware['architecture']}, {plan.hardware['memory_gib']} GiB per GPU)",
        f"configuration:  {plan.configuration} ({plan.recipe['path']})",
        f"backend:        {plan.backend} {plan.backend_version}",
        f"precision:      {plan.precision}",
        f"gpu count:      {plan.gpus}"
        + (f" x {plan.data_parallel} data-parallel replicas" if plan.data_parallel > 1 else ""),
        f"launcher:       {plan.launcher}" + (f" ({plan.image})" if plan.image else ""),
        f"endpoint:       {endpoint} (health {plan.health_path})",
        f"memory:         {plan.estimate['verdict']}: {plan.estimate['reason']}",
        "",
    ]
    columns = ["arg", "value", "layer", "source"] if explain else ["arg", "value"]
    rows = [
        {"arg": f"--{k}", "value": s.value, "layer": s.layer, "source": s.source}
        for k, s in plan.args.items()
    ]
    lines += [table(rows, columns), ""]
    env_columns = ["env", "value", "layer", "source"] if explain else ["env", "value"]
    env_rows = [
        {"env": k, "value": s.value, "layer": s.layer, "source": s.source}
        for k, s in plan.env.items()
    ]
    if env_rows:
        lines += [table(env_rows, env_columns), ""]
    lines += [f"passed through: {', '.join(plan.passthrough_env)}"]
    lines += [f"choice: {d}" for d in plan.decisions]
    return "\n".join(lines)


@click.command("show-config")
@click.argument("model")
@click.option("--gpu-count", type=click.IntRange(1, 64), help="GPU count to resolve for.")
@plan_options
@click.option("--explain", is_flag=True, help="Show the layer and file:line of every value.")
@format_option("table", "json", "yaml")
def show_config(
    model: str,
    gpu_count: int | None,
    opts: PlanArgs,
    explain: bool,
    fmt: str,
) -> None:
    """Display the configuration MODEL resolves to, and the alternatives on the target."""
    from aimc.build import load_recipe

    resolved = opts.resolve(model, gpu_count)
    target, plan = resolved.target, resolved.plan
    name = target.hardware.name
    rows = candidate_rows(
        load_recipe(resolved.catalog, model, target.hardware),
        target.hardware,
        replace(resolved.request, available_gpus=target.available_gpus),
    )
    if fmt != "table":
        click.echo(dump({"plan": plan.to_json(), "candidates": rows}, fmt))
        return
    for note in target.notes:
        click.echo(f"target: {note}")
    click.echo(plan_text(plan, explain))
    click.echo("")
    click.echo(f"configurations of {plan.model_id} on {name} (GiB per GPU):")
    click.echo(table(rows, CANDIDATE_COLUMNS + (["reason"] if explain else [])))
