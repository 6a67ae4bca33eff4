"""Catalog stage: find recipes and hardware profiles in the shipped and user directories.

Takes the user's recipe directories (``--recipes DIR``, then ``$AIMC_RECIPES``); hands on
:class:`Recipe` and :class:`Hardware` objects, each loaded, schema-checked and linted on
first use. Every recipe directory has the same layout as the shipped one::

    models/<org>/<name>.yaml     one recipe per Hugging Face model id
    hardware/<name>.yaml         one hardware profile per target name

Precedence: a model id or hardware name found in several directories is taken from the
first one, in this order: ``--recipes`` directories (in the order given), ``$AIMC_RECIPES``
directories (in order, separated by ``:``), the recipes shipped with aimc.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aimc.core import _resources
from aimc.core.diagnostics import Diagnostic, did_you_mean
from aimc.core.errors import ConfigError, ValidationFailed
from aimc.core.loader import Document, read_document
from aimc.domain.recipe import (
    Hardware,
    Recipe,
    RecipeRoot,
    config_id,
    configurations,
    iter_yaml,
    model_id_from_path,
    recipe_roots,
)

__all__ = [
    "COLUMNS",
    "Catalog",
    "catalog_rows",
]


@functools.cache
def _shipped_index() -> dict[str, str]:
    """Shipped file (relative path) -> sha256 of the version that passed validation."""
    try:
        index: dict[str, str] = json.loads(_resources.read_text("recipes", "index.json"))[
            "validated"
        ]
    except (OSError, ValueError, KeyError):
        return {}
    return index


class Catalog:
    """Recipes and hardware profiles from every recipe directory, loaded lazily (a plain
    class: a dataclass costs each start-up ~0.4 ms; never compared, printed or replaced).

    Args:
        roots: Recipe directories, highest precedence first (see :func:`recipe_roots`).
    """

    __slots__ = ("_hardware", "_recipes", "roots")

    def __init__(self, roots: Sequence[RecipeRoot]) -> None:
        self.roots = roots
        self._recipes: dict[str, Recipe] = {}
        self._hardware: dict[str, Hardware] = {}

    @classmethod
    def default(cls, user_dirs: Sequence[str | Path] = ()) -> Catalog:
        """The catalog for ``--recipes`` directories, ``$AIMC_RECIPES`` and the shipped ones."""
        for d in user_dirs:
            if not Path(d).is_dir():
                raise ConfigError(f"recipe directory not found: {d}")
        return cls(recipe_roots(user_dirs))

    def _index(self, sub: str, is_model: bool) -> dict[str, tuple[Path, RecipeRoot]]:
        found: dict[str, tuple[Path, RecipeRoot]] = {}
        for root in self.roots:
            base = root.path / sub
            for file in iter_yaml(base):
                key = model_id_from_path(base, file) if is_model else file.stem
                found.setdefault(key, (file, root))
        return found

    def model_files(self) -> dict[str, tuple[Path, RecipeRoot]]:
        """Model id -> (recipe file, its root), precedence applied."""
        return self._index("models", True)

    def hardware_files(self) -> dict[str, tuple[Path, RecipeRoot]]:
        """Hardware name -> (profile file, its root), precedence applied."""
        return self._index("hardware", False)

    def model_ids(self) -> list[str]:
        """Every model id in the catalog, sorted."""
        return sorted(self.model_files())

    def hardware_names(self) -> list[str]:
        """Every hardware profile name, sorted."""
        return sorted(self.hardware_files())

    def _load(self, file: Path, root: RecipeRoot) -> tuple[Document, bool]:
        """The file, schema-checked; True when it is a shipped file exactly as validated
        (schema and lint) when aimc was built (``tools/update_catalog_index.py``)."""
        doc = read_document(file)
        if (
            root.label == "shipped"
            and _shipped_index().get(file.relative_to(root.path).as_posix()) == doc.sha256
        ):
            return doc, True
        # Deferred on purpose, as the lint imports below: a shipped file validated when
        # aimc was built needs neither, and compile pays for them only on user files
        # (bench/speed.py).
        from aimc.domain.schema import check_schema

        problems = [d for d in check_schema(doc) if d.severity == "error"]
        if problems:
            raise ValidationFailed(problems)
        return doc, False

    def recipe(self, model_id: str) -> Recipe:
        """The recipe for ``model_id`` (exact, else case-insensitive match).

        Raises:
            ConfigError: No recipe for that id (with "did you mean").
            ValidationFailed: The recipe file is invalid.
        """
        files = self.model_files()
        key = (
            model_id
            if model_id in files
            else next((k for k in files if k.casefold() == model_id.casefold()), None)
        )
        if key is None:
            raise ConfigError(
                f"no recipe for model {model_id!r}",
                hint=did_you_mean(model_id, files)
                or "see 'aim-engine list models' for the models with recipes",
            )
        if key not in self._recipes:
            file, root = files[key]
            doc, validated = self._load(file, root)
            recipe = Recipe(doc, root)
            hardware = self.hardware_files()
            names = {h for c in recipe.data["configurations"] for h in c["hardware"]}
            # A shipped recipe was linted against the shipped profiles: lint it again only
            # when a user directory replaces one of the profiles it names.
            if not validated or any(
                n not in hardware or hardware[n][1].label != "shipped" for n in names
            ):
                self._check(lint_recipe_in_catalog(recipe, self))
            self._recipes[key] = recipe
        return self._recipes[key]

    def hardware(self, name: str) -> Hardware:
        """The hardware profile called ``name``.

        Raises:
            ConfigError: No such profile (with "did you mean").
            ValidationFailed: The profile file is invalid.
        """
        files = self.hardware_files()
        if name not in files:
            raise ConfigError(
                f"unknown hardware target {name!r}",
                hint=did_you_mean(name, files) or "known targets: " + ", ".join(sorted(files)),
            )
        if name not in self._hardware:
            file, root = files[name]
            doc, validated = self._load(file, root)
            hw = Hardware(doc, root)
            if not validated:
                self._check(lint_hardware_in_catalog(hw))
            self._hardware[name] = hw
        return self._hardware[name]

    def recipes(self) -> list[Recipe]:
        """Every recipe, sorted by model id."""
        return [self.recipe(m) for m in self.model_ids()]

    def all_hardware(self) -> list[Hardware]:
        """Every hardware profile, sorted by name."""
        return [self.hardware(n) for n in self.hardware_names()]

    @staticmethod
    def _check(diagnostics: list[Diagnostic]) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        if errors:
            raise ValidationFailed(errors)


class _Profiles(Mapping[str, Any]):
    """The catalog's hardware profiles by name, each loaded only when looked up."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog
        self._names = catalog.hardware_names()

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        return self._catalog.hardware(name).data

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def lint_recipe_in_catalog(recipe: Recipe, catalog: Catalog) -> list[Diagnostic]:
    """Lint one recipe against the hardware profiles of the catalog (loaded as needed)."""
    from aimc.check.lint import lint_recipe

    return lint_recipe(recipe.doc, _Profiles(catalog), recipe.root.path / "models")


def lint_hardware_in_catalog(hw: Hardware) -> list[Diagnostic]:
    """Lint one hardware profile."""
    from aimc.check.lint import lint_hardware

    return lint_hardware(hw.doc, hw.root.path / "hardware")


#: ``list TYPE``: the table's columns per type (JSON and YAML carry every field).
COLUMNS = {
    "models": ["model", "precisions", "backends", "hardware", "gpus", "description"],
    "recipes": ["model", "path", "source", "configurations", "sha256"],
    "configs": ["model", "config", "backend", "hardware", "precision", "nodes", "gpus_per_node"],
}


def catalog_rows(kind: str, recipes: list[Any]) -> list[dict[str, Any]]:
    """The rows of ``aim-engine list TYPE`` (models, recipes or configs) for ``recipes``
    (the CLI and the Python API show the same)."""
    rows: list[dict[str, Any]] = []
    for r in recipes:
        data = r.data
        confs = data["configurations"]
        if kind == "models":
            rows.append(
                {
                    "model": r.model_id,
                    "description": data["model"].get("description", ""),
                    "precisions": list(data["weights"]),
                    "backends": sorted({backend for _, _, backend in configurations(data)}),
                    "hardware": sorted({h for c in confs for h in c["hardware"]}),
                    "gpus": sorted({g for c in confs for g in c["gpus"]}),
                    "weights": {
                        p: w.get("repo") or w.get("path") for p, w in data["weights"].items()
                    },
                }
            )
        elif kind == "recipes":
            rows.append(
                {
                    "model": r.model_id,
                    "path": r.path,
                    "source": r.root.label,
                    "configurations": len(confs),
                    "sha256": r.doc.sha256,
                }
            )
        else:
            for i, c, backend in configurations(data):
                rows.append(
                    {
                        "model": r.model_id,
                        "config": config_id(c, i),
                        "backend": backend,
                        "hardware": c["hardware"],
                        "precision": c["precision"],
                        "nodes": c.get("nodes", [1]),
                        "gpus_per_node": c["gpus"],
                        # The recipe's own name for the GPUs per node (kept for readers of
                        # the JSON before nodes were shown).
                        "gpus": c["gpus"],
                    }
                )
    return rows
