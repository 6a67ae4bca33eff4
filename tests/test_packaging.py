"""`pip install .` gives a working tool outside the checkout: the top-level recipes/,
schemas/ and templates/ ship inside the wheel (aimc/_data/), and the installed tool reads
only those."""

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

#: What a build needs from the checkout (setuptools builds in the source tree).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
PACKAGES = ("aimc", "aim_launcher", "recipes", "schemas", "templates")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel from a copy of the checkout (which stays clean)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = tmp.glob("aimc-*.whl")
    return built


def test_the_wheel_carries_the_top_level_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "aimc/_data/recipes/models/Qwen/Qwen3-32B.yaml" in names
    assert "aimc/_data/recipes/index.json" in names
    assert "aimc/_data/schemas/recipe.schema.json" in names
    assert "aimc/_data/templates/launch.sh.j2" in names
    assert "aimc/backends/vllm.json" in names
    assert "aim_launcher/__init__.py" in names
    assert not any(n.startswith(("tests/", "recipes/", "schemas/", "templates/")) for n in names)
    shipped = {p.relative_to(ROOT).as_posix() for d in PACKAGES[2:] for p in (ROOT / d).rglob("*")}
    carried = {n.removeprefix("aimc/_data/") for n in names if n.startswith("aimc/_data/")}
    assert carried == {n for n in shipped if (ROOT / n).is_file()}


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a fresh target folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the checkout with the wheel installed.

    Its dependencies come from this test's environment through a ``.pth`` line (no network);
    ``.pth`` files there (such as an editable aimc's) are not processed that way, so the
    only aimc it can import is the wheel's.
    """
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    (Path(site) / "aimc_test_deps.pth").write_text(deps + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env_dir


def test_a_fresh_venv_runs_the_installed_tool_from_another_folder(
    venv: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMC_", "PYTHON"))}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import aimc; print(aimc.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv))
    listed = subprocess.run(
        [str(venv / "bin" / "aim-engine"), "list", "models", "--format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "Qwen/Qwen3-32B" in listed.stdout
    checked = subprocess.run(
        [str(venv / "bin" / "aim-engine"), "validate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout


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
    models = [r["model"] for r in json.loads(listed.stdout)["data"]]
    assert "Qwen/Qwen3-32B" in models and len(models) >= 10
    checked = _run(installed, tmp_path, "validate")
    assert checked.returncode == 0, checked.stdout
