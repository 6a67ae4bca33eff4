"""Access to the data files shipped inside the package (recipes, schemas, templates)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["path", "read_text"]


def path(*parts: str) -> Path:
    """Filesystem path of a shipped resource folder or file (the package is never zipped)."""
    return Path(str(resources.files("aimc").joinpath(*parts)))


def read_text(*parts: str) -> str:
    """Text of a shipped resource file."""
    return resources.files("aimc").joinpath(*parts).read_text(encoding="utf-8")
