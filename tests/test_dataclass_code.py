"""The methods ``@dataclass`` generates for aimc's classes, compiled once
(aimc/core/dataclass_code.py): the same code as without it, from a file a later process
reads; other packages' classes and a damaged file are compiled as before."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import marshal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimc.core import dataclass_code
from aimc.core.filecache import FileCache

#: Dataclasses of every kind of generated method, as a module would define them.
SOURCE = """
import dataclasses
from dataclasses import dataclass, field
from typing import Any

@dataclass(frozen=True)
class Frozen:
    name: str
    items: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    count: int = 1

@dataclass(order=True)
class Ordered:
    a: int
    b: float = 0.5

@dataclass(eq=False, kw_only=True)
class Plain:
    x: Any = None
    y: tuple[int, ...] = ()

@dataclass(frozen=True, slots=True)
class Slotted:
    a: int
    b: str = "b"
"""


class Probe:
    """Makes the classes of :data:`SOURCE` in a module named ``module``."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shipped = dataclass_code.cache()
        self.folder = tmp_path / "kept"
        files = FileCache(self.folder, shipped.header, shipped.suffix, shipped.mode)
        monkeypatch.setattr(dataclass_code, "cache", lambda: files)
        monkeypatch.setattr(sys, "dont_write_bytecode", False)
        monkeypatch.setattr(dataclass_code, "_codes", {})
        monkeypatch.setattr(
            dataclass_code, "_state", {"installed": True, "read": False, "new": False}
        )
        self.monkeypatch = monkeypatch

    def classes(self, module: str, kept: bool) -> dict[str, type]:
        """The classes, made with the generated code kept (``kept``) or as Python makes them."""
        exec_ = dataclass_code._exec if kept else builtins.exec
        with self.monkeypatch.context() as patch:
            patch.setattr(dataclasses, "exec", exec_, raising=False)
            namespace: dict[str, Any] = {"__name__": module}
            sys.modules[module] = type(sys)(module)
            sys.modules[module].__dict__.update(namespace)
            try:
                builtins.exec(SOURCE, sys.modules[module].__dict__)
            finally:
                made = dict(sys.modules.pop(module).__dict__)
        return {name: made[name] for name in ("Frozen", "Ordered", "Plain", "Slotted")}

    def new_process(self) -> None:
        """What a new process starts from: the file written at the last one's exit."""
        dataclass_code._save()
        self.monkeypatch.setattr(dataclass_code, "_codes", {})
        dataclass_code._state.update(read=False, new=False)

    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir()) if self.folder.exists() else []


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    yield Probe(tmp_path, monkeypatch)


def _methods(classes: dict[str, type]) -> dict[str, Any]:
    """Every generated method's code (code objects are equal when every part of them is)."""
    out = {}
    for name, cls in classes.items():
        for attr in ("__init__", "__repr__", "__eq__", "__lt__", "__setattr__", "__hash__"):
            fn = cls.__dict__.get(attr)
            if fn is not None and hasattr(fn, "__code__"):
                out[f"{name}.{attr}"] = fn.__code__
    return out


def test_aimc_classes_get_the_same_code_and_a_later_process_reads_it(probe: Probe) -> None:
    plain = _methods(probe.classes("aimc._probe", kept=False))
    assert len(plain) > 10
    assert _methods(probe.classes("aimc._probe", kept=True)) == plain  # compiled, kept
    probe.new_process()
    [file] = probe.files()
    assert oct(file.stat().st_mode & 0o777) == "0o644"

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "compile", no_compile)
        again = probe.classes("aimc._probe", kept=True)
    assert _methods(again) == plain
    frozen = again["Frozen"]("n", ["a"])
    assert (
        frozen == again["Frozen"]("n", ["a"])
        and repr(frozen) == "Frozen(name='n', items=['a'], count=1)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen.name = "m"  # type: ignore[misc]
    assert again["Ordered"](1) < again["Ordered"](2)
    assert again["Slotted"](1) == again["Slotted"](1) and hash(again["Slotted"](1))


def test_other_packages_classes_are_compiled_as_before(probe: Probe) -> None:
    probe.classes("not_aimc._probe", kept=True)
    probe.classes("aimcx", kept=True)
    probe.new_process()
    assert probe.files() == []


@pytest.mark.parametrize("damage", ["cut", "not a dict", "foreign entries", "bytes"])
def test_a_damaged_file_is_ignored_and_rewritten(probe: Probe, damage: str) -> None:
    plain = _methods(probe.classes("aimc._probe", kept=False))
    probe.classes("aimc._probe", kept=True)
    probe.new_process()
    [file] = probe.files()
    good = file.read_bytes()
    header = dataclass_code.cache().header
    if damage == "cut":
        bad = good[: len(good) // 2]
    else:
        body = {
            "not a dict": marshal.dumps([1, 2]),
            "foreign entries": marshal.dumps({"text": 42, 7: compile("1", "<s>", "eval")}),
            "bytes": b"\x00\x01garbage",
        }[damage]
        bad = header + hashlib.sha256(body).digest() + body
    file.write_bytes(bad)
    assert _methods(probe.classes("aimc._probe", kept=True)) == plain
    probe.new_process()
    assert file.read_bytes() == good  # compiled again and rewritten


def test_install_hands_dataclasses_the_kept_exec_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataclasses, "exec", builtins.exec, raising=False)
    monkeypatch.setattr(dataclass_code, "_state", {"installed": False, "read": True, "new": False})
    dataclass_code.install()
    dataclass_code.install()
    assert dataclasses.exec is dataclass_code._exec  # type: ignore[attr-defined]
