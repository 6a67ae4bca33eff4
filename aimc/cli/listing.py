"""``aim-engine list models|recipes|configs``: what the catalog holds."""

from __future__ import annotations

from typing import Any

import click

from aimc.check.catalog import COLUMNS, catalog_rows
from aimc.cli.options import OneOf, current_settings, format_option, recipes_option
from aimc.cli.report import count, emit
from aimc.cli.results import local_measurements

__all__ = ["list_"]

#: TYPE -> what one row is, for the JSON message
NOUNS = {"models": "model", "recipes": "recipe", "configs": "configuration"}


def _local_measurements() -> list[Any]:
    return local_measurements(current_settings().state_dir)


@click.command("list")
@click.argument("kind", metavar="TYPE", type=OneOf(list(COLUMNS)))
@click.argument("model", required=False)
@click.option(
    "--target",
    metavar="NAME",
    help="configs: assess each configuration on this hardware (auto: this machine) with its "
    "memory per GPU and verdict.",
)
@click.option(
    "--filter",
    "pattern",
    metavar="TEXT",
    help="Only models whose id contains TEXT (case-insensitive).",
)
@recipes_option
@format_option("table", "json", "yaml")
def list_(
    kind: str,
    model: str | None,
    target: str | None,
    pattern: str | None,
    recipe_dirs: tuple[str, ...],
    fmt: str,
) -> None:
    """List available models, recipes, or configurations.

    TYPE is models, recipes or configs; MODEL narrows the list to one model: a recipe's
    model id, or (as for launch and show-config) a local model folder or a model complete
    in the cache, whose recipe is derived for --target (default: this machine, cpu
    without a GPU). With --target, configs are assessed there, with the figures measured
    (aim-engine bench, else the recipe's published ones) on what each serves: the same
    backend release and engine arguments.
    """
    from aimc.check.catalog import Catalog

    catalog = Catalog.default(recipe_dirs)
    resolved = None
    if kind == "configs" and target:
        from aimc.check.hardware import resolve_target

        resolved = resolve_target(catalog, target, gpus_required=True)
    if model:
        from aimc.app.pipeline import load_recipe
        from aimc.check.hardware import resolve_target

        def hardware() -> Any:  # a derived recipe's: --target, else this machine (or cpu)
            return (resolved or resolve_target(catalog, "auto")).hardware

        recipes = [load_recipe(catalog, model, hardware, current_settings().cache_dir)]
    else:
        ids = [m for m in catalog.model_ids() if not pattern or pattern.casefold() in m.casefold()]
        recipes = [catalog.recipe(m) for m in ids]
    if resolved is not None:
        from aimc.app.show import CANDIDATE_COLUMNS, candidate_rows
        from aimc.plan.request import Request

        request = Request(model="", available_gpus=resolved.available_gpus)
        name = resolved.hardware.name
        rows = [
            {"model": r.model_id, **row}
            for mine in [_local_measurements()]
            for r in recipes
            if any(name in c["hardware"] for c in r.data["configurations"])
            for row in candidate_rows(r, resolved.hardware, request, mine)
        ]
        message = f"{count(len(rows), 'configuration')} assessed on {name}"
        columns = ["model", *CANDIDATE_COLUMNS, "tokens_per_s", "ttft_p50_ms", "reason"]
        emit(rows, fmt, columns, message)
        return
    rows = catalog_rows(kind, recipes)
    emit(rows, fmt, COLUMNS[kind], count(len(rows), NOUNS[kind]))
