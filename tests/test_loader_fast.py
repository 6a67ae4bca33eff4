"""The loader's one-pass path (``aimc.core.yaml_fast.fast_plain``) gives what the careful path
gives.

``load_document`` takes the fast path's result whenever it offers one, so a difference in a
value, a type (``1`` / ``1.0`` / ``true``), a position, or an error the fast path misses
would change what every command sees. Each case is loaded twice, with the fast path and
with it switched off, and the outcomes must be identical.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import ruamel.yaml.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import aimc.core.loader as loader
import aimc.core.yaml_fast as yaml_fast
from aimc.core.errors import ValidationFailed

ROOT = Path(__file__).resolve().parent.parent


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type made part of it (``1 != 1.0 != True`` here)."""
    if isinstance(value, dict):
        return ("map", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def _outcome(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(loader, "fast_plain", lambda _text: None)
        try:
            doc = loader.load_document(text.encode(), "case.yaml")
        except ValidationFailed as exc:
            return ("error", [d.to_json() for d in exc.diagnostics])
    return ("doc", _typed(doc.data), doc.values, doc.keys, doc.sha256)


def _same(text: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    fast = _outcome(text, True, monkeypatch)
    careful = _outcome(text, False, monkeypatch)
    assert fast == careful, text
    return fast


SCALARS = [
    "1", "-1", "+1", "0", "00", "007", "0o17", "0x1F", "0b101", "1_000", "1__0", "0x", "0o",
    "1.5", "1.", ".5", "-.5", "1e3", "1E3", "1e400", "-1e400", ".inf", "-.Inf", "+.INF",
    ".nan", ".NaN", "1:20", "1:20:30", "2024-01-02", "2024-13-45", "2024-01-02T03:04:05Z",
    "2024-01-02 03:04:05.5 +01:00", "true", "True", "TRUE", "yes", "no", "on", "off", "y",
    "null", "Null", "NULL", "~", "", "=", "<<", "a", "bf16", "--flag", "'quoted'",
    '"double"', '"esc\\u00e9\\x41"', "'it''s'", "0.0.1", "12e", "1_0.5", "0x_1", "+", "-",
    "1,000", "\u0663", "\uff11", "0777", "-0", "-0.0", "9" * 40, "0x" + "f" * 40,
    str(2**63 - 1), str(2**63), str(-(2**63)), str(-(2**63) - 1), "1" + "0" * 5000,
    "0x" + "f" * 4000,
]  # fmt: skip


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_resolve_the_same(scalar: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (f"k: {scalar}\n", f"- {scalar}\n", f"a: [{scalar}, x]\n", f"{scalar}: v\n"):
        _same(text, monkeypatch)


DOCUMENTS = [
    "a: 1\na: 2\n",
    "? [1, 2]\n: x\n",
    "1: x\n",
    "null: x\n",
    "a: &x 1\nb: *x\n",
    "a: !!str 1\n",
    "%YAML 1.1\n---\na: yes\n",
    "a: 1\n---\nb: 2\n",
    "<<: {a: 1}\n",
    '"<<": 1\n',
    "a:\n  - b: [1, {c: d}]\n    e: |\n      text\n",
    "[1, 2, 3]\n",
    "just text\n",
    "a: {b: }\n",
    "a: [\n",
    "a: 'unterminated\n",
    "\t- x\n",
    "- [" * 70 + "]" * 70 + "\n",
    "a/b~c: {x/y: 1}\n",
    "a: 1\n# comment\nb: 2  # trailing\n",
    "? a\n? b\n",
    "a: 1\n...\n",
    "a: 1\n...\n---\nb: 2\n",
    "--- !t\na: 1\n",
    "%TAG !e! tag:e.com,2000:\n---\na: !e!x 1\n",
    "---\n",
    "--- a\n",
    "--- |\n  x\n",
    "&a [*a]\n",
    "a: &a\n  b: 1\nc: *a\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!timestamp 2024-01-02\n",
    "a: !!int 0x1F\n",
    "a: !!float x\n",
    "a: 1\n2024-01-02: d\n",
    "? |\n  block key\n: v\n",
    "'a': 1\n\"a\": 2\n",
    "a: 1\n- b\n",
    "{a: 1, a: 2}\n",
    "[a, b]: c\n",
    "a:\n  b:\n    c: [{d: e}, [f, {g: ~}]]\n",
    "a: b\r\nc: d\r\n",
    "a: b\u0085c: d\n",
    "\ufeffa: 1\n",
    "a:\t1\n",
    'a: "\\ud800"\n',
    "a: \x00\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_load_the_same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _same(text, monkeypatch)


def _repository_files() -> list[Path]:
    """Every YAML file of the checkout: recipes, hardware profiles, examples, the benchmark's
    data, the test corpus, test data and golden outputs."""
    return sorted(
        file
        for folder in ("recipes", "tests", "examples", "bench")
        for file in (ROOT / folder).rglob("*")
        if file.suffix in (".yaml", ".yml")
    )


def test_every_shipped_and_corpus_file_loads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _repository_files()
    assert len(files) > 300
    fast_docs = 0
    for file in files:
        text = file.read_bytes().decode("utf-8", "replace")
        if _same(text, monkeypatch)[0] == "doc" and loader.fast_plain(text) is not None:
            fast_docs += 1
    assert fast_docs > 30  # the fast path is really taken for ordinary recipes


keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(SCALARS)
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
)
data = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data, st.sampled_from([None, True, False]))
def test_dumped_data_loads_the_same(value: Any, flow: bool | None) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    out = io.StringIO()
    yaml.dump(value, out)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same(out.getvalue(), monkeypatch)


lines = st.lists(
    st.sampled_from(["a:", "  b: 1", "- x", "  - [1, 2]", "c: {d: e}", "? k", ": v", "f: |"])
    | st.sampled_from([f"g: {s}" for s in SCALARS])
    | st.text(max_size=10),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_arbitrary_lines_load_the_same(parts: list[str]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same("\n".join(parts) + "\n", monkeypatch)


RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
#: What a hostile edit may put in a recipe's line (see ``edits``).
FRAGMENTS = [
    "&a ", "*a", "!!str ", "!!int ", "!x ", "--- ", "...", "%YAML 1.1", "? ", ": ", "- ",
    "[", "]", "{", "}", ", ", "# c", "'", '"', "|", ">-", "\t", "\r", "\u0085", "\u2028",
    "\ufeff", "~", "/", "<<", "\\", "\x00", "\u00e9",
]  # fmt: skip
edits = st.lists(
    st.tuples(
        st.integers(0, 200),
        st.sampled_from(["value", "insert", "duplicate", "indent", "drop"]),
        st.sampled_from(SCALARS + FRAGMENTS) | st.text(max_size=6),
    ),
    max_size=3,
)


def _edit(text: str, changes: list[tuple[int, str, str]]) -> str:
    """``text`` with each change made at one of its lines: a new value, a fragment put at the
    value's place, the line repeated (a duplicate key) or indented, or the line dropped."""
    lines = text.split("\n")
    for at, how, what in changes:
        i = at % len(lines)
        head, sep, _tail = lines[i].partition(": ")
        if how == "value":
            lines[i] = f"{head}: {what}" if sep else f"{lines[i]}{what}"
        elif how == "insert":
            lines[i] = f"{head}: {what}{_tail}" if sep else f"{what}{lines[i]}"
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "indent":
            lines[i] = f"  {lines[i]}"
        else:
            del lines[i]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RECIPES), edits)
def test_hostile_edits_of_recipes_load_the_same(recipe: Path, changes: Any) -> None:
    """A shipped recipe (hardware profile) with hostile edits: the same data and positions,
    or the same refusal, on either path."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same(_edit(recipe.read_text(encoding="utf-8"), changes), monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS + SCALARS[:60] + ["\n", "  ", "a", "b:"]), max_size=24))
def test_token_soup_loads_the_same(parts: list[str]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same("".join(parts) + "\n", monkeypatch)


def test_scalars_resolved_before_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path keeps each plain scalar's resolution: what it kept from a value (a date,
    a number) never makes a key of it, and a warm table gives what a cold one gives."""
    texts = [f"k: {s}\n{s}: v\n- {s}\n" for s in SCALARS] + [f"k: {s}\n{s}: v\n" for s in SCALARS]
    monkeypatch.setattr(yaml_fast, "_RESOLVED", {})
    cold = [_same(text, monkeypatch) for text in texts]
    assert yaml_fast._RESOLVED  # the table was used
    assert [_same(text, monkeypatch) for text in texts] == cold
    assert _same("k: 2024-01-02\n2024-01-02: v\n", monkeypatch)[0] == "error"
    assert _same("k: 2024-01-02\nj: 1\n", monkeypatch)[1] == (
        "map",
        [("k", ("str", "2024-01-02")), ("j", ("int", 1))],
    )


def test_without_libyaml_the_pure_parser_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ruamel.yaml.clib both paths read with ruamel.yaml's own parser, and agree."""
    monkeypatch.setattr(ruamel.yaml.main, "CParser", None)
    fast_docs = 0
    for file in RECIPES:
        text = file.read_text(encoding="utf-8")
        fast_docs += _same(text, monkeypatch)[0] == "doc" and yaml_fast.fast_plain(text) is not None
    assert fast_docs == len(RECIPES)
    for text in DOCUMENTS:
        _same(text, monkeypatch)


#: Numbers written as decimals, and their near misses (a sign, a leading zero, an
#: underscore, an exponent, too many digits, a trailing dot).
_NUMBERS = st.one_of(
    st.integers(-(10**16), 10**16).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"\A[-+]?[0-9_]{1,22}(\.[0-9_]{0,22})?([eE][-+]?[0-9]{1,3})?\Z"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_NUMBERS)
def test_numbers_resolve_the_same_first_time(number: str) -> None:
    """A number new to the table (resolved without the constructor when it is a short
    plain decimal) is what the careful path makes of it, as a value, a key, in a list."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(yaml_fast, "_RESOLVED", {})
        for text in (f"k: {number}\n", f"{number}: v\n", f"- [{number}, {number}]\n"):
            _same(text, monkeypatch)
            yaml_fast._RESOLVED.clear()
