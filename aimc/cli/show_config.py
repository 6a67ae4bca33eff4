"""``aim-engine show-config MODEL``: the resolved plan, and where each value came from; or,
without a target to resolve for, every configuration on every target with its verdict
(the use case: :mod:`aimc.app.show`; this module parses and prints)."""

from __future__ import annotations

import click

from aimc.app.show import CANDIDATE_COLUMNS, NO_GPU, Shown, show
from aimc.check.catalog import Catalog
from aimc.cli.emit_options import EmitArgs, emit_options
from aimc.cli.options import (
    PlanArgs,
    current_settings,
    format_option,
    gpu_count_type,
    plan_options,
    request_from,
)
from aimc.cli.report import emit_result, table
from aimc.core.log import line as log_line
from aimc.core.safety import format_devices
from aimc.emit.render import interconnect_note
from aimc.plan.model import Plan

__all__ = ["plan_text", "show_config"]


def plan_text(plan: Plan, explain: bool) -> str:
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
    emit.check()
    catalog = Catalog.default(opts.recipe_dirs)
    request = request_from(model, gpu_count, opts)
    settings = current_settings()
    shown = show(
        catalog,
        request,
        opts.target,
        emit.emit,
        emit.replicas,
        settings.cache_dir,
        emit.autoscale,
    )
    if fmt != "table":
        emit_result(shown.to_json(), fmt, shown.message())
    elif shown.plan is None:
        _print_every_target(shown, explain)
    elif shown.manifests is not None:
        for note in shown.target.notes:
            log_line("target", note, "INFO")
        click.echo("---\n".join(shown.manifests.values()), nl=False)
    else:
        _print_plan(shown, shown.plan, explain)


def _print_every_target(shown: Shown, explain: bool) -> None:
    """No target: every configuration on every target (reasons of runnable ones with
    ``--explain`` only), and how to choose one."""
    for note in shown.target.notes:
        click.echo(f"target: {note}")
    rows = [
        r if explain or r["verdict"] != "runnable" else {**r, "reason": None} for r in shown.rows
    ]
    click.echo(f"{NO_GPU}: every configuration on every target (GiB per GPU):")
    click.echo(table(rows, ["hardware", *CANDIDATE_COLUMNS, "reason"]))
    click.echo("")
    click.echo(shown.choose)


def _print_plan(shown: Shown, plan: Plan, explain: bool) -> None:
    """The plan, then every configuration on its target."""
    for note in shown.target.notes:
        click.echo(f"target: {note}")
    click.echo(plan_text(plan, explain))
    click.echo("")
    click.echo(f"configurations of {plan.model_id} on {shown.target.hardware.name} (GiB per GPU):")
    click.echo(table(shown.rows, CANDIDATE_COLUMNS + (["reason"] if explain else [])))
