"""Run records: what aimc knows of a server it started, and the names they use.

:class:`RunRecord` (one per run, stored as JSON in the state folder), the run-name rule
(:func:`validate_name`: a file, folder and container name that can never name another
folder) and the file names of a compiled folder the runner and ``aim-engine logs`` share.
Reading, writing and verifying records against the live process is :mod:`aimc.run.runs`'.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from aimc.core.errors import ConfigError

__all__ = ["LOG_NAME", "MANIFEST_NAME", "PREVIOUS_LOG_NAME", "RUN_ID", "RunRecord", "validate_name"]

LOG_NAME = "server.log"
#: The previous run's log, kept beside the new one (one generation; in write.RUNTIME_FILES).
PREVIOUS_LOG_NAME = "server.log.1"
MANIFEST_NAME = "manifest.json"

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
#: A run id (:attr:`RunRecord.run_id`): empty, or 32 lower-case hex digits.
RUN_ID = re.compile(r"(?:[0-9a-f]{32})?")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid run name, else raise :class:`ConfigError`.

    A run name is 1-63 characters of ``a-z``, ``0-9``, ``.``, ``_`` and ``-``, starting
    with a letter or digit, with no ``..``: it is used as a file name, a folder name and a
    container name, so it can never name another folder.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        shown = repr(name)[:80]
        raise ConfigError(
            f"invalid run name {shown}",
            hint="use 1-63 characters a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True)
class RunRecord:
    """A server aimc started.

    Attributes:
        name: Container / run name (``aim-qwen3-32b``).
        pid: Process id of ``launch.sh`` (the process group and session leader).
        container_id: Docker container id, or ``pid:<pid>`` for a bare process.
        port: Port of the endpoint.
        endpoint_url: ``http://localhost:PORT``.
        folder: The artifact folder (absolute).
        log: The server log file.
        launcher: ``process`` or ``docker``.
        model: Served model name.
        gpu_count: GPUs used.
        precision: Weight precision.
        backend: ``vllm`` or ``sglang``.
        health_path: Health endpoint path.
        started: Unix time the server was started.
        start_time: Start time of ``pid`` in clock ticks since boot (``/proc/PID/stat``
            field 22); with ``sid`` and ``boot_id`` it proves the pid was not reused.
        sid: Session id of ``pid`` (equal to ``pid``: it was started in a new session).
        boot_id: ``/proc/sys/kernel/random/boot_id`` when it was started ("" if unknown).
        run_id: Random hex this run gave its container as the label ``dev.aimc.run`` (""
            for a bare process or a record of an older aimc): only a container carrying it
            is ever removed for this run.
    """

    name: str
    pid: int
    container_id: str
    port: int
    endpoint_url: str
    folder: str
    log: str
    launcher: str
    model: str
    gpu_count: int
    precision: str
    backend: str
    health_path: str
    started: float
    start_time: int
    sid: int
    boot_id: str
    run_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form (the state file)."""
        return asdict(self)

    def seed_data(self, status: str) -> dict[str, Any]:
        """The ``data`` object of the AIM Engine success response."""
        return {
            "container_id": self.container_id,
            "container_name": self.name,
            "endpoint_url": self.endpoint_url,
            "gpu_count": self.gpu_count,
            "precision": self.precision,
            "backend": self.backend,
            "status": status,
        }
