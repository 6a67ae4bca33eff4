"""``aim-engine show-config MODEL``: the resolved plan, and where each value came from; or,
without a target to resolve for, every configuration on every target with its verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from aimc.cli.options import (
    EmitArgs,
    PlanArgs,
    current_settings,
    emit_options,
    format_option,
    gpu_count_type,
    plan_options,
)
from aimc.cli.report import emit_result, table
from aimc.errors import ConfigError
from aimc.render import interconnect_note
from aimc.safety import format_devices

__all__ = ["show_config"]


#: Columns of the candidates table (``--explain`` adds the reason).
CANDIDATE_COLUMNS = [
    "config",
    "backend",
    "precision",
    "nodes",
    "gpus_per_node",
    "weights_gib",
    "kv_gib",
    "need_gib",
    "budget_gib",
    "max_context",
    "verdict",
]


def candidate_rows(
    recipe: Any, hardware: Any, request: Any, measured: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """Every configuration the recipe offers on ``hardware``, with its memory verdict;
    with ``measured`` (figures measured here), also the figures that apply to it
    (:func:`aimc.policy.measurement_for`): tokens_per_s, ttft_p50_ms, measured (the source),
    null where none does."""
    from aimc.policy import assess, measurement_for

    rows = []
    for a in assess(recipe, hardware, request):
        c, est = a.candidate, (a.plan.estimate if a.plan else {})
        row = {
            "config": c.config_id,
            "backend": c.backend,
            "precision": c.precision,
            "nodes": c.nodes,
            "gpus_per_node": c.gpus,
            # GPUs per node under its earlier name (the JSON before nodes were shown).
            "gpus": c.gpus,
            "weights_gib": est.get("weights_gib"),
            "kv_gib": est.get("kv_gib"),
            "need_gib": est.get("need_gib"),
            "budget_gib": est.get("budget_gib"),
            "max_context": est.get("max_context"),
            "verdict": a.verdict,
            "reason": a.reason,
        }
        if measured is not None:
            m = measurement_for(recipe, hardware, a, measured)
            row["tokens_per_s"] = m.output_tokens_per_s if m else None
            row["ttft_p50_ms"] = m.ttft_p50_ms if m else None
            row["measured"] = m.source if m else None
        rows.append(row)
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
        + (f" x {plan.data_parallel} data-parallel replicas" if plan.data_parallel > 1 else "")
        + (
            f" per node x {plan.nodes} nodes ({plan.total_gpus * plan.nodes} GPUs)"
            if plan.nodes > 1
            else ""
        ),
        *([f"interconnect:   {interconnect_note(plan)}"] if plan.nodes > 1 else []),
        *([f"devices:        {format_devices(plan.devices)}"] if plan.devices is not None else []),
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


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def plan_message(plan: Any) -> str:
    """One line: ``MODEL on TARGET: BACKEND PRECISION, N GPUs, configuration ID``."""
    replicas = f" x {plan.data_parallel} replicas" if plan.data_parallel > 1 else ""
    devices = f" (devices {format_devices(plan.devices)})" if plan.devices is not None else ""
    nodes = f"{plan.nodes} nodes x " if plan.nodes > 1 else ""
    return (
        f"{plan.model_id} on {plan.hardware['name']}: {plan.backend} {plan.precision}, "
        f"{nodes}{_n(plan.gpus, 'GPU')}{replicas}{devices}, configuration {plan.configuration}"
    )


def all_targets_rows(
    catalog: Any, recipe: Any, request: Any, gpu_count: int | None
) -> list[dict[str, Any]]:
    """Every configuration of ``recipe`` on every target it names (each as a named target:
    no GPU limit), with its memory verdict; only ``gpu_count`` GPUs, and the precision and
    backend of ``request``, when given."""
    from aimc.candidates import candidates

    open_request = replace(request, gpus=None, available_gpus=None)
    rows = []
    for name in sorted({c.hardware for c in candidates(recipe)}):
        for row in candidate_rows(recipe, catalog.hardware(name), open_request):
            if (
                (gpu_count is None or row["gpus"] == gpu_count)
                and (request.precision is None or row["precision"] == request.precision)
                and (request.backend is None or row["backend"] == request.backend)
            ):
                rows.append({"hardware": name, **row})
    return rows


def how_to_choose(model: str, rows: list[dict[str, Any]]) -> str:
    """How to pick one of ``rows``: the options, and an example that fits."""
    targets = ", ".join(dict.fromkeys(r["hardware"] for r in rows))
    text = f"choose with --target NAME ({targets}) and --gpu-count N"
    ok = next((r for r in rows if r["verdict"] == "runnable"), None)
    if ok is not None:
        text += (
            f", e.g. aim-engine show-config {model} --target {ok['hardware']} "
            f"--gpu-count {ok['gpus']}"
        )
    return text


def nowhere(recipe: Any, request: Any, gpu_count: int | None) -> ConfigError:
    """The refusal of a request no configuration of ``recipe`` matches on any target
    (``show-config`` and ``debug recipe-info`` without a target): what it offers."""
    from aimc.candidates import candidates, summary

    asked = [x for x in (request.backend, request.precision) if x]
    asked += [_n(gpu_count, "GPU")] if gpu_count is not None else []
    return ConfigError(
        f"no configuration of {recipe.model_id} on any target for {', '.join(asked)}",
        hint=f"it offers: {summary(candidates(recipe))}",
    )


@click.command("show-config")
@click.argument("model")
@click.option("--gpu-count", type=gpu_count_type(), help="GPU count to resolve for.")
@plan_options
@emit_options
@click.option("--explain", is_flag=True, help="Show the layer and file:line of every value.")
@format_option("table", "json", "yaml")
def show_config(
    model: str,
    gpu_count: int | None,
    opts: PlanArgs,
    emit: EmitArgs,
    explain: bool,
    fmt: str,
) -> None:
    """Display the configuration MODEL resolves to, and the alternatives on the target.

    With a target (--target NAME, or GPUs detected on this machine): the resolved plan and
    every configuration on that target with its memory verdict. Without one (--target auto
    and no GPU detected; cpu is a target only when named): every
    configuration on every target with its verdict (runnable, low-memory with the context
    that fits, incompatible with the reason) and how to pick one. --gpu-count N resolves
    for N GPUs, or narrows the list to N.

    \b
    Data (--format json: the "data" of the success response; yaml: the data alone):
      target      the hardware profile resolved; null without one
      notes       what target detection decided (list of text)
      plan        the resolved plan (as in manifest.json); null without a target
      candidates  one row per configuration: hardware, config, backend, precision, gpus,
                  weights_gib, kv_gib, need_gib, budget_gib (GiB per GPU), max_context,
                  verdict, reason
      choose      how to pick a configuration without a target; null with a plan
      manifests   with --emit k8s: the Kubernetes manifests, {file name: text}

    With --emit k8s (table format) the Kubernetes manifests are printed instead, as one
    YAML stream: aim-engine show-config MODEL --target T --emit k8s | kubectl apply -f -
    """
    from aimc.build import for_target, load_recipe, make_plan
    from aimc.catalog import Catalog
    from aimc.cli.options import request_from
    from aimc.emitters import emitter
    from aimc.hardware import resolve_target

    emit.check()
    catalog = Catalog.default(opts.recipe_dirs)
    request = request_from(model, gpu_count, opts)
    target = resolve_target(catalog, opts.target, gpus_required=request.devices is not None)
    recipe = load_recipe(catalog, model, target.hardware)
    name = target.hardware.name
    no_gpu = target.detection is not None and target.available_gpus is None
    if no_gpu and emit.emit != "local":
        raise ConfigError(
            f"--emit {emit.emit} needs a target to compile for", hint="name one with --target NAME"
        )
    if no_gpu:
        from aimc.policy import refuse_precision

        refuse_precision(recipe, request.precision)
        rows = all_targets_rows(catalog, recipe, request, gpu_count)
        if not rows:
            raise nowhere(recipe, request, gpu_count)
        choose = how_to_choose(recipe.model_id, rows)
        why = "no GPU detected"
        data: dict[str, Any] = {
            "target": None,
            "notes": [*target.notes, why],
            "plan": None,
            "candidates": rows,
            "choose": choose,
        }
        if fmt != "table":
            targets = len({r["hardware"] for r in rows})
            emit_result(
                data,
                fmt,
                f"{_n(len(rows), 'configuration')} of {recipe.model_id} on "
                f"{_n(targets, 'target')}; {why}: {choose}",
            )
            return
        for note in target.notes:
            click.echo(f"target: {note}")
        shown = [
            r if explain or r["verdict"] != "runnable" else {**r, "reason": None} for r in rows
        ]
        click.echo(f"{why}: every configuration on every target (GiB per GPU):")
        click.echo(table(shown, ["hardware", *CANDIDATE_COLUMNS, "reason"]))
        click.echo("")
        click.echo(choose)
        return
    plan = make_plan(catalog, request, target, cache_dir=current_settings().cache_dir)
    request, _ = for_target(request, target)  # as the plan was made: the header's command
    rows = [
        {"hardware": name, **row}
        for row in candidate_rows(
            recipe, target.hardware, replace(request, available_gpus=target.available_gpus)
        )
    ]
    manifests = None
    preview = emitter(emit.emit).preview
    if preview is not None:
        manifests = preview(plan, request, name, emit.replicas)  # the manifests, by file name
    if fmt != "table":
        data = {
            "target": name,
            "notes": target.notes,
            "plan": plan.to_json(),
            "candidates": rows,
            "choose": None,
        }
        if manifests is not None:
            data["manifests"] = manifests
        emit_result(data, fmt, plan_message(plan))
        return
    if manifests is not None:
        from aimc.log import line as log_line

        for note in target.notes:
            log_line("target", note, "INFO")
        click.echo("---\n".join(manifests.values()), nl=False)
        return
    for note in target.notes:
        click.echo(f"target: {note}")
    click.echo(plan_text(plan, explain))
    click.echo("")
    click.echo(f"configurations of {plan.model_id} on {name} (GiB per GPU):")
    click.echo(table(rows, CANDIDATE_COLUMNS + (["reason"] if explain else [])))
