"""AMD AIM profiles (amd-enterprise-ai/aim-build) -> aimc recipes and hardware profiles.

Takes the loaded files of a checkout (``profiles/**/*.yaml``, ``metadata/**/metadata.yaml``)
and hands on a :class:`~aimc.interop._common.Conversion`: one recipe per ``aim_id`` (each
profile one configuration), one hardware profile per GPU, and a diagnostic at the
profile's line for everything that has no aimc equivalent. The field mapping is in
``docs/interop.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import Diagnostic, excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.core.safety import holds_secret
from aimc.interop._aim_select import preference, selection
from aimc.interop._args import (
    AIMC_OWNED,
    FLAG_NAME,
    NEUTRAL,
    bad_flag,
    coerce,
    env_items,
    is_secret,
    negated,
    neutral_value,
    secret,
    weights_field,
)
from aimc.interop._collection import LIMIT, Collected
from aimc.interop._common import (
    HARDWARE_NAME,
    MAX_CONFIGURATIONS,
    MAX_ENTRIES,
    MAX_ITEMS,
    MODEL_ID,
    NO_FACTS,
    Conversion,
    Facts,
    Origin,
    RecipeOut,
    config_id,
    first_items,
    hardware_from_shipped,
    no_equivalent,
    over_limit,
    ptr,
)

__all__ = ["FOLDER", "PATTERNS", "PRECISIONS", "convert"]

#: The files of an aim-build checkout that describe serving.
PATTERNS = ("profiles/**/*.yaml", "profiles/**/*.yml", "metadata/**/metadata.yaml")
#: The format's own folder: a DIR of that name is read as its checkout's (the parent).
FOLDER = "profiles"

#: AIM precision -> aimc precision (AIM's fp4 is the OCP MXFP4 of gfx950).
PRECISIONS = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "int4",
    "fp4": "mxfp4",
}
#: The top-level fields of a profile (aim-build's schemas/*_profile_schema.json).
_PROFILE_KEYS = {"aim_id", "model_id", "metadata", "engine_args", "env_vars"}


class _Profile:
    """One AIM profile, converted to one aimc configuration (or refused)."""

    def __init__(self, doc: Document):
        self.doc: Document | None = doc
        self.path = doc.path
        self.problems: list[Diagnostic] = []
        self.conf: dict[str, Any] = {}
        self.origins: dict[str, Origin] = {}  # relative to the configuration
        self.model: str | None = None
        self.repo: str | None = None
        self.quantization: str | None = None
        self.quantization_at: Origin | None = None
        self.trust_remote_code = False
        self.dtype: str | None = None  # "auto": the checkpoint's own (config.json)
        self.metric = ""
        self.manual = False
        self.kind = ""  # metadata.type
        #: A general profile's (GPU, precision, GPU count, engine) when AIM's selector
        #: would launch it by default there (latency, not manual-only).
        self.general: tuple[str, str, int, str] | None = None

    def at(self, pointer: str, *, key: bool = False) -> Origin:
        assert self.doc is not None, "released"
        return Origin.of(self.doc, pointer, key=key)

    def release(self) -> None:
        """Keep the origins the recipe needs and let the document go (one file's
        positions at a time)."""
        self.at_root, self.at_aim_id = self.at(""), self.at("/aim_id")
        self.at_model_id, self.at_metric = self.at("/model_id"), self.at("/metadata/metric")
        self.doc = None

    def _refuse(self, pointer: str, message: str, hint: str | None = None) -> bool:
        self.problems.append(self.at(pointer).diagnostic(message, rule="interop/format", hint=hint))
        return False

    def convert(self) -> bool:
        """Fill :attr:`conf`; False when the profile cannot be converted (reported)."""
        assert self.doc is not None
        data = self.doc.data
        if not isinstance(data, Mapping) or not isinstance(data.get("metadata"), Mapping):
            return self._refuse("", "not an AIM profile: no 'metadata' mapping")
        others = sorted(set(data) - _PROFILE_KEYS, key=str)
        if len(others) > MAX_ITEMS:
            self.problems.append(over_limit(self.at(""), len(others), "unknown fields"))
        for other in others[:MAX_ITEMS]:
            self.problems.append(
                no_equivalent(
                    self.at(f"/{escape_pointer(other)}", key=True),
                    f"field {excerpt(other)} has no aimc equivalent; not imported",
                )
            )
        if not self._model(data):
            return False
        slot = self._slot(data["metadata"])
        if slot is None:
            return False
        engine, gpu, precision, gpus = slot
        self._configuration(data["metadata"], engine, gpu, precision, gpus)
        self._engine_args(data.get("engine_args") or {}, precision, gpus)
        env, origins, problems = env_items(data.get("env_vars"), self.doc, "/env_vars")
        self.problems += problems
        if env:
            self.conf["env"] = env
            self.origins["/env"] = self.at("/env_vars")
            for name, where in origins.items():
                self.origins[f"/env/{escape_pointer(name)}"] = where
        return True

    def _model(self, data: Mapping[str, Any]) -> bool:
        """Read the model (``aim_id``) and its repo (``model_id``); False when the profile
        names none (a general profile) or no valid one (reported)."""
        if "aim_id" not in data:
            slot = self._slot(data["metadata"])
            meta = data["metadata"]
            default = meta.get("metric", "latency") == "latency"
            if slot and default and not meta.get("manual_selection_only", False):
                self.general = (slot[1], slot[2], slot[3], slot[0])
            self.problems.append(
                no_equivalent(
                    self.at("/metadata"),
                    "general profile (no aim_id): aimc has no model-independent "
                    "configurations; not imported",
                    "its env and args apply to any model: put them in a recipe's defaults",
                )
            )
            return False
        model, repo = data.get("aim_id"), data.get("model_id", data.get("aim_id"))
        for pointer, value in (("/aim_id", model), ("/model_id", repo)):
            if not isinstance(value, str) or not MODEL_ID.match(value):
                return self._refuse(
                    pointer, f"{excerpt(value)} is not a model id (organization/name)"
                )
        self.model, self.repo = str(model), str(repo)
        return True

    def _slot(self, meta: Mapping[str, Any]) -> tuple[str, str, str, int] | None:
        """The profile's engine, GPU, aimc precision and GPU count; None when one has no
        aimc equivalent (reported)."""
        engine = meta.get("engine", "vllm")
        if engine not in ("vllm", "sglang"):
            self._refuse("/metadata/engine", f"engine {excerpt(engine)} has no aimc backend")
            return None
        gpu = str(meta.get("gpu", "")).lower()
        if not HARDWARE_NAME.match(gpu) or gpu == "none":
            self.problems.append(
                no_equivalent(
                    self.at("/metadata/gpu"),
                    f"GPU {excerpt(meta.get('gpu'))} has no aimc hardware profile; not imported",
                )
            )
            return None
        precision = PRECISIONS.get(str(meta.get("precision")))
        if precision is None:
            self._refuse(
                "/metadata/precision",
                f"precision {excerpt(meta.get('precision'))} has no aimc equivalent",
                "one of: " + ", ".join(PRECISIONS),
            )
            return None
        gpus = meta.get("gpu_count")
        if not isinstance(gpus, int) or isinstance(gpus, bool) or not 1 <= gpus <= 64:
            self._refuse(
                "/metadata/gpu_count", f"gpu_count {excerpt(gpus)} is not a GPU count (1-64)"
            )
            return None
        return str(engine), gpu, precision, gpus

    def _configuration(
        self, meta: Mapping[str, Any], engine: str, gpu: str, precision: str, gpus: int
    ) -> None:
        """The configuration's id (the file's name), description, slot and origins."""
        self.metric = str(meta.get("metric", "latency"))
        self.manual = bool(meta.get("manual_selection_only", False))
        self.kind = str(meta.get("type", "unknown"))
        stem = self.path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        self.conf = {
            "id": config_id(stem),
            "description": f"AIM profile {stem[:80]} ({self.metric}, {self.kind[:20]})",
            "hardware": [gpu],
            "precision": [precision],
            "gpus": [gpus],
        }
        if engine != "vllm":
            self.conf["backend"] = engine
        self.origins = {
            "": self.at(""),
            "/id": self.at(""),
            "/hardware": self.at("/metadata/gpu"),
            "/hardware/0": self.at("/metadata/gpu"),
            "/precision": self.at("/metadata/precision"),
            "/precision/0": self.at("/metadata/precision"),
            "/gpus": self.at("/metadata/gpu_count"),
            "/gpus/0": self.at("/metadata/gpu_count"),
        }

    def _engine_args(self, engine_args: Any, precision: str, gpus: int) -> None:
        """The profile's engine args: aimc args, or what aimc manages (:meth:`_managed`);
        a name the engine cannot parse and a secret are reported, not imported."""
        if not isinstance(engine_args, Mapping):
            self._refuse("/engine_args", "expected a mapping of engine args")
            return
        args: dict[str, Any] = {}
        if len(engine_args) > MAX_ITEMS:
            self.problems.append(
                over_limit(self.at("/engine_args"), len(engine_args), "engine args")
            )
        for key, raw in first_items(engine_args):
            where = self.at(f"/engine_args/{escape_pointer(key)}", key=True)
            name = str(key).replace("_", "-")
            if not FLAG_NAME.match(name):
                self.problems.append(bad_flag(str(key), where))
                continue
            if is_secret(name) or holds_secret(raw):
                self.problems.append(secret(name, where, raw))
                continue
            if raw is False:
                continue  # AIM passes nothing for false, and so does leaving it out
            # null: a bare flag
            name, value = negated(name, True if raw is None else coerce(name, raw))
            if not self._managed(name, value, where, precision, gpus):
                args[name] = value
                self.origins[f"/args/{escape_pointer(name)}"] = where
        if args:
            self.conf["args"] = args
            self.origins["/args"] = self.at("/engine_args")

    def _managed(self, name: str, value: Any, where: Origin, precision: str, gpus: int) -> bool:
        """Whether ``name`` is a flag aimc manages, and if so read it: the GPU count (must
        be ``gpu_count``), a neutral field, the dtype (``auto``, else the precision's), the
        weights' quantization, ``trust_remote_code``; one aimc sets at launch is
        reported."""
        if name == "tensor-parallel-size":
            if value != gpus:
                self.problems.append(
                    where.diagnostic(
                        f"tensor-parallel-size {excerpt(value)} differs from "
                        f"metadata.gpu_count {gpus}",
                        rule="lint/tensor-parallel",
                        hint="aimc serves the model on gpu_count GPUs (tensor parallel)",
                    )
                )
        elif name in NEUTRAL:
            field_value = neutral_value(NEUTRAL[name], value)
            if field_value is None:
                self.problems.append(
                    no_equivalent(where, f"{name} {excerpt(value)} has no aimc equivalent")
                )
            else:
                self.conf[NEUTRAL[name]] = field_value
                self.origins[f"/{NEUTRAL[name]}"] = where
        elif name in ("dtype", "quantization"):
            found = weights_field(name, value, precision)
            if isinstance(found, str):
                self.problems.append(no_equivalent(where, found))
            elif found is not None and found[0] == "dtype":
                self.dtype = found[1]
            elif found is not None:
                self.quantization, self.quantization_at = found[1], where
        elif name == "trust-remote-code":
            self.trust_remote_code = value is True
        elif name in AIMC_OWNED:
            self.problems.append(
                no_equivalent(where, f"'{name}' is set by aimc at launch; not imported")
            )
        else:
            return False
        return True


@dataclass
class _Model:
    """The profiles of one model as they stream in: the one kept per (GPU, precision, GPU
    count, backend) slot (AIM's preferred), what the others need for their report, and the
    first file's origins; the documents are gone."""

    known: tuple[dict[str, Any], str | None] | None
    first: _Profile
    count: int = 0
    entries: int = 0
    trust_remote_code: bool = False
    chosen: dict[tuple[str, str, int, str], _Profile] = field(default_factory=dict)
    others: dict[tuple[str, str, int, str], list[tuple[Origin, str]]] = field(default_factory=dict)

    def add(self, p: _Profile, out: Conversion) -> None:
        self.count += 1
        if p.path < self.first.path:
            self.first = p
        self.trust_remote_code |= p.trust_remote_code
        conf = p.conf
        key = (
            conf["hardware"][0],
            conf["precision"][0],
            conf["gpus"][0],
            conf.get("backend", "vllm"),
        )
        kept = self.chosen.get(key)
        size = len(conf.get("args", ())) + len(conf.get("env", ()))
        if kept is None and (
            len(self.chosen) >= MAX_CONFIGURATIONS or self.entries + size > MAX_ENTRIES
        ):
            out.diagnostics.append(
                p.at_metric.diagnostic(
                    f"more profiles of {p.model!r} than aimc reads (at most "
                    f"{MAX_CONFIGURATIONS} configurations, {MAX_ENTRIES} args and env in "
                    "all); this one is not imported",
                    severity="warning",
                    rule=LIMIT,
                )
            )
            return
        if kept is not None and preference(kept) <= preference(p):
            self.others.setdefault(key, []).append((p.at_metric, p.metric))
            return
        if kept is not None:
            self.others.setdefault(key, []).append((kept.at_metric, kept.metric))
            self.entries -= len(kept.conf.get("args", ())) + len(kept.conf.get("env", ()))
        self.chosen[key] = p
        self.entries += size


def convert(
    docs: Iterable[Document],
    catalog: Any,
    diagnostics: Collected | None = None,
    cache_dir: Path | None = None,
    hub: Any = None,
) -> Conversion:
    """Convert the loaded files of an AIM checkout (see :data:`PATTERNS`), one at a time.

    Args:
        docs: Profiles and metadata files, loaded with positions.
        catalog: Where model facts (layers, heads, parameters) and GPUs are looked up.
        diagnostics: Where the problems go (a new :class:`Collected` when not given).
        cache_dir, hub: Where a model's facts the catalog lacks are looked for (:class:`Facts`).
    """
    out = Conversion(diagnostics=Collected() if diagnostics is None else diagnostics)
    facts_for = Facts(catalog, cache_dir, hub)
    titles: dict[str, str] = {}
    by_model: dict[str, _Model] = {}
    generals: dict[tuple[str, str, int, str], str] = {}
    for doc in docs:
        out.files.append(doc.path)
        if doc.path.replace("\\", "/").endswith("/metadata.yaml"):
            title = _title(doc.data)
            if title:
                titles[title[0]] = title[1]
            continue
        profile = _Profile(doc)
        ok = profile.convert()
        out.diagnostics += profile.problems
        profile.problems = []
        profile.release()
        if profile.general is not None:  # what AIM launches where no profile of the model is
            name = profile.path.replace("\\", "/").rsplit("/", 1)[-1]
            generals.setdefault(profile.general, f"general/{name}")
        if ok and profile.model:
            if profile.model not in by_model:
                by_model[profile.model] = _Model(facts_for(profile.model), profile)
            by_model[profile.model].add(profile, out)
    for model, group in sorted(by_model.items()):
        recipe = out.recipes[model] = _recipe(model, group, titles.get(model), out)
        for key, kept in group.chosen.items():
            text = f"{kept.conf['description']}; {selection(kept, generals.get(key))}"
            kept.conf["description"] = text[:200]
        if group.known is None:  # linted all the same, never imported
            recipe.lint_only = True
            out.diagnostics.append(
                group.first.at_aim_id.diagnostic(
                    f"aimc knows no facts (layers, heads, parameters) for {model!r}; "
                    f"its {group.count} profile(s) are linted, not imported",
                    rule="interop/facts",
                    severity="warning",
                    hint=facts_for.hint(model),
                )
            )
        elif model in facts_for.sources:
            recipe.note = f"model.facts from {facts_for.sources[model]}"
    _hardware(out, catalog)
    return out


def _hardware(out: Conversion, catalog: Any) -> None:
    """The profile of each GPU the recipes use: aimc's own (without its launch settings);
    a GPU aimc has none of gets none (the check leaves its configurations out)."""
    for recipe in out.recipes.values():
        for index, conf in enumerate(recipe.data["configurations"]):
            name = conf["hardware"][0]
            if name in out.hardware:
                continue
            where = recipe.origin(ptr("configurations", index, "hardware", 0))
            assert where is not None
            hw = hardware_from_shipped(
                name, f"{name} as AIM profiles launch on it (imported)", catalog
            )
            if hw is not None:  # else lint/unknown-hardware leaves its configurations out
                out.hardware[name] = (hw, where)


def _title(data: Any) -> tuple[str, str] | None:
    try:
        aim = data["com"]["amd"]["aim"]
        return str(aim["model"]["canonicalName"]), str(aim.get("title") or "")
    except (KeyError, TypeError, AttributeError):
        return None


def _recipe(model: str, group: _Model, title: str | None, out: Conversion) -> RecipeOut:
    facts, architecture = group.known or (NO_FACTS, None)
    first = group.first
    recipe: dict[str, Any] = {"apiVersion": "aimc/v1", "kind": "Recipe", "model": {"id": model}}
    if title:
        recipe["model"]["description"] = title[:200]
    if architecture:
        recipe["model"]["architecture"] = architecture
    if group.trust_remote_code:
        recipe["model"]["trust_remote_code"] = True
    recipe["model"]["facts"] = facts
    result = RecipeOut(recipe, {"": first.at_root, "/model/id": first.at_aim_id})
    weights: dict[str, dict[str, Any]] = {}
    for key, kept in group.chosen.items():
        for where, metric in group.others.get(key, []):
            out.diagnostics.append(
                no_equivalent(
                    where,
                    "aimc serves one configuration per GPU, precision and GPU count: "
                    f"{kept.path} ({kept.metric}) is imported for {key[0]} {key[1]} on "
                    f"{key[2]} GPU(s), this {metric} profile is not",
                    "apply its args to the imported one with --set or --config",
                )
            )
    for p in sorted(group.chosen.values(), key=preference):
        conf = p.conf
        entry: dict[str, Any] = {"repo": p.repo}
        if p.quantization:
            entry["quantization"] = p.quantization
        if p.dtype:
            entry["dtype"] = p.dtype
        if p.repo != model:  # AIM serves [model_id, aim_id] (command_generator.py)
            conf["served_model_name"] = [p.repo, model]
            p.origins["/served_model_name"] = p.at_model_id
        precision = conf["precision"][0]
        if precision not in weights:
            weights[precision] = entry
            result.origins[f"/weights/{precision}"] = p.at_model_id
            if p.quantization_at is not None:
                result.origins[f"/weights/{precision}/quantization"] = p.quantization_at
        elif weights[precision] != entry:
            conf["weights"] = {precision: entry}
            p.origins[f"/weights/{precision}"] = p.at_model_id
            if p.quantization_at is not None:
                p.origins[f"/weights/{precision}/quantization"] = p.quantization_at
    kept_profiles = sorted(group.chosen.values(), key=lambda p: (p.conf["id"], p.path))
    recipe["weights"] = dict(sorted(weights.items()))
    default = next((q for q in ("bf16", "fp16") if q in weights), sorted(weights)[0])
    recipe["defaults"] = {
        "backend": "vllm",
        "precision": default,
        "context_length": facts["max_context"],
    }
    recipe["configurations"] = [p.conf for p in kept_profiles]
    for index, p in enumerate(kept_profiles):
        for pointer, where in p.origins.items():
            result.origins[f"{ptr('configurations', index)}{pointer}"] = where
    return result
