"""The AIM Engine Python API as its reference uses it (``from aim_launcher import ...``)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aim_launcher import AIMConfigGenerator, AIMDockerManager, AIMEngine, AIMRecipeSelector
from aimc.api.args import command_files
from aimc.core.settings import Settings
from aimc.plan.model import Plan
from aimc.run.runs import load_records, stop_record
from tests.conftest import ROOT
from tests.helpers.runs import FAKE, free_port, run_cli

EXAMPLES = ROOT / "examples" / "recipes"


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("AIM_PYTHON", str(python))
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_MODE", "ready")
    yield
    for record in load_records():
        stop_record(record)


def test_list_models() -> None:
    models = AIMEngine(cache_dir=None).list_models()
    assert {"Qwen/Qwen3-32B", "openai/gpt-oss-20b"} <= {m["model"] for m in models}


def test_optimal_configuration() -> None:
    selector = AIMRecipeSelector(target="mi300x")
    plan = selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=8)
    assert plan is not None
    assert (plan["gpus"], plan["precision"], plan["backend"]) == (8, "bf16", "vllm")
    fp8 = selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_precision="fp8")
    assert fp8 is not None and fp8["model_source"] == "Qwen/Qwen3-32B-FP8"
    assert selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=3) is None
    assert selector._detect_vllm_gpus() == 0  # this machine has no GPU


def test_generate_config_from_a_recipe_dict() -> None:
    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    config = AIMConfigGenerator(target="h100").generate_config(recipe, 2)
    assert config is not None
    assert config["command"][:3] == ["Qwen/Qwen3-8B", "--tensor-parallel-size", "2"]
    assert {"launch.sh", "manifest.json", "aim.env"} <= set(config["files"])
    assert AIMConfigGenerator(target="h100").generate_config(recipe, 3) is None
    assert AIMConfigGenerator(target="h100").generate_config({"kind": "Recipe"}, 1) is None


def test_launch_model_success_and_error_responses(fake_env) -> None:
    engine = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES])
    port = free_port()
    result = engine.launch_model("aimc-examples/tiny-llama", port=port, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{port}"
    assert result["data"]["status"] == "running"
    missing = engine.launch_model("no-such/model")
    assert missing["success"] is False
    assert missing["error"]["code"] == "CONFIGURATION_ERROR"
    assert missing["timestamp"].endswith("Z")


def test_run_command_directly(fake_env) -> None:
    import json

    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((EXAMPLES / "models/aimc-examples/tiny-llama.yaml").read_text())
    recipe["weights"]["fp32"]["path"] = str(ROOT / "examples/models/tiny-llama")
    port = free_port()
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1, port=port)
    assert config is not None
    assert json.loads(config["files"]["manifest.json"])["plan"]["port"] == port
    result = AIMDockerManager().run_command_directly(config, "aim-api-test", 1, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["container_name"] == "aim-api-test"
    wrong = AIMDockerManager().run_command_directly(config, "aim-api-test-2", 2)
    assert wrong["success"] is False


def _tiny_recipe() -> dict:
    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((EXAMPLES / "models/aimc-examples/tiny-llama.yaml").read_text())
    recipe["weights"]["fp32"]["path"] = str(ROOT / "examples/models/tiny-llama")
    return dict(recipe)


@pytest.mark.parametrize("name", ["../escape", "a/b", "UPPER", ""])
def test_run_command_directly_refuses_a_name_that_is_a_path(
    fake_env, tmp_path: Path, name: str
) -> None:
    """Before issue 9 the container name was joined into a path: ``../escape`` wrote the
    artifacts outside the state folder."""
    config = AIMConfigGenerator(target="cpu").generate_config(_tiny_recipe(), 1, port=free_port())
    assert config is not None
    result = AIMDockerManager().run_command_directly(config, name, 1, timeout=10)
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert not (tmp_path / "state" / "escape").exists()
    assert not list(tmp_path.rglob("manifest.json"))


def test_a_long_model_name_still_gives_a_valid_run_name() -> None:
    """Run names are at most 63 characters; the plan's default name is cut to fit."""
    import json

    from aimc.core.records import validate_name

    recipe = _tiny_recipe()
    recipe["model"]["id"] = "org/" + "very-long-model-name-" * 5
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1)
    assert config is not None
    name = json.loads(config["files"]["manifest.json"])["plan"]["name"]
    assert len(name) <= 63
    assert validate_name(name) == name


def test_run_command_directly_runs_a_command_configuration(fake_env, tmp_path: Path) -> None:
    """Before issue 11 ``{"command": [...]}`` raised KeyError: 'files'."""
    port = free_port()
    marker = tmp_path / "env-seen"
    config = {
        "command": [sys.executable, str(FAKE), "--port", str(port), "--served-model-name", "m"],
        "port": port,
        "env": {"FAKE_PIDS": str(marker)},
        "model": "m",
    }
    result = AIMDockerManager().run_command_directly(config, "aim-command-test", 1, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{port}"
    assert marker.exists()  # the env reached the process
    (record,) = [r for r in load_records() if r.name == "aim-command-test"]
    assert record.port == port
    assert Path(record.folder, "launch.sh").read_text().rstrip().endswith("--served-model-name m")
    # No backend ran it, and bench records its figures under no configuration of aimc's.
    assert result["data"]["backend"] == "" and record.backend == ""
    state = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    load = ("--requests", "2", "--concurrency", "1", "--output-len", "4", "--client", "aimc")
    bench = run_cli("bench", "aim-command-test", *load, "--format", "json", env=state)
    assert bench.code == 0, bench.err
    assert json.loads(bench.out)["data"]["key"] is None


def test_a_command_plan_names_no_recipe_hardware_or_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command given as is is a raw command plan, not a plan of a backend named
    "command" (before, its manifest said backend, configuration and target "command", and
    that plan given back to run_command_directly raised KeyError: 'command')."""
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    config = {"command": ["python3", "-m", "my.server"], "port": 9000, "model": "m"}
    files = command_files(config, "aim-raw", 1, Settings.load())
    assert files["launch.sh"].rstrip().endswith("exec python3 -m my.server")
    plan = json.loads(files["manifest.json"])["plan"]
    assert plan["raw_command"] is True and plan["command"] == config["command"]
    assert (plan["backend"], plan["configuration"], plan["hardware"], plan["recipe"]) == (
        "", "", {}, {},
    )  # fmt: skip
    assert (plan["model_id"], plan["served_model_name"], plan["model_source"]) == ("m", "m", "")
    assert Plan.from_json(plan).raw_command is True
    manager = AIMDockerManager()
    again = manager.run_command_directly({"plan": plan}, "aim-raw-again", 1, timeout=5)
    assert again["success"] is False and "a command given as is" in again["error"]["message"]
    bogus = manager.run_command_directly({"plan": {**plan, "raw_command": False}}, "x", 1)
    assert bogus["error"]["code"] == "CONFIGURATION_ERROR"
    assert "names no backend aimc knows ('')" in bogus["error"]["message"]
    assert not (tmp_path / "state" / "runs").exists()


def test_run_command_directly_refuses_what_is_not_a_command(fake_env) -> None:
    for config in ({}, {"command": []}, {"command": "python3 -m x"}, {"command": ["a\0b"]}):
        result = AIMDockerManager().run_command_directly(config, "aim-bad", 1, timeout=5)
        assert result["success"] is False
        assert result["error"]["code"] == "CONFIGURATION_ERROR"


def test_get_optimal_configuration_is_none_without_gpus() -> None:
    """Before issue 11 it raised GPUDetectionError on a machine without GPUs."""
    selector = AIMRecipeSelector(target="auto")
    assert selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=8) is None


def test_list_models_honours_its_format() -> None:
    """Before issue 11 ``format`` was ignored."""
    engine = AIMEngine()
    table = engine.list_models(format="table")
    full = engine.list_models(format="json")
    assert [r["model"] for r in table] == [r["model"] for r in full]
    assert set(table[0]) < set(full[0])
    with pytest.raises(ValueError, match="format"):
        engine.list_models(format="xml")


def test_launch_model_without_gpus_is_a_detection_error_response(fake_env) -> None:
    """Failed before issue 20: with no GPU and no GPU count, ``target="auto"`` served a
    model with a cpu configuration on the CPU without a word (this machine has no GPU)."""
    engine = AIMEngine(recipe_dirs=[EXAMPLES])
    result = engine.launch_model("aimc-examples/tiny-llama", port=free_port(), timeout=30)
    assert result["success"] is False, result
    assert result["error"]["code"] == "GPU_DETECTION_FAILED"
    assert result["error"]["message"].startswith("no GPU detected")
    assert not load_records()
    selector = AIMRecipeSelector(recipe_dirs=[EXAMPLES])
    assert selector.get_optimal_configuration("aimc-examples/tiny-llama") is None


# --- arguments of any type (issue 20) ------------------------------------------------------

#: Values of every kind a caller may pass by mistake.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30) | st.just(10**5000) | st.just(-(10**5000)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just(object()),
    st.just(Path("/")),
)

PRECISIONS = {
    "fp32",
    "bf16",
    "fp16",
    "fp8",
    "int8",
    "int4",
    "mxfp4",
}  # the API reference's + aimc's


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _seconds(value: object) -> bool:
    """A positive, finite number of seconds (an int or a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:  # an int too large for a float
        return False


#: launch_model's parameters -> whether a value is acceptable, written from the reference's
#: signature (independently of aimc's checks).
LAUNCH_VALID = {
    "model_id": lambda v: isinstance(v, str) and v != "" and "\0" not in v,
    "gpu_count": lambda v: v is None or _is_int(v, 1, 64),
    "precision": lambda v: v is None or (isinstance(v, str) and v in PRECISIONS),
    "backend": lambda v: v is None or v in ("vllm", "sglang"),
    "port": lambda v: v is None or _is_int(v, 1, 65535),
    "timeout": lambda v: v is None or _seconds(v),
    "use_cache": lambda v: isinstance(v, bool),
    "debug": lambda v: isinstance(v, bool),
}
GOOD = {"model_id": "Qwen/Qwen3-8B", "gpu_count": 1, "precision": "bf16", "port": 8123}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(sorted(LAUNCH_VALID)), value=ANYTHING)
def test_launch_model_answers_a_bad_argument_with_the_error_response(
    fake_env, name: str, value: object
) -> None:
    """Failed before issue 20: ``gpu_count="abc"`` raised TypeError, ``model_id=None``
    TypeError, ``debug="no"`` turned debug on, ``gpu_count=2.5`` was a 'no configuration'."""
    assume(not LAUNCH_VALID[name](value))
    result = AIMEngine(target="h100").launch_model(**{**GOOD, name: value})
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR", result
    assert result["error"]["message"].startswith(f"{name} must be "), result
    assert not load_records()  # nothing was started


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(["model_id", "customer_gpu_count", "customer_precision", "backend"]),
    value=ANYTHING,
)
def test_get_optimal_configuration_is_none_for_a_bad_argument(name: str, value: object) -> None:
    """Failed before issue 20 (TypeError for a list as the GPU count, or a str precision
    that is not a word)."""
    key = {"customer_gpu_count": "gpu_count", "customer_precision": "precision"}.get(name, name)
    args = {"model_id": "Qwen/Qwen3-8B", "customer_gpu_count": 1, name: value}
    plan = AIMRecipeSelector(target="h100").get_optimal_configuration(**args)
    if LAUNCH_VALID[key](value):
        assert plan is None or plan["model_id"] == "Qwen/Qwen3-8B"
    else:
        assert plan is None


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(["recipe", "gpu_count", "backend", "port"]), value=ANYTHING)
def test_generate_config_is_none_for_a_bad_argument(name: str, value: object) -> None:
    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    args = {"recipe": recipe, "gpu_count": 2, name: value}
    config = AIMConfigGenerator(target="h100").generate_config(**args)
    valid = {
        "recipe": lambda v: False,  # none of ANYTHING is a recipe mapping
        "gpu_count": lambda v: _is_int(v, 1, 64),  # a count is required here
        "backend": LAUNCH_VALID["backend"],
        "port": LAUNCH_VALID["port"],
    }[name]
    if not valid(value):
        assert config is None


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(["config", "container_name", "gpu_count", "timeout"]), value=ANYTHING)
def test_run_command_directly_answers_a_bad_argument_with_the_error_response(
    fake_env, name: str, value: object
) -> None:
    config = {"command": [sys.executable, "-c", "pass"], "port": free_port()}
    args = {"config": config, "container_name": "aim-any", "gpu_count": 0, "timeout": 5}
    valid = {
        "config": lambda v: False,  # none of ANYTHING is a command configuration
        "container_name": LAUNCH_VALID["model_id"],  # text: the run-name rules decide
        "gpu_count": lambda v: _is_int(v, 0, 64),
        "timeout": LAUNCH_VALID["timeout"],
    }[name]
    assume(not valid(value))
    result = AIMDockerManager().run_command_directly(**{**args, name: value})
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR", result
    assert not load_records()


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["cache_dir", "debug", "target", "recipe_dirs", "format"]),
    value=ANYTHING,
)
def test_constructors_and_list_models_raise_only_their_documented_errors(
    name: str, value: object
) -> None:
    """A constructor cannot answer with a response: a bad argument is a ConfigError (an
    AimcError with its exit code), ``list_models``'s a ValueError; never a TypeError from
    inside (before issue 20: ``recipe_dirs=5`` TypeError, ``recipe_dirs="abc"`` read as
    the folders 'a', 'b', 'c', ``debug="no"`` accepted as debug on)."""
    from aimc.core.errors import ConfigError

    try:
        if name == "format":
            rows = AIMEngine().list_models(format=value)  # type: ignore[arg-type]
            assert value in ("table", "json", "yaml") and rows
            return
        engine = AIMEngine(**{name: value})
    except ConfigError as exc:
        assert name in exc.message or "recipe directory" in exc.message
        return
    except ValueError as exc:
        assert name == "format" and "format must be" in str(exc)
        return
    assert {
        "cache_dir": lambda v: (
            v in (None, "") or (isinstance(v, (str, Path)) and "\0" not in str(v))
        ),
        "debug": lambda v: isinstance(v, bool),
        "target": lambda v: isinstance(v, str) and v and "\0" not in v,
        "recipe_dirs": lambda v: isinstance(v, (list, tuple)) and not v,
    }[name](value), engine


def test_port_and_timeout_left_out_follow_the_environment(fake_env, monkeypatch) -> None:
    """``port: int = 8000`` as the reference writes it: left out, DEFAULT_PORT applies;
    given, even as 8000, the argument wins (before issue 20 the signature said None)."""
    import inspect

    signature = inspect.signature(AIMEngine.launch_model)
    assert str(signature.parameters["port"]) == "port: 'int' = 8000"
    assert str(signature.parameters["timeout"]) == "timeout: 'int' = 600"
    port = free_port()
    monkeypatch.setenv("DEFAULT_PORT", str(port))
    engine = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES])
    result = engine.launch_model("aimc-examples/tiny-llama")
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{port}"
    recipe = YAML(typ="safe").load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    generator = AIMConfigGenerator(target="h100")
    explicit = generator.generate_config(recipe, 1, port=8000)
    left_out = generator.generate_config(recipe, 1)
    assert explicit is not None and left_out is not None
    assert (explicit["plan"]["port"], left_out["plan"]["port"]) == (8000, port)


def test_get_optimal_configuration_honours_default_port(monkeypatch) -> None:
    """Failed before issue 20: the selector's plan said 8000 whatever DEFAULT_PORT said."""
    monkeypatch.setenv("DEFAULT_PORT", "9123")
    selector = AIMRecipeSelector(target="h100")
    plan = selector.get_optimal_configuration("Qwen/Qwen3-8B", customer_gpu_count=1)
    assert plan is not None and plan["port"] == 9123
    assert plan["args"]["port"]["value"] == 9123


# --- emit: every registered emitter through generate_config --------------------------------


def _qwen3_8b() -> dict:
    return YAML(typ="safe").load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())


def test_generate_config_emits_what_compile_emit_writes(tmp_path: Path, monkeypatch) -> None:
    """Failed before issue 23: ``generate_config`` had no ``emit`` (TypeError), the API no
    way to the Kubernetes manifests. With ``emit="k8s"`` its files are the manifests
    ``aim-engine compile --emit k8s`` writes (the same documents; only the header comments,
    which name the request line and the recipe's source, differ), for the same plan, and
    the server's command and environment stay those of the local files."""
    from click.testing import CliRunner

    from aimc.cli import cli

    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "k8s"
    args = ["compile", "Qwen/Qwen3-8B", "2", "--target", "h100", "--emit", "k8s"]
    done = CliRunner().invoke(cli, [*args, "--replicas", "3", "-o", str(out)])
    assert done.exit_code == 0, done.output
    generator = AIMConfigGenerator(target="h100")
    config = generator.generate_config(_qwen3_8b(), 2, emit="k8s", replicas=3)
    local = generator.generate_config(_qwen3_8b(), 2)
    assert config is not None and local is not None
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert sorted(config["files"]) == written
    assert {"deployment.yaml", "service.yaml", "pvc.yaml", "manifest.aimc"} <= set(written)
    yaml = YAML(typ="safe", pure=True)
    for name in (n for n in written if n.endswith(".yaml")):
        ours = list(yaml.load_all(config["files"][name]))
        assert ours == list(yaml.load_all((out / name).read_text())), name
    deployment = yaml.load(config["files"]["deployment.yaml"])
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 3
    assert (config["plan"], config["command"], config["env"]) == (
        local["plan"],
        local["command"],
        local["env"],
    )
    assert "launch.sh" in local["files"] and "launch.sh" not in config["files"]


def test_generate_config_takes_an_emitter_registered_from_outside() -> None:
    """An emitter registered from this test alone (no aimc module edited) is an ``emit``
    value of the API as of ``compile --emit``."""
    from aimc.emit.emitters import EMITTERS, Emitter, register

    def one_file(plan, request, target: str, replicas: int) -> dict[str, str]:
        return {"serve.txt": f"{plan.model_id} on {target} x{plan.gpus} r{replicas}\n"}

    register(Emitter("api-dummy", "one text file", one_file, replicas=True))
    try:
        config = AIMConfigGenerator(target="h100").generate_config(
            _qwen3_8b(), 2, emit="api-dummy", replicas=2
        )
    finally:
        EMITTERS.pop("api-dummy", None)
    assert config is not None
    assert config["files"] == {"serve.txt": "Qwen/Qwen3-8B on h100 x2 r2\n"}
    unregistered = AIMConfigGenerator(target="h100").generate_config(
        _qwen3_8b(), 2, emit="api-dummy"
    )
    assert unregistered is None


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(["emit", "replicas"]), value=ANYTHING)
def test_generate_config_is_none_for_a_bad_emit_or_replicas(name: str, value: object) -> None:
    """Any value that is not a registered emitter's name, or a replica count of 1-1000
    (other than 1 only for an emitter that takes replicas), is None: never an exception,
    never a file of an emitter that was not asked for."""
    args = {"emit": "k8s", "replicas": 2, name: value}
    config = AIMConfigGenerator(target="h100").generate_config(_qwen3_8b(), 2, **args)
    valid = {
        # local takes no replicas; aim refuses an NVIDIA target (h100)
        "emit": lambda v: v in ("k8s", "kserve"),
        "replicas": lambda v: _is_int(v, 1, 1000),
    }[name]
    assert (config is not None) == valid(value), (name, value)
    if config is not None:
        yaml = YAML(typ="safe", pure=True)
        main = "deployment.yaml" if args["emit"] == "k8s" else "llminferenceservice.yaml"
        assert yaml.load(config["files"][main])["spec"]["replicas"] == args["replicas"]


def test_generate_config_refuses_replicas_for_an_emitter_without_them() -> None:
    """As ``compile --replicas 3`` without ``--emit k8s`` is exit 2."""
    generator = AIMConfigGenerator(target="h100")
    assert generator.generate_config(_qwen3_8b(), 2, replicas=3) is None
    assert generator.generate_config(_qwen3_8b(), 2, emit="local", replicas=1) is not None
    import inspect

    parameters = inspect.signature(AIMConfigGenerator.generate_config).parameters
    assert list(parameters)[:5] == ["self", "recipe", "gpu_count", "backend", "port"]
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("emit", "replicas"))
    assert (parameters["emit"].default, parameters["replicas"].default) == ("local", 1)
