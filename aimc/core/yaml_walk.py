"""The loader's limits checked on a document's events, before it is composed.

Takes the text of one file (:func:`check_limits`); hands on nothing, or raises
:class:`~aimc.core.errors.ValidationFailed` with one ``yaml`` diagnostic where a limit of
:mod:`aimc.core.yaml_limits` (depth, nodes, expanded text) was crossed.

The limits are checked on the parser's event stream, which is produced without recursion,
before the document is composed into nodes (libyaml's composer recurses in C and would
crash on deep nesting) or expanded into plain data. Only the loader's careful path
imports this module (a file read from :mod:`aimc.core.yaml_cache` or
:mod:`aimc.core.yaml_fast` never walks its events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aimc.core.diagnostics import Position, escape_pointer, excerpt
from aimc.core.yaml_limits import (
    DEPTH_HINT,
    DEPTH_MESSAGE,
    MAX_DEPTH,
    MAX_EXPANDED_CHARS,
    MAX_NODES,
    TEXT_HINT,
    limit_messages,
    refuse,
)

__all__ = ["check_limits"]


@dataclass(frozen=True)
class _Size:
    """What one node costs once expanded (for an anchor, what each alias to it costs)."""

    nodes: int
    chars: int
    #: JSON Pointer characters of the nodes, relative to the node's own pointer.
    pointers: int
    #: Levels of collections in it: 0 for a scalar, 1 for a flat list.
    height: int


#: A mapping or list as it opens; its children are counted as they come.
_OPENING = _Size(1, 0, 0, 1)
#: An alias to an anchor never defined (or defined as a document of its own).
_UNKNOWN = _Size(1, 0, 0, 0)


def _at(event: Any) -> Position:
    return event.start_mark.line + 1, event.start_mark.column + 1


@dataclass
class _Open:
    """A mapping or list whose end event has not come yet."""

    anchor: str | None
    is_map: bool
    level: int
    pointer: int
    #: (nodes, chars, pointer characters) counted before it opened.
    before: tuple[int, int, int]
    deepest: int
    children: int = 0
    key: int = 0


class _Walk:
    """The running totals of one document's events: what it costs so far, expanded, and
    for every anchor the size of the node it names (so an alias costs what expanding it
    would)."""

    def __init__(self, path: str, events: Any) -> None:
        self.path = path
        #: ``ruamel.yaml.events``, imported when a file is parsed.
        self.events = events
        self.nodes = self.chars = self.pointers = 0
        self.aliases = False
        self.anchors: dict[str, _Size | None] = {}  # None: the anchored node is still open
        self.stack: list[_Open] = []

    def close(self) -> None:
        """The end of the innermost open collection: its size becomes its anchor's."""
        done = self.stack.pop()
        n, c, p = done.before
        size = _Size(
            self.nodes - n,
            self.chars - c,
            self.pointers - p - (self.nodes - n) * done.pointer,
            done.deepest - done.level + 1,
        )
        if done.anchor is not None and self.anchors.get(done.anchor, size) is None:
            self.anchors[done.anchor] = size
        if self.stack:
            self.stack[-1].deepest = max(self.stack[-1].deepest, done.deepest)

    def node(self, event: Any) -> None:
        """A scalar, an alias or the start of a collection: counted, checked, opened."""
        parent = self.stack[-1] if self.stack else None
        value: str = event.value if isinstance(event, self.events.ScalarEvent) else ""
        pointer = self._pointer(parent, value)
        level = len(self.stack)
        size = self._size(event, value)
        self._count(event, size, level, pointer)
        if parent is not None and level + size.height > parent.deepest:
            parent.deepest = level + size.height
        if size is _OPENING:
            if event.anchor is not None:
                self.anchors[event.anchor] = None
            self.stack.append(
                _Open(
                    anchor=event.anchor,
                    is_map=isinstance(event, self.events.MappingStartEvent),
                    level=level + 1,
                    pointer=pointer,
                    before=(self.nodes - 1, self.chars, self.pointers - pointer),
                    deepest=level + 1,
                )
            )
        elif event.anchor is not None and not isinstance(event, self.events.AliasEvent):
            self.anchors[event.anchor] = size

    @staticmethod
    def _pointer(parent: _Open | None, value: str) -> int:
        """The length of a node's JSON Pointer (a key's is the one of its value)."""
        if parent is None:
            return 0
        if not parent.is_map:
            token = len(str(parent.children))
        elif parent.children % 2 == 0:  # a key: its pointer is the one of its value
            token = len(escape_pointer(value))
            parent.key = token
        else:
            token = parent.key
        parent.children += 1
        return parent.pointer + 1 + token

    def _size(self, event: Any, value: str) -> _Size:
        """What the node costs: an alias the whole node its anchor names."""
        if isinstance(event, self.events.AliasEvent):
            self.aliases = True
            name = event.anchor
            if name in self.anchors and self.anchors[name] is None:
                refuse(
                    self.path,
                    *_at(event),
                    f"YAML alias {excerpt(name)} refers to a node that contains it",
                )
            return self.anchors.get(name) or _UNKNOWN  # undefined: the composer says so
        if isinstance(event, self.events.CollectionStartEvent):
            return _OPENING
        return _Size(1, len(value), 0, 0)

    def _count(self, event: Any, size: _Size, level: int, pointer: int) -> None:
        """Add the node to the totals; refuse the document at it when a limit is crossed."""
        if level + size.height > MAX_DEPTH:
            refuse(self.path, *_at(event), DEPTH_MESSAGE, hint=DEPTH_HINT)
        self.nodes += size.nodes
        self.chars += size.chars
        self.pointers += size.pointers + size.nodes * pointer
        if self.nodes > MAX_NODES:
            refuse(self.path, *_at(event), limit_messages(self.aliases)[0])
        if self.chars + self.pointers > MAX_EXPANDED_CHARS:
            refuse(self.path, *_at(event), limit_messages(self.aliases)[1], hint=TEXT_HINT)


def check_limits(text: str, path: str) -> None:
    """Refuse a document over the depth, node or text limits, before it is composed.

    Walks the parser's events (no recursion) and keeps, for every anchor, the size of the
    node it names, so that an alias costs what expanding it would.

    Raises:
        ValidationFailed: At the event where a limit was crossed.
        YAMLError: The text is not YAML (the composer would say the same).
    """
    # Deferred: ruamel.yaml is imported only when a file is parsed (``aim-engine --help``
    # imports the loader).
    from ruamel.yaml import YAML, events

    walk = _Walk(path, events)
    documents = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, events.DocumentStartEvent):
            documents += 1
            if documents > 1:
                return  # the composer reports the second document without reading it
        elif isinstance(event, events.CollectionEndEvent):
            walk.close()
        elif isinstance(event, events.NodeEvent):
            walk.node(event)
