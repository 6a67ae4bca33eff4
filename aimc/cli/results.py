"""The bench results recorded on this machine (``$AIMC_STATE_DIR/bench.jsonl``) or named by
``--bench-results``, as the commands that plan read them: ``--optimize``
(:func:`local_measurements`) and ``--autoscale`` (:func:`local_runs`, :func:`given_runs`: the
saturation point of a configuration)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimc.core.errors import ConfigError
from aimc.core.log import note

if TYPE_CHECKING:
    from aimc.plan.measured import Measurement
    from aimc.plan.saturation import Run

__all__ = ["given_runs", "local_measurements", "local_results", "local_runs"]


def _read(path: Path) -> list[dict[str, Any]]:
    """The valid results of ``path``; a problem with the file is one warning, never an
    error (read bounded: :func:`aimc.plan.measured.read_results`)."""
    # Deferred on purpose: see PlanArgs.resolve (aimc.plan.measured reads recipes).
    from aimc.plan.measured import read_results

    results, problems = read_results(path)
    for problem in problems:
        note(problem, level="WARNING")
    return results


def local_results(state_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The valid results of the file in ``state_dir`` and its path (:func:`_read`)."""
    from aimc.plan.measured import RESULTS_NAME

    path = state_dir / RESULTS_NAME
    return _read(path), str(path)


def local_measurements(state_dir: Path) -> list[Measurement]:
    """The configurations measured on this machine (newest per configuration)."""
    from aimc.plan.measured import from_results

    return from_results(*local_results(state_dir))


def local_runs(state_dir: Path) -> tuple[Run, ...]:
    """The results that can be points of a throughput curve
    (:func:`aimc.plan.saturation.runs`)."""
    from aimc.plan.saturation import runs

    return runs(local_results(state_dir)[0])


def given_runs(path: str) -> tuple[Run, ...]:
    """The runs of the results file ``--bench-results`` names (read as this machine's).

    Raises:
        ConfigError: The name is not printable text, or no such file.
    """
    from aimc.plan.saturation import runs

    if not path or len(path) > 4096 or not path.isprintable():
        raise ConfigError("--bench-results: the file name is not printable text")
    if not os.path.lexists(path):
        raise ConfigError(
            f"--bench-results {path}: no such file",
            hint="give the bench.jsonl that 'aim-engine bench' wrote ($AIMC_STATE_DIR/bench.jsonl)",
        )
    return runs(_read(Path(path)))
