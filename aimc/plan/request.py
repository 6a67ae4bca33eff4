"""The request: what a user asks ``compile`` for, and its ``--set`` items.

A :class:`Request` holds the model, GPU count, precision, backend, target's GPUs and the
user's overrides (a ``--config`` file, ``--set KEY=VALUE`` items) as given;
:func:`parse_set` turns one ``--set`` item into a layer key and a YAML scalar (the neutral
settings and their backend flag spellings are one key), :func:`request_line` writes the
``aim-engine compile`` command that reproduces a plan. Pure.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.backends import BACKENDS
from aimc.core.errors import ConfigError
from aimc.core.loader import MAX_INT, Document
from aimc.core.safety import format_devices
from aimc.domain.engine_args import shown_set

__all__ = ["GPU_COUNT_MAX", "NEUTRAL", "Request", "parse_set", "request_line"]


#: Most GPUs one request may name (GPU_COUNT, --gpu-count, the API's gpu_count).
GPU_COUNT_MAX = 64


#: Neutral settings (besides ``args.*`` and ``env.*``) that layers may set.
NEUTRAL = ("context_length", "memory_utilization", "served_model_name", "host", "port", "image")


def _neutral_flag(flag: str) -> str | None:
    """The neutral setting that a registered backend's ``flag`` carries, if any: ``--set``
    takes either spelling (``served-model-name=x`` is ``served_model_name=x``)."""
    for entry in BACKENDS.values():
        neutral = entry.managed.get(flag)
        if neutral in NEUTRAL:
            return neutral
    return None


#: Host paths ``docker run -v`` and Compose read as one path.
#: Lone surrogates: what Python makes of command-line bytes that are not UTF-8 (compiled on
#: first use, by re's cache: the range costs each start-up ~0.3 ms, and only a rare --set
#: item is checked against it).
_UNENCODABLE = "[\ud800-\udfff]"


@dataclass(frozen=True)
class Request:
    """What the user asked for.

    Attributes:
        model: Model id.
        gpus: GPU count, or None to let the recipe decide.
        precision: Precision, or None.
        backend: Backend, or None for the recipe's default.
        port: Port, or None for ``$DEFAULT_PORT`` / 8000.
        launcher: ``docker`` or ``process``, or None (docker when the target has an image).
        config: A loaded ``--config`` file, if any.
        sets: ``--set key=value`` items, in order.
        default_port: Value of ``$DEFAULT_PORT`` when set.
        available_gpus: GPUs visible on this machine (``--target auto``), else None.
        optimize: ``latency`` or ``throughput`` when the GPU count is left open.
        nodes: Nodes asked for (``--nodes``; a multi-node configuration), or None.
        checkpoint_bytes: Real sizes of checkpoints found locally (source -> bytes).
        measured: Figures measured on this machine (``aim-engine bench`` results, as
            :class:`aimc.plan.measured.Measurement`) that ``optimize`` prefers; a recipe's
            published ``measured:`` figures are read from the recipe.
        devices: The GPUs to serve on, by device id (``--devices``, or this machine's
            usable GPUs, :func:`aimc.app.pipeline.for_target`): exactly ``gpus`` of them when
            the count is given, else the GPUs a count left open fills; None: any GPUs.
        debug: Verbose server logs (``launch --debug``, ``AIM_DEBUG=1``): the chosen
            backend's :attr:`~aimc.backends.Backend.debug_sets`, as ``--set`` items ahead of
            :attr:`sets` (so an explicit ``--set`` of the same key wins).
    """

    model: str
    gpus: int | None = None
    precision: str | None = None
    backend: str | None = None
    port: int | None = None
    launcher: str | None = None
    config: Document | None = None
    sets: tuple[str, ...] = ()
    default_port: int | None = None
    available_gpus: int | None = None
    optimize: str | None = None
    nodes: int | None = None
    checkpoint_bytes: Mapping[str, int] = field(default_factory=dict)
    measured: tuple[Any, ...] = ()
    devices: tuple[int, ...] | None = None
    debug: bool = False

    def set_items(self, backend: str) -> tuple[str, ...]:
        """The ``--set`` items of the cli layer for ``backend``: the debug ones (under
        :attr:`debug`), then :attr:`sets`."""
        return (*(BACKENDS[backend].debug_sets if self.debug else ()), *self.sets)


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` from ``--set`` -> (layer key, value). Values are YAML scalars.

    Raises:
        ConfigError: The item is not ``key=value``.
    """
    if not item.isprintable() and re.search(_UNENCODABLE, item):
        raise ConfigError(f"--set {shown_set(item)!r}: not valid UTF-8 text")
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"--set {shown_set(item)!r}: expected key=value",
            hint="e.g. --set max-num-seqs=128 or --set env.VLLM_LOGGING_LEVEL=DEBUG",
        )
    if key.startswith("env."):
        return key, raw
    key = _neutral_flag(key.removeprefix("args.")) or key
    if not key.startswith("args.") and key not in NEUTRAL:
        key = f"args.{key}"
    return key, _scalar(raw)


def _scalar(raw: str) -> Any:
    """A ``--set`` value: YAML numbers, booleans and null, flow lists and mappings; any
    other text stays the literal string (so ``a: b`` or a newline are not re-read)."""

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = raw.strip()
    if not text or any(not c.isprintable() for c in raw):
        return raw
    try:
        value = YAML(typ="safe", pure=True).load(io.StringIO(text))
        if _has_big_int(value):
            raise OverflowError
    except YAMLError:
        return raw
    except (ValueError, ArithmeticError, RecursionError):  # 5,000 digits, [[[[...
        raise ConfigError(
            f"--set value {shown_set(raw)!r} is too large or too deeply nested",
            hint=f"integers are at most {MAX_INT} (2**63 - 1)",
        ) from None
    if isinstance(value, (bool, int, float)) and not isinstance(value, str):
        return value
    if value is None and text in ("null", "~"):
        return None
    if isinstance(value, (list, dict)) and text[0] in "[{":
        return value
    return raw


def _has_big_int(value: Any, depth: int = 0) -> bool:
    """An integer beyond 64 bits anywhere in ``value`` (a --set flow list or mapping)."""

    if depth > 64:
        raise RecursionError
    if type(value) is int:
        return not -MAX_INT - 1 <= value <= MAX_INT
    items = value.items() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(
        _has_big_int(k, depth + 1) or _has_big_int(v, depth + 1)
        for k, v in (items if isinstance(value, dict) else ((None, x) for x in items))
    )


def request_line(request: Request, target: str, backend: str | None = None) -> str:
    """The ``aim-engine compile`` command line that reproduces a plan: ``request`` as
    :func:`aimc.app.pipeline.for_target` made it (its devices written out), for the target by name
    (of
    ``backend``: the debug settings of ``launch --debug`` are written as the ``--set``
    items they are)."""
    words = ["aim-engine", "compile", request.model]
    if request.gpus is not None:
        words.append(str(request.gpus))
    words += ["--target", target]
    if request.devices is not None:
        words += ["--devices", format_devices(request.devices)]
    for flag, value in (
        ("--precision", request.precision),
        ("--backend", request.backend),
        ("--port", request.port),
        ("--optimize", request.optimize),
        ("--nodes", request.nodes),
        ("--launcher", request.launcher),
    ):
        if value is not None:
            words += [flag, str(value)]
    if request.config is not None:
        words += ["--config", request.config.path]
    for item in request.set_items(backend) if backend else request.sets:
        words += ["--set", item]
    return shlex.join(words)
