"""End to end with the real vLLM server on the CPU (marked ``server``; ~2 minutes).

A tiny random Llama is generated at test time, launched with aimc, asked for a completion
whose tokens must equal transformers' greedy decoding of the same model, listed by
``status`` and stopped, with no process of it left. Needs .venv-vllm
(scripts/setup-vllm.sh) or AIMC_TEST_VLLM_PYTHON.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aimc.run.process import alive
from tests.helpers.runs import free_port
from tests.helpers.vllm import PROMPT, check_serving, reference_tokens, server_pids, tiny_model
from tests.helpers.vllm import vllm_python as vllm_python

pytestmark = pytest.mark.server
__all__ = ["reference_tokens", "tiny_model"]  # fixtures of tests/helpers/vllm.py


@pytest.fixture
def env(tmp_path: Path, vllm_python: Path) -> dict[str, str]:
    return {
        "AIM_PYTHON": str(vllm_python),
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }


def test_launch_a_local_folder_end_to_end(cli, env, tiny_model, reference_tokens, tmp_path) -> None:
    port = free_port()
    result = cli(
        "launch",
        str(tiny_model),
        "--target",
        "cpu",
        "--port",
        str(port),
        "--timeout",
        "400",
        "--set",
        "env.VLLM_CPU_KVCACHE_SPACE=1",
        "--format",
        "json",
        env=env,
        timeout=500,
    )
    try:
        assert result.code == 0, result.err + result.out
        data = json.loads(result.out)["data"]
        assert (
            data["container_name"],
            data["backend"],
            data["precision"],
            data["gpu_count"],
            data["status"],
        ) == ("aim-tiny-llama", "vllm", "fp32", 1, "running")
        check_serving(data["endpoint_url"], "tiny-llama", reference_tokens)
        shown = json.loads(cli("status", "--format", "json", env=env).out)["data"]
        assert [(s["name"], s["status"]) for s in shown] == [("aim-tiny-llama", "running")]
        pids = server_pids(tmp_path / "state")
    finally:
        stopped = cli("stop", "aim-tiny-llama", env=env, timeout=120)
    assert stopped.code == 0, stopped.err
    assert not any(alive(pid) for pid in pids)
    assert cli("status", env=env).out.strip() == "no server running"
    probe = subprocess.run(["pgrep", "-f", str(tiny_model)], capture_output=True, text=True)
    assert probe.stdout.strip() == "", "a process of the server is still running"


#: The AIM Engine reference's "REST API Integration" example, as written (port substituted).
REST_EXAMPLE = """
import requests

# Check endpoint health
response = requests.get("http://localhost:8000/health")
if response.status_code == 200:
    print("Endpoint is healthy")

# Make inference request
response = requests.post(
    "http://localhost:8000/v1/completions",
    json={
        "prompt": "Hello, how are you?",
        "max_tokens": 100
    }
)
print(response.json())
"""


def _run_the_rest_example(python: Path, port: int) -> None:
    code = REST_EXAMPLE.replace("localhost:8000", f"localhost:{port}")
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    healthy, answer = out.splitlines()[0], out.splitlines()[-1]
    assert healthy == "Endpoint is healthy"
    assert "'object': 'text_completion'" in answer and "'completion_tokens'" in answer


def test_compile_then_run(cli, env, tiny_model, reference_tokens, tmp_path, vllm_python) -> None:
    port = free_port()
    folder = tmp_path / "build"
    compiled = cli(
        "compile",
        str(tiny_model),
        "--target",
        "cpu",
        "--port",
        str(port),
        "--set",
        "env.VLLM_CPU_KVCACHE_SPACE=1",
        "-o",
        str(folder),
        env=env,
    )
    assert compiled.code == 0, compiled.err
    assert (folder / "launch.sh").exists() and (folder / "vllm.yaml").exists()
    ran = cli("run", str(folder), "--timeout", "400", env=env, timeout=500)
    try:
        assert ran.code == 0, ran.err + ran.out
        assert f"ready: http://localhost:{port} serves tiny-llama" in ran.out
        check_serving(f"http://localhost:{port}", "tiny-llama", reference_tokens)
        _run_the_rest_example(vllm_python, port)
        pids = server_pids(tmp_path / "state")
    finally:
        stopped = cli("stop", "--all", env=env, timeout=120)
    assert stopped.code == 0
    assert not any(alive(pid) for pid in pids)


#: Two configurations of the tiny Llama on the CPU, fp32 and bf16 (this CPU has
#: AVX512_BF16), and no default precision: what --optimize takes is left to measurement.
TWO_PRECISIONS = """\
apiVersion: aimc/v1
kind: Recipe
model:
  id: aimc-examples/tiny-two
  architecture: LlamaForCausalLM
  facts: {{parameters: 226624, layers: 2, hidden_size: 64, attention_heads: 4, kv_heads: 2,
          head_dim: 32, max_context: 2048, vocab_size: 1000}}
weights:
  fp32: {{path: {model}}}
  bf16: {{path: {model}}}
defaults: {{backend: vllm, context_length: 512}}
configurations:
  - id: cpu-fp32
    hardware: [cpu]
    precision: [fp32]
    gpus: [1]
    env: {{VLLM_CPU_KVCACHE_SPACE: '1'}}
  - id: cpu-bf16
    hardware: [cpu]
    precision: [bf16]
    gpus: [1]
    env: {{VLLM_CPU_KVCACHE_SPACE: '1'}}
"""


def test_launch_logs_bench_then_optimize_by_measurement(cli, env, tiny_model, tmp_path) -> None:
    """Each configuration is launched (its phases reported), its log tailed and benched
    (vLLM's own load generator; aimc's client once too); compile --optimize throughput then
    takes the one whose recorded output tokens/s is higher, and says it chose by
    measurement."""
    recipes = tmp_path / "recipes"
    path = recipes / "models" / "aimc-examples" / "tiny-two.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(TWO_PRECISIONS.format(model=tiny_model))
    args = ("aimc-examples/tiny-two", "--target", "cpu", "--recipes", str(recipes))
    name = "aim-tiny-two"
    load = ("--requests", "8", "--concurrency", "2", "--input-len", "32", "--output-len", "16")
    recorded: dict[str, float] = {}
    plain = cli("compile", *args, "-o", str(tmp_path / "plain"), "--format", "json", env=env)
    assert json.loads(plain.out)["data"]["configuration"] == "cpu-fp32"  # highest quality
    for config, precision in (("cpu-fp32", "fp32"), ("cpu-bf16", "bf16")):
        launched = cli(
            "launch", *args, "--precision", precision, "--port", str(free_port()),
            "--timeout", "400", "--name", name, "-o", str(tmp_path / config),
            "--format", "json", env={**env, "LOG_FORMAT": "json"}, timeout=500,
        )  # fmt: skip
        try:
            assert launched.code == 0, launched.err + launched.out
            records = [json.loads(r) for r in launched.err.splitlines() if r.startswith("{")]
            phases = [r.get("phase") for r in records]
            assert [p for p in phases if p] == [
                "starting", "loading weights", "profiling memory", "health ok", "model listed",
            ]  # fmt: skip
            tail = cli("logs", name, "--tail", "5", env=env)
            assert tail.code == 0 and len(tail.out.splitlines()) == 5, tail.err
            benched = cli("bench", name, *load, "--format", "json", env=env, timeout=300)
            assert benched.code == 0, benched.err + benched.out
            data = json.loads(benched.out)["data"]
            assert data["client"] == "vllm bench serve" and data["key"]["configuration"] == config
            f = data["figures"]
            assert f["completed"] == 8 and f["output_tokens"] == 8 * 16
            assert f["output_tokens_per_s"] > 0 and f["request_throughput"] > 0
            assert f["ttft_ms"]["p95"] >= f["ttft_ms"]["p50"] > 0
            assert f["itl_ms"]["p95"] >= f["itl_ms"]["p50"] >= 0  # tokens may come in bursts
            recorded[config] = f["output_tokens_per_s"]
            if config == "cpu-fp32":  # aimc's own client against the real server
                own = cli("bench", name, *load, "--client", "aimc", "--save",
                          str(tmp_path / "own.jsonl"), "--format", "json", env=env)  # fmt: skip
                assert own.code == 0, own.err
                g = json.loads(own.out)["data"]["figures"]
                assert g["completed"] == 8 and g["output_tokens"] == 8 * 16
                assert g["output_tokens_per_s"] > 0 and g["ttft_ms"]["p95"] >= g["ttft_ms"]["p50"]
        finally:
            stopped = cli("stop", name, env=env, timeout=120)
        assert stopped.code == 0, stopped.err
    compiled = cli(
        "compile", *args, "--optimize", "throughput", "-o", str(tmp_path / "best"),
        "--format", "json", env=env,
    )  # fmt: skip
    assert compiled.code == 0, compiled.err
    data = json.loads(compiled.out)["data"]
    best = max(recorded, key=lambda c: recorded[c])
    assert data["configuration"] == best, (recorded, data["decisions"])
    (why,) = [d for d in data["decisions"] if "chose by measurement" in d]
    assert f"{recorded[best]:.1f} output tokens/s" in why


def _post_with(url: str, body: dict, key: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_server_with_an_api_key_and_debug_logs(cli, env, tiny_model, tmp_path) -> None:
    """Failed before: with VLLM_API_KEY set, launch became ready never (exit 4 at the timeout:
    the runner asked /v1/models without the key). Now launch, status and bench send it;
    vLLM refuses a request without it; the key is in no file and no output. --debug: vLLM
    logs at DEBUG (VLLM_LOGGING_LEVEL from the plan)."""
    key = "sk-aimc-test-" + "k7" * 16
    keyed = {**env, "VLLM_API_KEY": key}
    port = free_port()
    folder = tmp_path / "build"
    outputs = []
    launched = cli(
        "launch", str(tiny_model), "--target", "cpu", "--port", str(port), "--timeout", "400",
        "--set", "env.VLLM_CPU_KVCACHE_SPACE=1", "--debug", "-o", str(folder),
        "--format", "json", env=keyed, timeout=500,
    )  # fmt: skip
    outputs.append(launched)
    try:
        assert launched.code == 0, launched.err + launched.out
        endpoint = json.loads(launched.out)["data"]["endpoint_url"]
        body = {"model": "tiny-llama", "prompt": PROMPT, "max_tokens": 4, "temperature": 0}
        status, answer = _post_with(f"{endpoint}/v1/completions", body, key)
        assert status == 200 and answer["usage"]["completion_tokens"] == 4
        assert _post_with(f"{endpoint}/v1/completions", body, None)[0] == 401
        assert _post_with(f"{endpoint}/v1/completions", body, "not-the-key")[0] == 401
        with urllib.request.urlopen(f"{endpoint}/health", timeout=10) as health:
            assert health.status == 200  # open without the key
        for who, state in ((keyed, "running"), (env, "unauthorized")):
            shown = cli("status", "--format", "json", env=who)
            outputs.append(shown)
            assert [(s["name"], s["status"]) for s in json.loads(shown.out)["data"]] == [
                ("aim-tiny-llama", state)
            ]
        load = ("--requests", "2", "--concurrency", "1", "--input-len", "16", "--output-len", "4")
        for client in ("vllm", "aimc"):
            benched = cli("bench", "aim-tiny-llama", *load, "--client", client,
                          "--format", "json", env=keyed, timeout=300)  # fmt: skip
            outputs.append(benched)
            assert benched.code == 0, benched.err + benched.out
            f = json.loads(benched.out)["data"]["figures"]
            assert f["completed"] == 2 and f["output_tokens"] == 8 and f["output_tokens_per_s"] > 0
        refused = cli("bench", "aim-tiny-llama", *load, "--client", "aimc", env=env)
        outputs.append(refused)
        assert refused.code == 6 and "HTTP 401" in refused.err
        [record] = (tmp_path / "state" / "runs").glob("*.json")
        pid = json.loads(record.read_text())["pid"]
        server_env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"VLLM_LOGGING_LEVEL=DEBUG" in server_env
        log = (folder / "server.log").read_text(errors="replace")
        assert any("DEBUG" in line.split("[", 1)[0] for line in log.splitlines())
    finally:
        stopped = cli("stop", "--all", env=env, timeout=120)
    assert stopped.code == 0
    for result in outputs:
        assert key not in result.out + result.err
    holding = [
        p
        for where in (folder, tmp_path / "state")
        for p in where.rglob("*")
        if p.is_file() and key.encode() in p.read_bytes()
    ]
    assert holding == []  # artifacts, server.log, run record, bench results
    assert "VLLM_LOGGING_LEVEL=DEBUG" in (folder / "aim.env").read_text()
