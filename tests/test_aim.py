"""AMD AIM operator artifacts (issue 27): ``--emit aim``, the plan as ``aim.eai.amd.com``
resources.

Every object is validated against its CRD of aim-engine v0.2.1 (vendored in
``tests/data/aim/``, strict as the API server is: :mod:`tests.helpers.crd`), its CEL rules
evaluated by hand; ``AIM_ENGINE_ARGS`` against the AIM runtime's own schema and turned into
the argv the runtime builds from it; the files compared with golden files and decoded by the
real ``kubectl``. What the operator cannot run (NVIDIA, SGLang, several nodes, GPUs its base
image has no profile for) is refused, exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aimc.api import AIMConfigGenerator
from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.emit.aim import (
    AIM_API,
    AIM_BASE_IMAGE,
    AIM_GPU_COUNTS,
    AIM_GPU_MODELS,
    FILES,
    aim_resources,
    compile_aim,
    engine_args,
)
from aimc.emit.render import server_argv_groups
from aimc.plan.candidates import candidates
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.plan.resolve import plan_name
from tests.conftest import GOLDEN, ROOT
from tests.helpers.crd import cel_rules, check_metadata, crd_schema, validator
from tests.helpers.k8s import kubelet_expand, load_yaml
from tests.helpers.observability import validate_cluster_object
from tests.helpers.operators import AIM_CEL as CEL
from tests.helpers.operators import AIM_CRDS as CRDS
from tests.helpers.operators import apply_folder, validate_any

DATA = ROOT / "tests/data/aim"
ENGINE_SCHEMA = json.loads((DATA / "vllm_engine_schema.json").read_text())
CATALOG = Catalog.default()

#: (golden folder, model, GPUs, target, replicas)
CASES = [
    ("Qwen__Qwen3-32B--mi300x-8", "Qwen/Qwen3-32B", 8, "mi300x", 1),
    ("Qwen__Qwen3-8B--mi325x-replicas-2", "Qwen/Qwen3-8B", None, "mi325x", 2),
]


def _aim(
    model: str, gpus: int | None, target: str, replicas: int = 1, sets: tuple[str, ...] = ()
) -> tuple[Plan, dict[str, str]]:
    request = Request(model=model, gpus=gpus, sets=sets)
    plan = make_plan(CATALOG, request, target)
    return plan, compile_aim(plan, request, target, replicas)


def validate(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every object against its CRD (strict, CEL by hand, metadata); the objects by kind."""
    objects = {}
    for name in FILES:
        obj = load_yaml(files[name])
        if name.startswith("monitoring/"):
            validate_cluster_object(obj)
            continue
        assert obj["apiVersion"] == AIM_API
        validator(CRDS[obj["kind"]], "v1alpha1").validate(obj)
        check_metadata(obj)
        for path, rule, value in cel_rules(crd_schema(CRDS[obj["kind"]], "v1alpha1"), obj):
            assert CEL[rule](value), (path, rule)
        objects[obj["kind"]] = obj
    return objects


def _engine_env(template: dict[str, Any]) -> Any:
    """``AIM_ENGINE_ARGS`` as the runtime reads it (the kubelet's expansion, then JSON)."""
    (value,) = [e["value"] for e in template["spec"]["env"] if e["name"] == "AIM_ENGINE_ARGS"]
    return json.loads(kubelet_expand(value, {}))


def runtime_words(args: dict[str, Any]) -> list[str]:
    """The argv words the AIM runtime makes of engine arguments (a transcription of
    aim-build ``CommandGenerator._build_engine_args`` at 2be2cf8)."""
    words: list[str] = []
    for key, value in args.items():
        if value is None or value is True:
            words.append(f"--{key}")
        elif value is False:
            continue
        elif isinstance(value, list):
            words += [f"--{key}", *(str(v) for v in value)]
        elif isinstance(value, dict):
            words += [f"--{key}", json.dumps(value)]
        else:
            words += [f"--{key}", str(value)]
    return words


# --- golden files and schemas ---------------------------------------------------------------


@pytest.mark.parametrize(("folder", "model", "gpus", "target", "replicas"), CASES)
def test_aim_files_match_golden_and_validate(
    folder: str, model: str, gpus: int | None, target: str, replicas: int, golden: Any
) -> None:
    plan, files = _aim(model, gpus, target, replicas)
    assert sorted(files) == sorted([*FILES, "manifest.aimc"])
    for name, text in files.items():
        golden(f"aim/{folder}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / "aim" / folder))
        for p in (GOLDEN / "aim" / folder).rglob("*")
        if p.is_file()
    ) == sorted(files)
    objects = validate(files)
    service, template = objects["AIMService"], objects["AIMServiceTemplate"]
    # The service names its model and template (no auto-selection), which name each other.
    assert service["spec"]["model"] == {"name": plan.name}
    assert service["spec"]["template"] == {"name": plan.name}
    assert template["spec"]["modelName"] == objects["AIMModel"]["metadata"]["name"]
    assert service["spec"]["replicas"] == replicas
    gpu = template["spec"]["hardware"]["gpu"]
    assert gpu == {
        "requests": plan.total_gpus,
        "model": AIM_GPU_MODELS[target],
        "resourceName": "amd.com/gpu",
    }
    assert objects["AIMModel"]["spec"]["image"] == AIM_BASE_IMAGE


def test_the_crd_validator_is_strict() -> None:
    _, files = _aim("Qwen/Qwen3-32B", 8, "mi300x")
    template = load_yaml(files["aimservicetemplate.yaml"])
    check = validator(CRDS["AIMServiceTemplate"], "v1alpha1")
    check.validate(template)
    for mutate in (
        lambda t: t["spec"].update(gpus=8),
        lambda t: t["spec"]["modelSources"][0].update(modelId="no-slash"),
        lambda t: t["spec"]["modelSources"][0].update(sourceUri="http://x/y"),
        lambda t: t["spec"].update(type="tuned"),
        lambda t: t["spec"]["hardware"]["gpu"].update(requests=2**31),
        lambda t: t["spec"]["env"].append(dict(t["spec"]["env"][0])),  # list-map key twice
    ):
        bad = json.loads(json.dumps(template))
        mutate(bad)
        assert list(check.iter_errors(bad))


def test_every_shipped_plan_validates_or_is_refused() -> None:
    """Every shipped model on every GPU target: valid files with arguments the AIM runtime's
    schema takes, or a refusal (exit 2) on a target or engine the operator cannot run."""
    checked = 0
    pairs = sorted({(r.model_id, c.hardware) for r in CATALOG.recipes() for c in candidates(r)})
    for model, target in pairs:
        plan = make_plan(CATALOG, Request(model=model), target)
        try:
            files = compile_aim(plan, Request(model=model), target, 1)
        except ConfigError:
            assert (
                target not in AIM_GPU_MODELS
                or plan.backend != "vllm"
                or plan.nodes > 1
                or plan.total_gpus not in AIM_GPU_COUNTS
                or plan.launcher != "docker"
            ), (model, target)
            continue
        template = validate(files)["AIMServiceTemplate"]
        jsonschema.Draft7Validator(ENGINE_SCHEMA).validate(_engine_env(template))
        checked += 1
    assert checked >= 5


def test_the_gpu_models_and_counts_are_the_base_images_profiles() -> None:
    """:data:`AIM_GPU_MODELS` and :data:`AIM_GPU_COUNTS` are exactly what the base image's
    general vLLM profiles cover (aim-build ``profiles/general``, vendored listing)."""
    names = (DATA / "general-profiles.txt").read_text().split()
    covered = {(n.split("-")[1], int(n.split("-")[3][2:])) for n in names}
    assert covered == {(gpu, n) for gpu in AIM_GPU_MODELS for n in AIM_GPU_COUNTS}


# --- AIM_ENGINE_ARGS reaches vLLM as the plan's arguments ----------------------------------


@pytest.mark.parametrize(
    "sets",
    [(), ("enable-prefix-caching=false", "max-num-seqs=64"), ("enforce-eager=true",)],
)
def test_the_runtime_starts_vllm_with_the_plans_arguments(sets: tuple[str, ...]) -> None:
    """The runtime's argv from ``AIM_ENGINE_ARGS`` over its profile is the plan's own words
    for every argument (a negatable flag set false included: ``--no-NAME``); ``--model``,
    ``--port`` and ``--served-model-name`` are the runtime's, ``--host`` vLLM's default."""
    plan, files = _aim("Qwen/Qwen3-32B", 8, "mi300x", sets=sets)
    args = _engine_env(load_yaml(files["aimservicetemplate.yaml"]))
    assert args == engine_args(plan)
    jsonschema.Draft7Validator(ENGINE_SCHEMA).validate(args)
    ours = [
        g
        for g in server_argv_groups(plan)[1:]
        if g[0] not in ("--host", "--port", "--served-model-name")
    ]
    assert runtime_words(args) == [w for g in ours for w in g]
    # Over the MI300X 8-GPU profile: the plan's values win, the profile's other flags stay.
    profile = load_yaml((DATA / "vllm-mi300x-fp16-tp8-latency.yaml").read_text())["engine_args"]
    merged = {**profile, **args}
    assert all(merged[k] == v for k, v in args.items())
    assert merged["dtype"] == "bfloat16" and "no-enable-chunked-prefill" in merged


HOSTILE = [
    "a: b",
    "{x: 1}",
    "&a *a",
    "#",
    "'\"\\",
    "$(HF_TOKEN)",
    "$$(X)",
    "${HOME}",
    "a$",
    "$",
    "\u2028",
    "yes",
    "0x1A",
    "null",
    '"}',
    "\\u0000",
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["env-value", "chat-template"])
def test_hostile_values_read_back_as_planned(field: str, text: str) -> None:
    """YAML- and JSON-special text and ``$`` read back (YAML, the kubelet's expansion, the
    runtime's JSON) as exactly the planned value; nothing expands into a secret."""
    item = f"env.AIM_X={text}" if field == "env-value" else f"{field}={text}"
    try:
        plan, files = _aim("Qwen/Qwen3-32B", 8, "mi300x", sets=(item,))
    except ConfigError:
        return  # refused as every emitter refuses it
    template = validate(files)["AIMServiceTemplate"]
    assert _engine_env(template) == engine_args(plan)
    defined = {e["name"]: "EXPANDED" for e in template["spec"]["env"]}
    values = {
        e["name"]: kubelet_expand(e["value"], defined)
        for e in template["spec"]["env"]
        if "value" in e
    }
    assert all(values[n] == str(s.value) for n, s in plan.env.items())
    assert "EXPANDED" not in json.dumps(template)


@settings(max_examples=100, deadline=None)
@given(model=st.text(max_size=120))
@example(model="0/0")  # accepted: every object, monitoring ones included, is checked
def test_names_are_kubernetes_names_for_any_model(model: str) -> None:
    """Hostile and long model names: refused (the model id is not ``ORG/NAME``), or every
    object named alike, a DNS-1035 label the CRDs and the API server take."""
    base, _ = _aim("Qwen/Qwen3-32B", 8, "mi300x")
    plan = dataclasses.replace(
        base, name=plan_name(model), model_id=model, model_source=model, served_model_name=model
    )
    try:
        objects = aim_resources(plan)
    except ConfigError as e:
        assert "ORG/NAME" in str(e) or "flag" in str(e), e
        return
    for obj in objects.values():  # the operator's objects, and the monitoring ones
        validate_any(obj)
        check_metadata(obj)
        if obj["kind"] in CRDS:
            assert obj["metadata"]["name"] == plan.name
    assert (
        objects["aimservicetemplate.yaml"]["spec"]["modelSources"][0]["sourceUri"]
        == f"hf://{model}"
    )


# --- refusals, the CLI, kubectl, the API -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Qwen/Qwen3-8B", "--target", "h100"], "not h100"),
        (
            ["meta-llama/Llama-3.1-405B-Instruct", "--target", "h100", "--precision", "bf16"],
            "not h100",
        ),
        (["Qwen/Qwen3-8B", "--target", "mi355x"], "not mi355x"),
        (["Qwen/Qwen3-8B", "--target", "mi300x", "--backend", "sglang"], "vLLM only"),
        (["Qwen/Qwen3-8B", "--target", "mi300x", "--port", "9000"], "port 8000"),
        (["Qwen/Qwen3-8B", "--target", "mi300x", "--set", "served_model_name=x"], "its id"),
        (["Qwen/Qwen3-8B", "--target", "mi300x", "--launcher", "process"], "in a container"),
    ],
)
def test_refused_plans_are_exit_2(cli: Any, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("compile", *args, "--emit", "aim", "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert message in result.err and "--emit aim" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "out").exists()


def test_several_nodes_and_a_pinned_revision_are_refused() -> None:
    base, _ = _aim("Qwen/Qwen3-32B", 8, "mi300x")
    with pytest.raises(ConfigError, match="one node"):
        aim_resources(dataclasses.replace(base, nodes=2))
    with pytest.raises(ConfigError, match="default revision"):
        aim_resources(dataclasses.replace(base, model_revision="abc123"))
    with pytest.raises(ConfigError, match="1, 2, 4 or 8"):
        aim_resources(dataclasses.replace(base, gpus=3))


@pytest.mark.parametrize("recursive", [False, True], ids=["flat", "recursive"])
def test_kubectl_applies_an_aim_folder(cli: Any, tmp_path: Path, recursive: bool) -> None:
    out = tmp_path / "aim"
    result = cli(
        "compile", "Qwen/Qwen3-32B", "8", "--target", "mi300x", "--emit", "aim", "-o", str(out)
    )
    assert result.code == 0, result.err
    apply_folder(out, tmp_path, recursive)


def test_check_drift_and_the_api(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "aim"
    args = ["compile", "Qwen/Qwen3-8B", "--target", "mi300x", "--emit", "aim", "-o", str(out)]
    assert cli(*args).code == 0
    assert cli(*args, "--check").code == 0
    manifest = json.loads((out / "manifest.aimc").read_text())
    assert manifest["inputs"]["kubernetes"] == {"emit": "aim", "replicas": 1}
    (out / "aimservice.yaml").write_text("# edited\n")
    assert cli(*args, "--check").code == 1
    generator = AIMConfigGenerator(target="mi300x")
    recipe = load_yaml((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    config = generator.generate_config(recipe, 1, emit="aim")
    assert config is not None and sorted(config["files"]) == sorted([*FILES, "manifest.aimc"])
    assert AIMConfigGenerator(target="h100").generate_config(recipe, 1, emit="aim") is None
