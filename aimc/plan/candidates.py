"""Candidates: every concrete combination a recipe allows, and how to say them briefly.

A :class:`Candidate` is one (configuration, hardware, precision, GPU count, backend,
nodes); :func:`candidates` lists a recipe's (on one hardware profile when given), in the
recipe's order, made of its :func:`groups` (one per configuration x hardware x precision,
whose candidates differ only in GPU and node counts: ``lint/fit`` makes only those it
estimates); :func:`summary` words a list of them for messages. The selection policy
(:mod:`aimc.plan.policy`) picks one; :func:`aimc.plan.resolve.build_plan` turns it into a plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aimc.domain.recipe import Recipe, config_id

__all__ = ["Candidate", "Group", "candidates", "groups", "summary"]


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


_NEW = object.__new__


class Group:
    """The candidates of one configuration x hardware x precision (and the configuration's
    backend), made when asked for: they differ only in their GPU and node counts. Never
    changed (a plain class: a dataclass costs each start-up ~0.6 ms; read by attribute
    only); ``sizes``: (gpus, nodes) of each candidate, in the recipe's order."""

    __slots__ = ("backend", "config_id", "hardware", "index", "precision", "sizes")

    def __init__(
        self,
        index: int,
        config_id: str,
        hardware: str,
        precision: str,
        backend: str,
        sizes: tuple[tuple[int, int], ...],
    ) -> None:
        self.index = index
        self.config_id = config_id
        self.hardware = hardware
        self.precision = precision
        self.backend = backend
        self.sizes = sizes

    def candidate(self, gpus: int, nodes: int) -> Candidate:
        """The candidate of ``gpus`` GPUs on ``nodes`` nodes: ``Candidate(...)``, its fields
        set as its ``__init__`` sets them, in its order, at half the cost (a frozen
        dataclass's ``__init__`` sets each through ``object.__setattr__``; ``lint/fit``
        makes one per estimate: ``tests/test_candidates_made.py`` holds the two alike)."""
        made: Candidate = _NEW(Candidate)
        made.__dict__.update(
            index=self.index,
            config_id=self.config_id,
            hardware=self.hardware,
            precision=self.precision,
            gpus=gpus,
            backend=self.backend,
            nodes=nodes,
        )
        return made

    def candidates(self) -> list[Candidate]:
        """Every candidate of the group, in the recipe's order."""
        return [self.candidate(gpus, nodes) for gpus, nodes in self.sizes]


def groups(recipe: Recipe, hardware: str | None = None) -> list[Group]:
    """The recipe's candidates (on ``hardware`` when given) by configuration x hardware x
    precision, in the recipe's order: :func:`candidates` is theirs, one group after another."""
    out = []
    for i, conf, backend in recipe.configurations():
        conf_id = config_id(conf, i)
        sizes = tuple((gpus, nodes) for gpus in conf["gpus"] for nodes in conf.get("nodes", [1]))
        for hw in conf["hardware"]:
            if hardware is not None and hw != hardware:
                continue
            for precision in conf["precision"]:
                out.append(Group(i, conf_id, hw, precision, backend, sizes))
    return out


def candidates(recipe: Recipe, hardware: str | None = None) -> list[Candidate]:
    """Every concrete combination the recipe allows (on ``hardware`` when given)."""
    return [c for group in groups(recipe, hardware) for c in group.candidates()]


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
