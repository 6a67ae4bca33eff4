"""Foreign engine args and env as aimc args and env, and what the importers do with them.

Both formats write vLLM flags: vLLM Recipes as command-line lists
(:func:`args_from_list`), AIM profiles as mappings (read in
:mod:`aimc.interop.aim_profiles`); both write env as mappings (:func:`env_items`). A
value is coerced to the type the pinned vLLM reads (:func:`coerce`); a name the engine
cannot parse, a secret (by name or by a token in its value: :func:`secret`) and a value
that is not a string are reported at the foreign line and never imported.

A flag aimc manages (the vLLM backend's ``managed``: :mod:`aimc.backends.vllm`) has one
treatment when a foreign file sets it, each named here: it becomes a neutral recipe field
(:data:`NEUTRAL`), aimc derives it from the recipe (:data:`FROM_RECIPE`), it is imported
for ``lint/managed-arg`` to report with what sets it (:data:`LEFT_TO_LINT`), or aimc sets
it at launch and it is not imported (:data:`AIMC_OWNED`: every other managed flag).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aimc.backends import BACKENDS, vocabulary
from aimc.core.diagnostics import Diagnostic, did_you_mean, excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.core.safety import ENV_VALUE, holds_secret, mask
from aimc.domain.engine_args import is_secret
from aimc.domain.recipe import ACTIVATION_DTYPES
from aimc.interop._common import MAX_ITEMS, Origin, first_items, no_equivalent, over_limit

__all__ = [
    "AIMC_OWNED",
    "DTYPES",
    "ENV_NAME",
    "FLAG_NAME",
    "FROM_RECIPE",
    "HUMAN_READABLE_INTS",
    "LEFT_TO_LINT",
    "NEUTRAL",
    "args_from_list",
    "bad_flag",
    "coerce",
    "env_items",
    "human_int",
    "is_secret",
    "negated",
    "neutral_value",
    "secret",
    "weights_field",
]

FLAG_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

#: The vLLM flags aimc manages that a foreign file may set through the neutral recipe
#: field each is managed from (the field the backend's ``managed`` names for it).
NEUTRAL = {
    "tensor-parallel-size": "gpus",
    "max-model-len": "context_length",
    "gpu-memory-utilization": "memory_utilization",
}
#: Managed flags aimc derives from the recipe (the weights' precision and quantization,
#: ``model.trust_remote_code``): AIM profiles' values are read into those, vLLM Recipes'
#: are not imported (with a warning).
FROM_RECIPE = ("dtype", "quantization", "trust-remote-code")
#: Managed flags imported as they are, for ``lint/managed-arg`` to report at the foreign
#: line with what sets them (``--optimize throughput``, each node's launcher).
LEFT_TO_LINT = ("data-parallel-size", "nnodes", "node-rank", "master-addr", "headless")
#: Every other flag aimc manages: set by aimc at launch (the model, host, port, served
#: name, download folder, config file), never taken from a recipe: dropped, with a warning.
AIMC_OWNED = tuple(
    flag
    for flag in BACKENDS["vllm"].managed
    if flag not in NEUTRAL and flag not in FROM_RECIPE and flag not in LEFT_TO_LINT
)


#: Flags vLLM 0.32 parses with ``human_readable_int`` (``1k`` = 1000, ``1K`` = 1024;
#: ``--max-model-len`` also ``auto``/``-1``): ``engine/arg_utils.py:390-403``. The vocabulary
#: gives them no type (they take words), so a plain number is typed here.
HUMAN_READABLE_INTS = (
    "max-model-len",
    "max-num-batched-tokens",
    "max-num-scheduled-tokens",
    "kv-cache-memory-bytes",
    "safetensors-prefetch-block-size",
    "max-num-queued-tokens",
)
_HUMAN_INT = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human_int(word: str) -> int | None:
    """``word`` as vLLM 0.32's ``human_readable_int`` reads it (``vllm/utils/
    argparse_utils.py``: ``32768``, ``32k`` = 32000, ``32K`` = 32768, ``25.6k`` = 25600;
    no decimals with a binary suffix), or None when it reads no positive integer."""
    word = word.strip()
    if word.isascii() and word.isdigit():
        return int(word) if int(word) > 0 else None
    found = _HUMAN_INT.fullmatch(word) if word.isascii() else None
    if found is None:
        return None
    number, suffix = found.groups()
    if suffix in _BINARY:
        value = int(number) * _BINARY[suffix] if number.isdigit() else 0
    else:
        value = int(float(number) * _DECIMAL[suffix])
    return value if value > 0 else None


def neutral_value(field: str, value: Any) -> Any:
    """The value of neutral recipe field ``field`` that a foreign flag's ``value`` sets, or
    None when aimc has none (``--max-model-len auto``: vLLM fits the context to memory).
    ``context_length`` as vLLM reads ``--max-model-len`` (:func:`human_int`)."""
    if isinstance(value, bool):
        return None
    if field == "context_length":
        if isinstance(value, int):
            return value if value > 0 else None
        return human_int(value) if isinstance(value, str) else None
    if field == "memory_utilization":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if 0 < number <= 1 else None
    return value


#: vLLM's --dtype for each precision, as aimc derives it (the backend's own table).
DTYPES = BACKENDS["vllm"].dtypes
#: --quantization values a weights entry can carry (the recipe schema's pattern; whether
#: the backend knows the value is lint/quantization's to say).
_WEIGHT_QUANTIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def weights_field(name: str, value: Any, precision: str) -> tuple[str, Any] | str | None:
    """What a foreign ``--quantization`` or ``--dtype`` (``name``) sets in the weights
    entry of ``precision``: (field, value); None when aimc derives the same by itself
    (``--dtype bfloat16`` for bf16); else why aimc has no equivalent."""
    if name == "quantization":
        if isinstance(value, str) and _WEIGHT_QUANTIZATION.fullmatch(value):
            return "quantization", value
        return f"quantization {excerpt(value)} has no aimc equivalent"
    if value == "auto" and precision in DTYPES:
        return "dtype", "auto"  # vLLM reads the checkpoint's own: so does aimc
    if value in ("auto", DTYPES.get(precision)):
        return None
    if value in ACTIVATION_DTYPES.get(precision, ()):
        return "dtype", value  # the dtype a quantized checkpoint computes in (--dtype)
    allowed = ACTIVATION_DTYPES.get(precision) or (DTYPES.get(precision, "auto"),)
    return (
        f"dtype {excerpt(value)} with precision {precision}: vLLM 0.32 serves "
        f"{precision} weights in {' or '.join(allowed)}"
    )


def coerce(name: str, value: Any) -> Any:
    """A command-line word as the type the pinned vLLM reads for ``name`` (ints, floats; a
    plain number of a :data:`HUMAN_READABLE_INTS` flag as an int)."""
    spec = vocabulary("vllm").flags.get(name, {})
    if isinstance(value, str):
        try:
            if spec.get("type") == "int":
                return int(value)
            if spec.get("type") == "float":
                return float(value)
        except ValueError:
            return value
        if name in HUMAN_READABLE_INTS and value.isascii() and value.isdigit():
            return int(value)
    return value


def negated(name: str, value: Any) -> tuple[str, Any]:
    """A bare ``--no-NAME`` as ``NAME`` false when the pinned vLLM's ``NAME`` is negatable
    (argparse's ``BooleanOptionalAction``); any other flag as it is."""
    bare = name.startswith("no-") and value is True
    if bare and vocabulary("vllm").flags.get(name[3:], {}).get("negatable"):
        return name[3:], False
    return name, value


def _takes_value(name: str, following: str | None) -> bool:
    spec = vocabulary("vllm").flags.get(name)
    if following is None:
        return False
    if spec is not None:
        return bool(spec["value"])
    return not following.startswith("-") or _number(following)


def args_from_list(
    words: Any, doc: Document, base: str
) -> tuple[list[tuple[str, Any, Origin]], list[Diagnostic]]:
    """``["--flag", "value", "--switch", "--k=v"]`` (a vLLM command-line list) as
    (flag name, value, origin) in order; true for a bare switch. Words that are not flags
    (a positional, a name with a stray character such as a trailing comma) are reported."""
    out: list[tuple[str, Any, Origin]] = []
    problems: list[Diagnostic] = []
    if words is None:
        return out, problems
    if not isinstance(words, list):
        problems.append(
            Origin.of(doc, base).diagnostic(
                "expected a list of command-line words", rule="interop/args"
            )
        )
        return out, problems
    if len(words) > 2 * MAX_ITEMS:
        problems.append(over_limit(Origin.of(doc, base), len(words), "words", 2 * MAX_ITEMS))
        words = words[: 2 * MAX_ITEMS]
    i = 0
    dotted: tuple[dict[str, Any], Origin] | None = None
    while i < len(words):
        word, where = words[i], Origin.of(doc, f"{base}/{i}")
        i += 1
        if isinstance(word, str) and _DOTTED.match(word):
            dotted = dotted or ({}, where)
            _dotted_into(dotted[0], word)
            continue
        if not isinstance(word, str) or not word.startswith("--"):
            problems.append(_not_a_flag(word, where))
            continue
        name, eq, value = word[2:].partition("=")
        if not FLAG_NAME.match(name):
            problems.append(bad_flag(name, where))
            if not eq and i < len(words) and _takes_value(name.strip(",;"), _word(words, i)):
                i += 1
            continue
        if eq:
            out.append((name, coerce(name, value), where))
        elif _takes_value(name, _word(words, i)):
            out.append((name, coerce(name, words[i]), where))
            i += 1
        else:
            out.append((name, True, where))
    if dotted is not None:  # vLLM appends them last, as one JSON --compilation-config
        out.append(("compilation-config", json.dumps(dotted[0]), dotted[1]))
    return out, problems


#: vLLM's dotted form of --compilation-config (``-cc`` is its alias):
#: ``-cc.pass_config.fuse_rope_kvcache=True``. FlexibleArgumentParser.parse_args
#: (vllm/utils/argparse_utils.py:424-451 in 0.32.0) merges all of them into one JSON
#: mapping passed last, each value JSON if it parses, else the text.
_DOTTED = re.compile(r"(?:-cc|--compilation-config)\.([A-Za-z0-9_.]{1,200})=(.{0,1000})\Z", re.S)
#: Most levels of one dotted key read.
_MAX_DOTS = 8


def _dotted_into(into: dict[str, Any], word: str) -> None:
    """Merge one dotted ``-cc.a.b=value`` word into ``into`` as vLLM does."""
    found = _DOTTED.match(word)
    assert found is not None
    keys = [k for k in found[1].split(".") if k][:_MAX_DOTS]
    try:
        value: Any = json.loads(found[2])
    except ValueError:
        value = found[2]
    node = into
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if keys:
        node[keys[-1]] = value


def _not_a_flag(word: Any, where: Origin) -> Diagnostic:
    """The problem of a word where a long flag was expected."""
    if isinstance(word, str) and word[:1] == "-" and not _number(word):
        return no_equivalent(
            where,
            f"short option {mask(excerpt(word))} has no aimc equivalent; not imported",
            hint="aimc args are long flags (compilation-config: a mapping)",
        )
    return where.diagnostic(
        f"{mask(excerpt(word))} is not a flag (expected --name)",
        rule="interop/args",
        hint="a value must follow the flag it belongs to",
    )


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _word(words: list[Any], i: int) -> str | None:
    return str(words[i]) if i < len(words) else None


def bad_flag(name: str, where: Origin) -> Diagnostic:
    """The diagnostic for a flag name the engine cannot parse (``max-num-seqs,``)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "", name.lower().replace("_", "-"))
    flags = vocabulary("vllm").flags
    if cleaned in flags:  # a stray character around a real flag: name it alone
        hint: str | None = f"did you mean {cleaned!r}?"
    else:
        hint = did_you_mean(cleaned, flags) if cleaned else None
    return where.diagnostic(
        f"{excerpt('--' + name)} is not a valid flag name (stray character?)",
        rule="lint/unknown-arg",
        hint=hint,
    )


def secret(name: str, where: Origin, value: object = None) -> Diagnostic:
    """The diagnostic for a secret in a foreign file (by its name, or a ``value`` that
    holds a token): never imported, never echoed."""
    what = "is a secret" if is_secret(name) else "holds a token"
    return where.diagnostic(
        f"'{name}' {what}; not imported (secrets never go in recipes)",
        rule="lint/secret",
        hint="remove it from the collection; aimc passes HF_TOKEN and VLLM_API_KEY through "
        "from the caller's environment",
    )


def env_items(
    env: Any, doc: Document, base: str
) -> tuple[dict[str, str], dict[str, Origin], list[Diagnostic]]:
    """A foreign env mapping as aimc env (names checked, values as the strings the
    foreign launcher passes), the origin of each name, and what was refused."""
    out: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    problems: list[Diagnostic] = []
    if env is None:
        return out, origins, problems
    if not isinstance(env, Mapping):
        problems.append(Origin.of(doc, base).diagnostic("expected a mapping", rule="interop/env"))
        return out, origins, problems
    if len(env) > MAX_ITEMS:
        problems.append(over_limit(Origin.of(doc, base), len(env), "variables"))
    for name, value in first_items(env):
        where = Origin.of(doc, f"{base}/{escape_pointer(name)}", key=True)
        if not isinstance(name, str) or not ENV_NAME.match(name):
            problems.append(
                where.diagnostic(
                    f"{excerpt(name)} is not a valid variable name", rule="interop/env"
                )
            )
            continue
        if is_secret(name) or holds_secret(value):
            problems.append(secret(name, where, value))
            continue
        if value is None or isinstance(value, (list, dict)):
            problems.append(where.diagnostic(f"'{name}' needs a string value", rule="interop/env"))
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not ENV_VALUE.fullmatch(text):  # compile would refuse it (aimc.core.safety)
            problems.append(
                where.diagnostic(
                    f"the value of '{name}' cannot be written safely to aim.env; not imported",
                    rule="interop/env",
                    hint="env values may use letters, digits and _ @ % + = : , . / ^ - only, "
                    "up to 4096 characters",
                )
            )
            continue
        out[name], origins[name] = text, where
    return out, origins, problems
