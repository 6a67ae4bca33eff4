"""The GPU count "auto-detected if not specified", show-config without a target, and
recipe-info --gpu-count resolved.

A detected machine is a stand-in (tests/fakes/gpu_machine.py): a fake ``nvidia-smi`` on
PATH printing N GPUs (some of them busy: less than 90% of their memory free), or a fake KFD
sysfs tree of N AMD GPUs, as in tests/test_detect.py. This machine itself has no GPU:
without a stand-in, ``--target auto`` finds none. Nothing here needs a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gpu_machine import Machine

#: A recipe whose largest tensor-parallel size is 4 (Qwen3-32B's facts).
TP4_RECIPE = """\
apiVersion: aimc/v1
kind: Recipe
model:
  id: example-org/Dense-32B-TP4
  description: a dense 32B model whose recipe offers tensor parallelism up to 4
  architecture: Qwen3ForCausalLM
  facts:
    parameters: 32.762e9
    layers: 64
    hidden_size: 5120
    attention_heads: 64
    kv_heads: 8
    head_dim: 128
    max_context: 40960
    vocab_size: 151936
weights:
  bf16: {repo: example-org/Dense-32B-TP4}
defaults:
  backend: vllm
  precision: bf16
  context_length: 40960  # 61 GiB of weights + 10 GiB of KV cache: more than one H100
configurations:
  - id: up-to-tp4
    hardware: [mi300x]
    precision: [bf16]
    gpus: [1, 2, 4]
  - id: up-to-tp4-80gb  # one H100 would not fit (lint/fit): two or four
    hardware: [h100]
    precision: [bf16]
    gpus: [2, 4]
"""


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _tp4_recipes(tmp_path: Path) -> str:
    d = tmp_path / "recipes"
    (d / "models/example-org").mkdir(parents=True)
    (d / "models/example-org/Dense-32B-TP4.yaml").write_text(TP4_RECIPE)
    return str(d)


def _decision(plan: dict[str, Any], text: str) -> str:
    found = [d for d in plan["decisions"] if text in d]
    assert found, plan["decisions"]
    return found[0]


# --- GPU count left open on a detected machine ---------------------------------------------


@pytest.mark.parametrize("kind", ["h100", "mi300x"])
def test_eight_free_gpus_serve_qwen3_32b_as_one_tp8_group(machine, cli, kind) -> None:
    """Failed before: 8 detected GPUs served Qwen3-32B on the smallest
    size that fits (2 H100s, 1 MI300X) and left the rest idle."""
    (machine.h100s(8) if kind == "h100" else machine.mi300xs(8))
    plan = machine.plan(cli, "Qwen/Qwen3-32B")
    assert plan["hardware"]["name"] == kind
    assert (plan["gpus"], plan["data_parallel"]) == (8, 1)
    assert plan["args"]["tensor-parallel-size"]["value"] == 8
    assert "data-parallel-size" not in plan["args"]
    why = _decision(plan, "the 8 GPUs of --devices 0,1,2,3,4,5,6,7 in one tensor-parallel group")
    assert why.startswith("8 GPUs: ")
    assert plan["devices"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert "the recipe offers 8 and it fits: needs " in why and " GiB per GPU" in why


def test_launch_command_line_gets_the_whole_machine(machine, cli, tmp_path) -> None:
    """Failed before: ``compile`` (what ``launch`` runs) on 8 free GPUs
    wrote ``--tensor-parallel-size 2`` for Qwen3-32B."""
    machine.h100s(8)
    out = tmp_path / "o"
    result = machine.run(cli, "compile", "Qwen/Qwen3-32B", "-o", str(out), "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["gpu_count"] == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plan"]["gpus"] == 8 and manifest["plan"]["data_parallel"] == 1


@pytest.mark.parametrize(("kind", "tp", "replicas"), [("h100", 2, 4), ("mi300x", 1, 8)])
def test_recipe_up_to_tp4_fills_eight_gpus_with_replicas(
    machine, cli, tmp_path, kind, tp, replicas
) -> None:
    """Failed before: a recipe that offers no TP 8 got its smallest
    fitting size alone on an 8-GPU machine; now replicas x TP = 8 (data parallel)."""
    (machine.h100s(8) if kind == "h100" else machine.mi300xs(8))
    plan = machine.plan(cli, "example-org/Dense-32B-TP4", "--recipes", _tp4_recipes(tmp_path))
    assert (plan["gpus"], plan["data_parallel"]) == (tp, replicas)
    assert plan["gpus"] * plan["data_parallel"] == 8
    dp = plan["args"]["data-parallel-size"]
    assert (dp["value"], dp["layer"], dp["source"]) == (
        replicas,
        "cli",
        "--devices 0,1,2,3,4,5,6,7",
    )
    assert plan["args"]["tensor-parallel-size"]["layer"] == "configuration"
    why = _decision(plan, "data-parallel replicas on the 8 GPUs of --devices 0,1,2,3,4,5,6,7")
    offered = "2,4" if kind == "h100" else "1,2,4"
    assert f"the recipe offers no tensor-parallel size 8 here (only {offered})" in why
    assert f"{tp} is the smallest count where bf16 fits at 40960 tokens" in why


def test_busy_gpus_are_not_counted_and_named(machine, cli) -> None:
    """Failed before: busy GPUs (less than 90% memory free) were counted
    like free ones, and the plan did not mention them. 2 of 8 busy -> 6 free: 6 is not a
    tensor-parallel size, so the smallest fitting size (2 on H100) x 3 replicas. The plan
    names the free GPUs (the server gets those, not the first six)."""
    machine.h100s(8, busy=(0, 3))
    data = machine.data(cli, "Qwen/Qwen3-32B")
    plan = data["plan"]
    assert (plan["gpus"], plan["data_parallel"]) == (2, 3)
    assert plan["devices"] == [1, 2, 4, 5, 6, 7]
    assert plan["args"]["data-parallel-size"]["source"] == "--devices 1,2,4,5,6,7"
    (busy,) = [n for n in data["notes"] if "visible GPUs are busy" in n]
    assert busy.startswith("2 of 8 visible GPUs are busy: GPU 0 (1.2 of 79.6 GiB free)")
    assert "a GPU count left open uses only the free ones" in busy
    why = _decision(plan, "2 GPUs x 3 data-parallel replicas on the 6 GPUs of --devices 1,2,4")
    assert "(only 2,4,8)" in why


def test_busy_gpus_at_the_end_are_left_out_by_id(machine, cli) -> None:
    """Failed before (busy GPUs were not counted out): 4 free of 8 ->
    TP 4, the recipe offers it and it fits; the plan names GPUs 0-3."""
    machine.mi300xs(8, busy=(4, 5, 6, 7))
    data = machine.data(cli, "Qwen/Qwen3-32B")
    plan = data["plan"]
    assert (plan["gpus"], plan["data_parallel"]) == (4, 1)
    assert plan["devices"] == [0, 1, 2, 3]
    assert [n for n in data["notes"] if n.startswith("4 of 8 visible GPUs are busy")]


def test_too_few_free_gpus_is_refused_with_the_busy_ones(machine, cli, tmp_path) -> None:
    """Failed before: Llama 405B (8 GPUs on H100) compiled for 8 GPUs
    although 2 of them were busy."""
    machine.h100s(8, busy=(0, 1))
    result = machine.run(
        cli, "compile", "meta-llama/Llama-3.1-405B-Instruct", "-o", str(tmp_path / "o")
    )
    assert result.code == 2
    assert "needs at least 8 GPUs of h100; this machine has 8 visible, 6 free" in result.err
    assert "hint: 2 of 8 visible GPUs are busy: GPU 0" in result.err
    assert "pass GPU_COUNT to use busy GPUs anyway" in result.err


def test_an_explicit_gpu_count_is_kept_on_a_detected_machine(machine, cli) -> None:
    """Failed before (the busy note is new): GPU_COUNT is what it says,
    busy GPUs or not, the notes say they are busy, and the free ones are used."""
    machine.h100s(8, busy=(0,))
    data = machine.data(cli, "Qwen/Qwen3-32B", "--gpu-count", "2")
    plan = data["plan"]
    assert (plan["gpus"], plan["data_parallel"]) == (2, 1)
    assert plan["args"]["tensor-parallel-size"]["source"] == "GPU_COUNT argument"
    assert plan["devices"] == [1, 2]
    assert [n for n in data["notes"] if n.startswith("1 of 8 visible GPUs is busy: GPU 0")]


def test_optimize_still_works_on_a_detected_machine(machine, cli) -> None:
    """Failed before: --optimize counted busy GPUs (latency could pick 8,
    throughput spread replicas over 8)."""
    machine.h100s(8, busy=(6, 7))
    latency = machine.plan(cli, "Qwen/Qwen3-32B", "--optimize", "latency")
    assert (latency["gpus"], latency["data_parallel"]) == (4, 1)
    assert "within the 6 GPUs of --devices 0,1,2,3,4,5" in _decision(latency, "--optimize latency")
    assert latency["devices"] == [0, 1, 2, 3]
    throughput = machine.plan(cli, "Qwen/Qwen3-32B", "--optimize", "throughput")
    assert (throughput["gpus"], throughput["data_parallel"]) == (2, 3)
    dp = throughput["args"]["data-parallel-size"]
    assert (dp["layer"], dp["source"]) == ("cli", "--optimize throughput")
    assert "over the 6 GPUs of --devices 0,1,2,3,4,5" in _decision(
        throughput, "--optimize throughput"
    )
    assert throughput["devices"] == [0, 1, 2, 3, 4, 5]


def test_a_named_target_keeps_the_smallest_fit(machine, cli) -> None:
    """Guards what must not change: a named target describes no machine, so it keeps the
    smallest size that fits, even on an 8-GPU machine. Failed before only through
    show-config's JSON (now the success response)."""
    machine.h100s(8)
    plan = machine.plan(cli, "Qwen/Qwen3-32B", "--target", "h100")
    assert (plan["gpus"], plan["data_parallel"]) == (2, 1)
    assert _decision(plan, "2 GPUs: the smallest count where bf16 fits at 32768 tokens")
    assert not [d for d in plan["decisions"] if "free GPU" in d]


# --- show-config without a target ----------------------------------------------------------


def test_show_config_without_gpu_or_target_lists_every_configuration(cli) -> None:
    """Failed before: exit 2 with 'Qwen/Qwen3-32B has no configuration
    for cpu'."""
    result = cli("show-config", "Qwen/Qwen3-32B")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("target: no GPU detected: name a target with --target NAME (")
    assert lines[1] == "no GPU detected: every configuration on every target (GiB per GPU):"
    assert lines[2].split()[:8] == [
        *("HARDWARE", "CONFIG", "BACKEND", "PRECISION", "NODES", "GPUS", "PER", "NODE")
    ]
    assert lines[2].split()[-2:] == ["VERDICT", "REASON"]
    targets = {line.split()[0] for line in lines[3:] if line and not line.startswith("choose")}
    assert {"a100-80gb", "h100", "h200", "mi250x", "mi300x", "mi355x"} <= targets
    assert lines[-1].startswith("choose with --target NAME (a100-80gb, h100, h200, mi250x")
    assert "and --gpu-count N, e.g. aim-engine show-config Qwen/Qwen3-32B --target" in lines[-1]


def test_show_config_without_target_in_json_has_every_verdict(cli) -> None:
    """Failed before: exit 2 with no data at all."""
    result = cli("show-config", "meta-llama/Llama-3.1-70B-Instruct", "--format", "json")
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["success"] is True and "configurations of" in body["message"]
    data = body["data"]
    assert list(data) == ["target", "notes", "plan", "candidates", "choose"]
    assert data["target"] is None and data["plan"] is None
    assert data["choose"].startswith("choose with --target NAME")
    rows = {(r["hardware"], r["precision"], r["gpus"]): r for r in data["candidates"]}
    low = rows[("h100", "bf16", 2)]
    assert low["verdict"] == "low-memory" and "fits with --max-model-len" in low["reason"]
    assert low["max_context"] < 32768
    assert rows[("h100", "bf16", 4)]["verdict"] == "runnable"
    assert {r["verdict"] for r in data["candidates"]} >= {"runnable", "low-memory"}
    assert {"hardware", "config", "need_gib", "budget_gib", "max_context", "reason"} <= set(low)


def test_show_config_gpu_count_without_target_narrows_the_list(cli) -> None:
    """Failed before: the seed's ``show-config Qwen/Qwen3-32B
    --gpu-count 8`` was exit 3 (GPU count given, no GPU detected)."""
    result = cli("show-config", "Qwen/Qwen3-32B", "--gpu-count", "8", "--format", "yaml")
    assert result.code == 0, result.err
    assert "candidates:" in result.out and "gpus: 8" in result.out
    assert "gpus: 4" not in result.out
    none = cli("show-config", "Qwen/Qwen3-32B", "--gpu-count", "3")
    assert none.code == 2
    assert "no configuration of Qwen/Qwen3-32B on any target for 3 GPUs" in none.err


def test_show_config_with_target_shows_the_plan_in_the_success_shape(cli) -> None:
    """Failed before: the JSON was ``{plan, candidates}`` without the
    success response around it."""
    result = cli("show-config", "Qwen/Qwen3-32B", "--target", "h100", "--format", "json")
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["message"] == "Qwen/Qwen3-32B on h100: vllm bf16, 2 GPUs, configuration " + (
        "nvidia-vllm-bf16"
    )
    data = body["data"]
    assert data["target"] == "h100" and data["choose"] is None
    assert data["plan"]["gpus"] == 2
    assert {r["hardware"] for r in data["candidates"]} == {"h100"}


# --- recipe-info --gpu-count ---------------------------------------------------------------


def test_recipe_info_gpu_count_resolves_on_every_target_that_offers_it(cli) -> None:
    """Failed before: --gpu-count only filtered the configuration list."""
    result = cli("debug", "recipe-info", "Qwen/Qwen3-32B", "--gpu-count", "8", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert data["facts"]["attention_heads"] == 64
    by_target = {e["target"]: e for e in data["resolved"]}
    assert set(by_target) == {
        "a100-80gb",
        "h100",
        "h200",
        "mi250x",
        "mi300x",
        "mi325x",
        "mi350x",
        "mi355x",
    }
    h100 = by_target["h100"]
    assert h100["args"]["tensor-parallel-size"] == 8
    assert h100["configuration"] == "nvidia-vllm-bf16" and h100["image"].startswith("vllm/")
    assert h100["verdict"] == "runnable" and h100["memory"]["budget_gib"] == pytest.approx(72.85)
    assert h100["memory"]["need_gib"] < h100["memory"]["budget_gib"]
    assert h100["error"] is None and "VLLM_" in " ".join(by_target["mi300x"]["env"])


def test_recipe_info_gpu_count_on_a_target_shows_the_plan_or_the_refusal(cli) -> None:
    """Failed before: no resolved configuration, no memory, no refusal."""
    table = cli("debug", "recipe-info", "Qwen/Qwen3-32B", "--gpu-count", "8", "--target", "h100")
    assert table.code == 0, table.err
    assert "8 GPUs on h100: configuration nvidia-vllm-bf16 resolved" in table.out
    assert "memory per GPU: weights 7.63 + KV cache" in table.out
    assert "--tensor-parallel-size    8" in table.out


@pytest.mark.parametrize(
    "args",
    [
        ("meta-llama/Llama-3.1-405B-Instruct", "--gpu-count", "4", "--target", "h100"),
        ("Qwen/Qwen3-32B", "--gpu-count", "3", "--target", "h100"),
        ("Qwen/Qwen3-32B", "--gpu-count", "3"),
    ],
    ids=["does-not-fit", "not-offered", "no-target-offers-it"],
)
def test_recipe_info_refuses_a_gpu_count_as_show_config_does(cli, args) -> None:
    """Failed before: recipe-info printed the refusal (or 'no configuration
    offers 3 GPUs') and exited 0 where show-config and launch exit 2 with the reason."""
    for fmt in ("table", "json"):
        info = cli("debug", "recipe-info", *args, "--format", fmt)
        shown = cli("show-config", *args, "--format", fmt)
        assert (info.code, shown.code) == (2, 2), info.err
        if fmt == "table":
            assert info.err == shown.err and info.err.startswith("error: no configuration of ")
        else:
            error, same = json.loads(info.out)["error"], json.loads(shown.out)["error"]
            assert error == same and error["code"] == "CONFIGURATION_ERROR"
            assert ("4 x h100 would need " in error["message"]) == ("405B" in args[0])


def test_recipe_info_on_a_detected_machine_resolves_there(machine, cli) -> None:
    """Failed before: recipe-info knew nothing of this machine."""
    machine.h100s(8)
    result = machine.run(
        cli, "debug", "recipe-info", "Qwen/Qwen3-32B", "--gpu-count", "4", "--format", "json"
    )
    assert result.code == 0, result.err
    (entry,) = json.loads(result.out)["data"]["resolved"]
    assert (entry["target"], entry["gpus"], entry["args"]["tensor-parallel-size"]) == (
        "h100",
        4,
        4,
    )
