"""Build hook: the catalog, schemas and templates live at the repository's top level
(``recipes/``, ``schemas/``, ``templates/``); the wheel carries them inside the package as
``aimc/_data/<name>/`` so that an installed aimc never reads a checkout. Everything else
is configured in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("recipes", "schemas", "templates")
SUFFIXES = (".yaml", ".json", ".j2", ".md")


class BuildPyWithData(build_py):  # type: ignore[misc]
    """``build_py`` that also copies the top-level data folders into ``aimc/_data``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders in place
        here = Path(__file__).resolve().parent
        for name in DATA:
            target = Path(self.build_lib) / "aimc" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            for source in sorted((here / name).rglob("*")):
                if source.is_file() and source.suffix in SUFFIXES:
                    dest = target / source.relative_to(here / name)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithData})
