"""Interop: read AMD AIM profiles and vLLM Recipes as aimc recipes, and lint them.

Pipeline: :func:`load` (the foreign checkout's files, with positions) -> :func:`convert`
(pure: one module per format, recipes + hardware profiles + a diagnostic at the original
``file:line`` for what has no equivalent; with ``fix``, the known migrations to the pinned
backends applied: :mod:`aimc.interop._migrations`) -> :func:`check` (schema, lint and fit
of the converted collection, reported at the original lines; a configuration that cannot
run on a GPU left out) -> :func:`render` (the files of an aimc recipe folder, for
:func:`aimc.core.write.write_artifacts`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aimc.check.checker import CheckResult
from aimc.core.diagnostics import Diagnostic
from aimc.core.digest import sha256
from aimc.core.errors import AimcError, ConfigError
from aimc.core.settings import setting
from aimc.interop import aim_profiles, vllm_recipes
from aimc.interop._check import settle
from aimc.interop._collection import Collected, Tree
from aimc.interop._common import Conversion
from aimc.interop._hub_facts import hub_for
from aimc.interop._migrations import migrate

__all__ = [
    "SOURCES",
    "Conversion",
    "check",
    "check_collections",
    "checkout",
    "convert",
    "load",
    "render",
]

#: Collection format -> its converter module.
SOURCES = {"aim-profiles": aim_profiles, "vllm-recipes": vllm_recipes}


def checkout(source: str, root: Path) -> Path:
    """The root of the ``source`` checkout that ``root`` names: ``root`` itself, or its
    parent when ``root`` is the format's own folder (``profiles/`` of aim-build,
    ``models/`` of vLLM Recipes, whose shared files sit beside it)."""
    folder = SOURCES[source].FOLDER
    if root.name == folder and not (root / folder).is_dir() and not root.is_symlink():
        return root.parent
    return root


def load(source: str, root: Path) -> Tree:
    """The files of a ``source`` checkout at ``root`` (its root or its own folder,
    :func:`checkout`) that the converter reads."""
    if not root.is_dir():
        raise ConfigError(
            f"not a folder: {root}", hint=f"give the root folder of the {source} checkout"
        )
    return Tree(
        checkout(source, root), SOURCES[source].PATTERNS, getattr(SOURCES[source], "shared", None)
    )


def convert(
    source: str,
    root: Path,
    catalog: Any,
    diagnostics: Collected | None = None,
    *,
    fix: bool = False,
    cache: bool = True,
    offline: bool = False,
) -> Conversion:
    """Load and convert the ``source`` checkout at ``root`` (facts looked up in
    ``catalog``, then with ``cache`` in the model cache, ``CACHE_DIR``, and unless
    ``offline`` or ``HF_HUB_OFFLINE`` on the hub: :mod:`aimc.interop._hub_facts`), one
    file at a time; its problems go to ``diagnostics`` when given. With ``fix`` the known
    migrations are applied (each reported; the changes kept in :attr:`Conversion.changes`)."""
    tree = load(source, root)
    sink = Collected() if diagnostics is None else diagnostics
    sink += tree.problems
    conversion: Conversion = SOURCES[source].convert(
        tree.documents(sink),
        catalog,
        sink,
        setting("cache_dir") if cache else None,
        hub_for(offline) if cache else None,
    )
    conversion.files = tree.loaded
    if fix:
        conversion.changes = migrate(conversion)
    if not conversion.files:
        sink.append(
            Diagnostic(
                str(root),
                0,
                0,
                f"no {source} files found",
                severity="warning",  # as validate says of a folder without YAML files
                rule="io",
                hint="expected " + ", ".join(SOURCES[source].PATTERNS),
            )
        )
    return conversion


def check(
    conversion: Conversion, catalog: Any, *, partial: bool = False, claims: bool = True
) -> None:
    """Add every problem of ``conversion`` to its diagnostics and keep of it what is
    imported (see :func:`aimc.interop._check.settle`): ``partial`` leaves out what has
    errors; ``claims`` checks vLLM Recipes' ``vram_minimum_gb``."""
    hardware: dict[str, Mapping[str, Any]] = {}
    for name in catalog.hardware_names():
        try:
            hardware[name] = catalog.hardware(name).data
        except AimcError:  # an invalid user profile is validate's to report, not ours
            continue
    settle(conversion, hardware, partial=partial, claims=claims)


def check_collections(
    source: str, roots: list[Path], catalog: Any, *, fix: bool = False, offline: bool = False
) -> tuple[CheckResult, list[Any]]:
    """``validate --from``: every problem of the ``source`` checkouts at ``roots``, as a
    :class:`~aimc.check.checker.CheckResult` (the files are the foreign files read; the
    problems bounded as :class:`~aimc.interop._collection.Collected` says), and with
    ``fix`` the changes ``import --fix`` would make
    (:class:`aimc.interop._migrations.Change`); facts as :func:`convert` finds them
    (``offline``: not from the hub)."""
    if not roots:
        raise ConfigError(f"--from {source} needs the folder of a checkout")
    files: list[str] = []
    changes: list[Any] = []
    found = Collected()
    for root in roots:
        conversion = convert(source, root, catalog, found, fix=fix, offline=offline)
        files += conversion.files
        changes += conversion.changes
        check(conversion, catalog)
        del conversion  # one checkout's recipes at a time
    where = ", ".join(str(root) for root in roots)
    return CheckResult(files=files, diagnostics=found.sorted(where)), changes


_HEADER = (
    "# yaml-language-server: $schema=https://aimc.dev/schemas/v1/{schema}.schema.json\n"
    "# Imported by aimc from {source}; see docs/interop.md.\n"
)


def _yaml(data: Mapping[str, Any]) -> str:
    from ruamel.yaml import YAML  # deferred, as everywhere in aimc: ruamel is slow to import

    yaml = YAML(typ="safe")  # libyaml's emitter when installed; the same text
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    stream = io.StringIO()
    yaml.dump(dict(data), stream)
    return stream.getvalue()


def render(conversion: Conversion, source: str, version: str) -> dict[str, str]:
    """The files of an aimc recipe folder: ``models/<org>/<name>.yaml``,
    ``hardware/<name>.yaml`` and ``manifest.json`` (what aimc wrote, with hashes)."""
    files: dict[str, str] = {}
    for model_id, recipe in sorted(conversion.recipes.items()):
        note = f"# {recipe.note}\n" if recipe.note else ""
        files[f"models/{model_id}.yaml"] = (
            _HEADER.format(schema="recipe", source=source) + note + _yaml(recipe.data)
        )
    for name, (data, _where) in sorted(conversion.hardware.items()):
        files[f"hardware/{name}.yaml"] = _HEADER.format(schema="hardware", source=source) + _yaml(
            data
        )
    manifest = {
        "generator": f"aimc {version}",
        "kind": "imported-recipes",
        "source": source,
        "artifacts": {
            name: sha256(text.encode("utf-8")).hexdigest() for name, text in sorted(files.items())
        },
    }
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    return files
