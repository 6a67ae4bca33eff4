"""A registry of named entries (backends, vendors, emitters): one name, one entry.

A :class:`Registry` is the dict it looks like (name -> entry, in registration order), plus
:meth:`Registry.add`, which refuses a name already taken. Each registry's module keeps its
own lookup, whose refusal is worded for its users (``--emit``, a recipe's backend, a
profile's vendor).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["Registry"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Registry(dict[str, T]):
    """Entries by name, in registration order.

    Args:
        kind: What an entry is, for the refusal (``"backend"``).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, entry: T) -> T:
        """Register ``entry`` under its name.

        Raises:
            ValueError: The name is taken.
        """
        if entry.name in self:
            raise ValueError(f"a {self.kind} named {entry.name!r} is registered already")
        self[entry.name] = entry
        return entry
