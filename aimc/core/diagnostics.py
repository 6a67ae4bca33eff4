"""One diagnostic shape for every problem found in a file.

Takes nothing; hands on :class:`Diagnostic` (what the loader, the schema check and the lint
rules produce) and the functions that sort and print them. Text form::

    path:LINE:COL: error: message (at /json/pointer)
      hint: did you mean 'kv_heads'?

User text never breaks that form: a message or hint is cut to :data:`MAX_TEXT` characters
and its control characters are escaped when the diagnostic is made; the path and pointer
get the same treatment when printed (the JSON form keeps them exact). Code that quotes a
user value in a message uses :func:`excerpt`; code that names the place of a value builds
its JSON Pointer with :func:`pointer` (:func:`escape_pointer` for one token).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aimc.core.masking import mask

Severity = Literal["error", "warning"]
#: A 1-based (line, column) in a file.
Position = tuple[int, int]

__all__ = [
    "MAX_EXCERPT",
    "MAX_TEXT",
    "Diagnostic",
    "Position",
    "Severity",
    "did_you_mean",
    "escape_pointer",
    "excerpt",
    "format_github",
    "format_text",
    "github_annotation",
    "one_line",
    "pointer",
    "sort_diagnostics",
    "whole_line",
]

#: Most characters of one user value that a message quotes (see :func:`excerpt`).
MAX_EXCERPT = 60
#: Most characters of a message, hint, path or pointer in a diagnostic.
MAX_TEXT = 500

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` safe to print on one line of a terminal.

    Escapes what ``str.isprintable`` rejects (control characters, line and paragraph
    separators, bidirectional overrides) the way ``repr`` does, and cuts text longer than
    ``limit`` characters in the middle, saying how much was left out.
    """
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    if len(text) <= limit:
        return text
    # Keep both ends: the start names the value, the end often says what was expected. The
    # result is at most ``limit`` long, so cutting it again changes nothing.
    room = limit - len(f"…[{len(text)} characters left out]…")
    tail = room // 4
    head = room - tail
    return (
        f"{text[:head]}…[{len(text) - head - tail} characters left out]…{text[len(text) - tail :]}"
    )


def whole_line(value: Any) -> str:
    """``value`` with control characters escaped as :func:`one_line` does, never cut: text
    safe inside a comment line of an artifact (a header keeps the whole path)."""
    text = str(value)
    return one_line(text, limit=10 * len(text) + 1)  # an escape is at most 10 characters


def excerpt(value: object, limit: int = MAX_EXCERPT) -> str:
    """A user value quoted for a message: its ``repr``, shortened when long.

    A string longer than ``limit`` characters becomes ``'xxxx…' (5242880 characters)``;
    any other value whose ``repr`` is too long is cut the same way.
    """
    if isinstance(value, str) and len(value) > limit:
        quoted = repr(value[:limit])
        return f"{quoted[:-1]}…{quoted[-1]} ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of {value.bit_length()} bits"  # repr refuses past 4300 digits
    try:
        text = repr(value)
    except Exception:  # an object whose repr fails is still quoted as something
        return f"a {type(value).__name__} value"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def escape_pointer(token: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*parts: str | int) -> str:
    """A JSON Pointer from its reference tokens (``pointer("args", "a/b")``: ``/args/a~1b``)."""
    return "".join(f"/{escape_pointer(p)}" for p in parts)


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

    def __post_init__(self) -> None:
        # The one choke point every message passes: whatever a caller interpolated, the
        # diagnostic stays one bounded line, and a secret in the input (a token pasted as a
        # key) is never shown by any reporter (text, GitHub annotations, JSON data).
        object.__setattr__(self, "message", mask(one_line(self.message)))
        object.__setattr__(self, "pointer", mask(self.pointer))
        if self.hint is not None:
            object.__setattr__(self, "hint", mask(one_line(self.hint)))

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form (documented in ``schemas/validate-output.schema.json``)."""
        return asdict(self)

    def format(self) -> str:
        """The text form: one line, plus an indented hint line when there is one. A
        problem of the whole file (line 0: unreadable, too large) names the file alone
        (``path: error: ...``), never a position ``:0:0`` no editor opens."""
        where = f" (at {one_line(self.pointer)})" if self.pointer else ""
        position = f":{self.line}:{self.column}" if self.line else ""
        text = f"{one_line(self.path)}{position}: {self.severity}: {self.message}{where}"
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


def _workflow_data(text: str) -> str:
    """Text as the data of a GitHub Actions workflow command: ``%``, CR and LF encoded, so a
    message can never end the command line or start another command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _workflow_property(text: str) -> str:
    """Text as a property value of a workflow command (also ``:`` and ``,`` encoded)."""
    return _workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(
    level: str, path: str, title: str, message: str, line: int = 0, column: int = 0
) -> str:
    """One GitHub Actions workflow command
    (``::error file=PATH,line=L,col=C,title=...::message``; no line when 0), with the path,
    title and message encoded so that none can end it or start another."""
    props = [f"file={_workflow_property(path)}"]
    if line:
        props += [f"line={line}", f"col={column}"]
    props.append(f"title={_workflow_property(title)}")
    return f"::{level} {','.join(props)}::{_workflow_data(message)}"


def format_github(diagnostics: Sequence[Diagnostic]) -> str:
    """All diagnostics as GitHub Actions workflow commands, one a line (warnings as
    ``::warning``), then the text summary of :func:`format_text` as a plain line."""
    lines = []
    for d in diagnostics:
        message = d.message + (f" (at {d.pointer})" if d.pointer else "")
        if d.hint:
            message += f"; hint: {d.hint}"
        lines.append(
            github_annotation(d.severity, d.path, f"aimc {d.rule}", message, d.line, d.column)
        )
    summary = format_text(diagnostics).splitlines()[-1:] if diagnostics else []
    return "\n".join(lines + summary)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean" hint for a word from a closed set, or None when nothing is close."""
    import difflib  # deferred: ``aim-engine --help`` imports this module, never calls this

    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(str(word), options, n=3, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if str(word).lower() in lowered:
            close = [lowered[str(word).lower()]]
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
