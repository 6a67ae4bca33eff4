"""Compile: a plan's artifacts written to a folder, or checked against what it holds.

Takes a :class:`~aimc.app.planning.Resolved` plan, the emitter asked for (``--emit``, a
name registered in :mod:`aimc.emit.emitters`) with its replicas, and an output folder; hands on
a :class:`Compilation`: the files, the summary line and either the folder written (replaced
as a whole; never the folder of a running server) or, with ``check``, the diff from what the
folder holds to what would be written (nothing is written). The same inputs always give
byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimc.app.planning import Resolved, plan_summary
from aimc.core.write import diff_artifacts, stale_artifacts, write_artifacts
from aimc.emit.emitters import Compiled, emitter
from aimc.emit.emitters import compiled as emitted
from aimc.plan.model import Plan
from aimc.run.record_files import record_files

if TYPE_CHECKING:
    from aimc.emit.autoscale import Autoscale

__all__ = ["Compilation", "compile_to"]


class Compilation:
    """What :func:`compile_to` did, never changed (a plain class: a dataclass costs each
    start-up ~0.5 ms).

    Attributes:
        outdir: The output folder.
        compiled: The plan (as the emitter made it) and every file, by name.
        summary: One line: the plan's summary (:func:`~aimc.app.planning.plan_summary`),
            and what the emitter adds (the Kubernetes replicas).
        diff: With ``check``: the diff from the folder to the files, empty when it is up to
            date; None when the folder was written.
    """

    __slots__ = ("compiled", "diff", "outdir", "summary")

    def __init__(
        self, outdir: Path, compiled: Compiled, summary: str, diff: str | None = None
    ) -> None:
        self.outdir = outdir
        self.compiled = compiled
        self.summary = summary
        self.diff = diff

    @property
    def plan(self) -> Plan:
        """The plan the files were rendered from."""
        return self.compiled.plan

    def stale(self) -> list[str]:
        """The names whose file in the folder differs from what would be written, sorted."""
        return stale_artifacts(self.outdir, self.compiled.files)

    def to_json(self) -> dict[str, Any]:
        """The JSON data of ``compile``: the folder and its diff with ``check``, else the
        folder, its artifacts and what the plan serves."""
        if self.diff is not None:
            return {"output": str(self.outdir), "diff": self.diff}
        plan = self.plan
        return {
            "output": str(self.outdir),
            "artifacts": sorted(self.compiled.files),
            "model": plan.model_id,
            "target": plan.hardware["name"],
            "backend": plan.backend,
            "precision": plan.precision,
            "gpu_count": plan.gpus,
            "devices": plan.devices,
            "configuration": plan.configuration,
            "decisions": plan.decisions,
        }


def compile_to(
    resolved: Resolved,
    outdir: Path,
    emit: str = "local",
    replicas: int = 1,
    check: bool = False,
    autoscale: Autoscale | None = None,
) -> Compilation:
    """Render ``resolved``'s plan with the emitter ``emit`` and write the files to
    ``outdir``, replacing it; with ``check``, compare instead and write nothing.

    Raises:
        ConfigError: A server runs from ``outdir``, or ``outdir`` is not a folder aimc wrote.
    """
    target = resolved.target.hardware.name
    compiled = emitted(emit, resolved.plan, resolved.request, target, replicas, autoscale)
    summary = plan_summary(compiled.plan)
    if (extra := emitter(emit).summary) is not None:
        summary += f"; {extra(replicas)}"
    if autoscale is not None:
        summary += f" ({autoscale.kind}: {autoscale.min_replicas} to {autoscale.max_replicas})"
    if check:
        return Compilation(outdir, compiled, summary, diff_artifacts(outdir, compiled.files))
    if any(record_files()):  # no run recorded, no server aimc started runs from outdir
        # deferred: the records' code (~3 ms), needed only when a run is recorded
        from aimc.run.runs import refuse_running_in

        refuse_running_in(outdir)  # never replace the folder (and log) of a running server
    write_artifacts(outdir, compiled.files)
    return Compilation(outdir, compiled, summary)
