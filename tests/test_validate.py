"""`aim-engine validate`: exit codes, line:column diagnostics, golden error output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import CORPUS, ROOT

INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
OUTPUT_SCHEMA = json.loads((ROOT / "schemas/validate-output.schema.json").read_text())
DIAG = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (error|warning): .+$")


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_file_gives_exit_2_and_golden_diagnostics(case: Path, cli, golden) -> None:
    result = cli("validate", str(case.relative_to(ROOT)))
    assert result.code == 2
    assert "Traceback" not in result.out + result.err
    first = result.out.splitlines()[0]
    assert DIAG.match(first), first
    golden(f"validate/{case.stem}.txt", result.out)


@pytest.mark.parametrize("case", VALID, ids=lambda p: p.stem)
def test_valid_corpus_file_passes(case: Path, cli) -> None:
    result = cli("validate", str(case.relative_to(ROOT)))
    assert result.code == 0, result.out
    if case.name.startswith("hardware"):  # checked alone, no recipe offers it: a warning
        assert "warning: hardware profile" in result.out and "error:" not in result.out
        assert result.out.strip().endswith("1 warning in 1 file")
    else:
        assert result.out.strip() == "1 file valid"


def test_errors_of_all_files_come_out_in_one_run(cli) -> None:
    result = cli("validate", "tests/corpus/invalid", "--format", "json")
    assert result.code == 2
    data = json.loads(result.out)["data"]
    jsonschema.validate(data, OUTPUT_SCHEMA)
    assert data["valid"] is False
    assert data["files"] == len(INVALID)
    assert {Path(d["path"]).name for d in data["diagnostics"]} == {p.name for p in INVALID}
    keys = [(d["path"], d["line"], d["column"], d["message"]) for d in data["diagnostics"]]
    assert keys == sorted(keys)


def test_error_points_at_the_offending_key(cli) -> None:
    result = cli("validate", "tests/corpus/invalid/unknown-key.yaml", "--format", "json")
    (diag,) = json.loads(result.out)["data"]["diagnostics"]
    lines = (CORPUS / "invalid/unknown-key.yaml").read_text().splitlines()
    assert lines[diag["line"] - 1][diag["column"] - 1 :].startswith("layer:")
    assert diag["pointer"] == "/model/facts/layer"
    assert diag["hint"] == "did you mean 'layers'?"


def test_shipped_catalog_is_valid(cli) -> None:
    result = cli("validate")
    assert result.code == 0, result.out
    assert re.fullmatch(r"\d+ files valid\n", result.out)


def test_shipped_catalog_json(cli) -> None:
    result = cli("validate", "--format", "json")
    data = json.loads(result.out)["data"]
    jsonschema.validate(data, OUTPUT_SCHEMA)
    assert data["valid"] is True and data["errors"] == 0
    shipped = list((ROOT / "recipes").rglob("*.yaml"))
    assert data["files"] == len(shipped)


def test_missing_path_is_an_error(cli) -> None:
    result = cli("validate", "no/such/recipe.yaml")
    assert result.code == 2
    # the file alone, no ':0:0' position (before issue 20)
    assert result.out.startswith("no/such/recipe.yaml: error: no such file or directory")


def test_warnings_fail_only_with_strict(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert cli("validate", str(empty)).code == 0
    strict = cli("validate", str(empty), "--strict")
    assert strict.code == 2
    assert "warning: no YAML files found" in strict.out


def test_broken_file_among_good_ones(cli, tmp_path: Path) -> None:
    shutil.copy(CORPUS / "valid/recipe-full.yaml", tmp_path / "good.yaml")
    shutil.copy(CORPUS / "invalid/duplicate-key.yaml", tmp_path / "bad.yaml")
    result = cli("validate", str(tmp_path))
    assert result.code == 2
    assert "bad.yaml:11:5: error: found duplicate key" in result.out
    assert "good.yaml" not in result.out


def test_json_error_output_of_other_commands(cli) -> None:
    result = cli("list", "configs", "no-such/model", "--format", "json")
    assert result.code == 2
    body = json.loads(result.out)
    assert body["success"] is False
    assert body["error"]["code"] == "CONFIGURATION_ERROR"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])


def test_shipped_index_is_complete_and_current() -> None:
    """recipes/index.json lists every shipped file at its current sha256
    (regenerate with tools/update_catalog_index.py)."""
    import hashlib

    root = ROOT / "recipes"
    index = json.loads((root / "index.json").read_text())["validated"]
    current = {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*.yaml")
    }
    assert index == current


def test_an_edited_shipped_file_is_validated_again(tmp_path: Path) -> None:
    """A shipped file that no longer matches the index gets the full schema check."""
    from aimc.catalog import Catalog, RecipeRoot
    from aimc.errors import ValidationFailed

    root = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", root)
    path = root / "models/Qwen/Qwen3-8B.yaml"
    path.write_text(path.read_text().replace("layers: 36", 'layers: "36"'))
    catalog = Catalog([RecipeRoot(root, "shipped")])
    with pytest.raises(ValidationFailed) as info:
        catalog.recipe("Qwen/Qwen3-8B")
    assert "expected an integer" in info.value.diagnostics[0].message


def test_many_files_are_checked_alike_in_parallel(tmp_path: Path, monkeypatch) -> None:
    """Over PARALLEL_FILES files, checking is spread over forked workers: the report is the
    same, in the same order, as checking them one by one."""
    import aimc.checker as checker
    from aimc.catalog import Catalog

    folder = tmp_path / "models" / "bench-org"
    folder.mkdir(parents=True)
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    for i in range(24):
        body = text.replace("id: Qwen/Qwen3-8B", f"id: bench-org/model-{i}", 1)
        if i % 5 == 0:
            body = body.replace("precision: bf16", "precision: bfloat16", 1)  # an error
        (folder / f"model-{i}.yaml").write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checker, "PARALLEL_FILES", 10**6)
    one_by_one = checker.check_paths([Path("models")], Catalog.default()).to_json()
    monkeypatch.setattr(checker, "PARALLEL_FILES", 2)
    parallel = checker.check_paths([Path("models")], Catalog.default()).to_json()
    assert parallel == one_by_one
    assert one_by_one["errors"] >= 5 and one_by_one["files"] == 24
