"""Lint a converted collection and report each problem at the foreign file's line.

Takes a :class:`~aimc.interop._common.Conversion`; runs the schema and every lint rule of
:mod:`aimc.check.lint` on each converted recipe and hardware profile (the memory fit too, on the
recipe without the args and env the lint refused, so an unknown flag does not hide a
configuration that cannot fit), checks vLLM Recipes' ``vram_minimum_gb`` claims against
the memory estimate, and maps every diagnostic back through the recorded origins.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from aimc.check.lint import lint_hardware, lint_recipe
from aimc.check.lint_fit import lint_fit
from aimc.core.diagnostics import Diagnostic
from aimc.core.loader import Document
from aimc.domain.schema import check_schema
from aimc.interop._common import Conversion, Origin, RecipeOut
from aimc.plan.estimate import GIB, MIN_CONTEXT, estimate

__all__ = ["check_conversion", "schema_checked"]

#: Rules whose errors leave a recipe's memory estimate meaningful.
_ARG_RULES = {"lint/unknown-arg", "lint/unknown-env", "lint/managed-arg", "lint/secret"}


def _remap(d: Diagnostic, origin: Origin | None, fallback: str) -> Diagnostic:
    if origin is None:
        return Diagnostic(fallback, 0, 0, d.message, "", d.severity, d.rule, d.hint)
    return Diagnostic(
        origin.path,
        origin.line,
        origin.column,
        d.message,
        origin.pointer,
        d.severity,
        d.rule,
        d.hint,
    )


def _sanitized(data: dict[str, Any], problems: list[Diagnostic]) -> dict[str, Any]:
    """The recipe without the args and env values the lint refused."""
    clean = copy.deepcopy(data)
    for d in problems:
        if d.rule not in _ARG_RULES:
            continue
        parts = d.pointer.split("/")[1:]
        node: Any = clean
        for part in parts[:-1]:
            node = (
                node[int(part)]
                if isinstance(node, list)
                else node.get(part.replace("~1", "/").replace("~0", "~"), {})
            )
        if isinstance(node, dict):
            node.pop(parts[-1].replace("~1", "/").replace("~0", "~"), None)
    return clean


def check_recipe(recipe: RecipeOut, hardware: Mapping[str, Mapping[str, Any]]) -> list[Diagnostic]:
    """Schema, lint and fit diagnostics of one converted recipe, at the foreign lines."""
    model = recipe.data["model"]["id"]
    doc = Document(path=f"<{model}>", data=recipe.data, sha256="")
    found = check_schema(doc)
    if not found:
        found = lint_recipe(doc, hardware)
        if any(d.severity == "error" for d in found) and all(
            d.rule in _ARG_RULES for d in found if d.severity == "error"
        ):
            clean = Document(path=doc.path, data=_sanitized(recipe.data, found), sha256="")
            found += lint_fit(clean, hardware)
    return [_remap(d, recipe.origin(d.pointer), doc.path) for d in found]


def _claims(conversion: Conversion, valid: set[str]) -> list[Diagnostic]:
    """vLLM Recipes' ``vram_minimum_gb`` below what the estimate needs on one GPU (weights,
    overhead and the KV cache of one short request)."""
    out = []
    for model, precision, claim, where in conversion.claims:
        recipe = conversion.recipes.get(model)
        if recipe is None or model not in valid:  # the estimate needs schema-valid facts
            continue
        facts = recipe.data["model"]["facts"]
        need = estimate(facts, precision, 1, 1e9, 1.0, MIN_CONTEXT)
        need_gb = need.need_gib * GIB / 1e9
        if claim < need_gb:
            out.append(
                where.diagnostic(
                    f"vram_minimum_gb {claim:g} is below the memory estimate of "
                    f"{need_gb:.1f} GB for {precision} (weights {need.weights_gib * GIB / 1e9:.1f} "
                    f"GB + overhead + KV cache of {MIN_CONTEXT} tokens)",
                    rule="lint/vram-claim",
                    hint=f"raise it to at least {math.ceil(need_gb)}",
                )
            )
    return out


def check_conversion(
    conversion: Conversion, catalog_hardware: Mapping[str, Mapping[str, Any]]
) -> None:
    """Add every problem of a converted collection, at the foreign files' lines, to its
    diagnostics.

    Args:
        conversion: What an importer produced (its own diagnostics included).
        catalog_hardware: aimc's hardware profiles by name; the converted ones win.
    """
    hardware = dict(catalog_hardware)
    found = conversion.diagnostics
    for name, (data, where) in conversion.hardware.items():
        doc = Document(path=f"<{name}>", data=data, sha256="")
        problems = check_schema(doc) or lint_hardware(doc)
        found += [_remap(d, where, doc.path) for d in problems]
        if not problems:
            hardware[name] = data
    valid = set()
    for model, recipe in conversion.recipes.items():
        problems = check_recipe(recipe, hardware)
        found += problems
        if not any(d.rule == "schema" for d in problems):
            valid.add(model)
    found += _claims(conversion, valid)


def schema_checked(conversion: Conversion) -> tuple[Conversion, list[Diagnostic]]:
    """``conversion`` without the recipes and hardware profiles that fail their JSON
    Schema (a hostile or broken foreign value), and those failures at the foreign lines."""
    problems: list[Diagnostic] = []
    recipes = {}
    for model, recipe in conversion.recipes.items():
        found = check_schema(Document(path=f"<{model}>", data=recipe.data, sha256=""))
        problems += [_remap(d, recipe.origin(d.pointer), f"<{model}>") for d in found]
        if not any(d.severity == "error" for d in found):
            recipes[model] = recipe
    hardware = {}
    for name, (data, where) in conversion.hardware.items():
        found = check_schema(Document(path=f"<{name}>", data=data, sha256=""))
        problems += [_remap(d, where, f"<{name}>") for d in found]
        if not any(d.severity == "error" for d in found):
            hardware[name] = (data, where)
    return dataclasses.replace(conversion, recipes=recipes, hardware=hardware), problems
