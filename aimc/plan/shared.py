"""Work shared between the plans of one recipe: each piece made once for what it reads.

Takes a recipe and a request (its GPU count aside); :class:`Shared` hands
:func:`aimc.plan.resolve.build_plan` the pieces of a plan, each made once for the arguments
it reads: a candidate's :class:`~aimc.plan.layers.Choice` of the recipe and the sources of a
hardware profile, every layer (:func:`~aimc.plan.layers.layers_of`), the user's layers, the
model source, each environment variable's check and vLLM's runtime terms on a profile
(:meth:`Shared.runtime`: they read no configuration or precision). The memory estimate is
made afresh for each plan: a key of all its arguments costs about what the estimate does
(one in six of lint/fit's repeats within a recipe), and recipes of distinct models never
share one (issue 26 measured a memo across recipes at ~20% of ``lint/fit``'s time, serving
only copies of one recipe). What hardware profiles alone
decide (their sources, the backend's and the profile's layers; the environment variables
that passed :func:`~aimc.core.safety.check_env`, kept with the caller's secret variables it
read) is a :class:`Profiles`, which ``lint/fit`` keeps for every recipe it lints against
the same profile objects. ``lint/fit`` asks for a recipe's candidates on every profile
through one, ``assess`` for its candidates on one profile.

A plan built with it is the one built without it (``tests/test_fit_shared.py``): a piece is
kept only for arguments that are equal values or the very same objects (which the key
holds, so that no other object takes their ids), errors are not kept, and the recipe,
profiles and request are not changed while it serves them. Pure, but for the caller's
secret variables, which :func:`~aimc.core.safety.check_env` reads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from aimc.core.safety import SECRET_ENV, check_env
from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.candidates import Candidate
from aimc.plan.estimate import Estimate, estimate
from aimc.plan.layers import (
    Choice,
    Context,
    Layer,
    Src,
    hardware_display,
    recipe_display,
    user_layers,
)
from aimc.plan.request import Request
from aimc.plan.vllm_memory import Runtime, vllm_runtime

__all__ = ["Profiles", "Shared"]

_T = TypeVar("_T")


class _Once(Protocol):
    """``once(make, *args)``: ``make(*args)``, made once for equal arguments."""

    def __call__(self, make: Callable[..., _T], /, *args: Hashable) -> _T: ...


def _once(made: dict[tuple[Any, ...], Any], make: Callable[..., _T], /, *args: Hashable) -> _T:
    """``make(*args)`` from ``made``, or made and kept there (an error is not kept): the
    ``once`` of :class:`Profiles` and :class:`Shared`, bound to their ``made`` by
    :func:`functools.partial` (one Python call per piece: a plan asks for seven)."""
    key = (make, *args)
    kept: _T = made.get(key, _NONE)
    if kept is _NONE:
        kept = made[key] = make(*args)
    return kept


#: What :func:`_once` finds for a piece not made yet (no piece is this object).
_NONE: Any = object()


class Profiles:
    """The pieces of plans that hardware profiles alone decide, made once for many recipes
    (:class:`Shared` makes one of its own unless given one): each profile's sources, for
    the very same :class:`~aimc.domain.recipe.Hardware` object (held, so that no other
    object takes its id), and the layers that read no recipe (the backend's, the
    profile's), for equal arguments (a :class:`~aimc.plan.layers.Src` equals only itself);
    an error is not kept. At most :attr:`most` profiles: then it starts afresh. A profile
    is not changed while it serves."""

    def __init__(self, most: int = 64):
        self.most = most
        self._sources: dict[int, tuple[Hardware, Src]] = {}
        self._made: dict[tuple[Any, ...], Any] = {}
        #: ``once(make, *args)``: ``make(*args)``, made once for equal arguments.
        self.once: _Once = functools.partial(_once, self._made)
        self._hardware: dict[tuple[str, int], tuple[Mapping[str, Any], Hardware]] = {}
        #: Environment variables :func:`~aimc.core.safety.check_env` let pass, with what
        #: else it read (:meth:`Shared.check_env`): a profile's pass for every recipe.
        self.passed: set[tuple[str, str, tuple[str | None, ...]]] = set()

    def src(self, hardware: Hardware) -> Src:
        """The sources of ``hardware``'s values."""
        held = self._sources.get(id(hardware))
        if held is None:
            if len(self._sources) >= self.most:
                self._sources.clear()
                self._made.clear()  # keyed by the sources just let go
            held = self._sources[id(hardware)] = (
                hardware,
                Src(hardware.doc, hardware_display(hardware)),
            )
        return held[1]

    def hardware(
        self, name: str, data: Mapping[str, Any], make: Callable[[str, Mapping[str, Any]], Hardware]
    ) -> Hardware:
        """The profile ``name`` of the data ``data``: ``make(name, data)``, once for that
        very object (held)."""
        held = self._hardware.get((name, id(data)))
        if held is None or held[0] is not data:
            if len(self._hardware) >= self.most:
                self._hardware.clear()
            held = self._hardware[name, id(data)] = (data, make(name, data))
        return held[1]


class Shared:
    """The pieces of the plans of ``recipe`` for ``request`` (any GPU count, any hardware
    profile), each made once; another recipe or request is refused. ``profiles``: what
    hardware profiles alone decide, shared with other recipes (:class:`Profiles`)."""

    def __init__(self, recipe: Recipe, request: Request, profiles: Profiles | None = None):
        self.profiles = profiles if profiles is not None else Profiles()
        self.recipe = recipe
        self.request = request if request.gpus is None else replace(request, gpus=None)
        self.rsrc = Src(recipe.doc, recipe_display(recipe))
        self.facts: Mapping[str, Any] = recipe.data["model"]["facts"]
        self.architecture = str(recipe.data["model"].get("architecture", ""))
        self._runtimes: dict[tuple[Any, ...], tuple[Mapping[str, Any], Runtime]] = {}
        self._made: dict[tuple[Any, ...], Any] = {}
        #: ``once(make, *args)``: ``make(*args)``, made once for equal arguments (a
        #: :class:`~aimc.plan.layers.Choice` or :class:`~aimc.plan.layers.Src` equals only
        #: itself); an error is not kept.
        self.once: _Once = functools.partial(_once, self._made)
        self._users: dict[str, list[Layer]] = {}
        self._choices: dict[tuple[int, str, str], Choice] = {}
        self._requests: dict[int, Request] = {}
        #: What check_env reads besides a variable: the caller's secret variables, by
        #: name and value (:func:`~aimc.core.safety.holds_secret`), as they are now.
        self._secrets = (*SECRET_ENV, *(os.environ.get(name) for name in SECRET_ENV))

    def context(
        self, recipe: Recipe, hardware: Hardware, request: Request, chosen: Candidate
    ) -> Context:
        """The context of ``chosen`` on ``hardware`` for ``request``."""
        if recipe is not self.recipe:
            raise ValueError("Shared serves the recipe it was made for")
        if id(request) not in self._requests:
            # ``replace(request, gpus=None) != self.request``, field by field, without
            # dataclasses.replace's ~4 us (a Request compares every field, sets no other).
            if {**vars(request), "gpus": None} != vars(self.request):
                raise ValueError("Shared serves the request it was made for (any GPU count)")
            self._requests[id(request)] = request  # held: its id stays its own
        key = (chosen.index, chosen.backend, chosen.precision)
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = Choice(recipe, self.rsrc, *key)
        return Context(choice, hardware, self.profiles.src(hardware), request, chosen)

    def user_layers(self, backend: str) -> list[Layer]:
        """The user's layers of the request (:func:`~aimc.plan.layers.user_layers`)."""
        layers = self._users.get(backend)
        if layers is None:  # an error is not kept
            layers = self._users[backend] = user_layers(self.request, backend)
        return layers

    def check_env(self, name: str, value: str, source: str) -> None:
        """:func:`~aimc.core.safety.check_env`, once for each variable and value and the
        caller's secret variables (what else it reads; kept in :attr:`profiles`, so that a
        profile's variables pass once for every recipe): whether it refuses them does not
        depend on ``source``, which only its error names (an error is not kept, so a
        refused value is refused again, with its own source)."""
        key = (name, value, self._secrets)
        passed = self.profiles.passed
        if key not in passed:
            check_env(name, value, source)
            if len(passed) >= 64 * self.profiles.most:
                passed.clear()
            passed.add(key)

    def runtime(
        self,
        hardware: Mapping[str, Any],
        args: Mapping[str, Any],
        env: Mapping[str, str],
        tp: int,
        pp: int,
    ) -> Runtime:
        """:func:`~aimc.plan.vllm_memory.vllm_runtime` of the recipe's facts and
        architecture on the profile data ``hardware``, kept for that very object (held)
        and equal variables, tp and pp when no engine argument it reads is set (made afresh
        otherwise: their values need not hash). The candidates of one profile share it
        across configurations and precisions (it reads neither)."""
        if args:
            return vllm_runtime(self.facts, hardware, args, env, tp, pp, self.architecture)
        key = (id(hardware), tp, pp, *env.items())
        held = self._runtimes.get(key)
        if held is None or held[0] is not hardware:
            made = vllm_runtime(self.facts, hardware, args, env, tp, pp, self.architecture)
            held = self._runtimes[key] = (hardware, made)
        return held[1]

    def estimate(self, facts: Mapping[str, Any], *args: Any) -> Estimate:
        """:func:`~aimc.plan.estimate.estimate` of the recipe's ``facts`` and ``args`` (its
        other arguments, in order)."""
        if facts is not self.facts:
            raise ValueError("Shared estimates the facts of its recipe")
        return estimate(facts, *args)
