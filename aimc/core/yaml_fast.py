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
from collections.abc import Iterator, Mapping
from typing import Any

from aimc.core.diagnostics import Position
from aimc.core.yaml_limits import MAX_DEPTH, MAX_EXPANDED_CHARS, MAX_NODES, big_int

__all__ = ["NOT_FINITE", "ODD_IN_YAML11", "Positions", "fast_plain"]

#: Tags the fast path turns into values itself (anything else goes the composer's way).
_FAST_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "null", "timestamp")
)
_STR, _INT, _FLOAT = ("tag:yaml.org,2002:" + t for t in ("str", "int", "float"))
#: Facts of plain scalars, as bits: one reads otherwise to a YAML 1.1 reader (not
#: :func:`aimc.core.yaml11.alike11`); one is a number that is not finite (``.nan``, ``1e400``).
ODD_IN_YAML11, NOT_FINITE = 1, 2
#: Plain scalar text -> (its value, its JSON Pointer token if it may be a mapping key,
#: its facts): see :func:`_resolve`.
_RESOLVED: dict[str, tuple[Any, str | None, int]] = {}
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


class Positions(Mapping[str, Position]):
    """JSON Pointer -> 1-based (line, column), each made from the parser's (0-based) mark
    when it is read: a file without problems has one read (the checker's anchor), and
    making them all cost about 6% of its load (issue 26). Equal to the dict of the same
    positions; pickled and copied as one."""

    __slots__ = ("_marks",)

    def __init__(self, marks: dict[str, Any]) -> None:
        self._marks = marks

    def __getitem__(self, pointer: str) -> Position:
        mark = self._marks[pointer]
        return mark.line + 1, mark.column + 1

    def __contains__(self, pointer: object) -> bool:
        return pointer in self._marks

    def __iter__(self) -> Iterator[str]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[type, tuple[dict[str, Position]]]:
        return dict, (dict(self.items()),)


class _Careful(Exception):
    """The document needs the careful path."""


def _token(key: str) -> str:
    """What a mapping key adds to the JSON Pointer of its value: ``/`` and the key escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _resolve(text: str) -> tuple[Any, str | None, int]:
    """(value, its pointer token if it may be a key: a string by resolution (:func:`_token`),
    its facts as a value or a key: :data:`ODD_IN_YAML11`, :data:`NOT_FINITE`) of a plain
    scalar's text, as the composer and the careful path would make it; :class:`_Careful`
    where only they can say (an unusual tag, a value its tag cannot take). A date's value
    is its text, as the careful path keeps it, but a date is no key."""
    from aimc.core.yaml11 import DECIMAL, alike11  # deferred: compiled on first use

    table, constructor = _plain_resolvers()
    tag = _STR
    for candidate, regexp in table.get(text[0] if text else "", []) + table.get(None, []):
        if regexp.match(text):
            tag = candidate
            break
    if tag == _STR:
        got: tuple[Any, str | None] = (text, _token(text))
    elif tag not in _FAST_TAGS:
        raise _Careful
    elif tag.endswith(":timestamp"):
        got = (text, None)  # the careful path keeps the text of dates
    elif (decimal := DECIMAL.match(text)) and tag == (_FLOAT if decimal[1] else _INT):
        # What the constructor makes of a short plain decimal, as a YAML 1.1 reader does,
        # told in a fifth of the time: most numbers of a file are, each new to the table.
        return _keep(text, (float(text) if decimal[1] else int(text), None, 0))
    else:
        from ruamel.yaml.nodes import ScalarNode  # deferred: imported when a file is parsed

        try:
            made = constructor.yaml_constructors[tag](constructor, ScalarNode(tag, text))
        except (ValueError, LookupError, TypeError, ArithmeticError):
            raise _Careful from None
        if big_int(made):
            raise _Careful
        got = (made, None)
    odd = 0 if alike11(text, got[0]) else ODD_IN_YAML11
    if isinstance(got[0], float) and not math.isfinite(got[0]):
        odd |= NOT_FINITE
    return _keep(text, (*got, odd))


def _keep(text: str, resolved: tuple[Any, str | None, int]) -> tuple[Any, str | None, int]:
    """``resolved``, kept in :data:`_RESOLVED` for ``text`` unless it is long or full."""
    if len(text) <= _RESOLVED_TEXT and len(_RESOLVED) < _RESOLVED_MAX:
        _RESOLVED[text] = resolved
    return resolved


#: Half of each limit: a document near one goes the careful way, which checks it. Half
#: of the text limit is :func:`_walk`'s budget: the document's text (its scalars' text is
#: at most that, there are no aliases), the JSON Pointer of each value and
#: :data:`_PER_NODE` for each value and each key, so that it holds at most
#: ``MAX_NODES // 2`` nodes (a list of 9,000 numbers is read the fast way, as before).
_BUDGET, _DEPTH = MAX_EXPANDED_CHARS // 2, MAX_DEPTH // 2
_PER_NODE = _BUDGET // (MAX_NODES // 2)
#: :func:`_walk`'s innermost open collection before the root: none.
_ROOT: tuple[Any, str, bool | None, Any, str, Any] = (None, "", None, None, "", None)


def _walk(events: Any, kinds: tuple[type, ...], budget: int) -> Any:
    """(root value, value positions, key positions, its plain scalars' facts together) of
    the document (of ``budget`` characters) whose first node event is next in ``events``;
    :class:`_Careful` if need be. One loop, the innermost open collection in locals."""
    scalar_kind, mapping_kind, sequence_kind, mapping_end, sequence_end = kinds
    values: dict[str, Any] = {}  # pointer -> parser mark (keys: of the key)
    keys: dict[str, Any] = {}
    # Innermost open collection, pointer, is a mapping (None: none yet), pending key's name,
    # token, mark; the outer ones' stacked.
    container, at, is_map, name, token, key_at = _ROOT
    stack: list[tuple[Any, str, bool | None, Any, str, Any]] = []
    odd = 0
    for event in events:
        kind = type(event)
        if kind is scalar_kind:
            text = event.value
            if event.implicit[0]:
                value, escaped, facts = _RESOLVED.get(text) or _resolve(text)
                odd |= facts
            else:  # quoted or block: a string (its token made if it is a key)
                value, escaped = text, ""
        elif kind is mapping_kind or kind is sequence_kind:
            value, escaped = ({} if kind is mapping_kind else []), None
        elif (kind is mapping_end or kind is sequence_end) and name is None:
            value, (container, at, is_map, name, token, key_at) = container, stack.pop()
            if is_map is None:
                return value, Positions(values), Positions(keys), odd
            continue
        else:
            raise _Careful  # an alias, a node where none may be, a key with no value
        if event.anchor is not None or event.ctag is not None:
            raise _Careful
        where = event.start_mark  # its position made when read (:class:`Positions`)
        if is_map:
            if name is None:  # a key: a string by resolution the mapping has not had yet
                if escaped is None or value in container:
                    raise _Careful
                name, token, key_at = value, escaped or _token(value), where
                continue
            pointer = at + token
            keys[pointer] = key_at
            container[name] = value
            name = None
        elif is_map is None:
            pointer = ""
        else:
            pointer = f"{at}/{len(container)}"
            container.append(value)
        values[pointer] = where
        budget += len(pointer) + (2 * _PER_NODE if is_map else _PER_NODE)  # a key's too
        if budget > _BUDGET:
            raise _Careful
        if kind is not scalar_kind:
            stack.append((container, at, is_map, name, token, key_at))
            container, at, is_map = value, pointer, kind is mapping_kind
            if len(stack) > _DEPTH:
                raise _Careful
        elif is_map is None:
            return value, Positions(values), Positions(keys), odd
    raise _Careful


def fast_plain(
    text: str,
) -> tuple[Any, Positions, Positions, int] | None:
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
        parsed = _walk(stream, kinds, len(text))
        if type(next(stream)) is not ev.DocumentEndEvent:
            return None  # another document
        if type(next(stream)) is not ev.StreamEndEvent:
            return None
    except (_Careful, YAMLError, StopIteration):
        return None
    return parsed  # type: ignore[no-any-return]
