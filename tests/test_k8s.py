"""Kubernetes artifacts of a single-node plan: ``--emit k8s``.

Every manifest is validated with ``kubernetes-validate`` (the Kubernetes OpenAPI schemas it
ships, strict: unknown fields are errors), compared with golden files in
``tests/golden/k8s/``, and checked against ``launch.sh``'s docker path for the same plan.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.k8s import FILES, SHARED_FILES, compile_k8s, resources
from aimc.emit.k8s_pod import DEFAULT_SHM, shm_size, startup_budget_s
from aimc.emit.render import container_args
from aimc.plan.candidates import candidates
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import GOLDEN
from tests.helpers.k8s import K8S_VERSION, YAML_HOSTILE, kubelet_expand, load_yaml
from tests.helpers.multinode import validate_multinode
from tests.helpers.observability import validate_cluster_object

CATALOG = Catalog.default()
TOKEN = "hf_" + "Zk3p" * 9

#: (golden folder, model, GPU count, target, replicas)
CASES = [
    ("Qwen__Qwen3-32B--mi300x-8", "Qwen/Qwen3-32B", 8, "mi300x", 1),
    ("Qwen__Qwen3-8B--h100", "Qwen/Qwen3-8B", None, "h100", 1),
    ("Qwen__Qwen3-8B--h100-replicas-3", "Qwen/Qwen3-8B", None, "h100", 3),
]


def _plan(model: str, gpus: int | None, target: str, sets: tuple[str, ...] = ()) -> Plan:
    return make_plan(CATALOG, Request(model=model, gpus=gpus, sets=sets), target)


def _k8s(
    model: str, gpus: int | None, target: str, replicas: int = 1, sets: tuple[str, ...] = ()
) -> tuple[Plan, dict[str, str]]:
    request = Request(model=model, gpus=gpus, sets=sets)
    plan = make_plan(CATALOG, request, target)
    return plan, compile_k8s(plan, request, target, replicas)


def _container(files: dict[str, str]) -> dict[str, Any]:
    deployment = load_yaml(files["deployment.yaml"])
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _validate(files: dict[str, str]) -> None:
    names = [name for name in files if name.endswith(".yaml")]
    assert set(FILES) <= set(names) <= set(SHARED_FILES)
    for name in names:
        validate_cluster_object(load_yaml(files[name]))


# --- golden files and schemas ---------------------------------------------------------------


@pytest.mark.parametrize(("folder", "model", "gpus", "target", "replicas"), CASES)
def test_k8s_manifests_match_golden_and_validate(
    folder: str, model: str, gpus: int | None, target: str, replicas: int, golden
) -> None:
    _, files = _k8s(model, gpus, target, replicas)
    expected = SHARED_FILES if replicas > 1 else FILES
    assert sorted(files) == sorted([*expected, "manifest.aimc"])
    for name, text in files.items():
        golden(f"k8s/{folder}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / "k8s" / folder))
        for p in (GOLDEN / "k8s" / folder).rglob("*")
        if p.is_file()
    ) == sorted(files)
    _validate(files)


def test_every_shipped_container_plan_validates() -> None:
    """Every shipped model on every GPU target it supports gives valid manifests."""
    checked = multinode = 0
    pairs = sorted({(r.model_id, c.hardware) for r in CATALOG.recipes() for c in candidates(r)})
    for model, target in pairs:
        plan = _plan(model, None, target)
        if plan.launcher != "docker" or plan.local_model:
            continue
        request = Request(model=model)
        files = compile_k8s(plan, request, target, 2)
        if plan.nodes > 1:  # DeepSeek-R1 on h100: a LeaderWorkerSet (SGLang over 2 nodes)
            validate_multinode(files)
            multinode += 1
        else:
            _validate(files)
        checked += 1
    assert checked >= len(pairs) - 5
    assert multinode >= 1


def test_the_validator_is_strict() -> None:
    """An unknown field, or a value of the wrong type, is an error (so passing means valid)."""
    _, files = _k8s("Qwen/Qwen3-8B", None, "h100")
    deployment = load_yaml(files["deployment.yaml"])
    deployment["spec"]["template"]["spec"]["containers"][0]["privilegd"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    service = load_yaml(files["service.yaml"])
    service["spec"]["ports"][0]["port"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, K8S_VERSION, strict=True)


def test_rendering_is_deterministic() -> None:
    for _, model, gpus, target, replicas in CASES:
        assert _k8s(model, gpus, target, replicas) == _k8s(model, gpus, target, replicas)


# --- what the pod gets --------------------------------------------------------------------


def _run_launch_docker(folder: Path, sandbox: Path) -> dict[str, Any]:
    """Run launch.sh (docker path) with a recording ``docker`` first on PATH."""
    bindir = sandbox / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        'json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, '
        'open(os.environ["RECORD"], "w"))\n'
    )
    docker.chmod(0o755)
    record = sandbox / "record.json"
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "CACHE_DIR": str(sandbox / "cache"),
    }
    result = subprocess.run(
        ["bash", str(folder / "launch.sh")], env=env, cwd=sandbox, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(record.read_text())
    return seen


@pytest.mark.parametrize(
    ("model", "gpus", "target", "sets"),
    [
        ("Qwen/Qwen3-32B", 8, "mi300x", ()),
        ("Qwen/Qwen3-8B", None, "h100", ()),
        (
            "Qwen/Qwen3-8B",
            None,
            "h100",
            ("served_model_name=a: $(HF_TOKEN) #x", "env.AIM_X=a:b,c@d=%^"),
        ),
    ],
)
def test_args_and_env_are_launch_shs(
    model: str, gpus: int | None, target: str, sets: tuple[str, ...], tmp_path: Path
) -> None:
    """The pod runs what launch.sh's ``docker run`` runs: the same image, the same words
    after it, the same variables in the same order with the same values (secrets by name)."""
    request = Request(model=model, gpus=gpus, sets=sets)
    plan = make_plan(CATALOG, request, target)
    local = compile_plan(plan, request, target).files
    write_artifacts(tmp_path / "out", local)
    (tmp_path / "sandbox").mkdir()
    seen = _run_launch_docker(tmp_path / "out", tmp_path / "sandbox")
    argv = seen["argv"]
    image_at = argv.index(plan.image)
    docker_args = argv[image_at + 1 :]
    docker_env: list[tuple[str, str | None]] = []
    for option, value in itertools.pairwise(argv):
        if option == "-e":
            name, _, given = value.partition("=")
            docker_env.append((name, given if "=" in value else seen["env"].get(name)))

    container = _container(compile_k8s(plan, request, target))
    assert container["image"] == plan.image
    defined = {e["name"]: "EXPANDED" for e in container["env"]}
    assert [kubelet_expand(a, defined) for a in container["args"]] == docker_args
    assert docker_args == container_args(plan)
    k8s_env = [
        (e["name"], kubelet_expand(e["value"], defined) if "value" in e else None)
        for e in container["env"]
    ]
    # The one difference: the pod starts offline (one download per model, before it).
    offline = [(n, v) for n, v in docker_env if n != "HF_HUB_OFFLINE"] + [("HF_HUB_OFFLINE", "1")]
    assert ("HF_HUB_OFFLINE", None) in docker_env
    assert k8s_env == offline


@pytest.mark.parametrize("text", YAML_HOSTILE)
@pytest.mark.parametrize("field", ["served_model_name", "env-value", "chat-template"])
def test_hostile_values_read_back_as_planned(field: str, text: str) -> None:
    """YAML-special text and ``$`` read back (YAML, then the kubelet's expansion) as exactly
    the planned value; nothing is re-typed, nothing expands into a secret."""
    item = f"env.AIM_X={text}" if field == "env-value" else f"{field}={text}"
    try:
        plan, files = _k8s("Qwen/Qwen3-8B", None, "h100", sets=(item,))
    except ConfigError:
        return  # refused as today (e.g. characters an env file cannot hold)
    _validate(files)
    container = _container(files)
    defined = {e["name"]: "EXPANDED" for e in container["env"]}
    assert [kubelet_expand(a, defined) for a in container["args"]] == container_args(plan)
    values = {
        e["name"]: kubelet_expand(e["value"], defined) for e in container["env"] if "value" in e
    }
    for name, setting in plan.env.items():
        assert values[name] == str(setting.value)
    assert "EXPANDED" not in json.dumps(container)


@pytest.mark.parametrize("item", ["served_model_name=a\nb", "env.AIM_X=a\nb", "image=a$b"])
def test_newlines_and_bad_images_are_refused_as_today(item: str) -> None:
    with pytest.raises(ConfigError):
        _k8s("Qwen/Qwen3-8B", None, "h100", sets=(item,))


def test_secret_refs_never_carry_a_value(cli, tmp_path: Path) -> None:
    """Pass-through variables are optional secretKeyRefs, by name; the caller's token is
    never written, whatever the environment holds."""
    out = tmp_path / "k8s"
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "-o", str(out),
        env={"HF_TOKEN": TOKEN, "VLLM_API_KEY": "sk-secret-value"},
    )  # fmt: skip
    assert result.code == 0, result.err
    for path in (p for p in out.rglob("*") if p.is_file()):
        text = path.read_text()
        assert TOKEN not in text and "sk-secret-value" not in text
    plan = _plan("Qwen/Qwen3-8B", None, "h100")
    container = _container(
        {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    )
    refs = {e["name"]: e for e in container["env"] if "valueFrom" in e}
    # HF_HUB_OFFLINE is the server's own ("1"); the download step reads the caller's.
    assert sorted(refs) == sorted(set(plan.passthrough_env) - {"HF_HUB_OFFLINE"})
    for name, entry in refs.items():
        assert set(entry) == {"name", "valueFrom"}
        assert entry["valueFrom"] == {
            "secretKeyRef": {"name": f"{plan.name}-secrets", "key": name, "optional": True}
        }


def test_gpus_shm_cache_and_probes() -> None:
    amd, files = _k8s("Qwen/Qwen3-32B", 8, "mi300x")
    container = _container(files)
    # 8 of the 8 GPUs of the reference node (96 cores, 1850 GiB): half the cores, a quarter
    # of the memory (limit: three quarters), each plus the 16Gi of /dev/shm.
    assert container["resources"] == {
        "requests": {
            "cpu": "48",
            "memory": f"{1850 // 4 + 16}Gi",
            "ephemeral-storage": "50Gi",
            "amd.com/gpu": 8,
        },
        "limits": {"memory": f"{1850 * 3 // 4 + 16}Gi", "amd.com/gpu": 8},
    }
    # Unprivileged: no capability, no privilege escalation, the runtime's seccomp profile.
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec = load_yaml(files["deployment.yaml"])["spec"]["template"]["spec"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in spec[
        "volumes"
    ]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/workspace/model-cache": "model-cache", "/dev/shm": "dshm"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HUB_CACHE"] == "/workspace/model-cache"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[kind]["httpGet"] == {"path": amd.health_path, "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == startup_budget_s(amd)

    nvidia, files = _k8s("Qwen/Qwen3-8B", None, "h100")
    container = _container(files)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == nvidia.total_gpus
    assert shm_size(nvidia) == DEFAULT_SHM


def test_the_startup_budget_grows_with_the_weights() -> None:
    plan = _plan("Qwen/Qwen3-8B", None, "h100")

    def with_weights(gib: float) -> Plan:
        return Plan.from_json(
            {**plan.to_json(), "gpus": 1, "estimate": {**plan.estimate, "weights_gib": gib}}
        )

    small, large = with_weights(16 * 1e9 / 2**30), with_weights(800 * 1e9 / 2**30)
    assert startup_budget_s(small) >= 600
    assert startup_budget_s(large) > startup_budget_s(small)
    assert startup_budget_s(small) == 720  # 600 + 8 x 14.9 GiB, whole 10 s periods
    assert startup_budget_s(large) == 6570  # 600 + 8 x 745.1 GiB


def test_replicas_share_one_service_and_a_readwritemany_cache() -> None:
    _, files = _k8s("Qwen/Qwen3-8B", None, "h100", 3)
    deployment = load_yaml(files["deployment.yaml"])
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    service = load_yaml(files["service.yaml"])
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert load_yaml(files["pvc.yaml"])["spec"]["accessModes"] == ["ReadWriteMany"]
    assert json.loads(files["manifest.aimc"])["inputs"]["kubernetes"] == {"replicas": 3}
    single = _k8s("Qwen/Qwen3-8B", None, "h100")[1]
    assert load_yaml(single["deployment.yaml"])["spec"]["strategy"] == {"type": "Recreate"}


def test_names_are_kubernetes_labels() -> None:
    """plan.name is a DNS-1035 label (lowercase alphanumerics and '-', at most 63)."""
    for model in CATALOG.model_ids():
        plan = _plan(model, None, "mi300x") if _has(model, "mi300x") else None
        if plan is None:
            continue
        for resource in resources(plan).values():
            name = resource["metadata"]["name"]
            assert len(name) <= 253
        assert len(plan.name) <= 63
        assert plan.name[0].isalpha() and plan.name[-1].isalnum()
        assert set(plan.name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _has(model: str, target: str) -> bool:
    return any(c.hardware == target for c in candidates(CATALOG.recipe(model)))


def test_plans_without_a_container_are_refused() -> None:
    with pytest.raises(ConfigError, match="container"):
        compile_k8s(
            make_plan(CATALOG, Request(model="Qwen/Qwen3-8B", launcher="process"), "h100"),
            Request(model="Qwen/Qwen3-8B", launcher="process"),
            "h100",
        )


def test_a_server_the_pod_network_cannot_reach_is_refused() -> None:
    with pytest.raises(ConfigError, match="probes cannot reach"):
        _k8s("Qwen/Qwen3-8B", None, "h100", sets=("host=127.0.0.1",))


# --- the command line -----------------------------------------------------------------------


def test_compile_check_reports_drift(cli, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    base = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "-o", str(out)]
    assert cli(*base).code == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*FILES, "manifest.aimc"]
    )
    assert cli(*base, "--check").code == 0
    stale = cli(*base, "--replicas", "2", "--check")
    assert stale.code == 1
    assert "-  replicas: 1" in stale.out and "+  replicas: 2" in stale.out
    local = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), "--check")
    assert local.code == 1  # the local artifacts differ from the Kubernetes ones
    (out / "service.yaml").write_text("edited\n")
    assert cli(*base, "--check").code == 1
    assert cli(*base).code == 2  # an edited artifact is never overwritten


def test_a_kubernetes_folder_of_an_earlier_aimc_is_checked_and_replaced(cli, tmp_path) -> None:
    """An earlier aimc's Kubernetes folder held manifest.json (which kubectl cannot
    decode): ``--check`` reports it out of date, and compiling replaces it with one that
    holds manifest.aimc; the same folder edited is refused, never overwritten."""
    out = tmp_path / "k8s"
    base = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "-o", str(out)]
    assert cli(*base).code == 0
    (out / "manifest.aimc").rename(out / "manifest.json")  # as aimc 0.1.0 wrote it
    stale = cli(*base, "--check")
    assert stale.code == 1
    assert f"--- {out / 'manifest.json'}\n+++ (not generated)" in stale.out
    assert f"+++ {out / 'manifest.aimc'} (generated)" in stale.out
    made = cli(*base)
    assert made.code == 0, made.err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*FILES, "manifest.aimc"]
    )
    assert cli(*base, "--check").code == 0
    # Edited since: refused, whichever manifest the folder has.
    (out / "manifest.aimc").rename(out / "manifest.json")
    (out / "pvc.yaml").write_text("edited\n")
    refused = cli(*base)
    assert refused.code == 2
    assert "pvc.yaml (changed since aimc wrote it)" in refused.err
    assert (out / "pvc.yaml").read_text() == "edited\n"


def test_a_folder_with_both_manifests_is_refused(cli, tmp_path) -> None:
    out = tmp_path / "k8s"
    base = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "-o", str(out)]
    assert cli(*base).code == 0
    (out / "manifest.json").write_bytes((out / "manifest.aimc").read_bytes())
    refused = cli(*base)
    assert refused.code == 2
    assert "manifest.json and manifest.aimc both (an aimc folder holds one manifest)" in (
        refused.err
    )
    assert (out / "manifest.json").exists()


def test_local_and_kubernetes_folders_replace_each_other(cli, tmp_path) -> None:
    out = tmp_path / "out"
    k8s = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out)]
    assert cli(*k8s, "--emit", "k8s").code == 0
    assert cli(*k8s).code == 0  # local artifacts over a Kubernetes folder
    assert (out / "manifest.json").is_file() and not (out / "manifest.aimc").exists()
    assert (out / "launch.sh").is_file()
    assert cli(*k8s, "--emit", "k8s").code == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*FILES, "manifest.aimc"]
    )


def test_show_config_prints_the_manifests(cli) -> None:
    args = ["show-config", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s"]
    result = cli(*args)
    assert result.code == 0, result.err
    _, files = _k8s("Qwen/Qwen3-8B", None, "h100")
    docs = list(YAML(typ="safe", pure=True).load_all(result.out))
    assert docs == [load_yaml(files[name]) for name in FILES]
    data = json.loads(cli(*args, "--format", "json").out)["data"]
    assert data["manifests"] == {name: files[name] for name in FILES}


@pytest.mark.parametrize(
    "args",
    [
        ["launch", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s"],
        ["launch", "Qwen/Qwen3-8B", "--target", "h100", "--replicas", "2"],
        ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--replicas", "2"],
        ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "--launcher", "process"],
    ],
)
def test_refused_combinations_are_exit_2(cli, args: list[str], tmp_path: Path) -> None:
    result = cli(*args, "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert not (tmp_path / "out").exists()


def test_run_of_a_kubernetes_folder_says_what_it_is(cli, tmp_path) -> None:
    """Before: 'launch.sh is missing'; a folder of manifests is for kubectl."""
    out = tmp_path / "k8s"
    made = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--emit", "k8s", "-o", str(out))
    assert made.code == 0, made.err
    result = cli("run", str(out), env={"AIMC_STATE_DIR": str(tmp_path / "state")})
    assert result.code == 2
    assert "holds Kubernetes manifests (--emit k8s), not a local launch" in result.err
    assert f"hint: kubectl apply -f {out}" in result.err


def test_k8s_name_is_kept_up_to_the_limit_then_cut_with_five_hex_digits() -> None:
    import hashlib

    from aimc.emit.k8s_pod import k8s_name

    assert k8s_name("a" * 10, "-x", 12) == "a" * 10 + "-x"
    digest = hashlib.sha256(b"a" * 11).hexdigest()[:5]
    assert k8s_name("a" * 11, "-x", 12) == f"aaaa-{digest}-x"
    assert len(k8s_name("b" * 80, "-leader", 63)) == 63
