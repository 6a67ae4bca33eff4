"""The precedence of a plan's settings: the :class:`Layer` each source of settings makes and
the one merge of them (:func:`merge_scoped`).

Takes layers (built by :mod:`aimc.plan.layers`, each value with its ``file:line`` source);
hands on the settings they merge to, in the documented precedence (:data:`LAYERS`, lowest
first), the only place precedence is written. Pure.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

from aimc.plan.model import Setting

__all__ = ["LAYERS", "Layer", "merge_scoped"]

_T = TypeVar("_T")


class _kept(Generic[_T]):  # used as a decorator, like cached_property
    """:func:`functools.cached_property` without its lock (Python 3.11 takes one on every
    first read, a cost for the many layers and choices one repository check makes): the
    value is made on the first read and kept in the instance's ``__dict__``; two
    threads reading it first at once may both make it (the same value: it reads the
    instance alone)."""

    def __init__(self, make: Callable[[Any], _T]):
        self.make = make
        self.__doc__ = make.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _kept[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> _T | _kept[_T]:
        if instance is None:
            return self
        made = instance.__dict__[self.name] = self.make(instance)
        return made


#: Precedence layers, lowest first.
LAYERS = ("backend", "hardware", "recipe", "configuration", "config-file", "cli")
_RANK = {name: i for i, name in enumerate(LAYERS)}

#: Settings by key (or by flag, by variable name); None: one that removes a lower layer's.
_Settings = dict[str, Setting | None]


class Layer:
    """The settings one layer contributes: key -> (value, source), never changed once
    made (a plain class, not a dataclass: building a dataclass costs each start-up
    ~0.5 ms; read by attribute only, never compared, hashed, printed or replaced; no
    ``__slots__``: what :class:`_kept` makes is kept in the instance's ``__dict__``)."""

    def __init__(self, name: str, values: dict[str, tuple[Any, str]] | None = None) -> None:
        self.name = name
        self.values: dict[str, tuple[Any, str]] = {} if values is None else values

    @_kept
    def scoped(self) -> tuple[_Settings, _Settings, _Settings]:
        """Each value as the :class:`~aimc.plan.model.Setting` it merges as (None: one that
        removes what a lower layer set), split as :func:`merge_scoped` merges them: the
        neutral ones by key, the ``args.*`` by flag, the ``env.*`` by variable name; made
        once for every merge of the layer."""
        neutral: _Settings = {}
        args: _Settings = {}
        env: _Settings = {}
        name = self.name
        for key, (value, source) in self.values.items():
            setting = None if value is None else Setting(value, name, source)
            if key[:5] == "args.":
                args[key[5:]] = setting
            elif key[:4] == "env.":
                env[key[4:]] = setting
            else:
                neutral[key] = setting
        return neutral, args, env

    @_kept
    def removes(self) -> bool:
        """Whether a value removes what a lower layer set (is None)."""
        return any(value is None for value, _source in self.values.values())

    @_kept
    def rank(self) -> int:
        """The layer's place in :data:`LAYERS`."""
        return _RANK[self.name]


def merge_scoped(
    layers: Sequence[Layer],
) -> tuple[dict[str, Setting], dict[str, Setting], dict[str, Setting]]:
    """Merge settings; a higher layer replaces a lower one's value for the same key.

    ====  ===============  =====================================================
    rank  layer            what it holds
    ====  ===============  =====================================================
    1     backend          the engine's defaults (port, host, memory fraction)
    2     hardware         the target profile's env, multi-GPU env, backend args
    3     recipe           the recipe's facts, weights and ``defaults``
    4     configuration    the configuration entry that matched
    5     config-file      ``--config FILE``
    6     cli              GPU count, ``--port``, ``--set key=value``
    ====  ===============  =====================================================

    A value of None removes whatever a lower layer set. Keys are neutral settings
    (``context_length``...), ``args.<flag>`` or ``env.<NAME>``: handed on split, the
    neutral ones by key, the flags and the variables by name, each of those two sorted
    (each layer's :attr:`Layer.scoped`, merged: the merged keys are not scanned and split
    again for every plan).
    """
    neutral: _Settings = {}
    args: _Settings = {}
    env: _Settings = {}
    removes = False
    for layer in sorted(layers, key=_RANK_OF):
        given, given_args, given_env = layer.scoped
        neutral.update(given)
        if given_args:
            args.update(given_args)
        if given_env:
            env.update(given_env)
        removes = removes or layer.removes
    kept: dict[str, Setting] = (
        {k: v for k, v in neutral.items() if v is not None} if removes else neutral  # type: ignore[assignment]  # no None among them
    )
    return kept, _sorted(args, removes), _sorted(env, removes)


def _sorted(settings: _Settings, removes: bool) -> dict[str, Setting]:
    """``settings`` sorted by name, without those removed (None): the very dict when
    there is nothing to sort or remove (most plans set one or no flag)."""
    if len(settings) < 2 and not removes:
        return settings  # type: ignore[return-value]  # no None among them
    return {k: v for k in sorted(settings) if (v := settings[k]) is not None}


#: A layer's rank, the key :func:`merge_scoped` sorts by (in C: no Python call per layer).
_RANK_OF = operator.attrgetter("rank")
