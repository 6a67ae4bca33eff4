"""Progress notes on stderr, shaped by LOG_LEVEL and LOG_FORMAT (AIM Engine API).

``LOG_FORMAT`` is ``json`` (the default: one JSON object a line, for log collectors) or
``text`` (``note: ...``); ``LOG_LEVEL`` (default ``INFO``) hides notes below it
(``WARNING`` and above silence them). Results go to stdout and are not affected. Both are
read and validated by :mod:`aimc.settings` (an invalid value: one warning, the default).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from aimc.settings import LOG_LEVELS, setting

__all__ = ["note"]


def note(message: str, level: str = "INFO", **fields: Any) -> None:
    """Report one step or automatic choice on stderr (secrets masked); ``fields`` are
    added to the JSON record (``LOG_FORMAT=json``), e.g. ``progress={...}``."""
    if LOG_LEVELS[level] < LOG_LEVELS[setting("log_level")]:
        return
    from aimc.safety import mask

    message = mask(message)
    if setting("log_format") == "text":
        from aimc.templating import one_line

        click.echo(f"note: {one_line(message)}", err=True)  # a path cannot start a line
        return
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    click.echo(
        json.dumps(
            {
                "timestamp": now.replace("+00:00", "Z"),
                "level": level,
                "logger": "aimc",
                "message": message,
                **fields,
            }
        ),
        err=True,
    )
