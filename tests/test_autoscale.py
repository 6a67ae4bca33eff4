"""``--autoscale keda|hpa`` on the three cluster outputs (``--emit k8s``, ``kserve``, ``aim``).

Golden folders for an AMD and an NVIDIA model, single- and multi-node; every object of each
checked against its schema (KEDA's and prometheus-operator's CRDs, KServe's, the AIM
operator's, the LeaderWorkerSet CRD, the Kubernetes schemas: :func:`validate_any`); what
each autoscaler names (the workload, the bounds, the engine's metrics); the refusals, one
line and exit 2; hostile ``--prometheus-url`` and replica bounds.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.emit.aim import compile_aim
from aimc.emit.autoscale import (
    DEFAULT_PROMETHEUS,
    KV_TARGET,
    QUEUE_TARGET,
    SIGNALS,
    Autoscale,
    kserve_scaling,
    scaled_object,
)
from aimc.emit.k8s import compile_k8s
from aimc.emit.kserve import compile_kserve
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import GOLDEN, ROOT
from tests.helpers.k8s import load_yaml
from tests.helpers.operators import KSERVE_CEL, validate_any

CATALOG = Catalog.default()
KSERVE_RECIPES = ROOT / "tests/data/kserve/recipes"
COMPILERS: dict[str, Callable[..., dict[str, str]]] = {
    "k8s": compile_k8s,
    "kserve": compile_kserve,
    "aim": compile_aim,
}

#: (emit, golden folder, model, GPUs, target, request fields, autoscale, test recipes)
CASES: list[tuple[str, str, str, int | None, str, dict[str, Any], Autoscale, bool]] = [
    (
        "k8s",
        "Qwen__Qwen3-32B--mi300x-8-keda-zero",
        "Qwen/Qwen3-32B",
        8,
        "mi300x",
        {},
        Autoscale("keda", 0, 6),
        False,
    ),
    ("k8s", "Qwen__Qwen3-8B--h100-hpa", "Qwen/Qwen3-8B", None, "h100", {}, Autoscale("hpa"), False),
    (
        "k8s",
        "deepseek-ai__DeepSeek-R1--h100-sglang-2-nodes-keda",
        "deepseek-ai/DeepSeek-R1",
        None,
        "h100",
        {"nodes": 2},
        Autoscale("keda", 1, 3, "http://prometheus.obs.svc.cluster.local:9090/prom"),
        False,
    ),
    (
        "kserve",
        "Qwen__Qwen3-8B--h100-keda",
        "Qwen/Qwen3-8B",
        None,
        "h100",
        {},
        Autoscale("keda", 2, 8),
        False,
    ),
    (
        "kserve",
        "Qwen__Qwen3-32B--mi300x-8-hpa",
        "Qwen/Qwen3-32B",
        8,
        "mi300x",
        {},
        Autoscale("hpa"),
        False,
    ),
    (
        "kserve",
        "meta-llama__Llama-3.1-405B-Instruct--mi300x-bf16-2-nodes-keda",
        "meta-llama/Llama-3.1-405B-Instruct",
        None,
        "mi300x",
        {"precision": "bf16", "nodes": 2},
        Autoscale("keda"),
        True,
    ),
    (
        "aim",
        "Qwen__Qwen3-8B--mi325x-keda",
        "Qwen/Qwen3-8B",
        None,
        "mi325x",
        {},
        Autoscale("keda", 2, 5),
        False,
    ),
]


def _compile(
    emit: str,
    model: str,
    gpus: int | None,
    target: str,
    fields: dict[str, Any],
    scale: Autoscale,
    test_recipes: bool = False,
) -> tuple[Plan, dict[str, str]]:
    request = Request(model=model, gpus=gpus, **fields)
    if not test_recipes:
        plan = make_plan(CATALOG, request, target)
        return plan, COMPILERS[emit](plan, request, target, 1, scale)
    # the test recipes by a path relative to the checkout, as the goldens name them
    with contextlib.chdir(ROOT):
        plan = make_plan(Catalog.default([KSERVE_RECIPES.relative_to(ROOT)]), request, target)
        return plan, COMPILERS[emit](plan, request, target, 1, scale)


def _objects(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every object of ``files`` checked against its schema, by kind."""
    objects = {}
    for name, text in files.items():
        if name.endswith(".yaml"):
            obj = load_yaml(text)
            validate_any(obj)
            objects[obj["kind"]] = obj
    return objects


def _check_k8s(plan: Plan, objects: dict[str, dict[str, Any]], scale: Autoscale) -> None:
    workload = objects.get("Deployment") or objects["LeaderWorkerSet"]
    ref = {
        "apiVersion": workload["apiVersion"],
        "kind": workload["kind"],
        "name": workload["metadata"]["name"],
    }
    queue, kv = SIGNALS[plan.backend]["queue"], SIGNALS[plan.backend]["kv"]
    # The series the PodMonitor writes carry the pod label the queries select on.
    monitor = objects["PodMonitor"]["spec"]
    assert "app.kubernetes.io/name" in monitor["podTargetLabels"]
    selector = monitor["selector"]["matchLabels"]
    if workload["kind"] == "Deployment":
        pod = workload["spec"]["template"]
        assert selector.items() <= pod["metadata"]["labels"].items()
    else:
        # The labels the LeaderWorkerSet controller puts on its pods: the leaders serve the API.
        pod = workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
        assert selector["leaderworkerset.sigs.k8s.io/name"] == workload["metadata"]["name"]
        assert selector["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == plan.name
    if scale.kind == "keda":
        spec = objects["ScaledObject"]["spec"]
        assert "HorizontalPodAutoscaler" not in objects
        assert spec["scaleTargetRef"] == ref
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
            scale.min_replicas,
            scale.max_replicas,
        )
        queries = {t["name"]: t["metadata"] for t in spec["triggers"]}
        assert queries["queue"]["serverAddress"] == scale.prometheus
        assert f'{queue}{{app_kubernetes_io_name="{plan.name}"}}' in queries["queue"]["query"]
        assert f'{kv}{{app_kubernetes_io_name="{plan.name}"}}' in queries["kv-cache"]["query"]
        assert queries["queue"]["threshold"] == str(QUEUE_TARGET)
        assert queries["kv-cache"]["threshold"] == str(KV_TARGET)
    else:
        spec = objects["HorizontalPodAutoscaler"]["spec"]
        assert "ScaledObject" not in objects
        assert spec["scaleTargetRef"] == ref
        assert (spec["minReplicas"], spec["maxReplicas"]) == (1, scale.max_replicas)
        assert [m["pods"]["metric"]["name"] for m in spec["metrics"]] == [queue, kv]


@pytest.mark.parametrize(
    ("emit", "folder", "model", "gpus", "target", "fields", "scale", "test_recipes"),
    CASES,
    ids=[c[1] for c in CASES],
)
def test_autoscaled_folders_match_golden_and_validate(
    emit: str,
    folder: str,
    model: str,
    gpus: int | None,
    target: str,
    fields: dict[str, Any],
    scale: Autoscale,
    test_recipes: bool,
    golden: Any,
) -> None:
    plan, files = _compile(emit, model, gpus, target, fields, scale, test_recipes)
    for name, text in files.items():
        golden(f"{emit}/{folder}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / emit / folder))
        for p in (GOLDEN / emit / folder).rglob("*")
        if p.is_file()
    ) == sorted(files)
    objects = _objects(files)
    assert "monitoring/podmonitor.yaml" in files and "monitoring/dashboard.yaml" in files
    assert f"--autoscale {scale.kind}" in files["manifest.aimc"]
    if emit == "k8s":
        _check_k8s(plan, objects, scale)
    elif emit == "kserve":
        spec = objects["LLMInferenceService"]["spec"]
        # KServe's CEL rule: replicas or scaling, never both.
        assert "replicas" not in spec
        assert (spec["scaling"]["minReplicas"], spec["scaling"]["maxReplicas"]) == (
            scale.min_replicas,
            scale.max_replicas,
        )
        assert list(spec["scaling"]["wva"]) == [scale.kind]
    else:
        spec = objects["AIMService"]["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (
            scale.min_replicas,
            scale.max_replicas,
        )
        (metric,) = spec["autoScaling"]["metrics"]
        assert metric["podmetric"]["metric"]["metricNames"] == [SIGNALS[plan.backend]["queue"]]
        # The operator's InferenceService is named {service}-{hash}: its pods are found by
        # the aim.eai.amd.com/service label it sets (and KServe copies onto them).
        monitor = objects["PodMonitor"]["spec"]
        assert monitor["selector"]["matchLabels"] == {"aim.eai.amd.com/service": plan.name}
        assert monitor["podTargetLabels"] == ["aim.eai.amd.com/service"]
        (board,) = objects["ConfigMap"]["data"].values()
        exprs = [t["expr"] for p in json.loads(board)["panels"] for t in p["targets"]]
        assert all(f'{{aim_eai_amd_com_service="{plan.name}"}}' in e for e in exprs)
    assert (plan.nodes > 1) == ("2-nodes" in folder)


# --- the refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--emit", "k8s", "--autoscale", "hpa", "--min-replicas", "0"], "needs --autoscale keda"),
        (
            ["--emit", "k8s", "--autoscale", "keda", "--min-replicas", "5", "--max-replicas", "2"],
            "--min-replicas 5 is above --max-replicas 2",
        ),
        (["--emit", "k8s", "--max-replicas", "3"], "need --autoscale"),
        (["--autoscale", "keda"], "--autoscale needs --emit"),
        (["--emit", "aim", "--autoscale", "hpa"], "autoscales through KEDA"),
        (["--emit", "kserve", "--autoscale", "keda", "--min-replicas", "0"], "not 0"),
        (
            ["--emit", "k8s", "--autoscale", "keda", "--prometheus-url", "http://x\nkind: Secret"],
            "is not an http(s)://HOST[:PORT][/PATH] URL",
        ),
        (["--emit", "k8s", "--autoscale", "keda", "--replicas", "2"], "--replicas is a fixed"),
    ],
)
def test_autoscale_refusals_are_one_line_exit_2(
    cli: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    target = "mi325x" if "aim" in args else "h100"
    state = {"AIMC_STATE_DIR": str(tmp_path / "state")}  # no bench results of this machine
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", target, *args, "-o", str(tmp_path / "o"), env=state
    )
    assert result.code == 2, result.err
    assert message in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "o").exists()


def test_compile_writes_the_scaled_object_the_options_describe(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "o"
    url = "https://prom.example.internal:8443/api"
    result = cli(
        "compile",
        "Qwen/Qwen3-8B",
        "--target",
        "h100",
        "--emit",
        "k8s",
        "--autoscale",
        "keda",
        "--min-replicas",
        "0",
        "--max-replicas",
        "7",
        "--prometheus-url",
        url,
        "-o",
        str(out),
        env={"AIMC_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.code == 0, result.err
    spec = load_yaml((out / "scaledobject.yaml").read_text())["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 7)
    assert {t["metadata"]["serverAddress"] for t in spec["triggers"]} == {url}
    assert not (out / "hpa.yaml").exists()


# --- hostile input ----------------------------------------------------------------------------

PLAN = make_plan(CATALOG, Request(model="Qwen/Qwen3-8B"), "h100")
LABELS = {"app.kubernetes.io/name": PLAN.name}


@settings(max_examples=300, deadline=None)
@given(
    url=st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda scheme, rest: f"{scheme}://{rest}",
            st.sampled_from(["http", "https", "ftp", "HTTP"]),
            st.text(max_size=60),
        ),
    )
)
def test_a_prometheus_url_is_refused_or_written_as_given(url: str) -> None:
    """Any ``--prometheus-url``: refused in one line (exit 2's ConfigError), or written into
    the ScaledObject exactly as given and one line in the header's command line (nothing
    that ends the comment or the YAML scalar gets through)."""
    scale = Autoscale("keda", 1, 4, url)
    try:
        scale.check()
    except ConfigError as err:
        assert "\n" not in str(err) and "\r" not in str(err)
        return
    assert url.startswith(("http://", "https://"))
    assert all(c.isascii() and (c.isalnum() or c in ":/.-_~") for c in url)
    assert len(scale.words().splitlines()) == 1
    text = YAML(typ="safe", pure=True)
    obj = scaled_object(PLAN, scale, "Deployment", PLAN.name, LABELS)
    stream = io.StringIO()
    text.dump(obj, stream)
    back = text.load(stream.getvalue())
    assert {t["metadata"]["serverAddress"] for t in back["spec"]["triggers"]} == {url}


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["keda", "hpa", "KEDA", "", "keda\n"]),
    low=st.integers(-(2**40), 2**40),
    high=st.integers(-(2**40), 2**40),
)
def test_replica_bounds_are_refused_or_kept(kind: str, low: int, high: int) -> None:
    """Any bounds: refused in one line, or 0 <= min <= max with scale to zero KEDA's only."""
    scale = Autoscale(kind, low, high, DEFAULT_PROMETHEUS)
    try:
        scale.check()
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert kind in ("keda", "hpa")
    assert 0 <= low <= high
    assert low > 0 or kind == "keda"


@pytest.mark.parametrize("value", ["-1", "1001", "two", "1e3", ""])
def test_replica_options_take_whole_counts_only(cli: Any, tmp_path: Path, value: str) -> None:
    for option in ("--min-replicas", "--max-replicas"):
        result = cli(
            "compile",
            "Qwen/Qwen3-8B",
            "--target",
            "h100",
            "--emit",
            "k8s",
            "--autoscale",
            "keda",
            option,
            value,
            "-o",
            str(tmp_path / "o"),
            env={"AIMC_STATE_DIR": str(tmp_path / "state")},
        )
        assert result.code == 2, (option, value, result.err)
        assert "Traceback" not in result.err
        assert not (tmp_path / "o").exists()


def test_kserve_keda_actuator_sets_no_advanced_block() -> None:
    """KServe's CRD rule on ``wva.keda.advanced`` reads ``advanced.scalingModifiers.formula``
    unguarded: CEL fails it whenever ``advanced`` is set (scalingModifiers may not be), so the
    KEDA actuator carries no ``advanced`` (the scale-down window aimc gives the HPA)."""
    rule = next(r for r in KSERVE_CEL if r.startswith("!has(self.advanced) || (size("))
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600}}
    assert not KSERVE_CEL[rule](
        {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}}}
    )
    assert KSERVE_CEL[rule](kserve_scaling(Autoscale("keda"))["wva"]["keda"])
