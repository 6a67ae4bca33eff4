"""Rendered artifacts kept by content, so a compile rendered before needs no Jinja.

Importing Jinja and loading its templates is most of what rendering costs a ``compile``
(issue 26), and a repository's compiles (pre-commit, ``compile --check`` in CI) render
the same plans again and again. :func:`render_templates` renders each artifact's template
with one context, as ``environment().get_template(name).render(context)`` does, through a
:class:`~aimc.core.filecache.FileCache` in ``aimc/emit/__pycache__/rendered/`` (checked,
atomic, bounded, never an error, written only where Python writes bytecode; the trust of
aimc's own bytecode beside it; files readable by their owner only).

A file's name is the SHA-256 of everything the text is made from, so it can never hold
another input's text:

- the context written out exactly: every value with its type (``None``, ``bool``,
  ``int``, ``float``, ``str``; ``list``, ``tuple`` and ``dict`` in their order; a
  dataclass instance as its class and every attribute it holds). A context holding
  anything else (a function, another type, a subclass) is rendered without the cache;
- the artifact names and the template each one is rendered from;
- every template's bytes (one may include another);
- the code rendering runs besides the context's: Jinja (its ``__init__.py``, which names
  its version), the Python version, and the source of the modules of the filters
  (:data:`FILTER_MODULES`) and of every class of the context (its properties and methods).

A file also holds its key and is used only when it names exactly the artifacts asked for;
a rendering that fails (a value a filter refuses) is never kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from aimc.core import _resources
from aimc.core.digest import sha256
from aimc.core.filecache import FileCache, code_digest
from aimc.emit.templating import environment

__all__ = ["FILTER_MODULES", "cache", "render_templates"]

#: The modules whose code the templates' filters run (:mod:`aimc.emit.templating`).
FILTER_MODULES = (
    "aimc.emit.templating",
    "aimc.core.diagnostics",
    "aimc.core.safety",
    "aimc.core.masking",
    "aimc.core.errors",
    __name__,
)
_HEADER = b"aimc-rendered 1\n"
_SUFFIX = ".out"
_SCALARS = (type(None), bool, int, float, str)


class _Uncacheable(Exception):
    """The context holds a value :func:`_canonical` does not write out."""


def cache() -> FileCache:
    """The folder of rendered artifacts, beside aimc's bytecode of this package."""
    return FileCache(Path(__file__).parent / "__pycache__" / "rendered", _HEADER, _SUFFIX, 0o600)


def render_templates(templates: dict[str, str], context: dict[str, Any]) -> dict[str, str]:
    """Artifact name -> ``templates[name]`` rendered with ``context``, in the order of
    ``templates``; from :func:`cache` when the same templates, context and code were
    rendered before.

    Raises:
        ConfigError: A filter refuses a value (as Jinja rendering raises it).
    """
    files = cache()
    key = _key(templates, context)
    if key is not None:
        kept = _read(files, key, templates)
        if kept is not None:
            return kept
    env = environment()
    out = {name: env.get_template(template).render(context) for name, template in templates.items()}
    if key is not None:
        body = json.dumps({"key": key, "files": out}, ensure_ascii=True)
        files.write(key, body.encode("ascii"))
    return out


def _read(files: FileCache, key: str, templates: dict[str, str]) -> dict[str, str] | None:
    body = files.read(key)
    if body is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    out = data.get("files")
    if not isinstance(out, dict) or list(out) != list(templates):
        return None
    if not all(isinstance(text, str) for text in out.values()):
        return None
    return out


def _key(templates: dict[str, str], context: dict[str, Any]) -> str | None:
    """The SHA-256 of everything the rendered text is made from, or None when the context
    holds a value that cannot be written out exactly."""
    classes: set[type] = set()
    try:
        written = json.dumps(_canonical(context, classes), ensure_ascii=True)
        modules = set(FILTER_MODULES)
        for cls in classes:
            modules.update(c.__module__ for c in cls.__mro__ if c is not object)
        parts = [
            _HEADER,
            code_digest(sorted(modules), ["jinja2"]),
            json.dumps(list(templates.items())).encode(),
            *_templates(),
            written.encode("ascii"),
        ]
    except (_Uncacheable, LookupError, OSError, ValueError, RecursionError):
        return None
    digest = sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _canonical(value: Any, classes: set[type]) -> Any:
    """``value`` as JSON data that tells every value of another type or content apart."""
    kind = type(value)
    if kind in _SCALARS:
        return value  # JSON tells null, true, 1, 1.0 and "1" apart
    if kind is list or kind is tuple:
        return [kind.__name__, [_canonical(v, classes) for v in value]]
    if kind is dict:
        return [
            "dict",
            [[_canonical(k, classes), _canonical(v, classes)] for k, v in value.items()],
        ]
    if dataclasses.is_dataclass(kind) and hasattr(value, "__dict__"):
        classes.add(kind)
        attributes = [[k, _canonical(v, classes)] for k, v in vars(value).items()]
        return ["object", f"{kind.__module__}:{kind.__qualname__}", attributes]
    raise _Uncacheable


def _templates() -> list[bytes]:
    """Every template's name and bytes, in name order."""
    folder = _resources.path("templates")
    parts: list[bytes] = []
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                parts += [os.path.relpath(path, folder).encode(), f.read()]
    return parts
