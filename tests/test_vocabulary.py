"""Vocabulary written in more than one place, each copy tied to its source.

The schemas stay byte-identical, so where a list cannot be derived from its source it is
tested equal to it here: the precisions, the shape of an environment variable's name, and
the validate report that ``schemas/output.schema.json`` holds a copy of.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aimc.cli.options import PRECISIONS as CLI_PRECISIONS
from aimc.core.safety import ENV_NAME
from aimc.domain.schema_compiler import ecma_pattern
from aimc.interop import aim_profiles, vllm_recipes
from aimc.interop._args import ENV_NAME as IMPORTED_ENV_NAME
from aimc.plan.estimate import BYTES_PER_PARAM
from aimc.plan.resolve import PRECISION_ORDER
from aimc.vendors import VENDORS
from tests.conftest import ROOT

SCHEMAS = ROOT / "schemas"


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return data


# --- precisions ---------------------------------------------------------------------------

#: The source: every precision aimc knows, in the order the selection policy prefers them.
SOURCE = set(PRECISION_ORDER)


def test_the_source_names_each_precision_once() -> None:
    assert len(PRECISION_ORDER) == len(SOURCE) == 8


def test_the_schemas_enums_are_the_source() -> None:
    """The recipe's ``precision`` (every weights key, defaults and configurations) and the
    hardware profile's ``precisions``: one list, in one order."""
    recipe = _schema("recipe.schema.json")["$defs"]["precision"]["enum"]
    hardware = _schema("hardware.schema.json")["properties"]["precisions"]["items"]["enum"]
    assert set(recipe) == SOURCE and len(recipe) == len(SOURCE)
    assert hardware == recipe


def test_the_cli_offers_the_schema_s_precisions_in_its_order() -> None:
    recipe = _schema("recipe.schema.json")["$defs"]["precision"]["enum"]
    assert list(CLI_PRECISIONS) == recipe


def test_the_estimate_knows_the_size_of_every_precision() -> None:
    assert set(BYTES_PER_PARAM) == SOURCE


def test_what_vendors_and_importers_name_is_a_known_precision() -> None:
    architectures = ("", "gfx90a", "gfx942", "gfx950", "sm70", "sm80", "sm89", "sm90", "sm100")
    for vendor in VENDORS.values():
        for arch in architectures:
            assert set(vendor.precisions(arch)) <= SOURCE, (vendor.name, arch)
    assert set(aim_profiles.PRECISIONS.values()) <= SOURCE
    assert set(vllm_recipes.PRECISIONS.values()) <= SOURCE


# --- environment variable names -----------------------------------------------------------

#: The pattern every schema gives the keys of an env mapping.
SCHEMA_ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"


def _env_name_patterns() -> list[tuple[str, str]]:
    """(schema file, pattern) of every ``propertyNames`` pattern that names variables."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, name: str, key: str) -> None:
        if isinstance(node, dict):
            if key in ("env", "multi_gpu_env") and "propertyNames" in node:
                found.append((name, node["propertyNames"]["pattern"]))
            for k, v in node.items():
                walk(v, name, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, name, key)

    for name in ("recipe.schema.json", "hardware.schema.json", "overrides.schema.json"):
        walk(_schema(name), name, "")
    return found


def test_every_schema_names_variables_with_one_pattern() -> None:
    found = _env_name_patterns()
    assert {name for name, _ in found} == {
        "recipe.schema.json",
        "hardware.schema.json",
        "overrides.schema.json",
    }
    assert len(found) == 5  # recipe env; hardware env, multi_gpu_env, backends.*.env; --config
    assert {pattern for _, pattern in found} == {SCHEMA_ENV_NAME}


NAME_CHARS = string.ascii_letters + string.digits + "_"


@given(
    st.one_of(
        st.text(alphabet=NAME_CHARS + "-.= $\n\x00é", max_size=12),
        st.integers(min_value=120, max_value=140).map(lambda n: "A" * n),
        st.text(alphabet=NAME_CHARS, min_size=1, max_size=200),
        st.text(alphabet=NAME_CHARS, min_size=1, max_size=8).map(lambda s: s + "\n"),
    )
)
def test_the_three_env_name_rules_differ_only_by_the_write_stage_s_bound(name: str) -> None:
    """The schemas (JSON Schema's ``$``: the end of the text) and the importers take the same
    names; aimc writes those of them up to 128 characters (safety.ENV_NAME)."""
    by_schema = ecma_pattern(SCHEMA_ENV_NAME).search(name) is not None
    by_importer = IMPORTED_ENV_NAME.match(name) is not None
    assert by_schema == by_importer, name
    assert (ENV_NAME.fullmatch(name) is not None) == (by_schema and len(name) <= 128), name


# --- the validate report ------------------------------------------------------------------

_METADATA = ("$schema", "$id", "title", "description")


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every local ``$ref`` (``#/$defs/NAME``) replaced by what it names."""
    if isinstance(node, dict):
        if set(node) == {"$ref"} and node["$ref"].startswith("#/$defs/"):
            return _inlined(defs[node["$ref"].removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def test_the_validate_report_inside_output_schema_is_the_standalone_schema() -> None:
    """``schemas/validate-output.schema.json`` and ``output.schema.json#/$defs/validate_report``
    are one schema: equal once references are followed, their own title and description
    aside."""
    alone = _schema("validate-output.schema.json")
    output = _schema("output.schema.json")
    inside = _inlined(output["$defs"]["validate_report"], output["$defs"])
    strip = {k: v for k, v in alone.items() if k not in _METADATA}
    assert {k: v for k, v in inside.items() if k not in _METADATA} == strip
    assert "validate-output.schema.json" in output["$defs"]["validate_report"]["description"]
    assert "output.schema.json#/$defs/validate" in alone["description"]


def test_validate_s_output_carries_that_report_on_success_and_on_failure() -> None:
    defs = _schema("output.schema.json")["$defs"]
    report = {"$ref": "#/$defs/validate_report"}
    success, failure = defs["validate"]["oneOf"]
    assert success["properties"]["data"] == report
    assert failure == {"$ref": "#/$defs/error_response"}
    assert report in defs["error_response"]["properties"]["data"]["anyOf"]
