"""A vLLM Recipes checkout read the way the recipes site reads it.

The files every model file refers to (:func:`shared`: ``taxonomy.yaml``'s GPUs,
``strategies/*.yaml``), held in a :class:`Context` with the args and env of each layer
(strategy, variant, hardware override) read once per file; the site's rules for a
hardware-keyed map (:func:`keyed`: exact id, generation, brand, ``default``), for the GPUs
a model is listed for (:func:`hardware_list`) and for the tensor parallel size a strategy
gets (:func:`tensor_parallel`); and which taxonomy GPUs aimc can target (:func:`gpu_problem`). The
mapping of all this to aimc recipes is :mod:`aimc.interop.vllm_recipes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aimc import vendors
from aimc.core.diagnostics import excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.core.safety import holds_secret
from aimc.interop._args import (
    AIMC_OWNED,
    FROM_RECIPE,
    NEUTRAL,
    args_from_list,
    env_items,
    is_secret,
    negated,
    secret,
)
from aimc.interop._common import Conversion, Origin, no_equivalent, ptr

__all__ = [
    "GENERATIONS",
    "RECIPE_FIELDS",
    "SINGLE_NODE",
    "Args",
    "Context",
    "Env",
    "as_mapping",
    "gpu_problem",
    "hardware_list",
    "hw_name",
    "keyed",
    "shared",
    "tensor_parallel",
]

#: Strategies aimc expresses: tensor parallel over one node's GPUs (plus the strategy's
#: own vllm_args, e.g. --enable-expert-parallel).
SINGLE_NODE = ("single_node_tp", "single_node_tep")
#: Taxonomy generation -> architecture, for GPUs aimc ships no profile of (their
#: precisions, container and image: :mod:`aimc.vendors`).
GENERATIONS = {
    "ampere": "sm80",
    "ada": "sm89",
    "hopper": "sm90",
    "blackwell": "sm100",
    "amd": "gfx942",
}

#: The recipe fields a command line may set (their flags aimc derives from them): read into
#: the recipe (:mod:`aimc.interop._vllm_variants`), not imported as args.
RECIPE_FIELDS = ("trust_remote_code", "quantization", "dtype")
#: A layer's args (last wins), their origins, and the neutral and recipe fields they set.
Args = tuple[dict[str, Any], dict[str, Origin], dict[str, tuple[Any, Origin]]]
#: A layer's env and the origin of each variable.
Env = tuple[dict[str, str], dict[str, Origin]]


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (a foreign field of another type
    reads as absent)."""
    return value if isinstance(value, Mapping) else {}


def hw_name(taxonomy_id: str) -> str:
    """The aimc hardware name of a taxonomy id (``H100_SXM`` -> ``h100-sxm``)."""
    return taxonomy_id.lower().replace("_", "-")


def keyed(mapping: Any, hw_id: str, profile: Mapping[str, Any]) -> tuple[Any, str] | None:
    """A hardware-keyed map's entry for ``hw_id``: exact id > generation > brand >
    ``default`` (the recipes site's order); (value, key)."""
    if not isinstance(mapping, Mapping):
        return None
    generation = profile.get("generation")
    if isinstance(generation, list):
        generation = generation[0] if generation else None
    for key in (hw_id, generation, str(profile.get("brand", "")).lower(), "default"):
        if key in mapping:
            return mapping[key], str(key)
    return None


def shared(path: str) -> bool:
    """Whether the file at display ``path`` is one every model file refers to (taxonomy,
    strategy, platforms): read before the model files."""
    parts = path.replace("\\", "/").split("/")
    return parts[-1] in ("taxonomy.yaml", "platforms.yaml") or parts[-2:-1] == ["strategies"]


class Context:
    """The shared files: taxonomy hardware and strategies, with their documents; the
    command lines and env already read (each file's problems reported once)."""

    def __init__(self, out: Conversion):
        self.out = out
        self.taxonomy: dict[str, Any] = {}
        self.taxonomy_doc: Document | None = None
        self.strategies: dict[str, tuple[Mapping[str, Any], Document]] = {}
        self._read: dict[tuple[str, str, str, str], Any] = {}
        self._offered: list[tuple[str, Origin]] | None = None

    def add(self, doc: Document) -> None:
        """Take ``doc`` if it is a shared file."""
        parts = doc.path.replace("\\", "/").split("/")
        if parts[-1] == "taxonomy.yaml" and isinstance(doc.data, Mapping):
            profiles = doc.data.get("hardware_profiles")
            self.taxonomy = dict(profiles) if isinstance(profiles, Mapping) else {}
            self.taxonomy_doc = doc
            self._offered = None
        elif parts[-2:-1] == ["strategies"] and isinstance(doc.data, Mapping):
            key = str(doc.data.get("name") or parts[-1].rsplit(".", 1)[0])
            self.strategies[key] = (doc.data, doc)
        elif parts[-1] == "platforms.yaml":
            self.out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, "/platforms"),
                    "third-party deploy platforms have no aimc equivalent; not imported",
                )
            )

    def forget(self, doc: Document) -> None:
        """Let go of what was read from model file ``doc``."""
        self._read = {k: v for k, v in self._read.items() if k[0] != doc.path}

    def offered(self) -> list[tuple[str, Origin]]:
        """Every taxonomy GPU (id, its line in taxonomy.yaml), in the taxonomy's order,
        read once."""
        if self._offered is None:
            tdoc = self.taxonomy_doc
            self._offered = [
                (str(k), Origin.of(tdoc, ptr("hardware_profiles", k), key=True))
                for k in self.taxonomy
                if tdoc is not None
            ]
        return self._offered

    def usable(self, names: list[tuple[str, Origin]]) -> list[tuple[str, Origin]]:
        """Those of ``names`` (taxonomy id, origin) aimc can target; the rest reported."""
        found = []
        for hw_id, where in names:
            entry = self.taxonomy.get(hw_id)
            why = "not in taxonomy.yaml" if entry is None else gpu_problem(entry)
            if why is not None:
                self.out.diagnostics.append(
                    no_equivalent(where, f"hardware {hw_id!r}: {why}; not imported")
                )
                continue
            found.append((hw_id, where))
        return found

    def layer(
        self, data: Mapping[str, Any], doc: Document, base: str, args: str, env: str
    ) -> tuple[Args, Env]:
        """The args and env of ``data`` (a strategy, variant or hardware override) at
        ``base`` of ``doc``, read once per file."""
        key = (doc.path, base, args, env)
        if key not in self._read:
            self._read[key] = (
                self.args(data.get(args), doc, f"{base}/{args}"),
                self.env(data.get(env), doc, f"{base}/{env}"),
            )
        found: tuple[Args, Env] = self._read[key]
        return found

    def args(self, words: Any, doc: Document, base: str) -> Args:
        """A command-line list as aimc args (last wins), their origins, and the fields
        they set: neutral ones (``--max-model-len`` and the like) and the recipe's
        (:data:`RECIPE_FIELDS`: ``--trust-remote-code``, ``--quantization``, ``--dtype``)."""
        parsed, problems = args_from_list(words, doc, base)
        self.out.diagnostics += problems
        args: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        neutral: dict[str, tuple[Any, Origin]] = {}
        for word, raw, where in parsed:
            name, value = negated(word, raw)
            if is_secret(name) or holds_secret(value):
                self.out.diagnostics.append(secret(name, where, value))
            elif name in NEUTRAL:
                neutral[NEUTRAL[name]] = (value, where)
            elif name in FROM_RECIPE:
                neutral[name.replace("-", "_")] = (value, where)
            elif name in AIMC_OWNED:
                self.out.diagnostics.append(
                    no_equivalent(where, f"'--{name}' is set by aimc at launch; not imported")
                )
            else:
                args[name], origins[name] = value, where
        return args, origins, neutral

    def env(self, env: Any, doc: Document, base: str) -> Env:
        values, origins, problems = env_items(env, doc, base)
        self.out.diagnostics += problems
        return values, origins


def gpu_problem(entry: Any) -> str | None:
    """Why a taxonomy entry cannot be an aimc hardware profile, or None."""
    if not isinstance(entry, Mapping):
        return "not a mapping"
    vendor = str(entry.get("brand", "")).lower()
    if vendor not in vendors.gpu_vendors():
        return f"{entry.get('brand')} {entry.get('generation')} is not a GPU aimc targets"
    if str(entry.get("generation")) not in GENERATIONS:
        return f"generation {excerpt(entry.get('generation'))} is unknown to aimc"
    count, vram = entry.get("gpu_count"), entry.get("vram_gb")
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not 1 <= count <= 64
        or not isinstance(vram, (int, float))
        or vram <= 0
    ):
        return "gpu_count and vram_gb must be positive numbers"
    if entry.get("multi_node"):
        return "multi-node profiles have no aimc equivalent"
    return None


def hardware_list(doc: Document, meta: Mapping[str, Any], ctx: Context) -> list[tuple[str, Origin]]:
    """(taxonomy id, origin) of the GPUs the site offers the model on that aimc can target
    (the rest reported). As the site's picker (``src/lib/command-synthesis.js``
    ``isHardwareSupported``, ``pickDefaultHardware``): every taxonomy GPU but those
    ``meta.hardware`` marks ``unsupported`` (an opt-out, not an allowlist), and a
    ``restricted`` one only when ``meta.hardware`` names it. A GPU ``meta.hardware`` names
    has its origin there, the others in taxonomy.yaml."""
    listed = meta.get("hardware")
    declared = {str(k): k for k in listed} if isinstance(listed, Mapping) else {}
    names = []
    for hw_id, where in ctx.offered():
        entry = ctx.taxonomy.get(hw_id)
        if hw_id in declared:
            if str(as_mapping(listed)[declared[hw_id]]) == "unsupported":
                continue
            where = Origin.of(doc, ptr("meta", "hardware", declared[hw_id]), key=True)
        elif isinstance(entry, Mapping) and entry.get("restricted"):
            continue
        names.append((hw_id, where))
    unknown = [
        (k, Origin.of(doc, ptr("meta", "hardware", raw), key=True))
        for k, raw in declared.items()
        if k not in {h for h, _ in ctx.offered()}
    ]
    return ctx.usable(names + unknown)


def tensor_parallel(
    doc: Document,
    hw_id: str,
    where_hw: Origin,
    strategy: str,
    vkey: str,
    variant: Mapping[str, Any],
    entry: Mapping[str, Any],
) -> tuple[Any, Origin]:
    """The site's TP for single_node_tp: the variant's ``tp`` (a number or a hardware-keyed
    map), else ``strategy_overrides.single_node_tp.tp``, else 1 when ``vram_minimum_gb``
    fits one GPU, else all of the node's GPUs (which TEP always uses)."""
    count = int(entry["gpu_count"])
    vbase = ptr("variants", vkey)
    if strategy != "single_node_tp":
        return count, where_hw
    declared = variant.get("tp")
    if isinstance(declared, Mapping):
        found = keyed(declared, hw_id, entry)
        if found is not None:
            return found[0], Origin.of(doc, f"{vbase}/tp/{escape_pointer(found[1])}")
    elif declared is not None:
        return declared, Origin.of(doc, f"{vbase}/tp")
    override = as_mapping(as_mapping(doc.data.get("strategy_overrides")).get(strategy))
    if isinstance(override.get("tp"), Mapping):
        found = keyed(override["tp"], hw_id, entry)
        if found is not None:
            where = ptr("strategy_overrides", strategy, "tp", found[1])
            return found[0], Origin.of(doc, where)
    elif "tp" in override:
        return override["tp"], Origin.of(doc, ptr("strategy_overrides", strategy, "tp"))
    claim = variant.get("vram_minimum_gb")
    if isinstance(claim, (int, float)) and not isinstance(claim, bool) and claim > 0:
        tp = 1 if claim <= float(entry["vram_gb"]) / count else count
        return tp, Origin.of(doc, f"{vbase}/vram_minimum_gb")
    return count, where_hw
