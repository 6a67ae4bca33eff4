"""The AIM Engine Python API (``from aim_launcher import AIMEngine``), on top of aimc.

The classes and signatures are those of the AIM Engine API reference; each method goes
through the same pipeline as the CLI (catalog -> resolve -> render -> write -> run) and
returns plain dicts. ``launch_model`` and ``run_command_directly`` return the reference's
success or error response instead of raising.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aimc.catalog import Catalog, Recipe, RecipeRoot
from aimc.errors import AimcError, ConfigError, ValidationFailed
from aimc.loader import Document

__all__ = ["AIMConfigGenerator", "AIMDockerManager", "AIMEngine", "AIMRecipeSelector"]


def _error(exc: AimcError) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    body = exc.to_json()
    if isinstance(exc, ValidationFailed):
        body["details"] = "\n".join(d.format() for d in exc.diagnostics)
    return {"success": False, "error": body, "timestamp": now.isoformat().replace("+00:00", "Z")}


def _start(
    files: dict[str, str], name: str, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write ``files`` to the run folder ``name`` and run it; the success response."""
    from aimc.runner import refuse_busy, run_folder, state_dir, validate_name
    from aimc.write import write_artifacts

    folder = state_dir() / "builds" / validate_name(name)
    refuse_busy(name, folder)
    write_artifacts(folder, files)
    record = run_folder(folder, timeout, name=name, env=env)
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
        self, recipe: dict[str, Any], gpu_count: int, backend: str = "vllm", port: int = 8000
    ) -> dict[str, Any] | None:
        """``{"plan", "command", "env", "files"}`` for ``gpu_count`` GPUs, or None when the
        recipe has no configuration that fits."""
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
        self, config: dict[str, Any], container_name: str, gpu_count: int, timeout: float = 600
    ) -> dict[str, Any]:
        """Write ``config["files"]`` (from :meth:`AIMConfigGenerator.generate_config`) to a
        run folder and start it as ``container_name``; the success or error response."""
        try:
            if config.get("plan", {}).get("gpus") not in (None, gpu_count):
                raise ConfigError(
                    f"the configuration is for {config['plan']['gpus']} GPUs, not {gpu_count}"
                )
            return _start(config["files"], container_name, timeout)
        except AimcError as exc:
            return _error(exc)


class AIMEngine:
    """The AIM Engine: launch models with automatic configuration.

    Args:
        cache_dir: Model cache (``CACHE_DIR``; default ``/workspace/model-cache``).
        debug: Verbose server logs.
        target: Hardware profile, or ``auto`` to detect this machine.
        recipe_dirs: Extra recipe directories.
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        debug: bool = False,
        target: str = "auto",
        recipe_dirs: Sequence[str | Path] = (),
    ):
        if cache_dir:
            os.environ["CACHE_DIR"] = cache_dir
        self.debug = debug
        self.selector = AIMRecipeSelector(recipe_dirs, target)

    def launch_model(
        self,
        model_id: str,
        gpu_count: int | None = None,
        precision: str | None = None,
        backend: str = "vllm",
        port: int = 8000,
        timeout: int = 600,
        use_cache: bool = True,
        debug: bool = False,
    ) -> dict[str, Any]:
        """Compile and run ``model_id``; the success or error response (never raises)."""
        from aimc.build import compile_plan, make_plan
        from aimc.checkpoint import prepare_cache
        from aimc.resolve import Request

        try:
            target = self.selector._target(gpus_required=gpu_count is not None)
            request = Request(
                model=model_id, gpus=gpu_count, precision=precision, backend=backend, port=port
            )
            plan = make_plan(self.selector.catalog, request, target)
            compiled = compile_plan(plan, request, target.hardware.name)
            env = dict(os.environ)
            prepare_cache(plan, use_cache, env)
            if debug or self.debug:
                env["VLLM_LOGGING_LEVEL"] = "DEBUG"
            return _start(compiled.files, plan.name, timeout, env)
        except AimcError as exc:
            return _error(exc)

    def list_models(self, format: str = "table") -> list[dict[str, Any]]:
        """Every model with a recipe: id, precisions, backends, hardware, GPU counts."""
        from aimc.cli.listing import _rows

        return _rows("models", self.selector.catalog.recipes())
