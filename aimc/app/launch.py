"""Launch: a resolved plan compiled into a run folder, its model readied, its server started.

``aim-engine launch`` and :meth:`aimc.api.AIMEngine.launch_model` both take a plan their
own way (options or arguments -> request -> plan) and hand it here; the steps and their
order are this module's, so that the two never drift apart: a plan that spans several
nodes is refused (launch starts one machine's server, never half of one); the artifacts
are compiled; the run name is checked; the folder (``--output``, else
``$AIMC_STATE_DIR/builds/NAME``) is refused when the name runs or a server runs from it,
then written (:func:`write_run`); the model cache is readied for the server
(:func:`aimc.modelcache.checkpoint.prepare_cache`); and the server is started and waited for
(:func:`start`, :func:`aimc.run.runner.run_folder`). ``run_command_directly`` writes and
starts its own files through the same folder steps (:func:`start_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aimc.core.errors import ConfigError
from aimc.core.records import RunRecord, validate_name
from aimc.core.settings import Settings
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.modelcache.download import prepare_cache
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.run.runner import Progress, run_folder
from aimc.run.runs import refuse_busy

__all__ = [
    "LAUNCHED",
    "Launch",
    "prepare",
    "refuse_multinode",
    "run_dir",
    "start",
    "start_files",
    "write_run",
]

#: The message of a launch's success response (the CLI's ``--format json`` and the API).
LAUNCHED = "Model launched successfully"


@dataclass(frozen=True)
class Launch:
    """A run folder written and its model cache readied: ready to start.

    Attributes:
        name: The run name (validated).
        folder: The run folder.
        env: The server's environment (the caller's, with ``CACHE_DIR`` and what readying
            the cache added, e.g. ``HF_HUB_OFFLINE``).
        notes: What was decided and done (the plan's decisions, the cache's notes).
    """

    name: str
    folder: Path
    env: dict[str, str]
    notes: tuple[str, ...]


def refuse_multinode(plan: Plan, model: str) -> None:
    """Raises: ConfigError: The plan spans several nodes (``model``: as the user gave it,
    for the hint's command)."""
    if plan.nodes > 1:
        raise ConfigError(
            f"{plan.model_id} {plan.precision} on {plan.hardware['name']} spans {plan.nodes} "
            "nodes; launch starts one machine's server and never half of one",
            hint=f"aim-engine compile {model} --target {plan.hardware['name']} --precision "
            f"{plan.precision} --emit k8s -o DIR, then kubectl apply -f DIR",
        )


def run_dir(settings: Settings, name: str) -> Path:
    """The run folder of ``name`` when none is given: ``$AIMC_STATE_DIR/builds/NAME``."""
    return settings.state_dir / "builds" / validate_name(name)


def write_run(files: dict[str, str], name: str, folder: Path) -> None:
    """Write a run's files to ``folder``, checked first: the folder of a running server
    (and its log) is never touched.

    Raises:
        ConfigError: The name is invalid or runs, or a server runs from ``folder``.
        AimcError: The folder cannot be written (:func:`aimc.core.write.write_artifacts`).
    """
    refuse_busy(name, folder)
    write_artifacts(folder, files)


def prepare(
    plan: Plan,
    request: Request,
    target: str,
    settings: Settings,
    *,
    name: str | None = None,
    folder: Path | None = None,
    use_cache: bool = True,
) -> Launch:
    """Compile ``plan`` (made from ``request`` for the hardware profile ``target``) into
    its run folder and ready the model cache: everything but the start.

    Args:
        name: The run name (default: the plan's).
        folder: The run folder (default: :func:`run_dir`).
        use_cache: Start from the cached model when complete (False: download afresh).

    Raises:
        ConfigError: A multi-node plan, an invalid or running name, or a folder a server
            runs from.
        NetworkError: The model cache cannot be readied (the hub is unreachable).
        AimcError: The folder cannot be written.
    """
    refuse_multinode(plan, request.model)
    compiled = compile_plan(plan, request, target)
    run_name = validate_name(name or plan.name)
    folder = folder or run_dir(settings, run_name)
    write_run(compiled.files, run_name, folder)
    env = settings.server_env()  # the caller's, with CACHE_DIR
    cached = prepare_cache(plan, use_cache, env, settings.cache_dir)
    return Launch(run_name, folder, env, (*plan.decisions, *cached))


def start(launch: Launch, timeout: float, progress: Progress | None = None) -> RunRecord:
    """Start a prepared launch and wait ``timeout`` seconds until it serves.

    Raises:
        As :func:`aimc.run.runner.run_folder`.
    """
    return run_folder(launch.folder, timeout, name=launch.name, progress=progress, env=launch.env)


def start_files(
    files: dict[str, str], name: str, settings: Settings, env: dict[str, str] | None = None
) -> RunRecord:
    """Write ``files`` to the run folder of ``name`` (:func:`run_dir`) and start it,
    waiting ``settings.default_timeout`` seconds (``env``: the server's, default
    :meth:`~aimc.core.settings.Settings.server_env`).

    Raises:
        As :func:`write_run` and :func:`aimc.run.runner.run_folder`.
    """
    folder = run_dir(settings, name)
    write_run(files, name, folder)
    server_env = settings.server_env() if env is None else env
    return run_folder(folder, settings.default_timeout, name=name, env=server_env)
