"""Everything aimc writes on stderr, shaped by LOG_FORMAT and LOG_LEVEL (AIM Engine API).

``LOG_FORMAT`` is ``json`` (the default) or ``text``. Under ``json`` every line aimc
writes on stderr is one JSON record (``timestamp``, ``level``, ``logger``, ``message``,
then fields such as ``code``, ``hint``, ``details``), for log collectors: notes, warnings,
errors with their hint and details (one record for one error), usage errors, the settings'
own warnings. An explicit ``LOG_FORMAT=json`` is the default, byte for byte (but the
timestamps). Under ``text`` they are lines for people: ``note: ...``, ``warning: ...``,
``error: ...`` and ``hint: ...``.

``LOG_LEVEL`` (default ``INFO``) hides notes below it (``WARNING`` and above silence
them); errors and warnings about the command itself are never hidden. Results go to
stdout and are not affected; under ``--format json`` an error is the JSON document on
stdout and is not repeated on stderr. A live status line on a terminal (the server's
start, a download) is not a log line and keeps its form. Both variables are read and
validated by :mod:`aimc.core.settings` (an invalid value: one warning, the default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from aimc.core.diagnostics import whole_line
from aimc.core.logrecord import json_record
from aimc.core.safety import mask
from aimc.core.settings import LOG_LEVELS, setting

__all__ = ["line", "note"]


def line(
    prefix: str,
    message: str,
    level: str,
    *,
    text: str | None = None,
    environ: Mapping[str, str] | None = None,
    **fields: Any,
) -> None:
    """Write one line on stderr, whatever ``LOG_LEVEL`` says (secrets masked): a JSON record
    of ``level`` with ``fields`` under ``LOG_FORMAT=json``, else ``PREFIX: message`` (one
    line: a path cannot start a line of its own) followed by the text fields that are
    given, ``hint`` as ``hint: ...``, ``details`` as an indented block; or, when given,
    ``text`` (already safe to print, e.g. a formatted diagnostic) instead of all that."""

    message = mask(message)
    texts = {k: mask(v) if isinstance(v, str) else v for k, v in fields.items()}
    if setting("log_format", environ) == "json":
        click.echo(json_record(level, message, **texts), err=True)
        return
    if text is not None:
        click.echo(mask(text), err=True)
        return
    click.echo(f"{prefix}: {whole_line(message)}", err=True)
    if texts.get("hint"):
        click.echo(f"hint: {whole_line(texts['hint'])}", err=True)
    if texts.get("details"):
        click.echo("details:", err=True)
        for text in str(texts["details"]).splitlines():
            click.echo(f"  {whole_line(text)}", err=True)


def note(message: str, level: str = "INFO", **fields: Any) -> None:
    """Report one step or automatic choice on stderr (secrets masked), unless
    ``LOG_LEVEL`` is above ``level``; ``fields`` are added to the JSON record
    (``LOG_FORMAT=json``), e.g. ``progress={...}``, and left out of the text line."""
    if LOG_LEVELS[level] < LOG_LEVELS[setting("log_level")]:
        return
    if setting("log_format") == "text":
        line("note", message, level)
        return
    line("note", message, level, **fields)
