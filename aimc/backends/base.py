"""The Backend registry: everything aimc knows about one inference engine, in one object.

A :class:`Backend` holds what the rest of aimc asks of an engine: how to start it (bare
process or container), which of its flags carry aimc's neutral settings and which aimc
manages itself, its environment that passes through from the caller and the names that
hold secrets, its native config file, how it spans several nodes, its startup log markers
and its memory assumptions. Its flag vocabulary (:mod:`aimc.backends.vocabulary`) is the
pinned release's, read from ``aimc/backends/<name>.json``. Each engine is one module of
this package that calls :func:`register`; everything else looks backends up here (the
``--backend`` choices, the schemas' ``backend`` enums, lint, resolve, render, progress).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.core.errors import ConfigError
from aimc.core.masking import add_secret_env
from aimc.core.registry import Registry

__all__ = ["BACKENDS", "Backend", "NodeArgs", "RoleArgs", "get", "names", "register"]

#: ``(rank, head address)`` -> the words one node of a multi-node plan adds.
RoleArgs = Callable[[str, str], list[str]]

#: The node count -> the engine arguments (long flag name -> value) every node of a
#: multi-node plan runs with.
NodeArgs = Callable[[int], Mapping[str, Any]]


@dataclass(frozen=True)
class Backend:
    """One inference engine, as aimc plans, renders and watches it.

    Attributes:
        name: The ``backend`` value in recipes and ``--backend`` (``vllm``).
        process_command: Arguments after the Python interpreter for a bare process.
        container_command: Arguments after the image name (empty when the image's
            entrypoint already starts the server).
        model_flag: Flag that names the model in a container, or None when positional.
        process_model_flag: Flag that names the model for a bare process.
        flags: Neutral setting -> the backend's long flag name.
        dtypes: Precision -> the backend's ``--dtype`` value (others use the default).
        kv_cache_dtypes: Neutral KV cache dtype -> the backend's value.
        default_memory_utilization: The backend's own default, or None when it computes
            one from the GPU (then aimc passes nothing unless a recipe sets it).
        assumed_memory_fraction: The fraction of GPU memory the fit estimate assumes the
            backend takes when nothing sets one (its default, or what it computes).
        managed: Flags aimc sets itself (recipes must not set them through ``args``):
            flag -> what to set instead.
        passthrough_env: The caller's variables the server gets at launch (never written
            to artifacts).
        secrets: The backend's flags and variables that carry secrets.
        secret_env: The caller's variables whose values are secrets (masked in every
            message aimc prints, :func:`aimc.core.masking.mask`).
        config_file: File name of the backend's native config, or None when it has none.
        config_comment: The native config's comment line under aimc's header.
        debug_sets: ``--set`` items that make the server's logs verbose (``launch
            --debug``, ``AIM_DEBUG=1``).
        health_path: HTTP path that answers 200 once the server is up.
        multinode: How the server spans the nodes of a multi-node configuration:
            ``pipeline`` (tensor parallel ``gpus`` on each node, one pipeline stage per
            node) or ``tensor`` (one tensor-parallel group of ``gpus x nodes``).
        node_args: The engine arguments a plan over ``nodes`` nodes gives every node, each
            derived from the node count alone (the plan records the configuration's
            ``nodes`` as their source): the node count itself, the layout's own switches
            (None: the backend serves on one node only). With ``multinode`` ``tensor``
            the plan also sets the ``gpus`` flag to every GPU of every node.
        role_args: The words node ``rank`` adds after the server's arguments, the head's
            address given (None: the backend serves on one node only).
        store_port: The head node's torch.distributed port that every other node joins.
        worker_role: What a node of rank above 0 runs, in words.
        phase_markers: Startup phase (:data:`aimc.run.progress.PHASES`) -> log lines of the
            backend's that enter it.
        snapshot: The pinned vocabulary ``{version, flags, env}``; None: read from
            ``aimc/backends/<name>.json``.
        vocabulary_script: A script in this package that prints the vocabulary of the
            release an interpreter imports (``validate --backend-from-env``), or None.
        default_args: Engine arguments every plan of the backend gets, in the backend
            layer (any higher layer may change them), e.g. what makes it serve /metrics.
    """

    name: str
    process_command: tuple[str, ...]
    container_command: tuple[str, ...]
    model_flag: str | None
    process_model_flag: str | None
    flags: Mapping[str, str]
    dtypes: Mapping[str, str]
    kv_cache_dtypes: Mapping[str, str]
    default_memory_utilization: float | None
    assumed_memory_fraction: float
    managed: Mapping[str, str]
    passthrough_env: tuple[str, ...] = ()
    secrets: frozenset[str] = frozenset()
    secret_env: tuple[str, ...] = ()
    config_file: str | None = None
    config_comment: str = ""
    debug_sets: tuple[str, ...] = ()
    health_path: str = "/health"
    multinode: str = "pipeline"
    node_args: NodeArgs | None = None
    role_args: RoleArgs | None = None
    store_port: int = 0
    worker_role: str = ""
    phase_markers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    snapshot: Callable[[], Mapping[str, Any]] | None = None
    vocabulary_script: str | None = None
    default_args: Mapping[str, Any] = field(default_factory=dict)


#: Every registered backend, by name, in registration order.
BACKENDS: Registry[Backend] = Registry("backend")


def register(entry: Backend) -> Backend:
    """Add a backend (a name already taken is refused); its secret variables join the
    ones every message masks.

    Raises:
        ValueError: The name is taken.
    """
    BACKENDS.add(entry)
    add_secret_env(entry.secret_env)
    return entry


def names() -> tuple[str, ...]:
    """The registered backends' names: the ``--backend`` choices and the schemas' enum."""
    return tuple(BACKENDS)


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ConfigError: No backend has that name.
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r} (aimc knows: {', '.join(BACKENDS)})")
    return BACKENDS[name]
