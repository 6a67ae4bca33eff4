"""A JSON Schema compiled to nested Python closures that answer one question: valid or not.

``jsonschema`` walks the schema for every instance and builds an error object for every
keyword it visits, which costs about as much as loading the YAML. Almost every file a
repository check sees is valid, so :mod:`aimc.domain.schema` asks a compiled checker first and
runs ``jsonschema`` only for a document the checker refuses, to describe what is wrong. A
verdict of the checker is therefore never shown to a user on its own: "valid" ends the
check, "invalid" hands over to ``jsonschema``.

Only the keywords aimc's own schemas use are compiled (:data:`KEYWORDS`), with the
semantics of JSON Schema 2020-12 as ``jsonschema`` implements them (``1.0`` is an
integer, ``true`` is not a number, ``1 == 1.0`` but ``true != 1`` in ``enum``/``const``/
``uniqueItems``). A schema with any other keyword, or a ``$ref`` outside the document,
raises :class:`Unsupported` and is checked by ``jsonschema`` alone;
``tests/test_schema_compiler.py`` compares the verdicts of both on generated documents.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["KEYWORDS", "Check", "Unsupported", "compile_schema", "ecma_pattern"]

#: instance -> valid?
Check = Callable[[Any], bool]

#: Keywords that only annotate (no effect on validity).
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description"})

#: Every keyword :func:`compile_schema` understands.
KEYWORDS = _ANNOTATIONS | {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "$ref",
}


class Unsupported(Exception):
    """The schema uses something the compiler does not implement."""


@functools.lru_cache(maxsize=256)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    r"""``pattern`` compiled with JSON Schema's (ECMA 262) meaning of ``$``: the end of the
    text only. Python's ``$`` also matches before a final newline, so ``^[a-z]+$`` would
    take ``"abc\n"``, a name that then splits a file name or a generated line. Each ``$``
    outside a character class and not escaped becomes ``\Z``."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append("\\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _is_number(value: Any) -> bool:
    return type(value) is int or (isinstance(value, (int, float)) and not isinstance(value, bool))


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (
        type(v) is int  # most integers: told in one step
        or (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


def _key(value: Any) -> Any:
    """A hashable key under which two values are equal exactly when JSON Schema says so:
    booleans apart from numbers, ``1`` with ``1.0``, containers by content."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    if isinstance(value, list):
        return ("array", tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, _key(v)) for k, v in value.items()))
    raise Unsupported(f"not a JSON value: {type(value).__name__}")


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    return functools.reduce(_both, checks)  # no generator made for every value


def _both(first: Check, second: Check) -> Check:
    return lambda value: first(value) and second(value)


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, target: str) -> Check:
        if not target.startswith("#/"):
            raise Unsupported(f"$ref {target!r} is not within the schema")
        if target not in self.refs:
            holder: list[Check] = []
            self.refs[target] = lambda value: holder[0](value)  # recursion-safe
            node: Any = self.root
            for part in target[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, Mapping) or part not in node:
                    raise Unsupported(f"$ref {target!r} points nowhere")
                node = node[part]
            holder.append(self.compile(node))
            self.refs[target] = holder[0]  # later references skip the indirection
        return self.refs[target]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, Mapping):
            raise Unsupported("a schema must be an object or a boolean")
        unknown = set(schema) - KEYWORDS
        if unknown:
            raise Unsupported("keywords " + ", ".join(sorted(unknown)))
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        # The checks of one type's keywords, which test the type too when it is the one
        # named (one call per value instead of two).
        named: str = schema["type"] if isinstance(schema.get("type"), str) else ""
        shaped = {
            "object": self._object(schema, named == "object"),
            "array": self._array(schema, named == "array"),
            "string": _string(schema, named == "string"),
            "number": _numeric(schema, named if named in ("integer", "number") else None),
        }
        if "type" in schema and not shaped.get("number" if named == "integer" else named):
            checks.append(self._type(schema["type"]))
        if "enum" in schema:
            checks.append(_enum(schema["enum"]))
        if "const" in schema:
            const = _key(schema["const"])
            checks.append(lambda v: _safe_key(v) == const)
        checks += [check for found in shaped.values() for check in found]
        if not checks:
            return lambda value: True
        return _all(checks)

    def _type(self, names: Any) -> Check:
        names = [names] if isinstance(names, str) else list(names)
        tests = [_TYPES[n] for n in names if n in _TYPES]
        if len(tests) != len(names):
            raise Unsupported(f"type {names!r}")
        if len(tests) == 1:
            return tests[0]
        return lambda v: any(t(v) for t in tests)

    def _object(self, schema: Mapping[str, Any], typed: bool) -> list[Check]:
        keys = {"properties", "required", "additionalProperties", "propertyNames"}
        keys.add("minProperties")
        if not keys & set(schema):
            return []
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        required = list(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        extra_check = None if extra is True else self.compile(extra)
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None
        least = schema.get("minProperties", 0)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not typed
            if len(value) < least:
                return False
            for key in required:  # a loop: no generator made for every mapping
                if key not in value:
                    return False
            for key, item in value.items():
                if names is not None and not names(key):
                    return False
                sub = props.get(key)
                if sub is not None:
                    if not sub(item):
                        return False
                elif extra_check is not None and not extra_check(item):
                    return False
            return True

        return [check]

    def _array(self, schema: Mapping[str, Any], typed: bool) -> list[Check]:
        if not {"items", "minItems", "maxItems", "uniqueItems"} & set(schema):
            return []
        items = self.compile(schema["items"]) if "items" in schema else None
        least = schema.get("minItems", 0)
        most = schema.get("maxItems")
        unique = schema.get("uniqueItems", False)

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return not typed
            if len(value) < least or (most is not None and len(value) > most):
                return False
            if items is not None:
                for v in value:
                    if not items(v):
                        return False
            if unique:
                seen = set()
                for v in value:
                    # A string is its own key: no ("string", v) made for each (and no other
                    # key, a tuple, is equal to a string).
                    key = v if type(v) is str else _safe_key(v)
                    if key is _UNHASHABLE or key in seen:
                        return False
                    seen.add(key)
            return True

        return [check]


_UNHASHABLE = object()


def _safe_key(value: Any) -> Any:
    try:
        return _key(value)
    except (Unsupported, TypeError):
        return _UNHASHABLE


def _enum(values: list[Any]) -> Check:
    allowed = {_key(v) for v in values}
    if all(isinstance(v, str) for v in values):  # ("string", v) keys: strings alone
        strings = frozenset(values)
        return lambda v: isinstance(v, str) and v in strings
    return lambda v: _safe_key(v) in allowed


def _string(schema: Mapping[str, Any], typed: bool) -> list[Check]:
    if not {"pattern", "minLength", "maxLength"} & set(schema):
        return []
    pattern = ecma_pattern(schema["pattern"]) if "pattern" in schema else None
    least = schema.get("minLength", 0)
    most = schema.get("maxLength")

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return not typed
        if len(value) < least or (most is not None and len(value) > most):
            return False
        return pattern is None or pattern.search(value) is not None

    return [check]


def _numeric(schema: Mapping[str, Any], typed: str | None) -> list[Check]:
    """The bounds' check; with ``typed`` (integer or number), the type's test too."""
    bounds: list[tuple[Any, Callable[[Any, Any], bool]]] = [
        (schema[k], refused)
        for k, refused in (
            # Refused as jsonschema refuses (so NaN passes every bound, as it does there).
            ("minimum", operator.lt),
            ("maximum", operator.gt),
            ("exclusiveMinimum", operator.le),
            ("exclusiveMaximum", operator.ge),
        )
        if k in schema
    ]
    if not bounds:
        return []
    number = _TYPES[typed] if typed is not None else _is_number

    def check(value: Any) -> bool:
        if not number(value):
            return typed is None
        for bound, refused in bounds:  # a loop: no generator made for every number
            if refused(value, bound):
                break
        else:
            return True
        return False

    return [check]


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """A function telling whether an instance (plain JSON data) is valid against ``schema``.

    Raises:
        Unsupported: ``schema`` uses a keyword outside :data:`KEYWORDS` or a remote ``$ref``.
    """
    return _Compiler(schema).compile(schema)
