"""Lint rules that judge a recipe's engine words against the pinned backend vocabularies.

Takes a schema-valid :class:`~aimc.core.loader.Document` and the place of one ``args`` or
``env`` mapping in it (or, for :func:`rule_quantization`, the whole recipe); hands on the
diagnostics of :mod:`aimc.check.lint`'s rules ``lint/unknown-arg`` and ``lint/managed-arg``
(:func:`args_diagnostics`: the judgement is :func:`aimc.domain.engine_args.check_arg`'s),
``lint/secret`` and ``lint/unknown-env`` (:func:`env_diagnostics`), and
``lint/quantization`` (:func:`rule_quantization`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from aimc.backends import BACKENDS, vocabulary
from aimc.core.diagnostics import Diagnostic, did_you_mean, escape_pointer, pointer
from aimc.core.loader import Document
from aimc.core.safety import holds_secret
from aimc.domain.engine_args import check_arg, is_secret
from aimc.domain.recipe import config_id, configurations

__all__ = ["args_diagnostics", "env_diagnostics", "rule_quantization"]

#: Variables that older recipes use but the pinned releases no longer read.
_REMOVED_ENV = {
    "VLLM_USE_V1": "the V0 engine was removed in vLLM 0.11; drop it",
    "VLLM_USE_TRITON_FLASH_ATTN": "a V0-era switch deprecated in vLLM 0.12; drop it",
    "VLLM_ATTENTION_BACKEND": "removed after vLLM 0.14; use the attention-backend arg",
}


def args_diagnostics(
    doc: Document, base: str, args: Mapping[str, Any], backend: str
) -> list[Diagnostic]:
    """The args at ``base`` that ``backend``'s pinned version does not take as given."""
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


def env_diagnostics(doc: Document, base: str, env: Mapping[str, str]) -> list[Diagnostic]:
    """The variables at ``base`` that name or hold a secret, or that no pinned backend reads
    (its prefix, not its vocabulary)."""
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


def rule_quantization(doc: Document, hardware: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """A weights entry's ``quantization`` is a ``--quantization`` choice of every backend
    that serves its precision (the configuration's own weights entry, else the recipe's)."""
    weights = doc.data["weights"]
    seen: set[tuple[str, str]] = set()
    for i, conf, backend in configurations(doc.data):
        own = conf.get("weights", {})
        for precision in conf["precision"]:
            entry = own.get(precision) or weights.get(precision) or {}
            value = entry.get("quantization")
            if value is None:
                continue  # most precisions: no pointer made
            parts: tuple[str | int, ...] = (
                ("configurations", i, "weights", precision)
                if precision in own
                else ("weights", precision)
            )
            where = pointer(*parts, "quantization")
            if (where, backend) in seen:
                continue
            seen.add((where, backend))
            vocab = vocabulary(backend)
            choices = vocab.flags.get("quantization", {}).get("choices", [])
            if value not in choices:
                yield doc.diagnostic(
                    where,
                    f"{backend} {vocab.version} has no --quantization {value!r} (configuration "
                    f"{config_id(conf, i)!r} serves {precision} with {backend})",
                    rule="lint/quantization",
                    hint=did_you_mean(str(value), choices)
                    or f"{backend} {vocab.version} knows: {', '.join(choices)}; leave it out for "
                    "a checkpoint whose config.json names its quantization",
                )
