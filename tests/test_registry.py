"""The one registry shape (aimc.core.registry) behind backends, vendors and emitters."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from aimc.backends import BACKENDS
from aimc.core.registry import Registry
from aimc.emit.emitters import EMITTERS
from aimc.vendors import VENDORS


@dataclass(frozen=True)
class Entry:
    name: str


def test_a_name_is_taken_once_and_order_is_kept() -> None:
    reg: Registry[Entry] = Registry("thing")
    first = reg.add(Entry("b"))
    reg.add(Entry("a"))
    assert first is reg["b"] and list(reg) == ["b", "a"]
    with pytest.raises(ValueError, match="a thing named 'b' is registered already"):
        reg.add(Entry("b"))
    assert list(reg) == ["b", "a"]


def test_the_three_registries_are_registries() -> None:
    assert [r.kind for r in (BACKENDS, VENDORS, EMITTERS)] == ["backend", "vendor", "emitter"]
    assert list(BACKENDS) == ["vllm", "sglang"] and list(VENDORS) == ["amd", "nvidia", "cpu"]
