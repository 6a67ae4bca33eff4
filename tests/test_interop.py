"""Interop: AMD AIM profiles and vLLM Recipes imported as aimc recipes, and linted at their
own lines.

Every collection here is written by the tests themselves, in each format's field names
(aim-build: ``aim_id``, ``model_id``, ``metadata``, ``engine_args``, ``env_vars``;
vllm-project/recipes: ``meta``, ``model``, ``variants``, ``compatible_strategies``,
``hardware_overrides``, ``strategies/*.yaml``, ``taxonomy.yaml``). No file of those
projects is copied.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers.interop import (
    AIM_405B_ON_ONE_GPU,
    AIM_BROKEN_QWEN,
    AIM_QWEN_FP8,
    AIM_QWEN_FP8_THROUGHPUT,
    VR_405B,
    VR_BROKEN_QWEN,
    VR_STRATEGY_TP,
    VR_TAXONOMY,
    aim_broken,
    aim_clean,
    vllm_broken,
    vllm_clean,
    write,
)


def line_of(text: str, needle: str) -> int:
    return next(n for n, ln in enumerate(text.splitlines(), 1) if needle in ln)


def show_config(out: Path, model: str, *args: str) -> dict[str, Any]:
    result = run_cli("show-config", model, *args, "--recipes", str(out), "--format", "json")
    assert result.code == 0, result.out + result.err
    plan: dict[str, Any] = json.loads(result.out)["data"]["plan"]
    return plan


def values(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in settings.items()}


# --- import, round trip -------------------------------------------------------------------


def test_aim_profiles_import_and_launch_with_the_profiles_args_and_env(tmp_path: Path) -> None:
    src, out = aim_clean(tmp_path / "aim-build"), tmp_path / "imported"
    result = run_cli("import", "aim-profiles", str(src), "-o", str(out))
    assert result.code == 0, result.err
    assert "imported 1 model and 1 hardware profile" in result.out
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "hardware/mi300x.yaml",
        "manifest.json",
        "models/Qwen/Qwen3-32B.yaml",
    ]
    # Grouped: the three profiles of one model are one recipe; the duplicate throughput
    # profile and the general profile are reported at their lines, not dropped silently.
    warnings = result.err
    thr = "profiles/Qwen/Qwen3-32B/vllm-mi300x-fp8-tp1-throughput.yaml"
    assert f"{thr}:{line_of(AIM_QWEN_FP8_THROUGHPUT, 'metric:')}:" in warnings
    assert "this throughput profile is not" in warnings
    assert "general/vllm-mi300x-fp16-tp1-latency.yaml:2:3: warning: general profile" in warnings
    assert run_cli("validate", str(out)).code == 0

    # The round trip: what the AIM runtime would launch, flag by flag and variable by
    # variable, is what aimc plans (aimc adds only its own host, port, served name).
    plan = show_config(out, "Qwen/Qwen3-32B", "--target", "mi300x", "--precision", "fp8")
    assert plan["gpus"] == 1 and plan["model_source"] == "Qwen/Qwen3-32B-FP8"
    profile = yaml.safe_load(AIM_QWEN_FP8)
    assert values(plan["env"]) == profile["env_vars"]
    args = values(plan["args"])
    assert {k: v for k, v in args.items() if k not in ("host", "port", "served-model-name")} == {
        "async-scheduling": True,
        "distributed-executor-backend": "mp",
        "gpu-memory-utilization": 0.9,
        "kv-cache-dtype": "fp8",
        "max-model-len": 32768,
        "max-num-seqs": 512,
        "enable-prefix-caching": False,
        "reasoning-parser": "qwen3",
        "tensor-parallel-size": 1,
    }
    compiled = tmp_path / "build"
    result = run_cli(
        "compile", "Qwen/Qwen3-32B", "1", "--target", "mi300x", "--precision", "fp8",
        "--recipes", str(out), "-o", str(compiled),
    )  # fmt: skip
    assert result.code == 0, result.err
    words = shlex.split((compiled / "launch.sh").read_text(), comments=True)
    for key, value in profile["engine_args"].items():  # AIM: --key value, null a bare flag
        flag = "--" + key.replace("_", "-")  # vLLM reads both spellings
        assert flag in words, flag
        if value is not None:
            assert words[words.index(flag) + 1] == str(value), flag

    plan = show_config(out, "Qwen/Qwen3-32B", "--target", "mi300x", "--precision", "fp16")
    assert plan["gpus"] == 2
    assert values(plan["env"]) == {"NCCL_MIN_NCHANNELS": "112"}  # nothing of aimc's mi300x
    assert values(plan["args"])["dtype"] == "float16"
    assert values(plan["args"])["max-model-len"] == 16384


def test_vllm_recipes_import_and_launch_with_the_recipes_args_and_env(tmp_path: Path) -> None:
    src, out = vllm_clean(tmp_path / "recipes"), tmp_path / "imported"
    result = run_cli("import", "vllm-recipes", str(src), "-o", str(out))
    assert result.code == 0, result.err
    assert "imported 1 model and 2 hardware profiles" in result.out
    assert "features" in result.err and "optional features" in result.err  # reported
    assert run_cli("validate", str(out)).code == 0
    # Layered as the recipes site does: base args, the variant's, the hardware override's.
    plan = show_config(out, "Qwen/Qwen3-32B", "--target", "mi300x", "--precision", "fp8")
    assert plan["gpus"] == 1  # vram_minimum_gb 39 fits one GPU: TP 1
    assert plan["model_source"] == "Qwen/Qwen3-32B-FP8"
    assert values(plan["env"]) == {"VLLM_ROCM_USE_AITER": "1"}
    args = values(plan["args"])
    assert args["max-num-seqs"] == 128 and args["kv-cache-dtype"] == "fp8"
    assert args["enable-chunked-prefill"] is True and args["enable-prefix-caching"] is False
    assert args["max-num-seqs"] == 128  # typed as the pinned vocabulary types it (int)
    assert args["max-num-batched-tokens"] == 4096  # --name=value; a number as vLLM reads it
    # 100 GB do not fit one 80 GB H100: the site fans out to the node (TP 8), and so do we.
    plan = show_config(out, "Qwen/Qwen3-32B", "--target", "h100", "--precision", "bf16")
    assert plan["gpus"] == 8 and values(plan["env"]) == {}
    assert "kv-cache-dtype" not in values(plan["args"])  # 'default' takes no extra args
    result = run_cli(
        "compile", "Qwen/Qwen3-32B", "--target", "h100", "--precision", "fp8",
        "--recipes", str(out), "-o", str(tmp_path / "build"),
    )  # fmt: skip
    assert result.code == 0, result.err


# --- validate --from ----------------------------------------------------------------------


def test_validate_from_aim_profiles_reports_at_the_profiles_lines(tmp_path, golden) -> None:
    aim_broken(tmp_path / "aim-build")
    result = run_cli("validate", "--from", "aim-profiles", "aim-build", cwd=tmp_path)
    assert result.code == 2
    golden("interop/validate-aim-profiles.txt", result.out)
    q = "aim-build/profiles/Qwen/Qwen3-32B/vllm-mi250x-fp8-tp3-latency.yaml"
    at = lambda needle: f"{q}:{line_of(AIM_BROKEN_QWEN, needle)}:"  # noqa: E731
    out = result.out
    assert f"{at('VLLM_USE_V1')}3: error: 'VLLM_USE_V1' is not read" in out
    assert f"{at('max-num-seqs,')}3: error: '--max-num-seqs,' is not a valid flag name" in out
    assert "hint: did you mean 'max-num-seqs'?" in out
    assert f"{at('swap-space')}3: error: unknown vllm 0.32.0 engine arg 'swap-space'" in out
    assert f"{at('ptpc_fp8')}3: error: vllm 0.32.0 has no --quantization 'ptpc_fp8'" in out
    assert f"{at('gpu: MI250X')}" in out and "does not support precision 'fp8'" in out
    assert "3 GPUs do not divide the model's 64 attention heads" in out
    big = "aim-build/profiles/meta-llama/Llama-3.1-405B-Instruct/vllm-mi300x-fp16-tp1-latency.yaml"
    fit = next(ln for ln in out.splitlines() if "does not fit" in ln)
    assert fit.startswith(f"{big}:{line_of(AIM_405B_ON_ONE_GPU, 'gpu_count')}:")
    assert "mi300x fp16 on 1 GPU does not fit" in fit


def test_validate_from_vllm_recipes_reports_at_the_recipes_lines(tmp_path, golden) -> None:
    vllm_broken(tmp_path / "recipes")
    result = run_cli("validate", "--from", "vllm-recipes", "recipes", cwd=tmp_path)
    assert result.code == 2
    golden("interop/validate-vllm-recipes.txt", result.out)
    q = "recipes/models/Qwen/Qwen3-32B.yaml"
    at = lambda needle: f"{q}:{line_of(VR_BROKEN_QWEN, needle)}:"  # noqa: E731
    out = result.out
    assert f"{at('vram_minimum_gb: 10')}" in out and "vram_minimum_gb 10 is below" in out
    assert f"{at('--max-num-seqs,')}" in out and "is not a valid flag name" in out
    assert f"{at('VLLM_USE_V1')}7: error: 'VLLM_USE_V1' is not read" in out
    assert f"{at('tp: 3')}" in out and "3 GPUs do not divide" in out
    assert f"{at('precision: mxfp8')}" in out and "'mxfp8' has no aimc equivalent (variant" in out
    assert f"{at('- multi_node_tp')}" in out and "strategy 'multi_node_tp'" in out
    assert f"{at('trillium: verified')}" in out  # a TPU: reported, not dropped
    big = "recipes/models/meta-llama/Llama-3.1-405B-Instruct.yaml"
    fit = next(ln for ln in out.splitlines() if "does not fit" in ln)
    assert fit.startswith(f"{big}:{line_of(VR_405B, 'tp: 1')}:")


def test_validate_from_a_clean_collection_passes(tmp_path: Path) -> None:
    aim_clean(tmp_path / "aim-build")
    vllm_clean(tmp_path / "recipes")
    assert run_cli("validate", "--from", "aim-profiles", str(tmp_path / "aim-build")).code == 0
    result = run_cli("validate", "--from", "vllm-recipes", str(tmp_path / "recipes"))
    assert result.code == 0, result.out
    strict = run_cli("validate", "--from", "vllm-recipes", str(tmp_path / "recipes"), "--strict")
    assert strict.code == 2  # the unimported features are warnings


# --- the writer ---------------------------------------------------------------------------


def test_import_refuses_a_folder_aimc_did_not_write_and_writes_nothing_on_errors(
    tmp_path: Path,
) -> None:
    src = aim_clean(tmp_path / "aim-build")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    result = run_cli("import", "aim-profiles", str(src), "-o", str(theirs))
    assert result.code == 2 and "Traceback" not in result.err
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]

    out = tmp_path / "out"
    assert run_cli("import", "aim-profiles", str(src), "-o", str(out)).code == 0
    assert run_cli("import", "aim-profiles", str(src), "-o", str(out)).code == 0  # its own
    stray = out / "models/Qwen/notes.txt"  # a file aimc did not write, in a folder it made
    stray.write_text("mine")
    assert run_cli("import", "aim-profiles", str(src), "-o", str(out)).code == 2
    assert stray.read_text() == "mine"
    stray.unlink()
    recipe = out / "models/Qwen/Qwen3-32B.yaml"
    recipe.write_text(recipe.read_text() + "# edited by hand\n")
    assert run_cli("import", "aim-profiles", str(src), "-o", str(out)).code == 2  # edited
    assert recipe.read_text().endswith("# edited by hand\n")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"]["../outside.yaml"] = manifest["artifacts"].pop(
        "models/Qwen/Qwen3-32B.yaml"
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("import", "aim-profiles", str(src), "-o", str(out)).code == 2  # not aimc's
    assert recipe.is_file() and not (tmp_path / "outside.yaml").exists()

    broken = aim_broken(tmp_path / "broken")
    fresh = tmp_path / "fresh"
    result = run_cli("import", "aim-profiles", str(broken), "-o", str(fresh))
    assert result.code == 2 and not fresh.exists()
    assert "is not a valid flag name" in result.err and "--partial" in result.err
    result = run_cli("import", "aim-profiles", str(broken), "-o", str(fresh), "--partial")
    assert result.code == 2 and not fresh.exists()  # nothing of it compiles: nothing left
    # Beside clean profiles of the same model: --partial writes what compiles and leaves
    # the broken configuration out (failed before: written, then refused by compile).
    aim_clean(broken)
    result = run_cli("import", "aim-profiles", str(broken), "-o", str(fresh), "--partial")
    assert result.code == 0, result.err
    recipe = yaml.safe_load((fresh / "models/Qwen/Qwen3-32B.yaml").read_text())
    assert [c["hardware"] for c in recipe["configurations"]] == [["mi300x"]] * 2
    assert not (fresh / "models/meta-llama").exists()  # 405B on one GPU: does not fit
    assert run_cli("validate", str(fresh)).code == 0


# --- hostile input ------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


def _catalog() -> Any:
    from aimc.check.catalog import Catalog

    return Catalog.default()


_CATALOG = _catalog()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    aim_id=st.one_of(_TEXT, st.sampled_from(["Qwen/Qwen3-32B", "../../etc/passwd", "a/../../b"])),
    file_name=st.text(
        st.characters(codec="ascii", exclude_characters="/\0"), min_size=1, max_size=30
    ),
    env_name=_TEXT,
    env_value=_TEXT,
    arg_name=_TEXT,
    arg_value=st.one_of(_TEXT, st.integers(), st.none()),
)
def test_hostile_profiles_never_escape_the_output_nor_reach_a_shell(
    aim_id: str, file_name: str, env_name: str, env_value: str, arg_name: str, arg_value: Any
) -> None:
    from aimc import __version__
    from aimc.core.errors import ValidationFailed
    from aimc.core.loader import load_document
    from aimc.core.ownership import artifact_name_ok
    from aimc.domain.schema import check_schema
    from aimc.interop import aim_profiles, check, render

    profile = yaml.safe_load(AIM_QWEN_FP8)
    profile["aim_id"] = aim_id
    profile["env_vars"][env_name] = env_value
    profile["engine_args"][arg_name] = arg_value
    raw = json.dumps(profile, ensure_ascii=False).encode()  # JSON is YAML
    try:
        doc = load_document(raw, f"profiles/x/{file_name}.yaml")
    except ValidationFailed as exc:  # characters YAML refuses: a diagnostic, nothing written
        assert [d.rule for d in exc.diagnostics] == ["yaml"]
        return
    conversion = aim_profiles.convert([doc], _CATALOG)
    check(conversion, _CATALOG, claims=False)  # a recipe that fails its schema is dropped
    files = render(conversion, "aim-profiles", __version__)
    for name, text in files.items():
        assert artifact_name_ok(name) and ".." not in name.split("/")
        assert name == "manifest.json" or name.startswith(("models/", "hardware/"))
        if name.startswith("models/"):
            assert name == f"models/{aim_id}.yaml"
            data = yaml.safe_load(text)
            assert not check_schema(load_document(text.encode(), name))
            conf = data["configurations"][0]
            # A hostile value is data: it is either refused or kept exactly.
            if env_name in conf.get("env", {}):
                assert conf["env"][env_name] == env_value
            assert all(k.replace("-", "").isalnum() for k in conf.get("args", {}))


@pytest.mark.parametrize(
    "value", ["$(touch /tmp/x)", "a'b", "x\ny", "`id`", "; rm -rf ~", "a=b,c:d/e@f%g+h^i"]
)
def test_a_hostile_env_value_is_one_shell_word_or_refused(tmp_path: Path, value: str) -> None:
    src = aim_clean(tmp_path / "aim-build")
    path = src / "profiles/Qwen/Qwen3-32B/vllm-mi300x-fp8-tp1-latency.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["env_vars"]["SOME_SETTING"] = value
    path.write_text(yaml.safe_dump(profile))
    out = tmp_path / "out"
    result = run_cli("import", "aim-profiles", str(src), "-o", str(out))
    # Refused at its line as the renderer would refuse it (failed before: imported, then
    # the recipe did not compile), or imported and one shell word.
    if result.code != 0:
        assert result.code == 2 and "Traceback" not in result.err and not out.exists()
        assert "'SOME_SETTING' cannot be written safely to aim.env" in result.err
        return
    result = run_cli(
        "compile", "Qwen/Qwen3-32B", "1", "--target", "mi300x", "--precision", "fp8",
        "--recipes", str(out), "-o", str(tmp_path / "build"),
    )  # fmt: skip
    assert result.code == 0, result.err
    words = shlex.split((tmp_path / "build" / "launch.sh").read_text(), comments=True)
    assert f"SOME_SETTING={value}" in words


def test_links_in_a_collection_are_not_followed(tmp_path: Path) -> None:
    """A checkout that links outside itself (a file or a folder) is read without them."""
    outside = write(tmp_path / "outside", {"p/vllm-mi300x-fp8-tp1-latency.yaml": AIM_QWEN_FP8})
    src = tmp_path / "aim-build"
    (src / "profiles" / "Qwen" / "Qwen3-32B").mkdir(parents=True)
    (src / "profiles" / "Qwen" / "Qwen3-32B" / "linked.yaml").symlink_to(
        outside / "p/vllm-mi300x-fp8-tp1-latency.yaml"
    )
    (src / "profiles" / "elsewhere").symlink_to(outside / "p")
    result = run_cli("validate", "--from", "aim-profiles", str(src), "--format", "json")
    report = json.loads(result.out)
    assert result.code == 0 and report["data"]["files"] == 0
    assert [d["rule"] for d in report["data"]["diagnostics"]] == ["io"]  # no files found
    # Failed before: a linked top-level folder was read as if it were in the checkout.
    (tmp_path / "outside" / "Qwen" / "Qwen3-32B").mkdir(parents=True)
    shutil.copy(outside / "p/vllm-mi300x-fp8-tp1-latency.yaml", outside / "Qwen" / "Qwen3-32B")
    linked = tmp_path / "linked-checkout"
    linked.mkdir()
    (linked / "profiles").symlink_to(outside)
    result = run_cli("validate", "--from", "aim-profiles", str(linked), "--format", "json")
    report = json.loads(result.out)
    assert report["data"]["files"] == 0 and "outside" not in result.out, result.out


def test_a_secret_in_a_collection_is_reported_never_written_nor_echoed(tmp_path: Path) -> None:
    token = "hf_" + "s3cr3tT0kenValue" * 2
    src = aim_clean(tmp_path / "aim-build")
    path = src / "profiles/Qwen/Qwen3-32B/vllm-mi300x-fp8-tp1-latency.yaml"
    path.write_text(path.read_text() + f"  HF_TOKEN: {token}\n")
    path.write_text(
        path.read_text().replace("engine_args:\n", f"engine_args:\n  api-key: {token}\n")
    )
    # Token-shaped values under names that say nothing (failed before: imported, then
    # compiled into aim.env and launch.sh).
    path.write_text(path.read_text() + f"  MY_SETTING: x{token}\n")
    path.write_text(
        path.read_text().replace("engine_args:\n", f"engine_args:\n  revision: {token}\n")
    )
    out = tmp_path / "out"
    result = run_cli("import", "aim-profiles", str(src), "-o", str(out))
    assert result.code == 2 and not out.exists()
    assert "'HF_TOKEN' is a secret" in result.err and "'api-key' is a secret" in result.err
    assert "'MY_SETTING' holds a token" in result.err and "'revision' holds a token" in result.err
    assert token not in result.out + result.err
    result = run_cli("import", "aim-profiles", str(src), "-o", str(out), "--partial")
    assert result.code == 0
    assert all(token not in p.read_text() for p in out.rglob("*") if p.is_file())
    recipes = tmp_path / "recipes"
    vllm_clean(recipes)
    model = recipes / "models/Qwen/Qwen3-32B.yaml"
    words = f'    - "--api-key"\n    - "{token}"\n    - "--max-num-seqs"\n'
    model.write_text(model.read_text().replace('    - "--max-num-seqs"\n', words))
    result = run_cli("validate", "--from", "vllm-recipes", str(recipes))
    assert result.code == 2 and "'api-key' is a secret" in result.out
    assert token not in result.out + result.err


def test_vllm_configurations_that_differ_only_in_gpu_are_one(tmp_path: Path) -> None:
    from aimc.check.catalog import Catalog
    from aimc.interop import convert

    src = vllm_clean(tmp_path / "recipes")
    model = src / "models/Qwen/Qwen3-32B.yaml"
    model.write_text(model.read_text().split("hardware_overrides:")[0])  # no AMD env
    conversion = convert("vllm-recipes", src, Catalog.default())
    configurations = conversion.recipes["Qwen/Qwen3-32B"].data["configurations"]
    by_precision = {c["precision"][0]: c for c in configurations if c["gpus"] == [1]}
    assert by_precision["fp8"]["hardware"] == ["h100", "mi300x"]  # one configuration
    assert by_precision["bf16"]["hardware"] == ["mi300x"]  # 100 GB: all 8 H100s instead
    assert [c["gpus"] for c in configurations if c["hardware"] == ["h100"]] == [[8]]
    assert len({c["id"] for c in configurations}) == len(configurations)


# --- the flags aimc manages -----------------------------------------------------------------

#: A value of each managed vLLM flag as a foreign file writes it (None: a bare switch).
_MANAGED_VALUES = {
    "headless": None,
    "trust-remote-code": None,
    "master-addr": "10.0.0.1",
    "gpu-memory-utilization": "0.8",
    "dtype": "bfloat16",
    "quantization": "fp8",
}
_VR_ONE_GPU = """\
meta:
  hardware:
    mi300x: verified
model:
  model_id: "Qwen/Qwen3-32B"
  base_args: {args}
variants:
  default:
    precision: bf16
    tp: 1
"""
_AIM_ONE_GPU = """\
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  metric: latency
  precision: bf16
engine_args:
"""


def _flag_treatment(source: str, root: Path, where: str) -> tuple[dict[str, Any], set[str]]:
    """The converted recipe (of the one model) and the rules of the problems at pointer
    ``where`` (its conversion's and the check's)."""
    from aimc.check.catalog import Catalog
    from aimc.interop import check, convert

    catalog = Catalog.default()
    conversion = convert(source, root, catalog)
    check(conversion, catalog)
    (recipe,) = conversion.recipes.values()
    return recipe.data, {d.rule for d in conversion.diagnostics if d.pointer == where}


def test_every_flag_aimc_manages_has_one_import_treatment(tmp_path: Path) -> None:
    """The importers read the vLLM backend's managed flags (both formats write vLLM
    flags), each in exactly one group: a neutral field (the one ``managed`` says the flag
    is set from), read into the recipe field aimc derives it from, imported for
    lint/managed-arg to report, or set by aimc at launch (AIMC_OWNED: every other). A
    foreign file that sets the flag gets its group's treatment, in both formats."""
    from aimc.backends import BACKENDS
    from aimc.interop._args import AIMC_OWNED, FROM_RECIPE, LEFT_TO_LINT, NEUTRAL

    managed = BACKENDS["vllm"].managed
    groups = [set(NEUTRAL), set(FROM_RECIPE), set(LEFT_TO_LINT), set(AIMC_OWNED)]
    assert sum(map(len, groups)) == len(managed) and set().union(*groups) == set(managed)
    assert all(field in managed[flag] for flag, field in NEUTRAL.items())
    for flag in managed:
        value = _MANAGED_VALUES.get(flag, "2")
        words = [f"--{flag}"] + ([] if value is None else [value])
        vllm = write(
            tmp_path / f"vllm-{flag}",
            {
                "taxonomy.yaml": VR_TAXONOMY,
                "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
                "models/Qwen/Qwen3-32B.yaml": _VR_ONE_GPU.format(args=json.dumps(words)),
            },
        )
        data, rules = _flag_treatment("vllm-recipes", vllm, "/model/base_args/0")
        defaults = data["defaults"]
        aim = write(tmp_path / f"aim-{flag}", {"profiles/q.yaml": _AIM_ONE_GPU})
        args = aim / "profiles/q.yaml"
        args.write_text(args.read_text() + f"  {flag}: {'null' if value is None else value}\n")
        aim_data, aim_rules = _flag_treatment("aim-profiles", aim, f"/engine_args/{flag}")
        (conf,) = aim_data["configurations"]
        if flag in LEFT_TO_LINT:
            assert flag in defaults["args"] and rules == {"lint/managed-arg"}, flag
            assert flag in conf["args"] and aim_rules == {"lint/managed-arg"}, flag
            continue
        assert flag not in defaults.get("args", {}) and flag not in conf.get("args", {}), flag
        if flag in NEUTRAL and flag != "tensor-parallel-size":
            assert NEUTRAL[flag] in defaults and NEUTRAL[flag] in conf and not aim_rules, flag
        elif flag == "tensor-parallel-size":  # the strategy's (vLLM Recipes), gpu_count (AIM)
            assert rules == {"interop/no-equivalent"} and aim_rules == {"lint/tensor-parallel"}
        elif flag in AIMC_OWNED:  # not imported, with a warning
            assert rules == aim_rules == {"interop/no-equivalent"}, flag
        else:  # read into the recipe, in both formats (failed before: vLLM Recipes
            # dropped them with a warning that said aimc sets them)
            for got, problems in ((data, rules), (aim_data, aim_rules)):
                assert not problems, flag
                assert {
                    "dtype": "dtype" not in got["weights"]["bf16"],  # the precision's own
                    "quantization": got["weights"]["bf16"].get("quantization") == value,
                    "trust-remote-code": got["model"].get("trust_remote_code") is True,
                }[flag], flag
