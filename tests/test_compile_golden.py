"""Golden artifacts for every shipped model x every hardware target it supports.

Each pair is compiled with the recipe's own choices (no GPU count, precision or backend
given) and every artifact is compared byte for byte with ``tests/golden/compile/``.
``pytest --update-golden`` rewrites them; read the diff before committing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.emitters import compile_plan
from aimc.plan.candidates import candidates
from aimc.plan.request import Request
from tests.conftest import GOLDEN, ROOT

CATALOG = Catalog.default()
PAIRS = sorted({(r.model_id, c.hardware) for r in CATALOG.recipes() for c in candidates(r)})
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"


def _compiled(model: str, target: str) -> dict[str, str]:
    request = Request(model=model)
    return compile_plan(make_plan(CATALOG, request, target), request, target).files


def _folder(model: str, target: str) -> str:
    return f"compile/{model.replace('/', '__')}/{target}"


@pytest.mark.parametrize(("model", "target"), PAIRS, ids=[f"{m}@{t}" for m, t in PAIRS])
def test_artifacts_match_golden(model: str, target: str, golden) -> None:
    files = _compiled(model, target)
    for name, text in files.items():
        golden(f"{_folder(model, target)}/{name}", text)
    folder = GOLDEN / _folder(model, target)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)


def test_every_model_has_golden_artifacts() -> None:
    assert len({m for m, _ in PAIRS}) == len(CATALOG.model_ids())
    assert len(PAIRS) >= 40


def test_rendering_is_deterministic() -> None:
    for model, target in PAIRS[:: max(1, len(PAIRS) // 10)]:
        assert _compiled(model, target) == _compiled(model, target)


@pytest.fixture(scope="module")
def all_scripts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("scripts")
    paths = []
    for model, target in PAIRS:
        path = out / f"{model.replace('/', '__')}--{target}.sh"
        path.write_text(_compiled(model, target)["launch.sh"])
        paths.append(path)
    return paths


def test_every_launch_script_parses_with_bash(all_scripts: list[Path]) -> None:
    for path in all_scripts:
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_every_launch_script_passes_shellcheck(all_scripts: list[Path]) -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or "shellcheck"
    result = subprocess.run(
        [shellcheck, "--shell=bash", *map(str, all_scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_every_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    checked = 0
    for model, target in PAIRS:
        files = _compiled(model, target)
        if "compose.yaml" not in files:
            continue
        data = YAML(typ="safe").load(files["compose.yaml"])
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, f"{model}@{target}: {errors}"
        assert data["services"]["server"]["image"]
        checked += 1
    assert checked >= len(PAIRS) - 5


def test_docker_compose_reads_a_compose_file_of_every_target(tmp_path: Path) -> None:
    """Debian's docker-compose (the OS package) parses and resolves one compiled folder per
    target, as ``docker-compose -p NAME -f compose.yaml up`` would: the Compose schema
    alone accepts a top-level ``name`` that this docker-compose refuses."""
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: run scripts/setup-docker.sh --packages"
    checked = set()
    for model, target in PAIRS:
        files = _compiled(model, target)
        if target in checked or "compose.yaml" not in files:
            continue
        folder = tmp_path / target
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        env = {"PATH": "/usr/bin:/bin", "CACHE_DIR": str(tmp_path / "cache")}
        result = subprocess.run(
            [compose, "-p", "aimc-test", "-f", "compose.yaml", "config"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{model}@{target}: {result.stderr}"
        service = YAML(typ="safe").load(result.stdout)["services"]["server"]
        expected = YAML(typ="safe").load(files["compose.yaml"])["services"]["server"]
        assert service["command"] == [w.replace("$$", "$") for w in expected["command"]]
        assert service["volumes"][0] == f"{tmp_path / 'cache'}:/workspace/model-cache:rw"
        checked.add(target)
    assert len(checked) >= 8


def test_native_config_is_what_the_script_passes() -> None:
    for model, target in PAIRS[:: max(1, len(PAIRS) // 10)]:
        request = Request(model=model)
        plan = make_plan(CATALOG, request, target)
        files = compile_plan(plan, request, target).files
        config = YAML(typ="safe").load(files[f"{plan.backend}.yaml"])
        assert {k: v for k, v in config.items() if k not in ("model", "model-path")} == {
            k: s.value for k, s in plan.args.items()
        }
