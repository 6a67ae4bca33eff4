"""Engine arguments and secret names, judged against the pinned backends' vocabularies.

What a recipe, a ``--config`` file and ``--set`` may pass to an engine: :func:`check_arg`
checks one engine arg (known flag of the pinned release, the right kind of value, not
managed by aimc, no secret, no value its parser would read as another flag);
:func:`is_secret` says whether a flag or variable name holds a secret. Used by the lint
rules (``lint/unknown-arg``, ``lint/managed-arg``, ``lint/secret``), by the merge of
``--config``/``--set`` and by the importers, so each answers the same. Pure; sits on the
backend registry (:mod:`aimc.backends`) and below everything that checks or plans.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from aimc.backends import BACKENDS, vocabulary
from aimc.core.diagnostics import did_you_mean, whole_line
from aimc.core.safety import flag_like, holds_secret, mask, shorten

__all__ = ["ArgProblem", "check_arg", "is_secret", "shown_set"]

_SECRET_WORDS = {"SECRET", "PASSWORD", "PASSWD"}
#: Words that end like a secret: PGPASSWORD, OPENAI_APIKEY, DB_PASSWD.
_SECRET_ENDINGS = ("PASSWORD", "PASSWD", "APIKEY")
_SECRET_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY")}


def is_secret(name: str) -> bool:
    """True for names of secrets (tokens, passwords, keys): never written to artifacts.

    The registered backends' own names are known (each :attr:`Backend.secrets
    <aimc.backends.Backend.secrets>`); others are judged by their words (``*_TOKEN``,
    ``*PASSWORD*``, ``*_API_KEY``...).
    """
    if any(name in b.secrets for b in BACKENDS.values()):
        return True
    if any(name in vocabulary(b).flags or name in vocabulary(b).env for b in BACKENDS):
        return False
    words = re.split(r"[_-]+", name.upper())
    return (
        "TOKEN" in words  # HF_TOKEN, HF_TOKEN_VALUE (not TOKENIZER, TOKENS)
        or any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words)
        or any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))
    )


class ArgProblem:
    """What is wrong with one engine arg (``key``: the problem is the name, not the value);
    never changed (a plain class: a dataclass costs each start-up ~0.4 ms)."""

    __slots__ = ("hint", "key", "message", "rule")

    def __init__(self, rule: str, message: str, hint: str | None = None, key: bool = False):
        self.rule = rule
        self.message = message
        self.hint = hint
        self.key = key


_UNSAFE_WHY = "starts with '-' (the server would read it as another flag) or holds a NUL"


def _unsafe_word(value: Any) -> str | None:
    """The first word of an arg value that the server's parser would misread, if any."""
    for word in value if isinstance(value, list) else [value]:
        if isinstance(word, str) and flag_like(word):
            return word
    return None


#: "Did you mean" hints of unknown flag names, per vocabulary (kept alive here, so its id
#: names it): the same unknown name in many configurations is looked up once.
_FLAG_HINTS: dict[int, tuple[Mapping[str, Any], dict[str, str | None]]] = {}


def _flag_hint(name: str, flags: Mapping[str, Any]) -> str | None:
    entry = _FLAG_HINTS.get(id(flags))
    if entry is None or entry[0] is not flags:
        entry = _FLAG_HINTS[id(flags)] = (flags, {})
    hints = entry[1]
    if name not in hints:
        if len(hints) >= 4096:
            hints.clear()
        hints[name] = did_you_mean(name, flags)
    return hints[name]


def check_arg(name: str, value: Any, backend: str) -> ArgProblem | None:
    """The problem with engine arg ``name`` = ``value`` for the pinned ``backend``, if any:
    first what is wrong with its name, then with its value."""
    problem = _name_problem(name, value, backend)
    if problem is not None or value is None:
        return problem
    return _value_problem(name, value, vocabulary(backend).flags[name])


def _name_problem(name: str, value: Any, backend: str) -> ArgProblem | None:
    """A secret (by name or by value), a flag aimc manages, or one the release lacks."""
    if is_secret(name) or holds_secret(value):
        what = (
            f"'{name}' is a secret" if is_secret(name) else f"the value of '{name}' holds a token"
        )
        return ArgProblem(
            "lint/secret",
            f"{what}; secrets never go in recipes",
            "pass it through the environment (HF_TOKEN, VLLM_API_KEY)",
            is_secret(name),
        )
    managed = BACKENDS[backend].managed
    if name in managed:
        return ArgProblem(
            "lint/managed-arg",
            f"'{name}' is set by aimc; do not set it in args",
            f"set {managed[name]} instead",
            True,
        )
    vocab = vocabulary(backend)
    if name not in vocab.flags:
        return ArgProblem(
            "lint/unknown-arg",
            f"unknown {backend} {vocab.version} engine arg '{name}'",
            _flag_hint(name, vocab.flags),
            True,
        )
    return None


def _value_problem(name: str, value: Any, spec: Mapping[str, Any]) -> ArgProblem | None:
    """What the flag's parser would refuse or misread in ``value`` (not None)."""
    problem = None
    if not spec["value"]:
        if not isinstance(value, bool):
            problem = f"'{name}' is a flag without a value; use true or false"
        elif value is False and not spec.get("negatable"):
            problem = f"'{name}' cannot be negated; leave it out instead of false"
    elif isinstance(value, bool):
        problem = f"'{name}' needs a value, not {str(value).lower()}"
    elif isinstance(value, list) and not spec.get("multiple"):
        problem = f"'{name}' takes one value, not a list"
    elif spec.get("type") == "int" and not isinstance(value, int):
        problem = f"'{name}' needs an integer, got {shorten(repr(value))}"
    elif spec.get("type") == "float" and not isinstance(value, (int, float)):
        problem = f"'{name}' needs a number, got {shorten(repr(value))}"
    elif isinstance(value, float) and not math.isfinite(value):
        problem = f"'{name}' needs a finite number, got {value!r}"
    elif unsafe := _unsafe_word(value):
        problem = f"'{name}' value {shorten(repr(unsafe))} {_UNSAFE_WHY}"
    elif (
        "choices" in spec
        and not isinstance(value, (list, dict))
        and str(value) not in spec["choices"]
    ):
        return ArgProblem(
            "lint/unknown-arg",
            f"{value!r} is not a valid value for '{name}'; "
            "expected one of: " + ", ".join(spec["choices"]),
            did_you_mean(str(value), spec["choices"]),
        )
    return ArgProblem("lint/unknown-arg", problem) if problem else None


def shown_set(item: str) -> str:
    """A ``--set KEY=VALUE`` item as messages and headers may show it: one line, short, and
    with the value hidden when the key names a secret."""
    key, sep, _ = item.partition("=")
    words = re.split(r"[^A-Za-z0-9_-]+", key.strip().removeprefix("env.").removeprefix("args."))
    if sep and any(w and is_secret(w) for w in words):
        item = f"{key}=***"
    return shorten(mask(whole_line(item)))
