"""Multi-node networking from the hardware profile's ``interconnect``.

Before, a multi-node plan had no interconnect settings: no RDMA resource, no IPC_LOCK, no
NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME, bare-metal ``docker run`` without /dev/infiniband and
an unlimited memlock: NCCL silently ran over TCP. The shipped profiles declare none (no
sourced fact of a cluster's NICs), and say TCP; tests/data/interconnect/hardware/h100.yaml
is the h100 profile with an InfiniBand interconnect, served ahead of the shipped one.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.cli.show_config import plan_text
from aimc.core.errors import AimcError
from aimc.core.write import write_artifacts
from aimc.domain.recipe import RecipeRoot
from aimc.emit.emitters import compile_plan
from aimc.emit.k8s import compile_k8s, resources
from aimc.emit.templating import to_yaml
from aimc.plan.request import Request
from tests.conftest import GOLDEN
from tests.helpers.k8s import kubelet_expand, load_yaml
from tests.helpers.multinode import lws_validator, run_recorded
from tests.helpers.pods import baseline_violations, qos_class

DATA = Path(__file__).parent / "data" / "interconnect"
SHIPPED = Catalog.default()
MODEL = "meta-llama/Llama-3.1-405B-Instruct"
FOLDER = "meta-llama__Llama-3.1-405B-Instruct--h100-ib-2-nodes"
HCAS = ",".join(f"mlx5_{i}" for i in range(8))
RESOURCE = "rdma/rdma_shared_device_a"


def _catalog(root: Path = DATA) -> Catalog:
    return Catalog([RecipeRoot(root, "--recipes"), *SHIPPED.roots])


def _request(**kw: Any) -> Request:
    return Request(model=MODEL, precision="bf16", **kw)


def _plan(catalog: Catalog | None = None, **kw: Any) -> Any:
    return make_plan(catalog or _catalog(), _request(**kw), "h100")


def test_the_plan_has_the_interconnect_env_at_the_hardware_layer() -> None:
    plan = _plan()
    assert plan.nodes == 2
    expected = {"NCCL_SOCKET_IFNAME": "eth0", "GLOO_SOCKET_IFNAME": "eth0", "NCCL_IB_HCA": HCAS}
    lines = (DATA / "hardware" / "h100.yaml").read_text().splitlines()
    key = {"NCCL_IB_HCA": "hcas:"}
    for name, value in expected.items():
        setting = plan.env[name]
        assert (setting.value, setting.layer) == (value, "hardware")
        # The source is the profile's line that declares it.
        path, _, line = setting.source.rpartition(":")
        assert path.endswith("tests/data/interconnect/hardware/h100.yaml")
        assert lines[int(line) - 1].strip().startswith(key.get(name, "socket_ifname:"))
    text = plan_text(plan, explain=True)
    assert re.search(r"NCCL_IB_HCA\s+" + HCAS + r"\s+hardware\s+\S+h100\.yaml:\d+", text)
    assert f"interconnect:   RDMA: 1 x {RESOURCE} per pod, NCCL_IB_HCA {HCAS}; NIC eth0" in text


def test_shipped_profiles_say_tcp() -> None:
    """The shipped h100 declares no interconnect: no variable, and the plan says TCP."""
    plan = make_plan(SHIPPED, _request(), "h100")
    assert not {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_HCA"} & set(plan.env)
    text = plan_text(plan, explain=False)
    assert "interconnect:   TCP sockets: h100 declares no RDMA" in text
    lws = compile_k8s(plan, _request(), "h100")["leaderworkerset.yaml"]
    assert "# Interconnect: TCP sockets: h100 declares no RDMA" in lws


def test_one_node_gets_nothing_of_it() -> None:
    plan = make_plan(_catalog(), Request(model="Qwen/Qwen3-8B"), "h100")
    assert plan.nodes == 1
    assert "NCCL_IB_HCA" not in plan.env and "interconnect" not in plan.hardware
    assert "/dev/infiniband" not in plan.container.get("devices", [])
    assert "interconnect:" not in plan_text(plan, explain=True)


@pytest.fixture
def relative(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """The test profile by a path relative to the repository (the goldens name it, and an
    absolute path would differ from checkout to checkout)."""
    monkeypatch.chdir(DATA.parents[2])
    return _catalog(DATA.relative_to(DATA.parents[2]))


def test_k8s_pods_request_rdma_and_ipc_lock(golden, relative: Catalog) -> None:
    plan = _plan(relative)
    assert plan.hardware["path"] == "tests/data/interconnect/hardware/h100.yaml"
    files = compile_k8s(plan, _request(), "h100")
    for name, text in files.items():
        golden(f"k8s/{FOLDER}/{name}", text)
    assert sorted(
        str(p.relative_to(GOLDEN / "k8s" / FOLDER))
        for p in (GOLDEN / "k8s" / FOLDER).rglob("*")
        if p.is_file()
    ) == sorted(files)
    lws = load_yaml(files["leaderworkerset.yaml"])
    lws_validator().validate(lws)
    lwt = lws["spec"]["leaderWorkerTemplate"]
    for pod in (lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]):
        (server,) = pod["containers"]
        res = server["resources"]
        assert res["requests"][RESOURCE] == res["limits"][RESOURCE] == 1
        caps = server["securityContext"]["capabilities"]
        assert caps == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert env["NCCL_IB_HCA"] == HCAS and env["GLOO_SOCKET_IFNAME"] == "eth0"
        assert qos_class(pod) == "Burstable"
        # IPC_LOCK is beyond baseline: these pods need a privileged namespace (docs/kubernetes.md).
        assert baseline_violations(pod) == ["Capabilities"]
        # The init container needs no capability.
        assert "add" not in pod["initContainers"][0]["securityContext"]["capabilities"]


def test_bare_metal_docker_run_gets_the_rdma_devices(
    golden, tmp_path: Path, relative: Catalog
) -> None:
    plan = _plan(relative)
    out = tmp_path / "out"
    write_artifacts(out, compile_plan(plan, _request(), "h100").files)
    for name in ("launch.sh", "launch-worker.sh"):
        golden(f"k8s/{FOLDER}-local/{name}", (out / name).read_text(encoding="utf-8"))
    shellcheck = Path(sys.executable).parent / "shellcheck"
    checked = subprocess.run(
        [str(shellcheck), str(out / "launch.sh"), str(out / "launch-worker.sh")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    (tmp_path / "sandbox").mkdir()
    for script, rank in (("launch.sh", "0"), ("launch-worker.sh", "1")):
        env = {"AIM_MASTER_ADDR": "10.0.0.7", "AIM_NODE_RANK": rank}
        code, err, seen = run_recorded(out / script, tmp_path / "sandbox", env)
        assert code == 0, err
        argv = seen["argv"]
        head = argv[: argv.index(plan.image)]
        pairs = list(itertools.pairwise(head))
        assert ("--device", "/dev/infiniband") in pairs
        assert ("--cap-add", "IPC_LOCK") in pairs
        assert ("--ulimit", "memlock=-1") in pairs
        passed = {v.partition("=")[0] for o, v in itertools.pairwise(argv) if o == "-e"}
        assert {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_HCA"} <= passed


# --- hostile values -------------------------------------------------------------------------

_SAFE = re.compile(r"^[A-Za-z0-9_.:/,-]+$")


def _profile(tmp_path: Path, net: str) -> Path:
    root = tmp_path / "root"
    (root / "hardware").mkdir(parents=True, exist_ok=True)
    text = (DATA / "hardware" / "h100.yaml").read_text()
    start = text.index("\ninterconnect:\n") + 1
    end = text.index("\ncontainer:\n") + 1
    (root / "hardware" / "h100.yaml").write_text(text[:start] + net + text[end:])
    return root


def test_the_profile_writer_keeps_the_profile_valid(tmp_path: Path) -> None:
    """The hostile tests below replace only the interconnect: with good values the profile
    loads and plans (so a refusal there is the value's)."""
    good = f'interconnect:\n  socket_ifname: eth1\n  rdma:\n    resource: "{RESOURCE}"\n'
    plan = _plan(_catalog(_profile(tmp_path, good)))
    assert plan.env["NCCL_SOCKET_IFNAME"].value == "eth1"
    assert "NCCL_IB_HCA" not in plan.env


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(nic=TEXT, resource=TEXT, hca=TEXT)
@example(nic="ens1f0.100", resource="nvidia.com/hca", hca="mlx5_0:1")
@example(nic="bond0", resource="rdma/hca_shared_devices_a", hca="mlx5_bond_0")
def test_hostile_interconnect_values_are_refused_or_safe(
    nic: str, resource: str, hca: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A NIC name, resource name or HCA that reaches a shell line, an env file or YAML is
    refused by the schema (a one-line ConfigError-class error) unless it is of the safe
    characters; what is accepted reads back as itself through YAML and the kubelet."""
    tmp_path = tmp_path_factory.mktemp("net")
    quoted = [s.replace("\\", "\\\\").replace('"', '\\"') for s in (nic, resource, hca)]
    net = (
        f'interconnect:\n  socket_ifname: "{quoted[0]}"\n  rdma:\n'
        f'    resource: "{quoted[1]}"\n    hcas: ["{quoted[2]}"]\n'
    )
    root = _profile(tmp_path, net)
    try:
        plan = _plan(_catalog(root))
    except AimcError as error:
        assert error.exit_code == 2, error  # the schema refuses it: a configuration error
        return
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    for value in (nic, resource, hca):
        assert _SAFE.match(value), value
    written = resources(plan, 1)["leaderworkerset.yaml"]
    read = load_yaml(to_yaml(written))
    (server,) = read["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"]
    env = {e["name"]: kubelet_expand(e["value"], {}) for e in server["env"] if "value" in e}
    assert env["NCCL_SOCKET_IFNAME"] == nic and env["NCCL_IB_HCA"] == hca
    assert server["resources"]["requests"][resource] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("socket_ifname", "eth0; rm -rf /"),
        ("socket_ifname", "$(HF_TOKEN)"),
        ("socket_ifname", "a" * 16),
        ("resource", "rdma/a: b"),
        ("resource", "no-slash"),
        ("hcas", "mlx5_0,mlx5_1"),
    ],
)
def test_hostile_interconnect_values_are_exit_2(
    cli: Any, tmp_path: Path, field: str, value: str
) -> None:
    net = {
        "socket_ifname": "eth0",
        "resource": RESOURCE,
        "hcas": "mlx5_0",
    } | {field: value}
    text = (
        f"interconnect:\n  socket_ifname: {_q(net['socket_ifname'])}\n  rdma:\n"
        f"    resource: {_q(net['resource'])}\n    hcas: [{_q(net['hcas'])}]\n"
    )
    root = _profile(tmp_path, text)
    result = cli(
        "compile", MODEL, "--target", "h100", "--precision", "bf16", "--recipes", str(root),
        "--emit", "k8s", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.code == 2, result.err
    assert "h100.yaml" in result.err and "interconnect" in result.err, result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
