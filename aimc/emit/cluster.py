"""What the operator emitters (``--emit kserve``, ``--emit aim``) share with ``--emit k8s``.

Their folders are written as ``--emit k8s`` writes its own: one resource per YAML file, each
with aimc's provenance header (``templates/_header.j2``) and a few notes, through the one
template ``templates/cluster.yaml.j2`` (it only formats); and aimc's record of the folder,
``manifest.aimc`` (:data:`aimc.core.ownership.KUBERNETES_MANIFEST`: the JSON of a local
folder's ``manifest.json`` under a name ``kubectl apply -f DIR`` skips), so the write rules
and ``compile --check`` hold for them. Pure: the same plan gives the same bytes.
"""

from __future__ import annotations

from typing import Any

from aimc import __version__
from aimc.core.ownership import KUBERNETES_MANIFEST
from aimc.core.safety import check_env
from aimc.emit.autoscale import Autoscale
from aimc.emit.render import manifest
from aimc.emit.templating import environment
from aimc.plan.model import Plan
from aimc.plan.request import Request, request_line

__all__ = ["TEMPLATE", "emit_request_line", "folder", "render_files"]

#: The one template of every operator resource file.
TEMPLATE = "cluster.yaml.j2"


def emit_request_line(
    request: Request, target: str, emit: str, replicas: int, autoscale: Autoscale | None = None
) -> str:
    """The ``aim-engine compile`` line of a folder: ``--emit NAME`` (and ``--replicas``,
    ``--autoscale``...) added to the plan's own line."""
    line = request_line(request, target) + f" --emit {emit}"
    line += f" --replicas {replicas}" if replicas != 1 else ""
    return line + (autoscale.words() if autoscale is not None else "")


def render_files(
    plan: Plan, line: str, resources: dict[str, dict[str, Any]], notes: dict[str, list[str]]
) -> dict[str, str]:
    """Each resource as YAML under aimc's header (``line`` is the command it shows) and its
    notes (one comment line each), by file name.

    Raises:
        ConfigError: An env name or value of the plan cannot be written (the check
            launch.sh and aim.env make through their templates' ``env_name`` and
            ``env_value`` filters; these files are built as data, not by them).
    """
    for name, setting in plan.env.items():
        check_env(name, str(setting.value), "plan")
    template = environment().get_template(TEMPLATE)
    context = {"plan": plan, "version": __version__, "request_line": line}
    return {
        name: template.render({**context, "resource": resource, "notes": notes.get(name, [])})
        for name, resource in resources.items()
    }


def folder(
    plan: Plan, request: Request, line: str, files: dict[str, str], kubernetes: dict[str, Any]
) -> dict[str, str]:
    """``files`` and their ``manifest.aimc``: the inputs as ``compile`` records them for a
    local folder, plus ``kubernetes`` (what the emitter was asked for)."""
    inputs: dict[str, Any] = {
        "command": line,
        "recipe": plan.recipe,
        "hardware": {k: plan.hardware[k] for k in ("name", "source", "path", "sha256")},
    }
    if request.config is not None:
        inputs["config"] = {"path": request.config.path, "sha256": request.config.sha256}
    inputs["kubernetes"] = kubernetes
    return {**files, KUBERNETES_MANIFEST: manifest(plan, files, inputs)}
