"""Custom resources as the Kubernetes API server checks them on create, from a vendored CRD.

:func:`validator` reads a CRD (YAML, or gzip-compressed YAML) and gives a validator of one
version's ``openAPIV3Schema`` that refuses what the API server refuses with a structural
schema and strict field validation (``kubectl apply`` asks for it): a field the schema does
not list (unless the node says ``x-kubernetes-preserve-unknown-fields``), a wrong type, enum,
pattern, bound or missing required field (jsonschema's Draft 7 reads OpenAPI v3 once the
``x-kubernetes-*`` keys are ignored), an ``int32`` out of range, a duplicate key in an
``x-kubernetes-list-type: map`` list or a duplicate item of a ``set``. :func:`check_metadata`
checks what the API server checks of any object's metadata (the name a DNS-1123 subdomain,
label keys and values). :func:`cel_rules` lists the ``x-kubernetes-validations`` (CEL) rules
that apply to an object (the rules of every schema node the object has a value at): the
tests evaluate each by hand, since no CEL interpreter installs here.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import validators
from ruamel.yaml import YAML

__all__ = ["cel_rules", "check_metadata", "crd_schema", "validator"]

_INT32 = (-(2**31), 2**31 - 1)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def _strict(schema: Any) -> Any:
    """Every object node that lists its properties, says nothing of others and does not
    preserve unknown fields gets ``additionalProperties: false``."""
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    keeps = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and "additionalProperties" not in schema and not keeps:
        out["additionalProperties"] = False
    return out


def _list_type(checker: Any, kind: str, items: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if not isinstance(items, list):
        return
    if kind == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = [tuple(item.get(k) for k in keys) for item in items if isinstance(item, dict)]
    elif kind == "set":
        seen = [repr(item) for item in items]
    else:
        return
    if len(seen) != len(set(seen)):
        yield jsonschema.ValidationError(f"duplicate entries in a list-type {kind}: {seen}")


def _int32(checker: Any, fmt: str, value: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if fmt == "int32" and isinstance(value, int) and not _INT32[0] <= value <= _INT32[1]:
        yield jsonschema.ValidationError(f"{value} is not an int32")


_Validator = validators.extend(
    jsonschema.Draft7Validator,
    {"x-kubernetes-list-type": _list_type, "format": _int32},
)


def _load(path: Path) -> Any:
    raw = path.read_bytes()
    text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    return YAML(typ="safe", pure=False).load(text.decode("utf-8"))


@functools.cache
def crd_schema(path: Path, version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``version`` of the CRD at ``path``."""
    crd = _load(path)
    assert crd["kind"] == "CustomResourceDefinition"
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert entry["served"], f"{path.name}: {version} is not served"
    schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
    return schema


@functools.cache
def validator(path: Path, version: str) -> Any:
    """A strict validator of ``version`` of the CRD at ``path``."""
    schema = _strict(crd_schema(path, version))
    jsonschema.Draft7Validator.check_schema(schema)
    return _Validator(schema)


def check_metadata(obj: dict[str, Any]) -> None:
    """What the API server checks of any object's metadata: the name a DNS-1123 subdomain
    (at most 253 characters), each label key an optional DNS-subdomain prefix and a name
    of at most 63, each value at most 63 (alphanumeric at both ends)."""
    meta = obj["metadata"]
    name = meta["name"]
    assert len(name) <= 253 and _DNS_SUBDOMAIN.match(name), name
    for key, value in meta.get("labels", {}).items():
        prefix, _, label = key.rpartition("/")
        assert not prefix or (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)), key
        assert len(label) <= 63 and _LABEL_NAME.match(label), key
        assert isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.match(value), value


def cel_rules(schema: dict[str, Any], data: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """``(path, rule, value)`` for every CEL rule of a schema node ``data`` has a value at."""
    found = [(path, r["rule"], data) for r in schema.get("x-kubernetes-validations", [])]
    if isinstance(data, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                found += cel_rules(sub, value, f"{path}.{key}")
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(data):
            found += cel_rules(schema["items"], value, f"{path}[{i}]")
    return found
