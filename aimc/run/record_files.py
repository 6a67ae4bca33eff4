"""Where the run records live (``$AIMC_STATE_DIR/runs/NAME.json``) and which files hold
them, read without the records' own code (:mod:`aimc.run.runs`).

``compile`` asks whether any run is recorded before it checks that no server runs from
its output folder: with none (the usual case) it loads neither :mod:`aimc.run.runs` nor
:class:`~aimc.core.records.RunRecord` (~3 ms of its start-up).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from aimc.core.log import note
from aimc.core.settings import setting

__all__ = ["record_files", "runs_dir", "state_dir"]


def state_dir() -> Path:
    """Where run records live: :attr:`aimc.core.settings.Settings.state_dir` (``$AIMC_STATE_DIR``,
    else ``$XDG_STATE_HOME/aimc``, else ``~/.local/state/aimc``)."""
    return setting("state_dir")


def runs_dir() -> Path:
    """The folder of the run records."""
    return state_dir() / "runs"


def record_files() -> Iterator[Path]:
    """The record files (``*.json`` in :func:`runs_dir`), by name; none when the folder is
    missing, and one warning line when it cannot be read."""
    runs = runs_dir()
    try:
        names = sorted(entry.name for entry in os.scandir(runs))
    except FileNotFoundError:
        return
    except OSError as exc:
        note(f"cannot read run records in {runs}: {exc.strerror or exc}", level="WARNING")
        return
    for name in names:
        if name.endswith(".json"):
            yield runs / name
