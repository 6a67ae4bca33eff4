"""The loader's fast path: a plain YAML document read in one pass over the parser's events.

Takes the text of one file (:func:`fast_plain`); hands on its plain data and the positions
of its values and keys, exactly as :mod:`aimc.core.loader`'s careful path (the limits of
:mod:`aimc.core.yaml_limits`, the composer, then plain data) would make them, or None when only
that path can say: anchors, aliases, tags, directives, merge or duplicate or non-string
keys, more than one document, a value its tag cannot take, or anything near a limit (half
of each). It never reports an error: the careful path reports every one. The two paths
give the same data and positions (``tests/test_loader_fast.py``).

Most of a recipe's time in ``validate`` was this pass (issue 26), so it is one loop over
libyaml's events (ruamel.yaml.clib's parser itself, without a loader built per file), and a
plain scalar's text is resolved once per process (:data:`_RESOLVED`): the same text always
resolves to the same value, and every value kept there is immutable. With it are kept the
facts of the text that checks after the loader would walk the whole document for
(:data:`ODD_IN_YAML11`, :data:`NOT_FINITE`), so the fast path tells them of the document:
``lint/yaml-1.1`` has nothing to say when no plain scalar reads otherwise to a YAML 1.1
reader, the schema check no number to refuse when every one is finite.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from aimc.core.diagnostics import Position
from aimc.core.yaml_limits import MAX_DEPTH, MAX_EXPANDED_CHARS, MAX_NODES, big_int

__all__ = ["NOT_FINITE", "ODD_IN_YAML11", "fast_plain"]

#: Tags the fast path turns into values itself (anything else goes the composer's way).
_FAST_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "null", "timestamp")
)
_STR, _INT, _FLOAT = ("tag:yaml.org,2002:" + t for t in ("str", "int", "float"))
#: Facts of plain scalars, as bits: one reads otherwise to a YAML 1.1 reader (not
#: :func:`aimc.core.yaml11.alike11`); one is a number that is not finite (``.nan``, ``1e400``).
ODD_IN_YAML11, NOT_FINITE = 1, 2
#: Plain scalar text -> (its value, whether it may be a mapping key, its facts): see
#: :func:`_resolve`.
_RESOLVED: dict[str, tuple[Any, bool, int]] = {}
#: Most entries of :data:`_RESOLVED`, and the longest text kept there.
_RESOLVED_MAX, _RESOLVED_TEXT = 16_384, 80


@functools.cache
def _plain_resolvers() -> tuple[dict[Any, list[tuple[str, Any]]], Any]:
    """The implicit resolvers (first character -> [(tag, regexp)]) and the constructor of
    a fresh safe loader: those the composer uses for a document without a %YAML directive."""
    from ruamel.yaml import YAML  # deferred: imported only when a file is parsed

    yaml = YAML(typ="safe")
    table = {k: list(v) for k, v in yaml.resolver.versioned_resolver.items()}
    return table, yaml.constructor


class _Careful(Exception):
    """The document needs the careful path."""


def _resolve(text: str) -> tuple[Any, bool, int]:
    """(value, whether it may be a key: a string by resolution, its facts as a value or a
    key: :data:`ODD_IN_YAML11`, :data:`NOT_FINITE`) of a plain scalar's text, as the
    composer and the careful path would make it; :class:`_Careful` where only they can say
    (an unusual tag, a value its tag cannot take). A date's value is its text, as the
    careful path keeps it, but a date is no key."""
    from aimc.core.yaml11 import DECIMAL, alike11  # deferred: compiled on first use

    table, constructor = _plain_resolvers()
    tag = _STR
    for candidate, regexp in table.get(text[0] if text else "", []) + table.get(None, []):
        if regexp.match(text):
            tag = candidate
            break
    if tag == _STR:
        got: tuple[Any, bool] = (text, True)
    elif tag not in _FAST_TAGS:
        raise _Careful
    elif tag.endswith(":timestamp"):
        got = (text, False)  # the careful path keeps the text of dates
    elif (decimal := DECIMAL.match(text)) and tag == (_FLOAT if decimal[1] else _INT):
        # What the constructor makes of a short plain decimal, as a YAML 1.1 reader does,
        # told in a fifth of the time: most numbers of a file are, each new to the table.
        return _keep(text, (float(text) if decimal[1] else int(text), False, 0))
    else:
        from ruamel.yaml.nodes import ScalarNode  # deferred: imported when a file is parsed

        try:
            made = constructor.yaml_constructors[tag](constructor, ScalarNode(tag, text))
        except (ValueError, LookupError, TypeError, ArithmeticError):
            raise _Careful from None
        if big_int(made):
            raise _Careful
        got = (made, False)
    odd = 0 if alike11(text, got[0]) else ODD_IN_YAML11
    if isinstance(got[0], float) and not math.isfinite(got[0]):
        odd |= NOT_FINITE
    return _keep(text, (*got, odd))


def _keep(text: str, resolved: tuple[Any, bool, int]) -> tuple[Any, bool, int]:
    """``resolved``, kept in :data:`_RESOLVED` for ``text`` unless it is long or full."""
    if len(text) <= _RESOLVED_TEXT and len(_RESOLVED) < _RESOLVED_MAX:
        _RESOLVED[text] = resolved
    return resolved


#: Half of each limit: a document near one goes the careful way, which checks it.
_NODES, _TEXT, _DEPTH = MAX_NODES // 2, MAX_EXPANDED_CHARS // 2, MAX_DEPTH // 2


def _walk(events: Any, kinds: tuple[type, ...]) -> Any:
    """(root value, value positions, key positions, its plain scalars' facts together) of
    the document whose first node event is next in ``events``; :class:`_Careful` if need be."""
    scalar_kind, mapping_kind, sequence_kind, mapping_end, sequence_end = kinds
    values: dict[str, Position] = {}
    keys: dict[str, Position] = {}
    # Open collections [container, pointer, pending key (mappings), its position]; 1st: root.
    stack: list[list[Any]] = [[[], "", None, None]]
    parent = stack[0]
    nodes, budget, odd = 0, 0, 0
    for event in events:
        kind = type(event)
        if kind is mapping_end or kind is sequence_end:
            if stack.pop()[2] is not None:
                raise _Careful
            parent = stack[-1]
            if len(stack) == 1:
                return parent[0][0], values, keys, odd
            continue
        if kind is scalar_kind:
            budget += len(event.value)
            if not event.implicit[0]:  # quoted or block: a string
                value, key_ok = event.value, True
            else:
                value, key_ok, facts = _RESOLVED.get(event.value) or _resolve(event.value)
                odd |= facts
        elif kind is mapping_kind or kind is sequence_kind:
            value, key_ok = ({} if kind is mapping_kind else []), False
        else:
            raise _Careful  # an alias, or a node where none may be
        if event.anchor is not None or event.tag is not None:
            raise _Careful
        mark = event.start_mark
        where = (mark.line + 1, mark.column + 1)
        container = parent[0]
        nodes += 1
        if type(container) is list:
            pointer = f"{parent[1]}/{len(container)}" if len(stack) > 1 else ""
            container.append(value)
        elif parent[2] is None:  # a key: a string by resolution the mapping has not had yet
            if not key_ok or value in container:
                raise _Careful
            parent[2], parent[3] = value, where
            continue
        else:
            name = parent[2]
            pointer = f"{parent[1]}/{name.replace('~', '~0').replace('/', '~1')}"
            keys[pointer] = parent[3]
            container[name] = value
            parent[2] = None
        values[pointer] = where
        budget += len(pointer)
        if nodes > _NODES or budget > _TEXT or len(stack) > _DEPTH:
            raise _Careful
        if kind is not scalar_kind:
            parent = [value, pointer, None, None]
            stack.append(parent)
        elif len(stack) == 1:
            return value, values, keys, odd
    raise _Careful


def fast_plain(
    text: str,
) -> tuple[Any, dict[str, Position], dict[str, Position], int] | None:
    """The data, value positions and key positions of a plain document, and the facts of
    its plain scalars together (:data:`ODD_IN_YAML11`, :data:`NOT_FINITE`); or None when the
    document needs the careful path (see the module's docstring), also when the text is not
    YAML (the careful path says where).
    """
    # Deferred: ruamel.yaml is imported only when a file is parsed (``aim-engine --help``
    # imports the loader).
    from ruamel.yaml import YAML
    from ruamel.yaml import events as ev
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.main import CParser  # type: ignore[attr-defined] # None without clib

    if CParser is None:
        stream = iter(YAML(typ="safe").parse(text))
    else:  # the parser the careful path's loader is built on, without the loader
        stream = iter(CParser(text).get_event, None)
    kinds: tuple[type, ...] = (ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent)
    kinds += (ev.MappingEndEvent, ev.SequenceEndEvent)
    try:
        next(stream)  # the stream's start
        start = next(stream)
        if type(start) is not ev.DocumentStartEvent or start.version is not None or start.tags:
            return None
        parsed = _walk(stream, kinds)
        if type(next(stream)) is not ev.DocumentEndEvent:
            return None  # another document
        if type(next(stream)) is not ev.StreamEndEvent:
            return None
    except (_Careful, YAMLError, StopIteration):
        return None
    return parsed  # type: ignore[no-any-return]
