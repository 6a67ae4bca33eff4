"""Schema stage: a loaded :class:`~aimc.loader.Document` -> diagnostics.

Takes a document, picks the JSON Schema for its ``kind`` (shipped in ``schemas/``), and
hands on every violation as a :class:`~aimc.diagnostics.Diagnostic` at the line and column
of the offending key or value, with "did you mean" hints for unknown keys and closed value
sets. Collects all errors; never stops at the first. A user value quoted in a message is
cut to :data:`~aimc.diagnostics.MAX_EXCERPT` characters (see :func:`_short`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from aimc import _resources, backends, vendors
from aimc.diagnostics import MAX_EXCERPT, Diagnostic, did_you_mean, excerpt
from aimc.loader import Document, escape_pointer, pointer

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["KINDS", "check_schema", "load_schema"]

#: kind -> schema file name
KINDS: dict[str, str] = {
    "Recipe": "recipe.schema.json",
    "HardwareProfile": "hardware.schema.json",
    "Overrides": "overrides.schema.json",
}

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


#: Enums that list a registry's names, by schema file: where each is, and its registry. The
#: shipped files list the built-in names (for editors and other tools); aimc checks against
#: what is registered, so a backend or vendor registered in code is a valid value.
_REGISTERED: dict[str, tuple[tuple[tuple[str, ...], Callable[[], tuple[str, ...]]], ...]] = {
    "recipe.schema.json": ((("$defs", "backend", "enum"), backends.names),),
    "hardware.schema.json": (
        (("properties", "vendor", "enum"), vendors.names),
        (("properties", "backends", "propertyNames", "enum"), backends.names),
    ),
}


def load_schema(name: str) -> dict[str, Any]:
    """A shipped JSON Schema by file name, its registry enums (:data:`_REGISTERED`) the
    names registered now."""
    data: dict[str, Any] = json.loads(_resources.read_text("schemas", name))
    for path, names in _REGISTERED.get(name, ()):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        node[last] = list(names())
    return data


def _registered() -> tuple[tuple[str, ...], ...]:
    """The registries' names now: part of the cache key of everything built from a schema."""
    return tuple(names() for entries in _REGISTERED.values() for _, names in entries)


def _validator(kind: str) -> Validator:
    return _validator_of(kind, _registered())


@functools.cache
def _validator_of(kind: str, registered: tuple[tuple[str, ...], ...]) -> Validator:
    made: Validator = validator_class()(load_schema(KINDS[kind]))
    return made


@functools.cache
def validator_class() -> Any:
    """jsonschema's 2020-12 validator with JSON Schema's own ``pattern``: ``$`` is the end
    of the text (:func:`aimc.schema_compiler.ecma_pattern`), not also before a final
    newline as in Python."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    from aimc.schema_compiler import ecma_pattern

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not ecma_pattern(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": pattern}
    )


def _compiled(kind: str) -> Callable[[Any], bool] | None:
    """The compiled validity check of a kind's schema, or None when the compiler does not
    cover the schema (then ``jsonschema`` checks every document)."""
    return _compiled_of(kind, _registered())


@functools.cache
def _compiled_of(
    kind: str, registered: tuple[tuple[str, ...], ...]
) -> Callable[[Any], bool] | None:
    from aimc.schema_compiler import Unsupported, compile_schema

    try:
        return compile_schema(load_schema(KINDS[kind]))
    except (Unsupported, re.error):
        return None


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _short(value: Any) -> str:
    """A user value for a message: ``'xxxx…' (5242880 characters)`` when it is long."""
    if isinstance(value, str):
        return excerpt(value)
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= MAX_EXCERPT else f"{text[:MAX_EXCERPT]}… ({len(text)} characters)"


def _pointer(error: ValidationError) -> str:
    return pointer(*error.absolute_path)


def _expected_types(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def _diagnose(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    """Turn one jsonschema error into diagnostics users can act on."""
    pointer = _pointer(error)
    validator = error.validator
    value: Any = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}

    if validator == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        for key in sorted(set(instance) - set(known)):
            yield doc.diagnostic(
                f"{pointer}/{escape_pointer(key)}",
                f"unknown key {_short(key)}",
                key=True,
                hint=did_you_mean(key, known)
                or ("allowed keys: " + ", ".join(known) if known else None),
            )
        return
    if validator == "required":
        missing = [k for k in value if isinstance(instance, dict) and k not in instance]
        for key in missing:
            where = f"in {pointer}" if pointer else "at the top level"
            yield doc.diagnostic(pointer, f"missing required key {key!r} {where}", key=True)
        return
    if "propertyNames" in error.relative_schema_path and validator != "propertyNames":
        # A sub-schema of propertyNames failed: the instance is the offending *key*.
        choices = schema.get("enum")
        name = str(instance)
        form = schema.get("description")
        if choices:
            message = f"{_short(name)} is not a valid key here; expected one of: " + ", ".join(
                map(str, choices)
            )
        else:
            message = f"{_short(name)} is not a valid key here" + (
                f"; expected {form}" if form else ""
            )
        yield doc.diagnostic(
            f"{pointer}/{escape_pointer(name)}",
            message,
            key=True,
            hint=did_you_mean(name, choices) if choices else None,
        )
        return
    if validator == "propertyNames":
        # jsonschema reports the bad *name* as the instance, at the parent's path.
        sub = value if isinstance(value, dict) else {}
        choices = sub.get("enum")
        name = str(instance)
        if choices:
            yield doc.diagnostic(
                f"{pointer}/{escape_pointer(name)}",
                f"{_short(name)} is not a valid key here; expected one of: {', '.join(choices)}",
                key=True,
                hint=did_you_mean(name, choices),
            )
        else:
            yield doc.diagnostic(
                f"{pointer}/{escape_pointer(name)}",
                f"key {_short(name)} does not match the required pattern {sub.get('pattern', '')}",
                key=True,
            )
        return
    if validator == "enum":
        choices = [str(c) for c in value]
        yield doc.diagnostic(
            pointer,
            f"{_short(instance)} is not one of: {', '.join(choices)}",
            hint=did_you_mean(str(instance), choices),
        )
        return
    if validator == "const":
        yield doc.diagnostic(pointer, f"expected {_short(value)}, got {_short(instance)}")
        return
    if validator == "type":
        hint = None
        if "string" in ([value] if isinstance(value, str) else value) and isinstance(
            instance, (int, float, bool)
        ):
            hint = 'quote the value, e.g. "1"'
        key_position = isinstance(instance, (dict, list))
        yield doc.diagnostic(
            pointer,
            f"expected {_expected_types(value)}, got {_TYPE_NAMES[_type_of(instance)]}",
            key=key_position,
            hint=hint,
        )
        return
    if validator == "pattern":
        what = schema.get("description", "").rstrip(".")
        yield doc.diagnostic(
            pointer,
            f"{_short(instance)} is not valid here" + (f"; expected: {what}" if what else ""),
        )
        return
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
        "minItems": "at least",
        "minLength": "at least",
        "maxItems": "at most",
        "maxLength": "at most",
    }
    if validator in bounds:
        unit = {
            "minItems": " item(s)",
            "minLength": " character(s)",
            "maxItems": " item(s)",
            "maxLength": " character(s)",
        }.get(str(validator), "")
        yield doc.diagnostic(
            pointer, f"must be {bounds[str(validator)]} {value}{unit}, got {_short(instance)}"
        )
        return
    if validator in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        yield from _diagnose(doc, best)
        return
    # jsonschema's own message quotes the whole instance (repr): quote an excerpt instead.
    message = error.message
    whole = repr(instance)
    if len(whole) > MAX_EXCERPT and whole in message:
        message = message.replace(whole, _short(instance))
    yield doc.diagnostic(pointer, message.replace("\n", " "))


def check_schema(doc: Document, default_kind: str | None = None) -> list[Diagnostic]:
    """Every schema violation of one document, as diagnostics.

    The document's ``kind`` (else ``default_kind``) chooses the schema; a missing or
    unknown kind is itself a diagnostic.
    """
    data = doc.data
    if not isinstance(data, dict):
        return [
            doc.diagnostic(
                "", f"expected a mapping at the top level, got {_TYPE_NAMES[_type_of(data)]}"
            )
        ]
    kind = data.get("kind", default_kind)
    if kind is None:
        return [
            doc.diagnostic(
                "",
                "missing required key 'kind' at the top level",
                key=True,
                hint="one of: " + ", ".join(KINDS),
            )
        ]
    if kind not in KINDS:
        return [
            doc.diagnostic(
                "/kind",
                f"unknown kind {_short(kind)}; expected one of: " + ", ".join(KINDS),
                hint=did_you_mean(str(kind), KINDS),
            )
        ]
    out: list[Diagnostic] = []
    quick = _compiled(kind)
    if quick is None or not quick(data):  # jsonschema says what is wrong
        errors: Iterable[ValidationError] = _validator(kind).iter_errors(data)
        for error in errors:
            out.extend(_diagnose(doc, error))
    out.extend(
        doc.diagnostic(pointer, f"{value} is not a finite number", hint="write a number")
        for pointer, value in _non_finite(data, "")
    )
    return out


def _non_finite(data: Any, pointer: str) -> Iterator[tuple[str, float]]:
    """NaN and infinities (``.nan``, ``.inf``, ``1e400``): no schema keyword refuses them,
    and every comparison with NaN is false."""
    if isinstance(data, float) and not math.isfinite(data):
        yield pointer, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _non_finite(value, f"{pointer}/{escape_pointer(key)}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _non_finite(value, f"{pointer}/{i}")
