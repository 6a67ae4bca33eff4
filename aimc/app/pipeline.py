"""The pipeline in one place: request -> plan -> artifacts, for the CLI and the Python API.

Takes a :class:`~aimc.plan.request.Request` and a target name; loads what it needs from the
:class:`~aimc.check.catalog.Catalog` (and the ``--config`` file), resolves the plan and renders
the artifacts with their manifest. Only :func:`load_config_file` and target detection
touch the machine; everything else is the pure stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aimc.check.catalog import Catalog
from aimc.check.hardware import Target
from aimc.core.errors import ConfigError, ValidationFailed
from aimc.core.loader import Document, read_document
from aimc.core.safety import format_devices
from aimc.core.settings import setting
from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.model import Plan
from aimc.plan.policy import Pool, resolve
from aimc.plan.request import Request

__all__ = [
    "for_target",
    "is_model_folder",
    "load_config_file",
    "make_plan",
]


def is_model_folder(text: str) -> bool:
    """True when ``text`` names a folder with a ``config.json`` (a model to derive a recipe
    for, :mod:`aimc.plan.derive`); False for any text that names no path this machine has
    (``~nobody``, a NUL, a name too long)."""
    try:
        path = Path(text).expanduser()
        return path.is_dir() and (path / "config.json").is_file()
    except (RuntimeError, OSError, ValueError):
        return False


def load_config_file(path: Path) -> Document:
    """Load and check a ``--config`` file (schema ``overrides.schema.json``).

    Raises:
        ConfigError: The file cannot be read (one line: which file, why).
        ValidationFailed: The file is invalid (with its diagnostics).
    """
    from aimc.domain.schema import check_schema

    try:
        doc = read_document(path)
    except ValidationFailed as exc:
        unreadable = [d for d in exc.diagnostics if d.line == 0]
        if unreadable and len(unreadable) == len(exc.diagnostics):
            raise ConfigError(
                f"--config {path}: {unreadable[0].message}",
                hint="give the path of an overrides file (schemas/overrides.schema.json)",
            ) from None
        raise
    problems = [d for d in check_schema(doc, default_kind="Overrides") if d.severity == "error"]
    if problems:
        raise ValidationFailed(problems)
    return doc


def weight_sources(recipe: Recipe) -> list[tuple[str, str | None, bool]]:
    """(source, revision, is local path) of every checkpoint a recipe names."""
    data = recipe.data
    entries = list(data["weights"].values())
    entries += [w for c in data["configurations"] for w in c.get("weights", {}).values()]
    base = Path(recipe.path).resolve().parent
    out: list[tuple[str, str | None, bool]] = []
    for w in entries:
        if "path" in w:
            out.append((str((base / w["path"]).resolve()), None, True))
        else:
            out.append((w["repo"], w.get("revision"), False))
    return out


def for_target(request: Request, target: Target) -> tuple[Request, Pool | None]:
    """``request`` for ``target``, and the :class:`~aimc.plan.policy.Pool` of GPUs its plan may
    use. Pure: reads the target's detection, never the machine.

    A named target describes no machine: the request is kept, and ``--devices`` (when given)
    is the pool. On this machine (``--target auto`` that found GPUs) the plan names the
    GPUs it uses, so that they are the GPUs the server gets (``docker run --gpus``,
    ``CUDA_VISIBLE_DEVICES``...):

    ======================  =====================================================
    request                 devices (the pool)
    ======================  =====================================================
    ``--devices`` given     those (each must be a visible GPU)
    GPU count left open     every visible GPU that is not busy
    GPU_COUNT N given       none (any N GPUs) when every GPU is visible and free;
                            else N of the visible ones, the free ones first
    ======================  =====================================================

    The returned request holds the devices, so :func:`aimc.plan.request.request_line` writes them:
    the
    header's command gives the same files on any machine. :func:`make_plan` calls this
    itself: give both the request as it was asked for (a returned one reads as
    ``--devices`` given, without the busy GPUs for the refusals).

    Raises:
        ConfigError: ``--devices`` names a GPU that is not visible here.
    """
    if target.detection is None or target.available_gpus is None:
        pool = Pool(request.devices) if request.devices is not None else None
        return request, pool
    request = replace(request, available_gpus=target.available_gpus)
    visible = target.devices
    if request.devices is not None:
        unknown = [d for d in request.devices if d not in visible]
        if unknown:
            raise ConfigError(
                f"--devices {format_devices(request.devices)}: GPU {unknown[0]} is not a "
                f"visible GPU of this machine (visible: {format_devices(visible)})",
                hint="check CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES, or compile for a "
                "named --target",
            )
        return request, Pool(request.devices)
    free = tuple(d for d in visible if d not in target.busy_devices)
    if request.gpus is None:
        request = replace(request, devices=free)
        return request, Pool(free, target.available_gpus, target.busy)
    if (target.narrowed or target.busy_devices) and request.gpus <= len(visible):
        first = free + tuple(target.busy_devices)
        request = replace(request, devices=first[: request.gpus])
        return request, Pool(request.devices or ())
    return request, None


def make_plan(
    catalog: Catalog, request: Request, target: str | Target, cache_dir: Path | None = None
) -> Plan:
    """Resolve ``request`` for ``target`` (a profile name, or a detected :class:`Target`).

    For ``--target auto`` (this machine) checkpoints already here (local folders, the model
    cache ``cache_dir``, default :attr:`aimc.core.settings.Settings.cache_dir`) are sized from
    their safetensors headers for the memory estimate, and the plan names the GPUs it uses
    (:func:`for_target`: a GPU count left open fills this machine's free GPUs); a named
    target is compiled from the recipe (and ``--devices``) alone, so its artifacts do not
    depend on this machine.
    """

    if isinstance(target, str):
        target = Target(catalog.hardware(target))
    recipe = load_recipe(catalog, request.model, target.hardware, cache_dir)
    local = recipe.root.label == "derived"
    if (local or target.detection is not None) and not request.checkpoint_bytes:
        # deferred: the cache is read for --target auto or a local folder only
        from aimc.modelcache.checkpoint import local_sizes

        if cache_dir is None:
            cache_dir = setting("cache_dir")
        sizes = local_sizes(weight_sources(recipe), cache_dir)
        if sizes:
            request = replace(request, checkpoint_bytes=sizes)
    request, pool = for_target(request, target)
    return resolve(recipe, target.hardware, request, pool)


def load_recipe(
    catalog: Catalog,
    model: str,
    hardware: Hardware | Callable[[], Hardware],
    cache_dir: Path | None = None,
) -> Recipe:
    """The recipe for ``model``: a catalog id, a local model folder, or a repository id
    no recipe names whose snapshot is complete in the model cache ``cache_dir`` (default
    :attr:`aimc.core.settings.Settings.cache_dir`); the last two are derived recipes, for
    ``hardware`` (or what the callable returns, asked only then: ``list`` detects this
    machine only for a derived recipe)."""

    def target() -> Hardware:
        return hardware() if callable(hardware) else hardware

    if is_model_folder(model):
        # deferred: a recipe is derived only for a model folder or a cached model without one
        from aimc.plan.derive import derive_recipe

        return derive_recipe(Path(model), target())
    if model not in catalog.model_files() and "/" in model:
        # deferred: the cache is read for a model without a recipe only
        from aimc.modelcache.cache import missing_files
        from aimc.modelcache.checkpoint import cache_snapshot
        from aimc.plan.derive import derive_recipe

        snapshot = cache_snapshot(setting("cache_dir") if cache_dir is None else cache_dir, model)
        if snapshot is not None and not missing_files(snapshot):
            return derive_recipe(snapshot, target(), repo=model)
    return catalog.recipe(model)
