"""vLLM Recipes args and env layered as the site's ``resolveCommand()``
(``src/lib/command-synthesis.js``) layers them (issue 25): every variant's ``extra_args`` /
``extra_env``, ``default`` included; the model file's ``hardware_overrides`` looked up by
the GPU's generation, else ``nvidia`` for an NVIDIA GPU (never its exact id, another brand
or ``default``); the variant's by exact id and by generation; ``strategy_overrides`` of the
strategy; a later layer winning. The collection is written by the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers.interop import VR_STRATEGY_TP, VR_TAXONOMY, write

#: A model file whose every layer sets something the others do not, and some the same.
VR_LAYERS = """\
meta:
  title: "Qwen3-32B"
  hardware:
    h100: verified
    mi300x: verified
model:
  model_id: "Qwen/Qwen3-32B"
  base_args: ["--max-num-seqs", "16", "--seed", "1", "-cc.pass_config.fuse_rope_kvcache=True",
              "--compilation-config.cudagraph_capture_sizes=[1, 2]", "-cc.mode=3"]
  base_env:
    BASE: "1"
variants:
  default:
    precision: bf16
    vram_minimum_gb: 100
    extra_args: ["--max-num-seqs", "32", "--block-size", "16"]
    extra_env:
      FROM_DEFAULT_VARIANT: "1"
      SHARED: variant
    hardware_overrides:
      h100:
        extra_args: ["--max-num-batched-tokens", "2048"]
      hopper:
        extra_env:
          VARIANT_HOPPER: "1"
compatible_strategies:
  - single_node_tp
strategy_overrides:
  single_node_tp:
    extra_args: ["--block-size", "32"]
    extra_env:
      SHARED: strategy-override
hardware_overrides:
  h100:
    extra_env:
      EXACT_ID_IS_NOT_READ: "1"
  nvidia:
    extra_env:
      NVIDIA_BRAND: "1"
  amd:
    extra_env:
      AMD_GENERATION: "1"
  default:
    extra_env:
      DEFAULT_IS_NOT_READ: "1"
"""

STRATEGY = VR_STRATEGY_TP.replace(
    "vllm_args: []", 'vllm_args: ["--max-num-seqs", "64"]\nenv:\n  SHARED: strategy'
)


def _plan(tmp_path: Path, target: str) -> tuple[dict[str, Any], dict[str, str]]:
    result = run_cli(
        "show-config", "Qwen/Qwen3-32B", "--target", target, "--precision", "bf16",
        "--recipes", str(tmp_path / "out"), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    plan = json.loads(result.out)["data"]["plan"]
    args = {k: v["value"] for k, v in plan["args"].items()}
    return args, {k: v["value"] for k, v in plan["env"].items()}


def test_args_and_env_are_layered_as_the_site_resolves_its_command(tmp_path: Path) -> None:
    files = {
        "recipes/models/Qwen/Qwen3-32B.yaml": VR_LAYERS,
        "recipes/strategies/single_node_tp.yaml": STRATEGY,
        "recipes/taxonomy.yaml": VR_TAXONOMY,
    }
    write(tmp_path, files)
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", cwd=tmp_path)
    assert result.code == 0, result.err
    args, env = _plan(tmp_path, "h100")
    # The site: base, variant (default too), the variant's exact-GPU override, strategy,
    # strategy_overrides, then the generation overrides; the last occurrence of a flag wins.
    assert args["max-num-seqs"] == 64  # the strategy's, after base and variant
    assert args["block-size"] == 32  # strategy_overrides, after the default variant's
    assert args["max-num-batched-tokens"] == 2048  # variant override for exactly h100
    assert args["seed"] == 1
    # vLLM merges dotted -cc / --compilation-config words into one JSON mapping, each value
    # JSON when it parses, else the text (FlexibleArgumentParser.parse_args).
    assert json.loads(args["compilation-config"]) == {
        "pass_config": {"fuse_rope_kvcache": "True"},
        "cudagraph_capture_sizes": [1, 2],
        "mode": 3,
    }
    assert env == {
        "BASE": "1",
        "FROM_DEFAULT_VARIANT": "1",
        "SHARED": "strategy-override",
        "NVIDIA_BRAND": "1",  # hopper has no entry: the NVIDIA brand's
        "VARIANT_HOPPER": "1",
    }
    args, env = _plan(tmp_path, "mi300x")
    assert "max-num-batched-tokens" not in args  # that variant override is h100's alone
    assert env == {
        "BASE": "1",
        "FROM_DEFAULT_VARIANT": "1",
        "SHARED": "strategy-override",
        "AMD_GENERATION": "1",
    }


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(max_size=80),
    key=st.from_regex(r"[a-z_]{1,12}(\.[a-z_]{1,12}){0,2}", fullmatch=True),
)
def test_a_hostile_dotted_compilation_config_value_stays_one_json_value(
    value: str, key: str
) -> None:
    """Whatever text follows ``-cc.key=``, it ends up as one value inside one JSON
    ``compilation-config`` (what vLLM builds), never as a flag or a word of its own."""
    from aimc.core.loader import Document
    from aimc.interop._args import args_from_list

    doc = Document(path="m.yaml", data={"a": [f"-cc.{key}={value}"]}, sha256="")
    parsed, problems = args_from_list([f"-cc.{key}={value}"], doc, "/a")
    assert not problems
    [(name, raw, _where)] = parsed
    assert name == "compilation-config"
    node = json.loads(raw)
    for part in key.split(".")[:-1]:
        node = node[part]
    leaf = node[key.split(".")[-1]]
    try:
        expected = json.loads(value)
    except ValueError:
        expected = value
    assert json.dumps(leaf) == json.dumps(expected)  # NaN too


def test_an_nvfp4_variant_is_imported_for_blackwell(tmp_path: Path) -> None:
    """aimc serves nvfp4 on Blackwell (failed before: 'precision nvfp4 has no aimc
    equivalent', the variant left out)."""
    model = """\
meta:
  hardware: {b200: verified}
model:
  model_id: "Qwen/Qwen3-32B"
variants:
  default: {precision: bf16, vram_minimum_gb: 100}
  nvfp4: {model_id: "nvidia/Qwen3-32B-FP4", precision: nvfp4, vram_minimum_gb: 30}
compatible_strategies: [single_node_tp]
"""
    files = {
        "recipes/models/Qwen/Qwen3-32B.yaml": model,
        "recipes/strategies/single_node_tp.yaml": VR_STRATEGY_TP,
        "recipes/taxonomy.yaml": VR_TAXONOMY,
    }
    write(tmp_path, files)
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", cwd=tmp_path)
    assert result.code == 0, result.err
    shown = run_cli(
        "show-config", "Qwen/Qwen3-32B", "--target", "b200", "--precision", "nvfp4",
        "--recipes", "out", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert shown.code == 0, shown.err
    plan = json.loads(shown.out)["data"]["plan"]
    assert plan["model_source"] == "nvidia/Qwen3-32B-FP4" and plan["gpus"] == 1
