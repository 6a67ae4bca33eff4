"""Load stage: YAML bytes -> plain data plus a JSON-Pointer -> (line, column) table.

Takes the bytes of one file and its display path; hands on a :class:`Document` (plain
``dict``/``list``/scalars, the positions of every key and value, the file's sha256) or
raises :class:`~aimc.errors.ValidationFailed` with one diagnostic at the exact place where
the text stops being a single valid YAML document (syntax error, duplicate key, bad bytes,
empty file). Pure: reading the file is the caller's job (:func:`read_document` does both).

Hostile input is refused before it can cost much time or memory, each time with one
diagnostic (rule ``yaml``) where the limit was crossed:

* :data:`MAX_FILE_BYTES`: a longer file is refused after reading one byte more than that
  (so ``/dev/zero`` or an endless pipe too).
* :data:`MAX_DEPTH`: mappings and lists nested deeper, aliases expanded.
* :data:`MAX_NODES`: more nodes, each alias counted as the whole node its anchor names
  (this stops "billion laughs" alias bombs).
* :data:`MAX_EXPANDED_CHARS`: more text once aliases are expanded, counting every scalar
  and the JSON Pointer of every node (the position tables hold one per node).

The limits are checked on the parser's event stream, which is produced without recursion,
before the document is composed into nodes (libyaml's composer recurses in C and would
crash on deep nesting) or expanded into plain data.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aimc.diagnostics import MAX_EXCERPT, Diagnostic, excerpt
from aimc.errors import ValidationFailed

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "escape_pointer",
    "load_document",
    "pointer",
    "read_bytes",
    "read_document",
]

Position = tuple[int, int]

#: Largest file aimc reads, in bytes (1 MiB); recipes and hardware profiles are a few KiB.
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists, aliases expanded (a recipe needs about 5; data
#: nested 100 deep is still read).
MAX_DEPTH = 128
#: Most nodes (scalars, mappings, lists) in one document, each alias expanded.
MAX_NODES = 20_000
#: Most characters in one document once aliases are expanded: every scalar plus the JSON
#: Pointer of every node (16 Mi).
MAX_EXPANDED_CHARS = 16 * 1024 * 1024


def escape_pointer(token: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*parts: str | int) -> str:
    """A JSON Pointer from its reference tokens (``pointer("args", "a/b")``: ``/args/a~1b``)."""
    return "".join(f"/{escape_pointer(p)}" for p in parts)


@dataclass(frozen=True)
class Document:
    """One loaded YAML file.

    Attributes:
        path: Display path of the file.
        data: The document as plain Python data.
        sha256: Hex digest of the file's bytes.
        values: JSON Pointer -> 1-based (line, column) of the value.
        keys: JSON Pointer -> 1-based (line, column) of the mapping key that holds it.
    """

    path: str
    data: Any
    sha256: str
    values: Mapping[str, Position] = field(default_factory=dict)
    keys: Mapping[str, Position] = field(default_factory=dict)

    def position(self, pointer: str, *, key: bool = False) -> Position:
        """Where ``pointer`` is in the file; the nearest enclosing value if it is absent.

        Args:
            pointer: A JSON Pointer into :attr:`data`.
            key: Point at the mapping key rather than the value (for unknown keys).
        """
        if key and pointer in self.keys:
            return self.keys[pointer]
        while pointer:
            if pointer in self.values:
                return self.values[pointer]
            pointer = pointer.rsplit("/", 1)[0]
        return self.values.get("", (1, 1))

    def diagnostic(
        self,
        pointer: str,
        message: str,
        *,
        key: bool = False,
        hint: str | None = None,
        rule: str = "schema",
        severity: str = "error",
    ) -> Diagnostic:
        """A diagnostic at ``pointer`` in this document."""
        line, column = self.position(pointer, key=key)
        return Diagnostic(
            path=self.path,
            line=line,
            column=column,
            message=message,
            pointer=pointer,
            severity="warning" if severity == "warning" else "error",
            rule=rule,
            hint=hint,
        )


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _fail(path: str, line: int, column: int, message: str, hint: str | None = None) -> NoReturn:
    raise ValidationFailed(
        [Diagnostic(path=path, line=line, column=column, message=message, rule="yaml", hint=hint)]
    )


def _decode(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8", errors="replace")
        line, column = _offset_position(good, len(good))
        _fail(path, line, column, f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})")
    raise AssertionError("unreachable")


def _limit_messages(aliases: bool) -> tuple[str, str]:
    """What to say when the node or the text limit is crossed."""
    if aliases:
        return (
            f"YAML aliases expand to more than {MAX_NODES} nodes",
            f"YAML aliases expand to more than {MAX_EXPANDED_CHARS // 2**20} MiB of text",
        )
    return (
        f"YAML document has more than {MAX_NODES} nodes",
        f"YAML document expands to more than {MAX_EXPANDED_CHARS // 2**20} MiB of text",
    )


# The message predates the limit (it named Python's recursion limit); the hint says the limit.
_DEPTH_MESSAGE = "YAML document is nested too deeply"
_DEPTH_HINT = f"aimc reads at most {MAX_DEPTH} levels of nested mappings and lists"
_TEXT_HINT = "counting every key and value and the path to each, with aliases expanded"


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


def _check_limits(text: str, path: str) -> None:
    """Refuse a document over the depth, node or text limits, before it is composed.

    Walks the parser's events (no recursion) and keeps, for every anchor, the size of the
    node it names, so that an alias costs what expanding it would.

    Raises:
        ValidationFailed: At the event where a limit was crossed.
        YAMLError: The text is not YAML (the composer would say the same).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        MappingStartEvent,
        NodeEvent,
        ScalarEvent,
    )

    nodes = chars = pointers = 0
    aliases = False
    anchors: dict[str, _Size | None] = {}  # None: the anchored node is still open
    stack: list[_Open] = []
    documents = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                return  # the composer reports the second document without reading it
            continue
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            n, c, p = done.before
            size = _Size(
                nodes - n,
                chars - c,
                pointers - p - (nodes - n) * done.pointer,
                done.deepest - done.level + 1,
            )
            if done.anchor is not None and anchors.get(done.anchor, size) is None:
                anchors[done.anchor] = size
            if stack:
                stack[-1].deepest = max(stack[-1].deepest, done.deepest)
            continue
        if not isinstance(event, NodeEvent):
            continue
        parent = stack[-1] if stack else None
        value: str = event.value if isinstance(event, ScalarEvent) else ""
        pointer = 0
        if parent is not None:
            if not parent.is_map:
                token = len(str(parent.children))
            elif parent.children % 2 == 0:  # a key: its pointer is the one of its value
                token = len(escape_pointer(value))
                parent.key = token
            else:
                token = parent.key
            pointer = parent.pointer + 1 + token
            parent.children += 1
        level = len(stack)
        if isinstance(event, AliasEvent):
            aliases = True
            name = event.anchor
            if name in anchors and anchors[name] is None:
                _fail(
                    path,
                    *_at(event),
                    f"YAML alias {excerpt(name)} refers to a node that contains it",
                )
            size = anchors.get(name) or _UNKNOWN  # undefined: the composer says so
        elif isinstance(event, CollectionStartEvent):
            size = _OPENING
        else:
            size = _Size(1, len(value), 0, 0)
        if level + size.height > MAX_DEPTH:
            _fail(path, *_at(event), _DEPTH_MESSAGE, hint=_DEPTH_HINT)
        nodes += size.nodes
        chars += size.chars
        pointers += size.pointers + size.nodes * pointer
        if nodes > MAX_NODES:
            _fail(path, *_at(event), _limit_messages(aliases)[0])
        if chars + pointers > MAX_EXPANDED_CHARS:
            _fail(path, *_at(event), _limit_messages(aliases)[1], hint=_TEXT_HINT)
        if parent is not None and level + size.height > parent.deepest:
            parent.deepest = level + size.height
        if size is _OPENING:
            if event.anchor is not None:
                anchors[event.anchor] = None
            stack.append(
                _Open(
                    anchor=event.anchor,
                    is_map=isinstance(event, MappingStartEvent),
                    level=level + 1,
                    pointer=pointer,
                    before=(nodes - 1, chars, pointers - pointer),
                    deepest=level + 1,
                )
            )
        elif event.anchor is not None and not isinstance(event, AliasEvent):
            anchors[event.anchor] = size


@dataclass
class _Budget:
    """Nodes :func:`_plain` may still produce: a second guard behind :func:`_check_limits`."""

    nodes: int = MAX_NODES


#: The largest integer aimc reads (a signed 64-bit one); a larger one is a diagnostic, so
#: no stage ever meets an integer that overflows a float or Python's int-to-text limit.
MAX_INT = 2**63 - 1


def _big(value: Any) -> bool:
    return type(value) is int and not -MAX_INT - 1 <= value <= MAX_INT


def _scalar(node: Any, construct: Any, path: str) -> Any:
    """The value of a scalar node; a value its tag cannot take is a diagnostic."""
    try:
        value = construct(node)
        if _big(value):
            raise OverflowError(f"integers are at most {MAX_INT} (2**63 - 1) in size")
        return value
    except (ValueError, LookupError, TypeError, ArithmeticError) as exc:
        if str(node.tag).endswith(":timestamp"):
            # Looks like a date but is none (2024-13-45): keep the text, as for real dates.
            return str(node.value)
        kind = str(node.tag).rsplit(":", 1)[-1]
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if kind == "int" and len(str(node.value)) > 18:  # beyond MAX_INT, or int()'s limit
            reason = f"integers are at most {MAX_INT} (2**63 - 1) in size"
        _fail(
            path,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            f"{excerpt(str(node.value))} is not a valid {kind}",
            hint=reason,
        )


def _plain(
    node: Any,
    pointer: str,
    values: dict[str, Position],
    keys: dict[str, Position],
    path: str,
    construct: Any,
    budget: _Budget,
    depth: int = 0,
) -> Any:
    """Turn a composed YAML node into plain data, recording every position."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    where = (node.start_mark.line + 1, node.start_mark.column + 1)
    budget.nodes -= 1
    if budget.nodes < 0:
        _fail(path, *where, _limit_messages(aliases=True)[0])
    values[pointer] = where
    if isinstance(node, (MappingNode, SequenceNode)) and depth >= MAX_DEPTH:
        _fail(path, *where, _DEPTH_MESSAGE, hint=_DEPTH_HINT)
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        first: dict[str, Position] = {}
        for key_node, value_node in node.value:
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.tag == "tag:yaml.org,2002:merge":
                _fail(path, *where, "merge keys (<<) are not supported", hint="repeat the keys")
            if isinstance(key_node, (MappingNode, SequenceNode)):
                what = "a mapping" if isinstance(key_node, MappingNode) else "a list"
                _fail(path, *where, f"mapping key is {what}, not a string")
            key = _scalar(key_node, construct, path)
            if not isinstance(key, str):
                _fail(
                    path,
                    *where,
                    f"mapping key {excerpt(key)} is not a string",
                    hint="quote the key",
                )
            if key in first:
                _fail(
                    path,
                    *where,
                    # The quotes users know from libyaml, unless the key is too long to quote.
                    f'found duplicate key "{key}"'
                    if len(key) <= MAX_EXCERPT
                    else f"found duplicate key {excerpt(key)}",
                    hint=f"first defined at line {first[key][0]}",
                )
            first[key] = where
            child = f"{pointer}/{escape_pointer(key)}"
            keys[child] = where
            out[key] = _plain(value_node, child, values, keys, path, construct, budget, depth + 1)
        return out
    if isinstance(node, SequenceNode):
        return [
            _plain(item, f"{pointer}/{i}", values, keys, path, construct, budget, depth + 1)
            for i, item in enumerate(node.value)
        ]
    value = _scalar(node, construct, path)
    if isinstance(value, (datetime.date, datetime.datetime)):
        # YAML 1.1 timestamps: keep the text the user wrote so a string schema accepts it.
        return str(node.value)
    if isinstance(value, (bytes, bytearray)):
        return str(node.value)
    return value


#: Tags the fast path turns into values itself (anything else goes the composer's way).
_FAST_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "null", "timestamp")
)


@functools.cache
def _plain_resolvers() -> tuple[dict[Any, list[tuple[str, Any]]], Any]:
    """The implicit resolvers (first character -> [(tag, regexp)]) and the constructor of
    a fresh safe loader: those the composer uses for a document without a %YAML directive."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    table = {k: list(v) for k, v in yaml.resolver.versioned_resolver.items()}
    return table, yaml.constructor


def _fast_scalar(event: Any) -> tuple[bool, Any]:
    """(True, value) of a scalar event as the composer and :func:`_plain` would make it, or
    (False, None) where only they can say (an unusual tag, a value its tag cannot take).
    A date's value is its text, as :func:`_plain` keeps it (but a date is no key: see
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
        return True, value  # _plain keeps the text of dates
    from ruamel.yaml.nodes import ScalarNode

    try:
        made = constructor.yaml_constructors[tag](
            constructor, ScalarNode(tag, value, start_mark=event.start_mark)
        )
    except (ValueError, LookupError, TypeError, ArithmeticError):
        return False, None
    return (False, None) if _big(made) else (True, made)


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


def _fast_plain(text: str) -> tuple[Any, dict[str, Position], dict[str, Position]] | None:
    """The data and positions of a plain document in one pass over the parser's events, or
    None when the document needs the careful path (:func:`_check_limits`, the composer,
    :func:`_plain`): anchors, aliases, tags, directives, merge or duplicate or non-string
    keys, more than one document, or anything near a limit. That path also reports every
    error, so this one never does; it gives the same data and positions (tested)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        DocumentStartEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    values: dict[str, Position] = {}
    keys: dict[str, Position] = {}
    # Open collections: [container, its pointer, pending key (mappings), its key position].
    stack: list[list[Any]] = []
    root: Any = None
    done = False
    nodes = budget = 0
    limit_nodes, limit_text, limit_depth = MAX_NODES // 2, MAX_EXPANDED_CHARS // 2, MAX_DEPTH // 2
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, DocumentStartEvent):
            if done or event.version is not None or event.tags:
                return None
            continue
        if isinstance(event, CollectionEndEvent):
            finished = stack.pop()
            if isinstance(finished[0], dict) and finished[2] is not None:
                return None
            if not stack:
                done = True
            continue
        if isinstance(event, AliasEvent):
            return None
        if not isinstance(event, (ScalarEvent, MappingStartEvent, SequenceStartEvent)):
            continue
        if event.anchor is not None or event.tag is not None or done:
            return None
        where = (event.start_mark.line + 1, event.start_mark.column + 1)
        parent = stack[-1] if stack else None
        if isinstance(event, ScalarEvent):
            ok, value = _fast_scalar(event)
            if not ok:
                return None
            budget += len(event.value)
        else:
            value = {} if isinstance(event, MappingStartEvent) else []
        if parent is None:
            pointer = ""
        elif isinstance(parent[0], dict):
            if parent[2] is None:  # a key
                if not isinstance(event, ScalarEvent) or not _fast_key(event):
                    return None
                if value in parent[0]:
                    return None
                parent[2], parent[3] = value, where
                nodes += 1
                continue
            pointer = f"{parent[1]}/{escape_pointer(parent[2])}"
            keys[pointer] = parent[3]
            parent[0][parent[2]] = value
            parent[2] = None
        else:
            pointer = f"{parent[1]}/{len(parent[0])}"
            parent[0].append(value)
        values[pointer] = where
        nodes += 1
        budget += len(pointer)
        if nodes > limit_nodes or budget > limit_text or len(stack) >= limit_depth:
            return None
        if isinstance(value, (dict, list)) and not isinstance(event, ScalarEvent):
            stack.append([value, pointer, None, None])
        if parent is None:
            root = value
            if not stack:
                done = True
    if not done:
        return None
    return root, values, keys


def load_document(raw: bytes, path: str) -> Document:
    """Parse one YAML document.

    Args:
        raw: The file's bytes.
        path: How to name the file in diagnostics.

    Raises:
        ValidationFailed: With one ``yaml`` diagnostic where the text is not one YAML document.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    if len(raw) > MAX_FILE_BYTES:
        _fail(
            path,
            1,
            1,
            f"file is larger than {MAX_FILE_BYTES // 2**20} MiB",
            hint=f"aimc reads files of at most {MAX_FILE_BYTES} bytes",
        )
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, path)
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        _fail(path, 1, 1, "file is empty: expected a YAML mapping")
    try:
        fast = _fast_plain(text)
    except YAMLError:
        fast = None  # the careful path says where
    if fast is not None:
        return Document(path=path, data=fast[0], sha256=digest, values=fast[1], keys=fast[2])
    yaml = YAML(typ="safe")  # libyaml's parser (ruamel.yaml.clib) when installed
    try:
        _check_limits(text, path)
        node = yaml.compose(text)
        if node is None:
            _fail(path, 1, 1, "file is empty: expected a YAML mapping")
        values: dict[str, Position] = {}
        keys: dict[str, Position] = {}
        data = _plain(node, "", values, keys, path, yaml.constructor.construct_object, _Budget())
    except ReaderError as exc:
        line, column = _offset_position(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        _fail(path, line, column, f"unacceptable character U+{ord(char):04X} in YAML text")
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "found another document" in problem:
            problem = "more than one YAML document in the file"
        hint = None
        start = exc.context_mark
        if (
            start is not None
            and exc.context
            and (start.line, start.column) != (line - 1, column - 1)
        ):
            hint = (
                f"{exc.context.strip()} that starts at line {start.line + 1}, "
                f"column {start.column + 1}"
            )
        _fail(path, line, column, f"YAML syntax error: {problem}", hint=hint)
    except YAMLError as exc:
        _fail(path, 1, 1, f"YAML error: {str(exc).splitlines()[0]}")
    except RecursionError:
        _fail(path, 1, 1, _DEPTH_MESSAGE, hint=_DEPTH_HINT)
    return Document(path=path, data=data, sha256=digest, values=values, keys=keys)


def read_bytes(file: Path, display: str | None = None) -> bytes:
    """A file's bytes, at most one more than :data:`MAX_FILE_BYTES` (so an endless file,
    ``/dev/zero`` or a pipe, is refused as quickly as a large one by :func:`load_document`).

    Raises:
        ValidationFailed: With one ``io`` diagnostic when the file cannot be read.
    """
    # O_NONBLOCK: opening a pipe nobody writes to must not hang (it is refused below).
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(file, display, exc.strerror or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            what = "Is a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise _unreadable(file, display, what)
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _unreadable(file, display, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _unreadable(file: Path, display: str | None, why: str) -> ValidationFailed:
    return ValidationFailed(
        [
            Diagnostic(
                path=display or str(file),
                line=0,
                column=0,
                rule="io",
                message=f"cannot read file: {why}",
            )
        ]
    )


def read_document(file: Path, display: str | None = None) -> Document:
    """Read and parse a file; an unreadable or too large file becomes a diagnostic too."""
    return load_document(read_bytes(file, display), display or str(file))
