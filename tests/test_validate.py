"""`aim-engine validate`: exit codes, line:column diagnostics, golden error output."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS, ROOT
from tests.helpers.spread_cases import in_fresh_python

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
    # the file alone, no ':0:0' position (as there was once)
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
    from aimc.check.catalog import Catalog
    from aimc.core.errors import ValidationFailed
    from aimc.domain.recipe import RecipeRoot

    root = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", root)
    path = root / "models/Qwen/Qwen3-8B.yaml"
    path.write_text(path.read_text().replace("layers: 36", 'layers: "36"'))
    catalog = Catalog([RecipeRoot(root, "shipped")])
    with pytest.raises(ValidationFailed) as info:
        catalog.recipe("Qwen/Qwen3-8B")
    assert "expected an integer" in info.value.diagnostics[0].message


def test_many_files_are_checked_alike_in_parallel(tmp_path: Path) -> None:
    """Over PARALLEL_FILES files, checking is spread over forked children (in a fresh
    interpreter: one thread, as the command line; a pytest-xdist worker runs two, where
    nothing is forked): the report is the same, in the same order, as checking them one
    by one."""
    folder = tmp_path / "models" / "bench-org"
    folder.mkdir(parents=True)
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    for i in range(40):
        body = text.replace("id: Qwen/Qwen3-8B", f"id: bench-org/model-{i}", 1)
        if i % 5 == 0:
            body = body.replace("precision: bf16", "precision: bfloat16", 1)  # an error
        (folder / f"model-{i}.yaml").write_text(body)
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "import aimc.check.checker as checker\n"
        "from aimc.check.catalog import Catalog\n"
        "from aimc.core import spread\n"
        "fork, forks = os.fork, []\n"
        "spread.os.fork = lambda: forks.append(1) or fork()\n"
        "reports = []\n"
        "for least in (10**6, 2):\n"
        "    checker.PARALLEL_FILES = least\n"
        "    reports.append(checker.check_paths([Path('models')], Catalog.default()).to_json())\n"
        "print(json.dumps({'reports': reports, 'forks': len(forks)}))\n"
    )
    done = in_fresh_python(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    one_by_one, parallel = got["reports"]
    assert got["forks"] == min(len(os.sched_getaffinity(0)), 40) - 1  # one per other CPU
    assert parallel == one_by_one
    assert one_by_one["errors"] >= 8 and one_by_one["files"] == 40


# --- lint/yaml-1.1 ----------------------------------------------------------------------------

_TOKENS = st.one_of(
    st.from_regex(r"[-+]?[0-9_]{1,4}(\.[0-9_]{0,3})?([eE][-+]?[0-9]{1,2})?", fullmatch=True),
    st.from_regex(r"[-+]?\.[0-9]{1,3}([eE][-+]?[0-9])?", fullmatch=True),
    st.from_regex(r"0[xob][0-9a-fA-F_]{1,4}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]?(:[0-5][0-9]){1,2}(\.[0-9]{0,2})?", fullmatch=True),
    st.sampled_from(
        [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "n",
            "true",
            "False",
            "~",
            "null",
            "NULL",
            ".inf",
            "-.Inf",
            ".nan",
            ".NaN",
            "2024-01-01",
            "2024-1-1",
            "017",
            "0",
            "-0",
            "1_000",
            "text",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(token=_TOKENS)
def test_yaml_1_1_warning_exactly_where_pyyaml_reads_otherwise(token: str) -> None:
    """lint/yaml-1.1 (failed before: no such rule) warns for a plain scalar
    exactly when PyYAML, the YAML 1.1 reader most tools use, reads it otherwise than aimc."""
    import math

    import yaml

    from aimc.check.lint_yaml11 import lint_yaml11
    from aimc.core.errors import ValidationFailed
    from aimc.core.loader import load_document

    text = f"x: {token}\n"
    try:
        doc = load_document(text.encode(), "t.yaml")
        theirs = yaml.safe_load(text)["x"]
    except (ValidationFailed, yaml.YAMLError, ValueError):
        assume(False)
        return
    ours = doc.data["x"]
    same = type(ours) is type(theirs) and (
        ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs))
    )
    found = lint_yaml11(doc, text)
    assert (not found) == same, (token, ours, theirs, found)
    if found:
        assert found[0].rule == "lint/yaml-1.1" and found[0].severity == "warning"
        assert (found[0].line, found[0].column, found[0].pointer) == (1, 4, "/x")


def test_validate_warns_about_yaml_1_1_readings_in_a_user_recipe(cli, tmp_path) -> None:
    recipe = (ROOT / "tests/corpus/valid/recipe-full.yaml").read_text()
    recipe = recipe.replace("\n    parameters: 7.0e+9", "\n    parameters: 7.0e9")
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe)
    result = cli("validate", str(path), "--format", "json")
    warnings = [
        d for d in json.loads(result.out)["data"]["diagnostics"] if d["rule"] == "lint/yaml-1.1"
    ]
    assert [(w["pointer"], w["severity"]) for w in warnings] == [
        ("/model/facts/parameters", "warning")
    ]
    assert "'7.0e9' is 7000000000.0 for aimc (YAML 1.2) but a string" in warnings[0]["message"]
    assert "signed exponent" in warnings[0]["hint"]
    shipped = cli("validate", "--format", "json")
    assert shipped.code == 0 and not [
        d for d in json.loads(shipped.out)["data"]["diagnostics"] if d["rule"] == "lint/yaml-1.1"
    ]
