"""The ``aimc-validate`` pre-commit hook, run by pre-commit itself on a recipe repository.

A recipe repository lists aimc's git URL and a rev in its ``.pre-commit-config.yaml``; here
the URL is a git copy of this checkout's tracked files as they are in the work tree
(uncommitted changes included, as ``pre-commit try-repo`` would take them), made once a
module, so pre-commit installs the hook into its own environment once and every test runs
``pre-commit run`` against it. No network: pip takes the wheels that scripts/setup.sh put
in ``.venv/wheelhouse``.
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
def hook_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(PRE_COMMIT_HOME, the aimc repository pre-commit installs from, its commit)."""
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"{WHEELHOUSE} is missing: run scripts/setup.sh")
    source = tmp_path_factory.mktemp("aimc-source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _git(source, "init", "-q")
    _git(source, "add", "-A")
    _git(source, "commit", "-q", "-m", "aimc as checked out")
    rev = _git(source, "rev-parse", "HEAD").strip()
    return tmp_path_factory.mktemp("pre-commit-home"), source, rev


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=_env(), capture_output=True, text=True, check=True
    ).stdout


def _env(home: Path | None = None) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AIMC_", "GIT_"))},
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    if home is not None:
        env["PRE_COMMIT_HOME"] = str(home)
    return env


def _recipe_repo(tmp_path: Path, source: tuple[Path, Path, str]) -> Path:
    """A recipe repository whose ``.pre-commit-config.yaml`` lists aimc's hook."""
    repo = tmp_path / "recipes"
    shutil.copytree(EXAMPLE / "models", repo / "models")
    shutil.copytree(EXAMPLE / "hardware", repo / "hardware")
    (repo / "notes.yaml").write_text("not: a recipe\n")  # outside the hook's files
    _, url, rev = source
    config = f"repos:\n  - repo: {url}\n    rev: {rev}\n    hooks: [{{id: aimc-validate}}]\n"
    (repo / ".pre-commit-config.yaml").write_text(config)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    return repo


def _run_hook(repo: Path, source: tuple[Path, Path, str]) -> subprocess.CompletedProcess[str]:
    """``pre-commit run --all-files`` in ``repo``."""
    home = source[0]
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"],
        cwd=repo, env=_env(home), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_hook_passes_a_good_recipe_repository(
    tmp_path: Path, hook_source: tuple[Path, Path, str]
) -> None:
    result = _run_hook(_recipe_repo(tmp_path, hook_source), hook_source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aimc validate" in result.stdout and "Passed" in result.stdout


def test_the_hook_fails_a_bad_recipe_with_its_message(
    tmp_path: Path, hook_source: tuple[Path, Path, str]
) -> None:
    repo = _recipe_repo(tmp_path, hook_source)
    recipe = repo / "models/Qwen/Qwen3-8B.yaml"
    recipe.write_text(recipe.read_text().replace("max-num-seqs: 128", "max-num-seq: 128"))
    _git(repo, "add", ".")
    result = _run_hook(repo, hook_source)
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
    tmp_path: Path, hook_source: tuple[Path, Path, str]
) -> None:
    repo = _recipe_repo(tmp_path, hook_source)
    bad = (repo / "models/Qwen/Qwen3-8B.yaml").read_text()
    for i, name in enumerate(HOSTILE_NAMES):
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bad.replace("max-num-seqs: 128", f"max-num-seq{i}: 128"))
    _git(repo, "add", "--", ".")
    staged = _git(repo, "diff", "--cached", "--name-only", "-z").split("\0")
    assert set(HOSTILE_NAMES) <= set(staged)  # git keeps every name as given
    before = _tree(repo)
    result = _run_hook(repo, hook_source)
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
