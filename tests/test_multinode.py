"""Multi-node serving: a configuration with ``nodes`` spans several nodes, and ``--emit
k8s`` writes it as a LeaderWorkerSet. vLLM: tensor parallel within a node, pipeline parallel
across nodes, its own ``--nnodes`` launch without Ray (Llama 3.1 405B bf16 on 2 x 8 x H100).
SGLang: tensor parallel across every node's GPUs,
``--nnodes``/``--node-rank``/``--dist-init-addr`` (DeepSeek-R1 FP8 on 2 x 8 x H100, tensor
parallel 16).

The LeaderWorkerSet is validated against the CRD's ``openAPIV3Schema`` (vendored in
``tests/data/lws/``, kubernetes-sigs/lws @ 060ab4d), made strict the way the API server's
strict field validation is (an unknown field is an error); the Service and the PVC with
``kubernetes-validate``.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.k8s import MULTINODE_FILES, compile_k8s, resources
from aimc.emit.render import container_args, container_env, server_argv
from aimc.plan.estimate import Estimate, estimate
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.plan.weights import checkpoint_total
from tests.conftest import GOLDEN, ROOT
from tests.helpers.k8s import kubelet_expand
from tests.helpers.multinode import lws_validator, run_recorded, validate_multinode

CATALOG = Catalog.default()
MODEL = "meta-llama/Llama-3.1-405B-Instruct"
RECIPE = ROOT / "recipes/models/meta-llama/Llama-3.1-405B-Instruct.yaml"
FOLDER = "meta-llama__Llama-3.1-405B-Instruct--h100-bf16-2-nodes"
SGLANG_MODEL = "deepseek-ai/DeepSeek-R1"
SGLANG_RECIPE = ROOT / "recipes/models/deepseek-ai/DeepSeek-R1.yaml"
SGLANG_FOLDER = "deepseek-ai__DeepSeek-R1--h100-sglang-2-nodes"
#: Each multi-node deployment: (golden folder, model, request fields, native config file).
DEPLOYMENTS = [
    (FOLDER, MODEL, {"precision": "bf16"}, "vllm.yaml"),
    (SGLANG_FOLDER, SGLANG_MODEL, {"nodes": 2}, "sglang.yaml"),
]
DEPLOYMENT_IDS = ["vllm", "sglang"]


def _role(backend: str, rank: str, address: str) -> list[str]:
    """The words one node adds, written out from the engines' multi-node guides (never
    from aimc's own functions): vLLM's --node-rank/--master-addr (--headless on a worker,
    port 29501 its default --master-port); SGLang's --dist-init-addr HOST:PORT and
    --node-rank (docs/references/multi_node_deployment/multi_node.md, port 20000)."""
    if backend == "sglang":
        return ["--dist-init-addr", f"{address}:20000", "--node-rank", rank]
    return ["--node-rank", rank, "--master-addr", address, *(["--headless"] if rank != "0" else [])]


def _yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def _request(**kw: Any) -> Request:
    return Request(model=MODEL, precision="bf16", **kw)


def _plan(**kw: Any) -> Plan:
    return make_plan(CATALOG, _request(**kw), "h100")


# --- the recipe and the plan ----------------------------------------------------------------


def test_the_plan_is_tensor_parallel_per_node_and_pipeline_parallel_across() -> None:
    plan = _plan()
    assert (plan.configuration, plan.gpus, plan.nodes) == ("h100-vllm-bf16-2-nodes", 8, 2)
    assert plan.arg("tensor-parallel-size") == 8
    assert plan.arg("pipeline-parallel-size") == 2
    assert plan.arg("nnodes") == 2
    assert plan.arg("distributed-executor-backend") == "mp"
    assert plan.args["nnodes"].source.startswith("recipes/models/meta-llama/")
    (why,) = [d for d in plan.decisions if d.startswith("2 nodes x 8 GPUs")]
    assert "one node does not fit: 8 x h100 would need 103.1 GiB per GPU" in why
    assert "1/16 of the weights (47.2 GiB)" in why
    assert "63 of 126 layers" in why
    assert plan.estimate["verdict"] == "runnable"


def test_nodes_are_in_the_json_only_when_more_than_one() -> None:
    plan = _plan()
    assert plan.to_json()["nodes"] == 2
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    single = make_plan(CATALOG, Request(model=MODEL), "h100")
    assert single.nodes == 1 and "nodes" not in single.to_json()
    assert Plan.from_json(single.to_json()) == single


def test_one_node_is_preferred_and_the_default_precision_stays() -> None:
    assert make_plan(CATALOG, Request(model=MODEL), "h100").precision == "fp8"
    # bf16 fits one node of h200: the recipe offers no multi-node configuration there.
    assert make_plan(CATALOG, _request(), "h200").nodes == 1


def test_pipeline_parallel_splits_weights_and_kv_cache() -> None:
    facts = _yaml(RECIPE.read_text())["model"]["facts"]
    one = estimate(facts, "bf16", 8, 79.19, 0.92, 32768)
    two = estimate(facts, "bf16", 8, 79.19, 0.92, 32768, pp=2)
    assert two.weights_gib == pytest.approx(one.weights_gib / 2)
    assert two.kv_bytes_per_token == pytest.approx(one.kv_bytes_per_token / 2)
    assert two.overhead_gib == one.overhead_gib
    assert (one.verdict, two.verdict) == ("incompatible", "runnable")


# --- the Kubernetes artifacts ---------------------------------------------------------------


@pytest.mark.parametrize(("folder", "model", "fields", "_"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_multinode_manifests_match_golden_and_validate(
    golden, folder: str, model: str, fields: dict[str, Any], _: str
) -> None:
    request = Request(model=model, **fields)
    plan = make_plan(CATALOG, request, "h100")
    files = compile_k8s(plan, request, "h100")
    assert sorted(files) == sorted([*MULTINODE_FILES, "manifest.aimc"])
    for name, text in files.items():
        golden(f"k8s/{folder}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / "k8s" / folder))
        for p in (GOLDEN / "k8s" / folder).rglob("*")
        if p.is_file()
    ) == sorted(files)
    validate_multinode(files)
    assert json.loads(files["manifest.aimc"])["inputs"]["kubernetes"] == {
        "replicas": 1,
        "nodes": 2,
    }
    validate_multinode(compile_k8s(plan, request, "h100", 3))


def test_the_crd_validator_is_strict() -> None:
    lws = resources(_plan())["leaderworkerset.yaml"]
    lws_validator().validate(lws)
    for path, value in [
        (("spec", "leaderWorkerTemplate", "sizee"), 2),
        (("spec", "leaderWorkerTemplate", "size"), "two"),
        (("spec", "leaderWorkerTemplate", "restartPolicy"), "Always"),
        (("spec", "leaderWorkerTemplate", "workerTemplate", "spec", "privileged"), True),
    ]:
        bad = copy.deepcopy(lws)
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            lws_validator().validate(bad)


def test_leader_and_workers_and_the_service_that_reaches_the_leader() -> None:
    res = resources(_plan(), 2)
    lws = res["leaderworkerset.yaml"]
    assert (lws["apiVersion"], lws["kind"]) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == 2
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert worker["resources"] == leader["resources"]
    assert "startupProbe" in leader and "ports" in leader
    assert not {"startupProbe", "readinessProbe", "livenessProbe", "ports"} & set(worker)
    assert res["service.yaml"]["spec"]["selector"] == {
        "leaderworkerset.sigs.k8s.io/name": "aim-llama-3-1-405b-instruct",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    assert res["pvc.yaml"]["spec"]["accessModes"] == ["ReadWriteMany"]


def _pods(plan: Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    template = resources(plan)["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    return leader, worker


@pytest.mark.parametrize(
    "sets",
    [(), ("served_model_name=$(LWS_LEADER_ADDRESS) $(LWS_WORKER_INDEX) $$x",)],
)
def test_pod_args_and_env_are_the_planned_ones(sets: tuple[str, ...]) -> None:
    """What the kubelet makes of each pod's args (LWS gives LWS_LEADER_ADDRESS and
    LWS_WORKER_INDEX) is the plan's container args plus that node's role: the same words
    ``docker run`` gets for one node; only the two deliberate references expand."""
    plan = _plan(sets=sets)
    leader, worker = _pods(plan)
    address = "aim-llama-3-1-405b-instruct-0.aim-llama-3-1-405b-instruct"
    pod_env = {"LWS_LEADER_ADDRESS": address, "LWS_WORKER_INDEX": "1"}
    assert [kubelet_expand(w, pod_env) for w in leader["args"]] == [
        *container_args(plan),
        *["--node-rank", "0", "--master-addr", address],
    ]
    assert [kubelet_expand(w, pod_env) for w in worker["args"]] == [
        *container_args(plan),
        *["--node-rank", "1", "--master-addr", address, "--headless"],
    ]
    expected = [(n, v) for n, v in container_env(plan) if n != "HF_HUB_OFFLINE"]
    expected.append(("HF_HUB_OFFLINE", "1"))  # every pod starts offline: one download
    for container in (leader, worker):
        env = [
            (e["name"], kubelet_expand(e["value"], pod_env) if "value" in e else None)
            for e in container["env"]
        ]
        assert env == expected
    if sets:
        assert plan.served_model_name in [kubelet_expand(w, pod_env) for w in leader["args"]]


# --- the bare-metal pair: launch.sh (head) and launch-worker.sh ------------------------------

LOCAL = ["aim.env", "launch-worker.sh", "launch.sh", "manifest.json", "vllm.yaml"]


def _local(
    tmp_path: Path, launcher: str | None = None, request: Request | None = None
) -> tuple[Plan, Path]:
    request = request or _request(launcher=launcher)
    plan = make_plan(CATALOG, request, "h100")
    out = tmp_path / "out"
    write_artifacts(out, compile_plan(plan, request, "h100").files)
    return plan, out


@pytest.mark.parametrize(("folder", "model", "fields", "config"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_the_local_pair_matches_golden_and_passes_shellcheck(
    golden, tmp_path: Path, folder: str, model: str, fields: dict[str, Any], config: str
) -> None:
    _, out = _local(tmp_path, request=Request(model=model, **fields))
    local = sorted([*LOCAL[:-1], config])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == local
    for name in local:
        golden(f"k8s/{folder}-local/{name}", (out / name).read_text(encoding="utf-8"))
    assert (
        sorted(
            str(p.relative_to(GOLDEN / "k8s" / f"{folder}-local"))
            for p in (GOLDEN / "k8s" / f"{folder}-local").rglob("*")
            if p.is_file()
        )
        == local
    )
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), str(out / "launch.sh"), str(out / "launch-worker.sh")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("launcher", ["docker", "process"])
def test_head_and_worker_scripts_run_the_pods_args(launcher: str, tmp_path: Path) -> None:
    """launch.sh (head) and launch-worker.sh run the words of the LeaderWorkerSet's leader
    and worker pods, with AIM_MASTER_ADDR / AIM_NODE_RANK where LWS gives
    LWS_LEADER_ADDRESS / LWS_WORKER_INDEX; the docker path passes the pods' variables."""
    plan, out = _local(tmp_path, launcher)
    (tmp_path / "sandbox").mkdir()
    leader, worker = _pods(_plan())
    address = "10.0.0.7"
    for script, pod, rank in [("launch.sh", leader, "0"), ("launch-worker.sh", worker, "1")]:
        env = {"AIM_MASTER_ADDR": address, "AIM_NODE_RANK": rank}
        code, err, seen = run_recorded(out / script, tmp_path / "sandbox", env)
        assert code == 0, err
        pod_env = {"LWS_LEADER_ADDRESS": address, "LWS_WORKER_INDEX": rank}
        expected = [kubelet_expand(w, pod_env) for w in pod["args"]]
        argv = seen["argv"]
        if launcher == "docker":
            assert argv[argv.index(plan.image) + 1 :] == expected
            assert argv[argv.index("--network") :][:2] == ["--network", "host"]
            passed = [v.partition("=")[0] for o, v in itertools.pairwise(argv) if o == "-e"]
            # The same names; the pod's HF_HUB_OFFLINE (its own "1") comes last.
            names = [e["name"] for e in pod["env"]]
            assert names[-1] == "HF_HUB_OFFLINE"
            assert sorted(passed) == sorted(names)
        else:  # the process's own spelling of the model, then the same words
            words = [*server_argv(plan), *_role("vllm", rank, address)]
            assert argv[-len(words) :] == words
            assert words[2:] == expected[1:]


@pytest.mark.parametrize(
    ("script", "env", "message"),
    [
        ("launch.sh", {}, "AIM_MASTER_ADDR"),
        ("launch.sh", {"AIM_MASTER_ADDR": "a b"}, "AIM_MASTER_ADDR"),
        ("launch.sh", {"AIM_MASTER_ADDR": "$(id)"}, "AIM_MASTER_ADDR"),
        ("launch.sh", {"AIM_MASTER_ADDR": "--headless"}, "AIM_MASTER_ADDR"),
        ("launch-worker.sh", {"AIM_MASTER_ADDR": "-x", "AIM_NODE_RANK": "1"}, "AIM_MASTER_ADDR"),
        ("launch-worker.sh", {"AIM_MASTER_ADDR": "head", "AIM_NODE_RANK": "0"}, "1"),
        ("launch-worker.sh", {"AIM_MASTER_ADDR": "head", "AIM_NODE_RANK": "2"}, "1"),
        ("launch-worker.sh", {"AIM_MASTER_ADDR": "head", "AIM_NODE_RANK": "1;id"}, "1"),
        ("launch-worker.sh", {"AIM_MASTER_ADDR": "head"}, "AIM_NODE_RANK"),
        ("launch-worker.sh", {"AIM_NODE_RANK": "1"}, "AIM_MASTER_ADDR"),
    ],
)
def test_the_scripts_refuse_a_bad_address_or_rank(
    script: str, env: dict[str, str], message: str, tmp_path: Path
) -> None:
    _, out = _local(tmp_path)
    (tmp_path / "sandbox").mkdir()
    code, err, seen = run_recorded(out / script, tmp_path / "sandbox", env)
    assert code == 2 and message in err and not seen


def test_launch_of_a_multinode_plan_is_exit_2(cli, tmp_path: Path) -> None:
    args = ["launch", MODEL, "--target", "h100", "--precision", "bf16"]
    result = cli(*args, "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert "2 nodes" in result.err and "--emit k8s" in result.err
    assert not (tmp_path / "out").exists()


def test_compile_emit_k8s_writes_the_leaderworkerset(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["compile", MODEL, "--target", "h100", "--precision", "bf16", "--emit", "k8s"]
    result = cli(*args, "-o", str(out))
    assert result.code == 0, result.err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*MULTINODE_FILES, "manifest.aimc"]
    )
    # The summary says both numbers (it said "8 GPUs" of a 2 x 8 plan before).
    assert "vllm bf16, 2 nodes x 8 GPUs, configuration h100-vllm-bf16-2-nodes" in (
        result.out + result.err
    )


# --- lint -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message", "at"),
    [
        ("nodes: [2]\n", "nodes: [4]\n", "4 nodes (pipeline parallel 4) do not divide", "nodes:"),
        ("gpus: [8]\n    nodes:", "gpus: [16]\n    nodes:", "GPUs per node", "hardware:"),
    ],
)
def test_lint_of_bad_nodes_is_an_error_at_its_line(
    cli, tmp_path: Path, old: str, new: str, message: str, at: str
) -> None:
    text = RECIPE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "Llama-3.1-405B-Instruct.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = cli("validate", str(path), "--format", "json")
    assert result.code == 2, result.out
    diags = json.loads(result.out)["data"]["diagnostics"]
    (diag,) = [d for d in diags if message in d["message"]]
    assert diag["severity"] == "error"
    line = path.read_text(encoding="utf-8").splitlines()[diag["line"] - 1]
    assert line.strip().startswith(at), line


def test_show_config_prints_the_leaderworkerset(cli) -> None:
    """show-config --emit k8s of a multi-node plan prints the LeaderWorkerSet stream."""
    args = ("show-config", "meta-llama/Llama-3.1-405B-Instruct", "--target", "h100")
    result = cli(*args, "--precision", "bf16", "--emit", "k8s")
    assert result.code == 0, result.err
    assert 'kind: "LeaderWorkerSet"' in result.out and "Deployment" not in result.out
    data = json.loads(cli(*args, "--precision", "bf16", "--emit", "k8s", "--format", "json").out)
    assert "leaderworkerset.yaml" in data["data"]["manifests"]


def test_nodes_flag_asks_for_a_multi_node_configuration(cli, tmp_path) -> None:
    """``--nodes N``: the configuration for N nodes, or exit 2 with what exists."""
    out = tmp_path / "k8s"
    args = ("compile", "meta-llama/Llama-3.1-405B-Instruct", "--target", "h100")
    result = cli(*args, "--nodes", "2", "--emit", "k8s", "-o", str(out))
    assert result.code == 0, result.err
    plan = json.loads((out / "manifest.aimc").read_text())["plan"]
    assert (plan["precision"], plan["gpus"], plan["nodes"]) == ("bf16", 8, 2)
    assert "--nodes 2" in (out / "leaderworkerset.yaml").read_text().splitlines()[1]
    refused = cli(*args, "--nodes", "3")
    assert refused.code == 2
    assert "no configuration of meta-llama/Llama-3.1-405B-Instruct on h100 for 3 nodes" in (
        refused.err
    )
    assert "vllm bf16 on 2 nodes x 8 GPUs" in refused.err
    one = cli(*args, "--nodes", "1", "-o", str(tmp_path / "one"))
    assert one.code == 0, one.err
    assert "nodes" not in json.loads((tmp_path / "one/manifest.json").read_text())["plan"]


# --- nodes in the tables ---------------------------------------------------------------------

OUTPUT_SCHEMA = json.loads((ROOT / "schemas" / "output.schema.json").read_text())


def _row_schema(name: str) -> dict[str, Any]:
    return {**OUTPUT_SCHEMA["$defs"][name], "$defs": OUTPUT_SCHEMA["$defs"]}


def _table(text: str) -> list[dict[str, str]]:
    """A table of aligned columns as rows by header (headers are single spaced words)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[a:b].strip() for a, b in bounds]
    return [
        {n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)}
        for line in lines[1:]
    ]


def _nodes_and_gpus(table: str, config: str) -> tuple[str, str]:
    row = next(r for r in _table(table) if r["CONFIG"] == config)
    return row["NODES"], row["GPUS PER NODE"]


def test_list_configs_shows_nodes_and_gpus_per_node(cli) -> None:
    """Before: a 2 x 8 GPU configuration read '8' under GPUS, like a one-node one."""
    result = cli("list", "configs", MODEL)
    assert result.code == 0, result.err
    assert _nodes_and_gpus(result.out, "h100-vllm-bf16-2-nodes") == ("2", "8")
    assert _nodes_and_gpus(result.out, "h100-vllm-fp8") == ("1", "8")
    data = json.loads(cli("list", "configs", MODEL, "--format", "json").out)["data"]
    row = next(r for r in data if r["config"] == "h100-vllm-bf16-2-nodes")
    assert (row["nodes"], row["gpus_per_node"], row["gpus"]) == ([2], [8], [8])
    for r in data:
        jsonschema.validate(r, _row_schema("config_row"))


def test_assessed_configs_show_nodes_and_gpus_per_node(cli) -> None:
    result = cli("list", "configs", MODEL, "--target", "h100")
    assert result.code == 0, result.err
    assert _nodes_and_gpus(result.out, "h100-vllm-bf16-2-nodes") == ("2", "8")
    data = json.loads(cli("list", "configs", MODEL, "--target", "h100", "--format", "json").out)
    row = next(r for r in data["data"] if r["config"] == "h100-vllm-bf16-2-nodes")
    assert (row["nodes"], row["gpus_per_node"]) == (2, 8)
    for r in data["data"]:
        jsonschema.validate(r, _row_schema("assessed_row"))


def test_show_config_shows_nodes_and_gpus_per_node(cli) -> None:
    args = ("show-config", MODEL, "--target", "h100", "--precision", "bf16")
    result = cli(*args)
    assert result.code == 0, result.err
    assert "gpu count:      8 per node x 2 nodes (16 GPUs)" in result.out.splitlines()
    table = result.out.split("(GiB per GPU):\n", 1)[1]
    assert _nodes_and_gpus(table, "h100-vllm-bf16-2-nodes") == ("2", "8")
    data = json.loads(cli(*args, "--format", "json").out)
    assert "2 nodes x 8 GPUs" in data["message"]
    candidate = next(
        c for c in data["data"]["candidates"] if c["config"] == "h100-vllm-bf16-2-nodes"
    )
    assert (candidate["nodes"], candidate["gpus_per_node"]) == (2, 8)


def test_headers_say_nodes_times_gpus_per_node(tmp_path: Path) -> None:
    """Every artifact of a 2 x 8 configuration says so (it said "8 GPUs" before); a
    one-node plan's header is as before."""
    plan, out = _local(tmp_path)
    request = _request()
    k8s = compile_k8s(plan, request, "h100")
    texts = {
        str(p.relative_to(out)): p.read_text()
        for p in out.rglob("*")
        if p.is_file() and p.suffix != ".json"
    }
    texts.update({f"k8s/{n}": t for n, t in k8s.items() if n.endswith(".yaml")})
    assert len(texts) >= 7
    for name, text in texts.items():
        line = next(row for row in text.splitlines() if "configuration:" in row)
        assert line.endswith("bf16, 2 nodes x 8 GPUs per node"), (name, line)
    one = make_plan(CATALOG, Request(model="Qwen/Qwen3-8B"), "h100")
    text = compile_plan(one, Request(model="Qwen/Qwen3-8B"), "h100").files["launch.sh"]
    assert "bf16, 1 GPU\n" in text and "nodes x" not in text


# --- SGLang: tensor parallel across the nodes -------------------------------------------------


def _sglang(**kw: Any) -> Plan:
    return make_plan(CATALOG, Request(model=SGLANG_MODEL, **kw), "h100")


def test_sglang_plan_is_one_tensor_parallel_group_over_both_nodes() -> None:
    """DeepSeek-R1 FP8 on 2 x 8 x H100: --tp-size 16 (every GPU of both nodes), --nnodes 2,
    nothing of vLLM's pipeline; each GPU holds 1/16 of the weights."""
    plan = _sglang()
    assert (plan.backend, plan.configuration) == ("sglang", "h100-sglang-fp8-2-nodes")
    assert (plan.precision, plan.gpus, plan.nodes) == ("fp8", 8, 2)
    assert plan.arg("tp-size") == 16 and plan.arg("nnodes") == 2
    assert not {"pipeline-parallel-size", "distributed-executor-backend", "pp-size"} & set(
        plan.args
    )
    # Both lines that make it: gpus: [8] and nodes: [2].
    assert plan.args["tp-size"].source == (
        "recipes/models/deepseek-ai/DeepSeek-R1.yaml:78 x nodes "
        "(recipes/models/deepseek-ai/DeepSeek-R1.yaml:79)"
    )
    assert plan.args["nnodes"].source.startswith("recipes/models/deepseek-ai/DeepSeek-R1.yaml:")
    recipe = _yaml(SGLANG_RECIPE.read_text())
    facts, weights = recipe["model"]["facts"], recipe["weights"]["fp8"]

    def at(tp: int) -> Estimate:
        size = checkpoint_total(weights, None, tp)[0]
        return estimate(facts, "fp8", tp, 79.19, 0.88, 32768, weights_bytes=size)

    tp16, tp8 = at(16), at(8)
    assert plan.estimate["weights_gib"] == pytest.approx(tp16.weights_gib, abs=0.01)
    # 1/16 of the sharded weights, and the layers every rank keeps whole
    sharded = weights["bytes"] - weights["unloaded_bytes"] - weights["replicated_bytes"]
    per_gpu = (sharded / 16 + weights["replicated_bytes"]) / 2**30
    assert plan.estimate["weights_gib"] == pytest.approx(per_gpu, abs=0.01)
    # MLA keeps one latent vector per layer on every GPU: all 61 layers, not half of them.
    assert plan.estimate["kv_bytes_per_token"] == pytest.approx(61 * (512 + 64) * 2, abs=0.1)
    assert (tp8.verdict, plan.estimate["verdict"]) == ("incompatible", "runnable")
    (why,) = [d for d in plan.decisions if d.startswith("2 nodes x 8 GPUs")]
    assert "tensor parallel 16 across the nodes" in why and "one node does not fit" in why
    assert "1/16 of the weights" in why and "all 61 layers" in why


def test_sglang_is_chosen_on_h100_and_refused_for_three_nodes(cli) -> None:
    result = cli("show-config", SGLANG_MODEL, "--target", "h100")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "backend:        sglang 0.5.19" in lines
    assert "gpu count:      8 per node x 2 nodes (16 GPUs)" in lines
    assert _nodes_and_gpus(
        result.out.split("(GiB per GPU):\n", 1)[1], "h100-sglang-fp8-2-nodes"
    ) == (
        "2",
        "8",
    )
    data = json.loads(cli("show-config", SGLANG_MODEL, "--target", "h100", "--format", "json").out)
    assert data["data"]["plan"]["nodes"] == 2
    assert data["data"]["plan"]["args"]["tp-size"]["value"] == 16
    k8s = cli("show-config", SGLANG_MODEL, "--target", "h100", "--emit", "k8s")
    assert k8s.code == 0 and 'kind: "LeaderWorkerSet"' in k8s.out, k8s.err
    assert '"$(LWS_LEADER_ADDRESS):20000"' in k8s.out
    refused = cli("show-config", SGLANG_MODEL, "--target", "h100", "--nodes", "3")
    assert refused.code == 2 and "sglang fp8 on 2 nodes x 8 GPUs" in refused.err


def test_sglang_pods_join_the_leader_at_dist_init_addr() -> None:
    """Every pod: --nnodes 2 --tp-size 16 and --dist-init-addr $(LWS_LEADER_ADDRESS):20000
    with its own --node-rank; the worker runs the same server (no --headless: SGLang has
    none) and has no probe or port."""
    plan = _sglang()
    leader, worker = _pods(plan)
    address = "aim-deepseek-r1-0.aim-deepseek-r1"
    for pod, rank in ((leader, "0"), (worker, "1")):
        pod_env = {"LWS_LEADER_ADDRESS": address, "LWS_WORKER_INDEX": rank}
        words = [kubelet_expand(w, pod_env) for w in pod["args"]]
        assert words == [*container_args(plan), *_role("sglang", rank, address)]
        assert words[words.index("--tp-size") + 1] == "16"
        assert words[words.index("--nnodes") + 1] == "2"
        assert "--headless" not in words and "--master-addr" not in words
    assert worker["args"][-4:] == [
        "--dist-init-addr",
        "$(LWS_LEADER_ADDRESS):20000",
        "--node-rank",
        "$(LWS_WORKER_INDEX)",
    ]
    assert "startupProbe" in leader and not {"startupProbe", "ports"} & set(worker)
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == 8


@pytest.mark.parametrize("launcher", ["docker", "process"])
def test_sglang_head_and_worker_scripts_run_the_pods_args(launcher: str, tmp_path: Path) -> None:
    plan, out = _local(tmp_path, request=Request(model=SGLANG_MODEL, launcher=launcher))
    (tmp_path / "sandbox").mkdir()
    leader, worker = _pods(_sglang())
    address = "10.0.0.7"
    for script, pod, rank in [("launch.sh", leader, "0"), ("launch-worker.sh", worker, "1")]:
        code, err, seen = run_recorded(
            out / script, tmp_path / "sandbox", {"AIM_MASTER_ADDR": address, "AIM_NODE_RANK": rank}
        )
        assert code == 0, err
        argv = seen["argv"]
        assert argv[-4:] == _role("sglang", rank, address)
        if launcher == "docker":
            pod_env = {"LWS_LEADER_ADDRESS": address, "LWS_WORKER_INDEX": rank}
            assert argv[argv.index(plan.image) + 1 :] == [
                kubelet_expand(w, pod_env) for w in pod["args"]
            ]
            assert argv[argv.index("--network") :][:2] == ["--network", "host"]
        else:
            assert argv[argv.index("sglang.launch_server") + 1 :] == [
                *server_argv(plan),
                *_role("sglang", rank, address),
            ]


@pytest.mark.parametrize("address", ["fe80::1", "[fe80::1]", "head:20000", "a b", "$(id)"])
def test_sglang_scripts_refuse_an_address_sglang_would_misread(
    address: str, tmp_path: Path
) -> None:
    """SGLang splits --dist-init-addr at its ':' (HOST:PORT): the scripts take a hostname
    or an IPv4 address only."""
    _, out = _local(tmp_path, request=Request(model=SGLANG_MODEL))
    (tmp_path / "sandbox").mkdir()
    for script in ("launch.sh", "launch-worker.sh"):
        env = {"AIM_MASTER_ADDR": address, "AIM_NODE_RANK": "1"}
        code, err, seen = run_recorded(out / script, tmp_path / "sandbox", env)
        assert code == 2 and "hostname or IPv4 address" in err and not seen


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "gpus: [8]\n    nodes: [2]\n    backend: sglang",
            "gpus: [8]\n    nodes: [3]\n    backend: sglang",
            "3 nodes x 8 GPUs (sglang: tensor parallel 24 across the nodes) do not divide the "
            "model's 128 attention heads",
        ),
    ],
)
def test_lint_of_an_sglang_group_that_does_not_divide_the_heads(
    cli, tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = SGLANG_RECIPE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "DeepSeek-R1.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = cli("validate", str(path), "--format", "json")
    assert result.code == 2, result.out
    diags = json.loads(result.out)["data"]["diagnostics"]
    (diag,) = [d for d in diags if d["rule"] == "lint/nodes"]
    assert diag["message"] == message and diag["severity"] == "error"
    assert path.read_text().splitlines()[diag["line"] - 1].strip().startswith("nodes:")
    # 61 layers do not divide by 2: only vLLM's pipeline stages need that.
    assert cli("validate", str(SGLANG_RECIPE)).code == 0
