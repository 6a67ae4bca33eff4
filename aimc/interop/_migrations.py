"""Known migrations of foreign engine args and env vars to the pinned backend versions.

Takes a converted :class:`~aimc.interop._common.Conversion`; :func:`migrate` (``import
--fix``) applies the one table :data:`MIGRATIONS` to the args and env of every recipe's
defaults and configurations of that backend (an arg or variable removed from the pinned
release is dropped, a renamed one renamed), reports each change as a warning
(``interop/migrated``) at the foreign ``file:line`` it came from, and hands on the changes;
:func:`patch` renders them as a unified diff of the foreign files (``validate --from ...
--fix``, a dry run); :func:`hint` says, for a lint problem of an item left as it is, what
``--fix`` would do. Each row names its source (the pull request that removed or renamed
it, or the line of the pinned release that reads the new name).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aimc.core.diagnostics import Diagnostic
from aimc.core.loader import escape_pointer
from aimc.domain.recipe import backend_of
from aimc.interop._common import Conversion, Origin, RecipeOut

__all__ = ["MIGRATED", "MIGRATIONS", "Change", "Migration", "hint", "migrate", "patch"]

#: The rule of a change ``--fix`` made (a warning at the foreign line).
MIGRATED = "interop/migrated"


@dataclass(frozen=True)
class Migration:
    """One known change of a backend's args or env.

    Attributes:
        kind: ``arg`` (a long flag name without dashes) or ``env`` (a variable).
        name: The name older collections use.
        new: The name the pinned release reads instead; None when it was removed.
        backend: The backend whose pinned release this is about.
        why: One short clause: what replaces it.
        source: Where the fact comes from (pull request, release source line).
    """

    kind: Literal["arg", "env"]
    name: str
    new: str | None
    backend: str
    why: str
    source: str


_NO_MOE_ENV = (
    "not read by vLLM 0.32.0 (absent from vllm/envs.py); the MoE kernel is chosen by "
    "--moe-backend (engine/arg_utils.py:1807, default auto)"
)

#: The migrations ``--fix`` applies, for the pinned vLLM 0.32.0 (``aimc/backends/vllm.json``).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "arg",
        "swap-space",
        None,
        "vllm",
        "the V1 engine never allocates CPU swap",
        "vllm-project/vllm#36216 ('[V0 Deprecation] Remove unused swap_space parameter'); "
        "absent from vLLM 0.32.0 engine/arg_utils.py",
    ),
    Migration(
        "arg",
        "max-seq-len-to-capture",
        None,
        "vllm",
        "CUDA graph sizes are compilation-config's cudagraph_capture_sizes",
        "vllm-project/vllm#25543 ('[V0 Deprecation] Remove max_seq_len_to_capture'); "
        "absent from vLLM 0.32.0 engine/arg_utils.py",
    ),
    Migration(
        "env",
        "VLLM_USE_AITER_TRITON_ROPE",
        "VLLM_ROCM_USE_AITER_TRITON_ROPE",
        "vllm",
        "the ROCm fork's name of the AITER Triton RoPE switch",
        "vLLM 0.32.0 vllm/envs.py:1371 reads VLLM_ROCM_USE_AITER_TRITON_ROPE "
        "(_aiter_ops.py:1956: 'Controls Triton rotary embeddings')",
    ),
    Migration(
        "env",
        "VLLM_V1_USE_PREFILL_DECODE_ATTENTION",
        None,
        "vllm",
        "ROCm's prefill-decode kernel (ROCM_ATTN) is first in 0.32's attention order "
        "(platforms/rocm.py:504); force it with --attention-backend ROCM_ATTN",
        "vllm-project/vllm#32812 ('[Deprecation] Remove deprecated environment variables')",
    ),
    Migration(
        "env",
        "VLLM_USE_V1",
        None,
        "vllm",
        "V1 is the only engine",
        "vllm-project/vllm#28204 ('[V0 deprecation] Remove VLLM_USE_V1 env')",
    ),
    Migration("env", "VLLM_USE_FLASHINFER_MOE_FP8", None, "vllm", "see --moe-backend", _NO_MOE_ENV),
    Migration("env", "VLLM_USE_FLASHINFER_MOE_FP4", None, "vllm", "see --moe-backend", _NO_MOE_ENV),
    Migration(
        "env", "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8", None, "vllm", "see --moe-backend", _NO_MOE_ENV
    ),
)

_BY_NAME: dict[tuple[str, str], Migration] = {(m.kind, m.name): m for m in MIGRATIONS}


@dataclass(frozen=True)
class Change:
    """One change ``--fix`` made: migration ``rule`` of the item at ``origin`` (its name
    there), and the value it had (an arg's value tells whether a command line gave it a
    word of its own)."""

    rule: Migration
    origin: Origin
    value: Any


def _describe(m: Migration) -> str:
    what = f"'--{m.name}'" if m.kind == "arg" else f"'{m.name}'"
    if m.new is None:
        return f"{what} was removed before {m.backend} 0.32 ({m.why})"
    new = f"'--{m.new}'" if m.kind == "arg" else f"'{m.new}'"
    return f"{what} is {new} in {m.backend} 0.32 ({m.why})"


def hint(diagnostic: Diagnostic) -> str | None:
    """What ``--fix`` would do about the item a lint ``diagnostic`` (unknown arg or env)
    is about, or None when no migration knows it."""
    if diagnostic.rule not in ("lint/unknown-arg", "lint/unknown-env"):
        return None
    parts = diagnostic.pointer.rsplit("/", 2)
    if len(parts) < 3 or parts[1] not in ("args", "env"):
        return None
    name = parts[2].replace("~1", "/").replace("~0", "~")
    m = _BY_NAME.get(("arg" if parts[1] == "args" else "env", name))
    if m is None:
        return None
    action = "drops it" if m.new is None else f"renames it to {m.new}"
    return f"import --fix {action}: {_describe(m)}; source: {m.source}"


def _sections(recipe: RecipeOut) -> Iterable[tuple[str, dict[str, Any], str]]:
    """(pointer, mapping with args/env, its backend) of the defaults and each configuration."""
    data = recipe.data
    defaults = data.get("defaults", {})
    yield "/defaults", defaults, defaults.get("backend", "vllm")
    for i, conf in enumerate(data["configurations"]):
        yield f"/configurations/{i}", conf, backend_of(data, conf)


def _apply(
    recipe: RecipeOut, base: str, section: dict[str, Any], kind: str, backend: str
) -> list[tuple[Change, Diagnostic]]:
    key = "args" if kind == "arg" else "env"
    items: Mapping[str, Any] = section.get(key) or {}
    found: list[tuple[Change, Diagnostic]] = []
    for name in [n for n in items if (kind, n) in _BY_NAME]:
        m = _BY_NAME[(kind, name)]
        where = recipe.origins.get(f"{base}/{key}/{escape_pointer(name)}")
        if m.backend != backend or where is None:
            continue
        del recipe.origins[f"{base}/{key}/{escape_pointer(name)}"]
        value = section[key].pop(name)
        action = "dropped"
        if m.new is not None and m.new in section[key]:
            action = f"dropped ({m.new} is set too)"
        elif m.new is not None:
            section[key][m.new] = value
            recipe.origins[f"{base}/{key}/{escape_pointer(m.new)}"] = where
            action = f"renamed to {m.new}"
        message = f"{_describe(m)}; {action}"
        diagnostic = where.diagnostic(message, severity="warning", rule=MIGRATED, hint=m.source)
        found.append((Change(m, where, value), diagnostic))
    if key in section and not section[key]:
        del section[key]
    return found


def migrate(conversion: Conversion) -> list[Change]:
    """Apply :data:`MIGRATIONS` to every recipe of ``conversion`` (in place); each change
    is a warning at its foreign line in ``conversion.diagnostics``. Returns the changes."""
    changes: list[Change] = []
    for recipe in conversion.recipes.values():
        for base, section, backend in _sections(recipe):
            for kind in ("arg", "env"):
                for change, diagnostic in _apply(recipe, base, section, kind, backend):
                    conversion.diagnostics.append(diagnostic)
                    changes.append(change)
    return changes


def _edit(lines: list[str], change: Change) -> bool:
    """Apply ``change`` to the foreign file's ``lines`` (in place); False when its text is
    not one the diff can show (a flow-style mapping or list: the change is reported only)."""
    where, m = change.origin, change.rule
    index = where.line - 1
    if not 0 <= index < len(lines):
        return False
    line, column = lines[index], where.column - 1
    shown = (
        m.name if m.kind == "env" or where.pointer.startswith("/engine_args/") else f"--{m.name}"
    )
    at = line.find(shown, column)
    if at < 0 and m.kind == "arg":  # an AIM key written with underscores
        shown = m.name.replace("-", "_")
        at = line.find(shown, column)
    if at < 0:
        return False
    if m.new is not None:
        new = m.new if shown == m.name or m.kind == "env" else f"--{m.new}"
        lines[index] = line[:at] + new + line[at + len(shown) :]
        return True
    before = line[:column].strip()
    if before not in ("", "-"):
        return False  # flow style: not a line of its own
    gone = [index]
    words = where.pointer.rsplit("/", 1)[-1].isdigit()  # a command-line list item
    if words and f"{shown}=" not in line and change.value is not True and index + 1 < len(lines):
        follower = lines[index + 1]
        if follower.strip().startswith("- ") and _indent(follower) == _indent(line):
            gone.append(index + 1)  # the flag's value, its own word
    for i in reversed(gone):
        del lines[i]
    return True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def patch(changes: Iterable[Change]) -> tuple[str, int]:
    """The changes as a unified diff of the foreign files (apply with ``git apply`` or
    ``patch -p1`` in the folder the paths are relative to), and how many changes it could
    not show (flow-style text; each is reported at its line all the same)."""
    by_file: dict[str, dict[tuple[int, int, str], Change]] = {}
    for c in changes:
        # One edit per place (a variant's args repeat in every configuration).
        by_file.setdefault(c.origin.path, {})[(c.origin.line, c.origin.column, c.rule.name)] = c
    out: list[str] = []
    missed = 0
    for path in sorted(by_file):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            missed += len(by_file[path])
            continue
        old = text.splitlines(keepends=True)
        new = list(old)
        # Bottom up, so a deleted line never moves one still to edit.
        for _key, change in sorted(by_file[path].items(), reverse=True):
            missed += not _edit(new, change)
        rel = re.sub(r"^/+", "", path.replace("\\", "/"))
        for line in difflib.unified_diff(old, new, f"a/{rel}", f"b/{rel}"):
            # A last line without its newline, as diff(1) writes it.
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out), missed
