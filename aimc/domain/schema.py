"""Schema stage: a loaded :class:`~aimc.core.loader.Document` -> diagnostics.

Takes a document, picks the JSON Schema for its ``kind`` (shipped in ``schemas/``), and
hands on every violation as a :class:`~aimc.core.diagnostics.Diagnostic` at the line and column
of the offending key or value, with "did you mean" hints for unknown keys and closed value
sets. Collects all errors; never stops at the first. A user value quoted in a message is
cut to :data:`~aimc.core.diagnostics.MAX_EXCERPT` characters (see :func:`_short`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from aimc import backends, vendors
from aimc.core import _resources
from aimc.core.diagnostics import MAX_EXCERPT, Diagnostic, did_you_mean, excerpt
from aimc.core.loader import Document, escape_pointer, pointer
from aimc.domain.schema_compiler import Unsupported, compile_schema, ecma_pattern

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
        (("properties", "container", "properties", "runtime", "enum"), vendors.runtimes),
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
    of the text (:func:`aimc.domain.schema_compiler.ecma_pattern`), not also before a final
    newline as in Python."""
    # Deferred: jsonschema is heavy and needed only when the compiled check fails.
    from jsonschema import Draft202012Validator, ValidationError, validators

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
    return _step(error)(doc, error, _pointer(error))


#: One step of :func:`_diagnose`: the diagnostics of one kind of jsonschema error, given the
#: document, the error and the JSON Pointer of the value it concerns.
_Step = Callable[[Document, "ValidationError", str], Iterator[Diagnostic]]


def _step(error: ValidationError) -> _Step:
    """The step that says what is wrong for ``error``'s keyword."""
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys
    if validator == "required":
        return _missing_keys
    if "propertyNames" in error.relative_schema_path and validator != "propertyNames":
        return _invalid_key
    if validator in ("oneOf", "anyOf") and error.context:
        return _best_match
    return _STEPS.get(str(validator), _as_jsonschema_says)


def _schema_of(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _value_of(error: ValidationError) -> Any:
    """The value of the keyword that failed (``required``'s list, ``enum``'s choices...)."""
    return error.validator_value


def _unknown_keys(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    known = list(_schema_of(error).get("properties", {}))
    instance: Any = error.instance
    for key in sorted(set(instance) - set(known)):
        yield doc.diagnostic(
            f"{at}/{escape_pointer(key)}",
            f"unknown key {_short(key)}",
            key=True,
            hint=did_you_mean(key, known)
            or ("allowed keys: " + ", ".join(known) if known else None),
        )


def _missing_keys(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    instance, value = error.instance, _value_of(error)
    missing = [k for k in value if isinstance(instance, dict) and k not in instance]
    for key in missing:
        where = f"in {at}" if at else "at the top level"
        yield doc.diagnostic(at, f"missing required key {key!r} {where}", key=True)


def _invalid_key(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    """A sub-schema of ``propertyNames`` failed: the instance is the offending *key*."""
    schema = _schema_of(error)
    choices = schema.get("enum")
    name = str(error.instance)
    form = schema.get("description")
    if choices:
        message = f"{_short(name)} is not a valid key here; expected one of: " + ", ".join(
            map(str, choices)
        )
    else:
        message = f"{_short(name)} is not a valid key here" + (f"; expected {form}" if form else "")
    yield doc.diagnostic(
        f"{at}/{escape_pointer(name)}",
        message,
        key=True,
        hint=did_you_mean(name, choices) if choices else None,
    )


def _bad_key_name(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    """``propertyNames`` failed: jsonschema reports the bad *name* as the instance, at the
    parent's path."""
    value = error.validator_value
    sub = value if isinstance(value, dict) else {}
    choices = sub.get("enum")
    name = str(error.instance)
    if choices:
        yield doc.diagnostic(
            f"{at}/{escape_pointer(name)}",
            f"{_short(name)} is not a valid key here; expected one of: {', '.join(choices)}",
            key=True,
            hint=did_you_mean(name, choices),
        )
    else:
        yield doc.diagnostic(
            f"{at}/{escape_pointer(name)}",
            f"key {_short(name)} does not match the required pattern {sub.get('pattern', '')}",
            key=True,
        )


def _not_one_of(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    choices = [str(c) for c in _value_of(error)]
    yield doc.diagnostic(
        at,
        f"{_short(error.instance)} is not one of: {', '.join(choices)}",
        hint=did_you_mean(str(error.instance), choices),
    )


def _not_const(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    yield doc.diagnostic(
        at, f"expected {_short(error.validator_value)}, got {_short(error.instance)}"
    )


def _wrong_type(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    value, instance = _value_of(error), error.instance
    hint = None
    if "string" in ([value] if isinstance(value, str) else value) and isinstance(
        instance, (int, float, bool)
    ):
        hint = 'quote the value, e.g. "1"'
    key_position = isinstance(instance, (dict, list))
    yield doc.diagnostic(
        at,
        f"expected {_expected_types(value)}, got {_TYPE_NAMES[_type_of(instance)]}",
        key=key_position,
        hint=hint,
    )


def _no_match(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    what = _schema_of(error).get("description", "").rstrip(".")
    yield doc.diagnostic(
        at,
        f"{_short(error.instance)} is not valid here" + (f"; expected: {what}" if what else ""),
    )


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
    "minItems": "at least",
    "minLength": "at least",
    "maxItems": "at most",
    "maxLength": "at most",
}
_UNITS = {
    "minItems": " item(s)",
    "minLength": " character(s)",
    "maxItems": " item(s)",
    "maxLength": " character(s)",
}


def _out_of_bounds(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    validator = str(error.validator)
    yield doc.diagnostic(
        at,
        f"must be {_BOUNDS[validator]} {error.validator_value}{_UNITS.get(validator, '')}, "
        f"got {_short(error.instance)}",
    )


def _best_match(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    """``oneOf``/``anyOf``: what is wrong for the branch that comes closest."""
    from jsonschema.exceptions import best_match  # deferred: jsonschema is heavy

    yield from _diagnose(doc, best_match(error.context))


def _as_jsonschema_says(doc: Document, error: ValidationError, at: str) -> Iterator[Diagnostic]:
    # jsonschema's own message quotes the whole instance (repr): quote an excerpt instead.
    message = error.message
    whole = repr(error.instance)
    if len(whole) > MAX_EXCERPT and whole in message:
        message = message.replace(whole, _short(error.instance))
    yield doc.diagnostic(at, message.replace("\n", " "))


#: The steps for the other keywords (:func:`_step` picks the ones that need more).
_STEPS: dict[str, _Step] = {
    "propertyNames": _bad_key_name,
    "enum": _not_one_of,
    "const": _not_const,
    "type": _wrong_type,
    "pattern": _no_match,
    **dict.fromkeys(_BOUNDS, _out_of_bounds),
}


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
    if not doc.finite and not _finite(data):  # the loader may have seen every number
        out.extend(
            doc.diagnostic(pointer, f"{value} is not a finite number", hint="write a number")
            for pointer, value in _non_finite(data, "")
        )
    return out


def _finite(data: Any) -> bool:
    """Whether :func:`_non_finite` finds nothing in ``data`` (told without making a pointer
    for every value: almost every document is finite)."""
    todo = [data]
    while todo:
        value = todo.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
    return True


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
