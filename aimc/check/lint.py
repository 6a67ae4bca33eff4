"""Lint stage: semantic rules a JSON Schema cannot express.

Takes a schema-valid :class:`~aimc.core.loader.Document` (recipe or hardware profile) and the
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
lint/dtype                     a weights entry's dtype is one its precision runs in (vLLM 0.32:
                               ``ACTIVATION_DTYPES``; bf16 and fp16 their own)
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
lint/fit                       each configuration fits each hardware it lists at its context,
                               by the memory estimate (run when no other rule found an error)
lint/measured                  published figures (``measured:``) name a hardware, precision
                               and GPU count their configuration offers
lint/path                      a file's location in a catalog matches its model id or name
lint/yaml-1.1                  (warning) no plain scalar that a YAML 1.1 reader (PyYAML, many
                               tools) reads otherwise than aimc's YAML 1.2: ``32.762e9`` (a
                               string there: 1.1 floats need a dot and a signed exponent),
                               ``yes``/``on`` (booleans there), ``017`` (octal there)
=============================  =================================================================

The rules live by family: the model, weights, hardware and configuration rules here; the
engine words judged against the pinned backend vocabularies (``unknown-arg``,
``managed-arg``, ``unknown-env``, ``secret``, ``quantization``) in
:mod:`aimc.check.lint_vocabulary`; ``lint/fit`` in :mod:`aimc.check.lint_fit`; ``lint/yaml-1.1`` in
:mod:`aimc.check.lint_yaml11` (it reads the file's text: :mod:`aimc.check.checker` runs it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from aimc.backends import BACKENDS
from aimc.check.lint_fit import lint_fit
from aimc.check.lint_vocabulary import args_diagnostics, env_diagnostics, rule_quantization
from aimc.core.diagnostics import Diagnostic, did_you_mean, pointer
from aimc.core.loader import Document
from aimc.domain.engine_args import ArgProblem, check_arg, is_secret
from aimc.domain.recipe import ACTIVATION_DTYPES, configurations, default_backend

__all__ = [
    "ArgProblem",
    "check_arg",
    "is_secret",
    "lint_hardware",
    "lint_recipe",
]


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


#: A JSON Pointer from its reference tokens.
_p = pointer


def _path_rule(
    doc: Document,
    base_dir: Path | None,
    expected: str,
    pointer: str,
    what: str,
    place: str | None = None,
) -> list[Diagnostic]:
    """``lint/path``: the file's place in ``base_dir`` (``place``, its path there, when the
    caller has resolved it; else resolved here) is ``expected``, without the suffix."""
    if base_dir is None:
        return []
    if place is None:
        try:
            place = Path(doc.path).resolve().relative_to(base_dir.resolve()).as_posix()
        except ValueError:
            return []
    rel = PurePosixPath(place).with_suffix("").as_posix()
    if rel == expected:
        return []
    return [
        doc.diagnostic(
            pointer,
            f"{what} {expected!r} does not match the file's place {rel!r} in the catalog",
            rule="lint/path",
            hint=f"move the file to {expected}.yaml",
        )
    ]


def lint_recipe(
    doc: Document,
    hardware: Mapping[str, Mapping[str, Any]],
    models_dir: Path | None = None,
    place: str | None = None,
) -> list[Diagnostic]:
    """Semantic diagnostics of one schema-valid recipe: every rule of :data:`RECIPE_RULES`,
    then the file's place in the catalog.

    Args:
        doc: The recipe document.
        hardware: Known hardware profiles by name (as plain data).
        models_dir: The catalog's ``models`` folder the file should sit in, if any.
        place: The file's path in ``models_dir`` (``org/Model.yaml``), both resolved, when
            the caller knows it (:mod:`aimc.check.checker` does); else resolved here.
    """
    out = [d for rule in RECIPE_RULES for d in rule(doc, hardware)]
    if not any(d.severity == "error" for d in out):  # estimates need a recipe that resolves
        out += lint_fit(doc, hardware)
    out += _path_rule(doc, models_dir, doc.data["model"]["id"], "/model/id", "model id", place)
    return _dedupe_overlaps(out)


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
        problem = _bytes_problem(w)
        if problem:
            yield doc.diagnostic(_p(*parts), problem, key=True, rule="lint/weights")
        problem = _dtype_problem(str(parts[-1]), w.get("dtype"))
        if problem:
            yield doc.diagnostic(_p(*parts, "dtype"), problem, rule="lint/dtype")


def _dtype_problem(precision: str, dtype: str | None) -> str | None:
    """Why weights of ``precision`` cannot be served in ``dtype`` (None: they can): a
    quantized precision in one of :data:`ACTIVATION_DTYPES`, a 16- or 32-bit one in its
    own dtype, either in ``auto``."""
    if dtype in (None, "auto"):
        return None
    own = BACKENDS["vllm"].dtypes.get(precision)
    allowed = (own,) if own else ACTIVATION_DTYPES.get(precision, ())
    if dtype in allowed:
        return None
    return f"dtype {dtype} with precision {precision}: vLLM 0.32 serves {precision} weights in " + (
        " or ".join(allowed) if allowed else "their own dtype (auto)"
    )


def _bytes_problem(w: Mapping[str, Any]) -> str | None:
    """What is wrong with a weights entry's byte counts (None: nothing): ``bytes`` says
    where it comes from, and the parts of it (``unloaded_bytes``, ``replicated_bytes``)
    belong to a ``bytes`` and fit in it."""
    parts = [k for k in ("unloaded_bytes", "replicated_bytes") if k in w]
    if "bytes" not in w:
        return f"{' and '.join(parts)} need the checkpoint's 'bytes'" if parts else None
    if "source" not in w:
        return "weights 'bytes' need a 'source' (where the number was read)"
    if sum(w[k] for k in parts) > w["bytes"]:
        return f"{' + '.join(parts)} exceed the checkpoint's bytes {w['bytes']}"
    return None


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
    yield from args_diagnostics(
        doc, "/defaults/args", defaults.get("args", {}), default_backend(doc.data)
    )
    yield from env_diagnostics(doc, "/defaults/env", defaults.get("env", {}))


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


def _rule_tensor_parallel(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """Every GPU count divides the attention heads, and it and the KV heads divide one
    another."""
    facts = doc.data["model"]["facts"]
    heads, kv_heads = facts["attention_heads"], facts["kv_heads"]
    for i, conf, _ in _configurations(doc):
        for j, gpus in enumerate(conf["gpus"]):
            if heads % gpus:
                yield doc.diagnostic(
                    _p("configurations", i, "gpus", j),
                    f"{gpus} GPUs do not divide the model's {heads} attention heads",
                    rule="lint/tensor-parallel",
                )
            elif kv_heads % gpus and gpus % kv_heads:
                yield doc.diagnostic(
                    _p("configurations", i, "gpus", j),
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
        most = max(conf["gpus"], default=0)
        for j, name in enumerate(conf["hardware"]):
            profile = hardware.get(name)
            where = f"/configurations/{i}/hardware/{j}"  # _p's, of numbers alone
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
            if most > profile["gpus_per_node"]:  # the most of those it has too few for
                yield doc.diagnostic(
                    where,
                    f"{name} has {profile['gpus_per_node']} GPUs per node; "
                    f"configuration asks for {most}",
                    rule="lint/gpus-per-node",
                )


def _rule_overlap(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """No two configurations match the same hardware x precision x GPU count x backend."""
    seen: dict[tuple[str, str, int, str, int], int] = {}
    for i, conf, backend in _configurations(doc):
        shapes = list(itertools.product(conf["gpus"], conf.get("nodes", [1])))
        for name in conf["hardware"]:
            if name not in hardware:
                continue
            for precision in conf["precision"]:
                for gpus, nodes in shapes:
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
        if "args" in conf:
            yield from args_diagnostics(doc, _p("configurations", i, "args"), conf["args"], backend)
        if "env" in conf:
            yield from env_diagnostics(doc, _p("configurations", i, "env"), conf["env"])
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
    rule_quantization,
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
    out = env_diagnostics(doc, "/env", data.get("env", {}))
    for backend, settings in data.get("backends", {}).items():
        out += args_diagnostics(
            doc, _p("backends", backend, "args"), settings.get("args", {}), backend
        )
        out += env_diagnostics(doc, _p("backends", backend, "env"), settings.get("env", {}))
    out += _path_rule(doc, hardware_dir, data["name"], "/name", "name")
    return out
