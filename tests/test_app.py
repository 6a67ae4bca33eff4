"""The use cases of aimc.app (compile, show), called as the Python API would: the CLI
commands only parse and print what they decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aimc.app.compile import compile_to
from aimc.app.planning import plan_request, plan_summary
from aimc.app.show import show
from aimc.check.catalog import Catalog
from aimc.cli import cli
from aimc.core.errors import ConfigError
from aimc.detect.base import Detection
from aimc.plan.request import Request

MODEL = "Qwen/Qwen3-32B"


@pytest.fixture(autouse=True)
def _own_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine, as detection sees it, has no GPU (whatever the test machine has)."""
    monkeypatch.setattr("aimc.detect.detect", lambda: Detection())


def test_show_without_a_gpu_lists_every_target_and_how_to_choose(no_gpu: None) -> None:
    shown = show(Catalog.default(), Request(model=MODEL, gpus=2), "auto")
    assert shown.plan is None and shown.manifests is None
    targets = {row["hardware"] for row in shown.rows}
    assert {"h100", "mi300x"} <= targets
    assert {row["gpus"] for row in shown.rows} == {2}
    assert shown.choose is not None and shown.choose.startswith("choose with --target NAME")
    data = shown.to_json()
    assert data["target"] is None and data["plan"] is None
    assert data["notes"][-1] == "no GPU detected"
    assert shown.message().endswith(f"; no GPU detected: {shown.choose}")


def test_show_config_prints_what_the_use_case_decides(no_gpu: None) -> None:
    result = CliRunner().invoke(cli, ["show-config", MODEL, "--gpu-count", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    shown = show(Catalog.default(), Request(model=MODEL, gpus=2), "auto")
    assert printed["data"] == shown.to_json()
    assert printed["message"] == shown.message()


def test_show_refuses_an_emitter_without_a_target(no_gpu: None) -> None:
    with pytest.raises(ConfigError, match="--emit k8s needs a target to compile for"):
        show(Catalog.default(), Request(model=MODEL), "auto", emit="k8s")


def test_show_on_a_named_target_resolves_and_previews_the_manifests() -> None:
    shown = show(Catalog.default(), Request(model=MODEL), "h100", emit="k8s", replicas=2)
    assert shown.plan is not None and shown.choose is None
    assert {row["hardware"] for row in shown.rows} == {"h100"}
    assert shown.manifests is not None and "deployment.yaml" in shown.manifests
    assert "replicas: 2" in shown.manifests["deployment.yaml"]
    assert shown.to_json()["target"] == "h100"
    assert shown.message() == plan_summary(shown.plan)


def test_compile_writes_the_folder_then_checks_it(tmp_path: Path) -> None:
    resolved = plan_request(Catalog.default(), Request(model=MODEL, gpus=8), "mi300x")
    out = tmp_path / "build"
    written = compile_to(resolved, out)
    assert written.diff is None
    assert sorted(p.name for p in out.iterdir()) == sorted(written.compiled.files)
    assert written.summary == plan_summary(written.plan)
    assert written.to_json()["artifacts"] == sorted(written.compiled.files)

    clean = compile_to(resolved, out, check=True)
    assert clean.diff == "" and clean.stale() == []
    assert clean.to_json() == {"output": str(out), "diff": ""}

    (out / "aim.env").write_text("edited\n", encoding="utf-8")
    stale = compile_to(resolved, out, check=True)
    assert stale.diff and "aim.env" in stale.diff
    assert stale.stale() == ["aim.env"]
    assert (out / "aim.env").read_text(encoding="utf-8") == "edited\n"  # check writes nothing


def test_compile_summary_names_the_emitters_replicas(tmp_path: Path) -> None:
    resolved = plan_request(Catalog.default(), Request(model=MODEL), "h100")
    done = compile_to(resolved, tmp_path / "k8s", emit="k8s", replicas=3)
    assert done.summary == f"{plan_summary(done.plan)}; Kubernetes: 3 replicas"
    assert "deployment.yaml" in done.compiled.files
