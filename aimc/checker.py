"""Validate stage: files and folders -> every diagnostic of every file, in one result.

Takes paths (files or directories) and the catalog they are checked against; loads each
YAML file, checks it against the schema for its ``kind``, then runs the lint rules with
the hardware profiles of the catalog and of the checked files. Collects everything and
never stops at the first error (like check-jsonschema's checker).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aimc.catalog import Catalog, iter_yaml
from aimc.diagnostics import Diagnostic, sort_diagnostics
from aimc.errors import AimcError, ValidationFailed
from aimc.lint import lint_hardware, lint_recipe
from aimc.loader import Document, read_document
from aimc.schema import check_schema

__all__ = ["CheckResult", "check_paths"]


@dataclass(frozen=True)
class CheckResult:
    """What validation found.

    Attributes:
        files: The files that were checked, in order.
        diagnostics: Every diagnostic, sorted by file and position.
    """

    files: list[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Number of error diagnostics."""
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        """Number of warning diagnostics."""
        return len(self.diagnostics) - self.errors

    def ok(self, strict: bool = False) -> bool:
        """True when there is no error (and, with ``strict``, no warning)."""
        return not self.errors and not (strict and self.warnings)

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        """Stable JSON form (``schemas/validate-output.schema.json``)."""
        return {
            "valid": self.ok(strict),
            "files": len(self.files),
            "errors": self.errors,
            "warnings": self.warnings,
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _catalog_dir(file: Path, name: str) -> Path | None:
    """The nearest enclosing folder called ``name`` (a catalog's models/ or hardware/)."""
    for parent in file.resolve().parents:
        if parent.name == name:
            return parent
    return None


def _expand(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    files: list[Path] = []
    missing: list[Diagnostic] = []
    for p in paths:
        if p.is_dir():
            found = list(iter_yaml(p))
            if not found:
                missing.append(
                    Diagnostic(
                        path=str(p),
                        line=0,
                        column=0,
                        rule="io",
                        severity="warning",
                        message="no YAML files found",
                    )
                )
            files += found
        elif p.exists():
            files.append(p)
        else:
            missing.append(
                Diagnostic(
                    path=str(p), line=0, column=0, rule="io", message="no such file or directory"
                )
            )
    unique = list(dict.fromkeys(files))
    return unique, missing


def check_paths(paths: Sequence[Path], catalog: Catalog) -> CheckResult:
    """Validate ``paths`` (files or folders, searched for ``*.yaml``/``*.yml``).

    Args:
        paths: What to check; when empty, every recipe directory of ``catalog``.
        catalog: Supplies the hardware profiles recipes may refer to.
    """
    if not paths:
        paths = [root.path for root in catalog.roots]
    files, diagnostics = _expand(paths)
    valid: list[tuple[Path, Document]] = []
    for file, doc, problems in _map(_load, files):
        diagnostics += problems
        if doc is not None:
            valid.append((file, doc))

    hardware: dict[str, dict[str, Any]] = {}
    first_seen: dict[tuple[str, str], str] = {}
    for _file, doc in valid:
        kind, key = doc.data["kind"], _identity(doc)
        pointer = "/name" if kind == "HardwareProfile" else "/model/id"
        if (kind, key) in first_seen:
            diagnostics.append(
                doc.diagnostic(
                    pointer,
                    f"{key!r} is also defined in {first_seen[kind, key]}",
                    rule="lint/duplicate-id",
                )
            )
        first_seen.setdefault((kind, key), doc.path)
        if kind == "HardwareProfile":
            hardware.setdefault(key, doc.data)
    for name, (hw_file, _root) in catalog.hardware_files().items():
        if name not in hardware:
            try:
                hw_doc = read_document(hw_file)
            except ValidationFailed:
                continue
            if not check_schema(hw_doc):
                hardware[name] = hw_doc.data

    _HARDWARE.clear()
    _HARDWARE.update(hardware)  # read by the workers _map forks
    for found in _map(_lint, valid):
        diagnostics += found
    diagnostics += _unused_hardware(valid, catalog)
    return CheckResult(
        files=[_display(f) for f in files], diagnostics=sort_diagnostics(diagnostics)
    )


#: Files at which checking is spread over the CPUs (below, a pool costs more than it saves).
PARALLEL_FILES = 200
#: The hardware profiles recipes are linted against (set before the lint pass forks).
_HARDWARE: dict[str, dict[str, Any]] = {}

_T = TypeVar("_T")
_R = TypeVar("_R")


def _map(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``work`` over ``items`` in order: in forked worker processes, one per CPU, when there
    are many files and more than one CPU (checking is CPU-bound), else in this process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if len(items) < PARALLEL_FILES or cpus < 2 or "fork" not in mp.get_all_start_methods():
        return [work(item) for item in items]
    with ProcessPoolExecutor(cpus, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(work, items, chunksize=max(1, len(items) // (cpus * 8))))


def _load(file: Path) -> tuple[Path, Document | None, list[Diagnostic]]:
    """One file loaded and checked against its schema: (file, document if valid, problems)."""
    try:
        doc = read_document(file, _display(file))
    except ValidationFailed as exc:
        return file, None, list(exc.diagnostics)
    problems = check_schema(doc)
    return file, None if problems else doc, problems


def _lint(item: tuple[Path, Document]) -> list[Diagnostic]:
    file, doc = item
    if doc.data["kind"] == "Recipe":
        return lint_recipe(doc, _HARDWARE, _catalog_dir(file, "models"))
    return lint_hardware(doc, _catalog_dir(file, "hardware"))


def _unused_hardware(valid: list[tuple[Path, Document]], catalog: Catalog) -> list[Diagnostic]:
    """A warning for each checked hardware profile that no recipe offers (in the checked
    files or the catalog): a profile nothing can compile for. The shipped profiles are
    exempt (``cpu`` serves local model folders, which have no recipe file)."""
    profiles = [
        (file, doc)
        for file, doc in valid
        if doc.data["kind"] == "HardwareProfile" and not _shipped(file, catalog)
    ]
    if not profiles:
        return []
    used = {
        name
        for _file, doc in valid
        if doc.data["kind"] == "Recipe"
        for conf in doc.data["configurations"]
        for name in conf["hardware"]
    }
    for model in catalog.model_ids():
        with contextlib.suppress(AimcError):
            used.update(
                h for c in catalog.recipe(model).data["configurations"] for h in c["hardware"]
            )
    return [
        doc.diagnostic(
            "/name",
            f"hardware profile {doc.data['name']!r} is offered by no recipe",
            severity="warning",
            rule="lint/unused-hardware",
            hint="add it to a configuration's hardware list, or remove the profile",
        )
        for _file, doc in profiles
        if doc.data["name"] not in used
    ]


def _shipped(file: Path, catalog: Catalog) -> bool:
    shipped = [r.path.resolve() for r in catalog.roots if r.label == "shipped"]
    return any(file.resolve().is_relative_to(root) for root in shipped)


def _identity(doc: Document) -> str:
    data = doc.data
    return str(data["name"] if data["kind"] == "HardwareProfile" else data["model"]["id"])
