"""Precisions a user can ask for: int4 and int8 checkpoints, and the gfx950 profiles.

The CLI offers ``--precision int8`` and ``int4``; these tests check that the shipped catalog
serves them with real checkpoints (AWQ, W8A8), that vLLM is left to detect the quantization
from the checkpoint's config.json, and that MI350X (gfx950, like MI355X) is offered
wherever MI355X is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.check.catalog import Catalog
from aimc.cli.options import PRECISIONS
from aimc.plan.candidates import candidates

CATALOG = Catalog.default()
AMD_INT = {"mi300x", "mi325x", "mi350x", "mi355x"}
NVIDIA_INT = {"h100", "h200", "a100-80gb"}

#: Checkpoints verified for this catalog (repository -> precision).
CHECKPOINTS = {
    "Qwen/Qwen3-8B": {"int4": "Qwen/Qwen3-8B-AWQ"},
    "Qwen/Qwen3-32B": {"int4": "Qwen/Qwen3-32B-AWQ"},
    "meta-llama/Llama-3.1-8B-Instruct": {
        "int4": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
        "int8": "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8",
    },
    "meta-llama/Llama-3.1-70B-Instruct": {
        "int4": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
        "int8": "RedHatAI/Meta-Llama-3.1-70B-Instruct-quantized.w8a8",
    },
    "meta-llama/Llama-3.3-70B-Instruct": {
        "int8": "RedHatAI/Llama-3.3-70B-Instruct-quantized.w8a8",
    },
}


def _vllm_config(out: Path) -> dict:
    return YAML(typ="safe").load((out / "vllm.yaml").read_text())


def _rows(out: str) -> list[dict]:
    """The rows of a JSON listing (bare, or the ``data`` of a success response)."""
    data = json.loads(out)
    return data["data"] if isinstance(data, dict) else data


def _offered(model: str) -> dict[str, set[str]]:
    """precision -> hardware names the recipe offers it on."""
    out: dict[str, set[str]] = {}
    for c in candidates(CATALOG.recipe(model)):
        out.setdefault(c.precision, set()).add(c.hardware)
    return out


@pytest.mark.parametrize(
    ("model", "target"), [("Qwen/Qwen3-32B", "h100"), ("Qwen/Qwen3-8B", "mi350x")]
)
def test_compile_int4_serves_the_awq_checkpoint(
    cli, tmp_path: Path, model: str, target: str
) -> None:
    out = tmp_path / "build"
    result = cli("compile", model, "--precision", "int4", "--target", target, "-o", str(out))
    assert result.code == 0, result.err
    config = _vllm_config(out)
    assert config["model"] == CHECKPOINTS[model]["int4"]
    assert config["tensor-parallel-size"] == 1
    # vLLM reads quant_method awq from config.json and picks its kernel (Marlin on CUDA,
    # Triton on ROCm); --quantization awq would only restate it, --dtype is the checkpoint's.
    assert "quantization" not in config and "dtype" not in config
    script = (out / "launch.sh").read_text()
    assert CHECKPOINTS[model]["int4"] in script
    assert "--quantization" not in script and "--dtype" not in script
    assert "int4" in result.out


@pytest.mark.parametrize(
    ("target", "gpus"), [("h100", 2), ("a100-80gb", 2), ("h200", 1), ("mi300x", 1), ("mi350x", 1)]
)
def test_compile_int8_serves_the_w8a8_checkpoint(
    cli, tmp_path: Path, target: str, gpus: int
) -> None:
    model = "meta-llama/Llama-3.1-70B-Instruct"
    out = tmp_path / "build"
    result = cli("compile", model, "--precision", "int8", "--target", target, "-o", str(out))
    assert result.code == 0, result.err
    config = _vllm_config(out)
    assert config["model"] == CHECKPOINTS[model]["int8"]
    assert config["tensor-parallel-size"] == gpus  # 68 GiB of weights: 2 x 80 GB, 1 x 141+ GB
    assert "quantization" not in config and "dtype" not in config
    manifest = json.loads((out / "manifest.json").read_text())
    assert '"int8"' in json.dumps(manifest)


def test_list_configs_shows_the_new_precisions_with_memory_verdicts(cli) -> None:
    result = cli("list", "configs", "Qwen/Qwen3-32B", "--target", "h100", "--format", "json")
    assert result.code == 0, result.err
    rows = [r for r in _rows(result.out) if r["precision"] == "int4"]
    assert [r["gpus"] for r in rows] == [1, 2, 4, 8]
    assert all(r["verdict"] == "runnable" for r in rows)
    # the recipe's size_gib (18.00 GiB, what vLLM loads) split over the GPUs
    assert [r["weights_gib"] for r in rows] == [18.0, 9.0, 4.5, 2.25]

    result = cli("list", "configs", "meta-llama/Llama-3.3-70B-Instruct", "--target", "h100")
    assert result.code == 0, result.err
    int8 = [line.split() for line in result.out.splitlines() if " int8 " in line]
    assert [row[5] for row in int8] == ["2", "4", "8"]
    assert all("runnable" in row for row in int8)


def test_a_precision_that_is_not_offered_says_what_is(cli, tmp_path: Path) -> None:
    result = cli(
        "compile", "Qwen/Qwen3-32B", "--precision", "int8", "--target", "h100",
        "-o", str(tmp_path / "b"),
    )  # fmt: skip
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: Qwen/Qwen3-32B has no int8 weights: it offers bf16, fp8, int4",
        "hint: available on h100: vllm bf16 on 2,4,8 GPUs; vllm fp8 on 1,2,4,8 GPUs; "
        "vllm int4 on 1,2,4,8 GPUs",
    ]


@pytest.mark.parametrize("model", sorted(CHECKPOINTS))
def test_quantized_checkpoints_are_the_verified_ones(model: str) -> None:
    weights = CATALOG.recipe(model).data["weights"]
    for precision, repo in CHECKPOINTS[model].items():
        assert weights[precision]["repo"] == repo
        # pre-quantized: config.json says how; an explicit --quantization is not needed
        assert "quantization" not in weights[precision]


@pytest.mark.parametrize("model", sorted(CHECKPOINTS))
def test_int_precisions_run_on_cdna3_cdna4_and_nvidia(model: str) -> None:
    offered = _offered(model)
    for precision in CHECKPOINTS[model]:
        hardware = offered[precision]
        # AWQ: Marlin (CUDA) / Triton (ROCm); W8A8: CUTLASS (CUDA) / AITER or Triton (ROCm)
        assert hardware == AMD_INT | NVIDIA_INT, (model, precision)


def test_every_int_precision_the_cli_offers_is_served() -> None:
    served = {c.precision for r in CATALOG.recipes() for c in candidates(r)}
    assert {"int8", "int4"} <= served
    assert {"int8", "int4"} <= set(PRECISIONS)


def test_every_gpu_profile_runs_int8_and_int4() -> None:
    for name in CATALOG.hardware_names():
        profile = CATALOG.hardware(name).data
        if profile["vendor"] != "cpu":
            assert {"int8", "int4"} <= set(profile["precisions"]), name


def test_mi350x_is_offered_wherever_mi355x_is() -> None:
    assert CATALOG.hardware("mi350x").data["architecture"] == "gfx950"
    assert CATALOG.hardware("mi355x").data["architecture"] == "gfx950"
    for recipe in CATALOG.recipes():
        on = {
            name: {(c.precision, c.gpus, c.backend) for c in candidates(recipe, name)}
            for name in ("mi350x", "mi355x")
        }
        assert on["mi350x"] == on["mi355x"], recipe.model_id
        assert on["mi350x"], recipe.model_id


# --- local checkpoints: the precision from config.json's quantization_config ----------------


def _quantized_folder(folder: Path, quantization_config: object) -> Path:
    """A local model folder whose config.json carries ``quantization_config``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 32,
        "max_position_embeddings": 8192,
        "torch_dtype": "bfloat16",
        "quantization_config": quantization_config,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _compressed(*groups: tuple[int, str]) -> dict:
    """A compressed-tensors quantization_config (llm-compressor's shape) with these weights."""
    return {
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "ignore": ["lm_head"],
        "config_groups": {
            f"group_{i}": {
                "targets": ["Linear"],
                "weights": {"num_bits": bits, "type": kind, "strategy": "channel"},
                "input_activations": None,
            }
            for i, (bits, kind) in enumerate(groups)
        },
    }


@pytest.mark.parametrize(
    ("quantization_config", "precision"),
    [
        (_compressed((8, "int")), "int8"),  # W8A8 (RedHatAI ...-quantized.w8a8)
        (_compressed((8, "float")), "fp8"),  # FP8 dynamic
        (_compressed((4, "int"), (4, "int")), "int4"),  # W4A16
        ({"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0}, "fp8"),
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, "int4"),
    ],
    ids=["w8a8", "fp8-dynamic", "w4a16", "fbgemm-fp8", "awq"],
)
def test_a_local_quantized_checkpoint_is_served_at_its_precision(
    cli, tmp_path: Path, quantization_config: dict, precision: str
) -> None:
    """Failed before: compressed-tensors and fbgemm_fp8 checkpoints (the format of the
    catalog's own int8 weights) were refused as 'not supported by aimc'."""
    folder = _quantized_folder(tmp_path / "model", quantization_config)
    out = tmp_path / "build"
    result = cli("compile", str(folder), "--target", "h100", "-o", str(out), "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["precision"] == precision
    config = _vllm_config(out)
    assert config["model"] == "/models/model"  # the folder, mounted into the container
    # vLLM reads the method from config.json: aimc restates neither it nor a dtype.
    assert "quantization" not in config and "dtype" not in config


@pytest.mark.parametrize(
    ("quantization_config", "message"),
    [
        (_compressed((4, "float")), "compressed-tensors weights (4-bit float) are not a precision"),
        (_compressed((8, "int"), (4, "int")), "(4-bit int, 8-bit int) are not a precision"),
        ({"quant_method": "compressed-tensors"}, "(no config_groups) are not a precision"),
        ({"quant_method": "bitsandbytes"}, "quantization 'bitsandbytes' is not supported"),
        ([1, 2], "quantization_config is not a JSON object"),
    ],
    ids=["nvfp4", "mixed", "no-groups", "bitsandbytes", "list"],
)
def test_a_local_checkpoint_aimc_cannot_serve_is_one_line_exit_2(
    cli, tmp_path: Path, quantization_config: object, message: str
) -> None:
    folder = _quantized_folder(tmp_path / "model", quantization_config)
    result = cli("compile", str(folder), "--target", "h100", "-o", str(tmp_path / "build"))
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err
    assert result.err.startswith("error: ") and not (tmp_path / "build").exists()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"quant_method": st.just("compressed-tensors")},
            optional={
                "config_groups": st.dictionaries(
                    st.text(max_size=4),
                    st.one_of(
                        JSON,
                        st.fixed_dictionaries(
                            {
                                "weights": st.one_of(
                                    JSON, st.fixed_dictionaries({"num_bits": JSON, "type": JSON})
                                )
                            }
                        ),
                    ),
                    max_size=3,
                ),
            },
        ),
    )
)
def test_any_quantization_config_is_a_precision_or_a_configuration_error(qc: object) -> None:
    from aimc.core.errors import ConfigError
    from aimc.plan.derive import _precision

    try:
        precision = _precision({"quantization_config": qc}, Path("/m/config.json"))
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
    else:
        assert precision in PRECISIONS


# --- fp16 ----------------------------------------------------------------------------------

SHIPPED = sorted((Path(__file__).parent.parent / "recipes" / "models").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_fp16_says_why_it_is_not_offered_and_what_to_use(cli, tmp_path: Path, path: Path) -> None:
    """No shipped model publishes fp16 weights (their config.json say bfloat16, or they
    are quantized): fp16 is refused with the precisions the recipe offers, read here from
    the file itself, and for a bf16 model the reason and bf16 to use. Failed before:
    'no configuration of ... for fp16', without why and on one target only."""
    data = YAML(typ="safe").load(path.read_text())
    offered = set(data["weights"]) | {
        p for c in data["configurations"] for p in c.get("weights", {})
    }
    assert "fp16" not in offered
    model = data["model"]["id"]
    for words in (("compile", model, "-o", str(tmp_path / "o")), ("show-config", model)):
        result = cli(*words, "--target", "h100", "--precision", "fp16")
        assert result.code == 2, result.err
        error, hint = result.err.splitlines()
        listed = (
            error.partition("(it offers ")[2].partition(")")[0]
            or error.partition(": it offers ")[2]
        )
        assert set(listed.split(", ")) == offered, error
        if "bf16" in offered:
            assert error.startswith(f"error: {model} has no fp16 weights (it offers ")
            assert "checkpoint is bf16, which vLLM would cast to fp16 at load" in error
            assert hint == "hint: use --precision bf16: the same checkpoint and memory (2 " + (
                "bytes a parameter)"
            )
        else:
            assert error == f"error: {model} has no fp16 weights: it offers {listed}"
    assert not (tmp_path / "o").exists()


def test_fp16_is_served_where_a_recipe_publishes_fp16_weights(cli, tmp_path: Path) -> None:
    """Guards the other half: a recipe with fp16 weights compiles at fp16 (--dtype float16)."""
    recipes = tmp_path / "recipes" / "models" / "aimc-test"
    recipes.mkdir(parents=True)
    text = (Path(__file__).parent.parent / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    # the bf16 entry (repo, bytes, source) becomes an fp16 one
    text = re.sub(
        r"  bf16:\n    repo: Qwen/Qwen3-8B\n(    .*\n)*", "  fp16: {repo: aimc-test/Half}\n", text
    )
    text = text.replace("id: Qwen/Qwen3-8B", "id: aimc-test/Half").replace("[bf16, fp8]", "[fp16]")
    text = text.replace("[bf16]", "[fp16]").replace("precision: bf16", "precision: fp16")
    (recipes / "Half.yaml").write_text(text)
    out = tmp_path / "o"
    result = cli(
        "compile", "aimc-test/Half", "--target", "h100", "--precision", "fp16",
        "--recipes", str(tmp_path / "recipes"), "-o", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert plan["precision"] == "fp16" and plan["args"]["dtype"]["value"] == "float16"
