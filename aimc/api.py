"""The AIM Engine Python API (``from aim_launcher import AIMEngine``), on top of aimc.

The classes and signatures are those of the AIM Engine API reference; each method goes
through the same pipeline as the CLI (catalog -> resolve -> render -> write -> run) and
returns plain dicts. ``launch_model`` and ``run_command_directly`` return the reference's
success or error response instead of raising.

Settings come from :class:`aimc.settings.Settings`, as for the CLI: an argument given
wins over its environment variable, which wins over the default (``port`` over
``DEFAULT_PORT`` over 8000, ``timeout`` over ``DEFAULT_TIMEOUT`` over 600). The signatures
write the defaults as the reference does (``port: int = 8000, timeout: int = 600``), but
those defaults are markers of "not given": left out (or None), the environment variable
applies; given, even as ``port=8000``, the argument wins. An :class:`AIMEngine`'s
``cache_dir`` is its own: it is passed down to the pipeline and the server, and never
written to ``os.environ``.

Arguments are checked before anything runs: a value of the wrong type or out of range
(``gpu_count="2"``, ``port=-1``, ``port=2.0``, ``debug="no"``, ``model_id=None``) is a
``CONFIGURATION_ERROR`` naming the argument, in the error response of the methods that
return one (``launch_model``, ``run_command_directly``), and ``None`` from those that
return None when nothing fits (``get_optimal_configuration``, ``generate_config``); never
an exception from deep inside.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aimc.catalog import Catalog
from aimc.errors import AimcError, ConfigError, GPUDetectionError, ValidationFailed
from aimc.loader import Document
from aimc.recipe import Recipe, RecipeRoot
from aimc.request import GPU_COUNT_MAX
from aimc.settings import DEFAULT_PORT, DEFAULT_TIMEOUT, Settings, setting

__all__ = ["AIMConfigGenerator", "AIMDockerManager", "AIMEngine", "AIMRecipeSelector"]


class _NotGiven(int):
    """An ``int`` default that is told apart from the same number given: ``port: int =
    8000`` reads as the reference writes it, while only a left-out argument lets
    ``DEFAULT_PORT`` apply (``port is _PORT``; an explicit 8000 is another object)."""

    def __repr__(self) -> str:
        return int.__repr__(self)


_PORT = _NotGiven(DEFAULT_PORT)
_TIMEOUT = _NotGiven(int(DEFAULT_TIMEOUT))


def _bad(name: str, value: object, what: str) -> ConfigError:
    from aimc.diagnostics import excerpt

    return ConfigError(f"{name} must be {what}, not {excerpt(value)}")


def _text_arg(name: str, value: object) -> str:
    """A non-empty string without NUL characters."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise _bad(name, value, "a non-empty string")
    return value


def _int_arg(name: str, value: object, low: int, high: int, *, optional: bool = False) -> int:
    """An ``int`` from ``low`` to ``high`` (never a bool or a float, even 2.0)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = f"an integer from {low} to {high}" + (" or None" if optional else "")
        raise _bad(name, value, what)
    return int(value)


def _choice_arg(name: str, value: object, choices: Sequence[str]) -> str | None:
    """None (the recipe's choice) or one of ``choices``."""
    if value is None:
        return None
    if isinstance(value, str) and value in choices:
        return value
    from aimc.diagnostics import did_you_mean

    error = _bad(name, value, f"None or one of {', '.join(choices)}")
    if isinstance(value, str):
        error.hint = did_you_mean(value, choices)
    raise error


def _bool_arg(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, value, "True or False")
    return value


def _dirs_arg(value: object) -> list[str | Path]:
    """Recipe directories: a list or tuple of paths (a lone string is not a list of them)."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(d, (str, Path)) and str(d) and "\0" not in str(d) for d in value
    ):
        raise _bad("recipe_dirs", value, "a list of folder paths")
    return list(value)


def _port_arg(port: object) -> int | None:
    """The ``port`` argument: None when not given (``DEFAULT_PORT``, else 8000, applies)."""
    if port is None or port is _PORT:
        return None
    return _int_arg("port", port, 1, 65535)


def _timeout_arg(timeout: object) -> float | None:
    """The ``timeout`` argument in seconds: None when not given (``DEFAULT_TIMEOUT``, else
    600, applies); an int or a float, positive and finite."""
    import math

    if timeout is None or timeout is _TIMEOUT:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise _bad("timeout", timeout, "a positive number of seconds")
    try:
        seconds = float(timeout)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        raise _bad("timeout", timeout, "a positive number of seconds")
    return seconds


def _request_args(
    model_id: object, gpu_count: object, precision: object, backend: object
) -> tuple[str, int | None, str | None, str | None]:
    """The arguments every selection takes, checked (ConfigError naming the argument)."""
    from aimc.backends import BACKENDS
    from aimc.resolve import PRECISION_ORDER

    model = _text_arg("model_id", model_id)
    gpus = (
        None
        if gpu_count is None
        else _int_arg("gpu_count", gpu_count, 1, GPU_COUNT_MAX, optional=True)
    )
    return (
        model,
        gpus,
        _choice_arg("precision", precision, PRECISION_ORDER),
        _choice_arg("backend", backend, sorted(BACKENDS)),
    )


def _error(exc: AimcError) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    body = exc.to_json()
    if isinstance(exc, ValidationFailed):
        body["details"] = "\n".join(d.format() for d in exc.diagnostics)
    return {"success": False, "error": body, "timestamp": now.isoformat().replace("+00:00", "Z")}


def _start(
    files: dict[str, str], name: str, settings: Settings, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write ``files`` to the run folder ``name`` (in the state folder) and run it, waiting
    ``settings.default_timeout`` seconds; the success response."""
    from aimc.runner import refuse_busy, run_folder, validate_name
    from aimc.write import write_artifacts

    folder = settings.state_dir / "builds" / validate_name(name)
    refuse_busy(name, folder)
    write_artifacts(folder, files)
    server_env = settings.server_env() if env is None else env
    record = run_folder(folder, settings.default_timeout, name=name, env=server_env)
    return {
        "success": True,
        "data": record.seed_data("running"),
        "message": "Model launched successfully",
    }


class AIMRecipeSelector:
    """Recipe and GPU selection.

    Args:
        recipe_dirs: Extra recipe directories (before ``$AIMC_RECIPES`` and the shipped).
        target: Hardware profile name, or ``auto`` to detect this machine.

    Raises:
        ConfigError: An argument has the wrong type, or a recipe directory is missing.
    """

    def __init__(self, recipe_dirs: Sequence[str | Path] = (), target: str = "auto"):
        self.catalog = Catalog.default(_dirs_arg(recipe_dirs))
        self.target = _text_arg("target", target)

    def _target(self) -> Any:
        """The hardware a plan is made for (``auto``: this machine's GPUs).

        Raises:
            GPUDetectionError: ``auto`` on a machine where no GPU was detected.
        """
        from aimc.hardware import resolve_target

        return resolve_target(self.catalog, self.target, gpus_required=True)

    def get_optimal_configuration(
        self,
        model_id: str,
        customer_gpu_count: int | None = None,
        customer_precision: str | None = None,
        backend: str = "vllm",
    ) -> dict[str, Any] | None:
        """The resolved plan (as JSON data) for the request, or None when nothing fits
        (no configuration, or no GPU detected on ``target="auto"``) or an argument is
        invalid (see the module docstring). The plan's port is ``$DEFAULT_PORT`` when set,
        else 8000, as for ``launch_model`` without ``port``.

        Raises:
            ConfigError: ``DEFAULT_PORT`` (or another setting) is invalid.
        """
        from aimc.build import make_plan
        from aimc.request import Request

        settings = Settings.load()
        try:
            model, gpus, precision, engine = _request_args(
                model_id, customer_gpu_count, customer_precision, backend
            )
            request = Request(
                model=model,
                gpus=gpus,
                precision=precision,
                backend=engine,
                default_port=settings.default_port_given,
            )
            plan = make_plan(self.catalog, request, self._target(), settings.cache_dir)
        except (ConfigError, GPUDetectionError):
            return None  # nothing fits, the machine has no GPU for it, or a bad argument
        data: dict[str, Any] = plan.to_json()
        return data

    def _detect_vllm_gpus(self) -> int:
        """Number of GPUs visible to vLLM on this machine (0 without GPUs)."""
        from aimc.detect import detect

        return len(detect().gpus)


class AIMConfigGenerator:
    """Launch configuration from a recipe (a dict in the aimc recipe format)."""

    def __init__(self, recipe_dirs: Sequence[str | Path] = (), target: str = "auto"):
        self.selector = AIMRecipeSelector(recipe_dirs, target)

    def generate_config(
        self,
        recipe: dict[str, Any],
        gpu_count: int,
        backend: str = "vllm",
        port: int | None = None,
    ) -> dict[str, Any] | None:
        """``{"plan", "command", "env", "files"}`` for ``gpu_count`` GPUs, or None when the
        recipe has no configuration that fits (or ``target="auto"`` found no GPU), or an
        argument is invalid (a ``recipe`` that is not a valid recipe mapping included).

        ``recipe`` is the recipe file's data as any YAML loader gives it (aimc's,
        ``yaml.safe_load``). ``port`` defaults to ``$DEFAULT_PORT``, else 8000.

        Raises:
            ConfigError: ``DEFAULT_PORT`` (or another setting) is invalid.
        """
        from aimc.backends import BACKENDS
        from aimc.build import compile_plan, for_target
        from aimc.policy import resolve
        from aimc.render import server_argv
        from aimc.request import Request
        from aimc.schema import check_schema

        settings = Settings.load()
        try:
            gpus = _int_arg("gpu_count", gpu_count, 1, GPU_COUNT_MAX)
            engine = _choice_arg("backend", backend, sorted(BACKENDS))
            chosen_port = _port_arg(port)
            if not isinstance(recipe, dict):
                raise _bad("recipe", recipe, "a recipe mapping")
            text = json.dumps(recipe, sort_keys=True, default=str).encode()
        except (ConfigError, TypeError, ValueError):
            return None  # a bad argument; a recipe JSON cannot hold (a cycle, odd keys)
        doc = Document(path="<recipe>", data=recipe, sha256=hashlib.sha256(text).hexdigest())
        if check_schema(doc):
            return None
        obj = Recipe(doc, RecipeRoot(Path.cwd(), "api"))
        try:
            target = self.selector._target()
        except GPUDetectionError:
            return None  # target="auto" on a machine without a GPU
        request = Request(
            model=obj.model_id,
            gpus=gpus,
            backend=engine,
            port=chosen_port,
            default_port=settings.default_port_given,
        )
        try:
            request, pool = for_target(request, target)
            plan = resolve(obj, target.hardware, request, pool)
            compiled = compile_plan(plan, request, target.hardware.name)  # argv values checked
        except ConfigError:
            return None
        return {
            "plan": plan.to_json(),
            "command": [*plan.command, *server_argv(plan)],
            "env": {k: s.value for k, s in plan.env.items()},
            "files": compiled.files,
        }


class AIMDockerManager:
    """Container and process lifecycle."""

    def run_command_directly(
        self,
        config: dict[str, Any],
        container_name: str,
        gpu_count: int,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run a command configuration as a subprocess named ``container_name``, waiting
        ``timeout`` seconds (default ``$DEFAULT_TIMEOUT``, else 600) until it is ready; the
        success or error response (never raises).

        ``config`` is either what :meth:`AIMConfigGenerator.generate_config` returns (its
        ``files``, or its ``plan`` rendered again), or a command given as is::

            {"command": ["python3", "-m", "my.server", "--port", "9000"],  # argv, run as is
             "port": 9000,                 # where it listens (default $DEFAULT_PORT / 8000)
             "env": {"NAME": "value"},     # optional, added to this process's environment
             "health_path": "/health",     # optional: ready when this answers 200
             "model": "served-name"}       # optional: ... and /v1/models lists it

        The process runs in its own session with its output in ``server.log`` of its run
        folder; ``aim-engine status``/``stop`` see it like any other run.
        """
        try:
            from aimc.runner import validate_name

            name = _text_arg("container_name", container_name)
            validate_name(name)
            gpus = _int_arg("gpu_count", gpu_count, 0, GPU_COUNT_MAX)
            settings = Settings.load(default_timeout=_timeout_arg(timeout))
            return _start(
                _command_files(config, name, gpus, settings),
                name,
                settings,
            )
        except AimcError as exc:
            return _error(exc)


def _command_files(config: Any, name: str, gpu_count: int, settings: Settings) -> dict[str, str]:
    """The run folder's files for a ``run_command_directly`` configuration.

    Raises:
        ConfigError: The configuration is not one of the accepted shapes, or is for
            another GPU count.
    """
    from aimc.plan import Plan
    from aimc.render import command_plan, manifest, render

    if not isinstance(config, dict):
        raise ConfigError("the configuration must be a dict (see run_command_directly)")
    planned = config.get("plan")
    if isinstance(planned, dict) and planned.get("gpus") not in (None, gpu_count):
        from aimc.diagnostics import excerpt

        raise ConfigError(
            f"the configuration is for {excerpt(planned['gpus'])} GPUs, not {gpu_count}"
        )
    if isinstance(config.get("files"), dict):
        files: dict[str, str] = config["files"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ConfigError("the configuration's 'files' must map file names to texts")
        return files
    if isinstance(planned, dict):
        try:
            plan = Plan.from_json(planned)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(f"the configuration's plan is malformed: {exc}") from None
        artifacts = render(plan, "python API: run_command_directly")
        return {**artifacts, "manifest.json": manifest(plan, artifacts, {"api": "plan"})}
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
    from aimc.safety import check_env

    for key, value in env.items():
        check_env(str(key), value, "run_command_directly env")
    port = config.get("port", settings.default_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"the configuration's port {port!r:.40} is not a TCP port number")
    health = config.get("health_path", "/health")
    model = config.get("model", "")
    if not isinstance(health, str) or not health.startswith("/") or not isinstance(model, str):
        raise ConfigError("'health_path' must be a path starting with '/', 'model' a string")
    from aimc.render import render_command

    plan = command_plan(argv, name, gpu_count, port, dict(env), health, model)
    return render_command(plan)


class AIMEngine:
    """The AIM Engine: launch models with automatic configuration.

    Args:
        cache_dir: Model cache of this engine (default ``$CACHE_DIR``, else
            ``/workspace/model-cache``). It is kept in the instance and passed down (to the
            pipeline and, as ``CACHE_DIR``, to the server); the process environment is
            never changed, so other engines do not see it.
        debug: Verbose server logs (also ``AIM_DEBUG=1``).
        target: Hardware profile, or ``auto`` to detect this machine.
        recipe_dirs: Extra recipe directories.

    Raises:
        ConfigError: An argument has the wrong type (``debug="no"``), ``cache_dir`` is
            not a path, or a recipe directory is missing.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        debug: bool = False,
        target: str = "auto",
        recipe_dirs: Sequence[str | Path] = (),
    ):
        #: The ``cache_dir`` flag (checked, absolute), or None when not given (or empty).
        if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
            raise _bad("cache_dir", cache_dir, "a folder path or None")
        self._cache_dir = setting("cache_dir", flag=cache_dir) if cache_dir else None
        self.debug = _bool_arg("debug", debug)
        self.selector = AIMRecipeSelector(recipe_dirs, target)

    def settings(self, debug: bool = False) -> Settings:
        """This engine's settings: its arguments over the environment over the defaults.

        Raises:
            ConfigError: A setting is invalid (``DEFAULT_PORT=abc``...).
        """
        return Settings.load(cache_dir=self._cache_dir, debug=True if debug or self.debug else None)

    @property
    def cache_dir(self) -> Path:
        """The model cache this engine uses (absolute)."""
        return setting("cache_dir", flag=self._cache_dir)

    def launch_model(
        self,
        model_id: str,
        gpu_count: int | None = None,
        precision: str | None = None,
        backend: str = "vllm",
        port: int = _PORT,
        timeout: int = _TIMEOUT,
        use_cache: bool = True,
        debug: bool = False,
    ) -> dict[str, Any]:
        """Compile and run ``model_id``; the success or error response (never raises).

        Args:
            model_id: Hugging Face model id (or a local model folder).
            gpu_count: GPUs to use, 1-64; None: the recipe and this machine decide.
            precision: fp32, bf16, fp16, fp8, int8, mxfp4 or int4; None: the recipe's.
            backend: vllm or sglang; None: the recipe's default.
            port: The endpoint's port, 1-65535. Left out (or None): ``$DEFAULT_PORT``
                when set, else 8000. Given, it wins over ``DEFAULT_PORT``, even
                ``port=8000``.
            timeout: Seconds to wait until the server is ready (an int or a float).
                Left out (or None): ``$DEFAULT_TIMEOUT`` when set, else 600. Given, it wins
                over ``DEFAULT_TIMEOUT``, even ``timeout=600``.
            use_cache: Use the model cache's copy when it has one (False: download again).
            debug: Verbose server logs (also the engine's ``debug`` or ``AIM_DEBUG=1``).

        A bad argument (wrong type, out of range) is a ``CONFIGURATION_ERROR`` response
        naming it; nothing is started.
        """
        from aimc.build import compile_plan, for_target, make_plan
        from aimc.checkpoint import prepare_cache
        from aimc.request import Request

        try:
            model, gpus, chosen_precision, engine = _request_args(
                model_id, gpu_count, precision, backend
            )
            chosen_port, seconds = _port_arg(port), _timeout_arg(timeout)
            cached, verbose = _bool_arg("use_cache", use_cache), _bool_arg("debug", debug)
            settings = self.settings(verbose).with_flags(default_timeout=seconds)
            target = self.selector._target()
            request = Request(
                model=model,
                gpus=gpus,
                precision=chosen_precision,
                backend=engine,
                port=chosen_port,
                default_port=settings.default_port_given,
                debug=settings.debug,
            )
            plan = make_plan(self.selector.catalog, request, target, settings.cache_dir)
            request, _ = for_target(request, target)  # as the plan was made
            compiled = compile_plan(plan, request, target.hardware.name)
            env = settings.server_env()
            prepare_cache(plan, cached, env, settings.cache_dir)
            return _start(compiled.files, plan.name, settings, env)
        except AimcError as exc:
            return _error(exc)

    def list_models(self, format: str = "table") -> list[dict[str, Any]]:
        """Every model with a recipe, as ``aim-engine list models --format FORMAT`` shows
        it: ``table`` gives the table's columns (model, precisions, backends, hardware, GPU
        counts), ``json`` and ``yaml`` every field (also the description and weights).

        Raises:
            ValueError: ``format`` is not table, json or yaml.
        """
        from aimc.catalog import COLUMNS, catalog_rows

        if not isinstance(format, str) or format not in ("table", "json", "yaml"):
            from aimc.diagnostics import excerpt

            raise ValueError(f"format must be table, json or yaml, not {excerpt(format)}")
        rows = catalog_rows("models", self.selector.catalog.recipes())
        if format == "table":
            return [{key: row[key] for key in COLUMNS["models"]} for row in rows]
        return rows
