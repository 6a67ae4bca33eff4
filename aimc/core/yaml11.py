"""How a YAML 1.1 reader (PyYAML, many CI and deployment tools) takes a plain scalar.

Takes the text of a plain scalar (and aimc's value of it, YAML 1.2); hands on what a YAML
1.1 reader makes of it (:func:`read11`: PyYAML's implicit resolvers) and whether the two
agree (:func:`same11`, :func:`alike11`). ``lint/yaml-1.1`` (:mod:`aimc.check.lint_yaml11`)
warns where they do not; the loader's fast path (:mod:`aimc.core.yaml_fast`) tells, per
document, whether any plain scalar could read otherwise, deciding once per distinct text.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

__all__ = ["ANY11", "DECIMAL", "alike11", "read11", "same11"]

#: YAML 1.1's implicit resolvers for plain scalars, as PyYAML has them (yaml/resolver.py).
_YAML11 = (
    ("bool", re.compile(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE"
                        r"|on|On|ON|off|Off|OFF)$")),
    ("float", re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                         r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                         r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
                         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")),
    ("int", re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                       r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")),
    ("null", re.compile(r"^(?:~|null|Null|NULL|)$")),
    ("timestamp", re.compile(r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}"
                             r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)"
                             r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
                             r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$")),
)  # fmt: skip

#: Any YAML 1.1 implicit resolver: a string none of them takes is a string to 1.1 as well.
ANY11 = re.compile("|".join(f"(?:{regexp.pattern})" for _kind, regexp in _YAML11))


#: Plain decimals: up to 15 digits, a ``-`` sign, a fraction of up to 20; no leading zero,
#: ``+``, ``_`` or exponent. YAML 1.1 and 1.2 readers alike make ``int(text)`` (no
#: fraction) or ``float(text)`` of them, and none is near a limit (2**63 - 1).
DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(\.[0-9]{1,20})?\Z")


def _sexagesimal(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


@functools.lru_cache(maxsize=1024)
def read11(text: str) -> tuple[str, Any]:
    """(kind, value) of a plain scalar as a YAML 1.1 reader takes it (PyYAML's rules)."""
    kind = next((k for k, regexp in _YAML11 if regexp.match(text)), "str")
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    if kind == "bool":
        return kind, text.lower() in ("yes", "true", "on")
    if kind == "null":
        return kind, None
    if kind == "int":
        if ":" in digits:
            return kind, sign * int(_sexagesimal(digits))
        base = 2 if digits.startswith("0b") else 16 if digits.startswith("0x") else 10
        if base == 10 and len(digits) > 1 and digits.startswith("0"):
            base = 8
        return kind, sign * int(digits[2:] if base in (2, 16) else digits, base)
    if kind == "float":
        low = digits.lower()
        if low in (".inf", ".nan"):
            return kind, sign * math.inf if low == ".inf" else math.nan
        return kind, sign * (_sexagesimal(low) if ":" in low else float(low))
    return kind, text


def same11(kind: str, theirs: Any, ours: Any) -> bool:
    """Whether a YAML 1.1 reader's ``theirs`` (of ``kind``) is aimc's value ``ours``."""
    if kind in ("str", "timestamp"):  # aimc keeps a date's text, a reader makes a date
        return kind == "str" and isinstance(ours, str) and ours == theirs
    if kind == "bool" or ours is None or isinstance(ours, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        both_nan = isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs)
        return type(ours) is type(theirs) and (ours == theirs or both_nan)
    return False


def alike11(text: str, ours: Any) -> bool:
    """Whether the plain scalar ``text``, ``ours`` to aimc (a key's text, or a value), is
    the same to a YAML 1.1 reader; False where that reader's value cannot be made."""
    if not ANY11.match(text):
        return isinstance(ours, str) and ours == text  # a string to 1.1 as well
    try:
        return same11(*read11(text), ours)
    except (ValueError, ArithmeticError):
        return False
