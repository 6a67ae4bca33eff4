"""The compiled schema check (aimc/domain/schema_compiler.py) gives jsonschema's verdict.

``check_schema`` trusts a "valid" from the compiled check without asking jsonschema, so a
document the compiled check accepts and jsonschema refuses would pass validation silently.
These tests compare both on every shipped recipe and profile and on random edits of them.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.core.loader import read_document
from aimc.domain.schema import KINDS, check_schema, load_schema, validator_class
from aimc.domain.schema_compiler import Unsupported, compile_schema

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "recipes").rglob("*.yaml"))
DOCS = [read_document(p).data for p in SHIPPED]
SCHEMAS = {kind: load_schema(name) for kind, name in KINDS.items()}
COMPILED = {kind: compile_schema(schema) for kind, schema in SCHEMAS.items()}
#: jsonschema as aimc runs it (JSON Schema's own '$' in patterns: see validator_class).
Draft202012Validator = validator_class()
JSONSCHEMA = {kind: Draft202012Validator(schema) for kind, schema in SCHEMAS.items()}


def _agree(kind: str, data: Any) -> None:
    ours, theirs = COMPILED[kind](data), JSONSCHEMA[kind].is_valid(data)
    assert ours == theirs, f"compiled says {ours}, jsonschema {theirs} for {json.dumps(data)}"


def test_every_shipped_document_is_valid_to_both() -> None:
    assert len(DOCS) > 20
    for data in DOCS:
        assert COMPILED[data["kind"]](data), data.get("name") or data["model"]["id"]
        _agree(data["kind"], data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, 1.0, 2.0, -1, 0.5, "", "bf16", "vllm", "x" * 300, "a/b", "--x"])
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _pointers(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _pointers(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _pointers(value, (*prefix, i))
    return out


@st.composite
def edited(draw: st.DrawFn) -> Any:
    """A shipped document with one to three random edits: a value replaced, a key removed,
    a key added, a list item duplicated."""
    data = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_pointers(data)))
        if not path:
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add", "duplicate"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_edited_documents_get_the_same_verdict(data: Any) -> None:
    for kind in KINDS:
        _agree(kind, data)


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "integer"}, 1.0, True),  # 2020-12: a float with no fraction is an integer
        ({"type": "integer"}, True, False),
        ({"type": "number"}, False, False),
        ({"enum": [1]}, True, False),
        ({"enum": [1]}, 1.0, True),
        ({"const": [1, {"a": True}]}, [1.0, {"a": True}], True),
        ({"uniqueItems": True}, [1, True], True),
        ({"uniqueItems": True}, [1, 1.0], False),
        ({"uniqueItems": True}, [{"a": [1]}, {"a": [1]}], False),
        ({"minimum": 0}, math.nan, True),  # NaN fails no comparison (check_schema refuses it)
        ({"maxLength": 2}, "ab", True),
        ({"pattern": "^a"}, 5, True),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"Ab": 1}, False),
        # '$' is the end of the text (ECMA 262), not also before a final newline (Python)
        ({"pattern": "^[a-z]+$"}, "abc\n", False),
        ({"pattern": "^[a-z]+$"}, "abc", True),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"rtx\n": 1}, False),
        ({"pattern": "^a[$]$"}, "a$", True),
        ({"pattern": "^a\\$$"}, "a$", True),
        ({"pattern": "^a\\$$"}, "a$\n", False),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
        ({"$defs": {"n": {"type": "string"}}, "items": {"$ref": "#/$defs/n"}}, ["a", 1], False),
    ],
)
def test_keyword_semantics_match_jsonschema(
    schema: dict[str, Any], value: Any, valid: bool
) -> None:
    assert compile_schema(schema)(value) is valid
    assert Draft202012Validator(schema).is_valid(value) is valid


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"$ref": "https://example.com/other.json"},
        {"$ref": "#/$defs/missing"},
        {"type": "date"},
    ],
)
def test_unsupported_schemas_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        compile_schema(schema)


def test_an_invalid_document_still_gets_jsonschemas_diagnostics(tmp_path: Path) -> None:
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("layers: 36", "layers: many", 1))
    problems = check_schema(read_document(bad))
    assert [d.message for d in problems] == ["expected an integer, got a string"]
    assert text.splitlines()[problems[0].line - 1].strip() == "layers: 36"


_NUMBERS = st.sampled_from([0.0, -0.0, 1.5, 1e300, math.inf, -math.inf, math.nan, 1, True])
_NESTED = st.recursive(
    _NUMBERS | st.none() | st.sampled_from(["", "nan", "a/b~"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b/c", "~"]), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(_NESTED)
def test_the_quick_finite_walk_agrees_with_the_pointer_walk(data: Any) -> None:
    """check_schema makes the non-finite diagnostics (and their pointers) only when the
    quick walk finds a NaN or an infinity: the two never disagree."""
    from aimc.domain.schema import _finite, _non_finite

    assert _finite(data) == (not list(_non_finite(data, "")))


#: Small schemas: one type named with its own keywords (checked in one step), several types,
#: enums of strings or of anything, a recursive $ref.
_TYPED = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("object")},
        optional={
            "properties": st.dictionaries(st.sampled_from("ab"), st.just({"type": "integer"})),
            "required": st.lists(st.sampled_from("ab"), unique=True),
            "additionalProperties": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("array")},
        optional={
            "minItems": st.integers(0, 2),
            "uniqueItems": st.booleans(),
            "items": st.just({"type": "string"}),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", ["string", "array"]])},
        optional={"maxLength": st.integers(0, 3), "pattern": st.just("^b")},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number", ["integer", "string"]])},
        optional={
            key: st.sampled_from([0, 1, 0.5, -1])
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        },
    ),
    st.builds(lambda v: {"enum": v}, st.lists(st.sampled_from(["", "bf16", "vllm", 1, True]))),
    st.just(
        {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"}
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TYPED, json_values)
def test_typed_keywords_checked_in_one_step_match_jsonschema(schema: Any, value: Any) -> None:
    """A type's keywords checked with the type (the value of another type refused there),
    enums of strings, a $ref resolved once: the verdict jsonschema gives."""
    assert compile_schema(schema)(value) is Draft202012Validator(schema).is_valid(value)


def test_the_loaders_word_spares_the_finite_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before: every document was walked again for NaN and infinities although the
    loader had made every number; now a document the loader read in one pass answers."""
    import aimc.domain.schema as schema
    from aimc.core.loader import load_document

    def walk(_data: Any) -> bool:
        raise AssertionError("walked again")

    monkeypatch.setattr(schema, "_finite", walk)
    for path in SHIPPED:
        doc = load_document(path.read_bytes(), str(path))
        assert doc.finite and check_schema(doc) == [], path


_SPELLED = st.sampled_from(
    [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1e400", "-1e400", "1.5", "1e3", "0", "-0.0",
     "'.inf'", '".nan"', "!!float .inf", "!!float 1", "&a .nan", "x", "1_0.5", "0x1f"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_SPELLED, min_size=1, max_size=6), st.sampled_from(["k{}: {}", "- [{1}]"]))
def test_the_loaders_finite_word_is_the_walks(words: list[str], shape: str) -> None:
    """Hostile numbers (infinities, NaN, out of range, quoted, tagged, anchored): the loader
    calls a document finite only when the walk finds nothing, and the schema check gives
    the diagnostics it gives walking."""
    import dataclasses

    from aimc.core.errors import ValidationFailed
    from aimc.core.loader import load_document
    from aimc.domain.schema import _finite

    text = "\n".join(shape.format(i, w) for i, w in enumerate(words)) + "\n"
    try:
        doc = load_document(text.encode(), "doc.yaml")
    except ValidationFailed:
        return
    if doc.finite:
        assert _finite(doc.data), text
    walked = dataclasses.replace(doc, finite=False)
    assert check_schema(doc, "Recipe") == check_schema(walked, "Recipe")


_ITEMS = st.sampled_from(["a", "1", "true", "", "null", 1, 1.0, True, False, None, 0])
_ITEMS = _ITEMS | st.lists(st.sampled_from(["a", 1, "1"]), max_size=2) | st.text(max_size=2)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ITEMS, max_size=6), st.booleans())
def test_unique_items_of_strings_and_others_match_jsonschema(items: list[Any], typed: bool) -> None:
    """A string is its own key in the uniqueness check: never equal to a number, a boolean,
    null or a list of the same text, equal to the same string only."""
    schema = {"type": "array", "uniqueItems": True} if typed else {"uniqueItems": True}
    assert compile_schema(schema)(items) is Draft202012Validator(schema).is_valid(items)
