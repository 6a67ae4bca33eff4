"""The loader's limits: how much YAML aimc reads before it refuses a file as hostile.

Holds the limits and :func:`refuse`, which raises
:class:`~aimc.core.errors.ValidationFailed` with one ``yaml`` diagnostic (the rest of
:mod:`aimc.core.loader` uses it for every ``yaml`` diagnostic):

* :data:`MAX_FILE_BYTES`: a longer file is refused after reading one byte more than that
  (so ``/dev/zero`` or an endless pipe too).
* :data:`MAX_DEPTH`: mappings and lists nested deeper, aliases expanded.
* :data:`MAX_NODES`: more nodes, each alias counted as the whole node its anchor names
  (this stops "billion laughs" alias bombs).
* :data:`MAX_EXPANDED_CHARS`: more text once aliases are expanded, counting every scalar
  and the JSON Pointer of every node (the position tables hold one per node).
* :data:`MAX_INT`: a larger integer (checked where scalars become values).

The depth, node and text limits are checked on the parser's event stream by
:mod:`aimc.core.yaml_walk` (imported only where a file is parsed).
"""

from __future__ import annotations

from typing import Any, NoReturn

from aimc.core.diagnostics import Diagnostic
from aimc.core.errors import ValidationFailed

__all__ = [
    "DEPTH_HINT",
    "DEPTH_MESSAGE",
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_FILE_BYTES",
    "MAX_INT",
    "MAX_NODES",
    "TEXT_HINT",
    "big_int",
    "limit_messages",
    "refuse",
]

#: Largest file aimc reads, in bytes (1 MiB); recipes and hardware profiles are a few KiB.
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists, aliases expanded (a recipe needs about 5; data
#: nested 100 deep is still read).
MAX_DEPTH = 128
#: Most nodes (scalars, mappings, lists) in one document, each alias expanded.
MAX_NODES = 20_000
#: Most characters in one document once aliases are expanded: every scalar plus the JSON
#: Pointer of every node (16 Mi).
MAX_EXPANDED_CHARS = 16 * 1024 * 1024
#: The largest integer aimc reads (a signed 64-bit one); a larger one is a diagnostic, so
#: no stage ever meets an integer that overflows a float or Python's int-to-text limit.
MAX_INT = 2**63 - 1

# The message predates the limit (it named Python's recursion limit); the hint says the limit.
DEPTH_MESSAGE = "YAML document is nested too deeply"
DEPTH_HINT = f"aimc reads at most {MAX_DEPTH} levels of nested mappings and lists"
TEXT_HINT = "counting every key and value and the path to each, with aliases expanded"


def big_int(value: Any) -> bool:
    """Whether ``value`` is an integer beyond :data:`MAX_INT` (either sign)."""
    return type(value) is int and not -MAX_INT - 1 <= value <= MAX_INT


def refuse(path: str, line: int, column: int, message: str, hint: str | None = None) -> NoReturn:
    """Raise the one ``yaml`` diagnostic of a file that is not a YAML document aimc reads."""
    raise ValidationFailed(
        [Diagnostic(path=path, line=line, column=column, message=message, rule="yaml", hint=hint)]
    )


def limit_messages(aliases: bool) -> tuple[str, str]:
    """What to say when the node or the text limit is crossed."""
    if aliases:
        return (
            f"YAML aliases expand to more than {MAX_NODES} nodes",
            f"YAML aliases expand to more than {MAX_EXPANDED_CHARS // 2**20} MiB of text",
        )
    return (
        f"YAML document has more than {MAX_NODES} nodes",
        f"YAML document expands to more than {MAX_EXPANDED_CHARS // 2**20} MiB of text",
    )
