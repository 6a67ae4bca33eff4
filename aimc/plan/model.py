"""The Plan: everything aimc decided about one served configuration.

The plan is the one central object: ``show-config`` prints it, ``compile`` renders it,
``launch`` runs it, the Python API returns it. It is a frozen dataclass with a stable JSON
form (:meth:`Plan.to_json` / :meth:`Plan.from_json` round-trip). Every engine argument and
environment variable is a :class:`Setting` that remembers the layer and ``file:line`` that
set it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["PLAN_VERSION", "Plan", "Setting", "mountable"]

PLAN_VERSION = 1

#: An absolute path ``docker -v`` and Compose volumes take as one source: no ':' or ','
#: (they split there), no control character. Compiled on first use (re's cache): only a
#: local model folder is checked.
_MOUNTABLE = r"/[^:,\x00-\x1f\x7f]*"


def mountable(path: str) -> bool:
    """Whether ``path`` (a local model folder) can be mounted into a container."""
    return bool(re.fullmatch(_MOUNTABLE, path))


@dataclass(frozen=True)
class Setting:
    """A value and where it came from.

    Attributes:
        value: The value (scalar, list or mapping for engine args; string for env vars).
        layer: The precedence layer that set it (see :data:`aimc.plan.layers.LAYERS`).
        source: ``file:line`` of the setting, or a description (``--port``, ``derived``).
    """

    value: Any
    layer: str
    source: str


@dataclass(frozen=True)
class Plan:
    """One resolved configuration, ready to render.

    Attributes:
        name: Short name (container and compose project name), e.g. ``aim-qwen3-32b``.
        model_id: The recipe's model id.
        served_model_name: Name the OpenAI API serves the model under.
        model_source: What the server loads: a Hugging Face repo id or an absolute folder.
        model_revision: Repository revision, if pinned.
        local_model: True when ``model_source`` is a local folder.
        recipe: Where the recipe came from ({source, path, sha256}).
        hardware: Target profile facts ({name, vendor, architecture, memory_gib,
            gpus_per_node, host (the reference node's cpu_cores and memory_gib, when the
            profile gives them), source, path, sha256}).
        configuration: The recipe configuration that matched (its id).
        backend: ``vllm`` or ``sglang``.
        backend_version: The pinned backend release the arguments were checked against.
        precision: Weight precision.
        gpus: Tensor-parallel size (GPUs used).
        port: Port the server listens on.
        launcher: ``docker`` (container) or ``process`` (bare process).
        image: Container image, when there is one.
        container: Container device settings (devices, group_add, ipc, ...).
        command: Server command before the arguments, for the chosen launcher.
        args: Engine arguments: long flag name -> Setting.
        env: Environment variables: name -> Setting.
        passthrough_env: Variables passed through from the caller (secrets, never written).
        health_path: HTTP path that answers 200 when the server is up.
        decisions: Why each automatic choice was made, in order.
        data_parallel: Data-parallel replicas (each of ``gpus`` GPUs).
        estimate: The memory estimate per GPU (:class:`aimc.plan.estimate.Estimate` JSON).
        nodes: Nodes the server spans (pipeline-parallel size; ``gpus`` GPUs on each).
            Left out of :meth:`to_json` when 1.
        devices: The GPUs the server uses on each node, by device id (as ``nvidia-smi`` /
            ``amd-smi`` number them; :attr:`total_gpus` of them), when the plan names them
            (``--devices``, or this machine's GPUs narrowed by visibility variables or busy
            ones); None when any :attr:`total_gpus` GPUs will do. Left out of
            :meth:`to_json` when None.
        raw_command: True for a command given as is (the Python API's
            ``run_command_directly``): the plan only runs ``command`` with ``env`` and waits
            for ``health_path`` on ``port``. It comes from no recipe, hardware profile or
            backend (``recipe``, ``hardware``, ``configuration``, ``backend`` and
            ``model_source`` are empty), so nothing renders it as an engine's server or
            records it as a configuration. Left out of :meth:`to_json` when False.
    """

    name: str
    model_id: str
    served_model_name: str
    model_source: str
    model_revision: str | None
    local_model: bool
    recipe: dict[str, str]
    hardware: dict[str, Any]
    configuration: str
    backend: str
    backend_version: str
    precision: str
    gpus: int
    port: int
    launcher: str
    image: str | None
    container: dict[str, Any]
    command: list[str]
    args: dict[str, Setting] = field(default_factory=dict)
    env: dict[str, Setting] = field(default_factory=dict)
    passthrough_env: list[str] = field(default_factory=list)
    health_path: str = "/health"
    decisions: list[str] = field(default_factory=list)
    data_parallel: int = 1
    estimate: dict[str, Any] = field(default_factory=dict)
    nodes: int = 1
    devices: list[int] | None = None
    raw_command: bool = False

    @property
    def total_gpus(self) -> int:
        """GPUs the server uses on each node: tensor-parallel size x data-parallel
        replicas."""
        return self.gpus * self.data_parallel

    def arg(self, name: str, default: Any = None) -> Any:
        """The value of engine argument ``name``."""
        setting = self.args.get(name)
        return default if setting is None else setting.value

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-compatible data (stable key order)."""
        data = asdict(self)
        if self.nodes == 1:
            del data["nodes"]
        if self.devices is None:
            del data["devices"]
        if not self.raw_command:
            del data["raw_command"]
        data["version"] = PLAN_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_json` output."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["args"] = {k: Setting(**v) for k, v in data.get("args", {}).items()}
        kwargs["env"] = {k: Setting(**v) for k, v in data.get("env", {}).items()}
        return cls(**kwargs)
