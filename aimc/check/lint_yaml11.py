"""Lint rule ``lint/yaml-1.1``: a file means the same to YAML 1.1 readers as to aimc.

Takes a loaded :class:`~aimc.core.loader.Document` and the text it was loaded from; hands on a
warning for each plain scalar that a YAML 1.1 reader (PyYAML, many CI and deployment
tools) reads otherwise than aimc's YAML 1.2: ``32.762e9`` (a string there: 1.1 floats need
a dot and a signed exponent), ``yes``/``on`` (booleans there), ``017`` (octal there).
Quoted and block scalars are text to both and never warned about.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    CollectionEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from aimc.core.diagnostics import Diagnostic
from aimc.core.loader import Document
from aimc.core.safety import shorten

__all__ = ["lint_yaml11"]

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
    scalars = {
        position: p
        for p, position in doc.values.items()
        if not isinstance(_resolve(doc.data, p, key=False), (dict, list))
    }
    keys = {position: p for p, position in doc.keys.items()}
    out: list[Diagnostic] = []
    for event, is_key in _plain_scalars(text):
        position = (event.start_mark.line + 1, event.start_mark.column + 1)
        at = (keys if is_key else scalars).get(position)
        if at is None:
            continue
        ours = _resolve(doc.data, at, key=is_key)
        kind, theirs = _yaml11(event.value)
        if not _same(kind, theirs, ours):
            out.append(_warning(doc, at, event.value, is_key, (kind, theirs), ours))
    return out


def _plain_scalars(text: str) -> Iterator[tuple[Any, bool]]:
    """(event, is a mapping key) of every plain scalar of ``text``; none when it is not
    YAML."""
    try:
        events = list(YAML(typ="safe").parse(text))
    except YAMLError:
        return
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
        elif isinstance(event, CollectionEndEvent):
            stack.pop()
        elif isinstance(event, ScalarEvent) and event.implicit[0] and not event.style:
            yield event, is_key


def _warning(
    doc: Document, at: str, written: str, is_key: bool, theirs: tuple[str, Any], ours: Any
) -> Diagnostic:
    """The warning for the scalar ``written`` at ``at``: ``ours`` for aimc, ``theirs``
    (kind, value) for a YAML 1.1 reader."""
    kind, value = theirs
    shown = "a string" if kind == "str" else f"{kind} {value!r}"
    hint = "quote it for text, or write it as YAML 1.1 and 1.2 both read it"
    if kind == "str" and isinstance(ours, float):
        hint = "write it with a dot and a signed exponent (32.762e+9), or as an integer"
    elif kind == "bool":
        hint = "write true or false for a yes/no value, or quote it for text"
    return doc.diagnostic(
        at,
        f"{shorten(written, 40)!r} is {ours!r} for aimc (YAML 1.2) but "
        f"{shown} for YAML 1.1 readers such as PyYAML",
        key=is_key,
        hint=hint,
        rule="lint/yaml-1.1",
        severity="warning",
    )


def _resolve(data: Any, at: str, key: bool) -> Any:
    """The value (or, with ``key``, the key) at the JSON Pointer ``at``."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in at.split("/")[1:]]
    if key:
        return tokens[-1]
    for token in tokens:
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data
