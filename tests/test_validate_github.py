"""``validate --format github``: one GitHub Actions annotation per problem, at its line."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT

SHIPPED = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"


def _repo(tmp_path: Path, edit) -> Path:
    """A recipe repository with one model recipe, edited by ``edit(lines) -> lines``."""
    folder = tmp_path / "repo" / "models" / "Qwen"
    folder.mkdir(parents=True)
    lines = SHIPPED.read_text().splitlines()
    (folder / "Qwen3-8B.yaml").write_text("\n".join(edit(lines)) + "\n")
    return tmp_path / "repo"


def _in_first_configuration(lines: list[str], block: list[str]) -> list[str]:
    """``block`` (YAML lines) added to the recipe's first configuration, after its gpus."""
    i = next(n for n, ln in enumerate(lines) if ln.startswith("configurations:"))
    j = next(n for n in range(i + 1, len(lines)) if lines[n].strip().startswith("gpus:"))
    indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
    return [*lines[: j + 1], *(indent + x for x in block), *lines[j + 1 :]]


def test_a_typo_and_a_bad_choice_are_annotated_at_their_lines(cli, tmp_path) -> None:
    block = ["args:", "  max-num-seq: 64", "  kv-cache-dtype: fp9"]
    repo = _repo(tmp_path, lambda lines: _in_first_configuration(lines, block))
    text = (repo / "models/Qwen/Qwen3-8B.yaml").read_text().splitlines()
    result = cli("validate", "models", "--format", "github", cwd=repo)
    assert result.code == 2
    annotations = [ln for ln in result.out.splitlines() if ln.startswith("::")]
    for key in ("max-num-seq", "kv-cache-dtype"):
        line = next(n for n, ln in enumerate(text, 1) if ln.strip().startswith(f"{key}:"))
        hit = [a for a in annotations if f"line={line}," in a]
        assert len(hit) == 1, (key, annotations)
        assert hit[0].startswith("::error file=models/Qwen/Qwen3-8B.yaml,")
    assert "did you mean 'max-num-seqs'" in result.out
    assert "'fp9' is not a valid value for 'kv-cache-dtype'" in result.out
    assert result.out.splitlines()[-1].endswith("in 1 file")


def test_removed_env_var_is_annotated(cli, tmp_path) -> None:
    block = ["env:", '  VLLM_USE_V1: "0"']
    repo = _repo(tmp_path, lambda lines: _in_first_configuration(lines, block))
    text = (repo / "models/Qwen/Qwen3-8B.yaml").read_text().splitlines()
    line = next(n for n, ln in enumerate(text, 1) if "VLLM_USE_V1" in ln)
    result = cli("validate", "models", "--format", "github", cwd=repo)
    assert result.code == 2, result.out + result.err
    (hit,) = [ln for ln in result.out.splitlines() if ln.startswith("::error")]
    assert hit.startswith(f"::error file=models/Qwen/Qwen3-8B.yaml,line={line},col=")
    assert "title=aimc lint/unknown-env::'VLLM_USE_V1' is not read" in hit


def test_strict_makes_warnings_fail(cli, tmp_path) -> None:
    repo = tmp_path / "repo"
    (repo / "hardware").mkdir(parents=True)
    (repo / "empty").mkdir()
    shutil.copy(ROOT / "recipes/hardware/h100.yaml", repo / "hardware" / "h100.yaml")
    args = ("validate", "hardware", "empty", "--format", "github")
    result = cli(*args, cwd=repo)
    assert result.code == 0, result.out
    assert "::warning file=empty,title=aimc io::no YAML files found" in result.out
    strict = cli(*args, "--strict", cwd=repo)
    assert strict.code == 2
    assert "::warning file=empty," in strict.out


def test_annotations_cannot_be_injected_through_names_or_messages(cli, tmp_path) -> None:
    """A file name with ``,`` and ``:`` and a value with a newline and ``::`` stay inside
    their annotation (GitHub's encoding: %2C, %3A, %0A)."""
    folder = tmp_path / "repo"
    folder.mkdir()
    bad = folder / "a,b:c.yaml"
    bad.write_text('apiVersion: aimc/v1\nkind: Recipe\nmodel: "x\\n::error::pwned"\n')
    result = cli("validate", bad.name, "--format", "github", cwd=folder)
    assert result.code == 2
    lines = result.out.splitlines()
    assert all(ln.startswith("::error file=a%2Cb%3Ac.yaml,") for ln in lines[:-1])
    assert not any(ln.startswith("::error::") for ln in lines)


def test_a_hardware_profile_no_recipe_offers_is_a_warning(cli, tmp_path) -> None:
    """Failed before: a profile nothing could compile for passed silently."""
    repo = tmp_path / "repo"
    (repo / "hardware").mkdir(parents=True)
    text = (ROOT / "examples/recipe-repo/hardware/lab-h100x4.yaml").read_text()
    (repo / "hardware" / "spare-h100.yaml").write_text(
        text.replace("name: lab-h100x4", "name: spare-h100")
    )
    result = cli("validate", "hardware", "--format", "github", cwd=repo)
    assert result.code == 0
    assert "::warning file=hardware/spare-h100.yaml,line=" in result.out
    assert (
        "title=aimc lint/unused-hardware::hardware profile 'spare-h100' is offered by no recipe"
        in result.out
    )
    assert cli("validate", "hardware", "--strict", cwd=repo).code == 2


def test_no_line_of_any_output_can_be_a_forged_workflow_command(cli, tmp_path) -> None:
    """Failed before: an error, a usage error or a note printed a user's path raw, so a
    name holding a newline put '::error ...' at the start of a line of the CI log."""
    forged = "x\n::error title=forged::INJECTED\n::add-mask::y"
    (tmp_path / forged).write_text("")
    runs = [
        cli("validate", "--from", "vllm-recipes", str(tmp_path / forged), "--format", "github"),
        cli("validate", "--format", forged),
        cli("compile", forged, "--target", "h100", "-o", str(tmp_path / "o")),
        cli("validate", "--recipes", str(tmp_path / forged), "--format", "github"),
        cli("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--config", str(tmp_path / forged)),
    ]
    for result in runs:
        assert result.code != 0
        lines = (result.out + result.err).splitlines()
        assert lines and not [ln for ln in lines if ln.lstrip().startswith("::")], lines
