"""Recipe directories: shipped, --recipes and $AIMC_RECIPES, and which one wins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS, ROOT

SHIPPED = ROOT / "recipes/models/Qwen/Qwen3-8B.yaml"


def _user_dir(tmp_path: Path, name: str, description: str) -> Path:
    """A recipe directory overriding Qwen/Qwen3-8B with another description."""
    d = tmp_path / name
    (d / "models/Qwen").mkdir(parents=True)
    text = SHIPPED.read_text().replace(
        "description: Qwen3 8B dense, hybrid thinking", f"description: {description}"
    )
    (d / "models/Qwen/Qwen3-8B.yaml").write_text(text)
    return d


def _description(cli, *args: str, env: dict[str, str] | None = None) -> str:
    result = cli("list", "models", "--filter", "Qwen3-8B", "--format", "json", *args, env=env)
    assert result.code == 0, result.err
    (row,) = json.loads(result.out)["data"]
    return str(row["description"])


def test_shipped_recipe_by_default(cli) -> None:
    assert _description(cli) == "Qwen3 8B dense, hybrid thinking"


def test_user_directory_overrides_shipped(cli, tmp_path: Path) -> None:
    d = _user_dir(tmp_path, "mine", "mine")
    assert _description(cli, "--recipes", str(d)) == "mine"


def test_env_directory_overrides_shipped(cli, tmp_path: Path) -> None:
    d = _user_dir(tmp_path, "env", "from env")
    assert _description(cli, env={"AIMC_RECIPES": str(d)}) == "from env"


def test_flag_beats_env_and_first_flag_wins(cli, tmp_path: Path) -> None:
    first = _user_dir(tmp_path, "first", "first")
    second = _user_dir(tmp_path, "second", "second")
    env_dir = _user_dir(tmp_path, "env", "env")
    args = ("--recipes", str(first), "--recipes", str(second))
    assert _description(cli, *args, env={"AIMC_RECIPES": str(env_dir)}) == "first"


def test_list_recipes_reports_the_source(cli, tmp_path: Path) -> None:
    d = _user_dir(tmp_path, "mine", "mine")
    result = cli("list", "recipes", "--recipes", str(d), "--format", "json")
    rows = {r["model"]: r for r in json.loads(result.out)["data"]}
    assert rows["Qwen/Qwen3-8B"]["source"] == "--recipes"
    assert rows["Qwen/Qwen3-32B"]["source"] == "shipped"


def test_user_hardware_profile_is_usable_by_user_recipes(cli, tmp_path: Path) -> None:
    d = tmp_path / "recipes"
    (d / "hardware").mkdir(parents=True)
    (d / "models/example-org").mkdir(parents=True)
    shutil.copy(CORPUS / "valid/hardware-full.yaml", d / "hardware/my-box.yaml")
    recipe = (CORPUS / "invalid/lint-unknown-hardware.yaml").read_text()
    recipe = recipe.replace("hardware: [mi300, h100]", "hardware: [my-box]")
    (d / "models/example-org/Example-7B.yaml").write_text(recipe)
    assert cli("validate", str(d)).code == 0
    result = cli("list", "configs", "example-org/Example-7B", "--recipes", str(d))
    assert result.code == 0
    assert "my-box" in result.out


def test_invalid_user_recipe_stops_list_with_its_diagnostics(cli, tmp_path: Path) -> None:
    d = tmp_path / "recipes"
    (d / "models/example-org").mkdir(parents=True)
    shutil.copy(CORPUS / "invalid/wrong-type.yaml", d / "models/example-org/Example-7B.yaml")
    result = cli("list", "models", "--recipes", str(d))
    assert result.code == 2
    assert "Example-7B.yaml:8:18: error: expected an integer" in result.err
    assert "Traceback" not in result.err


def test_recipe_in_the_wrong_place_is_reported(cli, tmp_path: Path) -> None:
    d = tmp_path / "recipes"
    (d / "models/other-org").mkdir(parents=True)
    shutil.copy(CORPUS / "valid/recipe-full.yaml", d / "models/other-org/Example-7B.yaml")
    result = cli("validate", str(d))
    assert result.code == 2
    assert "model id 'example-org/Example-7B' does not match" in result.out


def test_missing_recipe_directory(cli, tmp_path: Path) -> None:
    result = cli("list", "models", "--recipes", str(tmp_path / "nope"))
    assert result.code == 2
    assert "Traceback" not in result.err


# --- YAML 1.1 readers (issue 20) ------------------------------------------------------------

#: Every YAML file aimc ships or shows as an example.
SHIPPED_YAML = sorted(
    p
    for root in ("recipes", "examples", "tests/corpus/valid")
    for p in (ROOT / root).rglob("*.yaml")
    if ".github" not in p.parts
)


def test_the_shipped_yaml_reads_the_same_under_pyyaml() -> None:
    """Failed before issue 20: ``parameters: 32.762e9`` is a float in YAML 1.2 (aimc) but
    a string in YAML 1.1 (PyYAML: a float needs a dot and a signed exponent), so a tool
    reading a recipe with PyYAML got '32.762e9'."""
    import yaml

    from aimc.core.loader import read_document

    assert len(SHIPPED_YAML) > 20
    differ = []
    for path in SHIPPED_YAML:
        theirs = json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), sort_keys=True)
        ours = json.dumps(read_document(path).data, sort_keys=True)  # 1 != 1.0 != true here
        if theirs != ours:
            differ.append(str(path.relative_to(ROOT)))
    assert differ == []


def test_generate_config_takes_a_recipe_pyyaml_read() -> None:
    """Failed before issue 20: every shipped recipe, read by yaml.safe_load, was refused
    (its parameters a string), so generate_config returned None."""
    import yaml

    from aim_launcher import AIMConfigGenerator

    for path in sorted((ROOT / "recipes" / "models").rglob("*.yaml")):
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        first = recipe["configurations"][0]
        generator = AIMConfigGenerator(target=first["hardware"][0])
        config = generator.generate_config(recipe, first["gpus"][0], first.get("backend", "vllm"))
        assert config is not None, path.name
        assert config["plan"]["model_id"] == recipe["model"]["id"]


def test_recipe_folders_are_listed_as_rglob_lists_them(tmp_path: Path) -> None:
    """iter_yaml walks every folder (hidden ones too) but not through a link to a folder,
    takes .yaml and .yml files (a link to a file too), in the order of sorted paths."""
    from aimc.domain.recipe import iter_yaml

    base = tmp_path / "models"
    for rel in ("a/x.yaml", "a/x.yml", "a-b/y.yaml", ".hidden/z.yaml", "a/deep/er/w.yml"):
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text("id: x\n")
    (base / "a/notes.txt").write_text("")
    (base / "a/folder.yaml").mkdir()
    (base / "linked.yaml").symlink_to(base / "a/x.yaml")
    (base / "dangling.yaml").symlink_to(base / "nowhere.yaml")
    (base / "loop").symlink_to(base, target_is_directory=True)
    (base / "folder-link.yaml").symlink_to(base / "a", target_is_directory=True)
    for name in (".yaml", "..yaml", "x.yaml.bak", "a/.yml"):  # named alike, not all YAML
        (base / name).write_text("id: x\n")
    expected = sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    assert list(iter_yaml(base)) == expected
    assert len(expected) == 7
    assert list(iter_yaml(tmp_path / "absent")) == []


def test_a_catalog_sees_a_file_added_after_it_listed_its_folders(tmp_path: Path) -> None:
    """No listing is kept: an API user's catalog (and a new one) sees a recipe added later."""
    from aimc.check.catalog import Catalog

    d = _user_dir(tmp_path, "mine", "mine")
    catalog = Catalog.default([d])
    assert "Qwen/Added" not in catalog.model_ids()
    (d / "models/Qwen/Added.yaml").write_text(
        SHIPPED.read_text().replace("id: Qwen/Qwen3-8B", "id: Qwen/Added", 1)
    )
    assert "Qwen/Added" in catalog.model_ids()
    assert "Qwen/Added" in Catalog.default([d]).model_ids()


def test_lint_path_takes_the_place_the_checker_resolved(tmp_path: Path, monkeypatch) -> None:
    """validate resolves each file once (``checker._where``) and hands lint/path its place
    in ``models``; what it reports is what resolving the path again reports, for files
    reached through a symlink or a relative path, ``.yml`` files and dotted names. Failed
    before: ``lint_recipe`` took no place and resolved every file's path again."""
    from aimc.check.catalog import Catalog, lint_recipe_in_catalog
    from aimc.check.checker import check_paths
    from aimc.check.lint import lint_recipe
    from aimc.core.loader import read_document

    d = tmp_path / "real" / "recipes"
    text = (CORPUS / "valid/recipe-full.yaml").read_text()
    places = ["other-org/Example-7B.yaml", "example-org/Example-7B.yml", "example-org/x/E.yaml",
              "example-org/Example-7B.v1.yaml", "example-org/Example-7B.yaml"]  # fmt: skip
    for place in places:
        (d / "models" / place).parent.mkdir(parents=True, exist_ok=True)
        (d / "models" / place).write_text(text)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    catalog = Catalog.default([d])
    result = check_paths([Path("link/recipes")], catalog)
    found = sorted((p.path, p.message) for p in result.diagnostics if p.rule == "lint/path")
    assert len(found) == 3  # every place but the id's own (.yaml or .yml)
    hardware = {name: catalog.hardware(name).data for name in catalog.hardware_names()}
    again = []
    for place in places:
        doc = read_document(Path("link/recipes/models", place), f"real/recipes/models/{place}")
        again += [(x.path, x.message) for x in lint_recipe(doc, hardware, d / "models")
                  if x.rule == "lint/path"]  # fmt: skip
    assert found == sorted(again)
    recipe = catalog.recipe("example-org/Example-7B")
    assert [x.rule for x in lint_recipe_in_catalog(recipe, catalog)].count("lint/path") == 0
    nowhere = lint_recipe(recipe.doc, hardware, tmp_path / "none", "a/b.yaml")
    assert [x.message for x in nowhere if x.rule == "lint/path"] == [
        "model id 'example-org/Example-7B' does not match the file's place 'a/b' in the catalog"
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.sampled_from("ab.-_ é"), min_size=1, max_size=6), min_size=1, max_size=3)
)
def test_lint_path_strips_the_suffix_as_pathlib_does(parts: list[str]) -> None:
    """The place lint/path names is the file's path in ``models`` without its suffix, as
    ``pathlib`` takes one off (dotted names, leading and trailing dots)."""
    from aimc.check.lint import _path_rule
    from aimc.core.loader import load_document

    place = "/".join(parts)
    assume(place == Path(place).as_posix() and place not in (".", ".."))
    doc = load_document(b"model: {id: x/y}\n", "r.yaml")
    want = Path(place).with_suffix("").as_posix()
    found = _path_rule(doc, Path("/nowhere"), "x/y", "/model/id", "model id", place)
    assert [d.message for d in found] == (
        []
        if want == "x/y"
        else [f"model id 'x/y' does not match the file's place {want!r} in the catalog"]
    )


def _resolved_alone(file: Path, cwd: Path) -> Any:
    """Where validate places ``file`` (``checker._Where``), resolving it alone."""
    from aimc.check.checker import _Where

    resolved = file.resolve()
    try:
        display = str(resolved.relative_to(cwd))
    except ValueError:
        display = str(file)
    folders: dict[str, Path] = {}
    for parent in resolved.parents:
        folders.setdefault(parent.name, parent)
    models = folders.get("models")
    place = "" if models is None else resolved.relative_to(models).as_posix()
    return _Where(display, models, folders.get("hardware"), place)


def test_each_folder_resolved_once_places_files_as_resolving_each(
    tmp_path: Path, monkeypatch
) -> None:
    """validate resolves each folder once, not each file: every file is where resolving it
    alone puts it (its name as shown, its ``models`` and ``hardware`` folders, its place),
    through linked files and folders, ``..``, absolute paths and paths outside the current
    folder."""
    from aimc.check.checker import _where, _wheres

    real = tmp_path / "real"
    for folder in ("recipes/models/org", "recipes/hardware", "models/a/models/b", "other"):
        (real / folder).mkdir(parents=True)
    for name in ("recipes/models/org/M.yaml", "recipes/hardware/h.yaml", "other/x.yaml",
                 "models/a/models/b/N.yml", "models/a/top.yaml", "recipes/here.yaml"):  # fmt: skip
        (real / name).write_text("kind: Recipe\n")
    (real / "recipes/models/org/L.yaml").symlink_to(real / "other/x.yaml")
    (real / "other/in-hw.yaml").symlink_to(real / "recipes/hardware/h.yaml")
    (tmp_path / "link").symlink_to(real)
    (real / "recipes/models/linked").symlink_to(real / "models/a")
    work = real / "recipes"
    monkeypatch.chdir(work)
    files = [
        Path("models/org/M.yaml"), Path("models/org/L.yaml"), Path("hardware/h.yaml"),
        Path("models/org/../org/M.yaml"), Path("../other/x.yaml"), Path("../other/in-hw.yaml"),
        tmp_path / "link/models/a/models/b/N.yml", tmp_path / "link/recipes/models/org/M.yaml",
        Path("models/linked/top.yaml"), Path("models/linked/models/b/N.yml"),
        real / "other/x.yaml", Path("models/org/missing.yaml"), Path("here.yaml"),
        Path("./here.yaml"), real / "recipes/here.yaml", Path("models//org/M.yaml"),
    ]  # fmt: skip
    cwd = Path.cwd().resolve()
    alone = {file: _resolved_alone(file, cwd) for file in files}
    assert {file: _where(file, cwd) for file in files} == alone
    assert _wheres(files, cwd) == alone
    shown = _wheres(files, cwd)
    assert shown[Path("models/linked/models/b/N.yml")].place == "b/N.yml"
    assert shown[Path("../other/in-hw.yaml")].hardware == work / "hardware"
