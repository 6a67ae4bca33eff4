"""The emitter registry (aimc.emit.emitters): a new kind of output is one registration.

The dummy emitter below is registered from this test alone (no module of aimc edited) and
``compile --emit dummy`` writes its folder end to end, through the same write rules and
``--check`` as the built-in emitters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from aimc.cli import cli
from aimc.emit.emitters import EMITTERS, Emitter, emitter, names, register
from aimc.emit.render import manifest
from aimc.plan.model import Plan
from aimc.plan.request import Request, request_line


def _dummy(plan: Plan, request: Request, target: str, replicas: int) -> dict[str, str]:
    line = request_line(request, target)
    files = {"serve.txt": f"{plan.model_id} {plan.backend} {plan.precision} x{plan.gpus}\n"}
    files["manifest.json"] = manifest(plan, files, {"command": line})
    return files


@pytest.fixture
def dummy() -> Iterator[Emitter]:
    registered = register(Emitter("dummy", "one text file", _dummy, summary=lambda n: "dummy"))
    try:
        yield registered
    finally:
        EMITTERS.pop("dummy", None)


def test_a_registered_emitter_compiles_end_to_end(dummy: Emitter, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["compile", "Qwen/Qwen3-8B", "1", "--target", "h100", "--emit", "dummy", "-o"]
    done = runner.invoke(cli, [*args, str(out)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "serve.txt"]
    assert (out / "serve.txt").read_text() == "Qwen/Qwen3-8B vllm bf16 x1\n"
    recorded = json.loads((out / "manifest.json").read_text())
    assert set(recorded["artifacts"]) == {"serve.txt"}
    assert "; dummy" in done.output  # the emitter's summary line
    # The folder is aimc's like any other: --check reads it, and an edit is drift.
    assert runner.invoke(cli, [*args, str(out), "--check"]).exit_code == 0
    (out / "serve.txt").write_text("edited\n")
    assert runner.invoke(cli, [*args, str(out), "--check"]).exit_code == 1


def test_show_config_takes_a_registered_emitter(dummy: Emitter) -> None:
    done = CliRunner().invoke(
        cli,
        ["show-config", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "dummy", "--format", "json"],
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)["data"]
    assert data["plan"]["model_id"] == "Qwen/Qwen3-8B"
    assert "manifests" not in data  # no preview: the plan alone


def test_the_registry_holds_the_built_in_emitters_once() -> None:
    assert names()[:2] == ("local", "k8s")
    assert emitter("k8s").replicas and not emitter("local").replicas
    with pytest.raises(ValueError, match="registered already"):
        register(Emitter("k8s", "again", _dummy))


def test_an_unregistered_emitter_is_refused(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        cli,
        [
            "compile",
            "Qwen/Qwen3-8B",
            "1",
            "--target",
            "h100",
            "--emit",
            "dummy",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert done.exit_code == 2
    assert not (tmp_path / "o").exists()
