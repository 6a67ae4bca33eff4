"""The ``aimc-validate`` pre-commit hook, run by pre-commit itself on a recipe repository.

pre-commit installs the hook from this checkout (``try-repo``, which includes uncommitted
changes to tracked files) into its own environment, the way a recipe repository that
lists aimc's git URL gets it. No network: pip takes the wheels that scripts/setup.sh put in
``.venv/wheelhouse``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
EXAMPLE = ROOT / "examples" / "recipe-repo"


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"{WHEELHOUSE} is missing: run scripts/setup.sh")
    return tmp_path_factory.mktemp("pre-commit-home")


def _recipe_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "recipes"
    shutil.copytree(EXAMPLE / "models", repo / "models")
    shutil.copytree(EXAMPLE / "hardware", repo / "hardware")
    (repo / "notes.yaml").write_text("not: a recipe\n")  # outside the hook's files
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    return repo


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AIMC_"))},
        "PRE_COMMIT_HOME": str(home),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "aimc-validate",
         "--all-files"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_hook_passes_a_good_recipe_repository(tmp_path: Path, pre_commit_home: Path) -> None:
    result = _try_repo(_recipe_repo(tmp_path), pre_commit_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aimc validate" in result.stdout and "Passed" in result.stdout


def test_the_hook_fails_a_bad_recipe_with_its_message(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    repo = _recipe_repo(tmp_path)
    recipe = repo / "models/Qwen/Qwen3-8B.yaml"
    recipe.write_text(recipe.read_text().replace("max-num-seqs: 128", "max-num-seq: 128"))
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    result = _try_repo(repo, pre_commit_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout
    assert "models/Qwen/Qwen3-8B.yaml:" in result.stdout
    assert "unknown vllm 0.32.0 engine arg 'max-num-seq'" in result.stdout
