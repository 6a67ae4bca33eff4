"""The Python API's arguments, checked before anything runs, and its error response.

Takes what a caller passed to a method of :mod:`aimc.api` and hands on the checked value,
or raises one :class:`~aimc.core.errors.ConfigError` naming the argument (``gpu_count must be
an integer from 1 to 64, not '2'``): a value of the wrong type or out of range never
reaches the pipeline, where it would fail deep inside. Integers are never bools or
floats (``port=2.0`` is refused); texts are non-empty and hold no NUL. ``port`` and
``timeout`` keep the reference's defaults in the signatures (``port: int = 8000``) as
markers of "not given" (:data:`PORT`, :data:`TIMEOUT`), so that only a left-out argument
lets ``DEFAULT_PORT`` / ``DEFAULT_TIMEOUT`` apply. :func:`command_files` checks the
configuration ``run_command_directly`` takes and makes its run folder's files;
:func:`error_response` is the reference's error response for any
:class:`~aimc.core.errors.AimcError`.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aimc.backends import BACKENDS
from aimc.core.diagnostics import did_you_mean, excerpt
from aimc.core.errors import AimcError, ConfigError, ValidationFailed
from aimc.core.safety import check_env
from aimc.core.settings import DEFAULT_PORT, DEFAULT_TIMEOUT, Settings
from aimc.emit.emitters import EMITTERS
from aimc.emit.render import command_plan, manifest, render, render_command
from aimc.plan.model import Plan
from aimc.plan.request import GPU_COUNT_MAX
from aimc.plan.resolve import PRECISION_ORDER

__all__ = [
    "PORT",
    "REPLICAS_MAX",
    "TIMEOUT",
    "bad",
    "bool_arg",
    "choice_arg",
    "command_files",
    "dirs_arg",
    "emit_args",
    "error_response",
    "int_arg",
    "port_arg",
    "request_args",
    "text_arg",
    "timeout_arg",
]

#: Most Deployment replicas an emitter is asked for (as ``--replicas``).
REPLICAS_MAX = 1000


class _NotGiven(int):
    """An ``int`` default that is told apart from the same number given: ``port: int =
    8000`` reads as the reference writes it, while only a left-out argument lets
    ``DEFAULT_PORT`` apply (``port is PORT``; an explicit 8000 is another object)."""

    def __repr__(self) -> str:
        return int.__repr__(self)


#: The default of ``port`` and ``timeout`` in the signatures: "not given".
PORT = _NotGiven(DEFAULT_PORT)
TIMEOUT = _NotGiven(int(DEFAULT_TIMEOUT))


def bad(name: str, value: object, what: str) -> ConfigError:
    """The error for the argument ``name``: what it must be, and an excerpt of ``value``."""
    return ConfigError(f"{name} must be {what}, not {excerpt(value)}")


def text_arg(name: str, value: object) -> str:
    """A non-empty string without NUL characters."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise bad(name, value, "a non-empty string")
    return value


def int_arg(name: str, value: object, low: int, high: int, *, optional: bool = False) -> int:
    """An ``int`` from ``low`` to ``high`` (never a bool or a float, even 2.0)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = f"an integer from {low} to {high}" + (" or None" if optional else "")
        raise bad(name, value, what)
    return int(value)


def choice_arg(name: str, value: object, choices: Sequence[str]) -> str | None:
    """None (the recipe's choice) or one of ``choices``."""
    if value is None:
        return None
    if isinstance(value, str) and value in choices:
        return value
    error = bad(name, value, f"None or one of {', '.join(choices)}")
    if isinstance(value, str):
        error.hint = did_you_mean(value, choices)
    raise error


def bool_arg(name: str, value: object) -> bool:
    """``True`` or ``False`` (never a truthy value such as ``"no"``)."""
    if not isinstance(value, bool):
        raise bad(name, value, "True or False")
    return value


def dirs_arg(value: object) -> list[str | Path]:
    """Recipe directories: a list or tuple of paths (a lone string is not a list of them)."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(d, (str, Path)) and str(d) and "\0" not in str(d) for d in value
    ):
        raise bad("recipe_dirs", value, "a list of folder paths")
    return list(value)


def port_arg(port: object) -> int | None:
    """The ``port`` argument: None when not given (``DEFAULT_PORT``, else 8000, applies)."""
    if port is None or port is PORT:
        return None
    return int_arg("port", port, 1, 65535)


def timeout_arg(timeout: object) -> float | None:
    """The ``timeout`` argument in seconds: None when not given (``DEFAULT_TIMEOUT``, else
    600, applies); an int or a float, positive and finite."""
    if timeout is None or timeout is TIMEOUT:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise bad("timeout", timeout, "a positive number of seconds")
    try:
        seconds = float(timeout)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        raise bad("timeout", timeout, "a positive number of seconds")
    return seconds


def request_args(
    model_id: object, gpu_count: object, precision: object, backend: object
) -> tuple[str, int | None, str | None, str | None]:
    """The arguments every selection takes, checked (ConfigError naming the argument)."""
    model = text_arg("model_id", model_id)
    gpus = (
        None
        if gpu_count is None
        else int_arg("gpu_count", gpu_count, 1, GPU_COUNT_MAX, optional=True)
    )
    return (
        model,
        gpus,
        choice_arg("precision", precision, PRECISION_ORDER),
        choice_arg("backend", backend, sorted(BACKENDS)),
    )


def emit_args(emit: object, replicas: object) -> tuple[str, int]:
    """``emit``: the name of a registered emitter (:mod:`aimc.emit.emitters`); ``replicas``:
    1 to :data:`REPLICAS_MAX`, other than 1 only for an emitter that takes replicas."""
    if not isinstance(emit, str) or emit not in EMITTERS:
        error = bad("emit", emit, f"one of {', '.join(EMITTERS)}")
        if isinstance(emit, str):
            error.hint = did_you_mean(emit, list(EMITTERS))
        raise error
    count = int_arg("replicas", replicas, 1, REPLICAS_MAX)
    if count != 1 and not EMITTERS[emit].replicas:
        takes = " or ".join(repr(n) for n, e in EMITTERS.items() if e.replicas)
        raise bad("replicas", replicas, f"1 for emit={emit!r} (replicas need emit={takes})")
    return emit, count


def error_response(exc: AimcError) -> dict[str, Any]:
    """The reference's error response for ``exc`` (a validation failure's diagnostics as
    its ``details``), stamped with the time in UTC."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    body = exc.to_json()
    if isinstance(exc, ValidationFailed):
        body["details"] = "\n".join(d.format() for d in exc.diagnostics)
    return {"success": False, "error": body, "timestamp": now.isoformat().replace("+00:00", "Z")}


def command_files(config: Any, name: str, gpu_count: int, settings: Settings) -> dict[str, str]:
    """The run folder's files for a ``run_command_directly`` configuration: the ``files``
    that ``generate_config`` returned, its ``plan`` rendered again, or a ``command`` run as
    is (:func:`_command`).

    Raises:
        ConfigError: The configuration is not one of the accepted shapes, or is for
            another GPU count.
    """
    if not isinstance(config, dict):
        raise ConfigError("the configuration must be a dict (see run_command_directly)")
    planned = config.get("plan")
    if isinstance(planned, dict) and planned.get("gpus") not in (None, gpu_count):
        raise ConfigError(
            f"the configuration is for {excerpt(planned['gpus'])} GPUs, not {gpu_count}"
        )
    if isinstance(config.get("files"), dict):
        files: dict[str, str] = config["files"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ConfigError("the configuration's 'files' must map file names to texts")
        return files
    if isinstance(planned, dict):
        return _rendered(planned)
    return _command(config, name, gpu_count, settings)


def _rendered(planned: dict[str, Any]) -> dict[str, str]:
    """The files of a plan that ``generate_config`` returned, rendered again.

    Raises:
        ConfigError: The plan is malformed, runs a command given as is (a command
            configuration's manifest holds such a plan), or names no registered backend.
    """
    try:
        plan = Plan.from_json(planned)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"the configuration's plan is malformed: {exc}") from None
    if plan.raw_command:
        raise ConfigError(
            "the configuration's plan runs a command given as is, not a server aimc renders",
            hint="pass the command itself: {'command': [...], 'port': ...}",
        )
    if not isinstance(plan.backend, str) or plan.backend not in BACKENDS:
        raise ConfigError(
            f"the configuration's plan names no backend aimc knows ({excerpt(plan.backend)})",
            hint=f"aimc knows: {', '.join(BACKENDS)}",
        )
    artifacts = render(plan, "python API: run_command_directly")
    return {**artifacts, "manifest.json": manifest(plan, artifacts, {"api": "plan"})}


def _command(
    config: dict[str, Any], name: str, gpu_count: int, settings: Settings
) -> dict[str, str]:
    """The files of a command configuration: ``command`` (argv), ``port`` (default
    ``settings.default_port``), ``env``, ``health_path`` and ``model``, each checked.

    Raises:
        ConfigError: A field is missing or of the wrong shape, or ``env`` holds a value
            that may not be written (:func:`aimc.core.safety.check_env`).
    """
    argv, env = config.get("command"), config.get("env", {})
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(w, str) and w and "\0" not in w for w in argv)
    ):
        raise ConfigError(
            "the configuration needs 'files' or 'plan' (from generate_config), or 'command': "
            "a non-empty list of argument strings"
        )
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError("the configuration's 'env' must map names to strings")
    for key, value in env.items():
        check_env(str(key), value, "run_command_directly env")
    port = config.get("port", settings.default_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"the configuration's port {port!r:.40} is not a TCP port number")
    health = config.get("health_path", "/health")
    model = config.get("model", "")
    if not isinstance(health, str) or not health.startswith("/") or not isinstance(model, str):
        raise ConfigError("'health_path' must be a path starting with '/', 'model' a string")
    plan = command_plan(argv, name, gpu_count, port, dict(env), health, model)
    return render_command(plan)
