"""Autoscaling targets from a configuration's measured saturation point.

:mod:`aimc.plan.saturation`, :mod:`aimc.emit.autoscale`.

``bench`` runs of one configuration at several concurrencies give its output-tokens/s
curve; ``--emit k8s --autoscale`` turns the point where the curve flattens into a
running-requests target per replica and says which results it came from, or why the
documented defaults stand. Goldens for an NVIDIA (KEDA) and an AMD (HPA) plan with
results; byte-identical output for every plan without results of its own configuration,
whatever else the results file holds (other configurations, bad numbers, hostile text,
more than the bounded read); the curve's rules on literal curves; the command line.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.cli.results import given_runs
from aimc.core.errors import ConfigError
from aimc.emit.aim import compile_aim
from aimc.emit.autoscale import SIGNALS, Autoscale
from aimc.emit.k8s import compile_k8s
from aimc.emit.kserve import compile_kserve
from aimc.plan import measured
from aimc.plan.measured import append_result, config_key, read_results
from aimc.plan.request import Request
from aimc.plan.saturation import RESULTS_SOURCE, curve, runs
from aimc.run.bench import Figures, Workload, result_record
from tests.conftest import GOLDEN
from tests.helpers.bench_results import (
    CURVE,
    SATURATION,
    bench_runs,
    result,
    results,
    write_results,
)
from tests.helpers.k8s import YAML_HOSTILE, load_yaml
from tests.helpers.operators import apply_folder, folder_objects, validate_any

CATALOG = Catalog.default()
_TIME = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
NVIDIA = Request(model="Qwen/Qwen3-8B")
AMD = Request(model="Qwen/Qwen3-32B", gpus=8)
TIMES = {"p50": 10.0, "p95": 20.0}
PLANS = {"h100": make_plan(CATALOG, NVIDIA, "h100"), "mi300x": make_plan(CATALOG, AMD, "mi300x")}

#: (golden folder, target, request, autoscaler)
GOLDENS = [
    ("Qwen__Qwen3-8B--h100-keda-measured", "h100", NVIDIA, "keda"),
    ("Qwen__Qwen3-32B--mi300x-8-hpa-measured", "mi300x", AMD, "hpa"),
]


def _k8s(target: str, scale: Autoscale) -> dict[str, str]:
    request = NVIDIA if target == "h100" else AMD
    return compile_k8s(PLANS[target], request, target, 1, scale)


def _from_file(path: Path) -> tuple[Any, ...]:
    """The runs ``compile --autoscale`` reads from a results file."""
    found, _problems = read_results(path)
    return runs(found)


@pytest.mark.parametrize(("folder", "target", "request_", "kind"), GOLDENS)
def test_measured_folders_match_golden_and_validate(
    folder: str, target: str, request_: Request, kind: str, golden: Callable[[str, str], None]
) -> None:
    plan = PLANS[target]
    files = _k8s(target, Autoscale(kind, bench=bench_runs(plan)))
    for name, text in files.items():
        golden(f"k8s/{folder}/{name}", text)
    on_disk = {
        str(p.relative_to(GOLDEN / "k8s" / folder)) for p in (GOLDEN / "k8s" / folder).rglob("*")
    }
    assert on_disk == set(files) | {"monitoring"}
    objects = {n: load_yaml(t) for n, t in files.items() if n.endswith(".yaml")}
    for obj in objects.values():
        validate_any(obj)
    running = SIGNALS[plan.backend]["running"]
    if kind == "keda":
        triggers = {t["name"]: t for t in objects["scaledobject.yaml"]["spec"]["triggers"]}
        assert list(triggers) == ["queue", "running", "kv-cache"]
        assert triggers["running"]["metricType"] == "AverageValue"
        assert triggers["running"]["metadata"]["threshold"] == str(SATURATION)
        assert (
            f'{running}{{app_kubernetes_io_name="{plan.name}"}}'
            in (triggers["running"]["metadata"]["query"])
        )
        text = files["scaledobject.yaml"]
    else:
        metrics = objects["hpa.yaml"]["spec"]["metrics"]
        assert metrics[1]["pods"] == {
            "metric": {"name": running},
            "target": {"type": "AverageValue", "averageValue": str(SATURATION)},
        }
        text = files["hpa.yaml"]
    # The header says where the target comes from: the file, the configuration, the sweep.
    assert RESULTS_SOURCE in text and config_key(plan)["args_hash"] in text
    assert ", ".join(f"{c}: {t:.1f}" for c, t in CURVE.items()) in text
    assert f"Running requests per replica: {SATURATION}, the saturation point" in text
    record = json.loads(files["manifest.aimc"])["inputs"]["kubernetes"]["autoscale"]
    assert record["targets"] == {"queue": 2, "kv": 0.85, "running": SATURATION}
    assert record["measured"]["source"] == RESULTS_SOURCE
    assert record["measured"]["key"] == config_key(plan)
    assert [p["concurrency"] for p in record["measured"]["points"]] == sorted(CURVE)
    assert record["measured"]["saturation"] == SATURATION


@pytest.mark.parametrize("recursive", [False, True], ids=["flat", "recursive"])
@pytest.mark.parametrize(("folder", "target", "request_", "kind"), GOLDENS)
def test_kubectl_applies_the_measured_folders(
    tmp_path: Path, folder: str, target: str, request_: Request, kind: str, recursive: bool
) -> None:
    """The real kubectl decodes every file (the autoscaler, the adapter rules' ConfigMap)."""
    out = tmp_path / folder
    for name, text in _k8s(target, Autoscale(kind, bench=bench_runs(PLANS[target]))).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    kinds = {o["kind"] for o in folder_objects(out, recursive)}
    assert ("ScaledObject" if kind == "keda" else "HorizontalPodAutoscaler") in kinds
    assert ("ConfigMap" in kinds) == (kind == "hpa" or recursive)
    apply_folder(out, tmp_path, recursive)


@pytest.mark.parametrize("kind", ["keda", "hpa"])
def test_results_change_only_the_autoscaler_and_its_record(kind: str) -> None:
    plan = PLANS["h100"]
    plain = _k8s("h100", Autoscale(kind))
    with_results = _k8s("h100", Autoscale(kind, bench=bench_runs(plan)))
    changed = {n for n in plain if plain[n] != with_results[n]}
    assert set(plain) == set(with_results)
    assert changed == {"scaledobject.yaml" if kind == "keda" else "hpa.yaml", "manifest.aimc"}


def test_kserve_and_aim_outputs_do_not_take_results() -> None:
    """KServe's autoscaler (llm-d's WVA) has no threshold of aimc's, and the AIM runtime
    serves its own vLLM release and profile, not the configuration benched."""
    plan = PLANS["h100"]
    scale = Autoscale("keda", 1, 4)
    assert compile_kserve(plan, NVIDIA, "h100", 1, scale) == compile_kserve(
        plan, NVIDIA, "h100", 1, Autoscale("keda", 1, 4, bench=bench_runs(plan))
    )
    amd = Request(model="Qwen/Qwen3-8B")
    aim_plan = make_plan(CATALOG, amd, "mi325x")
    assert compile_aim(aim_plan, amd, "mi325x", 1, scale) == compile_aim(
        aim_plan, amd, "mi325x", 1, Autoscale("keda", 1, 4, bench=bench_runs(aim_plan))
    )


def test_results_of_another_configuration_change_nothing() -> None:
    """A sweep of the NVIDIA plan's configuration leaves the AMD plan at the defaults."""
    other = bench_runs(PLANS["h100"])
    for kind in ("keda", "hpa"):
        assert _k8s("mi300x", Autoscale(kind, bench=other)) == _k8s("mi300x", Autoscale(kind))


# --- the curve ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "saturation", "why"),
    [
        (CURVE, 32, "32 concurrent: 1010.0 output tokens/s, 97% of the best"),
        ({1: 100.0, 2: 101.0}, 1, "1 concurrent: 100.0 output tokens/s, 99% of the best"),
        (
            {1: 100.0, 4: 350.0, 8: 900.0, 16: 880.0},
            8,
            "900.0 output tokens/s, 100% of the best measured (900.0 at 8)",
        ),
        ({4: 400.0}, None, "one concurrency benched (4)"),
        ({1: 100.0, 2: 200.0, 4: 400.0}, None, "still grow at the highest concurrency benched (4)"),
        ({1: 0.0, 2: 0.0}, None, "no output tokens/s measured"),
    ],
)
def test_the_saturation_point_of_literal_curves(
    points: dict[int, float], saturation: int | None, why: str
) -> None:
    plan = PLANS["h100"]
    found = curve(plan, bench_runs(plan, points))
    assert found.saturation == saturation
    assert why in found.why
    assert [p.concurrency for p in found.points] == sorted(points)


def test_one_workload_shape_and_the_newest_run_per_concurrency() -> None:
    plan = PLANS["h100"]
    key = config_key(plan)
    sweep = [result(key, c, t, i) for i, (c, t) in enumerate(CURVE.items())]
    # Newer: a short-prompt sweep (another curve: the newest shape wins), with 4 run twice.
    short = [
        result(key, 2, 500.0, 20, input_len=64, output_len=64),
        result(key, 4, 10.0, 21, input_len=64, output_len=64),
        result(key, 8, 990.0, 22, input_len=64, output_len=64),
        result(key, 4, 950.0, 23, input_len=64, output_len=64),
    ]
    found = curve(plan, runs(sweep + short))
    assert [(p.concurrency, p.output_tokens_per_s) for p in found.points] == [
        (2, 500.0),
        (4, 950.0),
        (8, 990.0),
    ]
    assert found.saturation == 4
    assert found.shape() == "64 in / 64 out tokens"


@pytest.mark.parametrize(
    ("part", "field", "value"),
    [
        ("figures", "failed", 1),  # a failed request: the throughput is not the configuration's
        ("figures", "completed", 63),  # fewer completed than sent
        ("workload", "requests", 4),  # fewer requests than the concurrency (8): never reached
        ("workload", "concurrency", 1025),  # beyond bench's bounds
        ("workload", "input_len", 0),
        ("key", "data_parallel", True),  # not a whole number (True == 1 in Python)
        ("key", "gpus", 1.0),
    ],
)
def test_runs_that_are_no_point_of_a_curve_are_left_out(part: str, field: str, value: Any) -> None:
    plan = PLANS["h100"]
    key = config_key(plan)
    sweep = [result(key, c, t, i) for i, (c, t) in enumerate(CURVE.items())]
    bad = result(key, 8, 5000.0, 30)  # would be the best by far: the saturation point
    assert curve(plan, runs([*sweep, bad])).saturation == 8
    bad[part][field] = value
    assert curve(plan, runs([*sweep, bad])) == curve(plan, runs(sweep))


def test_the_records_bench_writes_are_points_of_a_curve(tmp_path: Path) -> None:
    """What ``bench NAME --concurrency C`` appends (:func:`aimc.run.bench.result_record`
    through :func:`aimc.plan.measured.append_result`) reads back as one run per concurrency."""
    plan = PLANS["h100"]
    path = tmp_path / "bench.jsonl"
    for c, tokens in CURVE.items():
        sent = 4 * c
        figures = Figures(sent, sent, 0, 10.0, int(tokens * 10), tokens, 1.0, TIMES, TIMES)
        work = Workload(sent, c, 512, 256, 0)
        used = ("aimc", "the model is not a local folder")
        record = result_record(
            config_key(plan), "q8", "http://127.0.0.1:8000", "m", used, work, figures
        )
        append_result(path, record)
    found = curve(plan, _from_file(path))
    assert [(p.concurrency, p.output_tokens_per_s) for p in found.points] == list(CURVE.items())
    assert found.saturation == SATURATION


# --- hostile results files ------------------------------------------------------------------

_HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
#: Where a value makes a record another configuration's or no point of a curve, and values
#: there that always do (else: any hostile value that differs from the valid one).
_PATHS = [
    ("key", "model"),
    ("key", "target"),
    ("key", "configuration"),
    ("key", "precision"),
    ("key", "gpus"),
    ("key", "data_parallel"),
    ("key", "backend"),
    ("key", "backend_version"),
    ("key", "args_hash"),
    ("workload", "concurrency"),
    ("workload", "requests"),
    ("workload", "input_len"),
    ("figures", "output_tokens_per_s"),
    ("figures", "failed"),
    ("figures", "completed"),
    ("time",),
    ("key",),
    ("workload",),
    ("figures",),
]


def _differs(old: Any, new: Any) -> bool:
    """Whether ``new`` is not ``old`` as JSON reads it back (type included)."""
    if isinstance(new, float) and math.isnan(new):
        return True
    return type(old) is not type(new) or old != new


def _valid(path: tuple[str, ...], value: Any) -> bool:
    """Whether ``value`` at ``path`` could still be a valid point (another figure, another
    bench time): those make a legitimate run, not a hostile one."""
    if path == ("figures", "output_tokens_per_s"):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and 0 <= value <= 1e15
    if path == ("time",):
        return isinstance(value, str) and _TIME.match(value) is not None
    return False


@st.composite
def _hostile_record(draw: st.DrawFn, key: dict[str, Any]) -> Any:
    """A record of the plan's sweep with one value made hostile, or a line of junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=60).filter(lambda t: "\n" not in t and "\r" not in t))
    record = result(key, draw(st.sampled_from(sorted(CURVE))), draw(st.floats(0, 1e15)), 50)
    path = draw(st.sampled_from(_PATHS))
    holder = record
    for part in path[:-1]:
        holder = holder[part]
    old = holder[path[-1]]
    new = draw(_HOSTILE_VALUES.filter(lambda v: _differs(old, v) and not _valid(path, v)))
    if path == ("figures", "failed") and isinstance(new, int) and not isinstance(new, bool):
        new = abs(new) + 1 if new != 0 else 1
    whole = isinstance(new, int) and not isinstance(new, bool) and 1 <= new <= 1 << 20
    if whole and path == ("workload", "concurrency"):
        new = record["workload"]["requests"] + new  # more than the requests sent
    elif whole and path[0] == "workload":
        new = -new  # any whole count or length in bounds is another valid run
    holder[path[-1]] = new
    return record


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_results_files_never_change_the_output(
    data: st.DataObject, tmp_path_factory: Any
) -> None:
    """Whatever else the file holds (other configurations, bad numbers, wrong types, hostile
    times, junk lines), compiling reads only the plan's valid runs: the files are those the
    valid runs alone give, and with none, the defaults'."""
    plan = PLANS["h100"]
    key = config_key(plan)
    valid = results(plan)
    hostile = data.draw(st.lists(_hostile_record(key), min_size=1, max_size=6))
    mixed = data.draw(st.permutations(valid + hostile))
    # The valid runs keep their order (the newest last), the hostile ones anywhere.
    order = iter(valid)
    mixed = [next(order) if r in valid else r for r in mixed]
    folder = tmp_path_factory.mktemp("bench")
    write_results(folder / "mixed.jsonl", mixed)
    write_results(folder / "valid.jsonl", valid)
    write_results(folder / "hostile.jsonl", hostile)
    for kind in ("keda", "hpa"):
        expect = _k8s("h100", Autoscale(kind, bench=_from_file(folder / "valid.jsonl")))
        assert _k8s("h100", Autoscale(kind, bench=_from_file(folder / "mixed.jsonl"))) == expect
        alone = _k8s("h100", Autoscale(kind, bench=_from_file(folder / "hostile.jsonl")))
        assert alone == _k8s("h100", Autoscale(kind))


def test_a_huge_results_file_is_read_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the newest READ_MAX bytes count: a sweep beyond them is not read (defaults), one
    within them is, whatever precedes it (a 1 GiB sparse file, lines over LINE_MAX)."""
    plan = PLANS["h100"]
    path = tmp_path / "bench.jsonl"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # 1 GiB of NUL bytes, not written to disk
        f.seek(0, 2)
        f.write(b"\n" + b"x" * (measured.LINE_MAX + 1) + b"\n")
        f.write("".join(json.dumps(r) + "\n" for r in results(plan)).encode())
    assert curve(plan, _from_file(path)).saturation == SATURATION
    head = tmp_path / "head.jsonl"
    head.write_text("".join(json.dumps(r) + "\n" for r in results(plan)))
    with head.open("ab") as f:
        f.write((b"y" * 1000 + b"\n") * 100)
    monkeypatch.setattr(measured, "READ_MAX", 50_000)
    assert curve(plan, _from_file(head)).points == ()


# --- the command line -----------------------------------------------------------------------


def test_compile_reads_the_machines_results(cli: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_results(state / "bench.jsonl", ["not json", *results(PLANS["h100"])])
    out = tmp_path / "o"
    argv = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "--autoscale", "hpa"]
    done = cli(*argv, "-o", str(out), env={"AIMC_STATE_DIR": str(state)})
    assert done.code == 0, done.err
    assert "skipped 1 malformed line(s)" in done.err and "Traceback" not in done.err
    metrics = load_yaml((out / "hpa.yaml").read_text())["spec"]["metrics"]
    assert metrics[1]["pods"]["metric"]["name"] == "vllm:num_requests_running"
    assert metrics[1]["pods"]["target"]["averageValue"] == str(SATURATION)
    shown = cli("show-config", *argv[1:], env={"AIMC_STATE_DIR": str(state)})
    assert shown.code == 0, shown.err
    assert f'averageValue: "{SATURATION}"' in shown.out
    # Without results (another state folder): the documented defaults.
    empty = cli(*argv, "-o", str(tmp_path / "d"), env={"AIMC_STATE_DIR": str(tmp_path / "e")})
    assert empty.code == 0, empty.err
    assert "vllm:num_requests_running" not in (tmp_path / "d" / "hpa.yaml").read_text()
    with contextlib.suppress(FileNotFoundError):
        assert "measured" not in (tmp_path / "d" / "manifest.aimc").read_text()


def test_a_results_file_given_gives_the_same_files_on_any_machine(cli: Any, tmp_path: Path) -> None:
    """``--bench-results FILE`` (a file kept in the repository) is read instead of the
    machine's results, and the output names neither the file's path nor the machine."""
    kept = tmp_path / "repo" / "bench.jsonl"
    write_results(kept, results(PLANS["h100"]))
    argv = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "--autoscale", "keda"]
    folders = []
    for machine in ("a", "b"):  # two machines: one without results, one with other results
        state = tmp_path / f"state-{machine}"
        if machine == "b":
            write_results(state / "bench.jsonl", ["not json"])
        out = tmp_path / f"out-{machine}"
        done = cli(
            *argv, "--bench-results", "repo/bench.jsonl", "-o", str(out),
            env={"AIMC_STATE_DIR": str(state)}, cwd=tmp_path,
        )  # fmt: skip
        assert done.code == 0, done.err
        folders.append({p.name: p.read_text() for p in sorted(out.iterdir()) if p.is_file()})
    assert folders[0] == folders[1]
    text = folders[0]["scaledobject.yaml"]
    assert "the --bench-results file" in text and "--bench-results repo/bench.jsonl" in text
    assert str(tmp_path) not in "".join(folders[0].values())
    scale = json.loads(folders[0]["manifest.aimc"])["inputs"]["kubernetes"]["autoscale"]
    assert scale["targets"]["running"] == SATURATION
    assert scale["measured"]["source"] == "the --bench-results file"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bench-results", "missing.jsonl"], "--bench-results missing.jsonl: no such file"),
        (["--bench-results", "a\nb"], "not printable text"),
        (["--emit", "kserve", "--bench-results", "r.jsonl"], "--emit kserve scales on its own"),
    ],
)
def test_bench_results_refusals(cli: Any, tmp_path: Path, extra: list[str], message: str) -> None:
    write_results(tmp_path / "r.jsonl", results(PLANS["h100"]))
    emit = [] if "--emit" in extra else ["--emit", "k8s"]
    argv = ["compile", "Qwen/Qwen3-8B", "--target", "h100", *emit, "--autoscale", "keda", *extra]
    done = cli(*argv, "-o", str(tmp_path / "o"), cwd=tmp_path)
    assert done.code == 2, done.err
    assert message in done.err and "Traceback" not in done.err
    assert not (tmp_path / "o").exists()
    # Without --autoscale, --bench-results is refused too.
    bare = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s",
               "--bench-results", "r.jsonl", "-o", str(tmp_path / "p"), cwd=tmp_path)  # fmt: skip
    assert bare.code == 2 and "need --autoscale" in bare.err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(min_size=1, max_size=60).filter(str.isprintable) | st.sampled_from(YAML_HOSTILE)
)
def test_any_bench_results_name_is_only_a_comment(name: str) -> None:
    """Whatever the name of the ``--bench-results`` file, the files hold the same objects:
    the name is in the headers' command line (shell-quoted) only."""
    if not name.isprintable():  # refused before it is read (exit 2)
        with pytest.raises(ConfigError, match="not printable text"):
            given_runs(name)
        return
    plain = _k8s("h100", Autoscale("keda", bench=bench_runs(PLANS["h100"]), results="r"))
    named = _k8s("h100", Autoscale("keda", bench=bench_runs(PLANS["h100"]), results=name))
    assert plain.keys() == named.keys()
    for file, text in named.items():
        if file.endswith(".yaml"):
            assert _documents(text) == _documents(plain[file]), file
    command = json.loads(named["manifest.aimc"])["inputs"]["command"]
    assert command.endswith(f"--bench-results {shlex.quote(name)}")
    assert shlex.split(command)[-1] == name


def _documents(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(text))
