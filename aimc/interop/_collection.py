"""A foreign checkout as a collection: its files, loaded one at a time, and its problems.

:class:`Tree` finds the files of a checkout that a converter reads (never through a link,
at most :data:`MAX_FILES`) and hands them on as :class:`~aimc.core.loader.Document` objects one
at a time, so a converter holds one file's positions at a time. :class:`Collected` keeps
the diagnostics of a whole collection in bounded memory (at most
:data:`MAX_FILE_DIAGNOSTICS` per file, :data:`MAX_DIAGNOSTICS` in all, the rest counted in
one "... and N more" line each), whatever its size: the bound on what a hostile
collection can make aimc hold or print.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from aimc.core.diagnostics import Diagnostic, sort_diagnostics
from aimc.core.errors import ValidationFailed
from aimc.core.loader import Document, read_document

__all__ = ["LIMIT", "MAX_DIAGNOSTICS", "MAX_FILES", "MAX_FILE_DIAGNOSTICS", "Collected", "Tree"]

#: Most files one collection may hold (a bound on hostile input).
MAX_FILES = 5000
#: Most problems reported per foreign file, and in all; what is left out is counted in
#: one "... and N more" line (see :class:`Collected`).
MAX_FILE_DIAGNOSTICS = 100
MAX_DIAGNOSTICS = 1000
#: Most diagnostics :class:`Collected` remembers to count a repeated one once.
_MAX_TRACKED = 200_000
#: The rule of what a bound of the interop modules left out.
LIMIT = "interop/limit"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class _Last:
    """A diagnostic in a file's max-heap: the one that sorts last on top."""

    __slots__ = ("d", "key")

    def __init__(self, d: Diagnostic):
        self.d = d
        self.key = (d.line, d.column, d.message, d.severity, d.rule, d.pointer, d.hint or "")

    def __lt__(self, other: _Last) -> bool:
        return self.key > other.key


class Collected:
    """The diagnostics of a collection, in bounded memory: of each file the first
    ``per_file`` (in sorted order) are kept, and of the files only as many as the first
    ``total`` lines of the sorted report need; the rest are only counted. :meth:`sorted`
    adds one "... and N more" line per file and one for the whole collection. Below the
    bounds it is exactly :func:`~aimc.core.diagnostics.sort_diagnostics` of what was added.

    A repeated diagnostic is counted once (by its hash; past ``_MAX_TRACKED`` remembered
    ones, a repeat of a left-out diagnostic is counted again)."""

    def __init__(self, per_file: int = MAX_FILE_DIAGNOSTICS, total: int = MAX_DIAGNOSTICS):
        self.per_file, self.total = per_file, total
        self._heaps: dict[str, list[_Last]] = {}  # per file: the kept ones
        self._kept = 0  # how many the heaps hold
        self._seen: dict[str, set[int]] = {}  # per file: hashes of what was added
        self._tracked = 0
        self._left: dict[str, list[int]] = {}  # per file: errors, warnings left out
        self._past: set[str] = set()  # files past the report's first `total` lines

    def _leave(self, d: Diagnostic) -> None:
        counts = self._left.setdefault(d.path, [0, 0])
        counts[d.severity != "error"] += 1

    def append(self, d: Diagnostic) -> None:
        """Add one diagnostic (a repeat is ignored)."""
        key = hash(d)
        seen = self._seen.setdefault(d.path, set())
        if key in seen:
            return
        if self._tracked < _MAX_TRACKED:
            seen.add(key)
            self._tracked += 1
        if d.path in self._past:
            self._leave(d)
            return
        heap = self._heaps.setdefault(d.path, [])
        item = _Last(d)
        if len(heap) < self.per_file:
            heapq.heappush(heap, item)
            self._kept += 1
            if self._kept > 2 * self.total + self.per_file:
                self._compact()
        elif item.key < heap[0].key:
            self._leave(heapq.heapreplace(heap, item).d)
        else:
            self._leave(d)

    def extend(self, found: Iterable[Diagnostic]) -> None:
        """Add each of ``found``."""
        for d in found:
            self.append(d)

    def __iadd__(self, found: Iterable[Diagnostic]) -> Collected:
        self.extend(found)
        return self

    def __iter__(self) -> Iterator[Diagnostic]:
        """The kept diagnostics (in no particular order)."""
        return iter([item.d for heap in self._heaps.values() for item in heap])

    def __len__(self) -> int:
        return self._kept

    def _compact(self) -> None:
        """Count, no longer keep, the files whose lines all come after the report's first
        ``total`` (the files before them already have that many)."""
        before = 0
        for path in sorted(self._heaps):
            if before >= self.total:
                for item in self._heaps.pop(path):
                    self._leave(item.d)
                    self._kept -= 1
                self._past.add(path)
            else:
                before += len(self._heaps[path])

    def sorted(self, where: str) -> list[Diagnostic]:
        """The kept diagnostics, sorted, each file's "... and N more" line after them, and
        the collection's at ``where`` last."""
        ordered: list[Diagnostic] = []
        notes: dict[int, tuple[int, int]] = {}  # index of a file's note: its counts
        for path in sorted(self._heaps):
            ordered += sort_diagnostics(item.d for item in self._heaps[path])
            if path in self._left:
                errors, warnings = self._left[path]
                notes[len(ordered)] = (errors, warnings)
                ordered.append(
                    Diagnostic(
                        path,
                        0,
                        0,
                        f"... and {_count(errors + warnings, 'more problem')} in this file "
                        f"({_count(errors, 'error')}, {_count(warnings, 'warning')}) not "
                        f"shown; aimc reports at most {self.per_file} per file",
                        severity="error" if errors else "warning",
                        rule=LIMIT,
                        hint="fix these and run again to see the rest",
                    )
                )
        errors = sum(self._left[path][0] for path in self._past)
        warnings = sum(self._left[path][1] for path in self._past)
        for index in range(self.total, len(ordered)):
            if index in notes:
                errors, warnings = errors + notes[index][0], warnings + notes[index][1]
            else:
                errors += ordered[index].severity == "error"
                warnings += ordered[index].severity != "error"
        ordered = ordered[: self.total]
        if errors or warnings:
            ordered.append(
                Diagnostic(
                    where,
                    0,
                    0,
                    f"... and {_count(errors + warnings, 'more problem')} "
                    f"({_count(errors, 'error')}, {_count(warnings, 'warning')}) not shown; "
                    f"aimc reports at most {self.total} in all",
                    severity="error" if errors else "warning",
                    rule=LIMIT,
                )
            )
        return ordered


class Tree:
    """The files of a foreign checkout that a converter reads, loaded one at a time.

    :meth:`documents` yields each file as a :class:`~aimc.core.loader.Document` (the ones that
    ``first`` says first, then the rest, each group sorted), so a converter holds one
    file's positions at a time; a file that fails to load becomes diagnostics of ``out``.
    """

    def __init__(
        self, root: Path, patterns: Iterable[str], first: Callable[[str], bool] | None = None
    ):
        found: set[Path] = set()
        real_root = root.resolve()
        for pattern in patterns:
            # Not a link, and not reached through one (a linked 'profiles' or 'models' folder).
            found.update(
                p
                for p in root.glob(pattern)
                if p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(real_root)
            )
        self._first = first or (lambda _path: False)
        shown = {file: _display(file) for file in found}
        # The shared files first, so a cut at MAX_FILES leaves them in.
        ordered = sorted(found, key=lambda f: (not self._first(shown[f]), f))
        self.problems: list[Diagnostic] = []
        if len(ordered) > MAX_FILES:
            self.problems.append(
                Diagnostic(
                    str(root),
                    0,
                    0,
                    f"more than {MAX_FILES} files; read the first {MAX_FILES}",
                    severity="warning",
                    rule=LIMIT,
                )
            )
            ordered = ordered[:MAX_FILES]
        self.files = [(file, shown[file]) for file in sorted(ordered)]
        self._loaded: set[str] = set()

    def __len__(self) -> int:
        return len(self.files)

    def documents(self, problems: Collected) -> Iterator[Document]:
        """Each file, loaded (a file that does not load: its problems go to ``problems``)."""
        first = self._first
        ordered = [f for f in self.files if first(f[1])] + [
            f for f in self.files if not first(f[1])
        ]
        for file, display in ordered:
            try:
                doc = read_document(file, display)
            except ValidationFailed as exc:
                problems += exc.diagnostics
                continue
            self._loaded.add(display)
            yield doc

    @property
    def loaded(self) -> list[str]:
        """The files loaded so far, in sorted order."""
        return [display for _file, display in self.files if display in self._loaded]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
