"""Validate stage: files and folders -> every diagnostic of every file, in one result.

Takes paths (files or directories) and the catalog they are checked against; loads each
YAML file, checks it against the schema for its ``kind``, then runs the lint rules with
the hardware profiles of the catalog and of the checked files. Collects everything and
never stops at the first error (like check-jsonschema's checker).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from aimc.backends import vocabulary_fingerprint
from aimc.check.catalog import Catalog
from aimc.check.lint import lint_hardware, lint_recipe
from aimc.check.lint_yaml11 import lint_yaml11
from aimc.check.verdicts import Verdicts, code_fingerprint
from aimc.check.verdicts import key as verdict_key
from aimc.core.diagnostics import Diagnostic, sort_diagnostics
from aimc.core.errors import AimcError, ValidationFailed
from aimc.core.loader import Document, load_document, read_bytes, read_document
from aimc.core.spread import spread
from aimc.domain.recipe import iter_yaml
from aimc.domain.schema import check_schema

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


class _Where(NamedTuple):
    """Where a checked file is (its path resolved once); a named tuple (one per checked
    file: a frozen dataclass costs several times more to make).

    Attributes:
        display: How the report names it: relative to the current folder when inside it.
        models: The nearest enclosing folder called ``models`` (a catalog's), if any.
        hardware: The nearest enclosing folder called ``hardware``, if any.
        place: Its place in ``models`` (what ``lint/path`` compares with the model id), or
            "" outside one: a cached verdict stays valid when the whole repository moves
            (another CI workspace), not when the file moves within it.
    """

    display: str
    models: Path | None
    hardware: Path | None
    place: str


def _where(file: Path, cwd: Path) -> _Where:
    """Where ``file`` is, ``cwd`` being the current folder, resolved."""
    resolved = file.resolve()
    return _Folder(resolved.parent, cwd).where(file, resolved.name)


def _wheres(files: list[Path], cwd: Path) -> dict[Path, _Where]:
    """:func:`_where` of each of ``files``, each folder resolved once (a repository's files
    share a few): a file that is no link is in its folder resolved, by its name."""
    folders: dict[str, _Folder] = {}  # by the folder's path as given (a string: cheap)
    out: dict[Path, _Where] = {}
    for file in files:
        try:
            link = file.is_symlink() or file.name in ("", ".", "..")
        except OSError:
            link = True
        if link:
            out[file] = _where(file, cwd)
            continue
        given = os.path.dirname(file)  # the path of file.parent, "" for "."
        folder = folders.get(given)
        if folder is None:
            folder = folders[given] = _Folder(file.parent.resolve(), cwd)
        out[file] = folder.where(file, file.name)
    return out


class _Folder:
    """A resolved folder of checked files: what their :class:`_Where` s share."""

    def __init__(self, folder: Path, cwd: Path) -> None:
        enclosing: dict[str, Path] = {}
        for parent in (folder, *folder.parents):
            enclosing.setdefault(parent.name, parent)  # the nearest of each name
        self.models, self.hardware = enclosing.get("models"), enclosing.get("hardware")
        #: What a file's name follows, shown (None: outside ``cwd``) and in ``models``.
        self.shown = _prefix(folder, cwd)
        self.place = _prefix(folder, self.models) if self.models is not None else None

    def where(self, file: Path, name: str) -> _Where:
        """The :class:`_Where` of ``file``, named ``name`` in this folder once resolved."""
        display = str(file) if self.shown is None else self.shown + name
        place = "" if self.place is None else self.place + name
        return _Where(display, self.models, self.hardware, place)


def _prefix(folder: Path, base: Path) -> str | None:
    """What the names of ``folder``'s files follow in their paths relative to ``base``
    ("" in ``base`` itself); None when ``folder`` is not within ``base``."""
    try:
        relative = folder.relative_to(base).as_posix()
    except ValueError:
        return None
    return "" if relative == "." else relative + "/"


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


def check_paths(paths: Sequence[Path], catalog: Catalog, cache: Path | None = None) -> CheckResult:
    """Validate ``paths`` (files or folders, searched for ``*.yaml``/``*.yml``).

    Hardware profiles are checked first, here (every recipe is linted against them); then
    each other file is loaded, schema-checked and linted in one go, spread over the CPUs
    for many files, and only its diagnostics and the facts the cross-file checks need
    (id, hardware used) come back. With ``cache``, files whose verdict is stored under
    the same inputs (:mod:`aimc.check.verdicts`) are not checked again.

    Args:
        paths: What to check; when empty, every recipe directory of ``catalog``.
        catalog: Supplies the hardware profiles recipes may refer to.
        cache: A verdict file to read and update (``validate --cache``).
    """
    if not paths:
        paths = [root.path for root in catalog.roots]
    files, diagnostics = _expand(paths)
    cwd = Path.cwd().resolve()
    where = _wheres(files, cwd)
    verdicts = Verdicts(cache) if cache is not None else None
    profiles: set[Path] = set()
    while True:
        results, missed = _check_files(files, where, profiles, catalog, verdicts)
        if not missed:
            break
        profiles |= missed  # a profile the quick scan missed: again, knowing it
    if verdicts is not None:
        verdicts.save()
    first_seen: dict[tuple[str, str], str] = {}
    for result in results:
        diagnostics += result["diagnostics"]
        kind, key = result["kind"], result["identity"]
        if kind is None:
            continue
        if (kind, key) in first_seen:
            message = f"{key!r} is also defined in {first_seen[kind, key]}"
            diagnostics.append(replace(result["anchor"], message=message))
        first_seen.setdefault((kind, key), result["anchor"].path)
    diagnostics += _unused_hardware(files, results, catalog)
    return CheckResult(
        files=[where[f].display for f in files], diagnostics=sort_diagnostics(diagnostics)
    )


def _check_files(
    files: list[Path],
    where: dict[Path, _Where],
    profiles: set[Path],
    catalog: Catalog,
    verdicts: Verdicts | None,
) -> tuple[list[dict[str, Any]], set[Path]]:
    """One result per file, in order, and the files that turned out to be hardware
    profiles although they were not checked first (then the results are not final)."""
    results: dict[Path, dict[str, Any]] = {}
    hardware: dict[str, dict[str, Any]] = {}
    raw: dict[Path, bytes] = {}
    for file in files:
        try:
            raw[file] = read_bytes(file, where[file].display)
        except ValidationFailed as exc:
            results[file] = _result(list(exc.diagnostics))
            continue
        if file in profiles or b"HardwareProfile" in raw[file]:
            result, doc = _check_one((file, raw[file], where[file]), recipes=False)
            if result is not None:
                results[file] = result
            if doc is not None:
                hardware.setdefault(doc.data["name"], doc.data)
    for name, (hw_file, _root) in catalog.hardware_files().items():
        if name not in hardware:
            try:
                hw_doc = read_document(hw_file)
            except ValidationFailed:
                continue
            if not check_schema(hw_doc):
                hardware[name] = hw_doc.data

    unchecked = [file for file in files if file not in results]
    # the keys hash aimc's code: only a --cache run needs them
    keys = _keys(unchecked, raw, where, hardware) if verdicts is not None else {}
    todo: list[tuple[Path, bytes, _Where]] = []
    for file in unchecked:
        stored = verdicts.get(keys[file]) if verdicts is not None else None
        if stored is not None:
            results[file] = stored
        else:
            todo.append((file, raw[file], where[file]))
    _HARDWARE.clear()
    _HARDWARE.update(hardware)  # read by the workers _map forks
    missed: set[Path] = set()
    for (file, _raw, _at), result in zip(todo, _map(_check_other, todo), strict=True):
        results[file] = result
        if result["kind"] == "HardwareProfile":
            missed.add(file)
        elif verdicts is not None:
            verdicts.put(keys[file], result)
    return [results[f] for f in files], missed


def _keys(
    files: list[Path],
    raw: dict[Path, bytes],
    where: dict[Path, _Where],
    hardware: dict[str, dict[str, Any]],
) -> dict[Path, str]:
    """The verdict key (:func:`aimc.check.verdicts.key`) of each of ``files``."""
    # Deferred: only --cache hashes the files (OpenSSL's SHA-256, fastest for a repository's
    # bytes; importing it costs a one-recipe validate ~4 ms).
    import hashlib

    context = (
        code_fingerprint(),
        vocabulary_fingerprint(),
        json.dumps(hardware, sort_keys=True, default=str),
    )
    return {
        file: verdict_key(
            *context, where[file].display, where[file].place, hashlib.sha256(raw[file]).hexdigest()
        )
        for file in files
    }


#: Files at which checking is spread over the CPUs (below, forking costs more than it saves:
#: measured even at ~25 recipes, 40 a tenth faster, 100 a quarter).
PARALLEL_FILES = 32
#: The hardware profiles recipes are linted against (set before the lint pass forks).
_HARDWARE: dict[str, dict[str, Any]] = {}

_T = TypeVar("_T")
_R = TypeVar("_R")


def _map(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``work`` over ``items`` in order: spread over the CPUs (:func:`~aimc.core.spread.spread`:
    this process and forked children) when there are many files and more than one CPU
    (checking is CPU-bound), else in this process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if len(items) < PARALLEL_FILES or cpus < 2:
        return [work(item) for item in items]
    return spread(work, items, cpus)


def _result(
    diagnostics: list[Diagnostic], doc: Document | None = None, anchor: str = ""
) -> dict[str, Any]:
    """What the report and the cross-file checks need of one checked file."""
    if doc is None:
        return {"diagnostics": diagnostics, "kind": None, "identity": None, "anchor": None,
                "hardware": []}  # fmt: skip
    data = doc.data
    used = sorted({h for c in data.get("configurations", []) for h in c["hardware"]})
    return {
        "diagnostics": diagnostics,
        "kind": data["kind"],
        "identity": _identity(doc),
        "anchor": doc.diagnostic(anchor, "", rule="lint/duplicate-id"),
        "hardware": used,
    }


def _check_one(
    item: tuple[Path, bytes, _Where], recipes: bool = True
) -> tuple[dict[str, Any] | None, Document | None]:
    """Load, schema-check and lint one file: its result, and its document when it is a
    valid hardware profile. With ``recipes`` false a valid recipe is left for later
    (its lint needs every profile): (None, None)."""
    _file, raw, where = item
    try:
        doc = load_document(raw, where.display)
    except ValidationFailed as exc:
        return _result(list(exc.diagnostics)), None
    problems = check_schema(doc)
    if problems:
        return _result(problems), None
    text = raw.decode("utf-8", errors="replace")  # it loaded: it decodes
    if doc.data["kind"] == "HardwareProfile":
        found = lint_hardware(doc, where.hardware) + lint_yaml11(doc, text)
        return _result(found, doc, "/name"), doc
    if not recipes:
        return None, None
    found = lint_recipe(doc, _HARDWARE, where.models, where.place) + lint_yaml11(doc, text)
    return _result(found, doc, "/model/id"), None


def _check_other(item: tuple[Path, bytes, _Where]) -> dict[str, Any]:
    """:func:`_check_one` of a file not checked as a profile (in a worker: only the result
    travels back)."""
    result, _doc = _check_one(item)
    assert result is not None
    return result


def _unused_hardware(
    files: list[Path], results: list[dict[str, Any]], catalog: Catalog
) -> list[Diagnostic]:
    """A warning for each checked hardware profile that no recipe offers (in the checked
    files or the catalog): a profile nothing can compile for. The shipped profiles are
    exempt (``cpu`` serves local model folders, which have no recipe file)."""
    profiles = [
        r
        for file, r in zip(files, results, strict=True)
        if r["kind"] == "HardwareProfile" and not _shipped(file, catalog)
    ]
    if not profiles:
        return []
    used = {name for r in results if r["kind"] == "Recipe" for name in r["hardware"]}
    for model in catalog.model_ids():
        with contextlib.suppress(AimcError):
            used.update(
                h for c in catalog.recipe(model).data["configurations"] for h in c["hardware"]
            )
    return [
        replace(
            r["anchor"],
            message=f"hardware profile {r['identity']!r} is offered by no recipe",
            severity="warning",
            rule="lint/unused-hardware",
            hint="add it to a configuration's hardware list, or remove the profile",
        )
        for r in profiles
        if r["identity"] not in used
    ]


def _shipped(file: Path, catalog: Catalog) -> bool:
    shipped = [r.path.resolve() for r in catalog.roots if r.label == "shipped"]
    return any(file.resolve().is_relative_to(root) for root in shipped)


def _identity(doc: Document) -> str:
    data = doc.data
    return str(data["name"] if data["kind"] == "HardwareProfile" else data["model"]["id"])
