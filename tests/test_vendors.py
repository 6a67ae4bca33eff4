"""The vendor registry (aimc.vendors): a new kind of accelerator is one registration.

The dummy vendor ``acme`` below is registered from this test alone (no module of aimc
edited), with a detection method of its own: a hardware profile of it validates against
the schema, compiles (its device variable, the tool its ids follow, Compose's reservation
through its driver, the Kubernetes resource of its device plugin), detection finds its
GPUs and narrows them by its visibility variable, a derived profile gets its defaults, and
once it is gone it is refused again. The built-in vendors are tied to the shipped schema
and to the detection methods they name; an unregistered vendor is an error, never another
vendor's defaults.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.check.hardware import generic_profile
from aimc.core.errors import ConfigError
from aimc.core.safety import ENV_NAME
from aimc.detect import DETECTORS, GPU, Context, Method, detect, methods
from aimc.emit.render import render
from aimc.plan.request import Request
from aimc.vendors import (
    VENDORS,
    Vendor,
    Visibility,
    gpu_vendors,
    register,
    runtimes,
    vendor,
    visibility_variables,
)
from tests.conftest import ROOT
from tests.helpers.cli import Result, run_cli


def _acme_gpu(index: int, device_id: str) -> GPU:
    return GPU(
        index=index, vendor="acme", model="Acme A1", architecture="a1", device_id=device_id,
        memory_total_mib=65536, memory_free_mib=65536, uuid=f"GPU-acme-{index}",
        source="acme-smi",
    )  # fmt: skip


def _acme_gpus(context: Context) -> list[GPU]:
    """Two Acme A1 boards, as a vendor tool would list them."""
    return [_acme_gpu(i, "0xa1a1") for i in range(2)]


ACME = Vendor(
    name="acme",
    device_resource="acme.example/accelerator",
    precisions=lambda arch: ["bf16", "fp8"] if arch == "a1" else ["bf16"],
    defaults={
        "container": {"runtime": "acmert", "gpu_reservation": True, "ipc": "host"},
        "backends": {"vllm": {"image": "acme/vllm:0.32.0"}},
    },
    detection=("acme-smi",),
    visibility=(Visibility(("ACME_VISIBLE_DEVICES",)),),
    device_tool="acme-smi",
    device_env="ACME_VISIBLE_DEVICES",
    process_env=(("ACME_DEVICE_ORDER", "PCI"),),
    unset_env=("ACME_RUNTIME_DEVICES",),
    reservation="acme",
)
ACME_SMI = Method("acme-smi", "acme", _acme_gpus)

PROFILE = """\
apiVersion: aimc/v1
kind: HardwareProfile
name: acme-a1
description: Acme A1 (a vendor registered by a test)
vendor: acme
architecture: a1
memory_gib: 64
gpus_per_node: 4
precisions: [bf16]
pci_device_ids: ["0xa1a1"]
container:
  runtime: acmert
  gpu_reservation: true
  ipc: host
backends:
  vllm:
    image: acme/vllm:0.32.0
"""

RECIPE = """\
apiVersion: aimc/v1
kind: Recipe
model:
  id: acme/Tiny-1B
  facts:
    parameters: 1.0e+9
    layers: 16
    hidden_size: 2048
    attention_heads: 32
    kv_heads: 8
    head_dim: 64
    max_context: 8192
    vocab_size: 32000
weights:
  bf16: {repo: acme/Tiny-1B}
defaults:
  backend: vllm
  precision: bf16
  context_length: 4096
configurations:
  - id: acme-vllm
    hardware: [acme-a1]
    precision: [bf16]
    gpus: [1, 2]
"""


@pytest.fixture
def acme() -> Iterator[Vendor]:
    """The dummy vendor and its detection method, registered for one test; the registries
    as they were afterwards."""
    registered = register(ACME)
    DETECTORS.add(ACME_SMI)
    try:
        yield registered
    finally:
        VENDORS.pop("acme", None)
        DETECTORS.pop("acme-smi", None)


@pytest.fixture(autouse=True)
def _machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection in this process sees no real tool or library (nor any sysfs: see
    :func:`_env`), whatever the machine has."""
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for name in ("amdsmi", "pynvml"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails: "unavailable"
    for name in (*visibility_variables(), "ACME_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A command's own cache and state folders, no tool on PATH, no KFD topology."""
    return {
        "CACHE_DIR": str(tmp_path / "cache"),
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "AIMC_KFD_TOPOLOGY": str(tmp_path / "no-kfd"),
        "PATH": str(tmp_path / "bin"),
        **extra,
    }


def _recipes(tmp_path: Path) -> Path:
    root = tmp_path / "recipes"
    (root / "models" / "acme").mkdir(parents=True, exist_ok=True)
    (root / "hardware").mkdir(exist_ok=True)
    (root / "models" / "acme" / "Tiny-1B.yaml").write_text(RECIPE, encoding="utf-8")
    (root / "hardware" / "acme-a1.yaml").write_text(PROFILE, encoding="utf-8")
    return root


def _aim(tmp_path: Path, *args: str, **env: str) -> Result:
    """``aim-engine ARGS`` in this process (where the registrations hold)."""
    return run_cli(*args, env=_env(tmp_path, **env))


def _compile(tmp_path: Path, out: str, *extra: str, **env: str) -> Path:
    recipes = str(_recipes(tmp_path))
    args = ["compile", "acme/Tiny-1B", *extra, "--recipes", recipes, "-o", str(tmp_path / out)]
    done = _aim(tmp_path, *args, **env)
    assert done.code == 0, done.err
    return tmp_path / out


def test_a_registered_vendor_validates_and_compiles(acme: Vendor, tmp_path: Path) -> None:
    done = _aim(tmp_path, "validate", str(_recipes(tmp_path)))
    assert done.code == 0, done.out + done.err
    out = _compile(tmp_path, "out", "2", "--target", "acme-a1", "--devices", "0,1")
    launch = (out / "launch.sh").read_text()
    # The Docker launcher: the runtime maps the reserved GPUs, no device variable inside.
    assert "--gpus '\"device=0,1\"'" in launch
    assert "# GPUs: devices 0,1 (device ids as acme-smi numbers them)." in launch
    assert "ACME_VISIBLE_DEVICES" not in launch and "CUDA" not in launch
    aim_env = (out / "aim.env").read_text()
    assert "a bare process through ACME_VISIBLE_DEVICES=0,1 (--launcher process)." in aim_env
    compose = (out / "compose.yaml").read_text()
    assert '- driver: "acme"' in compose and '- "1"' in compose and "nvidia" not in compose
    # A bare process gets the vendor's variables, and the caller's competing one unset.
    args = ("2", "--target", "acme-a1", "--devices", "0,1", "--launcher", "process")
    bare = _compile(tmp_path, "bare", *args)
    script = (bare / "launch.sh").read_text().splitlines()
    assert "unset ACME_RUNTIME_DEVICES" in script
    assert "export ACME_DEVICE_ORDER=PCI" in script and "export ACME_VISIBLE_DEVICES=0,1" in script
    assert not any("CUDA" in line or "ROCR" in line for line in script)


def test_its_pods_request_its_device_plugin_resource(acme: Vendor, tmp_path: Path) -> None:
    out = _compile(tmp_path, "k8s", "2", "--target", "acme-a1", "--emit", "k8s")
    deployment = (out / "deployment.yaml").read_text()
    assert deployment.count('"acme.example/accelerator": 2') == 2  # requests and limits
    assert "nvidia.com" not in deployment and "amd.com" not in deployment


def test_detection_finds_its_gpus_and_its_visibility_variable_narrows_them(
    acme: Vendor, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    assert [m.name for m in methods()][-1] == "acme-smi"
    found = detect(env)
    assert [g.index for g in found.gpus] == [0, 1] and found.hidden == 0
    assert {p.method: p.status for p in found.probes}["acme-smi"] == "found"
    narrowed = detect({**env, "ACME_VISIBLE_DEVICES": "1"})
    assert [g.index for g in narrowed.gpus] == [1] and narrowed.hidden == 1
    assert narrowed.visibility == {"ACME_VISIBLE_DEVICES": "1"}
    assert detect({**env, "ACME_VISIBLE_DEVICES": ""}).gpus == []  # empty hides every GPU
    # --target auto: the profile by PCI id, the visible GPU named by its device id.
    args = ("1", "--target", "auto", "--launcher", "process")
    out = _compile(tmp_path, "auto", *args, ACME_VISIBLE_DEVICES="1")
    script = (out / "launch.sh").read_text().splitlines()
    assert "export ACME_VISIBLE_DEVICES=1" in script
    assert json.loads((out / "manifest.json").read_text())["plan"]["hardware"]["name"] == "acme-a1"
    # The plan names its GPUs, so a layer may not choose them by the vendor's variable.
    recipes = str(_recipes(tmp_path))
    done = _aim(
        tmp_path, "compile", "acme/Tiny-1B", "1", "--target", "acme-a1", "--devices", "0",
        "--recipes", recipes, "--set", "env.ACME_VISIBLE_DEVICES=1", "-o", str(tmp_path / "no"),
    )  # fmt: skip
    assert done.code == 2 and "env.ACME_VISIBLE_DEVICES (--set" in done.err


def test_a_derived_profile_of_its_gpu_gets_its_defaults(acme: Vendor) -> None:
    data = generic_profile([_acme_gpu(0, "0xa1ff")]).data
    assert (data["vendor"], data["precisions"]) == ("acme", ["bf16", "fp8"])
    assert data["container"] == ACME.defaults["container"]
    assert data["backends"] == {"vllm": {"image": "acme/vllm:0.32.0"}}


def test_without_the_registration_it_is_refused(tmp_path: Path) -> None:
    assert "acme" not in VENDORS and "acmert" not in runtimes()
    assert "acme-smi" not in [m.name for m in methods()]
    done = _aim(tmp_path, "validate", str(_recipes(tmp_path)))
    assert done.code == 2
    assert "acme-a1.yaml:5:9: error: 'acme' is not one of: amd, nvidia, cpu" in done.out
    assert "acme-a1.yaml:12:12: error: 'acmert' is not one of: rocm, cuda, cpu" in done.out


def test_its_names_reach_the_scripts_only_when_safe(acme: Vendor, tmp_path: Path) -> None:
    """The vendor's variable names are written as shell words and env-file keys, its tool
    into a comment: a name that is not a variable name is refused, a tool stays one line."""
    request = Request(model="acme/Tiny-1B", gpus=2, devices=(0, 1), launcher="process")
    catalog = Catalog.default([_recipes(tmp_path)])
    plan = make_plan(catalog, request, "acme-a1", tmp_path / "cache")
    baseline = render(plan, "aim-engine compile")

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(word=st.text(min_size=1, max_size=30))
    def check(word: str) -> None:
        for field, value in (
            ("device_env", word),
            ("unset_env", (word,)),
            ("process_env", ((word, "PCI"),)),
            ("device_tool", word),
        ):
            VENDORS["acme"] = dataclasses.replace(ACME, **{field: value})
            try:
                files = render(plan, "aim-engine compile")
            except ConfigError:
                assert field != "device_tool" and not ENV_NAME.fullmatch(word), field
                continue
            assert field == "device_tool" or ENV_NAME.fullmatch(word), field
            for name, text in files.items():
                assert len(text.splitlines()) == len(baseline[name].splitlines()), (field, name)

    try:
        check()
    finally:
        VENDORS["acme"] = ACME


def test_the_schema_lists_the_built_in_vendors_and_runtimes() -> None:
    schema = json.loads((ROOT / "schemas" / "hardware.schema.json").read_text())
    assert schema["properties"]["vendor"]["enum"] == list(VENDORS)
    runtime = schema["properties"]["container"]["properties"]["runtime"]["enum"]
    assert runtime == list(runtimes()) == ["rocm", "cuda", "cpu"]


def test_every_gpu_vendor_says_how_its_gpus_are_found_narrowed_and_handed_on() -> None:
    assert gpu_vendors() == ("amd", "nvidia")
    assert [m.name for m in methods()] == [
        "amdsmi", "amd-smi", "rocm-smi", "kfd", "nvml", "nvidia-smi",
    ]  # fmt: skip
    assert visibility_variables() == (
        "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES",
    )  # fmt: skip
    for name in gpu_vendors():
        maker = vendor(name)
        assert maker.detection and all(DETECTORS[m].vendor == name for m in maker.detection)
        assert maker.visibility and maker.device_env and maker.device_tool
    assert vendor("amd").device_resource == "amd.com/gpu"
    assert vendor("nvidia").device_resource == "nvidia.com/gpu"
    assert (vendor("nvidia").reservation, vendor("amd").reservation) == ("nvidia", None)
    assert vendor("cpu").device_resource is None and not vendor("cpu").detection


def test_a_reservation_its_vendor_lacks_is_refused(tmp_path: Path) -> None:
    """Before issue 23 an AMD profile with gpu_reservation got NVIDIA's Compose driver."""
    root = tmp_path / "recipes" / "hardware"
    root.mkdir(parents=True)
    text = (ROOT / "recipes" / "hardware" / "mi300x.yaml").read_text()
    (root / "mi300x.yaml").write_text(  # a user's mi300x, found before the shipped one
        text.replace("  runtime: rocm\n", "  runtime: rocm\n  gpu_reservation: true\n")
    )
    done = _aim(
        tmp_path, "compile", "Qwen/Qwen3-8B", "1", "--target", "mi300x",
        "--recipes", str(tmp_path / "recipes"), "-o", str(tmp_path / "no"),
    )  # fmt: skip
    assert done.code == 2 and not (tmp_path / "no").exists()
    assert "amd GPUs are not reserved through Docker's --gpus" in done.err


def test_an_unknown_vendor_is_an_error_not_nvidia() -> None:
    """Before issue 23 a derived profile of any non-AMD GPU got NVIDIA's container and
    image, and a pod of an unknown vendor requested no device at all."""
    gaudi = GPU(
        index=0, vendor="intel", model="Gaudi 3", architecture="hl-325", device_id="0x1060",
        memory_total_mib=131072, memory_free_mib=131072, uuid=None, source="test",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="unknown GPU vendor 'intel'"):
        generic_profile([gaudi])
