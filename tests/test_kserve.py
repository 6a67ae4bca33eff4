"""KServe artifacts (issue 27): ``--emit kserve``, an ``LLMInferenceService`` of the plan.

Every object is validated against the CRD of KServe v0.20.0 (vendored in
``tests/data/kserve/``, strict as the API server is: :mod:`tests.helpers.crd`), its CEL rules
evaluated by hand, its pods against the Kubernetes schemas; the files are compared with golden
files (AMD and NVIDIA, one node and two, vLLM and SGLang), decoded by the real ``kubectl``,
and merged with KServe's own preset as its controller merges them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.api import AIMConfigGenerator
from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.emit.k8s import resources
from aimc.emit.k8s_lws import lws_name_limit
from aimc.emit.kserve import (
    FILES,
    KSERVE_API,
    LWS_SUFFIX,
    MULTINODE_FILES,
    PIPELINE_PRESET,
    SHARED_FILES,
    compile_kserve,
    kserve_resources,
)
from aimc.emit.render import container_args
from aimc.plan.candidates import candidates
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.plan.resolve import plan_name
from tests.conftest import GOLDEN, ROOT
from tests.helpers.crd import cel_rules, check_metadata, crd_schema, validator
from tests.helpers.k8s import K8S_VERSION, YAML_HOSTILE, kubelet_expand, load_yaml
from tests.helpers.observability import validate_cluster_object
from tests.helpers.operators import KSERVE_CEL as CEL
from tests.helpers.operators import KSERVE_CRDS as CRDS
from tests.helpers.operators import apply_folder, strategic_merge

DATA = ROOT / "tests/data/kserve"
RECIPES = DATA / "recipes"
CATALOG = Catalog.default()

#: (golden folder, model, GPUs, target, replicas, request fields, test recipes)
CASES: list[tuple[str, str, int | None, str, int, dict[str, Any], bool]] = [
    ("Qwen__Qwen3-32B--mi300x-8", "Qwen/Qwen3-32B", 8, "mi300x", 1, {}, False),
    ("Qwen__Qwen3-8B--h100", "Qwen/Qwen3-8B", None, "h100", 1, {}, False),
    ("Qwen__Qwen3-8B--h100-sglang", "Qwen/Qwen3-8B", None, "h100", 1, {"backend": "sglang"}, False),
    ("Qwen__Qwen3-8B--h100-replicas-3", "Qwen/Qwen3-8B", None, "h100", 3, {}, False),
    (
        "meta-llama__Llama-3.1-405B-Instruct--h100-bf16-2-nodes",
        "meta-llama/Llama-3.1-405B-Instruct",
        None,
        "h100",
        1,
        {"precision": "bf16"},
        False,
    ),
    (
        "meta-llama__Llama-3.1-405B-Instruct--mi300x-bf16-2-nodes",
        "meta-llama/Llama-3.1-405B-Instruct",
        None,
        "mi300x",
        1,
        {"precision": "bf16", "nodes": 2},
        True,
    ),
]


def _kserve(
    model: str,
    gpus: int | None,
    target: str,
    replicas: int = 1,
    fields: dict[str, Any] | None = None,
    test_recipes: bool = False,
) -> tuple[Plan, dict[str, str]]:
    request = Request(model=model, gpus=gpus, **(fields or {}))
    if not test_recipes:
        plan = make_plan(CATALOG, request, target)
        return plan, compile_kserve(plan, request, target, replicas)
    # the test recipes by a path relative to the checkout, as the goldens name them (the
    # same in a clone anywhere)
    with contextlib.chdir(ROOT):
        plan = make_plan(Catalog.default([RECIPES.relative_to(ROOT)]), request, target)
        return plan, compile_kserve(plan, request, target, replicas)


def _pod(pod: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod"}, "spec": pod}


def validate(files: dict[str, str]) -> dict[str, Any]:
    """Every object of ``files`` checked: the KServe ones against their CRD (strict, CEL by
    hand, metadata) and their pods against the Kubernetes schemas, the others against the
    Kubernetes schemas. The LLMInferenceService, as read back."""
    service: dict[str, Any] = {}
    for name, text in files.items():
        if not name.endswith(".yaml"):
            continue
        obj = load_yaml(text)
        if obj["apiVersion"] != KSERVE_API:
            validate_cluster_object(obj)
            continue
        validator(CRDS[obj["kind"]], "v1alpha1").validate(obj)
        check_metadata(obj)
        for path, rule, value in cel_rules(crd_schema(CRDS[obj["kind"]], "v1alpha1"), obj):
            assert CEL[rule](value), (path, rule)
        for pod in ("template", "worker"):
            if pod in obj["spec"]:
                kubernetes_validate.validate(_pod(obj["spec"][pod]), K8S_VERSION, strict=True)
        if obj["kind"] == "LLMInferenceService":
            service = obj
    return service


# --- golden files and schemas ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "model", "gpus", "target", "replicas", "fields", "test_recipes"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_kserve_files_match_golden_and_validate(
    folder: str,
    model: str,
    gpus: int | None,
    target: str,
    replicas: int,
    fields: dict[str, Any],
    test_recipes: bool,
    golden: Any,
) -> None:
    plan, files = _kserve(model, gpus, target, replicas, fields, test_recipes)
    expected = MULTINODE_FILES if plan.nodes > 1 else SHARED_FILES if replicas > 1 else FILES
    assert sorted(files) == sorted([*expected, "manifest.aimc"])
    for name, text in files.items():
        golden(f"kserve/{folder}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / "kserve" / folder))
        for p in (GOLDEN / "kserve" / folder).rglob("*")
        if p.is_file()
    ) == sorted(files)
    service = validate(files)
    assert service["spec"]["replicas"] == replicas
    assert ("worker" in service["spec"]) == (plan.nodes > 1)


def test_every_shipped_plan_validates_or_is_refused_for_its_reason() -> None:
    """Every shipped model on every GPU target: valid files, or (SGLang across nodes) the
    one refusal KServe's multi-node validation leaves."""
    checked = refused = 0
    pairs = sorted({(r.model_id, c.hardware) for r in CATALOG.recipes() for c in candidates(r)})
    for model, target in pairs:
        plan = make_plan(CATALOG, Request(model=model), target)
        if plan.launcher != "docker" or plan.local_model:
            continue
        try:
            files = compile_kserve(plan, Request(model=model), target, 2)
        except ConfigError as e:
            assert plan.nodes > 1 and plan.backend == "sglang", e
            refused += 1
            continue
        validate(files)
        checked += 1
    assert checked >= len(pairs) - 5 and refused >= 1


def test_the_crd_validator_is_strict() -> None:
    """An unknown field anywhere, a wrong type, a bad enum or a duplicate list-map key is an
    error, so a pass means the API server would take the object."""
    _, files = _kserve("Qwen/Qwen3-8B", None, "h100")
    good = load_yaml(files["llminferenceservice.yaml"])
    check = validator(CRDS["LLMInferenceService"], "v1alpha1")
    check.validate(good)
    bad = [
        ("spec", "replica", 1),
        ("spec.template.containers.0", "privilegd", True),
        ("spec", "replicas", "one"),
        ("spec.model", "criticality", "Urgent"),
        ("spec.parallelism", "tensor", 0),
    ]
    for path, field, value in bad:
        obj = json.loads(json.dumps(good))
        node = obj
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node[field] = value
        assert list(check.iter_errors(obj)), (path, field)
    obj = json.loads(json.dumps(good))
    obj["spec"]["template"]["containers"][0]["ports"] *= 2  # list-map keyed by port
    assert list(check.iter_errors(obj))


# --- the pod is --emit k8s's, as KServe runs it -------------------------------------------


@pytest.mark.parametrize("backend", ["vllm", "sglang"])
def test_the_pod_is_the_k8s_pod_with_its_command(backend: str) -> None:
    """The container ``main``: --emit k8s's server, its words split into ``command`` (the
    image's entrypoint for vLLM, the plan's command for SGLang) and ``args``."""
    plan, files = _kserve("Qwen/Qwen3-8B", None, "h100", fields={"backend": backend})
    pod = load_yaml(files["llminferenceservice.yaml"])["spec"]["template"]
    k8s = resources(plan)["deployment.yaml"]["spec"]["template"]["spec"]
    (main,), (server,) = pod["containers"], k8s["containers"]
    entrypoint = ["vllm", "serve"] if backend == "vllm" else []
    assert main["command"] + main["args"] == entrypoint + server["args"]
    assert [kubelet_expand(w, {}) for w in main["command"] + main["args"]] == entrypoint + (
        container_args(plan)
    )
    same = ("image", "env", "ports", "resources")
    assert {k: main[k] for k in same} == {k: server[k] for k in same}
    assert main["securityContext"] == {**server["securityContext"], "runAsNonRoot": False}
    assert pod["initContainers"][0]["name"] == "download"


def _preset() -> dict[str, Any]:
    preset = YAML(typ="safe", pure=True).load((DATA / "config-llm-template.yaml").read_text())
    spec: dict[str, Any] = preset["spec"]
    return spec


@pytest.mark.parametrize("target", ["h100", "mi300x"])
def test_the_pod_survives_kservess_single_node_preset(target: str) -> None:
    """Merged under KServe v0.20's preset as the controller merges it (the service last):
    the plan's image, command, arguments and cache; probes over HTTP; not the preset's
    runAsNonRoot; no volume with two sources; model-based routing off."""
    _, files = _kserve("Qwen/Qwen3-32B", 8 if target == "mi300x" else 2, target)
    ours = load_yaml(files["llminferenceservice.yaml"])["spec"]
    merged = strategic_merge(_preset(), ours)
    pod = merged["template"]
    (main,) = pod["containers"]
    for field in ("image", "command", "args", "resources"):
        assert main[field] == ours["template"]["containers"][0][field]
    assert main["securityContext"]["runAsNonRoot"] is False
    assert {
        main[p]["httpGet"]["scheme"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    } == {"HTTP"}
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["HF_HUB_CACHE"] == "/workspace/model-cache" and env["HF_HUB_OFFLINE"] == "1"
    sources = {"emptyDir", "persistentVolumeClaim", "secret"}
    for volume in pod["volumes"]:
        assert len(sources & set(volume)) == 1, volume
    names = {v["name"] for v in pod["volumes"]}
    for container in [*pod["initContainers"], main]:
        assert {m["name"] for m in container["volumeMounts"]} <= names
    assert merged["annotations"]["serving.kserve.io/model-based-routing-enabled"] == "false"
    cache = [m for m in main["volumeMounts"] if m["mountPath"] == "/workspace/model-cache"]
    assert next(v for v in pod["volumes"] if v["name"] == cache[0]["name"])["persistentVolumeClaim"]


def test_a_multinode_plan_is_a_worker_and_pipeline_parallelism() -> None:
    plan, files = _kserve(
        "meta-llama/Llama-3.1-405B-Instruct", None, "h100", fields={"precision": "bf16"}
    )
    spec = load_yaml(files["llminferenceservice.yaml"])["spec"]
    assert spec["parallelism"] == {"tensor": 8, "pipeline": 2}
    lws = resources(plan)["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
    worker = lws["workerTemplate"]["spec"]["containers"][0]
    assert spec["worker"]["containers"][0]["args"] == worker["args"]
    assert "$(LWS_WORKER_INDEX)" in worker["args"] and "--headless" in worker["args"]
    assert "startupProbe" not in spec["worker"]["containers"][0]
    preset = load_yaml(files["llminferenceserviceconfig.yaml"])
    assert preset["metadata"]["name"] == PIPELINE_PRESET and preset["spec"] == {}


@settings(max_examples=100, deadline=None)
@given(model=st.text(max_size=120), replicas=st.integers(1, 1200), nodes=st.integers(2, 16))
def test_the_controllers_names_stay_valid_for_any_model(
    model: str, replicas: int, nodes: int
) -> None:
    """Hostile and long model names: the service is a DNS-1035 label and the LeaderWorkerSet
    KServe names after it (``NAME-kserve-mn``) is within the limits of its controller."""
    base, _ = _kserve(
        "meta-llama/Llama-3.1-405B-Instruct", None, "h100", fields={"precision": "bf16"}
    )
    plan = dataclasses.replace(base, name=plan_name(f"org/{model}"), nodes=nodes)
    service = kserve_resources(plan, replicas)["llminferenceservice.yaml"]
    name = service["metadata"]["name"]
    check_metadata(service)
    assert len(name) + len(LWS_SUFFIX) <= lws_name_limit(plan, replicas)
    validator(CRDS["LLMInferenceService"], "v1alpha1").validate(service)


@pytest.mark.parametrize("text", YAML_HOSTILE)
@pytest.mark.parametrize("field", ["served_model_name", "env-value", "chat-template"])
def test_hostile_values_read_back_as_planned(field: str, text: str) -> None:
    """YAML-special text and ``$`` read back (YAML, then the kubelet's expansion) as exactly
    the planned value, in the model's name, the arguments and the environment."""
    item = f"env.AIM_X={text}" if field == "env-value" else f"{field}={text}"
    try:
        plan, files = _kserve("Qwen/Qwen3-8B", None, "h100", fields={"sets": (item,)})
    except ConfigError:
        return  # refused as --emit k8s refuses it
    spec = validate(files)["spec"]
    (main,) = spec["template"]["containers"]
    defined = {e["name"]: "EXPANDED" for e in main["env"]}
    words = [kubelet_expand(w, defined) for w in main["command"] + main["args"]]
    assert words == ["vllm", "serve", *container_args(plan)]
    values = {e["name"]: kubelet_expand(e["value"], defined) for e in main["env"] if "value" in e}
    assert all(values[n] == str(s.value) for n, s in plan.env.items())
    assert spec["model"]["name"] == plan.served_model_name
    assert "EXPANDED" not in json.dumps(spec)


@settings(max_examples=100, deadline=None)
@given(model=st.text(max_size=80))
def test_the_model_uri_holds_any_repo_id_as_one_uri(model: str) -> None:
    """Whatever the model id: refused as the server's argument is (a word read as a flag),
    or ``hf://`` and the id percent-encoded (``/`` kept): one URI, nothing that ends it."""
    base, _ = _kserve("Qwen/Qwen3-8B", None, "h100")
    plan = dataclasses.replace(base, model_id=model, model_source=model)
    try:
        service = kserve_resources(plan)["llminferenceservice.yaml"]
    except ConfigError:
        assert model.startswith("-") or "\0" in model
        return
    uri = service["spec"]["model"]["uri"]
    assert uri == "hf://" + quote(model, safe="/")
    assert re.fullmatch(r"hf://[A-Za-z0-9%/._~-]*", uri)
    assert unquote(uri[len("hf://") :]) == model
    validator(CRDS["LLMInferenceService"], "v1alpha1").validate(service)


# --- refusals, the CLI, kubectl, the API -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deepseek-ai/DeepSeek-R1", "--target", "h100"], "one tensor-parallel group"),
        (["Qwen/Qwen3-8B", "--target", "h100", "--port", "9000"], "port 8000"),
        (["Qwen/Qwen3-8B", "--target", "h100", "--launcher", "process"], "in a container"),
        (["Qwen/Qwen3-8B", "--target", "h100", "--set", "host=127.0.0.1"], "cannot reach"),
    ],
)
def test_refused_plans_are_exit_2(cli: Any, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("compile", *args, "--emit", "kserve", "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert message in result.err and "--emit kserve" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "out").exists()


FOLDERS = [
    ("single", ["Qwen/Qwen3-32B", "8", "--target", "mi300x"]),
    ("replicated", ["Qwen/Qwen3-8B", "--target", "h100", "--replicas", "3"]),
    (
        "multinode",
        ["meta-llama/Llama-3.1-405B-Instruct", "--target", "h100", "--precision", "bf16"],
    ),
    (
        "multinode-amd",
        [
            "meta-llama/Llama-3.1-405B-Instruct",
            "--target",
            "mi300x",
            "--precision",
            "bf16",
            "--nodes",
            "2",
            "--recipes",
            str(RECIPES),
        ],
    ),
]


@pytest.mark.parametrize(("kind", "args"), FOLDERS, ids=[f[0] for f in FOLDERS])
@pytest.mark.parametrize("recursive", [False, True], ids=["flat", "recursive"])
def test_kubectl_applies_every_kserve_folder(
    cli: Any, tmp_path: Path, kind: str, args: list[str], recursive: bool
) -> None:
    out = tmp_path / "kserve"
    result = cli("compile", *args, "--emit", "kserve", "-o", str(out))
    assert result.code == 0, result.err
    apply_folder(out, tmp_path, recursive)


def test_check_and_drift_hold_for_a_kserve_folder(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "kserve"
    args = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "kserve", "-o", str(out)]
    assert cli(*args).code == 0
    assert cli(*args, "--check").code == 0
    manifest = json.loads((out / "manifest.aimc").read_text())
    assert manifest["inputs"]["kubernetes"] == {"emit": "kserve", "replicas": 1}
    assert set(manifest["artifacts"]) == set(FILES)
    (out / "pvc.yaml").write_text((out / "pvc.yaml").read_text() + "# edited\n")
    assert cli(*args, "--check").code == 1


def test_show_config_and_the_api_give_the_same_service(cli: Any, tmp_path: Path) -> None:
    _, files = _kserve("Qwen/Qwen3-8B", 2, "h100")
    shown = cli("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "kserve")
    assert shown.code == 0, shown.err
    assert 'kind: "LLMInferenceService"' in shown.out
    recipe = YAML(typ="safe", pure=True).load(
        (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    )
    config = AIMConfigGenerator(target="h100").generate_config(recipe, 2, emit="kserve")
    assert config is not None
    assert sorted(config["files"]) == sorted(files)
    assert load_yaml(config["files"]["llminferenceservice.yaml"]) == load_yaml(
        files["llminferenceservice.yaml"]
    )
