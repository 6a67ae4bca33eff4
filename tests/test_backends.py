"""The backend registry (aimc.backends): a new inference engine is one registration.

The dummy backend below is registered from this test alone (no module of aimc edited): a
recipe that names it validates against the schema, compiles end to end (launch script,
native config, manifest, ``--check``) and across two nodes (its own node and role args in
the plan and the scripts), its secrets are refused in recipes and masked in
messages, its log lines move the startup phases, and once it is gone it is refused again.
The built-in backends are tied to the shipped schemas' enums.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aimc import backends
from aimc.backends import BACKENDS, Backend, register, vocabulary
from aimc.cli import main
from aimc.core.masking import SECRET_ENV, mask
from aimc.run.progress import phase_of
from aimc.vendors import VENDORS

ROOT = Path(__file__).resolve().parent.parent

#: What the dummy engine's parser knows (the snapshot a real backend ships as JSON).
VOCABULARY = {
    "version": "9.9",
    "flags": {
        name: {"value": True, "multiple": False}
        for name in ("shards", "max-tokens", "mem-share", "listen", "listen-port", "name")
    }
    # Its multi-node words: the node count, the layout, a node's rank and the head.
    | {name: {"value": True, "multiple": False} for name in ("hosts", "split", "rank", "head")}
    | {
        "dtype": {"value": True, "multiple": False},
        "batch-size": {"value": True, "multiple": False},
        "trust-code": {"value": False, "multiple": False},
        "server-token": {"value": True, "multiple": False},
    },
    "env": ["DUMMY_LOG", "DUMMY_TOKEN_SECRET"],
}

DUMMY = Backend(
    name="dummy",
    process_command=("-m", "dummy_engine.serve"),
    container_command=("dummy-serve",),
    model_flag="weights",
    process_model_flag="weights",
    flags={
        "gpus": "shards",
        "data_parallel": "replicas",
        "context_length": "max-tokens",
        "memory_utilization": "mem-share",
        "dtype": "dtype",
        "quantization": "quantize",
        "kv_cache_dtype": "kv-dtype",
        "served_model_name": "name",
        "revision": "revision",
        "trust_remote_code": "trust-code",
        "host": "listen",
        "port": "listen-port",
    },
    dtypes={"bf16": "bfloat16"},
    kv_cache_dtypes={"auto": "auto"},
    default_memory_utilization=0.8,
    assumed_memory_fraction=0.8,
    managed={"shards": "the configuration's gpus", "listen-port": "port"},
    passthrough_env=("HF_TOKEN",),
    secrets=frozenset({"server-token"}),
    secret_env=("DUMMY_ENGINE_KEY",),
    config_file="dummy.yaml",
    config_comment="The dummy engine's own config file.",
    phase_markers={"loading weights": ("dummy: reading shards",)},
    snapshot=lambda: VOCABULARY,
    # Across nodes: its own words for the node count and the layout, and for each node's role.
    node_args=lambda nodes: {"hosts": nodes, "split": "layers"},
    role_args=lambda rank, head: ["--rank", rank, "--head", head],
    store_port=7070,
    worker_role="serves its shards",
)

RECIPE = """\
apiVersion: aimc/v1
kind: Recipe
model:
  id: acme/Tiny-1B
  facts:
    parameters: 1.0e+9
    layers: 16
    hidden_size: 2048
    attention_heads: 32
    kv_heads: 8
    head_dim: 64
    max_context: 8192
    vocab_size: 32000
weights:
  bf16: {repo: acme/Tiny-1B}
defaults:
  backend: BACKEND
  precision: bf16
  context_length: 4096
configurations:
  - id: h100-dummy
    hardware: [h100]
    precision: [bf16]
    gpus: [1, 2]
    args:
      batch-size: 16
"""


@pytest.fixture
def dummy() -> Iterator[Backend]:
    """The dummy backend, registered for one test; the registry as it was afterwards."""
    registered = register(DUMMY)
    vocabulary.cache_clear()
    try:
        yield registered
    finally:
        BACKENDS.pop("dummy", None)
        SECRET_ENV.remove("DUMMY_ENGINE_KEY")
        vocabulary.cache_clear()


def _recipes(tmp_path: Path, backend: str = "dummy") -> Path:
    folder = tmp_path / "recipes" / "models" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Tiny-1B.yaml").write_text(RECIPE.replace("BACKEND", backend), encoding="utf-8")
    return tmp_path / "recipes"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))


@dataclass
class Done:
    exit_code: int
    output: str


def _aim(args: list[str]) -> Done:
    """``aim-engine ARGS`` in this process, through its entry point (as the console
    script runs it): the exit status, stdout and stderr together."""
    text = io.StringIO()
    with contextlib.redirect_stderr(text), contextlib.redirect_stdout(text):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Done(code, text.getvalue())


def _compile(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "compile", "acme/Tiny-1B", "1", "--target", "h100",
        "--recipes", str(_recipes(tmp_path)), "-o", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


def test_a_registered_backend_compiles_end_to_end(dummy: Backend, tmp_path: Path) -> None:
    done_args = _compile(tmp_path)
    done = _aim(done_args)
    assert done.exit_code == 0, done.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "aim.env", "dummy.yaml", "launch.sh", "manifest.json",
    ]  # fmt: skip
    launch = (out / "launch.sh").read_text()
    # The backend's command and its flags for aimc's neutral settings, the recipe's args.
    assert "-m dummy_engine.serve" in launch
    for words in ("--weights acme/Tiny-1B", "--shards 1", "--max-tokens 4096", "--mem-share 0.8"):
        assert words in launch, words
    assert "--listen 0.0.0.0" in launch and "--batch-size 16" in launch
    assert "tensor-parallel-size" not in launch and "vllm" not in launch
    native = (out / "dummy.yaml").read_text()
    assert "# The dummy engine's own config file." in native
    assert 'weights: "acme/Tiny-1B"' in native and "shards: 1" in native
    plan = json.loads((out / "manifest.json").read_text())["plan"]
    assert plan["backend"] == "dummy" and plan["backend_version"] == "9.9"
    assert plan["passthrough_env"] == ["HF_TOKEN"]
    # The folder is aimc's like any other: --check reads it, and an edit is drift.
    again = [*done_args, "--check"]
    assert _aim(again).exit_code == 0
    (out / "dummy.yaml").write_text("edited\n")
    assert _aim(again).exit_code == 1


def test_its_multi_node_args_reach_the_plan(dummy: Backend, tmp_path: Path) -> None:
    """A configuration over two nodes runs with the backend's own node args, their source
    the configuration's ``nodes`` line, and each node's role words: no other engine's."""
    args = _compile(tmp_path, "--nodes", "2")
    recipe = tmp_path / "recipes" / "models" / "acme" / "Tiny-1B.yaml"
    text = recipe.read_text().replace("gpus: [1, 2]", "gpus: [1, 2]\n    nodes: [2]")
    recipe.write_text(text)
    line = text.splitlines().index("    nodes: [2]") + 1
    done = _aim(args)
    assert done.exit_code == 0, done.output
    out = tmp_path / "out"
    plan = json.loads((out / "manifest.json").read_text())["plan"]["args"]
    for flag, value in (("hosts", 2), ("split", "layers")):
        assert plan[flag]["value"] == value and plan[flag]["layer"] == "configuration"
        assert plan[flag]["source"].endswith(f"Tiny-1B.yaml:{line}"), plan[flag]
    assert plan["shards"]["value"] == 1  # a pipeline layout: GPUs per node
    launch, worker = (out / "launch.sh").read_text(), (out / "launch-worker.sh").read_text()
    for script in (launch, worker):
        assert "--hosts 2 \\\n  --split layers" in script, script
    assert '--rank 0 --head "$AIM_MASTER_ADDR"' in launch
    assert '--rank "$AIM_NODE_RANK" --head "$AIM_MASTER_ADDR"' in worker
    for words in ("pipeline-parallel-size", "distributed-executor-backend", "nnodes"):
        assert words not in launch and words not in worker and words not in plan


def test_the_backend_choice_and_the_schema_take_a_registered_backend(
    dummy: Backend, tmp_path: Path
) -> None:
    args = _compile(tmp_path, "--backend", "dummy")
    done = _aim(args)
    assert done.exit_code == 0, done.output
    recipes = tmp_path / "recipes"
    done = _aim(["validate", str(recipes)])
    assert done.exit_code == 0, done.output
    # A misspelt backend is refused at its line and column, with the registered names.
    bad = recipes / "models" / "acme" / "Tiny-1B.yaml"
    bad.write_text(RECIPE.replace("BACKEND", "dumy"), encoding="utf-8")
    done = _aim(["validate", str(recipes)])
    assert done.exit_code == 2
    assert "Tiny-1B.yaml:17:12: error:" in done.output
    assert "did you mean 'dummy'" in done.output


def test_without_the_registration_the_backend_is_refused(tmp_path: Path) -> None:
    assert "dummy" not in backends.names()
    done = _aim(_compile(tmp_path))
    assert done.exit_code == 2, done.output
    assert "Tiny-1B.yaml:17:12: error:" in done.output
    done = _aim(_compile(tmp_path / "b", "--backend", "dummy"))
    assert done.exit_code == 2 and "is not one of vllm, sglang" in done.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "b" / "out").exists()


def test_the_help_lists_the_backends_registered_when_it_is_written() -> None:
    """The choices are read from the registry each time: a backend registered after the
    command was built is listed, and one removed is no longer listed (the help used to keep
    the names of the last value converted)."""
    assert "[vllm|sglang]" in _aim(["compile", "--help"]).output
    backends.register(dataclasses.replace(backends.get("vllm"), name="dummy"))
    try:
        assert "[vllm|sglang|dummy]" in _aim(["compile", "--help"]).output
    finally:
        BACKENDS.pop("dummy", None)
    assert "dummy" not in _aim(["compile", "--help"]).output


def test_its_secrets_are_refused_and_masked(dummy: Backend, tmp_path: Path) -> None:
    recipes = _recipes(tmp_path)
    path = recipes / "models" / "acme" / "Tiny-1B.yaml"
    path.write_text(path.read_text().replace("batch-size: 16", "server-token: abcdefgh"))
    done = _aim(["validate", str(recipes)])
    assert done.exit_code == 2
    assert "'server-token' is a secret" in done.output
    assert "abcdefgh" not in done.output
    assert mask("key is s3cr3t-value", {"DUMMY_ENGINE_KEY": "s3cr3t-value"}) == "key is ***"


def test_its_log_lines_move_the_startup_phases(dummy: Backend) -> None:
    assert phase_of("INFO dummy: reading shards 1/2") == "loading weights"
    BACKENDS.pop("dummy")
    assert phase_of("INFO dummy: reading shards 1/2") is None
    BACKENDS["dummy"] = dummy


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register(BACKENDS["vllm"])


def _enum(schema: str, *path: str) -> Any:
    node: Any = json.loads((ROOT / "schemas" / schema).read_text(encoding="utf-8"))
    for key in path:
        node = node[key]
    return node


def test_the_shipped_schemas_list_the_built_in_backends_and_vendors() -> None:
    """The schema files (what editors and other tools read) name exactly what aimc
    registers by itself, in the same order."""
    assert backends.names() == ("vllm", "sglang")
    assert _enum("recipe.schema.json", "$defs", "backend", "enum") == list(backends.names())
    hw = ("properties", "backends", "propertyNames", "enum")
    assert _enum("hardware.schema.json", *hw) == list(backends.names())
    assert _enum("hardware.schema.json", "properties", "vendor", "enum") == list(VENDORS)
