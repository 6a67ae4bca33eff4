"""The AIM Engine Python API (``from aim_launcher import AIMEngine``), on top of aimc.

The classes and signatures are those of the AIM Engine API reference; each method goes
through the same pipeline as the CLI (catalog -> resolve -> render -> write -> run) and
returns plain dicts. ``launch_model`` and ``run_command_directly`` return the reference's
success or error response instead of raising; a launch is the use case ``aim-engine
launch`` runs (:mod:`aimc.app.launch`). ``generate_config(..., emit=NAME)`` gives the files
of any registered emitter (:mod:`aimc.emit.emitters`: ``local``, ``k8s``), as ``aim-engine
compile --emit NAME`` writes them.

Settings come from :class:`aimc.core.settings.Settings`, as for the CLI: an argument given
wins over its environment variable, which wins over the default (``port`` over
``DEFAULT_PORT`` over 8000, ``timeout`` over ``DEFAULT_TIMEOUT`` over 600). The signatures
write the defaults as the reference does (``port: int = 8000, timeout: int = 600``), but
those defaults are markers of "not given": left out (or None), the environment variable
applies; given, even as ``port=8000``, the argument wins. An :class:`AIMEngine`'s
``cache_dir`` is its own: it is passed down to the pipeline and the server, and never
written to ``os.environ``.

Arguments are checked before anything runs (:mod:`aimc.api.args`): a value of the wrong
type or out of range (``gpu_count="2"``, ``port=-1``, ``port=2.0``, ``debug="no"``,
``model_id=None``) is a ``CONFIGURATION_ERROR`` naming the argument, in the error response
of the methods that return one (``launch_model``, ``run_command_directly``), and ``None``
from those that return None when nothing fits (``get_optimal_configuration``,
``generate_config``); never an exception from deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aimc.api.args import (
    PORT,
    TIMEOUT,
    bad,
    bool_arg,
    choice_arg,
    command_files,
    dirs_arg,
    emit_args,
    error_response,
    int_arg,
    port_arg,
    request_args,
    text_arg,
    timeout_arg,
)
from aimc.app.launch import LAUNCHED, prepare, start, start_files
from aimc.app.pipeline import for_target, make_plan
from aimc.backends import BACKENDS
from aimc.check.catalog import COLUMNS, Catalog, catalog_rows
from aimc.check.hardware import Target, resolve_target
from aimc.core.diagnostics import excerpt
from aimc.core.digest import sha256
from aimc.core.errors import AimcError, ConfigError, GPUDetectionError
from aimc.core.loader import Document
from aimc.core.records import RunRecord, validate_name
from aimc.core.settings import Settings, setting
from aimc.detect import detect
from aimc.domain.recipe import Recipe, RecipeRoot
from aimc.domain.schema import check_schema
from aimc.emit.emitters import compiled
from aimc.emit.render import server_argv
from aimc.plan.policy import resolve
from aimc.plan.request import GPU_COUNT_MAX, Request

__all__ = ["AIMConfigGenerator", "AIMDockerManager", "AIMEngine", "AIMRecipeSelector"]


def _launched(record: RunRecord) -> dict[str, Any]:
    """The reference's success response for a server started and ready."""
    return {"success": True, "data": record.seed_data("running"), "message": LAUNCHED}


class AIMRecipeSelector:
    """Recipe and GPU selection.

    Args:
        recipe_dirs: Extra recipe directories (before ``$AIMC_RECIPES`` and the shipped).
        target: Hardware profile name, or ``auto`` to detect this machine.

    Raises:
        ConfigError: An argument has the wrong type, or a recipe directory is missing.
    """

    def __init__(self, recipe_dirs: Sequence[str | Path] = (), target: str = "auto"):
        self.catalog = Catalog.default(dirs_arg(recipe_dirs))
        self.target = text_arg("target", target)

    def _target(self) -> Target:
        """The hardware a plan is made for (``auto``: this machine's GPUs).

        Raises:
            GPUDetectionError: ``auto`` on a machine where no GPU was detected.
        """
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
        settings = Settings.load()
        try:
            model, gpus, precision, engine = request_args(
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
        *,
        emit: str = "local",
        replicas: int = 1,
    ) -> dict[str, Any] | None:
        """``{"plan", "command", "env", "files"}`` for ``gpu_count`` GPUs, or None when the
        recipe has no configuration that fits (or ``target="auto"`` found no GPU), or an
        argument is invalid (a ``recipe`` that is not a valid recipe mapping included).

        ``recipe`` is the recipe file's data as any YAML loader gives it (aimc's,
        ``yaml.safe_load``). ``port`` defaults to ``$DEFAULT_PORT``, else 8000.

        ``files`` are what ``aim-engine compile --emit EMIT`` writes: ``local`` (the
        default) the launch artifacts (``launch.sh``, ``aim.env``, ``manifest.json``...);
        ``k8s`` the Kubernetes manifests with ``replicas`` Deployment replicas (as
        ``--replicas``); any name registered in :mod:`aimc.emit.emitters`. ``command`` and
        ``env`` are the server's, whichever the emitter.

        Raises:
            ConfigError: ``DEFAULT_PORT`` (or another setting) is invalid.
        """
        settings = Settings.load()
        try:
            gpus = int_arg("gpu_count", gpu_count, 1, GPU_COUNT_MAX)
            engine = choice_arg("backend", backend, sorted(BACKENDS))
            chosen_port = port_arg(port)
            emitter, count = emit_args(emit, replicas)
            obj = _recipe_arg(recipe)
        except ConfigError:
            return None  # a bad argument
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
            # the files' values are checked as they are rendered (argv, names, manifests)
            files = compiled(emitter, plan, request, target.hardware.name, count).files
        except ConfigError:
            return None
        return {
            "plan": plan.to_json(),
            "command": [*plan.command, *server_argv(plan)],
            "env": {k: s.value for k, s in plan.env.items()},
            "files": files,
        }


def _recipe_arg(recipe: object) -> Recipe:
    """The ``recipe`` argument of ``generate_config`` as a Recipe (its source ``api``).

    Raises:
        ConfigError: Not a mapping, not JSON-able (a cycle, odd keys), or not a valid
            recipe (its schema).
    """
    if not isinstance(recipe, dict):
        raise bad("recipe", recipe, "a recipe mapping")
    try:
        text = json.dumps(recipe, sort_keys=True, default=str).encode()
    except (TypeError, ValueError):
        raise bad("recipe", recipe, "a recipe mapping JSON can hold") from None
    doc = Document(path="<recipe>", data=recipe, sha256=sha256(text).hexdigest())
    if check_schema(doc):
        raise bad("recipe", recipe, "a valid recipe")
    return Recipe(doc, RecipeRoot(Path.cwd(), "api"))


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
            name = text_arg("container_name", container_name)
            validate_name(name)
            gpus = int_arg("gpu_count", gpu_count, 0, GPU_COUNT_MAX)
            settings = Settings.load(default_timeout=timeout_arg(timeout))
            files = command_files(config, name, gpus, settings)
            return _launched(start_files(files, name, settings))
        except AimcError as exc:
            return error_response(exc)


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
            raise bad("cache_dir", cache_dir, "a folder path or None")
        self._cache_dir = setting("cache_dir", flag=cache_dir) if cache_dir else None
        self.debug = bool_arg("debug", debug)
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
        port: int = PORT,
        timeout: int = TIMEOUT,
        use_cache: bool = True,
        debug: bool = False,
    ) -> dict[str, Any]:
        """Compile and run ``model_id``; the success or error response (never raises).

        Args:
            model_id: Hugging Face model id (or a local model folder).
            gpu_count: GPUs to use, 1-64; None: the recipe and this machine decide.
            precision: fp32, bf16, fp16, fp8, int8, nvfp4, mxfp4 or int4; None: the recipe's.
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
        try:
            model, gpus, chosen_precision, engine = request_args(
                model_id, gpu_count, precision, backend
            )
            chosen_port, seconds = port_arg(port), timeout_arg(timeout)
            cached, verbose = bool_arg("use_cache", use_cache), bool_arg("debug", debug)
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
            launch = prepare(plan, request, target.hardware.name, settings, use_cache=cached)
            return _launched(start(launch, settings.default_timeout))
        except AimcError as exc:
            return error_response(exc)

    def list_models(self, format: str = "table") -> list[dict[str, Any]]:
        """Every model with a recipe, as ``aim-engine list models --format FORMAT`` shows
        it: ``table`` gives the table's columns (model, precisions, backends, hardware, GPU
        counts), ``json`` and ``yaml`` every field (also the description and weights).

        Raises:
            ValueError: ``format`` is not table, json or yaml.
        """
        if not isinstance(format, str) or format not in ("table", "json", "yaml"):
            raise ValueError(f"format must be table, json or yaml, not {excerpt(format)}")
        rows = catalog_rows("models", self.selector.catalog.recipes())
        if format == "table":
            return [{key: row[key] for key in COLUMNS["models"]} for row in rows]
        return rows
