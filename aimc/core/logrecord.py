"""The shape of one JSON log record on stderr (``LOG_FORMAT=json``), written once.

Standard library only: :mod:`aimc.core.settings` writes its own warnings with it (it cannot
import :mod:`aimc.core.log`, which reads the settings), :mod:`aimc.core.log` everything else.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

__all__ = ["json_record"]


def json_record(level: str, message: str, **fields: Any) -> str:
    """One JSON log record (one line): timestamp (UTC, milliseconds), level, logger,
    message, then ``fields`` (those that are None left out)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    body = {
        "timestamp": now.replace("+00:00", "Z"),
        "level": level,
        "logger": "aimc",
        "message": message,
        **{key: value for key, value in fields.items() if value is not None},
    }
    return json.dumps(body, ensure_ascii=False)
