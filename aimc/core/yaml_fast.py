"""The loader's fast path: a plain YAML document read in one pass over the parser's events.

Takes the text of one file (:func:`fast_plain`); hands on its plain data and the positions
of its values and keys, exactly as :mod:`aimc.core.loader`'s careful path (the limits of
:mod:`aimc.core.yaml_limits`, the composer, then plain data) would make them, or None when only
that path can say: anchors, aliases, tags, directives, merge or duplicate or non-string
keys, more than one document, a value its tag cannot take, or anything near a limit (half
of each). It never reports an error: the careful path reports every one. The two paths
give the same data and positions (``tests/test_loader_fast.py``).
"""

from __future__ import annotations

import functools
from typing import Any

from aimc.core.diagnostics import Position, escape_pointer
from aimc.core.yaml_limits import MAX_DEPTH, MAX_EXPANDED_CHARS, MAX_NODES, big_int

__all__ = ["fast_plain"]

#: Tags the fast path turns into values itself (anything else goes the composer's way).
_FAST_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "null", "timestamp")
)


@functools.cache
def _plain_resolvers() -> tuple[dict[Any, list[tuple[str, Any]]], Any]:
    """The implicit resolvers (first character -> [(tag, regexp)]) and the constructor of
    a fresh safe loader: those the composer uses for a document without a %YAML directive."""
    from ruamel.yaml import YAML  # deferred: imported only when a file is parsed

    yaml = YAML(typ="safe")
    table = {k: list(v) for k, v in yaml.resolver.versioned_resolver.items()}
    return table, yaml.constructor


def _fast_scalar(event: Any) -> tuple[bool, Any]:
    """(True, value) of a scalar event as the composer and the careful path would make it,
    or (False, None) where only they can say (an unusual tag, a value its tag cannot take).
    A date's value is its text, as the careful path keeps it (but a date is no key: see
    :func:`_fast_key`)."""
    value = event.value
    if not event.implicit[0]:  # quoted or block: a string
        return True, value
    table, constructor = _plain_resolvers()
    tag = "tag:yaml.org,2002:str"
    for candidate, regexp in table.get(value[0] if value else "", []) + table.get(None, []):
        if regexp.match(value):
            tag = candidate
            break
    if tag == "tag:yaml.org,2002:str":
        return True, value
    if tag not in _FAST_TAGS:
        return False, None
    if tag.endswith(":timestamp"):
        return True, value  # the careful path keeps the text of dates
    from ruamel.yaml.nodes import ScalarNode  # deferred: imported only when a file is parsed

    try:
        made = constructor.yaml_constructors[tag](
            constructor, ScalarNode(tag, value, start_mark=event.start_mark)
        )
    except (ValueError, LookupError, TypeError, ArithmeticError):
        return False, None
    return (False, None) if big_int(made) else (True, made)


def _fast_key(event: Any) -> bool:
    """Whether a scalar event is a key the fast path may take: a string by resolution."""
    if not event.implicit[0]:
        return True
    table, _constructor = _plain_resolvers()
    value = event.value
    return not any(
        regexp.match(value)
        for _tag, regexp in table.get(value[0] if value else "", []) + table.get(None, [])
    )


class _Careful(Exception):
    """The document needs the careful path."""


#: Half of each limit: a document near one goes the careful way, which checks it.
_NODES, _TEXT, _DEPTH = MAX_NODES // 2, MAX_EXPANDED_CHARS // 2, MAX_DEPTH // 2


class _Build:
    """The document built so far from its events."""

    def __init__(self, events: Any) -> None:
        #: ``ruamel.yaml.events``, imported when a file is parsed.
        self.events = events
        self.kinds = (events.ScalarEvent, events.MappingStartEvent, events.SequenceStartEvent)
        self.values: dict[str, Position] = {}
        self.keys: dict[str, Position] = {}
        # Open collections: [container, its pointer, pending key (mappings), its key position].
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.done = False
        self.nodes = self.budget = 0

    def event(self, event: Any) -> None:
        """Take one parser event; :class:`_Careful` when the careful path must read it."""
        events = self.events
        if isinstance(event, events.DocumentStartEvent):
            if self.done or event.version is not None or event.tags:
                raise _Careful
        elif isinstance(event, events.CollectionEndEvent):
            finished = self.stack.pop()
            if isinstance(finished[0], dict) and finished[2] is not None:
                raise _Careful
            if not self.stack:
                self.done = True
        elif isinstance(event, events.AliasEvent):
            raise _Careful
        elif isinstance(event, self.kinds):
            self._node(event, isinstance(event, events.ScalarEvent))

    def _node(self, event: Any, scalar: bool) -> None:
        """A scalar or the start of a collection: a key, or a value at its pointer."""
        if event.anchor is not None or event.tag is not None or self.done:
            raise _Careful
        where = (event.start_mark.line + 1, event.start_mark.column + 1)
        parent = self.stack[-1] if self.stack else None
        if scalar:
            ok, value = _fast_scalar(event)
            if not ok:
                raise _Careful
            self.budget += len(event.value)
        else:
            value = {} if isinstance(event, self.events.MappingStartEvent) else []
        if parent is None:
            pointer = ""
        elif isinstance(parent[0], dict):
            if parent[2] is None:  # a key
                if not scalar or not _fast_key(event) or value in parent[0]:
                    raise _Careful
                parent[2], parent[3] = value, where
                self.nodes += 1
                return
            pointer = f"{parent[1]}/{escape_pointer(parent[2])}"
            self.keys[pointer] = parent[3]
            parent[0][parent[2]] = value
            parent[2] = None
        else:
            pointer = f"{parent[1]}/{len(parent[0])}"
            parent[0].append(value)
        self.values[pointer] = where
        self.nodes += 1
        self.budget += len(pointer)
        if self.nodes > _NODES or self.budget > _TEXT or len(self.stack) >= _DEPTH:
            raise _Careful
        if not scalar:
            self.stack.append([value, pointer, None, None])
        if parent is None:
            self.root = value
            if not self.stack:
                self.done = True


def fast_plain(text: str) -> tuple[Any, dict[str, Position], dict[str, Position]] | None:
    """The data, value positions and key positions of a plain document, or None when the
    document needs the careful path (see the module's docstring), also when the text is not
    YAML (the careful path says where).
    """
    # Deferred: ruamel.yaml is imported only when a file is parsed (``aim-engine --help``
    # imports the loader).
    from ruamel.yaml import YAML, events
    from ruamel.yaml.error import YAMLError

    build = _Build(events)
    try:
        for event in YAML(typ="safe").parse(text):
            build.event(event)
    except (_Careful, YAMLError):
        return None
    if not build.done:
        return None
    return build.root, build.values, build.keys
