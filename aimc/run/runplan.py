"""The plan of a compiled folder, as the runner trusts it: read bounded, checked whole.

Takes a folder written by ``aim-engine compile`` and hands on the :class:`~aimc.plan.model.Plan`
of its ``manifest.json``. The manifest is untrusted input (a folder can be edited, or be
anything): it is read without blocking (a FIFO cannot hang the reader) and at most
:data:`MANIFEST_MAX` bytes, and every way it can be malformed, or hold a plan the runner
cannot use (a port out of range, an unknown launcher...), is one :class:`ConfigError`.
:func:`read_bounded` is the one bounded reader of the run stage's small files (manifests
and run records).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from aimc.core.errors import ConfigError
from aimc.core.records import MANIFEST_NAME
from aimc.plan.model import Plan

__all__ = ["LAUNCHERS", "MANIFEST_MAX", "is_int", "load_plan", "read_bounded"]

#: Largest manifest read (bytes); a compiled one is a few KiB.
MANIFEST_MAX = 1 << 20
#: How a plan's server is started: ``launch.sh`` runs it as a process, or in a container.
LAUNCHERS = ("process", "docker")


def read_bounded(path: Path, limit: int, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Opened without blocking so that a FIFO cannot hang the reader.

    Raises:
        OSError: It cannot be opened.
        ValueError: It is not a regular file, or is larger than ``limit``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ValueError(f"larger than {limit} bytes")
    return b"".join(chunks)


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def _plan_problem(plan: Plan) -> str | None:
    """What makes a plan unusable for the runner, or None."""
    if not is_int(plan.port) or not 1 <= plan.port <= 65535:
        return f"port must be an integer 1-65535, not {plan.port!r:.40}"
    if plan.launcher not in LAUNCHERS:
        return f"launcher must be one of {', '.join(LAUNCHERS)}, not {plan.launcher!r:.40}"
    if not isinstance(plan.health_path, str) or not plan.health_path.startswith("/"):
        return f"health_path must be a path starting with '/', not {plan.health_path!r:.40}"
    for field in ("served_model_name", "precision", "backend", "name"):
        if not isinstance(getattr(plan, field), str):
            return f"{field} must be a string"
    if not is_int(plan.gpus) or not is_int(plan.data_parallel):
        return "gpus and data_parallel must be integers"
    if not isinstance(plan.raw_command, bool):
        return "raw_command must be true or false"
    return None


def load_plan(folder: Path) -> Plan:
    """The plan of a compiled folder; any malformed manifest is a ConfigError."""
    hint = "create it with 'aim-engine compile ... -o DIR'"
    try:
        data = json.loads(read_bounded(folder / MANIFEST_NAME, MANIFEST_MAX))
        plan = Plan.from_json(data["plan"])
    # The manifest is untrusted input: every way it can be malformed is a user error.
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{folder} is not a compiled aimc folder ({type(exc).__name__}: {reason[:200]})",
            hint=hint,
        ) from None
    problem = _plan_problem(plan)
    if problem:
        raise ConfigError(f"{folder / MANIFEST_NAME} has an invalid plan: {problem}", hint=hint)
    return plan
