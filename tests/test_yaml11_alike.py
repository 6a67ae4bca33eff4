"""lint/yaml-1.1 parses a file again only when its data cannot tell (``_alike``), and gives
the same warnings as parsing every file: on every YAML file of the repository and on
documents made of the spellings YAML 1.1 and 1.2 read apart, in every style."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import aimc.check.lint_yaml11 as rule
from aimc.core import yaml11
from aimc.core.errors import ValidationFailed
from aimc.core.loader import Document, load_document
from aimc.core.yaml_fast import fast_plain
from tests.conftest import ROOT


def _full(doc: Document, text: str) -> list[Any]:
    """The warnings as the rule gives them parsing the text in every case (neither the
    loader's word nor :func:`rule._alike` taken)."""
    alike = rule._alike
    rule._alike = lambda _doc, _text: False  # type: ignore[assignment]
    try:
        return rule.lint_yaml11(dataclasses.replace(doc, yaml11_alike=False), text)
    finally:
        rule._alike = alike  # type: ignore[assignment]


def _loaded(raw: bytes, name: str) -> Document | None:
    try:
        return load_document(raw, name)
    except ValidationFailed:
        return None


def _files() -> list[Path]:
    found = [*ROOT.joinpath("recipes").rglob("*.y*ml"), *ROOT.joinpath("tests").rglob("*.y*ml")]
    return sorted(f for f in found if f.is_file())


def test_every_yaml_file_of_the_repository_warns_as_before() -> None:
    checked = warned = 0
    for file in _files():
        raw = file.read_bytes()
        doc = _loaded(raw, str(file))
        if doc is None:
            continue
        text = raw.decode("utf-8", errors="replace")
        assert rule.lint_yaml11(doc, text) == _full(doc, text), file
        checked += 1
        warned += bool(_full(doc, text))
    assert checked > 200 and warned


def test_a_shipped_recipe_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before: every file was parsed a second time (a third of validate's time
    once the fit was cheap)."""

    def parse(_text: str) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(rule, "_plain_scalars", parse)
    for file in sorted(ROOT.joinpath("recipes").rglob("*.yaml")):
        raw = file.read_bytes()
        doc = load_document(raw, str(file))
        assert rule.lint_yaml11(doc, raw.decode()) == [], file


#: Spellings YAML 1.1 and 1.2 read apart (plain), and alike.
_APART = [
    "yes", "No", "on", "OFF", "017", "0o17", "0x1F", "0b101", "1e9", "32.762e9", "1_000",
    "1:20", "~", "null", "", "2024-01-01", "2024-1-1 10:00:00", ".inf", "-.Inf", ".nan",
    "+5", "-0", "1.", "0.", "00", "+.5", "1e-3", "-.5", ".5", "y",
]  # fmt: skip
_ALIKE = ["abc", "a b", "8#x", "1", "0", "12", "-3", "1.5", "32.762e+9", "6.02E+23", "true",
          "False", "TRUE", "bf16", "Qwen/Qwen3-8B", "h100"]  # fmt: skip
_KEYS = ["a", "b", "key", "yes", "No", "on", "1", "017", "1e3", "2024-01-01"]


def _scalar(word: str, style: str) -> str:
    if style == "single":
        return "'" + word.replace("'", "''") + "'"
    if style == "double":
        return '"' + word + '"'
    return word


_STYLE = st.sampled_from(["plain", "plain", "single", "double"])
_SCALAR = st.builds(_scalar, st.sampled_from(_ALIKE) | st.sampled_from(_APART), _STYLE)
#: Keys: numbers and dates are no string keys unless quoted (the loader refuses them).
_KEY = st.builds(_scalar, st.sampled_from(_KEYS), st.sampled_from(["single", "double"])) | (
    st.sampled_from(["a", "b", "key", "yes", "No", "on"])
)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    """A mapping of scalars, flow lists and mappings, sequences, a nested block and block
    scalars."""
    lines = []
    keys = draw(st.lists(_KEY, min_size=1, max_size=6, unique_by=lambda k: k.strip("'\"")))
    for key in keys:
        shape = draw(
            st.sampled_from(["scalar", "flow list", "flow map", "sequence", "nested", "block"])
        )
        comment = draw(st.sampled_from(["", "  # note"]))
        if shape == "scalar":
            lines.append(f"{key}: {draw(_SCALAR)}{comment}")
        elif shape == "flow list":
            items = draw(st.lists(_SCALAR, max_size=3))
            lines.append(f"{key}: [{', '.join(items)}]{comment}")
        elif shape == "flow map":
            lines.append(f"{key}: {{k: {draw(_SCALAR)}, {draw(_KEY)}: {draw(_SCALAR)}}}")
        elif shape == "sequence":
            lines.append(f"{key}:")
            lines += [f"  - {draw(_SCALAR)}" for _ in range(draw(st.integers(1, 3)))]
        elif shape == "nested":
            inner = draw(st.lists(_KEY, min_size=1, max_size=3, unique_by=lambda k: k.strip("'\"")))
            lines.append(f"{key}:")
            lines += [f"  {k}: {draw(_SCALAR)}" for k in inner]
        else:
            lines += [f"{key}: |", f"  {draw(st.sampled_from(_APART))}"]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(_documents())
def test_documents_of_tricky_spellings_warn_as_before(text: str) -> None:
    doc = _loaded(text.encode(), "doc.yaml")
    assume(doc is not None)
    assert doc is not None
    assert rule.lint_yaml11(doc, text) == _full(doc, text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\r\nb: yes\r\n",  # line breaks Python counts as YAML does not
        "\ufeffa: yes\n",  # a BOM
        "a: &x yes\nb: *x\n",  # an anchor and an alias
        "a: !!str 017\nb: 017\n",  # a tag
        "a:\nb: on\n",  # a null
        "a: 'x\x85y'\nb: 017\n",  # YAML counts NEL as a line break, str.split does not
        'a: "x\u2029y"\nb: on\n',  # and the paragraph separator
        "a: [yes, 'no', \"on\"]\nb: {c: 017, 'd': 1e9}\n",
        "a: >\n  yes\nb: |-\n  017\n",
    ],
)
def test_odd_documents_warn_as_before(text: str) -> None:
    doc = _loaded(text.encode(), "doc.yaml")
    assert doc is not None
    assert rule.lint_yaml11(doc, text) == _full(doc, text)


def test_the_loaders_word_spares_the_rule_its_own_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before: every file's data and text were walked again (``_alike``) although the
    loader had seen every scalar; now a document the loader read in one pass answers."""

    def look(_doc: Document, _text: str) -> bool:
        raise AssertionError("looked again")

    monkeypatch.setattr(rule, "_alike", look)
    for file in sorted(ROOT.joinpath("recipes").rglob("*.yaml")):
        raw = file.read_bytes()
        doc = load_document(raw, str(file))
        assert doc.yaml11_alike, file
        assert rule.lint_yaml11(doc, raw.decode()) == [], file


#: Plain spellings YAML 1.1 readers take otherwise (or not), and characters to make more.
_HOSTILE = [*_APART, *_ALIKE, "017", "1_000", "0x1f", "0X1F", ".5", "1e3", "2001-01-01",
            "2001-1-1 1:02:03", "~", "NULL", "Null", "nULL", "Yes", "YES", "n", "On", "oN",
            "0o7", "0b1_0", "-0x_1", "1:00:00", "190:20:30.15", "+.inf", ".NAN", "1.5e+3",
            "6.8523015e+5", "685.230_15e+03", "-1_0", "0_7", "=", "<<"]  # fmt: skip
_SOUP = st.text(st.sampled_from("0123456789._-+:eExXbBoOnNyYsSlLuUfFtT~ "), min_size=1, max_size=8)
_PLAIN = st.sampled_from(_HOSTILE) | _SOUP.map(str.strip).filter(bool)
#: Keys: mostly strings to YAML 1.2 (a plain number or date is no key: the loader refuses it).
_HOSTILE_KEY = st.one_of(_KEY, _KEY, _KEY, _PLAIN)


@st.composite
def _node(draw: st.DrawFn) -> str:
    """A scalar: plain, quoted, tagged, anchored; or a flow list or mapping of them."""
    word = draw(_PLAIN)
    how = draw(st.sampled_from(["plain"] * 5 + ["single", "double", "tag", "anchor", "flow"]))
    if how == "tag":
        return f"!!{draw(st.sampled_from(['str', 'int', 'float', 'bool', 'null']))} {word}"
    if how == "anchor":
        return f"&y {word}"
    if how == "flow":
        inner = [draw(_PLAIN) for _ in range(draw(st.integers(0, 3)))]
        if draw(st.booleans()):
            return "[" + ", ".join(inner) + "]"
        return "{" + ", ".join(f"{draw(_HOSTILE_KEY)}: {w}" for w in inner) + "}"
    return _scalar(word, how if how != "plain" else "plain")


@st.composite
def _hostile_documents(draw: st.DrawFn) -> str:
    """Mappings with hostile plain keys and values, sequences, nesting, an alias, a BOM,
    CRLF line ends."""
    anchored = draw(st.integers(0, 3)) == 0  # an anchor: the loader's careful path
    lines = [f"anchored: &x {draw(_PLAIN)}"] if anchored else []
    shapes = ["scalar", "scalar", "sequence", "nested"] + ["alias"] * anchored
    keys = st.lists(_HOSTILE_KEY, min_size=1, max_size=5, unique_by=lambda k: k.strip("'\""))
    for key in draw(keys):
        shape = draw(st.sampled_from(shapes))
        if shape == "scalar":
            lines.append(f"{key}: {draw(_node())}")
        elif shape == "sequence":
            lines += [f"{key}:", *(f"- {draw(_node())}" for _ in range(draw(st.integers(1, 3))))]
        elif shape == "nested":
            lines += [f"{key}:", f"  {draw(_HOSTILE_KEY)}: {draw(_node())}"]
        else:
            lines.append(f"{key}: *x")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n"
    return draw(st.sampled_from(["", "\ufeff"])) + text


@settings(max_examples=250, deadline=None)
@given(_hostile_documents())
def test_hostile_documents_the_loader_calls_alike_have_no_warning(text: str) -> None:
    """The loader's word (every plain scalar reads alike in YAML 1.1) never hides a warning
    that parsing the text again finds, and the rule gives the warnings it gave."""
    raw = text.encode()
    doc = _loaded(raw, "doc.yaml")
    assume(doc is not None)
    assert doc is not None
    seen = raw.decode("utf-8", errors="replace")  # the text the checker hands the rule
    full = _full(doc, seen)
    if doc.yaml11_alike:
        assert full == []
    assert rule.lint_yaml11(doc, seen) == full


@settings(max_examples=300, deadline=None)
@given(_PLAIN, st.sampled_from(["k: {}\n", "{}: v\n", "- {}\n", "k: [{}, x]\n", "{{{}: v}}\n"]))
def test_one_plain_scalar_reads_alike_exactly_when_nothing_is_warned(word: str, shape: str) -> None:
    """For a document the loader reads in one pass, its word is the rule's own answer."""
    text = shape.format(word)
    doc = _loaded(text.encode(), "doc.yaml")
    assume(doc is not None and fast_plain(text) is not None)
    assert doc is not None
    assert doc.yaml11_alike == (_full(doc, text) == []), text


@settings(max_examples=300, deadline=None)
@given(st.from_regex(yaml11.DECIMAL.pattern.replace("\\Z", ""), fullmatch=True))
def test_a_plain_decimal_is_the_same_number_to_yaml_1_1(text: str) -> None:
    """The loader's shortcut for plain decimals: a YAML 1.1 reader makes int(text) or
    float(text) of them too."""
    ours = float(text) if "." in text else int(text)
    assert yaml11.read11(text) == ("float" if "." in text else "int", ours)
    assert yaml11.alike11(text, ours)
    assert not yaml11.alike11(text, text) and not yaml11.alike11(text, float(ours) + 1)
