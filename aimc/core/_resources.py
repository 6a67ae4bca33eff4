"""Where aimc's data files are: the catalog, the JSON Schemas, the templates, the backends.

``recipes/``, ``schemas/`` and ``templates/`` sit at the top of the repository, beside the
package, so that a recipe repository can copy the layout. An installed wheel carries them
inside the package as ``aimc/_data/<name>/`` (``setup.py`` copies them at build time) and
reads only those; an editable install or a source checkout reads the top-level folders in
place. ``backends/`` (generated vocabularies) lives in the package itself.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["DATA", "path", "read_text"]

#: Folders kept at the repository's top level (``aimc/_data/`` in a wheel).
DATA = ("recipes", "schemas", "templates")


@functools.cache
def _base(folder: str) -> Path:
    # the package's folder (never zipped), as importlib.resources.files("aimc") gives it,
    # without that module's imports (tempfile, zipfile) on every command's start
    package = Path(__file__).parent.parent
    if folder not in DATA:
        return package
    installed = package / "_data"
    if (installed / folder).is_dir():
        return installed
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / folder).is_dir():
        return checkout
    raise FileNotFoundError(f"aimc's {folder}/ folder is missing from {package}")


def path(*parts: str) -> Path:
    """Filesystem path of a shipped data folder or file (the package is never zipped)."""
    return _base(parts[0]).joinpath(*parts)


def read_text(*parts: str) -> str:
    """Text of a shipped data file."""
    return path(*parts).read_text(encoding="utf-8")
