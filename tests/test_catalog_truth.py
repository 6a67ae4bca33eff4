"""Catalog truth: checkpoint sizes from the published checkpoints, and the deployments the
model cards name offered where the estimate fits them (issue 24).

Weights come from the checkpoint's tensor bytes (a recipe's ``bytes`` with its
``source``), split over the tensor-parallel GPUs, plus what vLLM keeps whole on every rank
(``replicated_bytes``) and less what it never loads (``unloaded_bytes``). The hardware
profiles give memory as CUDA reports it. Every expected number below is recomputed from
the sources named in the recipes, not read back from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.check.lint import lint_recipe
from aimc.core.loader import Document
from aimc.plan.candidates import candidates
from aimc.plan.request import Request
from aimc.plan.weights import GIB, checkpoint_total
from tests.helpers.gpu_tools import Machine

CATALOG = Catalog.default()


def _plan(model: str, target: str, gpus: int | None = None, precision: str | None = None):
    return make_plan(CATALOG, Request(model=model, gpus=gpus, precision=precision), target)


def _offered(model: str, hardware: str, precision: str) -> set[int]:
    recipe = CATALOG.recipe(model)
    return {
        c.gpus for c in candidates(recipe, hardware) if c.precision == precision and c.nodes == 1
    }


# --- the weights input -------------------------------------------------------------------


def test_checkpoint_total_order_of_trust_and_parts() -> None:
    entry = {"repo": "o/m", "bytes": 1000, "source": "x", "size_gib": 5.0}
    assert checkpoint_total(entry, None, 4) == (1000.0, "recipe")
    assert checkpoint_total(entry, 777, 4) == (777.0, "checkpoint")  # the local headers win
    assert checkpoint_total({"repo": "o/m", "size_gib": 2.0}, None, 1) == (2 * GIB, "recipe")
    assert checkpoint_total({"repo": "o/m"}, None, 8) == (None, "parameters")
    parts = {"bytes": 1000, "source": "x", "unloaded_bytes": 200, "replicated_bytes": 40}
    total, _ = checkpoint_total(parts, None, 4)
    assert total is not None
    # per GPU: (1000 - 200 - 40) / 4 + 40 = 230
    assert total / 4 == pytest.approx(230)


def test_deepseek_r1_fp8_per_gpu_counts_replicated_layers_and_skips_the_mtp_layer() -> None:
    # The tensor listing of the checkpoint: 688574839360 bytes in all; layer 61 (MTP)
    # 15424227552; the fused q_a/kv_a projections, router gates and norms 1138633568.
    plan = _plan("deepseek-ai/DeepSeek-R1", "h200", gpus=8)
    expected = ((688574839360 - 15424227552 - 1138633568) / 8 + 1138633568) / GIB
    assert plan.estimate["weights_gib"] == pytest.approx(expected, abs=0.01)
    assert plan.estimate["weights_basis"] == "recipe"


def test_llama_405b_fp8_counts_its_bf16_layers() -> None:
    # bf16 attention in 126 layers, bf16 MLPs in layers 0 and 125, fp8 MLPs (+ fp32 row
    # scales) in the 124 others, bf16 embeddings and head: 56.72 GiB per GPU at TP 8,
    # not the 47.7 of one byte per parameter.
    h, inter, vocab, layers = 16384, 53248, 128256, 126
    attention = (2 * h * h + 2 * h * 1024) * 2
    mlp = 3 * h * inter
    total = (
        layers * attention
        + 2 * mlp * 2
        + (layers - 2) * (mlp + (2 * inter + h) * 4)
        + layers * 2 * h * 2
        + h * 2
        + 2 * vocab * h * 2
    )
    recipe = CATALOG.recipe("meta-llama/Llama-3.1-405B-Instruct")
    assert recipe.data["weights"]["fp8"]["bytes"] == total
    plan = _plan("meta-llama/Llama-3.1-405B-Instruct", "h100", gpus=8, precision="fp8")
    assert plan.estimate["weights_gib"] == pytest.approx(56.72, abs=0.01)
    assert plan.estimate["verdict"] == "runnable"


def test_gpt_oss_sizes_are_the_checkpoints_not_a_run() -> None:
    # 36 layers x (128 experts' MXFP4 blocks + scales, bf16 biases, router, attention,
    # norms) + bf16 embeddings and head, from the checkpoint's tensor shapes.
    hid, experts, layers = 2880, 128, 36
    per_layer = (
        2 * hid * 2
        + experts * (hid * 2 + hid * 90 * 17 + 2 * hid * 2 + 2 * hid * 90 * 17)
        + experts * 2
        + experts * hid * 2
        + (512 + 512 * hid + hid + hid * 4096 + 4096 + 4096 * hid + 64 + 512 + 512 * hid) * 2
    )
    total = layers * per_layer + 2 * 201088 * hid * 2 + hid * 2
    assert total == 65248815744
    weights = CATALOG.recipe("openai/gpt-oss-120b").data["weights"]["mxfp4"]
    assert weights["bytes"] == total and "size_gib" not in weights
    assert "total_size" in weights["source"]


# --- headline deployments ---------------------------------------------------------------


def test_gpt_oss_120b_is_offered_on_one_h100() -> None:
    assert 1 in _offered("openai/gpt-oss-120b", "h100", "mxfp4")
    plan = _plan("openai/gpt-oss-120b", "h100", gpus=1)
    assert plan.gpus == 1 and plan.estimate["weights_gib"] == pytest.approx(60.77, abs=0.01)
    assert plan.estimate["verdict"] == "runnable"
    assert plan.args["max-model-len"].value == 131072


@pytest.mark.parametrize("target", ["h100", "a100-80gb"])
def test_qwen3_30b_a3b_bf16_is_offered_on_one_80gb_gpu(target: str) -> None:
    assert 1 in _offered("Qwen/Qwen3-30B-A3B", target, "bf16")
    plan = _plan("Qwen/Qwen3-30B-A3B", target, gpus=1, precision="bf16")
    assert plan.estimate["verdict"] == "runnable"
    assert plan.estimate["weights_gib"] == pytest.approx(61064245248 / GIB, abs=0.01)
    # several full-length (32768-token) requests fit, as the refusal's own numbers said
    # (three, with vLLM 0.32's CUDA-graph estimate taken out: issue 24, a MoE upper bound)
    assert plan.estimate["kv_capacity_tokens"] > 3 * 32768


@pytest.mark.parametrize("gpus", [4, 8])
def test_deepseek_r1_nvfp4_on_b200(gpus: int) -> None:
    plan = _plan("deepseek-ai/DeepSeek-R1", "b200", gpus=gpus, precision="nvfp4")
    assert plan.model_source == "nvidia/DeepSeek-R1-FP4"
    assert plan.estimate["verdict"] == "runnable"
    assert plan.args["enable-expert-parallel"].value is True
    # a pre-quantized ModelOpt checkpoint: vLLM reads hf_quant_config.json itself
    assert "quantization" not in plan.args and "dtype" not in plan.args


# --- hardware profiles ------------------------------------------------------------------


def _profile(name: str) -> dict:
    return dict(CATALOG.hardware(name).data)


def test_a100_memory_is_what_cuda_reports_and_fp8_is_offered_weight_only() -> None:
    a100 = _profile("a100-80gb")
    assert a100["memory_gib"] == 79.15  # vLLM issue 10533: total_gpu_memory=79.15GiB
    assert "fp8" in a100["precisions"]
    for model in ("Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct"):
        plan = _plan(model, "a100-80gb", gpus=1, precision="fp8")
        assert plan.estimate["verdict"] == "runnable"
        assert plan.estimate["budget_gib"] == pytest.approx(79.15 * 0.92, abs=0.01)


def test_b200_profile() -> None:
    b200 = _profile("b200")
    assert (b200["architecture"], b200["memory_gib"]) == ("sm100", 178.35)
    assert {"fp8", "mxfp4", "nvfp4"} <= set(b200["precisions"])
    assert b200["pci_device_ids"] == ["0x2901"]


def test_eight_b200_are_detected_as_the_b200_profile(tmp_path: Path, cli) -> None:
    machine = Machine(tmp_path)
    machine.nvidia_smi("nvidia-smi-8x-b200.csv")
    info = machine.info(cli)
    assert info["target"] == "b200" and info["gpu_count"] == 8
    assert (info["gpus"][0]["architecture"], info["gpus"][0]["device_id"]) == ("sm100", "0x2901")


@pytest.mark.parametrize("name", ["mi300x", "mi325x", "mi350x", "mi355x"])
def test_sglang_rocm_images_follow_the_release_workflow_names(name: str) -> None:
    # release-docker-amd.yml: gfx942 -> ...-mi30x, gfx950 -> ...-mi35x, per ROCm flavour
    profile = _profile(name)
    image = profile["backends"]["sglang"]["image"]
    suffix = {"gfx942": "mi30x", "gfx950": "mi35x"}[profile["architecture"]]
    assert re.fullmatch(rf"lmsysorg/sglang:v0\.5\.19-rocm7[02]0-{suffix}", image), image


# --- the recipe field -------------------------------------------------------------------


def _lint(tmp_path: Path, weights: dict) -> list[str]:
    data = YAML(typ="safe").load(
        (Path(CATALOG.recipe("Qwen/Qwen3-8B").path)).read_text(encoding="utf-8")
    )
    data["weights"]["bf16"] = weights
    doc = Document(path=str(tmp_path / "r.yaml"), data=data, sha256="")
    hardware = {h: dict(CATALOG.hardware(h).data) for h in CATALOG.hardware_names()}
    return [d.message for d in lint_recipe(doc, hardware) if d.rule == "lint/weights"]


def test_lint_bytes_need_a_source_and_parts_that_fit(tmp_path: Path) -> None:
    repo = "Qwen/Qwen3-8B"
    assert _lint(tmp_path, {"repo": repo, "bytes": 16381470720, "source": "index"}) == []
    assert _lint(tmp_path, {"repo": repo, "bytes": 16381470720}) == [
        "weights 'bytes' need a 'source' (where the number was read)"
    ]
    assert _lint(tmp_path, {"repo": repo, "replicated_bytes": 5}) == [
        "replicated_bytes need the checkpoint's 'bytes'"
    ]
    too_much = {
        "repo": repo,
        "bytes": 10,
        "source": "s",
        "unloaded_bytes": 8,
        "replicated_bytes": 3,
    }
    assert _lint(tmp_path, too_much) == [
        "unloaded_bytes + replicated_bytes exceed the checkpoint's bytes 10"
    ]


def test_every_sized_checkpoint_names_its_source() -> None:
    for model in CATALOG.model_ids():
        for precision, weights in CATALOG.recipe(model).data["weights"].items():
            if "bytes" in weights:
                assert weights.get("source"), (model, precision)
