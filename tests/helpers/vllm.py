"""The real vLLM on the CPU, for the tests marked ``server`` (tests/test_server.py,
test_docker.py, test_cache_server.py): its interpreter, a tiny random Llama made at test
time, transformers' greedy tokens for :data:`PROMPT`, and the checks of a served model.
The fixtures are module-scoped; a test module imports the ones it uses."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

__all__ = [
    "PROMPT",
    "check_serving",
    "get_json",
    "post_json",
    "reference_tokens",
    "server_pids",
    "tiny_model",
    "vllm_python",
]

PROMPT = "Hello, how are you?"


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    path = Path(os.environ.get("AIMC_TEST_VLLM_PYTHON") or ROOT / ".venv-vllm/bin/python")
    if not path.exists():
        pytest.fail(
            f"{path} not found: run scripts/setup-vllm.sh (or set "
            "AIMC_TEST_VLLM_PYTHON) to install the CPU build of vLLM"
        )
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, vllm_python: Path) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    subprocess.run(
        [str(vllm_python), str(ROOT / "examples/make_tiny_llama.py"), str(folder)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


@pytest.fixture(scope="module")
def reference_tokens(tiny_model: Path, vllm_python: Path) -> list[int]:
    """transformers' greedy decoding of the prompt: what vLLM must produce at temperature 0."""
    code = (
        "import json, sys, torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)\n"
        "ids = t(sys.argv[2], return_tensors='pt').input_ids\n"
        "out = m.generate(ids, max_new_tokens=8, do_sample=False, min_new_tokens=8)\n"
        "print(json.dumps(out[0, ids.shape[1]:].tolist()))\n"
    )
    out = subprocess.run(
        [str(vllm_python), "-c", code, str(tiny_model), PROMPT],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    tokens: list[int] = json.loads(out.strip().splitlines()[-1])
    assert len(tokens) == 8
    return tokens


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def check_serving(endpoint: str, model: str, reference: list[int]) -> None:
    models = get_json(f"{endpoint}/v1/models")
    assert [m["id"] for m in models["data"]] == [model]
    answer = post_json(
        f"{endpoint}/v1/completions",
        {
            "model": model,
            "prompt": PROMPT,
            "max_tokens": 8,
            "temperature": 0,
            "return_token_ids": True,
        },
    )
    choice = answer["choices"][0]
    assert answer["usage"]["completion_tokens"] == 8
    assert choice["token_ids"] == reference


def server_pids(state: Path) -> list[int]:
    return [json.loads(p.read_text())["pid"] for p in (state / "runs").glob("*.json")]
