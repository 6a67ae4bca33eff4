"""Emitters: what ``--emit NAME`` produces from a plan, each registered in one place.

An :class:`Emitter` turns the one resolved :class:`~aimc.plan.model.Plan` into a folder of
artifacts (its own manifest included, so ``compile --check`` and the write rules of
:mod:`aimc.core.write` hold for it as for every folder aimc writes). ``compile --emit NAME`` and
``show-config --emit NAME`` look the emitter up here; the ``--emit`` choices are the
registered names. Four are built in: ``local`` (``launch.sh``, ``aim.env``,
``compose.yaml``, the backend's config, ``manifest.json``), ``k8s`` (Kubernetes
manifests and ``manifest.aimc``), ``kserve`` (KServe's ``LLMInferenceService``,
:mod:`aimc.emit.kserve`) and ``aim`` (AMD's AIM operator, :mod:`aimc.emit.aim`). A new one
is a module that calls :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aimc.core.errors import ConfigError
from aimc.core.registry import Registry
from aimc.emit.render import manifest, render
from aimc.plan.model import Plan
from aimc.plan.request import Request, request_line

if TYPE_CHECKING:
    from aimc.emit.autoscale import Autoscale

__all__ = [
    "EMITTERS",
    "Compiled",
    "Emitter",
    "compile_plan",
    "compiled",
    "emitter",
    "names",
    "register",
]

#: ``(plan, request, target name, replicas, autoscale)`` -> every file of the folder, by name.
Render = Callable[[Plan, Request, str, int, "Autoscale | None"], dict[str, str]]


class Emitter:
    """One kind of output of ``compile`` and ``show-config``, never changed (a plain class:
    a dataclass costs each start-up ~1 ms; a registry's entry, read by attribute only).

    Attributes:
        name: The ``--emit`` value.
        description: What it writes, for ``--help``.
        compile: Every file of the output folder, its manifest included.
        preview: What ``show-config --emit NAME`` prints (the files a user applies, no
            manifest), or None when ``show-config`` shows the plan alone.
        replicas: Whether it takes ``--replicas``.
        summary: The line ``compile`` adds after the plan's summary (given the replicas).
        autoscale: Whether it takes ``--autoscale``.
        measured_targets: Whether its autoscaler takes targets from bench results
            (``--bench-results``; :mod:`aimc.plan.saturation`).
    """

    __slots__ = (
        "autoscale",
        "compile",
        "description",
        "measured_targets",
        "name",
        "preview",
        "replicas",
        "summary",
    )

    def __init__(
        self,
        name: str,
        description: str,
        compile: Render,
        preview: Render | None = None,
        replicas: bool = False,
        summary: Callable[[int], str] | None = None,
        autoscale: bool = False,
        measured_targets: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.compile = compile
        self.preview = preview
        self.replicas = replicas
        self.summary = summary
        self.autoscale = autoscale
        self.measured_targets = measured_targets


#: The registered emitters by name, in registration order.
EMITTERS: Registry[Emitter] = Registry("emitter")


def register(emitter: Emitter) -> Emitter:
    """Add ``emitter`` (a name already taken is refused: one emitter per name).

    Raises:
        ValueError: The name is taken.
    """
    return EMITTERS.add(emitter)


def names() -> tuple[str, ...]:
    """The ``--emit`` choices."""
    return tuple(EMITTERS)


def emitter(name: str) -> Emitter:
    """The emitter called ``name``.

    Raises:
        ConfigError: No emitter has that name.
    """
    if name not in EMITTERS:
        raise ConfigError(f"--emit {name!r} is not one of {', '.join(EMITTERS)}")
    return EMITTERS[name]


def _local(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    return compile_plan(plan, request, target).files


# The Kubernetes emitter is imported when it emits, on purpose: every local compile would
# pay for it otherwise (bench/speed.py).


def _k8s(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.k8s import compile_k8s

    return compile_k8s(plan, request, target, replicas, autoscale)


def _k8s_preview(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.k8s import k8s_request_line, render_k8s

    line = k8s_request_line(request_line(request, target), replicas)
    line += autoscale.words() if autoscale is not None else ""
    return render_k8s(plan, line, replicas, autoscale)


def _k8s_summary(replicas: int) -> str:
    return f"Kubernetes: {replicas} replica{'s' if replicas != 1 else ''}"


def _kserve(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.kserve import compile_kserve

    return compile_kserve(plan, request, target, replicas, autoscale)


def _kserve_preview(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.kserve import kserve_line, render_kserve

    return render_kserve(
        plan, kserve_line(request, target, replicas, autoscale), replicas, autoscale
    )


def _aim(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.aim import compile_aim

    return compile_aim(plan, request, target, replicas, autoscale)


def _aim_preview(
    plan: Plan, request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> dict[str, str]:
    from aimc.emit.aim import aim_line, render_aim

    return render_aim(plan, aim_line(request, target, replicas, autoscale), replicas, autoscale)


register(Emitter("local", "launch.sh, compose.yaml, ...", _local))
register(
    Emitter(
        "k8s",
        "Kubernetes manifests: deployment.yaml, service.yaml, pvc.yaml",
        _k8s,
        preview=_k8s_preview,
        replicas=True,
        summary=_k8s_summary,
        autoscale=True,
        measured_targets=True,
    )
)
register(
    Emitter(
        "kserve",
        "KServe LLMInferenceService: llminferenceservice.yaml, pvc.yaml",
        _kserve,
        preview=_kserve_preview,
        replicas=True,
        summary=lambda n: f"KServe: {n} replica{'s' if n != 1 else ''}",
        autoscale=True,
    )
)
register(
    Emitter(
        "aim",
        "AMD AIM operator: aimmodel.yaml, aimservicetemplate.yaml, aimservice.yaml",
        _aim,
        preview=_aim_preview,
        replicas=True,
        summary=lambda n: f"AIM operator: {n} replica{'s' if n != 1 else ''}",
        autoscale=True,
    )
)


def compiled(
    name: str,
    plan: Plan,
    request: Request,
    target: str,
    replicas: int,
    autoscale: Autoscale | None = None,
) -> Compiled:
    """The plan and every file ``--emit name`` writes for it."""
    render = emitter(name).compile
    if autoscale is None:  # an emitter without --autoscale takes the four arguments only
        return Compiled(plan, render(plan, request, target, replicas))  # type: ignore[call-arg]
    return Compiled(plan, render(plan, request, target, replicas, autoscale))


class Compiled:
    """A plan and its rendered artifacts (manifest included), never changed (a plain
    class: a dataclass costs each start-up ~0.4 ms)."""

    __slots__ = ("files", "plan")

    def __init__(self, plan: Plan, files: dict[str, str]) -> None:
        self.plan = plan
        self.files = files


def compile_plan(plan: Plan, request: Request, target: str) -> Compiled:
    """Render every artifact of ``plan`` plus ``manifest.json``."""
    line = request_line(request, target, plan.backend)
    files = render(plan, line)
    inputs: dict[str, Any] = {
        "command": line,
        "recipe": plan.recipe,
        "hardware": {k: plan.hardware[k] for k in ("name", "source", "path", "sha256")},
    }
    if request.config is not None:
        inputs["config"] = {"path": request.config.path, "sha256": request.config.sha256}
    files["manifest.json"] = manifest(plan, files, inputs)
    return Compiled(plan, files)
