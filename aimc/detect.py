"""GPU detection: which GPUs this machine has, and how we know.

Takes the machine (tools on PATH, Python libraries, sysfs, visibility variables) and hands
on a :class:`Detection`: the visible GPUs, a record of every method tried, and warnings.
The only stage besides the runner that looks at the machine; it never raises for a broken
tool: a method that crashes, hangs (timeout) or prints garbage is recorded as failed and
the next one is tried.

Order of trust, each tried only when the ones before gave nothing:

- AMD: the ``amdsmi`` Python library; the ``amd-smi`` CLI (``--json``); ``rocm-smi``
  (``--json``); the KFD sysfs topology (``/sys/class/kfd/kfd/topology/nodes``).
- NVIDIA: NVML through ``nvidia-ml-py`` (``pynvml``); ``nvidia-smi --query-gpu``.

Visibility: ``ROCR_VISIBLE_DEVICES`` then ``HIP_VISIBLE_DEVICES`` (else
``CUDA_VISIBLE_DEVICES``) for AMD, ``CUDA_VISIBLE_DEVICES`` for NVIDIA, with the runtimes'
rules (an empty ROCR/CUDA value hides every GPU; an empty HIP value is ignored; the first
invalid entry ends the list).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GPU", "Detection", "Probe", "detect", "gfx_name"]

#: Where the KFD topology lives; ``AIMC_KFD_TOPOLOGY`` overrides it (containers, tests).
KFD_TOPOLOGY = "/sys/class/kfd/kfd/topology/nodes"
#: Seconds a detection tool may run; ``AIMC_DETECT_TIMEOUT`` overrides it.
DEFAULT_TIMEOUT = 10.0
#: A GPU with less than this fraction of its memory free is reported as busy.
BUSY_FRACTION = 0.9


@dataclass(frozen=True)
class GPU:
    """One GPU as detected.

    Attributes:
        index: The GPU's index as the vendor tool numbers it (before visibility filters).
        vendor: ``amd`` or ``nvidia``.
        model: Product name as reported (or derived from the device id).
        architecture: ``gfx942``, ``sm90``...; None when unknown.
        device_id: PCI device id, ``0x74a1``.
        memory_total_mib: Total memory in MiB, when known.
        memory_free_mib: Free memory in MiB, when known.
        uuid: ``GPU-...`` identifier used by visibility variables, when known.
        source: The method that found it.
    """

    index: int
    vendor: str
    model: str
    architecture: str | None
    device_id: str | None
    memory_total_mib: int | None
    memory_free_mib: int | None
    uuid: str | None
    source: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    """One detection method and what came of it.

    Attributes:
        method: ``amdsmi``, ``amd-smi``, ``rocm-smi``, ``kfd``, ``nvml``, ``nvidia-smi``.
        status: ``found`` (GPUs), ``none`` (ran, no GPUs), ``unavailable`` (not installed),
            ``failed`` (crashed, timed out, unreadable output) or ``skipped`` (an earlier
            method already answered).
        detail: Why, in a few words.
    """

    method: str
    status: str
    detail: str


@dataclass(frozen=True)
class Detection:
    """What detection found.

    Attributes:
        gpus: Visible GPUs, in the order the runtimes number them.
        probes: Every method, in order of trust, with its outcome.
        warnings: Busy GPUs, hidden GPUs, failed tools.
        hidden: GPUs present but hidden by visibility variables.
        visibility: The visibility variables that were set.
    """

    gpus: list[GPU] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hidden: int = 0
    visibility: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "gpus": [g.to_json() for g in self.gpus],
            "probes": [asdict(p) for p in self.probes],
            "warnings": list(self.warnings),
            "hidden": self.hidden,
            "visibility": dict(self.visibility),
        }


class _Failed(Exception):
    """A method ran but its answer cannot be used."""


def gfx_name(target_version: int) -> str:
    """KFD ``gfx_target_version`` (major*10000 + minor*100 + step) -> ``gfx942``."""
    major, rest = divmod(target_version, 10000)
    minor, step = divmod(rest, 100)
    return f"gfx{major}{minor:x}{step:x}"


def _hex_id(value: Any) -> str | None:
    """``0x74a1`` from an int, ``"0x74A1"``, ``"29857"``; None for N/A."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"0x{value:04x}"
    text = str(value).strip().lower()
    try:
        number = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None
    return f"0x{number:04x}"


def _mib(value: Any) -> int | None:
    """MiB from amd-smi's ``{"value": N, "unit": "MB"}`` (really MiB) or a plain number."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def _run(argv: Sequence[str], timeout: float) -> str:
    """Run a detection tool; its stdout, or _Failed (exit code, timeout, no such file)."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise _Failed(f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise _Failed(f"could not run: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise _Failed(f"exit code {proc.returncode}" + (f": {last[-1][:120]}" if last else ""))
    return proc.stdout


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # Some amd-smi builds print warnings before the JSON on stdout.
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start > 0:
            try:
                return json.loads(text[start:])
            except ValueError:
                pass
        raise _Failed("output is not valid JSON") from None


def _records(data: Any) -> list[dict[str, Any]]:
    """amd-smi JSON in any of its shapes -> one dict per GPU."""
    if isinstance(data, dict) and "gpu_data" in data:
        data = data["gpu_data"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise _Failed("unexpected JSON layout")
    return data


# --------------------------------------------------------------------------- AMD methods


def _amdsmi_lib(timeout: float) -> list[GPU]:
    try:
        import amdsmi  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or OSError when libamd_smi.so is missing
        raise LookupError(f"not importable ({type(exc).__name__})") from None
    try:
        amdsmi.amdsmi_init()
    except Exception as exc:
        raise _Failed(f"amdsmi_init failed: {exc}") from None
    gpus = []
    try:
        for i, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
            asic = amdsmi.amdsmi_get_gpu_asic_info(handle)
            vram = amdsmi.AmdSmiMemoryType.VRAM
            total = amdsmi.amdsmi_get_gpu_memory_total(handle, vram)
            used = amdsmi.amdsmi_get_gpu_memory_usage(handle, vram)
            arch = asic.get("target_graphics_version")
            gpus.append(
                GPU(
                    index=i,
                    vendor="amd",
                    model=str(asic.get("market_name") or "AMD GPU"),
                    architecture=arch if isinstance(arch, str) and arch.startswith("gfx") else None,
                    device_id=_hex_id(asic.get("device_id")),
                    memory_total_mib=int(total) // 2**20 if total else None,
                    memory_free_mib=(int(total) - int(used)) // 2**20 if total else None,
                    uuid=None,
                    source="amdsmi",
                )
            )
    except Exception as exc:
        raise _Failed(f"query failed: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            amdsmi.amdsmi_shut_down()
    return gpus


def _amd_smi_cli(timeout: float) -> list[GPU]:
    tool = shutil.which("amd-smi")
    if not tool:
        raise LookupError("amd-smi not on PATH")
    static = _records(_json(_run([tool, "static", "--asic", "--vram", "--json"], timeout)))
    free: dict[int, int | None] = {}
    try:
        metric = _records(_json(_run([tool, "metric", "--mem-usage", "--json"], timeout)))
        for rec in metric:
            usage = rec.get("mem_usage", {})
            free[int(rec.get("gpu", -1))] = _mib(usage.get("free_vram"))
    except _Failed:
        pass  # free memory is a nicety; static facts are enough to match a profile
    gpus = []
    for pos, rec in enumerate(static):
        asic = rec.get("asic")
        if not isinstance(asic, dict):
            raise _Failed("no 'asic' section")
        vram = rec.get("vram", {}) if isinstance(rec.get("vram"), dict) else {}
        index = int(rec.get("gpu", pos))
        arch = asic.get("target_graphics_version")
        gpus.append(
            GPU(
                index=index,
                vendor="amd",
                model=str(asic.get("market_name") or "AMD GPU"),
                architecture=arch if isinstance(arch, str) and arch.startswith("gfx") else None,
                device_id=_hex_id(asic.get("device_id")),
                memory_total_mib=_mib(vram.get("size", vram.get("vram_size_mb"))),
                memory_free_mib=free.get(index),
                uuid=None,
                source="amd-smi",
            )
        )
    return gpus


def _rocm_smi(timeout: float) -> list[GPU]:
    tool = shutil.which("rocm-smi")
    if not tool:
        raise LookupError("rocm-smi not on PATH")
    data = _json(
        _run([tool, "--showproductname", "--showmeminfo", "vram", "--showid", "--json"], timeout)
    )
    if not isinstance(data, dict):
        raise _Failed("unexpected JSON layout")
    cards = sorted(
        (
            (int(k[4:]), v)
            for k, v in data.items()
            if re.fullmatch(r"card\d+", k) and isinstance(v, dict)
        )
    )
    gpus = []
    for index, card in cards:
        total = _mib(card.get("VRAM Total Memory (B)"))
        used = _mib(card.get("VRAM Total Used Memory (B)"))
        device = _hex_id(card.get("Device ID", card.get("GPU ID")))
        model = card.get("Card Series") or card.get("Card series") or card.get("Device Name")
        # "GFX Version" exists only from ROCm 6.2 and misprints gfx90a as gfx9010: unused.
        gpus.append(
            GPU(
                index=index,
                vendor="amd",
                model=str(model or "AMD GPU"),
                architecture=None,
                device_id=device,
                memory_total_mib=total // 2**20 if total else None,
                memory_free_mib=(total - used) // 2**20 if total and used is not None else None,
                uuid=None,
                source="rocm-smi",
            )
        )
    return gpus


def _properties(path: Path) -> dict[str, int]:
    props = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            props[name] = int(value)
    return props


def _kfd(timeout: float, root: str) -> list[GPU]:
    base = Path(root)
    if not base.is_dir():
        raise LookupError(f"{root} not found (no amdgpu driver)")
    nodes = sorted((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    gpus: list[GPU] = []
    for node in nodes:
        try:
            props = _properties(node / "properties")
        except PermissionError:
            continue  # a GPU the container's device cgroup does not allow
        except OSError as exc:
            raise _Failed(f"cannot read {node / 'properties'}: {exc.strerror}") from None
        if props.get("simd_count", 0) <= 0 or props.get("gfx_target_version", 0) <= 0:
            continue  # CPU node
        total = used = 0
        for bank in sorted((node / "mem_banks").glob("*")):
            try:
                bank_props = _properties(bank / "properties")
            except OSError:
                continue
            if bank_props.get("heap_type") in (1, 2):
                total += bank_props.get("size_in_bytes", 0)
                with contextlib.suppress(OSError, ValueError):
                    used += int((bank / "used_memory").read_text().strip() or 0)
        unique = props.get("unique_id", 0)
        device = _hex_id(props.get("device_id"))
        gpus.append(
            GPU(
                index=len(gpus),
                vendor="amd",
                model=f"AMD GPU {device}",
                architecture=gfx_name(props["gfx_target_version"]),
                device_id=device,
                memory_total_mib=total // 2**20 if total else None,
                memory_free_mib=(total - used) // 2**20 if total else None,
                uuid=f"GPU-{unique:016X}" if unique else None,
                source="kfd",
            )
        )
    return gpus


# ------------------------------------------------------------------------ NVIDIA methods


def _nvml(timeout: float) -> list[GPU]:
    try:
        import pynvml  # type: ignore[import-not-found]
    except Exception as exc:
        raise LookupError(f"not importable ({type(exc).__name__})") from None
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        raise LookupError(f"NVML not usable: {exc}") from None
    gpus = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            pci = pynvml.nvmlDeviceGetPciInfo(h)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            gpus.append(
                GPU(
                    index=i,
                    vendor="nvidia",
                    model=name,
                    architecture=f"sm{major}{minor}",
                    device_id=f"0x{(int(pci.pciDeviceId) >> 16) & 0xFFFF:04x}",
                    memory_total_mib=int(mem.total) // 2**20,
                    memory_free_mib=int(mem.free) // 2**20,
                    uuid=uuid,
                    source="nvml",
                )
            )
    except Exception as exc:
        raise _Failed(f"query failed: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


def _nvidia_smi(timeout: float) -> list[GPU]:
    tool = shutil.which("nvidia-smi")
    if not tool:
        raise LookupError("nvidia-smi not on PATH")
    fields = ["index", "name", "memory.total", "memory.free", "pci.device_id", "uuid"]
    query = [tool, "--format=csv,noheader,nounits"]
    try:
        out = _run([*query, f"--query-gpu={','.join([*fields, 'compute_cap'])}"], timeout)
        with_cap = True
    except _Failed as exc:
        if "timed out" in str(exc):
            raise
        # Drivers before R510 reject the compute_cap field (exit 2): ask without it.
        out = _run([*query, f"--query-gpu={','.join(fields)}"], timeout)
        with_cap = False
    gpus = []
    for line in out.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(", ")]
        if len(parts) != len(fields) + with_cap:
            raise _Failed(f"unexpected line: {line[:80]!r}")
        index, name, total, free, pci, uuid = parts[:6]
        cap = parts[6] if with_cap else ""
        try:
            device = f"0x{(int(pci, 16) >> 16) & 0xFFFF:04x}"
            idx = int(index)
        except ValueError:
            raise _Failed(f"unexpected line: {line[:80]!r}") from None
        arch = f"sm{cap.replace('.', '')}" if re.fullmatch(r"\d+\.\d+", cap) else None
        gpus.append(
            GPU(
                index=idx,
                vendor="nvidia",
                model=name,
                architecture=arch,
                device_id=device,
                memory_total_mib=_mib(total),
                memory_free_mib=_mib(free),
                uuid=uuid if uuid.startswith("GPU-") else None,
                source="nvidia-smi",
            )
        )
    return gpus


# -------------------------------------------------------------------------- visibility


def _filter(gpus: list[GPU], value: str) -> list[GPU]:
    """Apply one visibility list (indices into ``gpus`` or GPU- UUID prefixes)."""
    chosen: list[GPU] = []
    for token in (t.strip() for t in value.split(",")):
        match: GPU | None = None
        if token.isdigit() and int(token) < len(gpus):
            match = gpus[int(token)]
        elif token.upper().startswith("GPU-"):
            hits = [g for g in gpus if g.uuid and g.uuid.upper().startswith(token.upper())]
            match = hits[0] if len(hits) == 1 else None
        if match is None:
            break  # the runtimes stop at the first invalid entry
        if match not in chosen:
            chosen.append(match)
    return chosen


def _visible(gpus: list[GPU], vendor: str, env: Mapping[str, str]) -> list[GPU]:
    if vendor == "nvidia":
        if "CUDA_VISIBLE_DEVICES" in env:
            return _filter(gpus, env["CUDA_VISIBLE_DEVICES"])
        return gpus
    if "ROCR_VISIBLE_DEVICES" in env:
        gpus = _filter(gpus, env["ROCR_VISIBLE_DEVICES"])
    hip = env.get("HIP_VISIBLE_DEVICES", "")
    if hip:
        return _filter(gpus, hip)
    if "CUDA_VISIBLE_DEVICES" in env and env["CUDA_VISIBLE_DEVICES"] != "":
        return _filter(gpus, env["CUDA_VISIBLE_DEVICES"])
    return gpus


# ---------------------------------------------------------------------------- detection


def _chain(
    methods: Sequence[tuple[str, Callable[[], list[GPU]]]], probes: list[Probe], warnings: list[str]
) -> list[GPU]:
    found: list[GPU] = []
    for name, method in methods:
        if found:
            probes.append(Probe(name, "skipped", "an earlier method answered"))
            continue
        try:
            gpus = method()
        except LookupError as exc:
            probes.append(Probe(name, "unavailable", str(exc)))
            continue
        except _Failed as exc:
            probes.append(Probe(name, "failed", str(exc)))
            warnings.append(f"{name} failed: {exc}")
            continue
        except Exception as exc:  # a broken tool must not break aimc
            probes.append(Probe(name, "failed", f"{type(exc).__name__}: {exc}"))
            warnings.append(f"{name} failed: {type(exc).__name__}")
            continue
        if gpus:
            probes.append(Probe(name, "found", f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}"))
            found = gpus
        else:
            probes.append(Probe(name, "none", "ran, reported no GPUs"))
    return found


def detect(environ: Mapping[str, str] | None = None) -> Detection:
    """Detect this machine's GPUs (never raises for a broken or missing tool)."""
    env = os.environ if environ is None else environ
    try:
        timeout = float(env.get("AIMC_DETECT_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    kfd_root = env.get("AIMC_KFD_TOPOLOGY", KFD_TOPOLOGY)
    probes: list[Probe] = []
    warnings: list[str] = []
    amd = _chain(
        [
            ("amdsmi", lambda: _amdsmi_lib(timeout)),
            ("amd-smi", lambda: _amd_smi_cli(timeout)),
            ("rocm-smi", lambda: _rocm_smi(timeout)),
            ("kfd", lambda: _kfd(timeout, kfd_root)),
        ],
        probes,
        warnings,
    )
    nvidia = _chain(
        [("nvml", lambda: _nvml(timeout)), ("nvidia-smi", lambda: _nvidia_smi(timeout))],
        probes,
        warnings,
    )
    visible = _visible(amd, "amd", env) + _visible(nvidia, "nvidia", env)
    hidden = len(amd) + len(nvidia) - len(visible)
    names = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
    visibility = {k: env[k] for k in names if k in env}
    if hidden:
        warnings.append(
            f"{hidden} GPU{'s are' if hidden != 1 else ' is'} hidden by "
            + ", ".join(f"{k}={v!r}" for k, v in visibility.items())
        )
    for gpu in visible:
        total, free = gpu.memory_total_mib, gpu.memory_free_mib
        if total and free is not None and free < BUSY_FRACTION * total:
            warnings.append(
                f"GPU {gpu.index} ({gpu.model}) is busy: {free / 1024:.1f} of "
                f"{total / 1024:.1f} GiB free; another process may hold its memory"
            )
    return Detection(
        gpus=visible, probes=probes, warnings=warnings, hidden=hidden, visibility=visibility
    )
