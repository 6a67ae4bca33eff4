"""Lint rule ``lint/yaml-1.1``: a file means the same to YAML 1.1 readers as to aimc.

Takes a loaded :class:`~aimc.core.loader.Document` and the text it was loaded from; hands on a
warning for each plain scalar that a YAML 1.1 reader (PyYAML, many CI and deployment
tools) reads otherwise than aimc's YAML 1.2: ``32.762e9`` (a string there: 1.1 floats need
a dot and a signed exponent), ``yes``/``on`` (booleans there), ``017`` (octal there).
Quoted and block scalars are text to both and never warned about.
"""

from __future__ import annotations

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
from aimc.core.yaml11 import ANY11, read11, same11

__all__ = ["lint_yaml11"]


def lint_yaml11(doc: Document, text: str) -> list[Diagnostic]:
    """Warnings for the plain scalars of ``text`` (the file ``doc`` was loaded from) that a
    YAML 1.1 reader (PyYAML, many CI and deployment tools) reads otherwise than aimc does
    (YAML 1.2): a recipe should mean the same to every tool that reads it. Nothing to say
    when the loader saw every plain scalar read alike (``doc.yaml11_alike``); else the
    text is parsed again only when :func:`_alike` cannot tell from ``doc`` that there is
    none."""
    if doc.yaml11_alike or _alike(doc, text):
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
        kind, theirs = read11(event.value)
        if not same11(kind, theirs, ours):
            out.append(_warning(doc, at, event.value, is_key, (kind, theirs), ours))
    return out


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
                if ANY11.match(key):
                    if not _quoted(lines, doc.keys.get(f"{at}/{escape_pointer(key)}")):
                        return False
                elif isinstance(item, str) and not ANY11.match(item):
                    continue  # a string to both, wherever it is: no pointer made for it
                todo.append((f"{at}/{escape_pointer(key)}", item))
        elif isinstance(value, list):
            todo += [
                (f"{at}/{i}", item)
                for i, item in enumerate(value)
                if not isinstance(item, str) or ANY11.match(item)
            ]
        elif isinstance(value, str):
            if ANY11.match(value) and not _quoted(lines, doc.values.get(at)):
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
    kind, theirs = read11(word.group())
    return same11(kind, theirs, ours)


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
