"""examples/recipe-repo: the workflow's aim-engine steps pass on it, and catch what they
are there to catch (a bad recipe at its line, stale artifacts)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

REPO = ROOT / "examples" / "recipe-repo"


def _steps() -> list[list[str]]:
    """The ``aim-engine`` commands the workflow runs, in order, without the program name."""
    workflow = YAML(typ="safe").load((REPO / ".github/workflows/recipes.yml").read_text())
    runs = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    return [shlex.split(r)[1:] for r in runs if r.startswith("aim-engine ")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "recipe-repo"
    shutil.copytree(REPO, copy)
    return copy


def test_the_workflow_passes_on_the_example(cli, repo: Path) -> None:
    steps = _steps()
    assert [s[0] for s in steps] == ["validate", "compile"]
    for args in steps:
        result = cli(*args, cwd=repo, env={"LOG_LEVEL": "WARNING"})
        assert result.code == 0, (args, result.out, result.err)


def test_the_workflow_annotates_a_bad_recipe(cli, repo: Path) -> None:
    """As on a pull request after a green main: the verdict cache restored, one recipe
    broken since."""
    validate = _steps()[0]
    assert "--cache" in validate
    assert cli(*validate, cwd=repo).code == 0
    assert (repo / ".aimc-cache/validate.json").is_file()
    recipe = repo / "models/Qwen/Qwen3-8B.yaml"
    text = recipe.read_text().replace("max-num-seqs: 128", "max-num-seq: 128")
    recipe.write_text(text)
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if "max-num-seq:" in ln)
    result = cli(*validate, cwd=repo)
    assert result.code == 2
    assert f"::error file=models/Qwen/Qwen3-8B.yaml,line={line}," in result.out


def test_the_workflow_catches_stale_artifacts(cli, repo: Path) -> None:
    recipe = repo / "models/Qwen/Qwen3-8B.yaml"
    recipe.write_text(recipe.read_text().replace("max-num-seqs: 128", "max-num-seqs: 64"))
    check = _steps()[1]
    assert check[-2:] == ["--format", "github"]
    result = cli(*check, cwd=repo, env={"LOG_LEVEL": "WARNING"})
    assert result.code == 1
    annotated = sorted(
        ln.split("file=", 1)[1].split(",", 1)[0]
        for ln in result.out.splitlines()
        if ln.startswith("::error ")
    )
    changed = ["aim.env", "compose.yaml", "launch.sh", "manifest.json", "vllm.yaml"]
    assert annotated == [f"deploy/qwen3-8b/{name}" for name in changed]  # headers hash the recipe
    assert "title=aimc drift::launch.sh is not what the recipes compile to" in result.out
    text = cli(*check[:-2], cwd=repo, env={"LOG_LEVEL": "WARNING"})
    assert text.code == 1
    assert "-  --max-num-seqs 128" in text.out and "+  --max-num-seqs 64" in text.out
