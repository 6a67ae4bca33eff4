"""Load stage: YAML bytes -> plain data plus a JSON-Pointer -> (line, column) table.

Takes the bytes of one file and its display path; hands on a :class:`Document` (plain
``dict``/``list``/scalars, the positions of every key and value, the file's sha256) or
raises :class:`~aimc.core.errors.ValidationFailed` with one diagnostic at the exact place where
the text stops being a single valid YAML document (syntax error, duplicate key, bad bytes,
empty file). Pure: reading the file is the caller's job (:func:`read_document` does both).

Hostile input is refused before it can cost much time or memory, each time with one
diagnostic (rule ``yaml``) where the limit was crossed: :mod:`aimc.core.yaml_limits` holds the
limits (:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_NODES`,
:data:`MAX_EXPANDED_CHARS`, :data:`MAX_INT`), :mod:`aimc.core.yaml_walk` checks them on
the parser's events before the document is composed. A plain document (no anchors, tags or
directives, far from every limit) is read in one pass instead (:mod:`aimc.core.yaml_fast`),
with the same result.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aimc.core.diagnostics import (
    MAX_EXCERPT,
    Diagnostic,
    Position,
    escape_pointer,
    excerpt,
    pointer,
)
from aimc.core.digest import sha256
from aimc.core.errors import ValidationFailed
from aimc.core.yaml_cache import keep, kept
from aimc.core.yaml_fast import NOT_FINITE, ODD_IN_YAML11, fast_plain
from aimc.core.yaml_limits import (
    DEPTH_HINT,
    DEPTH_MESSAGE,
    MAX_DEPTH,
    MAX_EXPANDED_CHARS,
    MAX_FILE_BYTES,
    MAX_INT,
    MAX_NODES,
    big_int,
    limit_messages,
    refuse,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_FILE_BYTES",
    "MAX_INT",
    "MAX_NODES",
    "Document",
    "escape_pointer",
    "load_document",
    "pointer",
    "read_bytes",
    "read_document",
]


@dataclass(frozen=True)
class Document:
    """One loaded YAML file.

    Attributes:
        path: Display path of the file.
        data: The document as plain Python data.
        sha256: Hex digest of the file's bytes.
        values: JSON Pointer -> 1-based (line, column) of the value.
        keys: JSON Pointer -> 1-based (line, column) of the mapping key that holds it.
        yaml11_alike: True when the loader saw that every plain scalar (value or key)
            reads the same to a YAML 1.1 reader (:func:`aimc.core.yaml11.alike11`);
            False when it did not tell (``lint/yaml-1.1`` then looks itself).
        finite: True when the loader saw that every number is finite (no ``.inf``,
            ``.nan``, ``1e400``); False when it did not tell (the schema check looks).
            Both describe :attr:`data` as loaded: a document whose data is changed
            afterwards is made with neither (their default).
    """

    path: str
    data: Any
    sha256: str
    values: Mapping[str, Position] = field(default_factory=dict)
    keys: Mapping[str, Position] = field(default_factory=dict)
    yaml11_alike: bool = field(default=False, compare=False)
    finite: bool = field(default=False, compare=False)

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


def _decode(raw: bytes, path: str) -> str:
    """UTF-8 without a leading BOM (not the ``utf-8-sig`` codec: one more import on each run)."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8", errors="replace").removeprefix("\ufeff")
        line, column = _offset_position(good, len(good))
        refuse(path, line, column, f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})")


def _scalar(node: Any, construct: Any, path: str) -> Any:
    """The value of a scalar node; a value its tag cannot take is a diagnostic."""
    try:
        value = construct(node)
        if big_int(value):
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
        refuse(
            path,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            f"{excerpt(str(node.value))} is not a valid {kind}",
            hint=reason,
        )


def _where(node: Any) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Composer:
    """The careful path's last step: a composed YAML node -> plain data, every position
    recorded (:attr:`values`, :attr:`keys`)."""

    def __init__(self, path: str, construct: Any) -> None:
        # Deferred: ruamel.yaml is imported only when a file is parsed (``aim-engine --help``
        # imports this module).
        from ruamel.yaml import nodes

        self.path = path
        self.construct = construct
        self.node_types = nodes
        self.values: dict[str, Position] = {}
        self.keys: dict[str, Position] = {}
        #: Nodes it may still produce: a second guard behind
        #: :func:`~aimc.core.yaml_walk.check_limits`.
        self.budget = MAX_NODES

    def plain(self, node: Any, pointer: str = "", depth: int = 0) -> Any:
        """Turn a composed YAML node into plain data, recording every position."""
        where = _where(node)
        self.budget -= 1
        if self.budget < 0:
            refuse(self.path, *where, limit_messages(aliases=True)[0])
        self.values[pointer] = where
        collection = (self.node_types.MappingNode, self.node_types.SequenceNode)
        if isinstance(node, collection) and depth >= MAX_DEPTH:
            refuse(self.path, *where, DEPTH_MESSAGE, hint=DEPTH_HINT)
        if isinstance(node, self.node_types.MappingNode):
            return self._mapping(node, pointer, depth)
        if isinstance(node, self.node_types.SequenceNode):
            return [
                self.plain(item, f"{pointer}/{i}", depth + 1) for i, item in enumerate(node.value)
            ]
        value = _scalar(node, self.construct, self.path)
        if isinstance(value, (datetime.date, datetime.datetime)):
            # YAML 1.1 timestamps: keep the text the user wrote so a string schema accepts it.
            return str(node.value)
        if isinstance(value, (bytes, bytearray)):
            return str(node.value)
        return value

    def _mapping(self, node: Any, pointer: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, first)
            first[key] = _where(key_node)
            child = f"{pointer}/{escape_pointer(key)}"
            self.keys[child] = first[key]
            out[key] = self.plain(value_node, child, depth + 1)
        return out

    def _key(self, key_node: Any, first: Mapping[str, Position]) -> str:
        """A mapping key: a string, not a merge key, not one the mapping already has."""
        where = _where(key_node)
        if key_node.tag == "tag:yaml.org,2002:merge":
            refuse(self.path, *where, "merge keys (<<) are not supported", hint="repeat the keys")
        if isinstance(key_node, (self.node_types.MappingNode, self.node_types.SequenceNode)):
            what = "a mapping" if isinstance(key_node, self.node_types.MappingNode) else "a list"
            refuse(self.path, *where, f"mapping key is {what}, not a string")
        key = _scalar(key_node, self.construct, self.path)
        if not isinstance(key, str):
            refuse(
                self.path,
                *where,
                f"mapping key {excerpt(key)} is not a string",
                hint="quote the key",
            )
        if key in first:
            refuse(
                self.path,
                *where,
                # The quotes users know from libyaml, unless the key is too long to quote.
                f'found duplicate key "{key}"'
                if len(key) <= MAX_EXCERPT
                else f"found duplicate key {excerpt(key)}",
                hint=f"first defined at line {first[key][0]}",
            )
        return key


def load_document(raw: bytes, path: str, cached: bool = False) -> Document:
    """Parse one YAML document: in one pass when it is plain (:mod:`aimc.core.yaml_fast`), else
    the careful way (limits, composer, plain data), which reports every error.

    Args:
        raw: The file's bytes.
        path: How to name the file in diagnostics.
        cached: Take what was kept for the same bytes, and keep what is parsed
            (:mod:`aimc.core.yaml_cache`; what :func:`read_document` does).

    Raises:
        ValidationFailed: With one ``yaml`` diagnostic where the text is not one YAML document.
    """
    text, digest = _text(raw, path)
    parsed = kept(digest) if cached else None
    odd = ODD_IN_YAML11 | NOT_FINITE  # not told: a kept or carefully loaded document
    if parsed is None:
        fast = fast_plain(text)
        if fast is not None:
            parsed, odd = fast[:3], fast[3]
        else:
            parsed = _careful(text, path)
        if cached:
            keep(digest, parsed)
    data, values, keys = parsed
    return Document(path, data, digest, values, keys, not odd & ODD_IN_YAML11, not odd & NOT_FINITE)


def _text(raw: bytes, path: str) -> tuple[str, str]:
    """The file's text and sha256; a file too large, not UTF-8 or empty is refused."""
    if len(raw) > MAX_FILE_BYTES:
        refuse(
            path,
            1,
            1,
            f"file is larger than {MAX_FILE_BYTES // 2**20} MiB",
            hint=f"aimc reads files of at most {MAX_FILE_BYTES} bytes",
        )
    digest = sha256(raw).hexdigest()
    text = _decode(raw, path)
    if _blank(text):
        refuse(path, 1, 1, "file is empty: expected a YAML mapping")
    return text, digest


def _blank(text: str) -> bool:
    """Whether every line of ``text`` is blank or a comment: told by its first lines when
    one of them is neither (a recipe's second), else by all of them."""
    head = text[:_HEAD].splitlines()
    for line in head[:-1]:  # whole lines (the last may go on past the head)
        if line.strip() and not line.lstrip().startswith("#"):
            return False
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines())


#: Characters of a file :func:`_blank` looks at first.
_HEAD = 512


def _careful(text: str, path: str) -> tuple[Any, dict[str, Position], dict[str, Position]]:
    """The data and positions of any document: its limits checked on the parser's events
    (:func:`~aimc.core.yaml_walk.check_limits`), then composed and turned into plain data."""
    # Deferred: ruamel.yaml and the event walk are imported only when a file is parsed.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from aimc.core.yaml_walk import check_limits

    yaml = YAML(typ="safe")  # libyaml's parser (ruamel.yaml.clib) when installed
    try:
        check_limits(text, path)
        node = yaml.compose(text)
        if node is None:
            refuse(path, 1, 1, "file is empty: expected a YAML mapping")
        composer = _Composer(path, yaml.constructor.construct_object)
        data = composer.plain(node)
    except YAMLError as exc:
        _refuse_yaml_error(exc, text, path)
    except RecursionError:
        refuse(path, 1, 1, DEPTH_MESSAGE, hint=DEPTH_HINT)
    return data, composer.values, composer.keys


def _refuse_yaml_error(exc: Exception, text: str, path: str) -> NoReturn:
    """The diagnostic of ruamel.yaml's error: where the text stops being YAML."""
    from ruamel.yaml.error import MarkedYAMLError  # deferred: see _careful
    from ruamel.yaml.reader import ReaderError

    if isinstance(exc, ReaderError):
        line, column = _offset_position(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        refuse(path, line, column, f"unacceptable character U+{ord(char):04X} in YAML text")
    if isinstance(exc, MarkedYAMLError):
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
        refuse(path, line, column, f"YAML syntax error: {problem}", hint=hint)
    refuse(path, 1, 1, f"YAML error: {str(exc).splitlines()[0]}")


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
        info = os.fstat(fd)
        mode = info.st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            what = "Is a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise _unreadable(file, display, what)
        # A buffer of the file's size (and one byte, to see its end) first: a read into a
        # 1 MiB buffer costs a small recipe more than the rest of reading it.
        chunks, left, size = [], MAX_FILE_BYTES + 1, info.st_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, size))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            size = 1 << 16
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
    """Read and parse a file (through :mod:`aimc.core.yaml_cache`); an unreadable or too
    large file becomes a diagnostic too."""
    return load_document(read_bytes(file, display), display or str(file), cached=True)
