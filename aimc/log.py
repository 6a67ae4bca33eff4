"""Progress notes on stderr, shaped by LOG_LEVEL and LOG_FORMAT (AIM Engine API).

``LOG_FORMAT`` is ``json`` (the default: one JSON object a line, for log collectors) or
``text`` (``note: ...``); ``LOG_LEVEL`` (default ``INFO``) hides notes below it
(``WARNING`` and above silence them). Results go to stdout and are not affected.
"""

from __future__ import annotations

import datetime
import json
import os

import click

__all__ = ["note"]

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


def note(message: str, level: str = "INFO") -> None:
    """Report one step or automatic choice on stderr (secrets masked)."""
    threshold = _LEVELS.get(os.environ.get("LOG_LEVEL", "INFO").upper(), 20)
    if _LEVELS[level] < threshold:
        return
    from aimc.safety import mask

    message = mask(message)
    if os.environ.get("LOG_FORMAT", "json").lower() == "text":
        click.echo(f"note: {message}", err=True)
        return
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    click.echo(
        json.dumps(
            {
                "timestamp": now.replace("+00:00", "Z"),
                "level": level,
                "logger": "aimc",
                "message": message,
            }
        ),
        err=True,
    )
