"""Candidates: every concrete combination a recipe allows, and how to say them briefly.

A :class:`Candidate` is one (configuration, hardware, precision, GPU count, backend,
nodes); :func:`candidates` lists a recipe's (on one hardware profile when given), in the
recipe's order; :func:`summary` words a list of them for messages. The selection policy
(:mod:`aimc.plan.policy`) picks one; :func:`aimc.plan.resolve.build_plan` turns it into a plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aimc.domain.recipe import Recipe, config_id

__all__ = ["Candidate", "candidates", "summary"]


@dataclass(frozen=True)
class Candidate:
    """One concrete (configuration, hardware, precision, GPU count, backend) combination;
    ``nodes`` > 1 for a multi-node configuration (``gpus`` GPUs on each node)."""

    index: int
    config_id: str
    hardware: str
    precision: str
    gpus: int
    backend: str
    nodes: int = 1


def candidates(recipe: Recipe, hardware: str | None = None) -> list[Candidate]:
    """Every concrete combination the recipe allows (on ``hardware`` when given)."""
    out = []
    for i, conf, backend in recipe.configurations():
        conf_id = config_id(conf, i)
        for hw in conf["hardware"]:
            if hardware is not None and hw != hardware:
                continue
            for precision in conf["precision"]:
                for gpus in conf["gpus"]:
                    for nodes in conf.get("nodes", [1]):
                        out.append(
                            Candidate(
                                i,
                                conf_id,
                                hw,
                                precision,
                                gpus,
                                backend,
                                nodes,
                            )
                        )
    return out


def summary(cands: Sequence[Candidate]) -> str:
    groups: dict[tuple[str, str], list[int]] = {}
    multi: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for c in cands:
        if c.nodes > 1:
            multi.setdefault((c.backend, c.precision), set()).add((c.nodes, c.gpus))
        else:
            groups.setdefault((c.backend, c.precision), []).append(c.gpus)
    parts = [
        f"{b} {p} on {','.join(map(str, sorted(set(g))))} GPUs"
        for (b, p), g in sorted(groups.items())
    ]
    parts += [
        f"{b} {p} on " + ",".join(f"{n} nodes x {g}" for n, g in sorted(sizes)) + " GPUs"
        for (b, p), sizes in sorted(multi.items())
    ]
    return "; ".join(parts)
