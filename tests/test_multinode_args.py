"""Multi-node role arguments checked against the engines, not against aimc.

Before, the words a node adds (``--node-rank``, ``--master-addr``, ``--dist-init-addr``,
``--headless``) were checked by golden files and by tests whose expected values came from
:func:`aimc.emit.render.node_role_args` itself: a misspelt flag or a hard-coded worker rank
passed every semantic test. Here every pod's and every script's argv is read with the
engine's generated vocabulary (``aimc/backends/vllm.json``, generated from vLLM 0.32.0's
own parser; ``aimc/backends/sglang.json``, from SGLang 0.5.19's server_args.py), the way
argparse reads it: an unknown flag or a flag without its value is an error. And each role
is checked on a 3-node plan, where the head is rank 0 and the two workers are ranks 1 and
2: the values expected are literals of the engines' and LeaderWorkerSet's documentation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.k8s import resources
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import ROOT
from tests.helpers.k8s import kubelet_expand
from tests.helpers.multinode import run_recorded, three_node_catalog

SHIPPED = Catalog.default()
VLLM = "meta-llama/Llama-3.1-405B-Instruct"
SGLANG = "deepseek-ai/DeepSeek-R1"
HEAD = "10.1.2.3"
#: What the LeaderWorkerSet controller's webhook gives every pod (its pod_utils.go): the
#: leader's DNS name and the pod's index in its group.
LWS_ADDRESS = "$(LWS_LEADER_ADDRESS)"
LWS_INDEX = "$(LWS_WORKER_INDEX)"


def _flags(backend: str) -> dict[str, dict[str, Any]]:
    data = json.loads((ROOT / "aimc" / "backends" / f"{backend}.json").read_text())
    flags: dict[str, dict[str, Any]] = data["flags"]
    return flags


def parse(backend: str, words: list[str]) -> dict[str, Any]:
    """``words`` (the server's arguments) as the engine's argparse reads them, from its
    vocabulary alone: positionals under ``""``, each flag under its canonical name with its
    value (a list for a flag that takes several, True for a switch).

    Raises:
        AssertionError: A flag the engine does not have, a flag without its value, or a
            flag given twice (argparse would keep the last, hiding the first).
    """
    flags = _flags(backend)
    out: dict[str, Any] = {"": []}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            out[""].append(word)
            i += 1
            continue
        name, eq, inline = word[2:].partition("=")
        assert name in flags, f"{backend} has no flag --{name}"
        entry = flags[name]
        key = entry.get("alias_of", name)
        assert key not in out, f"--{name} given twice"
        if not entry["value"]:
            assert not eq, f"--{name} takes no value"
            out[key] = True
            i += 1
            continue
        if eq:
            out[key], i = inline, i + 1
            continue
        values = []
        i += 1
        while i < len(words) and not words[i].startswith("--"):
            values.append(words[i])
            i += 1
            if not entry["multiple"]:
                break
        assert values, f"--{name} needs a value"
        out[key] = values if entry["multiple"] else values[0]
    return out


def test_the_reader_refuses_what_the_engine_would() -> None:
    """The mutations this file is for: a misspelt flag, a value left out."""
    assert parse("vllm", ["m", "--node-rank", "1", "--headless"])["node-rank"] == "1"
    with pytest.raises(AssertionError, match="no flag --master-address"):
        parse("vllm", ["m", "--master-address", "h"])
    with pytest.raises(AssertionError, match="needs a value"):
        parse("sglang", ["--node-rank", "--nnodes", "2"])
    with pytest.raises(AssertionError, match="given twice"):
        parse("sglang", ["--tp-size", "8", "--tensor-parallel-size", "16"])


# --- plans: the shipped 2-node ones, and 3-node ones from a recipe copy ----------------------


def _request(backend: str, nodes: int, **kw: Any) -> Request:
    if backend == "vllm":
        return Request(model=VLLM, precision="bf16", nodes=nodes, **kw)
    return Request(model=SGLANG, nodes=nodes, **kw)


def _plan(backend: str, nodes: int, tmp_path: Path, **kw: Any) -> Plan:
    catalog = SHIPPED if nodes == 2 else three_node_catalog(tmp_path / "recipes")
    plan = make_plan(catalog, _request(backend, nodes, **kw), "h100")
    assert (plan.backend, plan.nodes, plan.gpus) == (backend, nodes, 8)
    return plan


def _expect(backend: str, nodes: int, rank: int, address: str, read: dict[str, Any]) -> None:
    """What node ``rank`` of ``nodes`` must say, from the engines' multi-node guides."""
    assert read["node-rank"] == str(rank)
    assert read["nnodes"] == str(nodes)
    if backend == "vllm":
        # vLLM: --master-addr is the head's; --headless on every node but the head; the
        # torch.distributed port is vLLM's default --master-port.
        assert read["master-addr"] == address
        assert read["tensor-parallel-size"] == "8"
        assert read["pipeline-parallel-size"] == str(nodes)
        assert ("headless" in read) == (rank != 0)
        assert "master-port" not in read and "dist-init-addr" not in read
    else:
        # SGLang: the same --dist-init-addr HEAD:PORT on every node; --tp-size all GPUs.
        assert read["dist-init-addr"] == f"{address}:20000"
        assert read["tp-size"] == str(8 * nodes)
        assert not {"headless", "master-addr", "pp-size"} & set(read)


CASES = [(b, n) for b in ("vllm", "sglang") for n in (2, 3)]
IDS = [f"{b}-{n}-nodes" for b, n in CASES]


@pytest.mark.parametrize(("backend", "nodes"), CASES, ids=IDS)
def test_every_pod_says_its_own_rank_with_the_engines_flags(
    backend: str, nodes: int, tmp_path: Path
) -> None:
    """The LeaderWorkerSet: the leader is rank 0, a worker takes its rank from
    ``$(LWS_WORKER_INDEX)`` (1 .. size-1, one per pod) and the head's address from
    ``$(LWS_LEADER_ADDRESS)``; each pod's args, as the kubelet expands them, read as that
    node's role in the engine's vocabulary."""
    plan = _plan(backend, nodes, tmp_path)
    lws = resources(plan)["leaderworkerset.yaml"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == nodes
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    # The one worker template serves every worker pod: its rank can only be the variable.
    rank_word = worker["args"][worker["args"].index("--node-rank") + 1]
    assert rank_word == LWS_INDEX
    assert leader["args"][leader["args"].index("--node-rank") + 1] == "0"
    address = "aim-x-0.aim-x.default"
    for pod, ranks in ((leader, [0]), (worker, range(1, nodes))):
        assert any(LWS_ADDRESS in word for word in pod["args"])
        for rank in ranks:
            env = {"LWS_LEADER_ADDRESS": address, "LWS_WORKER_INDEX": str(rank)}
            words = [kubelet_expand(w, env) for w in pod["args"]]
            server = words[3:] if backend == "sglang" else words  # python3 -m sglang...
            if backend == "sglang":
                assert words[:3] == ["python3", "-m", "sglang.launch_server"]
            read = parse(backend, server)
            _expect(backend, nodes, rank, address, read)


@pytest.mark.parametrize(("backend", "nodes"), CASES, ids=IDS)
@pytest.mark.parametrize("launcher", ["docker", "process"])
def test_every_script_says_its_own_rank_with_the_engines_flags(
    backend: str, nodes: int, launcher: str, tmp_path: Path
) -> None:
    """launch.sh on the head (rank 0) and launch-worker.sh on each other node with
    AIM_NODE_RANK 1 .. nodes-1: the server each starts reads, in the engine's vocabulary,
    as that node's role; a rank past the last node is refused."""
    plan = _plan(backend, nodes, tmp_path, launcher=launcher)
    out = tmp_path / "out"
    write_artifacts(
        out, compile_plan(plan, _request(backend, nodes, launcher=launcher), "h100").files
    )
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    runs = [("launch.sh", 0)] + [("launch-worker.sh", r) for r in range(1, nodes)]
    for script, rank in runs:
        code, err, seen = run_recorded(
            out / script, sandbox, {"AIM_MASTER_ADDR": HEAD, "AIM_NODE_RANK": str(rank)}
        )
        assert code == 0, err
        argv = seen["argv"]
        if launcher == "docker":
            server = argv[argv.index(plan.image) + 1 :]
        else:
            server = argv[argv.index("-m") + 2 :]
        if backend == "sglang" and launcher == "docker":
            assert server[:3] == ["python3", "-m", "sglang.launch_server"]
            server = server[3:]
        _expect(backend, nodes, rank, HEAD, parse(backend, server))
    code, err, seen = run_recorded(
        out / "launch-worker.sh", sandbox, {"AIM_MASTER_ADDR": HEAD, "AIM_NODE_RANK": str(nodes)}
    )
    assert code == 2 and not seen, err


@pytest.fixture(scope="module")
def sglang_scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sglang") / "out"
    request = Request(model=SGLANG, nodes=2)
    write_artifacts(out, compile_plan(make_plan(SHIPPED, request, "h100"), request, "h100").files)
    return out


@settings(max_examples=30, suppress_health_check=list(HealthCheck), deadline=None)
@given(address=st.text(alphabet=st.sampled_from("a0.-:[]$(); `'\"\n\t*"), max_size=12))
@example(address="head-0.cluster")
@example(address="fe80::1")
@example(address="$(touch PWNED)")
def test_the_head_address_reaches_sglang_as_one_word_or_is_refused(
    address: str, sglang_scripts: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever AIM_MASTER_ADDR holds, the worker either refuses it (exit 2, nothing run)
    or passes it as ``HOST:20000``, one word that SGLang splits at its only ``:``."""
    sandbox = tmp_path_factory.mktemp("run")
    env = {"AIM_MASTER_ADDR": address, "AIM_NODE_RANK": "1"}
    code, err, seen = run_recorded(sglang_scripts / "launch-worker.sh", sandbox, env)
    if code == 2:
        assert not seen and "hostname or IPv4 address" in err
        return
    assert code == 0, err
    word = seen["argv"][seen["argv"].index("--dist-init-addr") + 1]
    assert word == f"{address}:20000" and word.count(":") == 1
    assert not (sandbox / "PWNED").exists()


@pytest.mark.parametrize(
    ("model", "flag"),
    [
        (VLLM, "nnodes=3"),
        (VLLM, "node-rank=1"),
        (VLLM, "master-addr=10.0.0.9"),
        (VLLM, "headless=true"),
        (SGLANG, "nnodes=3"),
        (SGLANG, "node-rank=1"),
        (SGLANG, "dist-init-addr=10.0.0.9:5000"),
    ],
)
def test_a_nodes_role_cannot_be_set_by_hand(cli, model: str, flag: str) -> None:
    """A role flag set by hand would reach every node (a second --node-rank, a rank fixed
    for all): aimc sets them, so --set refuses them (exit 2), as a recipe's args do."""
    result = cli("show-config", model, "--target", "h100", "--nodes", "2", "--set", flag)
    assert result.code == 2, result.out
    assert f"'{flag.partition('=')[0]}' is set by aimc" in result.err
