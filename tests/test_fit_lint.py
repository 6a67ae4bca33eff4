"""Recipe truth: every configuration fits every hardware it lists at its context, by the
memory estimate, or is marked ``low_memory`` with the context it serves."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT

SHIPPED = ROOT / "recipes/models/meta-llama/Llama-3.1-70B-Instruct.yaml"


def _repo(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "r" / "models" / "meta-llama"
    folder.mkdir(parents=True)
    (folder / "Llama-3.1-70B-Instruct.yaml").write_text(text)
    return tmp_path / "r"


def _without_the_marker(text: str, max_context: str = "") -> str:
    """The shipped recipe with its 2-GPU 80 GB configuration unmarked (or re-marked)."""
    marked = "    low_memory: {max_context: 7168}\n"
    assert marked in text
    return text.replace(
        marked, f"    low_memory: {{max_context: {max_context}}}\n" if max_context else ""
    )


def test_a_configuration_that_does_not_fit_is_an_error_at_its_line(cli, tmp_path) -> None:
    """Failed before: Llama-3.1-70B bf16 on 2 x H100/A100 at 32k validated, and only a
    launch found out that it does not fit."""
    text = _without_the_marker(SHIPPED.read_text())
    repo = _repo(tmp_path, text)
    result = cli("validate", str(repo))
    assert result.code == 2
    lines = [ln for ln in result.out.splitlines() if "lint/fit" in ln or "does not fit" in ln]
    assert any("h100 bf16 on 2 GPUs does not fit at 32768 tokens" in ln for ln in lines), result.out
    assert "hint: mark the configuration low_memory: {max_context: 7168}" in result.out
    gpus_line = next(n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() == "gpus: [2]")
    assert f"Llama-3.1-70B-Instruct.yaml:{gpus_line}:" in result.out


def test_a_marked_context_that_still_does_not_fit_is_an_error(cli, tmp_path) -> None:
    repo = _repo(tmp_path, _without_the_marker(SHIPPED.read_text(), "30000"))
    result = cli("validate", str(repo))
    assert result.code == 2
    assert "does not fit at 30000 tokens" in result.out
    assert "hint: lower low_memory.max_context to 7168" in result.out


def test_the_shipped_catalog_fits_everywhere_it_says(cli) -> None:
    result = cli("validate", str(ROOT / "recipes"))
    assert result.code == 0, result.out


def test_a_low_memory_configuration_is_used_only_when_its_count_is_asked(cli, tmp_path) -> None:
    """Failed before: ``compile Llama-3.1-70B-Instruct 2 --target h100`` was refused; now it
    is served at the marked context, while a count left open still takes 4 GPUs at 32k."""
    out = tmp_path / "two"
    asked = cli(
        "compile", "meta-llama/Llama-3.1-70B-Instruct", "2", "--target", "h100", "-o", str(out)
    )
    assert asked.code == 0, asked.err
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert (plan["gpus"], plan["args"]["max-model-len"]["value"]) == (2, 7168)
    marker = next(
        n for n, ln in enumerate(SHIPPED.read_text().splitlines(), 1) if "low_memory:" in ln
    )
    assert plan["args"]["max-model-len"]["source"].endswith(f"Llama-3.1-70B-Instruct.yaml:{marker}")
    shown = cli(
        "show-config", "meta-llama/Llama-3.1-70B-Instruct", "--target", "h100", "--format", "json"
    )
    data = json.loads(shown.out)["data"]["plan"]
    assert (data["gpus"], data["args"]["max-model-len"]["value"]) == (4, 32768)
    assert any("(2 GPUs: low-memory, 32768 tokens need" in d for d in data["decisions"])
