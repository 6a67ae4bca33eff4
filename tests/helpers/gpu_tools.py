"""Stand-in GPU machines made of detection tools: stand-in executables on PATH (shell
scripts printing the recorded outputs of tests/fixtures/gpu/, failing or hanging), a KFD
sysfs tree and stand-in Python modules (:class:`Machine`); and :class:`GPUBox`, eight
MI300X with a stand-in ``docker`` whose ``run`` starts the stand-in server. (For N
H100s or MI300Xs described by count, see tests/fakes/gpu_machine.py.)"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from aimc.run.process import alive
from tests.conftest import ROOT, Result, run_cli
from tests.helpers.runs import FAKE, free_port

__all__ = ["BASE_PATH", "FAKE_DOCKER", "FIXTURES", "GPUBox", "Machine"]

FIXTURES = ROOT / "tests" / "fixtures" / "gpu"
BASE_PATH = "/usr/bin:/bin"


class Machine:
    """A fake machine: a bin dir of stand-in tools and a KFD topology root."""

    def __init__(self, tmp: Path):
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.kfd = tmp / "kfd"
        self.pythonpath = tmp / "py"
        self.pythonpath.mkdir()
        self.env: dict[str, str] = {}

    def tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)

    def amd_smi(self, static: str, metric: str | None = None) -> None:
        metric_cmd = f"cat {FIXTURES / metric}" if metric else "echo 'metric failed' >&2; exit 1"
        self.tool(
            "amd-smi",
            f'case "$1" in\n  static) cat {FIXTURES / static};;\n'
            f"  metric) {metric_cmd};;\n  *) exit 2;;\nesac",
        )

    def nvidia_smi(self, csv: str, compute_cap: bool = True) -> None:
        reject = (
            ""
            if compute_cap
            else (
                'if [[ "$*" == *compute_cap* ]]; then\n'
                "  echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2\nfi\n"
            )
        )
        self.tool("nvidia-smi", reject + f"cat {FIXTURES / csv}")

    def node(
        self,
        n: int,
        *,
        gfx: int = 0,
        device: int = 0,
        vram: int = 0,
        used: int = 0,
        simd: int = 0,
        unique: int = 0,
    ) -> None:
        d = self.kfd / str(n)
        (d / "mem_banks/0").mkdir(parents=True)
        (d / "gpu_id").write_text(f"{n * 1000 if simd else 0}\n")
        (d / "properties").write_text(
            f"cpu_cores_count {0 if simd else 64}\nsimd_count {simd}\nmem_banks_count 1\n"
            f"gfx_target_version {gfx}\nvendor_id {4098 if simd else 0}\ndevice_id {device}\n"
            f"location_id {n * 256}\ndrm_render_minor {128 + n if simd else 0}\n"
            f"local_mem_size 0\nunique_id {unique}\n"
        )
        (d / "mem_banks/0/properties").write_text(
            f"heap_type {1 if simd else 0}\nsize_in_bytes {vram}\nflags 0\nwidth 8192\n"
        )
        if simd:
            (d / "mem_banks/0/used_memory").write_text(f"{used}\n")

    def kfd_gpus(
        self,
        count: int,
        *,
        gfx: int = 90402,
        device: int = 0x74A1,
        vram: int = 196592 * 2**20,
        first_node: int = 1,
    ) -> None:
        self.node(0)  # the CPU node
        for i in range(count):
            self.node(
                first_node + i,
                gfx=gfx,
                device=device,
                vram=vram,
                used=2**28,
                simd=304,
                unique=0x1000 + i,
            )

    def run(self, cli: Any, *args: str, **env: str) -> Result:
        """``aim-engine ARGS`` on this machine: its tools first on PATH, its KFD tree, its
        stand-in Python modules on PYTHONPATH once there are any (an empty folder on the
        path changes nothing, and the command may then run in this process)."""
        stand_ins = any(self.pythonpath.iterdir())
        full = {
            "PATH": f"{self.bin}:{BASE_PATH}",
            "AIMC_KFD_TOPOLOGY": str(self.kfd),
            **({"PYTHONPATH": str(self.pythonpath)} if stand_ins else {}),
            "AIMC_DETECT_TIMEOUT": "5",
            **self.env,
            **env,
        }
        result: Result = cli(*args, env=full)
        return result

    def info(self, cli: Any, **env: str) -> dict[str, Any]:
        result = self.run(cli, "debug", "gpu-info", "--detailed", "--format", "json", **env)
        assert result.code == 0, result.err
        assert "Traceback" not in result.err
        data: dict[str, Any] = json.loads(result.out)["data"]
        return data


#: A stand-in ``docker run``: its "container" gets only what Docker would give it.
FAKE_DOCKER = FAKE.parent / "fake_docker.py"


class GPUBox:
    """A stand-in machine with eight MI300X, Docker and a model server; no hub."""

    def __init__(self, tmp: Path):
        self.machine = Machine(tmp)
        self.machine.amd_smi(
            "amd-smi-6.4-static-8x-mi300x.json", "amd-smi-6.4-metric-8x-mi300x.json"
        )
        self.machine.tool(
            "docker",
            'case "$1" in\n  version) echo 28.2.2;;\n'
            f'  rm) exit 0;;\n  run) exec {sys.executable} {FAKE_DOCKER} "$@";;\nesac',
        )
        self.tmp = tmp
        self.port = free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        self.env = {
            "DEFAULT_PORT": str(self.port),
            "CACHE_DIR": str(tmp / "cache"),
            "AIMC_STATE_DIR": str(tmp / "state"),
            "HF_ENDPOINT": f"http://127.0.0.1:{closed}",
            "FAKE_PIDS": str(tmp / "pids.json"),
            "FAKE_MODE": "ready",
            "LOG_LEVEL": "WARNING",
        }

    def run(self, *args: str, gpus: bool = True) -> Result:
        env = dict(self.env)
        if not gpus:  # the same machine without its GPUs
            empty = self.tmp / "no-kfd"
            empty.mkdir(exist_ok=True)
            return run_cli(*args, env={**env, "PATH": BASE_PATH, "AIMC_KFD_TOPOLOGY": str(empty)})
        return self.machine.run(run_cli, *args, **env)

    def stop_all(self) -> None:
        """``stop --all`` when there is a run record to act on; then any stand-in left."""
        if any((self.tmp / "state" / "runs").glob("*.json")):
            self.run("stop", "--all")
        pids = self.tmp / "pids.json"
        if pids.exists():
            for pid in json.loads(pids.read_text()).values():
                if alive(pid):
                    os.kill(pid, 9)
