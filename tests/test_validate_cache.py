"""``validate --cache FILE``: verdicts reused only for unchanged inputs, never wrongly.

A cached run must print exactly what a fresh run prints; any change a verdict depends on
(the file, its place, a hardware profile, the engine vocabulary) checks the file afresh;
a damaged, foreign or hostile cache file costs a fresh check, never a crash or a wrong
verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.check.verdicts import Verdicts
from aimc.core.diagnostics import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
QWEN = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()


def _repo(tmp_path: Path) -> Path:
    """A recipe repository with valid files, an error, a warning and a duplicate id."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples/recipe-repo/models", repo / "models")
    shutil.copytree(ROOT / "examples/recipe-repo/hardware", repo / "hardware")
    for i in range(4):
        body = QWEN.replace("id: Qwen/Qwen3-8B", f"id: team/model-{i}", 1)
        (repo / "models/team").mkdir(parents=True, exist_ok=True)
        (repo / "models/team" / f"model-{i}.yaml").write_text(body)
    bad = QWEN.replace("id: Qwen/Qwen3-8B", "id: team/bad", 1).replace("layers: 36", "layers: x")
    (repo / "models/team/bad.yaml").write_text(bad)
    dup = QWEN.replace("id: Qwen/Qwen3-8B", "id: team/model-0", 1)
    (repo / "models/team/dup.yaml").write_text(dup)
    (repo / "hardware/spare.yaml").write_text(
        (repo / "hardware/lab-h100x4.yaml").read_text().replace("lab-h100x4", "spare", 1)
    )
    return repo


def _validate(cli, repo: Path, *extra: str) -> tuple[int, str]:
    done = cli("validate", "models", "hardware", *extra, cwd=repo)
    assert "Traceback" not in done.err
    if "json" in extra:
        data = json.loads(done.out)
        data.pop("timestamp")
        return done.code, json.dumps(data)
    return done.code, done.out


def test_a_cached_run_reports_exactly_what_a_fresh_run_does(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    cache = tmp_path / "cache" / "verdicts.json"
    fresh = _validate(cli, repo)
    assert fresh[0] == 2
    assert "layers" in fresh[1] and "also defined in" in fresh[1] and "spare" in fresh[1]
    assert _validate(cli, repo, "--cache", str(cache)) == fresh
    stored = json.loads(cache.read_text())["entries"]
    assert len(stored) == 7  # every recipe file; the profiles are always checked
    assert _validate(cli, repo, "--cache", str(cache)) == fresh
    for fmt in ("json", "github"):
        plain = _validate(cli, repo, "--format", fmt)
        assert _validate(cli, repo, "--format", fmt, "--cache", str(cache)) == plain


def test_a_changed_input_is_checked_afresh(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    cache = tmp_path / "verdicts.json"
    _validate(cli, repo, "--cache", str(cache))
    # The file itself: fixed, then broken in another way.
    bad = repo / "models/team/bad.yaml"
    bad.write_text(bad.read_text().replace("layers: x", "layers: 36"))
    code, out = _validate(cli, repo, "--cache", str(cache))
    assert "layers" not in out
    # A hardware profile every recipe is linted against: far less memory, so the
    # configurations offering it no longer fit (a verdict cached under the old profile
    # would hide that).
    profile = repo / "hardware/lab-h100x4.yaml"
    text = profile.read_text()
    assert "memory_gib: 79.19" in text
    profile.write_text(text.replace("memory_gib: 79.19", "memory_gib: 4"))
    code, out = _validate(cli, repo, "--cache", str(cache))
    assert code == 2 and "does not fit" in out
    assert _validate(cli, repo) == (code, out)
    # The same bytes in another place: the path in every diagnostic changes.
    (repo / "models/team/moved").mkdir()
    shutil.move(bad, repo / "models/team/moved/bad.yaml")
    assert _validate(cli, repo, "--cache", str(cache)) == _validate(cli, repo)


def test_a_damaged_or_hostile_cache_file_is_a_fresh_check(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    fresh = _validate(cli, repo)
    cache = tmp_path / "verdicts.json"
    for content in (
        b"",
        b'{"format": "aimc-validate-cache/1", "entries": [1]}',
        b'{"format": "aimc-validate-cache/1", "entries": {"k": {"diagnostics": 5}}}',
        b'{"format":"aimc-validate-cache/1","entries":' + b"[" * 200_000,
    ):
        cache.write_bytes(content)
        assert _validate(cli, repo, "--cache", str(cache)) == fresh
        json.loads(cache.read_text())  # rewritten as a cache
    # Not a cache: a fresh check, and the file is left as it was (it may be a recipe).
    for content in (b"\x00\xff" * 100, b"[1, 2]", b"{" * 100_000, b"apiVersion: aimc/v1\n"):
        cache.write_bytes(content)
        code, out = _validate(cli, repo, "--cache", str(cache))
        assert (code, out) == fresh
        assert cache.read_bytes() == content
    # Every stored verdict replaced by "valid": the keys are right, the entries forged
    # into another shape are refused one by one.
    cache.unlink()
    _validate(cli, repo, "--cache", str(cache))
    data = json.loads(cache.read_text())
    for entry in data["entries"].values():
        entry["diagnostics"] = [{"path": 1}]
    cache.write_text(json.dumps(data))
    assert _validate(cli, repo, "--cache", str(cache)) == fresh


def test_the_cache_file_is_never_written_through_a_link(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "verdicts.json"
    os.symlink(target, link)
    done = cli("validate", "models", "hardware", "--cache", str(link), cwd=repo)
    assert done.code == 2
    assert target.read_text() == "keep me"
    assert link.is_symlink()  # neither written through nor replaced
    assert "not writing the validate cache" in done.err


def test_an_unwritable_cache_is_a_warning_not_a_failure(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = cli("validate", "models", "--cache", str(blocker / "verdicts.json"), cwd=repo)
    assert done.code == 2 and "Traceback" not in done.err
    assert "cannot write the validate cache" in done.err


def test_a_pipe_or_a_recipe_at_the_cache_path_is_neither_waited_for_nor_replaced(
    cli, tmp_path: Path
) -> None:
    """Failed before: a FIFO hung validate, and '--cache my-recipe.yaml' replaced the recipe
    with the cache."""
    repo = _repo(tmp_path)
    fresh = _validate(cli, repo)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _validate(cli, repo, "--cache", str(fifo)) == fresh  # returns: not waited for
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    recipe = next((repo / "models").rglob("*.yaml"))
    before = recipe.read_bytes()
    done = cli("validate", "models", "hardware", "--cache", str(recipe), cwd=repo)
    assert (done.code, done.out) == fresh
    assert recipe.read_bytes() == before and "not writing the validate cache" in done.err


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
fields = {
    "path": st.text(max_size=10) | json_values,
    "line": st.integers(-5, 5) | json_values,
    "column": st.integers(0, 5) | st.booleans(),
    "message": st.text(max_size=300),
    "pointer": st.text(max_size=10),
    "severity": st.sampled_from(["error", "warning", "fatal", 1]),
    "rule": st.text(max_size=10),
    "hint": st.none() | st.text(max_size=10) | st.integers(),
}
diagnostics = st.fixed_dictionaries(fields) | json_values
entries = (
    st.fixed_dictionaries(
        {
            "diagnostics": st.lists(diagnostics, max_size=3) | json_values,
            "kind": st.sampled_from([None, "Recipe", "HardwareProfile", 3]),
            "identity": st.text(max_size=10) | json_values,
            "anchor": st.none() | diagnostics,
            "hardware": st.lists(st.text(max_size=5) | st.integers(), max_size=3) | json_values,
        }
    )
    | json_values
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_any_stored_entry_is_refused_or_well_formed(entry: Any) -> None:
    """Whatever a cache file holds under a key, ``get`` returns None or an entry whose
    diagnostics are real Diagnostics with the types the report needs."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "c.json"
        file.write_text(json.dumps({"format": "aimc-validate-cache/1", "entries": {"k": entry}}))
        found = Verdicts(file).get("k")
    if found is None:
        return
    assert found["kind"] in (None, "Recipe")
    for d in [*found["diagnostics"], *([found["anchor"]] if found["anchor"] else [])]:
        assert isinstance(d, Diagnostic)
        assert type(d.line) is int and type(d.column) is int
        assert d.severity in ("error", "warning")
        assert "\n" not in d.message and len(d.message) < 1000
        d.format()
    assert all(isinstance(h, str) for h in found["hardware"])


def test_a_moved_repository_reuses_its_verdicts(cli, tmp_path: Path) -> None:
    """Another CI workspace: the same repository at another absolute path hits the cache
    (no new entries), and reports what a fresh check reports there."""
    repo = _repo(tmp_path)
    cache = tmp_path / "verdicts.json"
    _validate(cli, repo, "--cache", str(cache))
    assert len(json.loads(cache.read_text())["entries"]) == 7
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(repo, moved)
    assert _validate(cli, moved, "--cache", str(cache)) == _validate(cli, moved)
    assert len(json.loads(cache.read_text())["entries"]) == 7
