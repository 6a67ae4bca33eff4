"""The one Jinja environment, and the few reviewed filters templates may use.

Sandboxed, ``StrictUndefined`` (a missing value is an error, never an empty string),
autoescape off (nothing here is HTML), trailing newlines kept. Filters:

- ``shell_quote``: one shell word (``shlex.quote``), whatever the value holds;
- ``to_yaml``: data as deterministic block YAML (:func:`to_yaml`), strings always
  double-quoted JSON-style so no value is re-typed (``"1"``, ``"yes"``, ``"0x74a1"``),
  except a :class:`Literal` text that a literal block (``|``) holds exactly;
- ``tojson``: JSON text;
- ``one_line``: text safe inside a comment line (control characters escaped,
  :func:`aimc.core.diagnostics.whole_line`);
- ``env_name`` / ``env_value``: the value unchanged when :mod:`aimc.core.safety` allows it in an
  environment file, else an error (the resolver checks first; this is the last guard).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from pathlib import Path
from typing import Any

from aimc.core import _resources
from aimc.core.diagnostics import whole_line
from aimc.core.safety import check_env

__all__ = ["Literal", "environment", "shell_quote", "to_yaml"]

# The patterns are compiled on first use (re's cache), by a rendering only: compiling the
# surrogate range costs ~0.8 ms, and a compile rendered before renders nothing.
_PLAIN_KEY = r"^[A-Za-z_][A-Za-z0-9_.-]*\Z"
#: Characters a YAML reader refuses or reads as line breaks (DEL, C1 controls, NEL, the
#: Unicode line and paragraph separators, lone surrogates): JSON leaves them raw.
_YAML_UNSAFE = "[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]"


def _json(value: Any) -> str:
    """JSON text that is also a YAML flow scalar or collection, byte for byte."""
    text = json.dumps(value, ensure_ascii=False)
    return re.sub(_YAML_UNSAFE, lambda m: f"\\u{ord(m.group()):04x}", text)


def shell_quote(value: Any) -> str:
    """``value`` as exactly one shell word."""
    return shlex.quote(str(value))


def _env_name(name: str) -> str:
    check_env(name, "", "template")
    return name


def _env_value(value: str) -> str:
    check_env("VALUE", value, "template")
    return value


class Literal(str):
    """Text of several lines (a file held in a ConfigMap) that :func:`to_yaml` writes as a
    literal block scalar, to be read as it is, when a block holds it exactly: printable
    ASCII lines, the first not starting with a space, one newline at the end. Other text
    is written as any string is (JSON-style, one line)."""

    __slots__ = ()

    def block(self) -> list[str] | None:
        """The lines of the block, or None when a literal block would not hold the text."""
        body, end = self[:-1], self[-1:]
        if end != "\n" or not body or body.startswith((" ", "\n")) or body.endswith("\n"):
            return None
        lines = body.split("\n")
        if not all(all(" " <= c <= "~" for c in line) for line in lines):
            return None
        return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return _json(str(value))


def _key(key: Any) -> str:
    text = str(key)
    plain = re.match(_PLAIN_KEY, text) and text not in ("null", "true", "false")
    return text if plain else _json(text)


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars; byte-for-byte deterministic. The
    lines of a document without its final newline, which the file adds: a
    :class:`Literal` block that ends the document ends with that newline."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        if not data:
            return pad + "{}"
        for k, v in data.items():
            if isinstance(v, Literal) and (block := v.block()) is not None:
                lines.append(f"{pad}{_key(k)}: |")
                lines.extend(f"{pad}  {line}" if line else "" for line in block)
            elif isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.append(to_yaml(v, indent + 2))
            else:
                lines.append(f"{pad}{_key(k)}: {_flow(v)}")
        return "\n".join(lines)
    if isinstance(data, list):
        if not data:
            return pad + "[]"
        for item in data:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {body.lstrip()}")
            else:
                lines.append(f"{pad}- {_flow(item)}")
        return "\n".join(lines)
    return pad + _scalar(data)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{}" if not value else _json(value)
    if isinstance(value, list):
        return "[]" if not value else _json(value)
    return _scalar(value)


#: The environment's options, part of every compiled template's key.
_OPTIONS = "sandboxed,StrictUndefined,no-autoescape,keep-trailing-newline,trim,lstrip"


@functools.cache
def environment() -> Any:
    """The sandboxed Jinja environment over ``templates/``."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from aimc.emit.template_cache import CompiledTemplates  # deferred with Jinja

    folder = _resources.path("templates")
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # compiled once (by content hash), next to aimc's own bytecode
        bytecode_cache=CompiledTemplates(Path(__file__).parent / "__pycache__" / "jinja", _OPTIONS),
    )
    env.filters["shell_quote"] = shell_quote
    env.filters["to_yaml"] = to_yaml
    env.filters["one_line"] = whole_line
    env.filters["env_name"] = _env_name
    env.filters["env_value"] = _env_value
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env
