"""The load stage: plain data plus exact positions, and one diagnostic for bad text."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.core.errors import ValidationFailed
from aimc.core.loader import escape_pointer, load_document

TEXT = b"""\
model:
  id: org/name
  facts:
    layers: 32
list:
  - a
  - {b: 1, c: [x, y]}
"""


def test_positions_of_keys_and_values() -> None:
    doc = load_document(TEXT, "f.yaml")
    assert doc.data == {
        "model": {"id": "org/name", "facts": {"layers": 32}},
        "list": ["a", {"b": 1, "c": ["x", "y"]}],
    }
    assert doc.keys["/model/facts/layers"] == (4, 5)
    assert doc.values["/model/facts/layers"] == (4, 13)
    assert doc.values["/list/1/c/1"] == (7, 19)
    assert doc.keys["/list/1/b"] == (7, 6)


def test_missing_pointer_falls_back_to_the_nearest_parent() -> None:
    doc = load_document(TEXT, "f.yaml")
    assert doc.position("/model/facts/heads") == doc.values["/model/facts"]


def _error(raw: bytes):
    with pytest.raises(ValidationFailed) as info:
        load_document(raw, "x.yaml")
    (diag,) = info.value.diagnostics
    return diag


def test_duplicate_key_points_at_the_second_one() -> None:
    diag = _error(b"a: 1\nb:\n  c: 1\n  c: 2\n")
    assert (diag.line, diag.column) == (4, 3)
    assert diag.hint == "first defined at line 3"


def test_bad_byte_is_located_by_line_and_column() -> None:
    diag = _error(b"a: 1\nb: 2\nc: \xff\n")
    assert (diag.line, diag.column, diag.rule) == (3, 4, "yaml")
    assert "not UTF-8" in diag.message


def test_control_character_is_rejected() -> None:
    diag = _error(b"a: 1\nb: x\x07y\n")
    assert (diag.line, diag.column) == (2, 5)
    assert "U+0007" in diag.message


def test_several_documents_are_rejected() -> None:
    diag = _error(b"a: 1\n---\nb: 2\n")
    assert diag.line == 2
    assert "more than one YAML document" in diag.message


def test_non_string_keys_are_rejected() -> None:
    diag = _error(b"a:\n  1: x\n")
    assert (diag.line, diag.column) == (2, 3)


def test_bom_is_accepted() -> None:
    assert load_document(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}


def test_bad_byte_after_a_bom_is_the_one_named_and_located() -> None:
    """Failed before: the utf-8-sig codec's error offset skipped the BOM (byte 0x62, column 2)."""
    diag = _error(b"\xef\xbb\xbfab: \xff\n")
    assert (diag.line, diag.column) == (1, 5)
    assert "(byte 0xff)" in diag.message


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    assert load_document(b"a: " + b"[" * 100 + b"]" * 100 + b"\n", "x.yaml").data["a"]
    diag = _error(b"a: " + b"[" * 2000 + b"]" * 2000 + b"\n")
    assert (diag.path, diag.message) == ("x.yaml", "YAML document is nested too deeply")


def test_merge_keys_are_rejected() -> None:
    diag = _error(b"a: &x {b: 1}\nc:\n  <<: *x\n")
    assert (diag.line, diag.column) == (3, 3)


KEYS = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="_-/~."),
    min_size=1,
    max_size=8,
)
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),  # aimc reads 64-bit integers (test_limits: beyond)
    st.booleans(),
    st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=10),
    st.none(),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(KEYS, inner, min_size=1, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, TREES, min_size=1, max_size=5))
def test_any_mapping_round_trips_and_every_key_is_located(data: dict) -> None:
    buf = io.StringIO()
    YAML().dump(data, buf)
    text = buf.getvalue()
    doc = load_document(text.encode(), "p.yaml")
    assert doc.data == data
    lines = text.splitlines()

    def walk(node, pointer: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                child = f"{pointer}/{escape_pointer(k)}"
                line, col = doc.keys[child]
                # the key's text (maybe quoted) starts at that column
                assert lines[line - 1][col - 1 :].lstrip("'\"").startswith(k[:1])
                walk(v, child)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{pointer}/{i}")

    walk(data, "")


def test_a_pointer_escapes_each_token() -> None:
    """The one JSON Pointer builder (lint, schema and interop used three copies)."""
    from aimc.core.loader import pointer

    assert pointer("configurations", 0, "args", "a/b~c") == "/configurations/0/args/a~1b~0c"
    assert pointer() == ""


_LINE_PIECES = ["#", "# c", " ", "\t", "a", "k: v", "\n", "\r", "\r\n", "\x85", "\u2028", "\x1c"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_LINE_PIECES) | st.text(max_size=3), max_size=12).map("".join),
    st.integers(0, 520),
    st.sampled_from([" ", "#", "\n", "x"]),
)
def test_a_file_is_empty_exactly_when_every_line_is_blank_or_a_comment(
    tail: str, pad: int, filler: str
) -> None:
    """Told from the file's first lines when one of them has content, else from all of
    them: the same verdict as looking at every line, whatever straddles the head's end."""
    text = filler * pad + tail
    every = all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines())
    try:
        load_document(text.encode(), "e.yaml")
        refused = False
    except ValidationFailed as exc:
        refused = exc.diagnostics[0].message == "file is empty: expected a YAML mapping"
    assert refused == every, repr(text)
