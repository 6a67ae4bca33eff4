"""The caches' common folder (aimc/core/filecache.py): each folder keeps its own bound and
permissions, and the code part of a key changes with the code."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from aimc.core.filecache import FileCache, code_digest


def test_a_folder_keeps_its_own_bound_and_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    files = FileCache(tmp_path / "c", b"test 1\n", ".t", 0o600, max_files=3)
    for i in range(5):
        files.write(f"{i:02x}", b"body %d" % i)
        os.utime(files.path(f"{i:02x}"), (1000 + i, 1000 + i))
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["02.t", "03.t", "04.t"]
    assert files.read("04") == b"body 4" and files.read("00") is None
    assert oct(files.path("04").stat().st_mode & 0o777) == "0o600"
    other = FileCache(tmp_path / "c", b"other 1\n", ".t", 0o600)
    assert other.read("04") is None  # another kind of file is not read


def _module(tmp_path: Path, name: str, source: str) -> None:
    file = tmp_path / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def test_the_code_digest_changes_with_any_source_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "aimc_test_digest_module"
    monkeypatch.delitem(sys.modules, name, raising=False)
    _module(tmp_path, name, "X = 1\n")
    first = code_digest([name], ["json"])
    assert code_digest([name], ["json"]) == first
    (tmp_path / f"{name}.py").write_text("X = 2\n")
    assert code_digest([name], ["json"]) != first
    assert code_digest([name]) != code_digest([name], ["json"])
    with pytest.raises(LookupError):
        code_digest(["aimc_not_loaded_anywhere"])
    with pytest.raises(LookupError):
        code_digest([], ["aimc_no_such_package_anywhere"])


def test_the_code_digest_reads_a_module_it_is_not_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``packages`` may name a plain module: its file is hashed, the module not loaded (the
    YAML cache's key covers the loader's event walk, which only parsing imports)."""
    name = "aimc_test_digest_unloaded"
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{name}.py").write_text("X = 1\n")
    first = code_digest([], [name])
    assert name not in sys.modules
    (tmp_path / f"{name}.py").write_text("X = 2\n")
    assert code_digest([], [name]) != first
