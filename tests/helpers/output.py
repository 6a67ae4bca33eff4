"""The JSON output of the CLI as its schema (``schemas/output.schema.json``) defines it:
a validator of one command's document, shared by the JSON output and contract tests."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.conftest import ROOT

__all__ = ["REGISTRY", "SCHEMA", "validator"]

SCHEMA = json.loads((ROOT / "schemas" / "output.schema.json").read_text())
REGISTRY = Registry().with_resource(SCHEMA["$id"], Resource.from_contents(SCHEMA))


def validator(command: str | None) -> Draft202012Validator:
    """The schema of one command's output (``None``: of any output)."""
    schema = {"$ref": f"{SCHEMA['$id']}#/$defs/{command}"} if command else SCHEMA
    return Draft202012Validator(schema, registry=REGISTRY)
