"""`pip install .` gives a working tool outside the checkout: data files ship in the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel and installed into a fresh target folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # setuptools builds in the source tree: keep the checkout clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("aimc", "aim_launcher"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp.glob("aimc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "aimc/recipes/models/Qwen/Qwen3-32B.yaml" in names
    assert "aimc/schemas/recipe.schema.json" in names
    assert "aimc/backends/vllm.json" in names
    assert "aimc/recipes/index.json" in names and "aimc/templates/launch.sh.j2" in names
    assert "aim_launcher/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    target = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _run(installed: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("AIMC_RECIPES", None)
    return subprocess.run(
        [sys.executable, "-m", "aimc", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_installed_package_is_the_one_that_runs(installed: Path, tmp_path: Path) -> None:
    code = "import aimc, sys; print(aimc.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(installed)},
    ).stdout
    assert out.startswith(str(installed))


def test_installed_tool_lists_and_validates_the_catalog(installed: Path, tmp_path: Path) -> None:
    listed = _run(installed, tmp_path, "list", "models", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    models = [r["model"] for r in json.loads(listed.stdout)]
    assert "Qwen/Qwen3-32B" in models and len(models) >= 10
    checked = _run(installed, tmp_path, "validate")
    assert checked.returncode == 0, checked.stdout
