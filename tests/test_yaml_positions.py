"""The fast path's positions (``aimc.core.yaml_fast.Positions``) and keys' pointer tokens.

The one-pass loader keeps each node's parser mark and makes its (line, column) when it is
read, and builds a key's JSON Pointer token once per key text. Whatever a document holds
(keys with ``~`` and ``/``, quoted or plain, duplicates, anchors, tags, deep nesting, odd
scalars), a loaded document must answer every question about its positions as the careful
path's plain dicts do: the same pairs in the same order, equal either way round, and a
dict again once pickled, copied or written to the YAML cache.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aimc.core.loader as loader
from aimc.core import yaml_cache
from aimc.core.errors import ValidationFailed
from aimc.core.filecache import FileCache
from aimc.core.yaml_fast import Positions, fast_plain

#: Plain keys a recipe may hold: pointer escapes, slashes; and, now and then, texts that
#: resolve to something other than a string (no key: refused on either path).
PLAIN_KEYS = ["a", "a/b", "~x", "~1", "~0/~1", "x~y", "k/", "/k", "a b", "é/~", "k"] * 4
PLAIN_KEYS += ["1", "true", "null", "0x1F", ".inf", "2024-01-02", "~"]
#: Scalars a value may be: plain, quoted, odd; and, now and then, anchored, aliased, tagged.
VALUES = ["1", "x", "'q'", '"d"', "~", "-1.5e3", "[]", "{}", "null", "'a/b'", '"~0"']
VALUES = [*VALUES, "2024-13-45", "0o17", ".nan", "|-\n  text", "1e400", "0x_1"] * 6
VALUES += ["&a 1", "*a", "!!str 5", "!x y", "!!int 3", "&b x"]

_key_text = st.text(st.sampled_from("a~/01 :#'\"\\é\t"), max_size=5)
keys = (
    st.sampled_from(PLAIN_KEYS)
    | _key_text.map(lambda t: json.dumps(t))  # double quoted, JSON escapes
    | _key_text.map(lambda t: "'" + t.replace("'", "''") + "'")  # single quoted
)
trees = st.recursive(
    st.sampled_from(VALUES).map(lambda v: ("scalar", v)),
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda c: ("list", c))
        | st.lists(st.tuples(keys, inner), max_size=4).map(lambda c: ("map", c))
    ),  # duplicates too
    max_leaves=24,
)


def _emit(node: tuple[str, Any], indent: int) -> list[str]:
    """Block-style lines of a generated tree (a scalar's value kept as written)."""
    kind, body = node
    pad = " " * indent
    if kind == "scalar" or not body:
        text = body if kind == "scalar" else ("[]" if kind == "list" else "{}")
        text = text.replace("\n", "\n" + pad + "  ")
        return [pad + text]
    lines = []
    for item in body:
        head, child = (f"{item[0]}:", item[1]) if kind == "map" else ("-", item)
        inner = _emit(child, indent + 2)
        if child[0] == "scalar" or not child[1]:
            lines.append(f"{pad}{head} {inner[0].lstrip()}")
            lines += inner[1:]
        else:
            lines.append(pad + head)
            lines += inner
    return lines


def _load(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(loader, "fast_plain", lambda _text: None)
        try:
            return loader.load_document(text.encode(), "case.yaml")
        except ValidationFailed as exc:
            return [d.to_json() for d in exc.diagnostics]


def _behave_alike(ours: Any, theirs: dict[str, tuple[int, int]]) -> None:
    """``ours`` answers every question as the dict ``theirs`` does."""
    assert list(ours.items()) == list(theirs.items())
    assert ours == theirs and theirs == ours
    assert len(ours) == len(theirs) and dict(ours) == theirs and repr(ours) == repr(theirs)
    for pointer in [*theirs, "/absent", "", "/a~1b"]:
        assert (pointer in ours) == (pointer in theirs)
        assert ours.get(pointer) == theirs.get(pointer)
    for again in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours), copy.copy(ours)):
        assert type(again) is dict and list(again.items()) == list(theirs.items())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(keys, trees), min_size=1, max_size=5, unique_by=lambda kv: kv[0]))
def test_hostile_documents_have_the_careful_paths_positions(pairs: Any) -> None:
    text = "\n".join(_emit(("map", pairs), 0)) + "\n"
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, careful = _load(text, True, monkeypatch), _load(text, False, monkeypatch)
    if isinstance(careful, list):  # refused: the same diagnostic on either path
        assert fast == careful, text
        return
    assert fast.data == careful.data and fast == careful, text
    _behave_alike(fast.values, careful.values)
    _behave_alike(fast.keys, careful.keys)
    for pointer in [*careful.values, "/absent/deeper"]:
        assert fast.position(pointer) == careful.position(pointer)
        assert fast.position(pointer, key=True) == careful.position(pointer, key=True)


@pytest.mark.parametrize("depth", [1, 30, 63, 64, 65, 70, 127])
def test_deep_nesting_under_keys_to_escape(depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nesting on either side of the fast path's depth bound, under keys with ``~``, ``/``
    and quotes: the same positions, each at its line and column."""
    names = ["a/b", '"~1"', "'x/~'", "~x"]
    lines = [f"{' ' * i}{names[i % 4]}:" for i in range(depth)] + [" " * depth + "leaf: 1"]
    text = "\n".join(lines) + "\n"
    fast, careful = _load(text, True, monkeypatch), _load(text, False, monkeypatch)
    assert fast == careful
    _behave_alike(fast.values, careful.values)
    leaf = "".join("/" + ["a~1b", "~01", "x~1~0", "~0x"][i % 4] for i in range(depth)) + "/leaf"
    assert fast.values[leaf] == (depth + 1, depth + 7)
    assert fast.keys[leaf] == (depth + 1, depth + 1)
    assert (fast_plain(text) is None) == (depth >= 64)  # near the limit: the careful path


def test_a_quoted_and_a_plain_key_of_the_same_text_are_one_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key's token is made once per text (plain) or per key (quoted): the same key
    written both ways is a duplicate, and escapes land in its pointer either way."""
    for text in ('a/b: 1\n"a/b": 2\n', "'~': 1\n~x: 2\n\"~\": 3\n"):
        got = _load(text, True, monkeypatch)
        assert got == _load(text, False, monkeypatch)
        assert isinstance(got, list) and "duplicate key" in got[0]["message"]
    doc = _load("'a/b': 1\n\"~\": 2\nc~/: 3\n", True, monkeypatch)
    assert dict(doc.values) == {"": (1, 1), "/a~1b": (1, 8), "/~0": (2, 6), "/c~0~1": (3, 6)}
    assert dict(doc.keys) == {"/a~1b": (1, 1), "/~0": (2, 1), "/c~0~1": (3, 1)}


def test_the_yaml_cache_keeps_plain_dicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is kept for a fast-loaded file is the positions as dicts (``marshal`` writes no
    other mapping), read back equal."""
    shipped = yaml_cache.cache()
    files = FileCache(tmp_path, shipped.header, shipped.suffix, shipped.mode, 8)
    monkeypatch.setattr(yaml_cache, "cache", lambda: files)
    monkeypatch.setattr(yaml_cache, "_written", [0])
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    text = b"a/b:\n  - 1\n  - '~': x\n"
    first = loader.load_document(text, "k.yaml", cached=True)
    assert isinstance(first.values, Positions)
    again = loader.load_document(text, "k.yaml", cached=True)
    assert type(again.values) is dict and type(again.keys) is dict
    assert len(list(tmp_path.iterdir())) == 1
    assert again == first and list(again.values.items()) == list(first.values.items())


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("".join(f"- {i}\n" for i in range(4000)), True),
        ("".join(f"- {i}\n" for i in range(9000)), True),  # 9,000 nodes: the fast way
        ("".join(f"- {i}\n" for i in range(10_100)), False),  # past half the nodes
        ("".join(f"k{i}: {i}\n" for i in range(4900)), True),  # 9,800 nodes, keys counted
        ("".join(f"k{i}: {i}\n" for i in range(5100)), False),  # 10,200: past half
        ("".join(f"- {i}\n" for i in range(20_001)), False),  # past the node limit: refused
        ("? " + "k" * 100_000 + "\n:\n" + "".join(f"  - {i}\n" for i in range(40)), True),
        (
            "? " + "k/~" * 33_334 + "\n:\n" + "".join(f"  - {i}\n" for i in range(90)),
            False,
        ),  # pointers
        (
            "? " + "k/~" * 33_334 + "\n:\n" + "".join(f"  - {i}\n" for i in range(200)),
            False,
        ),  # refused
    ],
)
def test_a_document_near_a_limit_goes_the_careful_way(
    text: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many values, or long pointers (a long key over many values): the fast path takes a
    document well within every limit, leaves one near a limit to the careful path, which
    reads or refuses it as it always does."""
    assert (fast_plain(text) is not None) is fast
    assert _load(text, True, monkeypatch) == _load(text, False, monkeypatch)
