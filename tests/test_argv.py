"""The engine-value rule on every value that reaches the server's argv: a value never starts
with '-' (argparse, which vLLM's and SGLang's parsers are, would read it as another flag),
whichever field, layer or surface (``--set``, ``--config``, a recipe given to the Python
API, a plan given to ``run_command_directly``, a local model folder's name) set it.

The fields are enumerated from the code that builds argv, not listed by hand: the neutral
settings the engines map to a flag (:attr:`aimc.backends.Backend.flags`) whose
``--config`` schema type is a string, and every flag of each backend's vocabulary that
takes a free-text value.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc import api
from aimc.backends import BACKENDS, vocabulary
from aimc.domain.engine_args import is_secret
from aimc.plan.request import NEUTRAL
from tests.helpers.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
MODEL, TARGET = "Qwen/Qwen3-8B", "h100"
RECIPE = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"
OVERRIDES = json.loads((ROOT / "schemas" / "overrides.schema.json").read_text())["properties"]

#: What Python's argparse reads as a negative number rather than an option (the parser
#: vLLM's FlexibleArgumentParser and SGLang's server_args.py build on).
NEGATIVE = argparse.ArgumentParser()._negative_number_matcher


def _neutral_fields(backend: str) -> list[str]:
    """Neutral settings that become a flag of ``backend`` and take text."""
    flags = BACKENDS[backend].flags
    return [
        key
        for key in NEUTRAL
        if key in flags and "string" in str(OVERRIDES.get(key, {}).get("type"))
    ]


def _arg_fields(backend: str) -> list[str]:
    """The backend's flags that take a free-text value (no number type, no choices) and
    that a recipe or --set may give (not set by aimc, not a secret)."""
    return [
        name
        for name, spec in vocabulary(backend).flags.items()
        if spec["value"]
        and spec.get("type") not in ("int", "float")
        and "choices" not in spec
        and name not in BACKENDS[backend].managed
        and not is_secret(name)
    ]


FIELDS = [(backend, key) for backend in ("vllm", "sglang") for key in _neutral_fields(backend)] + [
    (backend, f"args.{name}") for backend in ("vllm", "sglang") for name in _arg_fields(backend)
]

#: A value argparse reads as a flag: '-' or '--', then a letter or '-' (never a number),
#: then anything printable on one line (spaces, '=', quotes, non-ASCII).
HOSTILE = st.builds(
    lambda dashes, head, rest: dashes + head + rest,
    st.sampled_from(["-", "--"]),
    st.sampled_from(["trust-remote-code", "x", "-", "h", "config", "enable-lora", "E"]),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="#"),
        max_size=20,
    ).map(str.rstrip),
)


def test_the_enumerated_fields_include_the_known_free_text_ones() -> None:
    keys = {key for _, key in FIELDS}
    assert {"served_model_name", "host"} <= keys
    for backend in ("vllm", "sglang"):
        assert {(backend, "args.chat-template"), (backend, "args.revision")} <= set(FIELDS)
    assert {("vllm", "args.tokenizer"), ("sglang", "args.tokenizer-path")} <= set(FIELDS)


def _cli(*args: str) -> tuple[int, str]:
    """``aim-engine ARGS`` in this process (tests/helpers/cli.py) with the state folder of
    :func:`home`: (exit status, stderr)."""
    result = run_cli(*args, env={"AIMC_STATE_DIR": os.environ["AIMC_STATE_DIR"]})
    return result.code, result.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DEFAULT_PORT", raising=False)
    return tmp_path


def _refused(code: int, err: str, key: str, out: Path) -> None:
    # One diagnostic: "error: ..." or, for a value the schema of a --config file refuses,
    # "FILE:LINE:COL: error: ...", then that file's count line ("error: 1 error in FILE").
    lines = [
        line
        for line in err.splitlines()
        if "error:" in line and not re.match(r"error: \d+ errors? in ", line)
    ]
    assert code == 2, err
    assert len(lines) == 1 and key.removeprefix("args.") in lines[0], err
    assert "Traceback" not in err
    assert not out.exists()


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=HOSTILE)
def test_set_refuses_a_value_that_starts_with_a_dash(home: Path, field, value: str) -> None:
    backend, key = field
    out = home / "out"
    code, err = _cli(
        "compile", MODEL, "--target", TARGET, "--backend", backend, "--set", f"{key}={value}",
        "-o", str(out),
    )  # fmt: skip
    _refused(code, err, key, out)


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=HOSTILE, listed=st.booleans())
def test_config_refuses_a_value_that_starts_with_a_dash(
    home: Path, field, value: str, listed: bool
) -> None:
    backend, key = field
    _, _, name = key.partition(".")
    flag = name or BACKENDS[backend].flags[key]
    # A flag that takes several values gets the hostile one second in a list.
    given_value: Any = (
        ["ok", value] if listed and vocabulary(backend).flags[flag].get("multiple") else value
    )
    data = {"args": {name: given_value}} if name else {key: value}
    config = home / "config.yaml"
    config.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = home / "out"
    code, err = _cli(
        "compile", MODEL, "--target", TARGET, "--backend", backend, "--config", str(config),
        "-o", str(out),
    )  # fmt: skip
    _refused(code, err, key, out)


@SETTINGS
@given(field=st.sampled_from([f for f in FIELDS if f[1].startswith("args.")]), value=HOSTILE)
def test_a_recipe_given_to_the_api_refuses_a_value_that_starts_with_a_dash(
    home: Path, field, value: str
) -> None:
    """``generate_config`` checks the recipe against its schema only: the argv check is
    what refuses a recipe's hostile arg (it returned the command with it before)."""
    backend, key = field
    recipe = yaml.safe_load(RECIPE.read_text())
    for conf in recipe["configurations"]:
        conf["args"] = {**conf.get("args", {}), key.removeprefix("args."): value}
    generator = api.AIMConfigGenerator(target=TARGET)
    assert generator.generate_config(recipe, 1, backend=backend) is None


@pytest.mark.parametrize("backend", ["vllm", "sglang"])
@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("weights", "bf16", "repo"), "--trust-remote-code/x"),
        (("weights", "bf16", "revision"), "--main"),
        (("weights", "bf16", "quantization"), "-q"),
        (("model", "id"), "-org/--name"),
    ],
)
def test_a_recipe_field_that_reaches_argv_refuses_a_dash(
    home: Path, backend: str, where: tuple[str, ...], value: str
) -> None:
    """The recipe's own fields that become argv words (the model repository, its revision
    and quantization, the model id as served name); the unchanged recipe gives a
    configuration (:func:`_plan`)."""
    assert _plan(backend)
    recipe = yaml.safe_load(RECIPE.read_text())
    node = recipe
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = value
    assert api.AIMConfigGenerator(target=TARGET).generate_config(recipe, 1, backend=backend) is None


def _plan(backend: str) -> dict[str, Any]:
    recipe = yaml.safe_load(RECIPE.read_text())
    config = api.AIMConfigGenerator(target=TARGET).generate_config(recipe, 1, backend=backend)
    assert config is not None
    return dict(config["plan"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(backend=st.sampled_from(["vllm", "sglang"]), value=HOSTILE, where=st.integers(0, 99))
def test_a_plan_given_to_run_command_directly_refuses_a_value_that_starts_with_a_dash(
    home: Path, backend: str, value: str, where: int
) -> None:
    """A plan handed back to the API is rendered again: any of its args, or its model,
    holding a flag-like value is refused before anything is written or started."""
    plan = _plan(backend)
    names = [*plan["args"], "model_source", "image"]
    name = names[where % len(names)]
    if name in ("model_source", "image"):  # the model's word; docker run's image word
        plan[name] = value
    else:
        plan["args"][name]["value"] = value
    answer = api.AIMDockerManager().run_command_directly({"plan": plan}, "argv-test", 1)
    assert answer["error"]["code"] == "CONFIGURATION_ERROR", answer
    message = answer["error"]["message"]
    assert "starts with '-'" in message, message
    assert (name.removesuffix("_source") if name == "model_source" else name) in message
    assert not (home / "state").exists() or not any((home / "state").rglob("*.json"))


def test_a_local_model_folder_named_like_a_flag_is_refused(home: Path) -> None:
    """The served name of a local folder is the folder's name."""
    folder = home / "--trust-remote-code"
    folder.mkdir()
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "num_hidden_layers": 2,
        "vocab_size": 1000,
        "max_position_embeddings": 4096,
        "torch_dtype": "bfloat16",
    }
    (folder / "config.json").write_text(json.dumps(config))
    out = home / "out"
    code, err = _cli("compile", str(folder), "--target", TARGET, "-o", str(out))
    _refused(code, err, "served_model_name", out)


@pytest.mark.parametrize("value", ["-1", "-0.5", "-.5"])
def test_a_negative_number_is_a_value(home: Path, value: str) -> None:
    """What argparse reads as a negative number stays allowed (a text flag here)."""
    assert NEGATIVE.match(value)
    config = home / "config.yaml"
    config.write_text(json.dumps({"args": {"chat-template": value}}), encoding="utf-8")
    out = home / "out"
    code, err = _cli("compile", MODEL, "--target", TARGET, "--config", str(config), "-o", str(out))
    assert code == 0, err
    assert f"--chat-template {value}\n" in (out / "launch.sh").read_text()
