"""``aim-engine list models|recipes|configs``: what the catalog holds."""

from __future__ import annotations

from typing import Any

import click

from aimc.catalog import COLUMNS, catalog_rows
from aimc.cli.options import OneOf, format_option, recipes_option
from aimc.cli.report import count, emit

__all__ = ["list_"]

#: TYPE -> what one row is, for the JSON message
NOUNS = {"models": "model", "recipes": "recipe", "configs": "configuration"}


def _local_measurements() -> dict[Any, Any]:
    from aimc.cli.options import local_measurements

    return {m.key: m for m in local_measurements()}


def _measured(
    recipe: Any, target: str, row: dict[str, Any], mine: dict[Any, Any]
) -> dict[str, Any]:
    """The measured figures of an assessed row (measured here, else published by the
    recipe): output tokens/s, median time to first token and where they come from."""
    from aimc.measured import from_recipe

    key = (recipe.model_id, target, row["config"], row["precision"], row["gpus"], row["backend"])
    found = mine.get(key) or {m.key: m for m in from_recipe(recipe)}.get(key)
    if found is None:
        return {"tokens_per_s": None, "ttft_p50_ms": None, "measured": None}
    return {
        "tokens_per_s": found.output_tokens_per_s,
        "ttft_p50_ms": found.ttft_p50_ms,
        "measured": found.source,
    }


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

    TYPE is models, recipes or configs; MODEL narrows the list to one model.
    """
    from aimc.catalog import Catalog

    catalog = Catalog.default(recipe_dirs)
    if model:
        recipes = [catalog.recipe(model)]
    else:
        ids = [m for m in catalog.model_ids() if not pattern or pattern.casefold() in m.casefold()]
        recipes = [catalog.recipe(m) for m in ids]
    if kind == "configs" and target:
        from aimc.cli.show_config import CANDIDATE_COLUMNS, candidate_rows
        from aimc.hardware import resolve_target
        from aimc.resolve import Request

        resolved = resolve_target(catalog, target, gpus_required=True)
        request = Request(model="", available_gpus=resolved.available_gpus)
        rows = [
            {"model": r.model_id, **row, **_measured(r, resolved.hardware.name, row, mine)}
            for mine in [_local_measurements()]
            for r in recipes
            if any(resolved.hardware.name in c["hardware"] for c in r.data["configurations"])
            for row in candidate_rows(r, resolved.hardware, request)
        ]
        message = f"{count(len(rows), 'configuration')} assessed on {resolved.hardware.name}"
        columns = ["model", *CANDIDATE_COLUMNS, "tokens_per_s", "ttft_p50_ms", "reason"]
        emit(rows, fmt, columns, message)
        return
    rows = catalog_rows(kind, recipes)
    emit(rows, fmt, COLUMNS[kind], count(len(rows), NOUNS[kind]))
