"""Every profile and model of a collection is linted, whether or not aimc has facts of the
model (issue 25), and a model aimc has no recipe for gets its facts from its own
``config.json`` in the model cache (``CACHE_DIR``), never guessed, with where they came from
written above the imported recipe. The caches are written by the tests; nothing is
downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import run_cli
from tests.helpers.interop import VR_STRATEGY_TP, VR_TAXONOMY, line_of, write

MODEL = "acme/Tiny-7B"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PROFILE = "aim-build/profiles/acme/Tiny-7B/vllm-mi300x-bf16-tp{gpus}-latency.yaml"

#: An AIM profile of a model aimc ships no recipe of, with a setting vLLM 0.32 dropped.
AIM_UNKNOWN = """\
aim_id: acme/Tiny-7B
model_id: acme/Tiny-7B
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: {gpus}
  manual_selection_only: false
  metric: latency
  precision: bf16
  type: optimized
engine_args:
  max-model-len: 8192
  no-such-arg-in-vllm: 3
  tensor-parallel-size: {gpus}
env_vars:
  VLLM_USE_V1: '1'
"""

VR_UNKNOWN = """\
meta:
  title: "Tiny 7B"
  hardware:
    mi300x: verified
model:
  model_id: "acme/Tiny-7B"
  base_args:
    - "--max-num-seqs"
    - "64"
variants:
  default:
    precision: bf16
    vram_minimum_gb: 20
    tp: 1
compatible_strategies:
  - single_node_tp
"""

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "max_position_embeddings": 32768,
    "vocab_size": 128256,
    "torch_dtype": "bfloat16",
}


def _cache(root: Path, config: dict[str, object], index: int | None = 14_000_000_000) -> Path:
    """A model cache holding ``acme/Tiny-7B``'s config.json (and its safetensors index with
    ``total_size`` bytes), as huggingface_hub lays it out."""
    repo = root / "models--acme--Tiny-7B"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (snapshot / "config.json").write_text(json.dumps(config))
    if index is not None:
        body = {"metadata": {"total_size": index}, "weight_map": {}}
        (snapshot / "model.safetensors.index.json").write_text(json.dumps(body))
    return root


def _aim(tmp_path: Path, gpus: int = 1, stale: bool = True) -> str:
    text = AIM_UNKNOWN.format(gpus=gpus)
    if not stale:
        text = text.replace("  no-such-arg-in-vllm: 3\n", "")
    write(tmp_path, {PROFILE.format(gpus=gpus): text})
    return text


def test_a_model_without_facts_is_linted_and_not_imported(tmp_path: Path) -> None:
    """Failed before: the profile was skipped with one warning (exit 0), its unknown arg and
    removed variable never reported."""
    text = _aim(tmp_path)
    env = {"CACHE_DIR": str(tmp_path / "empty-cache")}
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", cwd=tmp_path, env=env)
    assert result.code == 2 and not (tmp_path / "out").exists(), result.err
    at = PROFILE.format(gpus=1)
    assert f"{at}:{line_of(text, 'no-such-arg')}:3: error: unknown vllm 0.32.0 engine arg" in (
        result.err
    )
    assert f"{at}:{line_of(text, 'VLLM_USE_V1')}:3: error: 'VLLM_USE_V1'" in result.err
    assert f"{at}:1:9: warning: aimc knows no facts" in result.err
    assert "linted, not imported" in result.err and "not in the model cache" in result.err
    # validate --from reports the same, at the same lines.
    checked = run_cli("validate", "--from", "aim-profiles", "aim-build", cwd=tmp_path, env=env)
    assert checked.code == 2 and "VLLM_USE_V1" in checked.out + checked.err


def test_an_uncatalogued_model_gets_its_facts_from_its_cached_config(tmp_path: Path) -> None:
    """config.json and the safetensors index in CACHE_DIR: imported, compiles, and the
    recipe says where its facts came from (failed before: not imported)."""
    _aim(tmp_path, stale=False)
    env = {"CACHE_DIR": str(_cache(tmp_path / "cache", CONFIG))}
    result = run_cli(
        "import", "aim-profiles", "aim-build", "-o", "out", "--fix", cwd=tmp_path, env=env
    )
    assert result.code == 0, result.err
    text = (tmp_path / "out/models/acme/Tiny-7B.yaml").read_text()
    assert f"# model.facts from config.json of {MODEL} at revision {COMMIT} (model cache)" in text
    recipe = yaml.safe_load(text)
    assert recipe["model"]["architecture"] == "LlamaForCausalLM"
    facts = recipe["model"]["facts"]
    assert facts["parameters"] == 7_000_000_000  # total_size / 2 bytes of bfloat16
    assert (facts["layers"], facts["attention_heads"], facts["kv_heads"]) == (32, 32, 8)
    assert (facts["head_dim"], facts["max_context"]) == (128, 32768)
    shown = run_cli(
        "compile", MODEL, "--target", "mi300x", "--recipes", "out", "-o", "build",
        "--launcher", "process", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert shown.code == 0, shown.err
    launch = (tmp_path / "build/launch.sh").read_text()
    assert "--max-model-len 8192" in launch and "VLLM_USE_V1" not in launch


def test_facts_from_the_cache_check_that_the_gpu_count_divides_the_heads(tmp_path: Path) -> None:
    text = _aim(tmp_path, gpus=3, stale=False)
    env = {"CACHE_DIR": str(_cache(tmp_path / "cache", CONFIG))}
    result = run_cli(
        "validate", "--from", "aim-profiles", "aim-build", "--fix", cwd=tmp_path, env=env
    )
    assert result.code == 2
    at = f"{PROFILE.format(gpus=3)}:{line_of(text, 'gpu_count')}"
    assert f"{at}:14: error: 3 GPUs do not divide the model's 32 attention heads" in result.out


def test_facts_are_never_guessed(tmp_path: Path) -> None:
    """A cached config.json without the parameter count (no weights, no index) or the
    context: not imported, and the warning says what is missing."""
    _aim(tmp_path, stale=False)
    for name, config, index in (
        ("no-index", CONFIG, None),
        ("no-context", {k: v for k, v in CONFIG.items() if k != "max_position_embeddings"}, 1),
        ("quantized", {**CONFIG, "quantization_config": {"quant_method": "fp8"}}, 7 * 10**9),
    ):
        env = {"CACHE_DIR": str(_cache(tmp_path / name, config, index))}
        result = run_cli(
            "import", "aim-profiles", "aim-build", "-o", "out", "--fix", cwd=tmp_path, env=env
        )
        assert result.code == 2 and "aimc knows no facts" in result.err, (name, result.err)
        assert not (tmp_path / "out").exists()
        missing = "max_position_embeddings" if name == "no-context" else "no parameter count"
        assert missing in result.err, name


def test_a_vllm_recipe_of_an_uncatalogued_model_imports_from_the_cache(tmp_path: Path) -> None:
    files = {
        "recipes/models/acme/Tiny-7B.yaml": VR_UNKNOWN,
        "recipes/strategies/single_node_tp.yaml": VR_STRATEGY_TP,
        "recipes/taxonomy.yaml": VR_TAXONOMY,
    }
    write(tmp_path, files)
    empty = {"CACHE_DIR": str(tmp_path / "empty")}
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", cwd=tmp_path, env=empty)
    assert result.code == 2 and "linted, not imported" in result.err  # nothing to import
    env = {"CACHE_DIR": str(_cache(tmp_path / "cache", CONFIG))}
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/acme/Tiny-7B.yaml").read_text())
    assert recipe["model"]["facts"]["parameters"] == 7_000_000_000
    assert recipe["defaults"]["args"] == {"max-num-seqs": 64}
