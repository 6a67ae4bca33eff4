"""Parsed YAML files kept by content (aimc/core/yaml_cache.py, through
``aimc.core.loader.read_document``): a file read before is given back without parsing,
exactly as the loader made it; another text, a damaged file or a refused document never
gets another's result; a process writes a bounded number of files."""

from __future__ import annotations

import io
import marshal
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.core import loader, yaml_cache
from aimc.core.errors import ValidationFailed
from aimc.core.filecache import FileCache
from tests.helpers.damage import damaged, damages, framed

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"


class Kept:
    """The test's own cache folder, and the file the test reads."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shipped = yaml_cache.cache()
        self.folder = tmp_path / "kept"
        files = FileCache(self.folder, shipped.header, shipped.suffix, shipped.mode, 256)
        monkeypatch.setattr(yaml_cache, "cache", lambda: files)
        monkeypatch.setattr(yaml_cache, "_written", [0])  # this process has written nothing
        monkeypatch.setattr(sys, "dont_write_bytecode", False)
        self.file = tmp_path / "doc.yaml"

    def new_process(self) -> None:
        """As in a new process: nothing written yet."""
        yaml_cache._written[0] = 0

    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir()) if self.folder.exists() else []

    def read(self, text: str | bytes) -> Any:
        """``read_document`` of a file holding ``text``: the document, typed, or the error."""
        self.file.write_bytes(
            text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        )
        try:
            return _outcome(loader.read_document(self.file))
        except ValidationFailed as exc:
            return ("error", [d.to_json() for d in exc.diagnostics])


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type made part of it (``1 != 1.0 != True`` here)."""
    if isinstance(value, dict):
        return ("map", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def _outcome(doc: loader.Document) -> Any:
    return ("doc", doc.path, _typed(doc.data), doc.values, doc.keys, doc.sha256)


def _parsed_anew(path: Path, raw: bytes) -> Any:
    """What the loader makes of ``raw`` without the cache."""
    try:
        return _outcome(loader.load_document(raw, str(path)))
    except ValidationFailed as exc:
        return ("error", [d.to_json() for d in exc.diagnostics])


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kept:
    return Kept(tmp_path, monkeypatch)


def _no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(loader, "fast_plain", refuse)
    monkeypatch.setattr(loader, "_careful", refuse)


def test_a_file_read_before_is_given_back_without_parsing(
    kept: Kept, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = RECIPE.read_text()
    first = kept.read(text)
    assert first[0] == "doc"
    [file] = kept.files()
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    _no_parser(monkeypatch)
    assert kept.read(text) == first


def test_the_careful_path_is_kept_too(kept: Kept, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: &x [1, 2]\nb: *x\n"  # an alias: the careful path
    first = kept.read(text)
    assert first[0] == "doc" and loader.fast_plain(text) is None
    _no_parser(monkeypatch)
    assert kept.read(text) == first


SCALARS = [
    "1", "1.0", "1e0", "true", "True", "yes", "null", "~", "", "'1'", '"1"', "0x1", "0o1",
    "01", "2024-01-02", ".inf", ".nan", "-0", "-0.0", "1_0", "a", "'a'", '"\\u0041"', "[1]",
    "{a: 1}", "[1, ]", "!!str 1", "&a 1", "1 # c", "9" * 30,
]  # fmt: skip
keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=5)
data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | keys,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)


def _dumped(value: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


TEXTS = st.one_of(
    st.tuples(st.sampled_from(SCALARS), st.sampled_from(["k: {}\n", "- {}\n", "{}: v\n"])).map(
        lambda p: p[1].format(p[0])
    ),
    data.map(_dumped),
    st.text(max_size=40),
    st.binary(max_size=40),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=TEXTS, second=TEXTS)
def test_another_text_never_gets_another_files_result(
    kept: Kept, first: str | bytes, second: str | bytes
) -> None:
    kept.new_process()
    kept.read(first)  # kept when the loader accepts it
    got = kept.read(second)
    assert got == _parsed_anew(kept.file, kept.file.read_bytes())
    assert kept.read(first) == _parsed_anew(kept.file, kept.file.read_bytes())


def test_a_refused_document_is_never_kept(kept: Kept) -> None:
    for text in ("a: [\n", "a: 1\na: 2\n", "", "- [" * 200 + "]" * 200 + "\n"):
        first = kept.read(text)
        assert first[0] == "error"
        assert kept.read(text) == first
    assert kept.files() == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(damage=damages(9000, ["not a triple", "not marshal"]))
def test_a_damaged_or_foreign_file_is_ignored_and_rewritten(kept: Kept, damage: object) -> None:
    text = RECIPE.read_text()
    kept.new_process()
    expected = kept.read(text)
    [file] = kept.files()
    good = file.read_bytes()
    if isinstance(damage, str):  # checked files that hold something else
        body = marshal.dumps([1, 2, 3]) if damage == "not a triple" else b"\xff\x00"
        bad = framed(yaml_cache.cache(), body)
    else:
        bad = damaged(good, damage)
    file.write_bytes(bad)
    kept.new_process()
    assert kept.read(text) == expected
    assert file.read_bytes() == good  # parsed again and rewritten


def test_a_process_writes_a_bounded_number_of_files(kept: Kept) -> None:
    for i in range(yaml_cache.MAX_WRITES + 5):
        assert kept.read(f"n: {i}\n")[0] == "doc"
    assert len(kept.files()) == yaml_cache.MAX_WRITES


def test_nothing_is_kept_without_bytecode(kept: Kept, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    kept.read("a: 1\n")
    assert kept.files() == []


def test_validate_reads_each_file_anew(kept: Kept, monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_document`` (what ``validate`` reads each recipe with) neither keeps nor takes
    what is kept: a repository's validation costs what it did."""
    loader.load_document(b"a: 1\n", "x.yaml")
    assert kept.files() == []
    kept.read("a: 1\n")
    _no_parser(monkeypatch)
    with pytest.raises(AssertionError, match="parsed again"):
        loader.load_document(b"a: 1\n", "x.yaml")
