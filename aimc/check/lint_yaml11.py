"""Lint rule ``lint/yaml-1.1``: a file means the same to YAML 1.1 readers as to aimc.

Takes a loaded :class:`~aimc.core.loader.Document` and the text it was loaded from; hands on a
warning for each plain scalar that a YAML 1.1 reader (PyYAML, many CI and deployment
tools) reads otherwise than aimc's YAML 1.2: ``32.762e9`` (a string there: 1.1 floats need
a dot and a signed exponent), ``yes``/``on`` (booleans there), ``017`` (octal there).
Quoted and block scalars are text to both and never warned about.
"""

from __future__ import annotations

import functools
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

from aimc.core.diagnostics import Diagnostic, escape_pointer
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


@functools.lru_cache(maxsize=1024)
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
    (YAML 1.2): a recipe should mean the same to every tool that reads it. The text is
    parsed again only when :func:`_alike` cannot tell from ``doc`` that there is none."""
    if _alike(doc, text):
        return []
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


#: Any YAML 1.1 implicit resolver: a string none of them takes is a string to 1.1 as well.
_ANY11 = re.compile("|".join(f"(?:{regexp.pattern})" for _kind, regexp in _YAML11))
#: Line breaks that YAML readers and ``str.split("\\n")`` may count otherwise (and a BOM).
_ODD_BREAKS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029\ufeff]")
#: The written text of a plain number or boolean, from its first character.
_WORD = re.compile(r"[^\s,\]}#]+")
#: Numbers and booleans written plainly and simply: the only ones :func:`_alike` reads.
_SIMPLE = re.compile(r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|true|false|True|False|TRUE|FALSE")


def _alike(doc: Document, text: str) -> bool:
    """True when no scalar of ``doc`` can read otherwise for YAML 1.1 (then
    :func:`lint_yaml11` has nothing to say), told from the data and the text at each
    scalar's position, without parsing again: a string (value or key) that no YAML 1.1
    resolver takes is a string to 1.1 too, however it is written; one that is quoted or
    a block is text to both; a number or boolean written simply (digits, a dot, an
    exponent; ``true``) is read as :func:`lint_yaml11` reads it. Anything else (a null,
    another spelling, a tag or anchor, line breaks counted otherwise) is left to it."""
    if _ODD_BREAKS.search(text):
        return False
    lines = text.split("\n")
    todo: list[tuple[str, Any]] = [("", doc.data)]
    while todo:
        at, value = todo.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _ANY11.match(key):
                    if not _quoted(lines, doc.keys.get(f"{at}/{escape_pointer(key)}")):
                        return False
                elif isinstance(item, str) and not _ANY11.match(item):
                    continue  # a string to both, wherever it is: no pointer made for it
                todo.append((f"{at}/{escape_pointer(key)}", item))
        elif isinstance(value, list):
            todo += [
                (f"{at}/{i}", item)
                for i, item in enumerate(value)
                if not isinstance(item, str) or _ANY11.match(item)
            ]
        elif isinstance(value, str):
            if _ANY11.match(value) and not _quoted(lines, doc.values.get(at)):
                return False
        elif not _simply(lines, doc.values.get(at), value):
            return False
    return True


def _quoted(lines: list[str], where: tuple[int, int] | None) -> bool:
    """Whether the scalar at ``where`` is quoted or a block scalar (text to every reader)."""
    if where is None or not 0 < where[0] <= len(lines):
        return False
    line, column = where
    return lines[line - 1][column - 1 : column] in ("'", '"', "|", ">")


def _simply(lines: list[str], where: tuple[int, int] | None, ours: Any) -> bool:
    """Whether the number or boolean ``ours`` is written simply at ``where`` and YAML 1.1
    reads it the same."""
    if where is None or not 0 < where[0] <= len(lines) or ours is None:
        return False
    word = _WORD.match(lines[where[0] - 1], where[1] - 1)
    if word is None or not _SIMPLE.fullmatch(word.group()):
        return False
    kind, theirs = _yaml11(word.group())
    return _same(kind, theirs, ours)


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
