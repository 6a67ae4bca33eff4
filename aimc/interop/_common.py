"""What both importers share: the conversion result, origins, bounds and hardware.

A foreign collection is read into :class:`~aimc.core.loader.Document` objects (positions kept:
:mod:`aimc.interop._collection`); the per-format modules turn them into aimc recipe and
hardware dicts (their args and env through :mod:`aimc.interop._args`). Every value they
write remembers the foreign ``file:line:col`` it came from (:class:`Origin`), so problems
found later in the converted recipe are reported where the user wrote them. A model's
facts come from aimc's own recipes (:class:`Facts`), a GPU's profile from aimc's own
hardware when it has one (:func:`hardware_from_shipped`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import Diagnostic
from aimc.core.errors import AimcError, ValidationFailed
from aimc.core.loader import Document, pointer, read_document
from aimc.interop._collection import LIMIT, Collected
from aimc.interop._facts import cached_facts

__all__ = [
    "FACT_RULES",
    "HARDWARE_NAME",
    "MAX_CONFIGURATIONS",
    "MAX_ENTRIES",
    "MAX_ITEMS",
    "MODEL_ID",
    "NO_FACTS",
    "Conversion",
    "Facts",
    "Origin",
    "RecipeOut",
    "config_id",
    "first_items",
    "hardware_from_shipped",
    "no_equivalent",
    "over_limit",
    "ptr",
]

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")
HARDWARE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
CONFIG_ID = re.compile(r"[^a-z0-9._-]+")

#: Most entries of one foreign list or mapping of engine args, env vars or fields that are
#: read (a real profile sets a few dozen); the rest are reported once and not read, so the
#: work one file causes stays bounded whatever its size.
MAX_ITEMS = 100
#: Most configurations one model gets from a collection (AIM: per model; vLLM Recipes: per
#: model file, variant x GPU x strategy), and most engine args and env vars they hold in
#: all (vLLM Recipes repeat a file's args in every configuration); the rest are reported
#: and not imported.
MAX_CONFIGURATIONS = 256
MAX_ENTRIES = 4096


#: The rule of what has no aimc equivalent (a warning at the foreign line).
NO_EQUIVALENT = "interop/no-equivalent"


#: A JSON Pointer from its reference tokens (the loader's).
ptr = pointer


@dataclass(frozen=True)
class Origin:
    """Where a converted value came from: a foreign file, its position and pointer."""

    path: str
    line: int
    column: int
    pointer: str

    @classmethod
    def of(cls, doc: Document, pointer: str, *, key: bool = False) -> Origin:
        """The origin of ``pointer`` in ``doc``."""
        line, column = doc.position(pointer, key=key)
        return cls(doc.path, line, column, pointer)

    def diagnostic(
        self, message: str, *, severity: str = "error", rule: str, hint: str | None = None
    ) -> Diagnostic:
        """A diagnostic at this origin."""
        return Diagnostic(
            path=self.path,
            line=self.line,
            column=self.column,
            message=message,
            pointer=self.pointer,
            severity="warning" if severity == "warning" else "error",
            rule=rule,
            hint=hint,
        )


@dataclass
class RecipeOut:
    """One converted recipe and the origin of each of its values (by JSON Pointer)."""

    data: dict[str, Any]
    origins: dict[str, Origin] = field(default_factory=dict)
    #: Linted, never imported: aimc has no facts of the model (:data:`NO_FACTS` stand in).
    lint_only: bool = False
    #: One line written above the imported recipe (where its facts came from).
    note: str | None = None

    def origin(self, pointer: str) -> Origin | None:
        """The origin of ``pointer``, else of the nearest enclosing value that has one."""
        while True:
            if pointer in self.origins:
                return self.origins[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


@dataclass
class Conversion:
    """A converted collection.

    Attributes:
        files: The foreign files read, as displayed.
        recipes: Model id -> converted recipe.
        hardware: Hardware name -> converted profile (plain data) and its origin.
        diagnostics: What could not be converted or has no equivalent (at the foreign
            file's line).
        claims: (model id, precision, GB claimed, origin) of vLLM Recipes'
            ``vram_minimum_gb``, checked by :mod:`aimc.interop._check`.
        changes: What ``--fix`` migrated (:class:`aimc.interop._migrations.Change`).
    """

    files: list[str] = field(default_factory=list)
    recipes: dict[str, RecipeOut] = field(default_factory=dict)
    hardware: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    diagnostics: Collected = field(default_factory=lambda: Collected())
    claims: list[tuple[str, str, float, Origin]] = field(default_factory=list)
    changes: list[Any] = field(default_factory=list)


def over_limit(where: Origin, count: int, what: str, limit: int = MAX_ITEMS) -> Diagnostic:
    """The warning for a foreign list or mapping of more than ``limit`` entries: the first
    ``limit`` are read, the rest are not (a bound on the work one file causes)."""
    return where.diagnostic(
        f"{count} {what}: more than aimc reads ({limit}); the first {limit} are read, the "
        "rest are not imported",
        severity="warning",
        rule=LIMIT,
    )


def first_items(mapping: Mapping[Any, Any], limit: int = MAX_ITEMS) -> list[tuple[Any, Any]]:
    """The first ``limit`` items of ``mapping``."""
    out: list[tuple[Any, Any]] = []
    for item in mapping.items():
        if len(out) == limit:
            break
        out.append(item)
    return out


def config_id(text: str) -> str:
    """A configuration id (``[a-z0-9][a-z0-9._-]*``) made from foreign text."""
    out = CONFIG_ID.sub("-", text.lower()).strip("-._")[:80]
    return out if out and out[0].isalnum() else f"c-{out}".rstrip("-") or "c"


def no_equivalent(where: Origin, message: str, hint: str | None = None) -> Diagnostic:
    """The warning for what a foreign file says and aimc cannot express: reported at its
    line, never dropped silently."""
    return where.diagnostic(message, severity="warning", rule=NO_EQUIVALENT, hint=hint)


#: Settings of a shipped profile that change what is launched; an imported profile leaves
#: them out so a converted model launches with the foreign file's env and args only.
_LAUNCH_SETTINGS = ("env", "multi_gpu_env")


def hardware_from_shipped(name: str, description: str, catalog: Any) -> dict[str, Any] | None:
    """aimc's profile ``name`` (from ``catalog``) without its launch env and backend args
    (the foreign collection says those), or None when aimc has no such profile."""
    if name not in catalog.hardware_names():
        return None
    try:
        data = dict(catalog.hardware(name).data)
    except AimcError:
        return None
    for key in _LAUNCH_SETTINGS:
        data.pop(key, None)
    backends = {
        b: {k: v for k, v in s.items() if k == "image"} for b, s in data.get("backends", {}).items()
    }
    data["backends"] = {b: s for b, s in backends.items() if s}
    if not data["backends"]:
        data.pop("backends")
    data["description"] = description[:200]
    return data


class Facts:
    """Model facts (and architecture) by model id, from the recipes of a catalog: read once
    each, schema-checked, without the catalog's lint (the importers need only the facts);
    for a model the catalog lacks, from its ``config.json`` in the model cache
    (:func:`aimc.interop._facts.cached_facts`), else, when the cache cannot give them, from
    the hub (``hub``: :class:`aimc.interop._hub_facts.Hub`; a string: why the hub is not
    asked; None: it is not), with where they came from in :attr:`sources`, or why not in
    :attr:`missing`."""

    def __init__(self, catalog: Any, cache_dir: Path | None = None, hub: Any = None):
        self._files = {k.casefold(): f for k, (f, _root) in catalog.model_files().items()}
        self._cache: dict[str, tuple[dict[str, Any], str | None] | None] = {}
        self._cache_dir = cache_dir
        self._hub = hub
        #: Model id -> where its facts came from, for those read from the cache or the hub.
        self.sources: dict[str, str] = {}
        #: Model id -> why its facts could not be read from the model cache or the hub.
        self.missing: dict[str, str] = {}

    def __call__(self, model_id: str) -> tuple[dict[str, Any], str | None] | None:
        key = model_id.casefold()
        if key not in self._cache:
            self._cache[key] = self._read(key) or self._cached(model_id)
        return self._cache[key]

    def _cached(self, model_id: str) -> tuple[dict[str, Any], str | None] | None:
        found = None if self._cache_dir is None else cached_facts(self._cache_dir, model_id)
        if not isinstance(found, tuple):
            found = self._asked(model_id, found)
        if isinstance(found, str):
            self.missing[model_id] = found
        if not isinstance(found, tuple):
            return None
        facts, architecture, source = found
        self.sources[model_id] = source
        return facts, architecture

    def _asked(self, model_id: str, cached: str | None) -> tuple[Any, ...] | str | None:
        """The facts from the hub of a model the cache cannot give them of (``cached``: why
        not, None when it is not cached), or why there are none."""
        if self._hub is None:
            return cached
        if isinstance(self._hub, str):
            where = "" if self._cache_dir is None else f" (looked for in {self._cache_dir})"
            why = cached or f"its config.json is not in the model cache{where}"
            return f"{why}, and the hub is not asked ({self._hub})"
        found = self._hub.facts(model_id)
        if isinstance(found, tuple):
            return found
        return f"{cached or 'its config.json is not in the model cache'}; the hub: {found}"

    def hint(self, model_id: str) -> str:
        """What the ``interop/facts`` warning of ``model_id`` suggests."""
        why = self.missing.get(model_id)
        where = "" if self._cache_dir is None else f" (looked for in {self._cache_dir})"
        return (
            (f"{why}; " if why else f"its config.json is not in the model cache{where}; ")
            + "put it in the model cache ('aim-engine cache download MODEL'), or add a "
            "recipe with its model.facts to a --recipes folder, then import again"
        )

    def _read(self, key: str) -> tuple[dict[str, Any], str | None] | None:
        file = self._files.get(key)
        if file is None:
            return None
        try:
            data = read_document(file).data
            model = data["model"]
            facts = dict(model["facts"])
        except (ValidationFailed, KeyError, TypeError):
            return None
        # The converted recipe goes through the whole schema; here only what the
        # conversion itself reads must hold.
        if not all(
            isinstance(facts.get(k), int) and not isinstance(facts.get(k), bool) and facts[k] > 0
            for k in _FACT_INTS
        ):
            return None
        architecture = model.get("architecture")
        return facts, architecture if isinstance(architecture, str) else None


#: The facts a recipe of a model aimc knows nothing of is linted with (never imported):
#: every check that needs real facts (:data:`FACT_RULES`) is left out of its report.
NO_FACTS: dict[str, Any] = {
    "parameters": 1,
    "layers": 1,
    "hidden_size": 1,
    "attention_heads": 1,
    "kv_heads": 1,
    "head_dim": 1,
    "max_context": 10**9,
}
#: The lint rules whose verdict depends on a model's facts.
FACT_RULES = frozenset(
    {"lint/heads", "lint/tensor-parallel", "lint/nodes", "lint/fit", "lint/context-length"}
)


#: Facts every recipe has, all positive integers (``parameters`` may be a float).
_FACT_INTS = ("layers", "hidden_size", "attention_heads", "kv_heads", "head_dim", "max_context")
