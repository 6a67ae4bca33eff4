"""One diagnostic shape for every problem found in a file.

Takes nothing; hands on :class:`Diagnostic` (what the loader, the schema check and the lint
rules produce) and the functions that sort and print them. Text form::

    path:LINE:COL: error: message (at /json/pointer)
      hint: did you mean 'kv_heads'?
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]

__all__ = ["Diagnostic", "Severity", "did_you_mean", "format_text", "sort_diagnostics"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem at one place in one file.

    Attributes:
        path: The file, as the user named it (or the shipped resource path).
        line: 1-based line; 0 when the problem concerns the whole file set.
        column: 1-based column.
        message: One line, no trailing period.
        pointer: JSON Pointer of the value concerned ("" for the document).
        severity: "error" or "warning".
        rule: Stable identifier of the check (``schema``, ``yaml``, ``lint/...``).
        hint: Optional one-line suggestion.
    """

    path: str
    line: int
    column: int
    message: str
    pointer: str = ""
    severity: Severity = "error"
    rule: str = "schema"
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form (documented in ``schemas/validate-output.schema.json``)."""
        return asdict(self)

    def format(self) -> str:
        """The text form: one line, plus an indented hint line when there is one."""
        where = f" (at {self.pointer})" if self.pointer else ""
        text = f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}{where}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file, then position, then message; duplicates removed."""
    return sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.column, d.message))


def format_text(diagnostics: Sequence[Diagnostic]) -> str:
    """All diagnostics in text form followed by a one-line summary."""
    lines = [d.format() for d in diagnostics]
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    files = len({d.path for d in diagnostics})
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    if parts:
        lines.append(f"{', '.join(parts)} in {files} file{'s' if files != 1 else ''}")
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean" hint for a word from a closed set, or None when nothing is close."""
    import difflib

    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(str(word), options, n=3, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if str(word).lower() in lowered:
            close = [lowered[str(word).lower()]]
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
