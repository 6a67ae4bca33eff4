"""Compiled templates on disk (aimc/emit/template_cache.py): compiled once, keyed by
content, checked when read, written atomically, bounded, and never a reason for other
output or an error."""

from __future__ import annotations

import marshal
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from aimc.emit import template_cache, templating
from aimc.emit.template_cache import MAX_BYTES, MAX_FILES, CompiledTemplates

SOURCE = "{% for x in items %}{{ x | upper }} {% endfor %}{{ name }}\n"
CONTEXT = {"items": ["a", "b"], "name": "n"}
EXPECTED = "A B n\n"


def _env(templates: Path, cache: Path | None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        bytecode_cache=CompiledTemplates(cache, "test") if cache else None,
    )


def _render(templates: Path, cache: Path | None) -> str:
    return _env(templates, cache).get_template("t.j2").render(CONTEXT)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.j2").write_text(SOURCE)
    return templates, tmp_path / "cache"


def _files(cache: Path) -> list[Path]:
    return sorted(cache.iterdir()) if cache.exists() else []


def test_a_template_is_compiled_once_then_loaded(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    templates, cache = folders
    assert _render(templates, cache) == EXPECTED
    [file] = _files(cache)
    assert file.name.endswith(".j2c") and oct(file.stat().st_mode & 0o777) == "0o644"

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(SandboxedEnvironment, "compile", no_compile)
    assert _render(templates, cache) == EXPECTED


def test_an_edited_template_never_loads_the_old_code(folders: tuple[Path, Path]) -> None:
    templates, cache = folders
    assert _render(templates, cache) == EXPECTED
    (templates / "t.j2").write_text("edited {{ name }}\n")
    assert _render(templates, cache) == "edited n\n"
    assert len(_files(cache)) == 2


def test_another_environment_tag_has_its_own_files(folders: tuple[Path, Path]) -> None:
    templates, cache = folders
    bucket_a = CompiledTemplates(cache, "a")
    bucket_b = CompiledTemplates(cache, "b")
    env = _env(templates, cache)
    bucket = env.bytecode_cache.get_bucket(env, "t.j2", None, SOURCE)  # type: ignore[union-attr]
    assert bucket_a._file(bucket) != bucket_b._file(bucket)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damage=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda n: ("cut", n), st.integers(min_value=0, max_value=4000)),
        st.builds(lambda i, b: ("flip", i, b), st.integers(0, 4000), st.integers(1, 255)),
        st.just("not code"),
        st.just("too big"),
    )
)
def test_a_damaged_or_hostile_file_is_ignored_and_rewritten(
    folders: tuple[Path, Path], damage: object
) -> None:
    templates, cache = folders
    _render(templates, cache)
    [file] = _files(cache)
    good = file.read_bytes()
    if isinstance(damage, bytes):
        bad = damage
    elif damage == "not code":  # a well-formed file whose body is no code object
        body = marshal.dumps(42)
        bad = template_cache._HEADER + template_cache.sha256(body).digest() + body
    elif damage == "too big":
        bad = good + b"\0" * MAX_BYTES
    elif isinstance(damage, tuple) and damage[0] == "cut":
        bad = good[: damage[1] % len(good)]
    else:
        assert isinstance(damage, tuple)
        i = damage[1] % len(good)
        bad = good[:i] + bytes([good[i] ^ damage[2]]) + good[i + 1 :]
    file.write_bytes(bad)
    assert _render(templates, cache) == EXPECTED
    assert file.read_bytes() == good  # compiled again and rewritten


def test_the_folder_is_bounded_and_keeps_no_temporary_file(folders: tuple[Path, Path]) -> None:
    templates, cache = folders
    cache.mkdir()
    for i in range(MAX_FILES + 20):
        old = cache / f"{i:064x}.j2c"
        old.write_bytes(b"x")
        os.utime(old, (1000 + i, 1000 + i))
    (cache / ".tmp-dead.j2c").write_bytes(b"x")
    assert _render(templates, cache) == EXPECTED
    files = _files(cache)
    assert len(files) == MAX_FILES
    assert not any(f.name.startswith(".tmp-") for f in files)
    assert f"{0:064x}.j2c" not in {f.name for f in files}  # the oldest went


def test_no_file_without_bytecode_or_where_it_cannot_write(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    templates, cache = folders
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert _render(templates, cache) == EXPECTED
    assert _files(cache) == []
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.write_text("a file where the folder would be")
    assert _render(templates, cache) == EXPECTED


def test_the_shipped_templates_load_the_code_jinja_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shipped template, compiled into a cache of the test's own, loads back as the
    very code Jinja's fresh compile makes."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    env = templating.environment()
    cached = env.overlay(bytecode_cache=CompiledTemplates(tmp_path / "c", "test"))
    names = env.list_templates()
    assert "launch.sh.j2" in names
    for name in names:
        cached.get_template(name)  # compiled and written
        source, filename, _ = env.loader.get_source(env, name)
        bucket = cached.bytecode_cache.get_bucket(cached, name, filename, source)
        assert bucket.code is not None, name
        fresh = env.compile(source, name, filename)
        assert marshal.dumps(bucket.code) == marshal.dumps(fresh), name
