"""What both importers share: the conversion result, origins, args and hardware.

A foreign collection is read into :class:`~aimc.loader.Document` objects (positions kept);
the per-format modules turn them into aimc recipe and hardware dicts. Every value they
write remembers the foreign ``file:line:col`` it came from (:class:`Origin`), so problems
found later in the converted recipe are reported where the user wrote them.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimc.diagnostics import Diagnostic, did_you_mean, excerpt, sort_diagnostics
from aimc.errors import ValidationFailed
from aimc.loader import Document, escape_pointer, pointer, read_document
from aimc.safety import holds_secret, mask

__all__ = [
    "Collected",
    "Conversion",
    "Facts",
    "Origin",
    "RecipeOut",
    "Tree",
    "args_from_list",
    "hardware_from_shipped",
    "is_secret",
    "no_equivalent",
    "ptr",
    "secret",
]

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")
HARDWARE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
FLAG_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
CONFIG_ID = re.compile(r"[^a-z0-9._-]+")

#: Most files one collection may hold (a bound on hostile input).
MAX_FILES = 5000
#: Most entries of one foreign list or mapping of engine args, env vars or fields that are
#: read (a real profile sets a few dozen); the rest are reported once and not read, so the
#: work one file causes stays bounded whatever its size.
MAX_ITEMS = 100
#: Most configurations one model gets from a collection (AIM: per model; vLLM Recipes: per
#: model file, variant x GPU x strategy), and most engine args and env vars they hold in
#: all (vLLM Recipes repeat a file's args in every configuration); the rest are reported
#: and not imported.
MAX_CONFIGURATIONS = 256
MAX_ENTRIES = 4096
#: Most problems reported per foreign file, and in all; what is left out is counted in
#: one "... and N more" line (see :class:`Collected`).
MAX_FILE_DIAGNOSTICS = 100
MAX_DIAGNOSTICS = 1000
#: Most diagnostics :class:`Collected` remembers to count a repeated one once.
_MAX_TRACKED = 200_000
#: The rule of what a bound of this module left out.
LIMIT = "interop/limit"

#: aimc flags a foreign file may set through neutral recipe fields (see the importers).
NEUTRAL = {
    "tensor-parallel-size": "gpus",
    "max-model-len": "context_length",
    "gpu-memory-utilization": "memory_utilization",
}
#: Flags aimc sets itself and never takes from a recipe: dropped, with a warning.
AIMC_OWNED = ("host", "port", "served-model-name", "download-dir", "model", "config")


#: The rule of what has no aimc equivalent (a warning at the foreign line).
NO_EQUIVALENT = "interop/no-equivalent"


#: A JSON Pointer from its reference tokens (the loader's).
ptr = pointer


@dataclass(frozen=True)
class Origin:
    """Where a converted value came from: a foreign file, its position and pointer."""

    path: str
    line: int
    column: int
    pointer: str

    @classmethod
    def of(cls, doc: Document, pointer: str, *, key: bool = False) -> Origin:
        """The origin of ``pointer`` in ``doc``."""
        line, column = doc.position(pointer, key=key)
        return cls(doc.path, line, column, pointer)

    def diagnostic(
        self, message: str, *, severity: str = "error", rule: str, hint: str | None = None
    ) -> Diagnostic:
        """A diagnostic at this origin."""
        return Diagnostic(
            path=self.path,
            line=self.line,
            column=self.column,
            message=message,
            pointer=self.pointer,
            severity="warning" if severity == "warning" else "error",
            rule=rule,
            hint=hint,
        )


@dataclass
class RecipeOut:
    """One converted recipe and the origin of each of its values (by JSON Pointer)."""

    data: dict[str, Any]
    origins: dict[str, Origin] = field(default_factory=dict)

    def origin(self, pointer: str) -> Origin | None:
        """The origin of ``pointer``, else of the nearest enclosing value that has one."""
        while True:
            if pointer in self.origins:
                return self.origins[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


@dataclass
class Conversion:
    """A converted collection.

    Attributes:
        files: The foreign files read, as displayed.
        recipes: Model id -> converted recipe.
        hardware: Hardware name -> converted profile (plain data) and its origin.
        diagnostics: What could not be converted or has no equivalent (at the foreign
            file's line).
        claims: (model id, precision, GB claimed, origin) of vLLM Recipes'
            ``vram_minimum_gb``, checked by :mod:`aimc.interop._check`.
    """

    files: list[str] = field(default_factory=list)
    recipes: dict[str, RecipeOut] = field(default_factory=dict)
    hardware: dict[str, tuple[dict[str, Any], Origin]] = field(default_factory=dict)
    diagnostics: Collected = field(default_factory=lambda: Collected())
    claims: list[tuple[str, str, float, Origin]] = field(default_factory=list)


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
    bounds it is exactly :func:`~aimc.diagnostics.sort_diagnostics` of what was added.

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

    :meth:`documents` yields each file as a :class:`~aimc.loader.Document` (the ones that
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


def over_limit(where: Origin, count: int, what: str, limit: int = MAX_ITEMS) -> Diagnostic:
    """The warning for a foreign list or mapping of more than ``limit`` entries: the first
    ``limit`` are read, the rest are not (a bound on the work one file causes)."""
    return where.diagnostic(
        f"{count} {what}: more than aimc reads ({limit}); the first {limit} are read, the "
        "rest are not imported",
        severity="warning",
        rule=LIMIT,
    )


def first_items(mapping: Mapping[Any, Any], limit: int = MAX_ITEMS) -> list[tuple[Any, Any]]:
    """The first ``limit`` items of ``mapping``."""
    out: list[tuple[Any, Any]] = []
    for item in mapping.items():
        if len(out) == limit:
            break
        out.append(item)
    return out


def config_id(text: str) -> str:
    """A configuration id (``[a-z0-9][a-z0-9._-]*``) made from foreign text."""
    out = CONFIG_ID.sub("-", text.lower()).strip("-._")[:80]
    return out if out and out[0].isalnum() else f"c-{out}".rstrip("-") or "c"


def coerce(name: str, value: Any) -> Any:
    """A command-line word as the type the pinned vLLM reads for ``name`` (ints, floats)."""
    from aimc.backends import vocabulary

    spec = vocabulary("vllm").flags.get(name, {})
    if isinstance(value, str):
        try:
            if spec.get("type") == "int":
                return int(value)
            if spec.get("type") == "float":
                return float(value)
        except ValueError:
            return value
    return value


def _takes_value(name: str, following: str | None) -> bool:
    from aimc.backends import vocabulary

    spec = vocabulary("vllm").flags.get(name)
    if following is None:
        return False
    if spec is not None:
        return bool(spec["value"])
    return not following.startswith("-") or _number(following)


def args_from_list(
    words: Any, doc: Document, base: str
) -> tuple[list[tuple[str, Any, Origin]], list[Diagnostic]]:
    """``["--flag", "value", "--switch", "--k=v"]`` (a vLLM command-line list) as
    (flag name, value, origin) in order; true for a bare switch. Words that are not flags
    (a positional, a name with a stray character such as a trailing comma) are reported."""
    out: list[tuple[str, Any, Origin]] = []
    problems: list[Diagnostic] = []
    if words is None:
        return out, problems
    if not isinstance(words, list):
        problems.append(
            Origin.of(doc, base).diagnostic(
                "expected a list of command-line words", rule="interop/args"
            )
        )
        return out, problems
    if len(words) > 2 * MAX_ITEMS:
        problems.append(over_limit(Origin.of(doc, base), len(words), "words", 2 * MAX_ITEMS))
        words = words[: 2 * MAX_ITEMS]
    i = 0
    while i < len(words):
        word, where = words[i], Origin.of(doc, f"{base}/{i}")
        i += 1
        if isinstance(word, str) and word[:1] == "-" and word[:2] != "--" and not _number(word):
            problems.append(
                no_equivalent(
                    where,
                    f"short option {mask(excerpt(word))} has no aimc equivalent; not imported",
                    hint="aimc args are long flags (compilation-config: a mapping)",
                )
            )
            continue
        if not isinstance(word, str) or not word.startswith("--"):
            problems.append(
                where.diagnostic(
                    f"{mask(excerpt(word))} is not a flag (expected --name)",
                    rule="interop/args",
                    hint="a value must follow the flag it belongs to",
                )
            )
            continue
        name, eq, value = word[2:].partition("=")
        if not FLAG_NAME.match(name):
            problems.append(bad_flag(name, where))
            if not eq and i < len(words) and _takes_value(name.strip(",;"), _word(words, i)):
                i += 1
            continue
        if eq:
            out.append((name, coerce(name, value), where))
        elif _takes_value(name, _word(words, i)):
            out.append((name, coerce(name, words[i]), where))
            i += 1
        else:
            out.append((name, True, where))
    return out, problems


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _word(words: list[Any], i: int) -> str | None:
    return str(words[i]) if i < len(words) else None


def bad_flag(name: str, where: Origin) -> Diagnostic:
    """The diagnostic for a flag name the engine cannot parse (``max-num-seqs,``)."""
    from aimc.backends import vocabulary

    cleaned = re.sub(r"[^a-z0-9-]+", "", name.lower().replace("_", "-"))
    flags = vocabulary("vllm").flags
    if cleaned in flags:  # a stray character around a real flag: name it alone
        hint: str | None = f"did you mean {cleaned!r}?"
    else:
        hint = did_you_mean(cleaned, flags) if cleaned else None
    return where.diagnostic(
        f"{excerpt('--' + name)} is not a valid flag name (stray character?)",
        rule="lint/unknown-arg",
        hint=hint,
    )


def no_equivalent(where: Origin, message: str, hint: str | None = None) -> Diagnostic:
    """The warning for what a foreign file says and aimc cannot express: reported at its
    line, never dropped silently."""
    return where.diagnostic(message, severity="warning", rule=NO_EQUIVALENT, hint=hint)


def is_secret(name: str) -> bool:
    """A flag or variable that holds a secret (:func:`aimc.lint.is_secret`)."""
    from aimc.lint import is_secret as lint_is_secret

    return lint_is_secret(name)


def secret(name: str, where: Origin, value: object = None) -> Diagnostic:
    """The diagnostic for a secret in a foreign file (by its name, or a ``value`` that
    holds a token): never imported, never echoed."""
    what = "is a secret" if is_secret(name) else "holds a token"
    return where.diagnostic(
        f"'{name}' {what}; not imported (secrets never go in recipes)",
        rule="lint/secret",
        hint="remove it from the collection; aimc passes HF_TOKEN and VLLM_API_KEY through "
        "from the caller's environment",
    )


def env_items(
    env: Any, doc: Document, base: str
) -> tuple[dict[str, str], dict[str, Origin], list[Diagnostic]]:
    """A foreign env mapping as aimc env (names checked, values as the strings the
    foreign launcher passes), the origin of each name, and what was refused."""
    out: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    problems: list[Diagnostic] = []
    if env is None:
        return out, origins, problems
    if not isinstance(env, Mapping):
        problems.append(Origin.of(doc, base).diagnostic("expected a mapping", rule="interop/env"))
        return out, origins, problems
    if len(env) > MAX_ITEMS:
        problems.append(over_limit(Origin.of(doc, base), len(env), "variables"))
    for name, value in first_items(env):
        where = Origin.of(doc, f"{base}/{escape_pointer(name)}", key=True)
        if not isinstance(name, str) or not ENV_NAME.match(name):
            problems.append(
                where.diagnostic(
                    f"{excerpt(name)} is not a valid variable name", rule="interop/env"
                )
            )
            continue
        if is_secret(name) or holds_secret(value):
            problems.append(secret(name, where, value))
            continue
        if value is None or isinstance(value, (list, dict)):
            problems.append(where.diagnostic(f"'{name}' needs a string value", rule="interop/env"))
            continue
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
        origins[name] = where
    return out, origins, problems


#: Settings of a shipped profile that change what is launched; an imported profile leaves
#: them out so a converted model launches with the foreign file's env and args only.
_LAUNCH_SETTINGS = ("env", "multi_gpu_env")


def hardware_from_shipped(name: str, description: str, catalog: Any) -> dict[str, Any] | None:
    """aimc's profile ``name`` (from ``catalog``) without its launch env and backend args
    (the foreign collection says those), or None when aimc has no such profile."""
    from aimc.errors import AimcError

    if name not in catalog.hardware_names():
        return None
    try:
        data = dict(catalog.hardware(name).data)
    except AimcError:
        return None
    for key in _LAUNCH_SETTINGS:
        data.pop(key, None)
    backends = {
        b: {k: v for k, v in s.items() if k == "image"} for b, s in data.get("backends", {}).items()
    }
    data["backends"] = {b: s for b, s in backends.items() if s}
    if not data["backends"]:
        data.pop("backends")
    data["description"] = description[:200]
    return data


class Facts:
    """Model facts (and architecture) by model id, from the recipes of a catalog: read once
    each, schema-checked, without the catalog's lint (the importers need only the facts)."""

    def __init__(self, catalog: Any):
        self._files = {k.casefold(): f for k, (f, _root) in catalog.model_files().items()}
        self._cache: dict[str, tuple[dict[str, Any], str | None] | None] = {}

    def __call__(self, model_id: str) -> tuple[dict[str, Any], str | None] | None:
        key = model_id.casefold()
        if key not in self._cache:
            self._cache[key] = self._read(key)
        return self._cache[key]

    def _read(self, key: str) -> tuple[dict[str, Any], str | None] | None:
        file = self._files.get(key)
        if file is None:
            return None
        try:
            data = read_document(file).data
            model = data["model"]
            facts = dict(model["facts"])
        except (ValidationFailed, KeyError, TypeError):
            return None
        # The converted recipe goes through the whole schema; here only what the
        # conversion itself reads must hold.
        if not all(
            isinstance(facts.get(k), int) and not isinstance(facts.get(k), bool) and facts[k] > 0
            for k in _FACT_INTS
        ):
            return None
        architecture = model.get("architecture")
        return facts, architecture if isinstance(architecture, str) else None


#: Facts every recipe has, all positive integers (``parameters`` may be a float).
_FACT_INTS = ("layers", "hidden_size", "attention_heads", "kv_heads", "head_dim", "max_context")
