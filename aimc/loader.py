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
from typing import Any

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


def _fail(path: str, line: int, column: int, message: str, hint: str | None = None) -> None:
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
    node: Any, pointer: str, values: dict[str, Position], keys: dict[str, Position], path: str
) -> Any:
    """Convert ruamel's round-trip objects to plain data, recording positions."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for k, v in node.items():
            kline, kcol = node.lc.key(k)
            if not isinstance(k, str):
                _fail(
                    path,
                    kline + 1,
                    kcol + 1,
                    f"mapping key {k!r} is not a string",
                    hint="quote the key",
                )
            child = f"{pointer}/{escape_pointer(k)}"
            keys[child] = (kline + 1, kcol + 1)
            vline, vcol = node.lc.value(k)
            values[child] = (vline + 1, vcol + 1)
            out[str(k)] = _plain(v, child, values, keys, path)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            child = f"{pointer}/{i}"
            iline, icol = node.lc.item(i)
            values[child] = (iline + 1, icol + 1)
            items.append(_plain(v, child, values, keys, path))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        # YAML 1.1 timestamps: keep the text the user wrote so a string schema accepts it.
        return node.isoformat()
    return node


def load_document(raw: bytes, path: str) -> Document:
    """Parse one YAML document.

    Args:
        raw: The file's bytes.
        path: How to name the file in diagnostics.

    Raises:
        ValidationFailed: With one ``yaml`` diagnostic where the text is not one YAML document.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, path)
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        _fail(path, 1, 1, "file is empty: expected a YAML mapping")
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except ReaderError as exc:
        line, column = _offset_position(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        _fail(path, line, column, f"unacceptable character U+{ord(char):04X} in YAML text")
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in problem:
            problem = problem.split(" with value")[0]
            first = exc.context_mark
            hint = f"first defined at line {first.line + 1}" if first else None
            _fail(path, line, column, problem, hint=hint)
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
    if not isinstance(tree, (CommentedMap, CommentedSeq)) and tree is None:
        _fail(path, 1, 1, "file is empty: expected a YAML mapping")
    values: dict[str, Position] = {"": (1, 1)}
    keys: dict[str, Position] = {}
    if isinstance(tree, (CommentedMap, CommentedSeq)):
        values[""] = (tree.lc.line + 1, tree.lc.col + 1)
    try:
        data = _plain(tree, "", values, keys, path)
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
