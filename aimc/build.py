"""The pipeline in one place: request -> plan -> artifacts, for the CLI and the Python API.

Takes a :class:`~aimc.resolve.Request` and a target name; loads what it needs from the
:class:`~aimc.catalog.Catalog` (and the ``--config`` file), resolves the plan and renders
the artifacts with their manifest. Only :func:`load_config_file` and target detection
touch the machine; everything else is the pure stages.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aimc.catalog import Catalog
from aimc.errors import ValidationFailed
from aimc.hardware import Target
from aimc.loader import Document, read_document
from aimc.plan import Plan
from aimc.render import manifest, render
from aimc.resolve import Request, resolve

__all__ = ["Compiled", "compile_plan", "load_config_file", "make_plan", "request_line"]


def load_config_file(path: Path) -> Document:
    """Load and check a ``--config`` file (schema ``overrides.schema.json``).

    Raises:
        ValidationFailed: The file is unreadable or invalid (with its diagnostics).
    """
    from aimc.schema import check_schema

    doc = read_document(path)
    problems = [d for d in check_schema(doc, default_kind="Overrides") if d.severity == "error"]
    if problems:
        raise ValidationFailed(problems)
    return doc


def make_plan(catalog: Catalog, request: Request, target: str | Target) -> Plan:
    """Resolve ``request`` for ``target`` (a profile name, or a detected :class:`Target`)."""
    recipe = catalog.recipe(request.model)
    if isinstance(target, str):
        return resolve(recipe, catalog.hardware(target), request)
    if target.available_gpus is not None:
        request = replace(request, available_gpus=target.available_gpus)
    return resolve(recipe, target.hardware, request)


def request_line(request: Request, target: str) -> str:
    """The ``aim-engine compile`` command line that reproduces a plan."""
    words = ["aim-engine", "compile", request.model]
    if request.gpus is not None:
        words.append(str(request.gpus))
    words += ["--target", target]
    for flag, value in (
        ("--precision", request.precision),
        ("--backend", request.backend),
        ("--port", request.port),
        ("--launcher", request.launcher),
    ):
        if value is not None:
            words += [flag, str(value)]
    if request.config is not None:
        words += ["--config", request.config.path]
    for item in request.sets:
        words += ["--set", item]
    return shlex.join(words)


@dataclass(frozen=True)
class Compiled:
    """A plan and its rendered artifacts (manifest included)."""

    plan: Plan
    files: dict[str, str]


def compile_plan(plan: Plan, request: Request, target: str) -> Compiled:
    """Render every artifact of ``plan`` plus ``manifest.json``."""
    line = request_line(request, target)
    files = render(plan, line)
    inputs: dict[str, Any] = {
        "command": line,
        "recipe": plan.recipe,
        "hardware": {k: plan.hardware[k] for k in ("name", "source", "path", "sha256")},
    }
    if request.config is not None:
        inputs["config"] = {"path": request.config.path, "sha256": request.config.sha256}
    files["manifest.json"] = manifest(plan, files, inputs)
    return Compiled(plan, files)
