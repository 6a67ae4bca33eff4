"""Reporters: rows and errors printed as table, JSON or YAML, chosen by ``--format``.

Under ``--format json`` every command prints exactly one JSON document on stdout (notes
and warnings go to stderr), in the AIM Engine response shapes of
``schemas/output.schema.json``:

- success: ``{"success": true, "data": ..., "message": "..."}`` (:func:`emit_result`,
  :func:`emit`);
- failure: ``{"success": false, "error": {"code", "message", "hint"?, "details"?},
  "timestamp"}`` (``hint`` and ``details`` only when there are)
  (:func:`print_error`), plus ``data`` when the command still has its result to give
  (``validate`` with errors, ``compile --check`` with differences).

``yaml`` prints the data alone. Keys keep the order the schema documents.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from aimc.core.diagnostics import format_text, whole_line
from aimc.core.errors import AimcError, ValidationFailed
from aimc.core.log import line
from aimc.core.safety import mask

if TYPE_CHECKING:
    from aimc.core.diagnostics import Diagnostic

__all__ = [
    "count",
    "dump",
    "emit",
    "emit_result",
    "print_diagnostics",
    "print_error",
    "set_format",
    "success",
    "table",
]

_state = {"format": "table"}


def set_format(fmt: str) -> None:
    """Remember the output format of the running command (for error output)."""
    _state["format"] = fmt


def count(n: int, noun: str) -> str:
    """``1 model``, ``2 models``: a number and its noun, for messages."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if value is None:
        return "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned text columns under an upper-case header."""
    cells = [[c.upper().replace("_", " ") for c in columns]]
    cells += [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _yaml(data: Any) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue().rstrip("\n")


#: format name -> function turning data into text
DUMPERS: dict[str, Callable[[Any], str]] = {
    "json": lambda data: json.dumps(data, indent=2, ensure_ascii=False),
    "yaml": _yaml,
}


def dump(data: Any, fmt: str) -> str:
    """``data`` as JSON or YAML text."""
    return DUMPERS[fmt](data)


def success(data: Any, message: str) -> dict[str, Any]:
    """The AIM Engine success response: ``{success: true, data, message}``."""
    return {"success": True, "data": data, "message": message}


def emit_result(data: Any, fmt: str, message: str) -> None:
    """Print a command's result as data: under ``json`` the success response (one JSON
    document), under ``yaml`` the data alone. Text formats are the command's own."""
    click.echo(dump(success(data, message) if fmt == "json" else data, fmt))


def emit(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str], message: str) -> None:
    """Print rows: a table of ``columns``, or all fields as JSON (the success response,
    with ``message``) / YAML."""
    if fmt == "table":
        click.echo(table(rows, columns) if rows else "(none)")
    else:
        emit_result(list(rows), fmt, message)


def print_error(exc: AimcError, data: Any = None) -> None:
    """Print a user error, once: the JSON error response on stdout under ``--format json``,
    else on stderr as :mod:`aimc.core.log` writes it (``LOG_FORMAT=json``, the default: one
    record with ``code``, ``hint`` and ``details``; ``text``: ``error: ...`` and
    ``hint: ...`` lines). The diagnostics of a :class:`~aimc.core.errors.ValidationFailed` come
    first, one a line (a record each under ``LOG_FORMAT=json``).

    Args:
        exc: The error.
        data: The command's result despite the error (``validate``'s report), added to
            the JSON error response as ``data``; text output leaves it to the command.

    Secrets are masked (:func:`aimc.core.safety.mask`) in every field of ``error``.
    """

    if _state["format"] == "json":
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        error = exc.to_json()
        if isinstance(exc, ValidationFailed):
            error["details"] = "\n".join(d.format() for d in exc.diagnostics)
        for key in ("message", "hint"):  # one line each; details may span lines
            if isinstance(error.get(key), str):
                error[key] = whole_line(error[key])
        body: dict[str, Any] = {
            "success": False,
            "error": {key: mask(value) for key, value in error.items()},
        }
        if data is not None:
            body["data"] = data
        body["timestamp"] = now.isoformat().replace("+00:00", "Z")
        click.echo(json.dumps(body, indent=2))
        return
    if isinstance(exc, ValidationFailed):
        print_diagnostics(exc.diagnostics)
    details = None if isinstance(exc, ValidationFailed) else exc.details
    line("error", exc.message, "ERROR", code=exc.code, hint=exc.hint, details=details)
    sys.stderr.flush()


def print_diagnostics(diagnostics: Sequence[Diagnostic], summary: bool = False) -> None:
    """Diagnostics on stderr: their text form, one a line (then, with ``summary``, the
    count line of :func:`aimc.core.diagnostics.format_text`), or one JSON record each under
    ``LOG_FORMAT=json`` (level ERROR or WARNING; path, line, column, pointer, rule, hint)."""

    if not diagnostics:
        return
    texts = format_text(diagnostics).splitlines() if summary else []
    for d in diagnostics:
        fields: dict[str, Any] = {"path": d.path, "line": d.line, "column": d.column}
        fields.update(pointer=d.pointer, rule=d.rule, hint=d.hint)
        line(d.severity, d.message, d.severity.upper(), text=d.format(), **fields)
    if summary:
        line("note", texts[-1], "INFO", text=texts[-1])
