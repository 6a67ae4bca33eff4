"""Rendered artifacts kept by content (aimc/emit/rendered.py): a plan rendered before is
given back without Jinja, byte for byte; a plan that differs in any value, type or
order, an edited template, or a damaged file never gets another's text; a rendering that
fails is never kept."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core import _resources
from aimc.core.errors import ConfigError
from aimc.core.filecache import FileCache
from aimc.emit import rendered, templating
from aimc.emit.render import command_plan, render, render_command
from aimc.plan.model import Plan, Setting
from aimc.plan.request import Request
from tests.helpers.damage import damaged, damages, framed

LINE = "aim-engine compile Qwen/Qwen3-8B --target h100"
PLAN = make_plan(Catalog.default(), Request(model="Qwen/Qwen3-8B", sets=("env.A=1",)), "h100")


class Folders:
    """Where the test's caches are, and a switch that makes Jinja unusable."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.shipped = rendered.cache()
        self.use("kept")

    def use(self, name: str) -> None:
        """Render through the cache folder ``name`` from now on."""
        s = self.shipped
        files = FileCache(self.tmp_path / name, s.header, s.suffix, s.mode, s.max_files)
        self.monkeypatch.setattr(rendered, "cache", lambda: files)

    def files(self, name: str = "kept") -> list[Path]:
        folder = self.tmp_path / name
        return sorted(folder.iterdir()) if folder.exists() else []

    def no_jinja(self) -> None:
        def refuse() -> None:
            raise AssertionError("rendered with Jinja")

        self.monkeypatch.setattr(rendered, "environment", refuse)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folders:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return Folders(tmp_path, monkeypatch)


def _fresh(folders: Folders, render_it: Any) -> Any:
    """What rendering gives without anything kept (a new, empty folder), or the error."""
    folders.use(f"fresh-{len(list(folders.tmp_path.iterdir()))}")
    try:
        return render_it()
    except ConfigError as exc:
        return f"ConfigError: {exc}"
    finally:
        folders.use("kept")


def test_a_plan_rendered_before_is_given_back_without_jinja(folders: Folders) -> None:
    first = render(PLAN, LINE)
    assert set(first) == {"launch.sh", "aim.env", "vllm.yaml", "compose.yaml"}
    [file] = folders.files()
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    folders.no_jinja()
    assert render(PLAN, LINE) == first


def test_the_raw_command_plan_is_kept_too(folders: Folders) -> None:
    plan = command_plan(["python3", "-m", "http.server"], "srv", 1, 8000, {"A": "b,c"})
    first = render_command(plan)
    folders.no_jinja()
    assert render_command(plan) == first


def _variants() -> list[Plan]:
    """Plans that differ from :data:`PLAN` in one value's type, content or order only."""
    setting = PLAN.env["A"]
    args = dict(PLAN.args)
    key, first = next(iter(args.items()))
    swapped = dict(reversed(list(args.items())))
    return [
        *(
            dataclasses.replace(PLAN, env={"A": dataclasses.replace(setting, value=v)})
            for v in (1, "1", 1.0, True, "01", " 1")
        ),
        *(
            dataclasses.replace(PLAN, args={**args, key: dataclasses.replace(first, value=v)})
            for v in (4, "4", 4.0, [4], (4,), {"a": 4}, {"a": "4"}, None, False)
        ),
        dataclasses.replace(PLAN, args=swapped),
        dataclasses.replace(PLAN, passthrough_env=[*PLAN.passthrough_env, "X"]),
        dataclasses.replace(PLAN, hardware={**PLAN.hardware, "name": "h100 "}),
        dataclasses.replace(PLAN, recipe={**PLAN.recipe, "source": "shipped\n"}),
    ]


def test_plans_that_differ_in_a_type_or_an_order_never_share_text(folders: Folders) -> None:
    variants = _variants()
    for plan in variants:  # every one kept, in the same folder
        with contextlib.suppress(ConfigError):
            render(plan, LINE)
    for plan in variants:
        expected = _fresh(folders, lambda p=plan: render(p, LINE))
        try:
            got: Any = render(plan, LINE)
        except ConfigError as exc:
            got = f"ConfigError: {exc}"
        assert got == expected


HOSTILE = st.text(st.characters(blacklist_characters="\x00"), max_size=30)
VALUES = st.one_of(
    HOSTILE,
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(HOSTILE, max_size=3),
    st.tuples(HOSTILE),
    st.dictionaries(HOSTILE, HOSTILE, max_size=2),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.tuples(HOSTILE, VALUES, st.dictionaries(HOSTILE, HOSTILE, max_size=2)),
    second=st.tuples(HOSTILE, VALUES, st.dictionaries(HOSTILE, HOSTILE, max_size=2)),
)
def test_a_hostile_plan_never_gets_another_plans_text(
    folders: Folders,
    first: tuple[str, Any, dict[str, str]],
    second: tuple[str, Any, dict[str, str]],
) -> None:
    def plan(values: tuple[str, Any, dict[str, str]]) -> Plan:
        name, value, env = values
        args = {**PLAN.args, "served-model-name": Setting(name, "cli", "--set")}
        args["max-model-len"] = Setting(value, "cli", "--set")
        settings_env = {k: Setting(v, "cli", "--set") for k, v in env.items()}
        return dataclasses.replace(PLAN, args=args, env=settings_env, served_model_name=name)

    def attempt(p: Plan) -> Any:
        try:
            return render(p, LINE)
        except ConfigError as exc:
            return f"ConfigError: {exc}"

    attempt(plan(first))  # kept (when it renders)
    expected = _fresh(folders, lambda: render(plan(second), LINE))
    assert attempt(plan(second)) == expected
    assert attempt(plan(first)) == _fresh(folders, lambda: render(plan(first), LINE))


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), HOSTILE
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(HOSTILE, st.integers(-3, 3), st.booleans()), inner, max_size=3),
    ),
    max_leaves=8,
)


def _confused(value: Any, how: str) -> Any:
    """``value`` with every part of one kind changed into what prints or compares alike:
    lists into tuples, numbers into text or floats, booleans into numbers, key order."""
    if isinstance(value, dict):
        items = [(_confused(k, how), _confused(v, how)) for k, v in value.items()]
        return dict(reversed(items) if how == "order" else items)
    if isinstance(value, (list, tuple)):
        parts = [_confused(v, how) for v in value]
        return tuple(parts) if how == "tuple" else parts
    if how == "text" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if how == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if how == "number" and isinstance(value, bool):
        return int(value)
    return value


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(DATA, st.sampled_from(["order", "tuple", "text", "float", "number"]))
def test_data_that_prints_alike_never_shares_text(folders: Folders, value: Any, how: str) -> None:
    """The native config file written from data and from data of other types that looks
    the same (``[1]`` and ``(1,)``, ``1``, ``1.0``, ``"1"`` and ``True``, another key order)."""

    def config(data: Any) -> Any:
        context = {
            "plan": PLAN,
            "version": "test",
            "request_line": LINE,
            "native_comment": "",
            "native_config": {"value": data},
        }
        return lambda: rendered.render_templates({"vllm.yaml": "native-config.yaml.j2"}, context)

    config(value)()  # kept
    other = _confused(value, how)
    assert config(other)() == _fresh(folders, config(other))
    assert config(value)() == _fresh(folders, config(value))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(damage=damages(20000, ["other key", "other names", "not text", "not json"]))
def test_a_damaged_or_foreign_file_is_ignored_and_rewritten(
    folders: Folders, damage: object
) -> None:
    expected = render(PLAN, LINE)
    [file] = folders.files()
    good = file.read_bytes()
    files = rendered.cache()
    key = file.name.removesuffix(".out")
    if isinstance(damage, str):  # well-formed files that answer another question
        data = json.loads(files.read(key) or b"")
        if damage == "other key":
            data["key"] = "0" * 64
        elif damage == "other names":
            data["files"]["extra"] = ""
        elif damage == "not text":
            data["files"]["launch.sh"] = 42
        bad = framed(files, b"{" if damage == "not json" else json.dumps(data).encode())
    else:
        bad = damaged(good, damage)
    file.write_bytes(bad)
    assert render(PLAN, LINE) == expected
    assert file.read_bytes() == good  # rendered again and rewritten


def test_a_failed_rendering_or_an_unwritable_context_is_never_kept(folders: Folders) -> None:
    bad = dataclasses.replace(PLAN, env={"A": Setting("$(id)\n", "cli", "--set")})
    for _ in range(2):
        with pytest.raises(ConfigError, match="cannot be written safely"):
            render(bad, LINE)
    assert folders.files() == []
    # a value the key cannot write out exactly (a function): rendered by Jinja every time
    odd = dataclasses.replace(PLAN, estimate={"f": len})
    assert render(odd, LINE) == _fresh(folders, lambda: render(odd, LINE))
    assert folders.files() == []


def test_nothing_is_kept_without_bytecode(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    render(PLAN, LINE)
    assert folders.files() == []


@pytest.fixture
def own_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped templates that the environment (and the key) read."""
    copy = tmp_path / "templates"
    shutil.copytree(_resources.path("templates"), copy)
    shipped = _resources.path
    monkeypatch.setattr(
        _resources, "path", lambda *p: copy.joinpath(*p[1:]) if p[0] == "templates" else shipped(*p)
    )
    templating.environment.cache_clear()
    yield copy
    templating.environment.cache_clear()


def test_an_edited_template_never_gives_the_old_text(folders: Folders, own_templates: Path) -> None:
    before = render(PLAN, LINE)
    header = own_templates / "_header.j2"
    header.write_text(header.read_text() + "{{ c }} edited\n")
    templating.environment.cache_clear()
    after = render(PLAN, LINE)
    assert after != before and "# edited" in after["launch.sh"]
    assert len(folders.files()) == 2
