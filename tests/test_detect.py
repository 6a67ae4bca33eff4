"""GPU detection from recorded tool outputs, fake sysfs trees and stand-in executables.

The tools are stand-in executables on PATH (shell scripts that print recorded outputs,
fail, or hang); the Python libraries are stand-in modules on PYTHONPATH. Nothing here
needs a GPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.gpu_tools import FIXTURES, Machine


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _status(info: dict) -> dict[str, str]:
    return {p["method"]: p["status"] for p in info["probes"]}


def test_this_machine_has_no_gpu(cli) -> None:
    result = cli("debug", "gpu-info")
    assert result.code == 0
    assert "no GPU detected" in result.out
    assert "target: no GPU detected: name a target with --target NAME (a100-80gb, b200, h100" in (
        result.out
    )


def test_amd_smi_6_4_list_form_eight_mi300x(machine, cli) -> None:
    machine.amd_smi("amd-smi-6.4-static-8x-mi300x.json", "amd-smi-6.4-metric-8x-mi300x.json")
    info = machine.info(cli)
    assert info["gpu_count"] == 8 and info["target"] == "mi300x"
    gpu = info["gpus"][0]
    assert (gpu["model"], gpu["architecture"], gpu["device_id"], gpu["profile"]) == (
        "AMD Instinct MI300X",
        "gfx942",
        "0x74a1",
        "mi300x",
    )
    assert gpu["memory_total_mib"] == 196592
    assert _status(info) == {
        "amdsmi": "unavailable",
        "amd-smi": "found",
        "rocm-smi": "skipped",
        "kfd": "skipped",
        "nvml": "unavailable",
        "nvidia-smi": "unavailable",
    }
    busy = [w for w in info["warnings"] if "busy" in w]
    assert len(busy) == 1 and busy[0].startswith("GPU 3 (AMD Instinct MI300X) is busy")


def test_amd_smi_7_gpu_data_form(machine, cli) -> None:
    machine.amd_smi("amd-smi-7.0-static-2x-mi355x.json", "amd-smi-7.0-metric-2x-mi355x.json")
    info = machine.info(cli)
    assert info["target"] == "mi355x" and info["gpu_count"] == 2
    assert info["gpus"][1]["architecture"] == "gfx950"
    assert info["warnings"] == []


def test_amd_smi_6_0_single_gpu_dict_and_failing_metric(machine, cli) -> None:
    machine.amd_smi("amd-smi-6.0-static-1x-mi250x.json", None)
    info = machine.info(cli)
    (gpu,) = info["gpus"]
    assert (gpu["profile"], gpu["memory_total_mib"], gpu["memory_free_mib"]) == (
        "mi250x",
        65520,
        None,
    )
    assert gpu["architecture"] is None  # ROCm 6.0 reports no target_graphics_version


def test_failing_amd_smi_falls_back_to_rocm_smi(machine, cli) -> None:
    machine.tool("amd-smi", "echo 'amdsmi: library not initialized' >&2; exit 1")
    machine.tool("rocm-smi", f"cat {FIXTURES / 'rocm-smi-6.2-2x-mi250.json'}")
    info = machine.info(cli)
    assert _status(info)["amd-smi"] == "failed"
    assert _status(info)["rocm-smi"] == "found"
    assert info["target"] == "mi250x" and info["gpu_count"] == 2
    assert info["gpus"][0]["memory_total_mib"] == 65520
    assert any("amd-smi failed: exit code 1" in w for w in info["warnings"])


def test_truncated_json_falls_back_to_sysfs(machine, cli) -> None:
    text = (FIXTURES / "amd-smi-6.4-static-8x-mi300x.json").read_text()
    (machine.bin / "static.json").write_text(text[: len(text) // 2])
    machine.tool("amd-smi", f"cat {machine.bin / 'static.json'}")
    machine.kfd_gpus(2)
    info = machine.info(cli)
    assert _status(info)["amd-smi"] == "failed"
    assert _status(info)["kfd"] == "found"
    assert [g["uuid"] for g in info["gpus"]] == ["GPU-0000000000001000", "GPU-0000000000001001"]
    assert info["target"] == "mi300x"


def test_hanging_tool_is_timed_out(machine, cli) -> None:
    machine.tool("amd-smi", "sleep 300")
    machine.kfd_gpus(1)
    start = time.monotonic()
    info = machine.info(cli, AIMC_DETECT_TIMEOUT="1")
    assert time.monotonic() - start < 120  # not the tool's 300 s (loose: a loaded machine)
    assert "timed out after 1 s" in next(
        p["detail"] for p in info["probes"] if p["method"] == "amd-smi"
    )
    assert info["gpu_count"] == 1


@pytest.mark.parametrize("count", [1, 2, 8])
def test_kfd_sysfs_trees(machine, cli, count: int) -> None:
    machine.node(1)  # a second CPU node, numbered before the GPUs
    machine.node(2)
    machine.kfd_gpus(count, first_node=3)  # GPU nodes 3..10: numeric, not lexical, order
    info = machine.info(cli)
    assert info["gpu_count"] == count and info["target"] == "mi300x"
    assert [g["uuid"] for g in info["gpus"]] == [f"GPU-{0x1000 + i:016X}" for i in range(count)]
    gpu = info["gpus"][0]
    assert (gpu["architecture"], gpu["device_id"], gpu["memory_total_mib"]) == (
        "gfx942",
        "0x74a1",
        196592,
    )
    assert gpu["memory_free_mib"] == 196592 - 256


def test_unknown_amd_gpu_gets_a_derived_profile(machine, cli, tmp_path) -> None:
    machine.kfd_gpus(1, gfx=110000, device=0x744C, vram=24560 * 2**20)
    info = machine.info(cli)
    assert info["gpus"][0]["architecture"] == "gfx1100"
    assert info["gpus"][0]["profile"] is None
    assert info["target"] == "generic-amd-gfx1100"
    assert "no profile matches; using derived profile generic-amd-gfx1100" in info["notes"][0]


def test_nvidia_smi_eight_h100(machine, cli) -> None:
    machine.nvidia_smi("nvidia-smi-8x-h100.csv")
    info = machine.info(cli)
    assert info["target"] == "h100" and info["gpu_count"] == 8
    gpu = info["gpus"][0]
    assert (gpu["architecture"], gpu["device_id"], gpu["memory_total_mib"]) == (
        "sm90",
        "0x2330",
        81559,
    )
    assert any(w.startswith("GPU 0 (NVIDIA H100 80GB HBM3) is busy") for w in info["warnings"])


def test_old_driver_without_compute_cap(machine, cli) -> None:
    machine.nvidia_smi("nvidia-smi-470-4x-a100.csv", compute_cap=False)
    info = machine.info(cli)
    assert info["target"] == "a100-80gb" and info["gpu_count"] == 4
    assert info["gpus"][0]["architecture"] is None


def test_unknown_nvidia_gpu_gets_a_derived_profile(machine, cli) -> None:
    machine.nvidia_smi("nvidia-smi-1x-l4.csv")
    info = machine.info(cli)
    assert info["target"] == "generic-nvidia-sm89"
    shown = machine.run(cli, "show-config", "Qwen/Qwen3-8B", "--format", "json")
    assert shown.code == 2
    assert "no configuration for generic-nvidia-sm89" in shown.out


def test_nvidia_smi_without_driver(machine, cli) -> None:
    machine.tool(
        "nvidia-smi",
        "echo \"NVIDIA-SMI has failed because it couldn't communicate "
        'with the NVIDIA driver."; exit 9',
    )
    info = machine.info(cli)
    assert _status(info)["nvidia-smi"] == "failed"
    assert info["gpu_count"] == 0 and info["target"] is None


def test_garbage_output_is_reported(machine, cli) -> None:
    machine.tool("nvidia-smi", "echo 'this is not csv at all'")
    info = machine.info(cli)
    assert "unexpected line" in next(
        p["detail"] for p in info["probes"] if p["method"] == "nvidia-smi"
    )


def test_mixed_machine_is_reported_and_compile_asks_for_a_target(machine, cli, tmp_path) -> None:
    machine.amd_smi("amd-smi-7.0-static-2x-mi355x.json", "amd-smi-7.0-metric-2x-mi355x.json")
    machine.nvidia_smi("nvidia-smi-2x-h200.csv")
    info = machine.info(cli)
    assert info["gpu_count"] == 4 and info["target"] is None
    assert "different GPU models" in info["notes"][0]
    result = machine.run(cli, "compile", "Qwen/Qwen3-8B", "-o", str(tmp_path / "o"))
    assert result.code == 2
    assert (
        "error: this machine has different GPU models: 2 x AMD Instinct MI355X (mi355x), "
        "2 x NVIDIA H200 (h200)" in result.err
    )
    assert "hint: choose one with --target NAME" in result.err


@pytest.mark.parametrize(
    ("env", "visible"),
    [
        ({"CUDA_VISIBLE_DEVICES": ""}, []),
        ({"CUDA_VISIBLE_DEVICES": "0,2"}, [0, 2]),
        ({"CUDA_VISIBLE_DEVICES": "3,GPU-00000001"}, [3, 1]),
        ({"CUDA_VISIBLE_DEVICES": "1,9,2"}, [1]),
    ],
)
def test_cuda_visible_devices(machine, cli, env, visible) -> None:
    machine.nvidia_smi("nvidia-smi-8x-h100.csv")
    info = machine.info(cli, **env)
    assert [g["index"] for g in info["gpus"]] == visible
    assert info["hidden"] == 8 - len(visible)


@pytest.mark.parametrize(
    ("env", "visible"),
    [
        ({"ROCR_VISIBLE_DEVICES": ""}, []),
        ({"HIP_VISIBLE_DEVICES": ""}, [0, 1, 2, 3]),
        ({"ROCR_VISIBLE_DEVICES": "2,3", "HIP_VISIBLE_DEVICES": "1"}, [3]),
        ({"CUDA_VISIBLE_DEVICES": "1"}, [1]),
        ({"ROCR_VISIBLE_DEVICES": "GPU-0000000000001002"}, [2]),
    ],
)
def test_rocm_visibility(machine, cli, env, visible) -> None:
    machine.kfd_gpus(4)
    info = machine.info(cli, **env)
    assert [g["index"] for g in info["gpus"]] == visible


def test_target_auto_uses_the_visible_count(machine, cli, tmp_path) -> None:
    machine.kfd_gpus(2)
    result = machine.run(cli, "show-config", "Qwen/Qwen3-235B-A22B", "--format", "json")
    plan = json.loads(result.out)["data"]["plan"]
    assert plan["hardware"]["name"] == "mi300x" and plan["gpus"] == 2
    too_many = machine.run(cli, "compile", "Qwen/Qwen3-8B", "4", "-o", str(tmp_path / "o"))
    assert too_many.code == 2
    assert "4 GPUs requested, but this machine has 2 visible mi300x GPUs" in too_many.err
    big = machine.run(
        cli, "compile", "meta-llama/Llama-3.1-405B-Instruct", "-o", str(tmp_path / "o")
    )
    assert big.code == 2
    assert "needs at least 4 GPUs of mi300x; this machine has 2 visible" in big.err


def test_gpu_count_without_gpus_is_a_detection_error(machine, cli, tmp_path) -> None:
    result = machine.run(
        cli, "compile", "Qwen/Qwen3-8B", "2", "-o", str(tmp_path / "o"), "--format", "json"
    )
    assert result.code == 3
    body = json.loads(result.out)
    assert body["error"]["code"] == "GPU_DETECTION_FAILED"
    assert "nvidia-smi: unavailable" in body["error"]["details"]


EXAMPLES = ROOT / "examples" / "recipes"


def test_no_gpu_and_the_count_left_open_is_a_detection_error(machine, cli, tmp_path) -> None:
    """Failed before: with no GPU, --target auto fell back to the cpu profile
    without a word: a model with a cpu configuration compiled for the CPU (exit 0), others
    said '... has no configuration for cpu' (exit 2)."""
    env = {"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")}
    tiny = ("aimc-examples/tiny-llama", "--recipes", str(EXAMPLES))
    for args in (
        ("compile", *tiny, "-o", str(tmp_path / "o")),
        ("compile", "Qwen/Qwen3-8B", "-o", str(tmp_path / "o")),
        ("launch", "Qwen/Qwen3-8B", "--timeout", "5"),
        ("launch", *tiny, "--timeout", "5"),
        ("list", "configs", "--target", "auto"),
    ):
        result = machine.run(cli, *args, **env)
        assert result.code == 3, (args, result.err)
        lines = result.err.splitlines()
        assert (
            lines[0]
            == "error: no GPU detected on this machine, so --target auto has nothing to use"
        )
        assert lines[1].startswith(
            "hint: see what detection tried with 'aim-engine debug gpu-info --detailed', or "
            "name a hardware profile with --target NAME (a100-80gb, b200, h100, h200, mi250x"
        )
        assert lines[1].endswith("; cpu serves on this machine's CPU)")
        body = json.loads(machine.run(cli, *args, "--format", "json", **env).out)
        assert body["error"]["code"] == "GPU_DETECTION_FAILED"
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "state" / "builds").exists()  # nothing launched


def test_show_config_without_gpu_lists_every_target_even_with_a_cpu_configuration(
    machine, cli
) -> None:
    """Failed before: a model with a cpu configuration got the cpu plan without
    a word about the missing GPU; now show-config lists, cpu named like any target."""
    tiny = ("aimc-examples/tiny-llama", "--recipes", str(EXAMPLES))
    result = machine.run(cli, "show-config", *tiny, "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert data["target"] is None and data["plan"] is None
    assert data["notes"][-1] == "no GPU detected"
    assert {r["hardware"] for r in data["candidates"]} == {"cpu"}
    assert data["choose"].startswith("choose with --target NAME (cpu)")
    info = machine.info(cli)
    assert info["target"] is None and info["gpu_count"] == 0


AMDSMI = """
from types import SimpleNamespace
AmdSmiMemoryType = SimpleNamespace(VRAM=0)
def amdsmi_init(*a): pass
def amdsmi_shut_down(): pass
def amdsmi_get_processor_handles(): return ["h0", "h1"]
def amdsmi_get_gpu_asic_info(h):
    return {"market_name": "AMD Instinct MI325X", "device_id": "0x74a5",
            "target_graphics_version": "gfx942"}
def amdsmi_get_gpu_memory_total(h, kind): return 256 * 1024**3
def amdsmi_get_gpu_memory_usage(h, kind): return 1024**3
"""

PYNVML = """
from types import SimpleNamespace
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 2
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetName(h): return b"NVIDIA H200"
def nvmlDeviceGetMemoryInfo(h): return SimpleNamespace(total=143771 * 2**20, free=143000 * 2**20)
def nvmlDeviceGetPciInfo(h): return SimpleNamespace(pciDeviceId=0x233510DE)
def nvmlDeviceGetCudaComputeCapability(h): return (9, 0)
def nvmlDeviceGetUUID(h): return f"GPU-{h:08x}-aaaa"
"""


def test_amdsmi_library(machine, cli) -> None:
    (machine.pythonpath / "amdsmi.py").write_text(AMDSMI)
    info = machine.info(cli)
    assert _status(info)["amdsmi"] == "found"
    assert info["target"] == "mi325x"
    assert info["gpus"][0]["memory_free_mib"] == 255 * 1024


def test_broken_amdsmi_library_falls_back(machine, cli) -> None:
    (machine.pythonpath / "amdsmi.py").write_text(
        AMDSMI + "\ndef amdsmi_get_gpu_asic_info(h):\n    raise RuntimeError('boom')\n"
    )
    machine.kfd_gpus(1)
    info = machine.info(cli)
    assert _status(info)["amdsmi"] == "failed"
    assert _status(info)["kfd"] == "found"


def test_nvml_library_with_bytes_names(machine, cli) -> None:
    (machine.pythonpath / "pynvml.py").write_text(PYNVML)
    info = machine.info(cli)
    assert _status(info) == {
        "amdsmi": "unavailable",
        "amd-smi": "unavailable",
        "rocm-smi": "unavailable",
        "kfd": "unavailable",
        "nvml": "found",
        "nvidia-smi": "skipped",
    }
    assert info["target"] == "h200"
    assert info["gpus"][1]["uuid"] == "GPU-00000001-aaaa"


def test_gpu_info_table(machine, cli) -> None:
    machine.nvidia_smi("nvidia-smi-2x-h200.csv")
    result = machine.run(cli, "debug", "gpu-info", "--detailed")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split()[:4] == ["INDEX", "VENDOR", "MODEL", "ARCHITECTURE"]
    assert "h200" in lines[1] and "140.4" in lines[1]
    assert "target: detected 2 x NVIDIA H200: target h200" in result.out
    assert any(line.startswith("nvidia-smi") and "found" in line for line in lines)


def test_probes_are_listed_in_the_order_of_trust(machine, cli) -> None:
    machine.amd_smi("amd-smi-7.0-static-2x-mi355x.json", "amd-smi-7.0-metric-2x-mi355x.json")
    machine.nvidia_smi("nvidia-smi-2x-h200.csv")
    info = machine.info(cli)
    assert [(p["method"], p["status"]) for p in info["probes"]] == [
        ("amdsmi", "unavailable"),
        ("amd-smi", "found"),
        ("rocm-smi", "skipped"),
        ("kfd", "skipped"),
        ("nvml", "unavailable"),
        ("nvidia-smi", "found"),
    ]
    assert [g["vendor"] for g in info["gpus"]] == ["amd", "amd", "nvidia", "nvidia"]


def test_an_invalid_detect_timeout_warns_once_and_uses_the_default(machine, cli) -> None:
    """Failed before: ``AIMC_DETECT_TIMEOUT=soon`` fell back to 10 s without a word."""
    machine.kfd_gpus(1)
    result = machine.run(
        cli, "debug", "gpu-info", "--detailed", "--format", "json", AIMC_DETECT_TIMEOUT="soon"
    )
    assert result.code == 0, result.err
    warnings = [ln for ln in result.err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "AIMC_DETECT_TIMEOUT='soon'" in warnings[0]
    assert json.loads(result.out)["data"]["gpu_count"] == 1


def test_derived_profiles_say_what_the_shipped_profiles_of_their_architecture_say() -> None:
    """A GPU with no profile (detected, or from vLLM Recipes' taxonomy) gets the precisions,
    container settings and vLLM image of the shipped profiles of its vendor and
    architecture: one table (aimc.check.hardware), checked against every shipped GPU profile."""
    from aimc.check.catalog import Catalog
    from aimc.vendors import gpu_vendors, vendor

    catalog = Catalog.default()
    checked = 0
    for name in catalog.hardware_names():
        data = catalog.hardware(name).data
        if data["vendor"] not in gpu_vendors():
            continue
        checked += 1
        maker = vendor(data["vendor"])
        assert maker.precisions(data["architecture"]) == data["precisions"], name
        defaults = maker.defaults
        assert defaults["container"].items() <= data["container"].items(), name
        assert defaults["backends"]["vllm"]["image"] == data["backends"]["vllm"]["image"], name
    assert checked >= 8
