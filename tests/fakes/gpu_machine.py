"""A stand-in GPU machine for the CLI: this machine has no GPU.

A fake ``nvidia-smi`` on PATH printing N H100s in the format of ``nvidia-smi
--format=csv,noheader,nounits --query-gpu=index,name,memory.total,memory.free,
pci.device_id,uuid,compute_cap`` (as tests/fixtures/gpu/nvidia-smi-8x-h100.csv), or a KFD
sysfs topology of N MI300X nodes (``AIMC_KFD_TOPOLOGY``) with the properties the amdgpu
driver writes. A GPU in ``busy`` holds memory: less than 90% of it free, as detection
judges busy. Commands run with their own state and cache folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Result

BASE_PATH = "/usr/bin:/bin"
H100_MIB, BUSY_FREE_MIB, FREE_MIB = 81559, 1200, 81030
MI300X_BYTES = 196592 * 2**20


class Machine:
    """A stand-in GPU machine: tools on PATH and a KFD topology root, in ``tmp``."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.kfd = tmp / "kfd"

    def h100s(self, count: int, busy: tuple[int, ...] = ()) -> Machine:
        """``nvidia-smi`` reporting ``count`` H100 80GB; those in ``busy`` hold memory."""
        lines = [
            f"{i}, NVIDIA H100 80GB HBM3, {H100_MIB}, "
            f"{BUSY_FREE_MIB if i in busy else FREE_MIB}, 0x233010DE, "
            f"GPU-{i:08x}-5d7c-4a3e-9b2f-0c1d2e3f4a5b, 9.0"
            for i in range(count)
        ]
        csv = self.tmp / "nvidia-smi.csv"
        csv.write_text("\n".join(lines) + "\n")
        tool = self.bin / "nvidia-smi"
        tool.write_text(f"#!/bin/bash\ncat {csv}\n")
        tool.chmod(0o755)
        return self

    def mi300xs(self, count: int, busy: tuple[int, ...] = ()) -> Machine:
        """A KFD sysfs tree: one CPU node, then ``count`` MI300X nodes."""
        self._node(0, simd=0, used=0, unique=0)
        for i in range(count):
            used = MI300X_BYTES // 2 if i in busy else 2**28
            self._node(i + 1, simd=304, used=used, unique=0x1000 + i)
        return self

    def _node(self, n: int, *, simd: int, used: int, unique: int) -> None:
        d = self.kfd / str(n)
        (d / "mem_banks/0").mkdir(parents=True)
        gpu = bool(simd)
        (d / "gpu_id").write_text(f"{n * 1000 if gpu else 0}\n")
        (d / "properties").write_text(
            f"cpu_cores_count {0 if gpu else 64}\nsimd_count {simd}\nmem_banks_count 1\n"
            f"gfx_target_version {90402 if gpu else 0}\nvendor_id {4098 if gpu else 0}\n"
            f"device_id {0x74A1 if gpu else 0}\nlocation_id {n * 256}\n"
            f"drm_render_minor {128 + n if gpu else 0}\nlocal_mem_size 0\nunique_id {unique}\n"
        )
        (d / "mem_banks/0/properties").write_text(
            f"heap_type {1 if gpu else 0}\nsize_in_bytes {MI300X_BYTES if gpu else 0}\n"
            "flags 0\nwidth 8192\n"
        )
        if gpu:
            (d / "mem_banks/0/used_memory").write_text(f"{used}\n")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a command on this machine (``extra``: e.g. visibility)."""
        return {
            "PATH": f"{self.bin}:{BASE_PATH}",
            "AIMC_KFD_TOPOLOGY": str(self.kfd),
            "AIMC_DETECT_TIMEOUT": "5",
            "AIMC_STATE_DIR": str(self.tmp / "state"),
            "CACHE_DIR": str(self.tmp / "cache"),
            **extra,
        }

    def run(self, cli: Any, *args: str, **extra: str) -> Result:
        """``aim-engine ARGS`` on this machine, with the variables ``extra`` set."""
        result: Result = cli(*args, env=self.env(**extra))
        assert "Traceback" not in result.err, result.err
        return result

    def data(self, cli: Any, *args: str, **extra: str) -> dict[str, Any]:
        """``show-config ARGS --format json``: its data (target, notes, plan...)."""
        result = self.run(cli, "show-config", *args, "--format", "json", **extra)
        assert result.code == 0, result.err + result.out
        body = json.loads(result.out)
        assert body["success"] is True
        data: dict[str, Any] = body["data"]
        return data

    def plan(self, cli: Any, *args: str, **extra: str) -> dict[str, Any]:
        """``show-config ARGS --format json``: the plan."""
        plan: dict[str, Any] = self.data(cli, *args, **extra)["plan"]
        return plan
