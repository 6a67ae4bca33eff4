"""Check a converted collection, leave out what cannot run, and report at the foreign lines.

Takes a :class:`~aimc.interop._common.Conversion`; :func:`settle` runs the schema and every
lint rule of :mod:`aimc.check.lint` on each converted recipe and hardware profile, the
memory fit per GPU (on the recipe without the args and env the lint refused, so an unknown
flag does not hide a configuration that cannot fit), and maps every diagnostic back through
the recorded origins. A configuration that cannot run on one of its GPUs (:data:`LEFT_OUT`:
a GPU aimc has no profile of, a precision the GPU lacks, more GPUs than a node has, a model
that does not fit) is left out for that GPU with a warning, never poisoning the recipe's
other configurations; with ``partial`` so is every configuration (or recipe) with another
error, so what is left compiles. ``vram_minimum_gb`` claims of vLLM Recipes are checked
against the memory estimate when asked (``validate --from``: a statement about the
collection, not about what aimc launches).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from aimc.check.lint import lint_hardware, lint_recipe
from aimc.check.lint_fit import lint_fit
from aimc.core.diagnostics import Diagnostic
from aimc.core.loader import Document
from aimc.domain.schema import check_schema
from aimc.interop._common import FACT_RULES, Conversion, Origin, RecipeOut
from aimc.interop._migrations import hint as migration_hint
from aimc.plan.estimate import GIB, MIN_CONTEXT, estimate

__all__ = ["LEFT_OUT", "settle"]

#: Rules whose errors leave a recipe's memory estimate meaningful.
_ARG_RULES = {"lint/unknown-arg", "lint/unknown-env", "lint/managed-arg", "lint/secret"}
#: Rules that say a configuration cannot run on one of its GPUs: it is left out for that
#: GPU (a warning), the rest of the recipe is imported.
LEFT_OUT = (
    "lint/unknown-hardware",
    "lint/precision-unsupported",
    "lint/gpus-per-node",
    "lint/fit",
)
_HARDWARE_AT = re.compile(r"^/configurations/(\d+)/hardware/(\d+)$")
_CONFIGURATION_AT = re.compile(r"^/configurations/(\d+)(/|$)")

#: (configuration index, hardware name) -> why that configuration cannot run on it.
_Left = dict[tuple[int, str], Diagnostic]


def _remap(d: Diagnostic, origin: Origin | None, fallback: str) -> Diagnostic:
    hint = migration_hint(d) or d.hint
    if origin is None:
        return Diagnostic(fallback, 0, 0, d.message, "", d.severity, d.rule, hint)
    return Diagnostic(
        origin.path, origin.line, origin.column, d.message, origin.pointer, d.severity, d.rule, hint
    )


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _sanitized(data: dict[str, Any], problems: list[Diagnostic], left: _Left) -> dict[str, Any]:
    """The recipe without the args and env values the lint refused and without the GPUs
    left out (their configurations keep their places, with fewer GPUs or none)."""
    clean = copy.deepcopy(data)
    for d in problems:
        if d.rule not in _ARG_RULES:
            continue
        parts = d.pointer.split("/")[1:]
        node: Any = clean
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.get(_unescape(part), {})
        if isinstance(node, dict):
            node.pop(_unescape(parts[-1]), None)
    for index, name in left:
        conf = clean["configurations"][index]
        conf["hardware"] = [h for h in conf["hardware"] if h != name]
    return clean


def _fit(data: dict[str, Any], hardware: Mapping[str, Mapping[str, Any]], left: _Left) -> None:
    """Add each configuration x GPU of ``data`` that does not fit to ``left`` (run per GPU,
    so each verdict names its GPU)."""
    doc = Document(path="<fit>", data=data, sha256="")
    names = sorted({h for c in data["configurations"] for h in c["hardware"]} & set(hardware))
    for name in names:
        for d in lint_fit(doc, {name: hardware[name]}):
            found = _CONFIGURATION_AT.match(d.pointer)
            if found:
                left.setdefault((int(found[1]), name), d)


def _problems(
    recipe: RecipeOut, hardware: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Diagnostic], _Left]:
    """The schema and lint problems of ``recipe`` (at its own pointers), and which of its
    configurations cannot run on which GPU (:data:`LEFT_OUT`)."""
    doc = Document(path=f"<{recipe.data['model']['id']}>", data=recipe.data, sha256="")
    found = check_schema(doc)
    if found:
        return found, {}
    linted = lint_recipe(doc, hardware)
    left: _Left = {}
    rest = []
    for d in linted:
        at = _HARDWARE_AT.match(d.pointer)
        if d.severity == "error" and d.rule in LEFT_OUT and at:
            name = recipe.data["configurations"][int(at[1])]["hardware"][int(at[2])]
            left.setdefault((int(at[1]), name), d)
        elif d.rule != "lint/fit":  # lint/fit is judged per GPU below
            rest.append(d)
    errors = [d for d in rest if d.severity == "error"]
    if all(d.rule in _ARG_RULES for d in errors) and (errors or left or len(rest) < len(linted)):
        _fit(_sanitized(recipe.data, errors, left), hardware, left)
    return rest, left


def _without(recipe: RecipeOut, drop: Mapping[int, set[str] | None]) -> RecipeOut | None:
    """``recipe`` without the GPUs ``drop`` names per configuration index (None: the whole
    configuration), its origins renumbered; None when no configuration is left."""
    data = recipe.data
    kept: list[dict[str, Any]] = []
    origins = {k: v for k, v in recipe.origins.items() if not _CONFIGURATION_AT.match(k)}
    for i, conf in enumerate(data["configurations"]):
        gone = drop.get(i, set())
        if gone is None:
            continue
        stay = [j for j, name in enumerate(conf["hardware"]) if name not in gone]
        if not stay:
            continue
        new = len(kept)
        kept.append({**conf, "hardware": [conf["hardware"][j] for j in stay]})
        prefix = f"/configurations/{i}"
        for key, where in recipe.origins.items():
            if key != prefix and not key.startswith(prefix + "/"):
                continue
            rest = key[len(prefix) :]
            hw = re.match(r"^/hardware/(\d+)(.*)$", rest)
            if hw and int(hw[1]) not in stay:
                continue
            if hw:
                rest = f"/hardware/{stay.index(int(hw[1]))}{hw[2]}"
            origins[f"/configurations/{new}{rest}"] = where
    if not kept:
        return None
    return RecipeOut({**data, "configurations": kept}, origins)


def _users(data: Mapping[str, Any], pointer: str) -> list[int] | None:
    """The configurations a problem at ``pointer`` concerns: its own, or those that use the
    recipe's weights entry it is in; None when it concerns the whole recipe."""
    at = _CONFIGURATION_AT.match(pointer)
    if at is not None:
        return [int(at[1])]
    weights = re.match(r"^/weights/([^/]+)(/|$)", pointer)
    if weights is None:
        return None
    precision = _unescape(weights[1])
    return [
        i
        for i, conf in enumerate(data["configurations"])
        if precision in conf["precision"] and precision not in conf.get("weights", {})
    ]


def _left_out(recipe: RecipeOut, left: _Left) -> list[Diagnostic]:
    """The warnings for the configurations left out, at the foreign lines."""
    out = []
    for (index, name), d in sorted(left.items()):
        conf = recipe.data["configurations"][index]
        warning = Diagnostic(
            d.path,
            d.line,
            d.column,
            f"{d.message}; configuration {conf['id']!r} is not imported for {name}",
            d.pointer,
            "warning",
            d.rule,
            d.hint,
        )
        out.append(_remap(warning, recipe.origin(d.pointer), f"<{recipe.data['model']['id']}>"))
    return out


def _settle_recipe(
    recipe: RecipeOut, hardware: Mapping[str, Mapping[str, Any]], partial: bool
) -> tuple[RecipeOut | None, list[Diagnostic]]:
    """What of ``recipe`` is imported (None: nothing) and its problems at the foreign lines."""
    model = recipe.data["model"]["id"]
    problems, left = _problems(recipe, hardware)
    report = [_remap(d, recipe.origin(d.pointer), f"<{model}>") for d in problems]
    if any(d.rule == "schema" for d in problems):
        return None, report
    report += _left_out(recipe, left)
    drop: dict[int, set[str] | None] = {}
    for index, name in left:
        gone = drop.setdefault(index, set())
        if gone is not None:
            gone.add(name)
    if partial:
        for d in problems:
            if d.severity != "error":
                continue
            users = _users(recipe.data, d.pointer)
            if users is None:  # the recipe itself (its defaults): nothing of it is imported
                return None, report
            drop.update(dict.fromkeys(users))
    if not drop:
        return recipe, report
    pruned = _without(recipe, drop)
    where = recipe.origin("/model/id")
    if pruned is None:
        if where is not None:
            report.append(
                where.diagnostic(
                    f"no configuration of {model!r} is left to import; not imported",
                    severity="warning",
                    rule="interop/left-out",
                )
            )
        return None, report
    again, more = _problems(pruned, hardware)  # what is left must hold on its own
    report += [_remap(d, pruned.origin(d.pointer), f"<{model}>") for d in again]
    report += _left_out(pruned, more)
    return pruned, report


def _claims(conversion: Conversion, facts: Mapping[str, Any]) -> list[Diagnostic]:
    """vLLM Recipes' ``vram_minimum_gb`` below what the estimate needs on one GPU (weights,
    overhead and the KV cache of one short request); ``facts``: of each schema-valid
    recipe, by model id."""
    out = []
    for model, precision, claim, where in conversion.claims:
        if model not in facts:  # the estimate needs schema-valid facts
            continue
        need = estimate(facts[model], precision, 1, 1e9, 1.0, MIN_CONTEXT)
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


def settle(
    conversion: Conversion,
    catalog_hardware: Mapping[str, Mapping[str, Any]],
    *,
    partial: bool = False,
    claims: bool = False,
) -> None:
    """Check ``conversion`` and keep of it what is imported (in place): every problem goes
    to its diagnostics at the foreign lines; a recipe or hardware profile that fails its
    schema (a hostile or broken value) is dropped; a configuration that cannot run on a
    GPU is left out for it (:data:`LEFT_OUT`, a warning); with ``partial`` every
    configuration (or recipe) with another error is left out too; hardware profiles no
    recipe uses any more are dropped.

    Args:
        conversion: What an importer produced (its own diagnostics included).
        catalog_hardware: aimc's hardware profiles by name; the converted ones win.
        partial: Leave out what has errors (``import --partial``), so the rest compiles.
        claims: Check vLLM Recipes' ``vram_minimum_gb`` claims (``validate --from``).
    """
    hardware = dict(catalog_hardware)
    found = conversion.diagnostics
    for name, (data, where) in list(conversion.hardware.items()):
        doc = Document(path=f"<{name}>", data=data, sha256="")
        problems = check_schema(doc)
        if not problems:
            problems = lint_hardware(doc)
        found += [_remap(d, where, doc.path) for d in problems]
        if any(d.severity == "error" for d in problems):
            del conversion.hardware[name]
            hardware.pop(name, None)
        else:
            hardware[name] = data
    facts = {}
    for model, recipe in list(conversion.recipes.items()):
        if recipe.lint_only:  # no facts of the model: what needs them is not judged
            _kept, problems = _settle_recipe(recipe, hardware, partial)
            found += [d for d in problems if d.rule not in FACT_RULES]
            del conversion.recipes[model]
            continue
        kept, problems = _settle_recipe(recipe, hardware, partial)
        found += problems
        if not any(d.rule == "schema" for d in problems):
            facts[model] = recipe.data["model"]["facts"]
        if kept is None:
            del conversion.recipes[model]
        else:
            conversion.recipes[model] = kept
    if claims:
        found += _claims(conversion, facts)
    used = {
        h
        for r in conversion.recipes.values()
        for c in r.data["configurations"]
        for h in c["hardware"]
    }
    for name in list(conversion.hardware):
        if name not in used:
            del conversion.hardware[name]
