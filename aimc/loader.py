"""Load stage: YAML bytes -> plain data plus a JSON-Pointer -> (line, column) table.

Takes the bytes of one file and its display path; hands on a :class:`Document` (plain
``dict``/``list``/scalars, the positions of every key and value, the file's sha256) or
raises :class:`~aimc.errors.ValidationFailed` with one diagnostic at the exact place where
the text stops being a single valid YAML document (syntax error, duplicate key, bad bytes,
empty file). Pure: reading the file is the caller's job (:func:`read_document` does both).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aimc.diagnostics import Diagnostic
from aimc.errors import ValidationFailed

__all__ = ["Document", "escape_pointer", "load_document", "read_document"]

Position = tuple[int, int]


def escape_pointer(token: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


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


def _plain(
    node: Any,
    pointer: str,
    values: dict[str, Position],
    keys: dict[str, Position],
    path: str,
    construct: Any,
) -> Any:
    """Turn a composed YAML node into plain data, recording every position."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    values[pointer] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        first: dict[str, Position] = {}
        for key_node, value_node in node.value:
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.tag == "tag:yaml.org,2002:merge":
                _fail(path, *where, "merge keys (<<) are not supported", hint="repeat the keys")
            key = (
                construct(key_node)
                if not isinstance(key_node, (MappingNode, SequenceNode))
                else None
            )
            if not isinstance(key, str):
                _fail(path, *where, f"mapping key {key!r} is not a string", hint="quote the key")
            if key in first:
                _fail(
                    path,
                    *where,
                    f'found duplicate key "{key}"',
                    hint=f"first defined at line {first[key][0]}",
                )
            first[key] = where
            child = f"{pointer}/{escape_pointer(key)}"
            keys[child] = where
            out[key] = _plain(value_node, child, values, keys, path, construct)
        return out
    if isinstance(node, SequenceNode):
        return [
            _plain(item, f"{pointer}/{i}", values, keys, path, construct)
            for i, item in enumerate(node.value)
        ]
    value = construct(node)
    if isinstance(value, (datetime.date, datetime.datetime)):
        # YAML 1.1 timestamps: keep the text the user wrote so a string schema accepts it.
        return str(node.value)
    if isinstance(value, (bytes, bytearray)):
        return str(node.value)
    return value


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

    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, path)
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        _fail(path, 1, 1, "file is empty: expected a YAML mapping")
    yaml = YAML(typ="safe")  # libyaml's parser (ruamel.yaml.clib) when installed
    try:
        node = yaml.compose(text)
        if node is None:
            _fail(path, 1, 1, "file is empty: expected a YAML mapping")
        values: dict[str, Position] = {}
        keys: dict[str, Position] = {}
        data = _plain(node, "", values, keys, path, yaml.constructor.construct_object)
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
        _fail(path, 1, 1, "YAML document is nested too deeply")
    return Document(path=path, data=data, sha256=digest, values=values, keys=keys)


def read_document(file: Path, display: str | None = None) -> Document:
    """Read and parse a file; an unreadable file becomes a diagnostic too."""
    name = display or str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ValidationFailed(
            [
                Diagnostic(
                    path=name,
                    line=0,
                    column=0,
                    rule="io",
                    message=f"cannot read file: {exc.strerror or exc}",
                )
            ]
        ) from None
    return load_document(raw, name)
