"""`aim-engine compile`, `show-config` and `debug recipe-info` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import AimcError, ConfigError
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.render import server_argv
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import ROOT

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
"""

HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    'it\'s "quoted"',
    "two\nlines",
    "a; touch PWNED",
    "${HOME} && rm -rf /nonexistent | cat > PWNED",
]


def _recorder(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(RECORDER)
    path.chmod(0o755)
    return path


def _plan(model: str, target: str, **kw) -> Plan:
    return make_plan(Catalog.default(), Request(model=model, **kw), target)


def test_compile_writes_every_artifact(cli, tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = cli("compile", "Qwen/Qwen3-32B", "8", "--target", "mi300x", "-o", str(out))
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == [
        "aim.env",
        "compose.yaml",
        "launch.sh",
        "manifest.json",
        "vllm.yaml",
    ]
    assert os.access(out / "launch.sh", os.X_OK)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plan"]["gpus"] == 8
    assert manifest["inputs"]["command"] == "aim-engine compile Qwen/Qwen3-32B 8 --target mi300x"
    for name, digest in manifest["artifacts"].items():
        import hashlib

        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_check_passes_then_fails_on_drift(cli, tmp_path: Path) -> None:
    out = tmp_path / "build"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    assert cli(*args).code == 0
    assert cli(*args, "--check").code == 0
    text = (out / "aim.env").read_text()
    (out / "aim.env").write_text(text + "EXTRA=1\n")
    drift = cli(*args, "--check")
    assert drift.code == 1
    assert "-EXTRA=1" in drift.out and "out of date" in drift.err
    other = cli("compile", "Qwen/Qwen3-8B", "2", "--target", "h100", "-o", str(out), "--check")
    assert other.code == 1 and "--tensor-parallel-size 2" in other.out


def test_check_of_a_missing_folder_fails(cli, tmp_path: Path) -> None:
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(tmp_path / "x"), "--check"
    )
    assert result.code == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("Qwen/Qwen3-32B", "3", "--target", "mi300x"),
            "no configuration of Qwen/Qwen3-32B on mi300x for 3 GPUs",
        ),
        (
            ("meta-llama/Llama-3.1-70B-Instruct", "--target", "a100-80gb", "--precision", "fp8"),
            "no configuration of meta-llama/Llama-3.1-70B-Instruct on a100-80gb for fp8",
        ),
        (
            ("Qwen/Qwen3-235B-A22B", "--target", "a100-80gb"),
            "Qwen/Qwen3-235B-A22B has no configuration for a100-80gb",
        ),
        (("Qwen/Qwen3-32B", "--target", "mi300"), "unknown hardware target 'mi300'"),
        (("Qwen/Qwen3-32", "--target", "mi300x"), "no recipe for model 'Qwen/Qwen3-32'"),
        (
            ("Qwen/Qwen3-8B", "--target", "h100", "--set", "max-num-seq=8"),
            "unknown vllm 0.32.0 engine arg 'max-num-seq'",
        ),
        (
            ("Qwen/Qwen3-8B", "--target", "h100", "--set", "tensor-parallel-size=2"),
            "'tensor-parallel-size' is set by aimc",
        ),
        (("Qwen/Qwen3-8B", "--target", "h100", "--set", "api-key=abc"), "is a secret"),
        (
            ("Qwen/Qwen3-8B", "--target", "h100", "--set", "env.X=$(id)"),
            "cannot be written safely to aim.env",
        ),
        (
            ("Qwen/Qwen3-8B", "--target", "h100", "--set", "served_model_name=a\nb"),
            "is not a one-line name",
        ),
        (("Qwen/Qwen3-8B", "--target", "h100", "--set", "noequals"), "expected key=value"),
        (("Qwen/Qwen3-8B", "--target", "cpu"), "Qwen/Qwen3-8B has no configuration for cpu"),
        (("Qwen/Qwen3-8B", "--target", "h100", "--precision", "fp16"), "has no fp16 weights"),
        (
            ("Qwen/Qwen3-8B", "--target", "h100", "--config", "/nonexistent/overrides.yaml"),
            "error: --config /nonexistent/overrides.yaml: cannot read file: No such file",
        ),
        (("Qwen/Qwen3-8B", "--target", "h100", "--config", "/"), "error: --config /: cannot read"),
    ],
    ids=[
        "gpus",
        "precision",
        "hardware",
        "target",
        "model",
        "arg",
        "managed",
        "secret",
        "env",
        "name",
        "set",
        "cpu",
        "fp16",
        "config-missing",
        "config-folder",
    ],
)
def test_bad_requests_exit_2_and_write_nothing(
    cli, golden, tmp_path: Path, args, message, request
) -> None:
    out = tmp_path / "build"
    result = cli("compile", *args, "-o", str(out))
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert not out.exists()
    golden(f"compile-errors/{request.node.callspec.id}.txt", result.err)


def test_no_configuration_lists_what_exists(cli) -> None:
    result = cli("compile", "Qwen/Qwen3-32B", "3", "--target", "mi300x", "-o", "/nonexistent")
    assert "hint: available on mi300x: sglang bf16 on 1,2,4,8 GPUs" in result.err


def test_replacing_refuses_a_foreign_folder(cli, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    assert result.code == 2
    assert (out / "notes.txt").read_text() == "keep me"


def _aimc_files(**texts: str) -> dict[str, str]:
    """Artifacts with the manifest aimc writes beside them (names and sha256)."""
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in texts.items()}
    manifest = {"generator": "aimc test", "artifacts": digests}
    return {**texts, "manifest.json": json.dumps(manifest)}


def test_a_failed_write_leaves_the_previous_folder_intact(tmp_path: Path) -> None:
    out = tmp_path / "build"
    write_artifacts(out, _aimc_files(**{"launch.sh": "old\n"}))
    with pytest.raises(AimcError, match="cannot write"):  # a name no file system takes
        write_artifacts(out, {"manifest.json": "{}\n", "x" * 300: "new\n"})
    assert (out / "launch.sh").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_recompiling_replaces_the_folder_whole(cli, tmp_path: Path) -> None:
    out = tmp_path / "build"
    assert cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out)).code == 0
    assert (out / "compose.yaml").exists()
    assert (
        cli(
            "compile",
            "Qwen/Qwen3-8B",
            "--target",
            "h100",
            "--launcher",
            "process",
            "-o",
            str(out),
            "--set",
            "image=null",
        ).code
        == 0
    )
    assert not (out / "compose.yaml").exists()
    assert "docker" not in (out / "launch.sh").read_text().split("set -euo pipefail")[1]


def _run_script(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script)], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_arrive_as_literal_arguments(tmp_path: Path, value: str) -> None:
    sets = (
        f"chat-template={value}",
        f"tool-call-parser={value}",
        f"served_model_name={value.replace(chr(10), ' ')}",
    )
    request = Request(model="Qwen/Qwen3-8B", launcher="process", sets=sets)
    plan = make_plan(Catalog.default(), request, "mi300x")
    out = tmp_path / "out"
    write_artifacts(out, compile_plan(plan, request, "mi300x").files)
    record = tmp_path / "record.json"
    python = _recorder(tmp_path, "fake-python")
    env = {
        "PATH": os.environ["PATH"],
        "AIM_PYTHON": str(python),
        "RECORD": str(record),
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    result = _run_script(out / "launch.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == plan.command + server_argv(plan)
    assert seen["argv"][seen["argv"].index("--chat-template") + 1] == value
    assert seen["env"]["VLLM_ROCM_USE_AITER"] == "1"
    assert seen["env"]["HF_HUB_CACHE"] == str(tmp_path / "cache")
    assert not list(tmp_path.rglob("PWNED"))


def test_docker_launcher_runs_the_image_with_device_flags(tmp_path: Path) -> None:
    value = HOSTILE[0]
    request = Request(model="Qwen/Qwen3-8B", gpus=2, sets=(f"chat-template={value}",))
    plan = make_plan(Catalog.default(), request, "mi300x")
    out = tmp_path / "out"
    write_artifacts(out, compile_plan(plan, request, "mi300x").files)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _recorder(bindir, "docker")
    record = tmp_path / "record.json"
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "CACHE_DIR": str(tmp_path / "cache"),
        "HF_TOKEN": "hf_secret",
    }
    result = _run_script(out / "launch.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[:4] == ["run", "--rm", "--name", "aim-qwen3-8b"]
    assert argv[argv.index("vllm/vllm-openai-rocm:v0.32.0") + 1 :] == server_argv(plan)
    for flag in (
        ["--device", "/dev/kfd"],
        ["--device", "/dev/dri"],
        ["-e", "HF_TOKEN"],
        ["-v", f"{tmp_path / 'cache'}:/workspace/model-cache"],
        ["-e", "NCCL_MIN_NCHANNELS"],
    ):
        assert any(argv[i : i + 2] == flag for i in range(len(argv))), flag
    assert seen["env"]["HF_TOKEN"] == "hf_secret"
    assert seen["env"]["NCCL_MIN_NCHANNELS"] == "112"
    for name in os.listdir(out):
        assert "hf_secret" not in (out / name).read_text()


def test_local_model_folder_with_awkward_path(tmp_path: Path) -> None:
    root = tmp_path / "recipes"
    (root / "models/me").mkdir(parents=True)
    text = (ROOT / "examples/recipes/models/aimc-examples/tiny-llama.yaml").read_text()
    text = text.replace("id: aimc-examples/tiny-llama", "id: me/tiny")
    text = text.replace("path: ../../../models/tiny-llama", "path: \"../../my models/$(x) 'q'\"")
    (root / "models/me/tiny.yaml").write_text(text)
    catalog = Catalog.default([root])
    request = Request(model="me/tiny")
    plan = make_plan(catalog, request, "cpu")
    assert plan.model_source == str((root / "my models/$(x) 'q'").resolve())
    assert plan.launcher == "process"
    out = tmp_path / "out"
    write_artifacts(out, compile_plan(plan, request, "cpu").files)
    record = tmp_path / "record.json"
    env = {
        "PATH": os.environ["PATH"],
        "AIM_PYTHON": str(_recorder(tmp_path, "py")),
        "RECORD": str(record),
    }
    assert _run_script(out / "launch.sh", env, tmp_path).returncode == 0
    argv = json.loads(record.read_text())["argv"]
    assert argv[3] == plan.model_source
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert argv[argv.index("--served-model-name") + 1] == "me/tiny"


def test_precedence_recipe_config_file_and_set(cli, tmp_path: Path) -> None:
    config = tmp_path / "overrides.yaml"
    config.write_text(
        "context_length: 8192\nargs:\n  max-num-seqs: 64\n"
        'env:\n  VLLM_ROCM_USE_AITER: "0"\n  NCCL_MIN_NCHANNELS: null\n'
    )
    result = cli(
        "show-config",
        "Qwen/Qwen3-8B",
        "--target",
        "mi300x",
        "--gpu-count",
        "2",
        "--config",
        str(config),
        "--set",
        "max-num-seqs=32",
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    plan = json.loads(result.out)["data"]["plan"]
    args, env = plan["args"], plan["env"]
    assert args["max-model-len"] == {"value": 8192, "layer": "config-file", "source": f"{config}:1"}
    assert args["max-num-seqs"]["value"] == 32 and args["max-num-seqs"]["layer"] == "cli"
    assert env["VLLM_ROCM_USE_AITER"]["value"] == "0"
    assert "NCCL_MIN_NCHANNELS" not in env
    assert env["HIP_FORCE_DEV_KERNARG"]["layer"] == "hardware"
    assert args["tensor-parallel-size"]["source"] == "GPU_COUNT argument"


def test_bad_config_file_points_at_the_line(cli, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("args:\n  max-num-seqs: 64\ncontext_lenght: 10\n")
    result = cli(
        "compile",
        "Qwen/Qwen3-8B",
        "--target",
        "h100",
        "--config",
        str(config),
        "-o",
        str(tmp_path / "o"),
    )
    assert result.code == 2
    assert f"{config}:3:1: error: unknown key 'context_lenght'" in result.err
    assert "did you mean 'context_length'?" in result.err


def test_port_from_flag_and_environment(cli) -> None:
    base = ("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--format", "json")
    plan = json.loads(cli(*base, env={"DEFAULT_PORT": "9000"}).out)["data"]["plan"]
    assert plan["port"] == 9000 and plan["args"]["port"]["source"] == "$DEFAULT_PORT"
    plan = json.loads(cli(*base, "--port", "8123", env={"DEFAULT_PORT": "9000"}).out)["data"][
        "plan"
    ]
    assert plan["port"] == 8123 and plan["args"]["port"]["layer"] == "cli"


def test_explain_shows_layer_and_file_line(cli) -> None:
    result = cli(
        "show-config", "Qwen/Qwen3-32B", "--target", "mi300x", "--gpu-count", "8", "--explain"
    )
    assert result.code == 0
    recipe = (ROOT / "recipes/models/Qwen/Qwen3-32B.yaml").read_text().splitlines()
    number = next(i for i, ln in enumerate(recipe, 1) if "context_length: 32768" in ln)
    line = next(ln for ln in result.out.splitlines() if ln.startswith("--max-model-len"))
    where = f"recipes/models/Qwen/Qwen3-32B.yaml:{number}"
    assert line.split()[1:] == ["32768", "recipe", where]


def test_automatic_choices_are_explained(cli) -> None:
    result = cli("show-config", "Qwen/Qwen3-32B", "--target", "h100")
    assert "choice: precision bf16: the recipe's default precision" in result.out
    assert "choice: 2 GPUs: the smallest count where bf16 fits at 32768 tokens" in result.out
    plan = json.loads(
        cli(
            "show-config",
            "Qwen/Qwen3-32B",
            "--target",
            "h100",
            "--precision",
            "fp8",
            "--format",
            "json",
        ).out
    )["data"]["plan"]
    assert (plan["precision"], plan["gpus"], plan["configuration"]) == ("fp8", 1, "nvidia-vllm")


def test_sglang_plan_uses_sglang_flags() -> None:
    plan = _plan("Qwen/Qwen3-32B", "mi300x", backend="sglang", precision="fp8", gpus=4)
    argv = server_argv(plan)
    assert plan.command == ["python3", "-m", "sglang.launch_server"]  # the image has no entrypoint
    assert argv[:2] == ["--model-path", "Qwen/Qwen3-32B-FP8"]
    assert argv[argv.index("--tp-size") + 1] == "4"
    assert argv[argv.index("--context-length") + 1] == "32768"
    assert "--max-model-len" not in argv and "--tensor-parallel-size" not in argv
    assert plan.image == "lmsysorg/sglang:v0.5.19-rocm700-mi30x"
    assert plan.env["SGLANG_USE_AITER"].value == "1"


def test_vendor_weights_and_kv_cache_dtype() -> None:
    amd = _plan("meta-llama/Llama-3.1-70B-Instruct", "mi300x", precision="fp8")
    assert amd.model_source == "amd/Llama-3.1-70B-Instruct-FP8-KV"
    assert amd.arg("kv-cache-dtype") == "fp8" and amd.arg("dtype") is None
    nv = _plan("meta-llama/Llama-3.1-70B-Instruct", "h200", precision="fp8")
    assert nv.model_source == "nvidia/Llama-3.1-70B-Instruct-FP8"


def test_expert_parallel_where_fp8_blocks_demand_it() -> None:
    assert _plan("Qwen/Qwen3-235B-A22B", "mi300x", gpus=8).arg("enable-expert-parallel")
    assert _plan("Qwen/Qwen3-235B-A22B", "mi300x", gpus=4).arg("enable-expert-parallel") is None


def test_multi_gpu_env_only_with_several_gpus() -> None:
    assert "NCCL_MIN_NCHANNELS" not in _plan("Qwen/Qwen3-8B", "mi300x", gpus=1).env
    assert _plan("Qwen/Qwen3-8B", "mi300x", gpus=2).env["NCCL_MIN_NCHANNELS"].value == "112"


def test_debug_recipe_info(cli) -> None:
    result = cli("debug", "recipe-info", "Qwen/Qwen3-32B", "--gpu-count", "1", "--format", "json")
    info = json.loads(result.out)["data"]
    assert info["facts"]["attention_heads"] == 64
    assert all(1 in c["gpus"] for c in info["configurations"])
    assert "mi250x-vllm" not in {c["config"] for c in info["configurations"]}


def test_script_mode_bits(tmp_path: Path) -> None:
    write_artifacts(tmp_path / "o", {"launch.sh": "#!/bin/sh\n", "manifest.json": "{}\n"})
    assert stat.S_IMODE((tmp_path / "o/launch.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "o/manifest.json").stat().st_mode) == 0o644


def test_unknown_precision_for_request_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        _plan("openai/gpt-oss-20b", "h100", precision="bf16")


def test_notes_follow_log_format_and_log_level(cli, tmp_path: Path) -> None:
    args = ("compile", "Qwen/Qwen3-32B", "--target", "h100", "-o", str(tmp_path / "o"))
    lines = cli(*args, env={"LOG_FORMAT": "json"}).err.splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["level"] for r in records} == {"INFO"} and records[0]["logger"] == "aimc"
    assert any(r["message"].startswith("2 GPUs: the smallest count") for r in records)
    text = cli(*args, env={"LOG_FORMAT": "text"}).err
    assert "note: 2 GPUs: the smallest count where bf16 fits" in text
    assert cli(*args, env={"LOG_LEVEL": "WARNING"}).err == ""


def test_set_takes_the_flag_spelling_of_a_neutral_setting(cli, tmp_path: Path) -> None:
    """Failed before: ``--set served-model-name=x`` was refused ("set the request instead")."""
    out = tmp_path / "b"
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out),
        "--set", "served-model-name=my-model", "--set", "max-model-len=4096",
    )  # fmt: skip
    assert result.code == 0, result.err
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert plan["served_model_name"] == "my-model"
    assert plan["args"]["max-model-len"]["value"] == 4096
    refused = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--set", "tensor-parallel-size=2")
    assert refused.code == 2 and "the configuration's gpus" in refused.err
