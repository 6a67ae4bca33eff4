"""The flag and environment vocabulary of each backend's pinned release.

Takes a backend name; hands on its :class:`Vocabulary`: the pinned snapshot (the
backend's ``snapshot``, or ``aimc/backends/<name>.json``: vLLM's is generated from the
pinned release by ``tools/gen_vllm_vocab.py``, SGLang's from the server_args.py of its
pinned release), or, after :func:`use_installed`, what an installed release says. Lint
uses it to reject unknown flags and env vars with "did you mean"; the checks of engine
args (:mod:`aimc.domain.engine_args`) to judge values.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from aimc.backends.base import BACKENDS, get
from aimc.core import _resources
from aimc.core.errors import ConfigError

__all__ = ["Vocabulary", "use_installed", "vocabulary", "vocabulary_fingerprint"]


class Vocabulary:
    """The command-line flags and environment variables of one backend release, never
    changed (a plain class: a dataclass costs each start-up ~0.5 ms; read by attribute only).

    Attributes:
        backend: ``vllm`` or ``sglang``.
        version: The release the facts were read from.
        flags: flag name (no dashes) -> {value, multiple, choices?, type?, negatable?}.
        env: Names of the backend's own environment variables.
        env_prefix: Prefix that marks a variable as the backend's own (``VLLM_``).
    """

    __slots__ = ("backend", "env", "env_prefix", "flags", "version")

    def __init__(
        self,
        backend: str,
        version: str,
        flags: dict[str, dict[str, Any]],
        env: frozenset[str],
        env_prefix: str,
    ) -> None:
        self.backend = backend
        self.version = version
        self.flags = flags
        self.env = env
        self.env_prefix = env_prefix


#: Vocabularies read from an installed backend (:func:`use_installed`), by backend.
_INSTALLED: dict[str, dict[str, Any]] = {}


def use_installed(name: str, python: str) -> str:
    """Check engine args against the backend ``name`` that ``python`` imports from now
    on, instead of the pinned snapshot; returns ``"<package> <version>"`` of it.

    Raises:
        ConfigError: The backend cannot be read this way, or ``python`` cannot import it.
    """
    script = get(name).vocabulary_script
    if script is None:
        readable = [b.name for b in BACKENDS.values() if b.vocabulary_script]
        raise ConfigError(f"--backend-from-env reads {', '.join(readable)} only, not {name}")
    import subprocess  # deferred: only --backend-from-env runs a process; compile imports this

    try:
        done = subprocess.run(
            [python, str(Path(__file__).resolve().parent / script)],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        data = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise ConfigError(f"cannot run {python} to read its vLLM: {exc}") from None
    if not isinstance(data, dict) or not {"version", "flags", "env"} <= set(data):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ConfigError(
            f"{python} cannot import vLLM: {last}",
            hint="set AIM_PYTHON to the interpreter that has vLLM installed, or leave out "
            "--backend-from-env to use the pinned snapshot",
        )
    _INSTALLED[name] = data
    vocabulary.cache_clear()
    return f"{data.get('package', name)} {data['version']}"


def vocabulary_fingerprint() -> str:
    """Which backends and vocabularies are in use: the registered backends (the schemas'
    ``backend`` enum), the snapshots given in code, the installed releases read. Part of
    what a cached validation verdict depends on (the shipped snapshots are part of the
    code's own fingerprint)."""
    parts = {
        "backends": {n: b.snapshot() if b.snapshot else None for n, b in BACKENDS.items()},
        "installed": _INSTALLED,
    }
    return json.dumps(parts, sort_keys=True, default=str)


@functools.cache
def vocabulary(name: str) -> Vocabulary:
    """The vocabulary of backend ``name``: the pinned snapshot, or the installed release
    after :func:`use_installed`.

    Raises:
        ConfigError: No backend has that name.
    """
    entry = get(name)
    data: Any = _INSTALLED.get(name)
    if data is None:
        data = (
            entry.snapshot()
            if entry.snapshot
            else json.loads(_resources.read_text("backends", f"{name}.json"))
        )
    return Vocabulary(
        backend=name,
        version=str(data["version"]),
        flags=dict(data["flags"]),
        env=frozenset(data["env"]),
        env_prefix=f"{name.upper()}_",
    )
