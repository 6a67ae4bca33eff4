"""A recipe's candidates by group (what lint/fit makes only when it needs them) are the
candidates the recipe allows, in its order."""

from __future__ import annotations

import pytest

from aimc.check.catalog import Catalog
from aimc.domain.recipe import Recipe, config_id
from aimc.plan.candidates import Candidate, candidates, groups


def _plain(recipe: Recipe, hardware: str | None = None) -> list[Candidate]:
    """Every combination, by nested loops over the configurations."""
    return [
        Candidate(i, config_id(conf, i), hw, precision, gpus, backend, nodes)
        for i, conf, backend in recipe.configurations()
        for hw in conf["hardware"]
        if hardware is None or hw == hardware
        for precision in conf["precision"]
        for gpus in conf["gpus"]
        for nodes in conf.get("nodes", [1])
    ]


_CATALOG = Catalog.default()


@pytest.mark.parametrize("model", _CATALOG.model_ids())
def test_groups_hold_every_candidate_in_the_recipes_order(model: str) -> None:
    recipe = _CATALOG.recipe(model)
    for hardware in [None, *_CATALOG.hardware_names()]:
        found = groups(recipe, hardware)
        assert candidates(recipe, hardware) == _plain(recipe, hardware)
        assert [c for g in found for c in g.candidates()] == _plain(recipe, hardware)
        keys = [(g.index, g.hardware, g.precision) for g in found]
        assert len(set(keys)) == len(keys)  # one group per configuration x hardware x precision
        for g in found:
            assert all(g.candidate(gpus, nodes) in g.candidates() for gpus, nodes in g.sizes)
            assert {(c.gpus, c.nodes) for c in g.candidates()} == set(g.sizes)
