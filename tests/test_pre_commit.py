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


#: Staged names pre-commit hands the hook (it appends them to the entry): each would be an
#: option, or an option's value, to a command without '--' in its entry.
HOSTILE_NAMES = [
    "--cache=x/models/bad.yaml",  # was --cache: a cache file written, the file unchecked
    "-h/models/help.yaml",  # was -h: the help printed, exit 0
    "--strict/models/strict.yaml",
    "--format=json/models/json.yaml",
    "models/-x.yaml",
    "models/a=b c.yaml",
    "models/new\nline.yaml",
]


def _tree(repo: Path) -> set[str]:
    return {
        str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.relative_to(repo).parts
    }


def test_the_hook_checks_files_whose_names_look_like_options(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    repo = _recipe_repo(tmp_path)
    bad = (repo / "models/Qwen/Qwen3-8B.yaml").read_text()
    for i, name in enumerate(HOSTILE_NAMES):
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bad.replace("max-num-seqs: 128", f"max-num-seq{i}: 128"))
    subprocess.run(["git", "add", "--", "."], cwd=repo, check=True)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only", "-z"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    assert set(HOSTILE_NAMES) <= set(staged)  # git keeps every name as given
    before = _tree(repo)
    result = _try_repo(repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Failed" in result.stdout
    for i, name in enumerate(HOSTILE_NAMES):
        # a diagnostic is one line (aimc.core.diagnostics.whole_line)
        shown = name.replace("\n", "\\n")
        assert f"{shown}:" in result.stdout, (name, output)
        assert f"unknown vllm 0.32.0 engine arg 'max-num-seq{i}'" in result.stdout, output
    assert "Usage:" not in output
    assert _tree(repo) == before  # nothing written into the work tree (no --cache file)
