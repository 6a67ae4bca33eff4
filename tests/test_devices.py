"""The GPUs chosen are the GPUs used (``--devices``, visibility, busy GPUs).

When visibility variables narrow this machine's GPUs, or some are busy, the plan names the
GPUs it uses by device id and every artifact gives the server exactly those: ``docker run
--gpus '"device=4,5,6,7"'`` and Compose ``device_ids`` on NVIDIA, ``CUDA_VISIBLE_DEVICES``
for a bare process and inside an AMD container. ``--devices`` records the choice, so the
header's ``aim-engine compile`` line regenerates byte-identical files on a machine without
GPUs (CI). Detected machines are the stand-ins of tests/fakes/gpu_machine.py; the server
is the stand-in of tests/fakes/fake_server.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.app.pipeline import for_target, make_plan
from aimc.check.catalog import Catalog
from aimc.check.hardware import Target
from aimc.core.errors import ConfigError
from aimc.core.safety import MAX_DEVICE_ID, parse_devices
from aimc.emit.emitters import compile_plan
from aimc.plan.request import Request
from aimc.run.process import alive
from tests.conftest import ROOT
from tests.fakes.gpu_machine import Machine

CATALOG = Catalog.default()
MODEL = "Qwen/Qwen3-32B"
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
FAKE = ROOT / "tests" / "fakes" / "fake_server.py"
#: A stand-in for docker (or the server's python): records its argv and environment.
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
"""


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def _header_command(folder: Path) -> list[str]:
    """The ``aim-engine compile ...`` line of launch.sh's header, as argv after the program."""
    line = (folder / "launch.sh").read_text().splitlines()[2]
    words = shlex.split(line.removeprefix("#"))
    assert words[:2] == ["aim-engine", "compile"], line
    return words[1:]


def _docker_run(folder: Path) -> list[str]:
    """The words of launch.sh's ``exec docker run ...`` as bash would split them."""
    text = (folder / "launch.sh").read_text()
    start = text.index("exec docker run")
    return shlex.split(text[start:].replace("\\\n", " "))


def _option(words: list[str], name: str) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == name]


def _compose(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((folder / "compose.yaml").read_text())
    errors = [
        e.message
        for e in jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text())).iter_errors(
            data
        )
    ]
    assert not errors, errors
    return data


def _assigned(path: Path, name: str) -> list[str]:
    """The values ``path`` (aim.env) assigns to ``name``."""
    lines = path.read_text().splitlines()
    return [ln.partition("=")[2] for ln in lines if ln.startswith(f"{name}=")]


def _reservation(folder: Path) -> dict[str, Any]:
    service = _compose(folder)["services"]["server"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    return dict(device)


def _reproduces(cli: Any, folder: Path) -> None:
    """The header's command, run on a machine without GPUs (CI), finds ``folder`` up to
    date: byte-identical files, manifest included."""
    words = _header_command(folder)
    no_gpu = {
        "PATH": "/usr/bin:/bin",
        "AIMC_KFD_TOPOLOGY": str(folder / "no-kfd"),
        "AIMC_STATE_DIR": str(folder.parent / "ci-state"),
        "CACHE_DIR": str(folder.parent / "ci-cache"),
    }
    check = cli(*words, "-o", str(folder), "--check", env=no_gpu)
    assert check.code == 0, check.out + check.err
    assert check.out.strip() == f"{folder} is up to date"


# --- this machine: visibility and busy GPUs name device ids --------------------------------


def test_cuda_visible_devices_reach_docker_and_compose_as_device_ids(machine, cli, tmp_path):
    """Failed before: CUDA_VISIBLE_DEVICES=4,5,6,7 gave ``docker run
    --gpus 4`` (any four GPUs, in practice 0-3) and Compose ``count: 4``."""
    machine.h100s(8)
    out = tmp_path / "out"
    result = machine.run(cli, "compile", MODEL, "-o", str(out), CUDA_VISIBLE_DEVICES="4,5,6,7")
    assert result.code == 0, result.err
    assert "4 GPUs (devices 4,5,6,7)" in result.out
    words = _docker_run(out)
    # Docker reads --gpus as CSV: the device list must arrive as one quoted field.
    assert _option(words, "--gpus") == ['"device=4,5,6,7"']
    assert _reservation(out) == {
        "driver": "nvidia",
        "device_ids": ["4", "5", "6", "7"],
        "capabilities": ["gpu"],
    }
    # Numbered from 0 inside the container: no CUDA_VISIBLE_DEVICES there.
    assert not _assigned(out / "aim.env", "CUDA_VISIBLE_DEVICES")
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert (plan["gpus"], plan["devices"]) == (4, [4, 5, 6, 7])
    assert _header_command(out) == [
        "compile",
        MODEL,
        "--target",
        "h100",
        "--devices",
        "4,5,6,7",
    ]
    _reproduces(cli, out)


def test_docker_receives_the_device_list_as_one_argument(machine, cli, tmp_path):
    """launch.sh run with a stand-in docker: the argv docker gets (bash's quoting, not
    ours) holds ``--gpus`` and ``"device=1,2"`` exactly."""
    machine.h100s(4, busy=(0, 3))
    out = tmp_path / "out"
    assert machine.run(cli, "compile", MODEL, "2", "-o", str(out)).code == 0
    bindir = tmp_path / "docker-bin"
    bindir.mkdir()
    (bindir / "docker").write_text(RECORDER)
    (bindir / "docker").chmod(0o755)
    record = tmp_path / "record.json"
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "RECORD": str(record), "CACHE_DIR": str(tmp_path)}
    run = subprocess.run(["bash", str(out / "launch.sh")], env=env, capture_output=True, timeout=30)
    assert run.returncode == 0, run.stderr
    argv = json.loads(record.read_text())["argv"]
    assert argv[argv.index("--gpus") + 1] == '"device=1,2"'


def test_busy_gpus_are_left_out_of_the_artifacts_and_the_header_reproduces(machine, cli, tmp_path):
    """Failed before: a busy GPU was not counted and then used anyway
    (``--gpus 6``: docker takes any six); and the header's command of an auto-count
    compile gave other files (TP 2 on a named target)."""
    machine.h100s(8, busy=(0, 3))
    out = tmp_path / "out"
    result = machine.run(cli, "compile", MODEL, "-o", str(out))
    assert result.code == 0, result.err
    assert _option(_docker_run(out), "--gpus") == ['"device=1,2,4,5,6,7"']
    assert _reservation(out)["device_ids"] == ["1", "2", "4", "5", "6", "7"]
    words = _docker_run(out)
    assert words[words.index("--tensor-parallel-size") + 1] == "2"
    assert words[words.index("--data-parallel-size") + 1] == "3"
    assert _header_command(out)[4:] == ["--devices", "1,2,4,5,6,7"]
    _reproduces(cli, out)


def test_a_gpu_count_given_takes_the_free_gpus_first(machine, cli, tmp_path):
    """Failed before: ``compile MODEL 4`` with GPUs 0 and 1 busy gave
    ``--gpus 4`` (docker's first four, both busy ones included)."""
    machine.h100s(8, busy=(0, 1))
    out = tmp_path / "out"
    assert machine.run(cli, "compile", MODEL, "4", "-o", str(out)).code == 0
    assert _option(_docker_run(out), "--gpus") == ['"device=2,3,4,5"']
    assert _header_command(out)[2:] == ["4", "--target", "h100", "--devices", "2,3,4,5"]
    _reproduces(cli, out)


def test_every_gpu_free_and_visible_keeps_the_count(machine, cli, tmp_path):
    """Guards what must not change: GPU_COUNT on a machine whose GPUs are all free and
    visible is any N GPUs (``--gpus 4``), as for a named target."""
    machine.h100s(8)
    out = tmp_path / "out"
    assert machine.run(cli, "compile", MODEL, "4", "-o", str(out)).code == 0
    assert _option(_docker_run(out), "--gpus") == ["4"]
    assert _reservation(out)["count"] == 4
    assert "--devices" not in _header_command(out)
    _reproduces(cli, out)


def test_an_auto_count_compile_writes_a_header_that_gives_the_same_files(machine, cli, tmp_path):
    """Failed before: 8 free H100s gave TP 8, and the header's command
    (``aim-engine compile Qwen/Qwen3-32B --target h100``) gave TP 2."""
    machine.h100s(8)
    out = tmp_path / "out"
    assert machine.run(cli, "compile", MODEL, "-o", str(out)).code == 0
    words = _docker_run(out)
    assert words[words.index("--tensor-parallel-size") + 1] == "8"
    assert _header_command(out)[2:] == ["--target", "h100", "--devices", "0,1,2,3,4,5,6,7"]
    _reproduces(cli, out)


def test_rocr_visible_devices_reach_an_amd_container(machine, cli, tmp_path):
    """Failed before: ROCR_VISIBLE_DEVICES=4,5,6,7 on MI300X gave the
    container every GPU (``--device /dev/dri``) and nothing that chose four of them."""
    machine.mi300xs(8)
    out = tmp_path / "out"
    result = machine.run(cli, "compile", MODEL, "-o", str(out), ROCR_VISIBLE_DEVICES="4,5,6,7")
    assert result.code == 0, result.err
    words = _docker_run(out)
    assert _option(words, "--device") == ["/dev/kfd", "/dev/dri"]
    assert "CUDA_VISIBLE_DEVICES" in _option(words, "-e")
    assert "ROCR_VISIBLE_DEVICES" not in (out / "launch.sh").read_text()
    # launch.sh exports aim.env's values (docker -e NAME passes them); Compose reads aim.env.
    assert "CUDA_VISIBLE_DEVICES=4,5,6,7" in (out / "aim.env").read_text().splitlines()
    assert "export CUDA_VISIBLE_DEVICES=4,5,6,7" in (out / "launch.sh").read_text()
    assert _compose(out)["services"]["server"]["env_file"] == ["aim.env"]
    assert words[words.index("--tensor-parallel-size") + 1] == "4"
    _reproduces(cli, out)


# --- the process launcher: the variables reach the server ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(machine: Machine, cli: Any, tmp_path: Path):
    """``launch --launcher process`` on the stand-in machine with the stand-in server as
    AIM_PYTHON, which first records its environment; every server stopped at teardown."""
    record, pids = tmp_path / "server-env.json", tmp_path / "pids.json"
    python = tmp_path / "fake-python"
    python.write_text(
        "#!/bin/bash\n"
        f"{sys.executable} -c 'import json, os, sys; "
        'json.dump(dict(os.environ), open(sys.argv[1], "w"))\' '
        f'"$RECORD_ENV"\nexec {sys.executable} {FAKE} "$@"\n'
    )
    python.chmod(0o755)
    extra = {"AIM_PYTHON": str(python), "RECORD_ENV": str(record), "FAKE_PIDS": str(pids)}

    def launch(*args: str, **env: str) -> dict[str, str]:
        result = machine.run(
            cli,
            "launch",
            MODEL,
            *args,
            "--launcher",
            "process",
            "--port",
            str(_free_port()),
            "--timeout",
            "60",
            **extra,
            **env,
        )
        assert result.code == 0, result.err
        seen: dict[str, str] = json.loads(record.read_text())
        return seen

    yield launch
    machine.run(cli, "stop", "--all")
    if pids.exists():  # never leave a stand-in behind, whatever a test did
        for pid in json.loads(pids.read_text()).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_process_launcher_gives_the_server_the_free_gpus(machine, served):
    """Failed before: GPUs 0-3 busy, a count left open counted 4 free
    GPUs and the server (no variable set) took GPUs 0-3, the busy ones."""
    machine.h100s(8, busy=(0, 1, 2, 3))
    env = served()
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers GPUs as nvidia-smi does


def test_the_process_launcher_on_rocm_sets_the_variable_vllm_reads(machine, served):
    """Failed before: the server inherited ROCR_VISIBLE_DEVICES=4,5,6,7
    and no CUDA_VISIBLE_DEVICES; vLLM 0.32 on ROCm reads CUDA_VISIBLE_DEVICES as the
    physical ids it maps through amdsmi (vllm/platforms/rocm.py), and ROCR's renumbering
    under it would hide every GPU (ids 4-7 of the 4 ROCR leaves)."""
    machine.mi300xs(8)
    env = served(ROCR_VISIBLE_DEVICES="4,5,6,7", HIP_VISIBLE_DEVICES="0,1,2,3")
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    assert "ROCR_VISIBLE_DEVICES" not in env and "HIP_VISIBLE_DEVICES" not in env
    assert "CUDA_DEVICE_ORDER" not in env


# --- --devices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("devices", "gpus", "dp", "precision"),
    [("4,5,6,7", 4, 1, "bf16"), ("0,1,2,3,4,5", 2, 3, "bf16"), ("6", 1, 1, "fp8")],
)
def test_devices_on_a_named_target_fill_like_a_machine(cli, tmp_path, devices, gpus, dp, precision):
    """``--devices`` with the count open fills the devices as this machine's free GPUs
    are filled: one TP group where the recipe offers it, else replicas; one H100 holds
    Qwen3-32B in fp8 only (bf16 needs 2)."""
    out = tmp_path / "out"
    result = cli("compile", MODEL, "--target", "h100", "--devices", devices, "-o", str(out))
    assert result.code == 0, result.err
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert (plan["gpus"], plan["data_parallel"], plan["precision"]) == (gpus, dp, precision)
    assert plan["devices"] == [int(d) for d in devices.split(",")]
    assert _option(_docker_run(out), "--gpus") == [f'"device={devices}"']
    _reproduces(cli, out)


def test_too_few_devices_are_refused_with_the_count(cli, tmp_path) -> None:
    result = cli(
        "compile", "meta-llama/Llama-3.1-405B-Instruct", "--target", "h100", "--devices", "0,1",
        "-o", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "error: meta-llama/Llama-3.1-405B-Instruct needs at least 8 GPUs of h100; "
        "--devices names 2 GPUs"
    )


def test_a_named_target_ignores_this_machines_visibility(machine, cli, tmp_path):
    """A named target describes another machine: CUDA_VISIBLE_DEVICES and busy GPUs here
    change nothing in its artifacts (unless --devices is given)."""
    machine.h100s(8, busy=(0,))
    out = tmp_path / "out"
    result = machine.run(
        cli, "compile", MODEL, "--target", "h100", "-o", str(out), CUDA_VISIBLE_DEVICES="4,5"
    )
    assert result.code == 0, result.err
    assert _option(_docker_run(out), "--gpus") == ["2"]
    assert "devices" not in json.loads((out / "manifest.json").read_text())["plan"]


def test_compile_json_names_the_devices(cli, tmp_path) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema = json.loads((ROOT / "schemas" / "output.schema.json").read_text())
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    compile_schema = {"$ref": f"{schema['$id']}#/$defs/compile"}
    for args, devices in (([], None), (["--devices", "4,5,6,7"], [4, 5, 6, 7])):
        out = tmp_path / str(len(args))
        result = cli(
            "compile", MODEL, "--target", "h100", *args, "-o", str(out), "--format", "json"
        )
        assert result.code == 0, result.err
        body = json.loads(result.out)
        Draft202012Validator(compile_schema, registry=registry).validate(body)
        assert body["data"]["devices"] == devices


def test_show_config_shows_the_devices(cli) -> None:
    result = cli("show-config", MODEL, "--target", "mi300x", "--devices", "4,5,6,7")
    assert result.code == 0, result.err
    assert "devices:        4,5,6,7" in result.out.splitlines()
    data = cli(
        "show-config", MODEL, "--target", "mi300x", "--devices", "4,5,6,7", "--format", "json"
    )
    body = json.loads(data.out)
    assert body["data"]["plan"]["devices"] == [4, 5, 6, 7]
    assert body["message"] == (
        f"{MODEL} on mi300x: vllm bf16, 4 GPUs (devices 4,5,6,7), configuration amd-vllm"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2", "--devices", "4,5,6,7"], "--devices 4,5,6,7 names 4 GPUs, GPU_COUNT is 2"),
        (["--devices", "0,1,2,3,4,5,6,7,8"], "names 9 GPUs; h100 nodes have 8 GPUs"),
        (["--devices", "4,4"], "--devices 4,4 names device 4 more than once"),
        (["--devices", f"{MAX_DEVICE_ID + 1}"], f"device id {MAX_DEVICE_ID + 1} is above"),
        (["--devices", "4, 5"], "'4, 5' is not a list of GPU device ids"),
        (["--devices", ""], "'' is not a list of GPU device ids"),
        (
            ["--devices", "4", "--set", "env.CUDA_VISIBLE_DEVICES=0"],
            "env.CUDA_VISIBLE_DEVICES (--set env.CUDA_VISIBLE_DEVICES=0) would choose GPUs",
        ),
    ],
)
def test_bad_devices_are_one_line_and_exit_2(cli, tmp_path, args, message) -> None:
    result = cli("compile", MODEL, *args, "--target", "h100", "-o", str(tmp_path / "o"))
    assert result.code == 2
    lines = result.err.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], result.err
    assert len(lines) <= 2 and all(ln.startswith(("error: ", "hint: ")) for ln in lines)
    assert not (tmp_path / "o").exists()


def test_devices_on_the_cpu_target_are_refused(cli, tmp_path) -> None:
    result = cli(
        "compile",
        "aimc-examples/tiny-llama",
        "--recipes",
        str(ROOT / "examples/recipes"),
        "--target",
        "cpu",
        "--devices",
        "0",
        "-o",
        str(tmp_path / "o"),
    )
    assert result.code == 2
    assert result.err.splitlines()[0] == "error: --devices 0 names GPUs; target cpu has none"


def test_devices_here_must_be_visible_gpus(machine, cli, tmp_path) -> None:
    machine.h100s(8)
    result = machine.run(
        cli, "compile", MODEL, "--devices", "0,1", "-o", str(tmp_path / "o"),
        CUDA_VISIBLE_DEVICES="4,5,6,7",
    )  # fmt: skip
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "error: --devices 0,1: GPU 0 is not a visible GPU of this machine (visible: 4,5,6,7)"
    )
    given = machine.run(cli, "compile", MODEL, "--devices", "6,7", "-o", str(tmp_path / "o"))
    assert given.code == 0, given.err
    assert _option(_docker_run(tmp_path / "o"), "--gpus") == ['"device=6,7"']


def test_devices_without_a_gpu_here_is_exit_3(machine, cli, tmp_path) -> None:
    result = machine.run(cli, "compile", MODEL, "--devices", "0", "-o", str(tmp_path / "o"))
    assert result.code == 3
    assert result.err.startswith("error: no GPU detected")


def test_kubernetes_ignores_device_ids(cli, tmp_path) -> None:
    """The device plugin chooses a pod's GPUs (numbered from 0 inside it): the manifests ask
    for the count and set no visibility variable, also for AMD."""
    for target, resource in (("h100", "nvidia.com/gpu"), ("mi300x", "amd.com/gpu")):
        out = tmp_path / target
        result = cli(
            "compile", MODEL, "--target", target, "--devices", "4,5,6,7", "--emit", "k8s",
            "-o", str(out),
        )  # fmt: skip
        assert result.code == 0, result.err
        deployment = YAML(typ="safe").load((out / "deployment.yaml").read_text())
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["limits"][resource] == 4
        assert "VISIBLE_DEVICES" not in json.dumps(container)
        line = (out / "deployment.yaml").read_text().splitlines()[1]
        assert "--devices 4,5,6,7" in line


# --- hostile values: refused, or one shell word ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.text(alphabet="0123456789,;-+ $()`'\"\n\\x٣", max_size=20),
        st.lists(st.integers(0, 300), min_size=1, max_size=10).map(
            lambda ids: ",".join(map(str, ids))
        ),
    )
)
def test_device_ids_are_parsed_or_refused(text: str) -> None:
    try:
        ids = parse_devices(text)
    except ConfigError as exc:
        assert "\n" not in exc.message and len(exc.message) < 200
        return
    assert ",".join(map(str, ids)) == text  # accepted only as written: plain ids
    assert len(set(ids)) == len(ids) and all(0 <= i <= MAX_DEVICE_ID for i in ids)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, MAX_DEVICE_ID), min_size=1, max_size=8, unique=True))
def test_accepted_devices_stay_one_shell_word_and_yaml_strings(ids: list[int]) -> None:
    text = ",".join(map(str, ids))
    for target in ("h100", "mi300x"):
        request = Request(model=MODEL, devices=parse_devices(text))
        try:
            plan = make_plan(CATALOG, request, target)
        except ConfigError:  # too few devices for the recipe here
            continue
        assert plan.devices == ids[: plan.total_gpus]
        used = ",".join(map(str, plan.devices))
        files = compile_plan(plan, request, target).files
        script = files["launch.sh"]
        words = shlex.split(script[script.index("exec docker run") :].replace("\\\n", " "))
        service = YAML(typ="safe").load(files["compose.yaml"])["services"]["server"]
        if target == "h100":
            assert _option(words, "--gpus") == [f'"device={used}"']
            (res,) = service["deploy"]["resources"]["reservations"]["devices"]
            assert res["device_ids"] == [str(i) for i in plan.devices]
        else:
            assert "CUDA_VISIBLE_DEVICES" in _option(words, "-e")
            assert f"CUDA_VISIBLE_DEVICES={used}" in files["aim.env"].splitlines()
        assert _header_words(script)[-2:] == ["--devices", text]


def _header_words(script: str) -> list[str]:
    return shlex.split(script.splitlines()[2].removeprefix("#"))


def test_for_target_keeps_a_named_targets_request() -> None:
    """A named target describes no machine: nothing is added to the request."""
    request = Request(model=MODEL)
    assert for_target(request, Target(CATALOG.hardware("h100"))) == (request, None)


# --- goldens ---------------------------------------------------------------------------------

GOLDEN_CASES = {
    "h100-docker": ("h100", None),
    "h100-process": ("h100", "process"),
    "mi300x-docker": ("mi300x", None),
    "mi300x-process": ("mi300x", "process"),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_device_subset_artifacts_match_golden(case: str, golden, tmp_path: Path) -> None:
    """``aim-engine compile Qwen/Qwen3-32B 4 --target T --devices 4,5,6,7`` (docker and
    process): launch.sh, aim.env and compose.yaml, byte for byte; the scripts pass bash -n
    and shellcheck, the compose files the Compose Specification."""
    target, launcher = GOLDEN_CASES[case]
    request = Request(model=MODEL, gpus=4, devices=(4, 5, 6, 7), launcher=launcher)
    files = compile_plan(make_plan(CATALOG, request, target), request, target).files
    for name in ("launch.sh", "aim.env", "compose.yaml"):
        if name in files:
            golden(f"devices/{case}/{name}", files[name])
    # aim.env is the container's (Compose's env_file, also beside a bare process): an
    # NVIDIA container numbers its GPUs from 0, an AMD one keeps the host's ids.
    (tmp_path / "aim.env").write_text(files["aim.env"])
    inside = _assigned(tmp_path / "aim.env", "CUDA_VISIBLE_DEVICES")
    assert inside == ([] if target == "h100" else ["4,5,6,7"])
    script = tmp_path / "launch.sh"
    script.write_text(files["launch.sh"])
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert shellcheck, "shellcheck is installed with the dev dependencies"
    checked = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True)
    assert checked.returncode == 0, checked.stdout
    if "compose.yaml" in files:
        (tmp_path / "compose.yaml").write_text(files["compose.yaml"])
        _compose(tmp_path)
