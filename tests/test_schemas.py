"""The shipped JSON Schemas follow the house rules: draft 2020-12, $id, described, closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import ROOT

SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))


def _objects(node: Any, path: str = "#"):
    if isinstance(node, dict):
        if "properties" in node:
            yield path, node
        for k, v in node.items():
            yield from _objects(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(v, f"{path}/{i}")


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_2020_12_with_id(path: Path) -> None:
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(path.name)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_every_property_is_described_and_objects_are_closed(path: Path) -> None:
    schema = json.loads(path.read_text())
    defs = schema.get("$defs", {})
    for where, obj in _objects(schema):
        assert obj.get("additionalProperties") is False, f"{where} is open"
        for name, prop in obj["properties"].items():
            target = prop
            if "$ref" in prop and "description" not in prop:
                target = defs[prop["$ref"].rsplit("/", 1)[1]]
            assert target.get("description"), f"{where}/properties/{name} has no description"
