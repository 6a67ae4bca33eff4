"""The AIM Engine Python API (``from aim_launcher import AIMEngine``), on top of aimc.

The classes and signatures are those of the AIM Engine API reference; each method goes
through the same pipeline as the CLI (catalog -> resolve -> render -> write -> run) and
returns plain dicts. ``launch_model`` and ``run_command_directly`` return the reference's
success or error response instead of raising.

Settings come from :class:`aimc.settings.Settings`, as for the CLI: an argument given (not
None) wins over its environment variable, which wins over the default (``port`` over
``DEFAULT_PORT`` over 8000, ``timeout`` over ``DEFAULT_TIMEOUT`` over 600). An
:class:`AIMEngine`'s ``cache_dir`` is its own: it is passed down to the pipeline and the
server, and never written to ``os.environ``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aimc.catalog import Catalog, Recipe, RecipeRoot
from aimc.errors import AimcError, ConfigError, ValidationFailed
from aimc.loader import Document
from aimc.settings import Settings, setting

__all__ = ["AIMConfigGenerator", "AIMDockerManager", "AIMEngine", "AIMRecipeSelector"]


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
    """

    def __init__(self, recipe_dirs: Sequence[str | Path] = (), target: str = "auto"):
        self.catalog = Catalog.default(recipe_dirs)
        self.target = target

    def _target(self, gpus_required: bool = False) -> Any:
        from aimc.hardware import resolve_target

        return resolve_target(self.catalog, self.target, gpus_required=gpus_required)

    def get_optimal_configuration(
        self,
        model_id: str,
        customer_gpu_count: int | None = None,
        customer_precision: str | None = None,
        backend: str = "vllm",
    ) -> dict[str, Any] | None:
        """The resolved plan (as JSON data) for the request, or None when nothing fits."""
        from aimc.build import make_plan
        from aimc.resolve import Request

        request = Request(
            model=model_id, gpus=customer_gpu_count, precision=customer_precision, backend=backend
        )
        try:
            plan = make_plan(
                self.catalog, request, self._target(gpus_required=customer_gpu_count is not None)
            )
        except ConfigError:
            return None
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
        recipe has no configuration that fits.

        ``port`` defaults to ``$DEFAULT_PORT``, else 8000.

        Raises:
            ConfigError: ``DEFAULT_PORT`` (or another setting) is invalid.
        """
        from aimc.build import compile_plan
        from aimc.policy import resolve
        from aimc.render import server_argv
        from aimc.resolve import Request
        from aimc.schema import check_schema

        text = json.dumps(recipe, sort_keys=True).encode()
        doc = Document(path="<recipe>", data=recipe, sha256=hashlib.sha256(text).hexdigest())
        if check_schema(doc):
            return None
        obj = Recipe(doc, RecipeRoot(Path.cwd(), "api"))
        target = self.selector._target()
        request = Request(
            model=obj.model_id,
            gpus=gpu_count,
            backend=backend,
            port=port,
            default_port=Settings.load().default_port_given,
            available_gpus=target.available_gpus,
        )
        try:
            plan = resolve(obj, target.hardware, request)
        except ConfigError:
            return None
        compiled = compile_plan(plan, request, target.hardware.name)
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
        """Write ``config["files"]`` (from :meth:`AIMConfigGenerator.generate_config`) to a
        run folder and start it as ``container_name``, waiting ``timeout`` seconds (default
        ``$DEFAULT_TIMEOUT``, else 600); the success or error response."""
        try:
            settings = Settings.load(default_timeout=timeout)
            if config.get("plan", {}).get("gpus") not in (None, gpu_count):
                raise ConfigError(
                    f"the configuration is for {config['plan']['gpus']} GPUs, not {gpu_count}"
                )
            return _start(config["files"], container_name, settings)
        except AimcError as exc:
            return _error(exc)


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
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        debug: bool = False,
        target: str = "auto",
        recipe_dirs: Sequence[str | Path] = (),
    ):
        #: The ``cache_dir`` flag (checked, absolute), or None when not given (or empty).
        self._cache_dir = setting("cache_dir", flag=cache_dir) if cache_dir else None
        self.debug = debug
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
        port: int | None = None,
        timeout: float | None = None,
        use_cache: bool = True,
        debug: bool = False,
    ) -> dict[str, Any]:
        """Compile and run ``model_id``; the success or error response (never raises).

        ``port`` defaults to ``$DEFAULT_PORT``, else 8000; ``timeout`` to
        ``$DEFAULT_TIMEOUT``, else 600 s; ``debug`` (or the engine's, or ``AIM_DEBUG=1``)
        makes the server's logs verbose.
        """
        from aimc.build import compile_plan, make_plan
        from aimc.checkpoint import prepare_cache
        from aimc.resolve import Request

        try:
            settings = self.settings(debug).with_flags(default_timeout=timeout)
            target = self.selector._target(gpus_required=gpu_count is not None)
            request = Request(
                model=model_id,
                gpus=gpu_count,
                precision=precision,
                backend=backend,
                port=port,
                default_port=settings.default_port_given,
            )
            plan = make_plan(self.selector.catalog, request, target, settings.cache_dir)
            compiled = compile_plan(plan, request, target.hardware.name)
            env = settings.server_env()
            prepare_cache(plan, use_cache, env, settings.cache_dir)
            return _start(compiled.files, plan.name, settings, env)
        except AimcError as exc:
            return _error(exc)

    def list_models(self, format: str = "table") -> list[dict[str, Any]]:
        """Every model with a recipe: id, precisions, backends, hardware, GPU counts."""
        from aimc.cli.listing import _rows

        return _rows("models", self.selector.catalog.recipes())
