"""SGLang 0.5.19 as aimc serves it: commands, flags, managed args, multi-node roles.

Facts are those of the pinned release (``python/sglang/srt/server_args.py``, its
multi-node guide); its flag vocabulary is ``sglang.json`` beside this module.
"""

from __future__ import annotations

from typing import Any

from aimc.backends.base import Backend, register

__all__ = ["DIST_INIT_PORT", "SGLANG"]

#: The port of SGLang's ``--dist-init-addr HOST:PORT`` (its torch.distributed store on the
#: head node; SGLang has no default): the one SGLang's multi-node guide uses
#: (docs/references/multi_node_deployment/multi_node.md: ``--dist-init-addr
#: 172.16.4.52:20000``).
DIST_INIT_PORT = 20000


def _node_args(nodes: int) -> dict[str, Any]:
    """Tensor parallel across nodes: ``--nnodes N`` on every node (the plan's ``--tp-size``
    is already every GPU of every node: ``multinode="tensor"``)."""
    return {"nnodes": nodes}


def _role_args(rank: str, master_addr: str) -> list[str]:
    """Tensor parallel across nodes: ``--dist-init-addr ADDR:20000 --node-rank R`` on every
    node, the head's address on each (SGLang's multi-node guide). A rank above 0 starts no
    tokenizer and no API server: once its tensor-parallel ranks are up it answers only
    ``/health`` on ``--host``/``--port`` (``launch_dummy_health_check_server`` in
    ``Engine._launch_subprocesses``)."""
    return ["--dist-init-addr", f"{master_addr}:{DIST_INIT_PORT}", "--node-rank", rank]


SGLANG = register(
    Backend(
        name="sglang",
        # No image entrypoint; the module is the documented launcher.
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
        dtypes={"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"},
        # SGLang has no plain "fp8" KV cache type; e4m3 is what vLLM's "fp8" means.
        kv_cache_dtypes={
            "auto": "auto",
            "fp8": "fp8_e4m3",
            "fp8_e4m3": "fp8_e4m3",
            "fp8_e5m2": "fp8_e5m2",
        },
        # SGLang sizes its static pool from the GPU when --mem-fraction-static is unset;
        # the fit estimate assumes this fraction then.
        default_memory_utilization=None,
        assumed_memory_fraction=0.88,
        managed={
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
        passthrough_env=("HF_TOKEN", "HF_HUB_OFFLINE"),
        secrets=frozenset({"api-key", "admin-api-key", "ssl-keyfile-password"}),
        config_file="sglang.yaml",
        config_comment=(
            "SGLang's own config file: python3 -m sglang.launch_server --config sglang.yaml"
        ),
        # server_args.py: --log-level (default "info"), given to logging.basicConfig as
        # getattr(logging, log_level.upper()) by configure_logger.
        debug_sets=("log-level=debug",),
        # Tensor parallel across the nodes: --tp-size is every GPU of every node (its
        # multi-node guide runs Llama 3.1 405B with --tp 16 --nnodes 2, benchmark/
        # deepseek_v3's README DeepSeek-V3/R1 likewise).
        multinode="tensor",
        node_args=_node_args,
        role_args=_role_args,
        store_port=DIST_INIT_PORT,
        worker_role=(
            "runs its tensor-parallel ranks and no API server (SGLang answers only /health "
            "on its port once they are up)"
        ),
        # SGLang 0.5.19 serves /metrics only with --enable-metrics (srt/server_args.py:
        # enable_metrics, default False; srt/entrypoints/http_server.py calls
        # add_prometheus_middleware only when it is set). The PodMonitor, the dashboard
        # and the autoscalers read /metrics; a higher layer may still turn it off.
        default_args={"enable-metrics": True},
    )
)
