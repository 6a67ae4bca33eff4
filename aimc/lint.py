"""Lint stage: semantic rules a JSON Schema cannot express.

Takes a schema-valid :class:`~aimc.loader.Document` (recipe or hardware profile) and the
hardware profiles it may refer to; hands on diagnostics. Each rule has a stable id
(``lint/<name>``) shown in JSON output:

=============================  =================================================================
rule                           what it checks
=============================  =================================================================
lint/heads                     kv_heads divides attention_heads
lint/tensor-parallel           each GPU count divides the attention heads, and the KV heads
                               divide it or it divides them
lint/weights                   each precision used has weights; weights name a repo or a path
lint/quantization              a weights entry's quantization is a --quantization choice of the
                               pinned version of each backend that serves its precision
lint/unknown-hardware          each hardware name has a profile
lint/precision-unsupported     each precision is supported by each hardware it is used on
lint/gpus-per-node             no GPU count exceeds the hardware's GPUs per node
lint/nodes                     a multi-node configuration (``nodes``): for vllm each node count
                               (pipeline-parallel size) divides the model's layers; for
                               sglang (tensor parallel gpus x nodes) that size divides the
                               attention heads, and it and the KV heads divide one another
lint/context-length            context_length <= the model's max_context
lint/unknown-arg               engine args exist in the pinned backend version, with the right
                               kind of value (flag or value, choices, numbers)
lint/managed-arg               args aimc derives itself are not set by hand
lint/unknown-env               VLLM_* / SGLANG_* variables exist in the pinned backend version
lint/secret                    no secret (token, password, key) in a recipe or profile
lint/overlap                   no two configurations match the same hardware x precision x
                               GPU count x backend (selection must be unambiguous)
lint/duplicate-id              configuration ids are unique
lint/measured                  published figures (``measured:``) name a hardware, precision
                               and GPU count their configuration offers
lint/path                      a file's location in a catalog matches its model id or name
lint/yaml-1.1                  (warning) no plain scalar that a YAML 1.1 reader (PyYAML, many
                               tools) reads otherwise than aimc's YAML 1.2: ``32.762e9`` (a
                               string there: 1.1 floats need a dot and a signed exponent),
                               ``yes``/``on`` (booleans there), ``017`` (octal there)
=============================  =================================================================
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aimc.backends import BACKENDS, vocabulary
from aimc.candidates import Candidate, candidates
from aimc.diagnostics import Diagnostic, did_you_mean
from aimc.engine_args import ArgProblem, check_arg, is_secret
from aimc.estimate import MIN_CONTEXT
from aimc.loader import Document, escape_pointer, pointer
from aimc.policy import assess
from aimc.recipe import Hardware, Recipe, RecipeRoot, config_id, configurations, default_backend
from aimc.request import Request
from aimc.safety import holds_secret, shorten

__all__ = [
    "ArgProblem",
    "check_arg",
    "is_secret",
    "lint_fit",
    "lint_hardware",
    "lint_recipe",
    "lint_yaml11",
]

#: Variables that older recipes use but the pinned releases no longer read.
_REMOVED_ENV = {
    "VLLM_USE_V1": "the V0 engine was removed in vLLM 0.11; drop it",
    "VLLM_USE_TRITON_FLASH_ATTN": "a V0-era switch deprecated in vLLM 0.12; drop it",
    "VLLM_ATTENTION_BACKEND": "removed after vLLM 0.14; use the attention-backend arg",
}


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


#: A JSON Pointer from its reference tokens (the loader's).
_p = pointer


def _args(doc: Document, base: str, args: Mapping[str, Any], backend: str) -> list[Diagnostic]:
    out = []
    for name, value in args.items():
        problem = check_arg(name, value, backend)
        if problem:
            out.append(
                doc.diagnostic(
                    f"{base}/{escape_pointer(name)}",
                    problem.message,
                    key=problem.key,
                    rule=problem.rule,
                    hint=problem.hint,
                )
            )
    return out


def _env(doc: Document, base: str, env: Mapping[str, str]) -> list[Diagnostic]:
    out = []
    for name in env:
        where = f"{base}/{escape_pointer(name)}"
        if is_secret(name):
            out.append(
                doc.diagnostic(
                    where,
                    f"'{name}' looks like a secret; secrets never go in recipes",
                    key=True,
                    rule="lint/secret",
                    hint="HF_TOKEN and other secrets are passed through from the caller's "
                    "environment",
                )
            )
            continue
        if holds_secret(env[name]):
            out.append(
                doc.diagnostic(
                    where,
                    f"the value of '{name}' holds a token; secrets never go in recipes",
                    rule="lint/secret",
                    hint="HF_TOKEN and other secrets are passed through from the caller's "
                    "environment",
                )
            )
            continue
        if name in _REMOVED_ENV:
            out.append(
                doc.diagnostic(
                    where,
                    f"'{name}' is not read by the pinned backend",
                    key=True,
                    rule="lint/unknown-env",
                    hint=_REMOVED_ENV[name],
                )
            )
            continue
        for backend in BACKENDS:
            vocab = vocabulary(backend)
            if name.startswith(vocab.env_prefix) and vocab.env and name not in vocab.env:
                out.append(
                    doc.diagnostic(
                        where,
                        f"unknown {backend} {vocab.version} environment variable '{name}'",
                        key=True,
                        rule="lint/unknown-env",
                        hint=did_you_mean(name, vocab.env),
                    )
                )
    return out


def _path_rule(
    doc: Document, base_dir: Path | None, expected: str, pointer: str, what: str
) -> list[Diagnostic]:
    if base_dir is None:
        return []
    try:
        rel = Path(doc.path).resolve().relative_to(base_dir.resolve()).with_suffix("")
    except ValueError:
        return []
    if rel.as_posix() == expected:
        return []
    return [
        doc.diagnostic(
            pointer,
            f"{what} {expected!r} does not match the file's place "
            f"{rel.as_posix()!r} in the catalog",
            rule="lint/path",
            hint=f"move the file to {expected}.yaml",
        )
    ]


def lint_recipe(
    doc: Document, hardware: Mapping[str, Mapping[str, Any]], models_dir: Path | None = None
) -> list[Diagnostic]:
    """Semantic diagnostics of one schema-valid recipe: every rule of :data:`RECIPE_RULES`,
    then the file's place in the catalog.

    Args:
        doc: The recipe document.
        hardware: Known hardware profiles by name (as plain data).
        models_dir: The catalog's ``models`` folder the file should sit in, if any.
    """
    out = [d for rule in RECIPE_RULES for d in rule(doc, hardware)]
    if not any(d.severity == "error" for d in out):  # estimates need a recipe that resolves
        out += _rule_fit(doc, hardware)
    out += _path_rule(doc, models_dir, doc.data["model"]["id"], "/model/id", "model id")
    return _dedupe_overlaps(out)


def lint_fit(doc: Document, hardware: Mapping[str, Mapping[str, Any]]) -> list[Diagnostic]:
    """The ``lint/fit`` diagnostics of one recipe alone (which :func:`lint_recipe` runs only
    when no other rule found an error); the recipe must resolve (known hardware, weights
    for every precision)."""
    return _rule_fit(doc, hardware)


def _asked(recipe: Any, candidate: Any) -> Any:

    return Request(model=recipe.model_id, gpus=candidate.gpus)


def _rule_fit(doc: Document, hardware: Mapping[str, Mapping[str, Any]]) -> list[Diagnostic]:
    """Every configuration fits every hardware it lists, at its context, by the memory
    estimate: the recipe's context, or the ``low_memory.max_context`` it is marked with.
    One diagnostic per configuration x hardware x precision, naming the GPU counts."""

    recipe = Recipe(doc, RecipeRoot(Path(doc.path).parent, "lint"))
    failing: dict[tuple[int, str, str], list[Any]] = {}
    names = sorted({h for c in doc.data["configurations"] for h in c["hardware"]} & set(hardware))
    for name in names:
        profile = Document(path=f"<{name}>", data=dict(hardware[name]), sha256="")
        target = Hardware(profile, RecipeRoot(Path(doc.path).parent, "lint"))
        groups: dict[tuple[int, str, str], list[Candidate]] = {}
        for c in candidates(recipe, name):
            groups.setdefault((c.index, c.precision, c.backend), []).append(c)
        for group in groups.values():
            # Memory per GPU only falls as GPUs are added: when the smallest count fits,
            # the larger ones do (this keeps validate fast on large repositories).
            group.sort(key=lambda c: c.gpus * c.nodes)
            # As asked for by its count: a low_memory configuration at its own context.
            found = [] if not group else assess(recipe, target, _asked(recipe, group[0]), group[:1])
            if found and found[0].verdict != "runnable":
                found += [
                    a for c in group[1:] for a in assess(recipe, target, _asked(recipe, c), [c])
                ]
            for a in found:
                if a.verdict != "runnable" and a.plan is not None:
                    key = (a.candidate.index, name, a.candidate.precision)
                    failing.setdefault(key, []).append(a)
    out = []
    for (index, name, precision), found in sorted(failing.items()):
        conf = doc.data["configurations"][index]
        counts = ", ".join(str(a.candidate.gpus) for a in found)
        estimate = found[0].plan.estimate if found[0].plan else {}
        limit = min(a.plan.estimate["max_context"] for a in found if a.plan)
        limit = limit // MIN_CONTEXT * MIN_CONTEXT  # as the estimate suggests it
        marked = "low_memory" in conf
        hint = (
            f"lower low_memory.max_context to {limit}"
            if marked and limit
            else f"mark the configuration low_memory: {{max_context: {limit}}} (used only "
            "when its GPU count is asked for), or offer more GPUs"
            if limit
            else "the weights alone do not fit: offer more GPUs or a smaller precision"
        )
        out.append(
            doc.diagnostic(
                _p("configurations", index, "low_memory" if marked else "gpus"),
                f"{name} {precision} on {counts} GPU{'s' if counts != '1' else ''} does not fit "
                f"at {estimate.get('context_length')} tokens: {found[0].reason}",
                rule="lint/fit",
                hint=hint,
            )
        )
    return out


Rule = Callable[[Document, Mapping[str, Mapping[str, Any]]], Iterator[Diagnostic]]


def _configurations(doc: Document) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(index, configuration, its backend) for every configuration of a recipe."""
    return configurations(doc.data)


def _rule_heads(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """KV heads divide the attention heads."""
    facts = doc.data["model"]["facts"]
    heads, kv_heads = facts["attention_heads"], facts["kv_heads"]
    if heads % kv_heads:
        yield doc.diagnostic(
            "/model/facts/kv_heads",
            f"kv_heads {kv_heads} does not divide attention_heads {heads}",
            rule="lint/heads",
        )


def _rule_weights(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """Every weights entry names exactly one of a repository or a local path."""
    entries: list[tuple[tuple[str | int, ...], Any]] = [
        (("weights", p), w) for p, w in doc.data["weights"].items()
    ]
    entries += [
        (("configurations", i, "weights", p), w)
        for i, conf, _ in _configurations(doc)
        for p, w in conf.get("weights", {}).items()
    ]
    for parts, w in entries:
        if ("repo" in w) == ("path" in w):
            yield doc.diagnostic(
                _p(*parts),
                "weights need exactly one of 'repo' or 'path'",
                key=True,
                rule="lint/weights",
            )


def _rule_defaults(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """The defaults: a precision with weights, a context the model has, known args and env."""
    data = doc.data
    defaults, weights = data.get("defaults", {}), data["weights"]
    if "precision" in defaults and defaults["precision"] not in weights:
        yield doc.diagnostic(
            "/defaults/precision",
            f"no weights for default precision {defaults['precision']!r}",
            rule="lint/weights",
            hint="declared weights: " + ", ".join(weights),
        )
    max_context = data["model"]["facts"]["max_context"]
    if defaults.get("context_length", 0) > max_context:
        yield doc.diagnostic(
            "/defaults/context_length",
            f"context_length {defaults['context_length']} exceeds "
            f"the model's max_context {max_context}",
            rule="lint/context-length",
        )
    yield from _args(doc, "/defaults/args", defaults.get("args", {}), default_backend(doc.data))
    yield from _env(doc, "/defaults/env", defaults.get("env", {}))


def _rule_precisions_have_weights(
    doc: Document, hardware: Mapping[str, Any]
) -> Iterator[Diagnostic]:
    """Every precision a configuration offers has weights (its own or the recipe's)."""
    weights = doc.data["weights"]
    for i, conf, _ in _configurations(doc):
        for j, precision in enumerate(conf["precision"]):
            if precision not in weights and precision not in conf.get("weights", {}):
                yield doc.diagnostic(
                    _p("configurations", i, "precision", j),
                    f"no weights declared for precision {precision!r}",
                    rule="lint/weights",
                    hint="declared weights: " + ", ".join(weights),
                )


def _rule_quantization(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """A weights entry's ``quantization`` is a ``--quantization`` choice of every backend
    that serves its precision (the configuration's own weights entry, else the recipe's)."""

    weights = doc.data["weights"]
    seen: set[tuple[str, str]] = set()
    for i, conf, backend in _configurations(doc):
        own = conf.get("weights", {})
        for precision in conf["precision"]:
            parts: tuple[str | int, ...] = (
                ("configurations", i, "weights", precision)
                if precision in own
                else ("weights", precision)
            )
            entry = own.get(precision) or weights.get(precision) or {}
            value = entry.get("quantization")
            pointer = _p(*parts, "quantization")
            if value is None or (pointer, backend) in seen:
                continue
            seen.add((pointer, backend))
            vocab = vocabulary(backend)
            choices = vocab.flags.get("quantization", {}).get("choices", [])
            if value not in choices:
                yield doc.diagnostic(
                    pointer,
                    f"{backend} {vocab.version} has no --quantization {value!r} (configuration "
                    f"{config_id(conf, i)!r} serves {precision} with {backend})",
                    rule="lint/quantization",
                    hint=did_you_mean(str(value), choices)
                    or f"{backend} {vocab.version} knows: {', '.join(choices)}; leave it out for "
                    "a checkpoint whose config.json names its quantization",
                )


def _rule_tensor_parallel(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """Every GPU count divides the attention heads, and it and the KV heads divide one
    another."""
    facts = doc.data["model"]["facts"]
    heads, kv_heads = facts["attention_heads"], facts["kv_heads"]
    for i, conf, _ in _configurations(doc):
        for j, gpus in enumerate(conf["gpus"]):
            where = _p("configurations", i, "gpus", j)
            if heads % gpus:
                yield doc.diagnostic(
                    where,
                    f"{gpus} GPUs do not divide the model's {heads} attention heads",
                    rule="lint/tensor-parallel",
                )
            elif kv_heads % gpus and gpus % kv_heads:
                yield doc.diagnostic(
                    where,
                    f"{gpus} GPUs and the model's {kv_heads} KV heads do not divide one another",
                    rule="lint/tensor-parallel",
                )


def _rule_nodes(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """A multi-node configuration splits the model evenly: vLLM's node count (one pipeline
    stage per node) divides the layers; SGLang's tensor-parallel group (``gpus x nodes``)
    divides the attention heads, and it and the KV heads divide one another (the
    :func:`_rule_tensor_parallel` rule for the whole group)."""
    facts = doc.data["model"]["facts"]
    layers, heads, kv_heads = facts["layers"], facts["attention_heads"], facts["kv_heads"]
    for i, conf, backend in _configurations(doc):
        if "nodes" not in conf:
            continue
        for j, nodes in enumerate(conf["nodes"]):
            where = _p("configurations", i, "nodes", j)
            if BACKENDS[backend].multinode == "pipeline":
                if layers % nodes:
                    yield doc.diagnostic(
                        where,
                        f"{nodes} nodes (pipeline parallel {nodes}) do not divide the model's "
                        f"{layers} layers",
                        rule="lint/nodes",
                    )
                continue
            for gpus in conf["gpus"]:
                tp = gpus * nodes
                if heads % tp:
                    problem = f"do not divide the model's {heads} attention heads"
                elif kv_heads % tp and tp % kv_heads:
                    problem = f"and the model's {kv_heads} KV heads do not divide one another"
                else:
                    continue
                yield doc.diagnostic(
                    where,
                    f"{nodes} nodes x {gpus} GPUs ({backend}: tensor parallel {tp} across "
                    f"the nodes) {problem}",
                    rule="lint/nodes",
                )


def _rule_hardware(
    doc: Document, hardware: Mapping[str, Mapping[str, Any]]
) -> Iterator[Diagnostic]:
    """Every hardware name is known, supports the precisions, and has the GPUs asked for."""
    for i, conf, _ in _configurations(doc):
        for j, name in enumerate(conf["hardware"]):
            where = _p("configurations", i, "hardware", j)
            profile = hardware.get(name)
            if profile is None:
                yield doc.diagnostic(
                    where,
                    f"unknown hardware {name!r}",
                    rule="lint/unknown-hardware",
                    hint=did_you_mean(name, hardware)
                    or "known hardware: " + ", ".join(sorted(hardware)),
                )
                continue
            for precision in conf["precision"]:
                if precision not in profile["precisions"]:
                    yield doc.diagnostic(
                        where,
                        f"{name} ({profile['architecture']}) does not support "
                        f"precision {precision!r}",
                        rule="lint/precision-unsupported",
                        hint=f"{name} supports: " + ", ".join(profile["precisions"]),
                    )
            too_many = [g for g in conf["gpus"] if g > profile["gpus_per_node"]]
            if too_many:
                yield doc.diagnostic(
                    where,
                    f"{name} has {profile['gpus_per_node']} GPUs per node; "
                    f"configuration asks for {max(too_many)}",
                    rule="lint/gpus-per-node",
                )


def _rule_overlap(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """No two configurations match the same hardware x precision x GPU count x backend."""
    seen: dict[tuple[str, str, int, str, int], int] = {}
    for i, conf, backend in _configurations(doc):
        for name in conf["hardware"]:
            if name not in hardware:
                continue
            for precision in conf["precision"]:
                for gpus, nodes in itertools.product(conf["gpus"], conf.get("nodes", [1])):
                    key = (name, precision, gpus, backend, nodes)
                    if key in seen:
                        yield doc.diagnostic(
                            _p("configurations", i),
                            f"overlaps configuration #{seen[key] + 1} "
                            f"({name}, {precision}, {_gpus(gpus)}, {backend})",
                            key=True,
                            rule="lint/overlap",
                        )
                    else:
                        seen[key] = i


def _rule_configuration_values(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """Each configuration's context fits the model, its id is unique, its args and env
    exist in the pinned backend."""
    max_context = doc.data["model"]["facts"]["max_context"]
    ids: dict[str, int] = {}
    for i, conf, backend in _configurations(doc):
        if conf.get("context_length", 0) > max_context:
            yield doc.diagnostic(
                _p("configurations", i, "context_length"),
                f"context_length {conf['context_length']} exceeds the model's max_context "
                f"{max_context}",
                rule="lint/context-length",
            )
        if "id" in conf:
            if conf["id"] in ids:
                yield doc.diagnostic(
                    _p("configurations", i, "id"),
                    f"configuration id {conf['id']!r} is used "
                    f"by configuration #{ids[conf['id']] + 1} too",
                    rule="lint/duplicate-id",
                )
            ids.setdefault(conf["id"], i)
        yield from _args(doc, _p("configurations", i, "args"), conf.get("args", {}), backend)
        yield from _env(doc, _p("configurations", i, "env"), conf.get("env", {}))
        for j, m in enumerate(conf.get("measured", [])):
            for field in ("hardware", "precision", "gpus"):
                offered = conf[field]
                if m[field] not in offered:
                    yield doc.diagnostic(
                        _p("configurations", i, "measured", j, field),
                        f"measured {field} {m[field]!r} is not one this configuration offers "
                        f"({', '.join(map(str, offered))})",
                        rule="lint/measured",
                    )


#: The recipe rules, in the order their diagnostics are collected (then sorted by place).
RECIPE_RULES: tuple[Rule, ...] = (
    _rule_heads,
    _rule_weights,
    _rule_defaults,
    _rule_precisions_have_weights,
    _rule_quantization,
    _rule_tensor_parallel,
    _rule_nodes,
    _rule_hardware,
    _rule_overlap,
    _rule_configuration_values,
)


def _dedupe_overlaps(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Keep one overlap diagnostic per configuration (the first combination found)."""
    out, seen = [], set()
    for d in diagnostics:
        if d.rule == "lint/overlap":
            if d.pointer in seen:
                continue
            seen.add(d.pointer)
        out.append(d)
    return out


def lint_hardware(doc: Document, hardware_dir: Path | None = None) -> list[Diagnostic]:
    """Semantic diagnostics of one schema-valid hardware profile."""
    data = doc.data
    out = _env(doc, "/env", data.get("env", {}))
    for backend, settings in data.get("backends", {}).items():
        out += _args(doc, _p("backends", backend, "args"), settings.get("args", {}), backend)
        out += _env(doc, _p("backends", backend, "env"), settings.get("env", {}))
    out += _path_rule(doc, hardware_dir, data["name"], "/name", "name")
    return out


# --- YAML 1.1 readers -----------------------------------------------------------------------

#: YAML 1.1's implicit resolvers for plain scalars, as PyYAML has them (yaml/resolver.py).
_YAML11 = (
    ("bool", re.compile(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE"
                        r"|on|On|ON|off|Off|OFF)$")),
    ("float", re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                         r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                         r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
                         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")),
    ("int", re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                       r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")),
    ("null", re.compile(r"^(?:~|null|Null|NULL|)$")),
    ("timestamp", re.compile(r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}"
                             r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)"
                             r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
                             r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$")),
)  # fmt: skip


def _sexagesimal(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def _yaml11(text: str) -> tuple[str, Any]:
    """(kind, value) of a plain scalar as a YAML 1.1 reader takes it (PyYAML's rules)."""
    kind = next((k for k, regexp in _YAML11 if regexp.match(text)), "str")
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    if kind == "bool":
        return kind, text.lower() in ("yes", "true", "on")
    if kind == "null":
        return kind, None
    if kind == "int":
        if ":" in digits:
            return kind, sign * int(_sexagesimal(digits))
        base = 2 if digits.startswith("0b") else 16 if digits.startswith("0x") else 10
        if base == 10 and len(digits) > 1 and digits.startswith("0"):
            base = 8
        return kind, sign * int(digits[2:] if base in (2, 16) else digits, base)
    if kind == "float":
        low = digits.lower()
        if low in (".inf", ".nan"):
            return kind, sign * math.inf if low == ".inf" else math.nan
        return kind, sign * (_sexagesimal(low) if ":" in low else float(low))
    return kind, text


def _same(kind: str, theirs: Any, ours: Any) -> bool:
    if kind in ("str", "timestamp"):  # aimc keeps a date's text, a reader makes a date
        return kind == "str" and isinstance(ours, str) and ours == theirs
    if kind == "bool" or ours is None or isinstance(ours, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        both_nan = isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs)
        return type(ours) is type(theirs) and (ours == theirs or both_nan)
    return False


def lint_yaml11(doc: Document, text: str) -> list[Diagnostic]:
    """Warnings for the plain scalars of ``text`` (the file ``doc`` was loaded from) that a
    YAML 1.1 reader (PyYAML, many CI and deployment tools) reads otherwise than aimc does
    (YAML 1.2): a recipe should mean the same to every tool that reads it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        CollectionEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    scalars = {
        position: p
        for p, position in doc.values.items()
        if not isinstance(_resolve(doc.data, p, key=False), (dict, list))
    }
    keys = {position: p for p, position in doc.keys.items()}
    out: list[Diagnostic] = []
    try:
        events = list(YAML(typ="safe").parse(text))
    except YAMLError:
        return out
    # Open collections: [is a mapping, the next scalar in it is a key].
    stack: list[list[bool]] = []
    for event in events:
        is_key = bool(stack) and stack[-1][0] and stack[-1][1]
        if (
            stack
            and stack[-1][0]
            and isinstance(event, (ScalarEvent, MappingStartEvent, SequenceStartEvent))
        ):
            stack[-1][1] = not stack[-1][1]  # key, value, key...
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            stack.append([isinstance(event, MappingStartEvent), True])
            continue
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, ScalarEvent) or not event.implicit[0] or event.style:
            continue
        position = (event.start_mark.line + 1, event.start_mark.column + 1)
        at = (keys if is_key else scalars).get(position)
        if at is None:
            continue
        ours = _resolve(doc.data, at, key=is_key)
        kind, theirs = _yaml11(event.value)
        if _same(kind, theirs, ours):
            continue
        shown = "a string" if kind == "str" else f"{kind} {theirs!r}"
        hint = "quote it for text, or write it as YAML 1.1 and 1.2 both read it"
        if kind == "str" and isinstance(ours, float):
            hint = "write it with a dot and a signed exponent (32.762e+9), or as an integer"
        elif kind == "bool":
            hint = "write true or false for a yes/no value, or quote it for text"
        out.append(
            doc.diagnostic(
                at,
                f"{shorten(event.value, 40)!r} is {ours!r} for aimc (YAML 1.2) but "
                f"{shown} for YAML 1.1 readers such as PyYAML",
                key=is_key,
                hint=hint,
                rule="lint/yaml-1.1",
                severity="warning",
            )
        )
    return out


def _resolve(data: Any, at: str, key: bool) -> Any:
    """The value (or, with ``key``, the key) at the JSON Pointer ``at``."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in at.split("/")[1:]]
    if key:
        return tokens[-1]
    for token in tokens:
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data
