"""``aim-engine bench``: figures from aimc's client against the stand-in server, hostile
streams bounded, the API key sent but never shown, results recorded with their
configuration, read back bounded, and preferred by ``--optimize`` (measured here, or
published in a recipe's ``measured:``).

vLLM's own load generator against the real server is in test_server.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.check.catalog import Catalog
from aimc.plan.candidates import candidates
from aimc.plan.measured import (
    READ_MAX,
    Measurement,
    append_result,
    args_hash,
    from_results,
    parse_result,
    read_results,
)
from aimc.plan.policy import resolve
from aimc.plan.request import Request
from aimc.run.bench import Sample, Workload, figures, figures_from_vllm, percentile, prompts
from tests.helpers.runs import EXAMPLES, FAKE, NAME, RunLab, cli_env, free_port, run_cli, wait_for

KEY = "sk-" + "k" * 40
CATALOG = Catalog.default()


# --- figures ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), max_size=50))
def test_percentiles_are_ordered_and_within_the_values(values: list[float]) -> None:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    assert p95 >= p50
    if values:
        assert min(values) <= p50 <= max(values) and p95 <= max(values)


def test_figures_of_samples() -> None:
    samples = [
        Sample(ttft=0.010, itl=[0.002, 0.004], output_tokens=3),
        Sample(ttft=0.030, itl=[0.002, 0.002], output_tokens=3),
        Sample(error="HTTP 500"),
    ]
    f = figures(samples, 2.0)
    assert (f.requests, f.completed, f.failed, f.output_tokens) == (3, 2, 1, 6)
    assert f.output_tokens_per_s == 3.0 and f.request_throughput == 1.0
    assert f.ttft_ms == {"p50": 20.0, "p95": 29.0}
    assert f.itl_ms["p50"] == 2.0 and f.first_error == "HTTP 500"


def test_prompts_are_reproducible() -> None:
    w = Workload(requests=4, input_len=16, seed=7)
    assert prompts(w) == prompts(w) and len(prompts(w)) == 4
    assert all(len(p.split()) == 16 for p in prompts(w))
    assert prompts(w) != prompts(Workload(requests=4, input_len=16, seed=8))


def test_figures_from_vllm_bench_serve() -> None:
    # The keys vllm 0.32's 'vllm bench serve --save-result' writes (values of a real run).
    saved = {
        "duration": 0.2226,
        "completed": 8,
        "failed": 0,
        "total_output_tokens": 128,
        "request_throughput": 35.94,
        "output_throughput": 575.09,
        "p50_ttft_ms": 10.80,
        "p95_ttft_ms": 36.92,
        "p50_itl_ms": 2.31,
        "p95_itl_ms": 4.50,
    }
    f = figures_from_vllm(saved, Workload(requests=8))
    assert (f.completed, f.output_tokens, f.output_tokens_per_s) == (8, 128, 575.09)
    assert f.ttft_ms == {"p50": 10.8, "p95": 36.92}
    with pytest.raises(ValueError):
        figures_from_vllm({**saved, "p50_ttft_ms": float("nan")}, Workload())
    with pytest.raises(ValueError):
        figures_from_vllm([], Workload())


# --- the results file ---------------------------------------------------------------------


def _result(config: str, tokens_per_s: float, ttft: float, **key: object) -> dict:
    return {
        "version": 1,
        "time": "2026-11-27T00:00:00Z",
        "key": {
            "model": "Qwen/Qwen3-8B",
            "target": "h100",
            "configuration": config,
            "precision": "bf16",
            "gpus": 1,
            "data_parallel": 1,
            "backend": "vllm",
            "backend_version": "0.32.0",
            "args_hash": "0" * 16,
            **key,
        },
        "figures": {
            "output_tokens_per_s": tokens_per_s,
            "request_throughput": 1.0,
            "ttft_ms": {"p50": ttft, "p95": ttft * 2},
            "itl_ms": {"p50": 1.0, "p95": 2.0},
        },
    }


def test_malformed_huge_and_cut_lines_are_skipped_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    append_result(path, _result("a", 10.0, 5.0))
    with path.open("ab") as f:
        f.write(b"{not json\n\xff\xfe\n[]\n" + b'{"version": 1, "x": "' + b"y" * 70000 + b'"}\n')
        f.write(json.dumps({**_result("b", 1.0, 1.0), "figures": {"ttft_ms": 3}}).encode() + b"\n")
    append_result(path, _result("c", 20.0, 4.0))
    results, problems = read_results(path)
    assert [r["key"]["configuration"] for r in results] == ["a", "c"]
    assert len(problems) == 1 and "skipped 5 malformed line(s)" in problems[0]
    assert read_results(tmp_path / "none.jsonl") == ([], [])


def test_a_huge_results_file_is_read_from_its_end_only(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    line = (json.dumps(_result("old", 1.0, 1.0)) + "\n").encode()
    with path.open("wb") as f:
        f.write(line * (READ_MAX // len(line) + 50))
    append_result(path, _result("newest", 2.0, 1.0))
    results, problems = read_results(path)
    assert results[-1]["key"]["configuration"] == "newest" and problems == []
    assert len(results) <= READ_MAX // len(line) + 1


def test_results_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    (tmp_path / "bench.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        append_result(tmp_path / "bench.jsonl", _result("a", 1.0, 1.0))
    assert target.read_text() == ""


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200), st.floats(0, 1e9, allow_nan=False, allow_infinity=False))
def test_any_result_round_trips_through_the_file(
    tmp_path_factory: pytest.TempPathFactory, config: str, tps: float
) -> None:
    path = tmp_path_factory.mktemp("r") / "bench.jsonl"
    append_result(path, _result(config, tps, 1.0))
    (back,), problems = read_results(path)
    assert problems == [] and back["key"]["configuration"] == config
    assert from_results([back], "here")[0].output_tokens_per_s == tps


def test_the_args_hash_ignores_where_it_listens_not_how_it_serves() -> None:
    model, h100 = "Qwen/Qwen3-8B", CATALOG.hardware("h100")
    base = resolve(CATALOG.recipe(model), h100, Request(model=model, gpus=1))
    moved = resolve(CATALOG.recipe(model), h100, Request(model=model, gpus=1, port=9999))
    other = resolve(CATALOG.recipe(model), h100, Request(model=model, gpus=2))
    assert base.arg("port") != moved.arg("port")
    assert args_hash(base.args) == args_hash(moved.args) != args_hash(other.args)


def test_parse_result_refuses_wrong_types() -> None:
    for bad in (
        {**_result("a", 1.0, 1.0), "version": 2},
        {**_result("a", 1.0, 1.0), "key": {"model": 1}},
        {**_result("a", 1.0, 1.0), "time": None},
    ):
        with pytest.raises(ValueError):
            parse_result(bad)


# --- selection ----------------------------------------------------------------------------


def _measure(model: str, target: str, gpus: int, tps: float, ttft: float) -> Measurement:
    (c,) = [
        c
        for c in candidates(CATALOG.recipe(model), target)
        if c.gpus == gpus and c.precision == "bf16" and c.backend == "vllm"
    ]
    key = (model, target, c.config_id, c.precision, c.gpus, c.backend)
    return Measurement(key, tps, ttft, ttft * 2, 1.0, "bench.jsonl, today")


def test_optimize_prefers_the_measured_configuration_and_says_so() -> None:
    model = "Qwen/Qwen3-8B"
    measured = (_measure(model, "mi300x", 2, 900.0, 30.0), _measure(model, "mi300x", 4, 800.0, 9.0))
    recipe, hardware = CATALOG.recipe(model), CATALOG.hardware("mi300x")
    unmeasured = resolve(recipe, hardware, Request(model=model, optimize="latency"))
    assert unmeasured.gpus == 8  # by GPU counts alone: the most GPUs
    fast = resolve(recipe, hardware, Request(model=model, optimize="latency", measured=measured))
    assert fast.gpus == 4
    (why,) = [d for d in fast.decisions if "chose by measurement" in d]
    assert "--optimize latency chose by measurement" in why and "TTFT p50 9.0 ms" in why
    assert "not measured:" in why
    most = resolve(recipe, hardware, Request(model=model, optimize="throughput", measured=measured))
    assert (most.gpus, most.data_parallel) == (2, 4)
    assert any("--optimize throughput chose by measurement" in d for d in most.decisions)
    plain = resolve(recipe, hardware, Request(model=model, measured=measured))
    assert plain.gpus == 1 and not any("measurement" in d for d in plain.decisions)
    # Figures of another backend release, or of other engine arguments, do not count.
    stale = tuple(replace(m, backend_version="0.31.0") for m in measured)
    other_args = tuple(replace(m, args_hash="0" * 16) for m in measured)
    for ignored in (stale, other_args):
        p = resolve(recipe, hardware, Request(model=model, optimize="latency", measured=ignored))
        assert p.gpus == 8 and not any("measurement" in d for d in p.decisions)
    same = tuple(replace(m, backend_version=unmeasured.backend_version) for m in measured)
    assert (
        resolve(recipe, hardware, Request(model=model, optimize="latency", measured=same)).gpus == 4
    )
    other_target = resolve(
        recipe,
        CATALOG.hardware("h100"),
        Request(model=model, optimize="latency", measured=measured),
    )
    assert not any("measurement" in d for d in other_target.decisions)


PUBLISHED = """\
apiVersion: aimc/v1
kind: Recipe
model:
  id: aimc-examples/tiny-published
  architecture: LlamaForCausalLM
  facts: {parameters: 226624, layers: 2, hidden_size: 64, attention_heads: 4, kv_heads: 2,
          head_dim: 32, max_context: 2048, vocab_size: 1000}
weights:
  bf16: {path: /models/tiny-llama}
defaults: {backend: vllm, precision: bf16, context_length: 512}
configurations:
  - id: tp1
    hardware: [h100]
    precision: [bf16]
    gpus: [1]
    measured:
      - hardware: h100
        precision: bf16
        gpus: 1
        output_tokens_per_s: 50
        ttft_ms: {p50: 12.5, p95: 20}
        source: aimc bench, 2026-11-27
  - id: tp2
    hardware: [h100]
    precision: [bf16]
    gpus: [2]
    measured:
      - hardware: h100
        precision: bf16
        gpus: 2
        output_tokens_per_s: 300
        ttft_ms: {p50: 8, p95: 11}
        itl_ms: {p50: 1.5, p95: 2.5}
        workload: {requests: 8, concurrency: 2, input_len: 32, output_len: 16}
        backend_version: 0.32.0
        source: https://example.org/tiny-bench
"""


def test_measurement_picks_the_precision_only_when_nothing_else_sets_it(tmp_path: Path) -> None:
    text = PUBLISHED.replace(
        "defaults: {backend: vllm, precision: bf16, context_length: 512}",
        "defaults: {backend: vllm, context_length: 512}",
    )
    text = text.replace(
        "  bf16: {path: /models/tiny-llama}",
        "  bf16: {path: /models/tiny-llama}\n  fp16: {path: /models/tiny-llama}",
    )
    text = text.replace(
        "  - id: tp2\n    hardware: [h100]\n    precision: [bf16]",
        "  - id: tp2\n    hardware: [h100]\n    precision: [fp16]",
    )
    text = text.replace(
        "        precision: bf16\n        gpus: 2", "        precision: fp16\n        gpus: 2"
    )
    path = tmp_path / "models" / "aimc-examples" / "tiny-published.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    recipe = Catalog.default([str(tmp_path)]).recipe("aimc-examples/tiny-published")
    h100 = CATALOG.hardware("h100")
    model = "aimc-examples/tiny-published"
    plain = resolve(recipe, h100, Request(model=model, optimize="throughput"))
    fast = resolve(recipe, h100, Request(model=model, optimize="latency"))
    assert (fast.precision, fast.configuration) == ("fp16", "tp2")
    assert any("precision fp16: its configuration measured best" in d for d in fast.decisions)
    assert plain.precision == "fp16"  # 300 tokens/s published for fp16 vs 50 for bf16
    asked = resolve(recipe, h100, Request(model=model, optimize="latency", precision="bf16"))
    assert (asked.precision, asked.configuration) == ("bf16", "tp1")
    unmeasured = resolve(recipe, h100, Request(model=model))
    assert unmeasured.precision == "bf16"  # the highest quality, without --optimize


def test_published_figures_are_validated_listed_and_preferred(tmp_path: Path) -> None:
    path = tmp_path / "recipes" / "models" / "aimc-examples" / "tiny-published.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PUBLISHED)
    recipes = tmp_path / "recipes"
    env = {"AIMC_STATE_DIR": str(tmp_path / "state"), "CACHE_DIR": str(tmp_path / "cache")}
    valid = run_cli("validate", str(recipes), env=env)
    assert valid.code == 0, valid.out + valid.err
    args = ("aimc-examples/tiny-published", "--target", "h100", "--recipes", str(recipes))
    listed = run_cli("list", "configs", *args, "--format", "json", env=env)
    rows = {r["config"]: r for r in json.loads(listed.out)["data"]}
    assert rows["tp2"]["tokens_per_s"] == 300 and rows["tp1"]["ttft_p50_ms"] == 12.5
    assert rows["tp2"]["measured"].startswith("published in ")
    table = run_cli("list", "configs", *args, env=env).out
    assert "TOKENS PER S  TTFT P50 MS" in table.splitlines()[0] and " 300" in table
    out = ("-o", str(tmp_path / "o"), "--format", "json")
    plain = json.loads(run_cli("compile", *args, *out, env=env).out)["data"]
    assert plain["configuration"] == "tp1"  # by memory alone: the smallest count that fits
    compiled = run_cli("compile", *args, "--optimize", "latency", *out, env=env)
    data = json.loads(compiled.out)["data"]
    assert data["configuration"] == "tp2", compiled.err
    assert any("chose by measurement" in d and "published in" in d for d in data["decisions"])
    # Figures measured here win over published ones for the same configuration, when they
    # were measured with its engine arguments.
    state = tmp_path / "state"
    tp1 = resolve(
        Catalog.default([str(recipes)]).recipe("aimc-examples/tiny-published"),
        CATALOG.hardware("h100"),
        Request(model="aimc-examples/tiny-published", gpus=1),
    )
    mine_key = {"model": "aimc-examples/tiny-published", "precision": "bf16"}
    append_result(state / "bench.jsonl", _result("tp1", 999.0, 1.0, **mine_key))
    other = json.loads(run_cli("compile", *args, "--optimize", "latency", *out, env=env).out)
    assert other["data"]["configuration"] == "tp2"  # measured with other arguments: ignored
    append_result(
        state / "bench.jsonl", _result("tp1", 999.0, 1.0, **mine_key, args_hash=args_hash(tp1.args))
    )
    mine = json.loads(run_cli("compile", *args, "--optimize", "latency", *out, env=env).out)
    assert mine["data"]["configuration"] == "tp1"
    assert any(str(state / "bench.jsonl") in d for d in mine["data"]["decisions"])
    # A measurement of a GPU count its configuration does not offer is a lint error.
    path.write_text(PUBLISHED.replace("        gpus: 2\n", "        gpus: 4\n", 1))
    wrong = run_cli("validate", str(path), "--format", "json", env=env)
    (diag,) = json.loads(wrong.out)["data"]["diagnostics"]
    assert (diag["rule"], diag["pointer"]) == ("lint/measured", "/configurations/1/measured/0/gpus")
    # A measurement without its source is a schema error at its line.
    path.write_text(PUBLISHED.replace("source: aimc bench", "sauce: aimc bench", 1))
    invalid = run_cli("validate", str(path), env=env)
    assert invalid.code == 2 and "tiny-published.yaml:" in invalid.out + invalid.err


# --- the command against the stand-in -------------------------------------------------------


def test_bench_a_run_records_its_configuration_and_never_shows_the_key(lab: RunLab) -> None:
    auth = lab.tmp / "auth"
    ran = lab.run("run", str(lab.folder), FAKE_MODE="ready", FAKE_AUTH=str(auth))
    assert ran.code == 0, ran.err
    args = ("--requests", "8", "--concurrency", "2", "--input-len", "16", "--output-len", "8")
    result = lab.run("bench", NAME, *args, "--client", "aimc", "--format", "json", VLLM_API_KEY=KEY)
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    f = data["figures"]
    assert (f["completed"], f["failed"], f["output_tokens"]) == (8, 0, 64)
    assert f["output_tokens_per_s"] > 0 and f["request_throughput"] > 0
    assert f["ttft_ms"]["p95"] >= f["ttft_ms"]["p50"] > 0
    assert f["itl_ms"]["p95"] >= f["itl_ms"]["p50"] > 0
    assert data["client"] == "aimc" and data["run"] == NAME
    key = data["key"]
    assert (key["model"], key["target"], key["configuration"]) == (
        "aimc-examples/tiny-llama",
        "cpu",
        "cpu-vllm",
    )
    saved = lab.tmp / "state" / "bench.jsonl"
    assert data["saved"] == str(saved)
    assert auth.read_text().splitlines() == [f"Bearer {KEY}"] * 8
    text = lab.run(
        "bench",
        NAME,
        *args,
        "--client",
        "aimc",
        "--save",
        str(lab.tmp / "repo.jsonl"),
        VLLM_API_KEY=KEY,
    )
    assert text.code == 0, text.err
    assert "load:      aimc: 8 requests, 2 concurrent" in text.out and "TTFT:" in text.out
    for where in (result.out, result.err, text.out, text.err, saved.read_text()):
        assert KEY not in where
    assert len(saved.read_text().splitlines()) == 1  # --save wrote elsewhere
    (lab.tmp / "link.jsonl").symlink_to(lab.tmp / "target")
    os.mkfifo(lab.tmp / "fifo")
    for bad in (lab.tmp / "link.jsonl", lab.tmp / "fifo"):
        refused = lab.run("bench", NAME, *args, "--client", "aimc", "--save", str(bad))
        assert refused.code == 2 and "bench results are appended to one" in refused.err
    assert len(auth.read_text().splitlines()) == 16  # nothing sent for the refused ones
    assert not (lab.tmp / "target").exists()
    assert len((lab.tmp / "repo.jsonl").read_text().splitlines()) == 1


@pytest.fixture
def stand_in() -> Iterator[Callable[..., str]]:
    """Starts the stand-in server directly (a URL target), with FAKE_STREAM as asked."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(stream: str, model: str = "m") -> str:
        port = free_port()
        env = cli_env({"FAKE_MODE": "ready", "FAKE_STREAM": stream})
        proc = subprocess.Popen(
            [sys.executable, str(FAKE), "--port", str(port), "--served-model-name", model],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _up(url) or proc.poll() is not None, 60)
        assert proc.poll() is None, f"the stand-in server exited ({proc.returncode})"
        return url

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _up(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        ("endless", "more than 96 events"),
        ("trickle", "no end of stream within 3 s"),
        ("huge", "response line or stream too large"),
        ("binary", "not UTF-8"),
        ("badjson", "bad event"),
        ("error", "HTTP 500"),
    ],
)
def test_a_hostile_server_fails_the_requests_not_the_command(
    stand_in, tmp_path: Path, stream: str, why: str
) -> None:
    url = stand_in(stream)
    env = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    # 3 s catches the trickle; the others must fail for their own reason, however slow.
    timeout = "3" if stream == "trickle" else "30"
    args = ("--requests", "3", "--concurrency", "2", "--output-len", "8", "--timeout", timeout)
    result = run_cli("bench", url, *args, "--format", "json", env=env, timeout=240)
    assert result.code == 6, result.out + result.err
    error = json.loads(result.out)["error"]
    assert error["code"] == "NETWORK_ERROR" and why in error["message"]
    assert "Traceback" not in result.err
    assert not (tmp_path / "state" / "bench.jsonl").exists()


def test_a_url_bench_asks_the_server_for_its_model(stand_in, tmp_path: Path) -> None:
    url = stand_in("")
    env = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    result = run_cli(
        "bench", url, "--requests", "2", "--output-len", "4", "--format", "json", env=env
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert (data["model"], data["key"], data["run"]) == ("m", None, None)
    assert data["client"] == "aimc" and "no local tokenizer" in data["client_reason"]


def test_a_model_id_that_would_drive_the_terminal_is_refused(stand_in, tmp_path: Path) -> None:
    url = stand_in("", "m\x1b]0;owned\x07\x1b[2J")
    env = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    result = run_cli("bench", url, "--requests", "1", env=env)
    assert result.code == 6 and "not printable" in result.err
    assert "\x1b" not in result.out + result.err


def test_a_key_echoed_in_a_bad_status_line_is_never_shown_or_saved(
    stand_in, tmp_path: Path
) -> None:
    # Every second request is answered 'LEAK Bearer <key>\r\n': http.client's BadStatusLine
    # carries the line, and it became the first error, printed by --format json and saved.
    url = stand_in("echokey")
    saved = tmp_path / "state" / "bench.jsonl"
    env = {"AIMC_STATE_DIR": str(tmp_path / "state"), "VLLM_API_KEY": KEY}
    args = ("--requests", "4", "--concurrency", "1", "--output-len", "2", "--model", "m")
    result = run_cli("bench", url, *args, "--format", "json", env=env)
    assert result.code == 0, result.out + result.err
    f = json.loads(result.out)["data"]["figures"]
    assert (f["completed"], f["failed"]) == (2, 2)
    assert f["first_error"].startswith("BadStatusLine: ") and "***" in f["first_error"]
    assert f["first_error"].isprintable()  # one line: the status line's CR LF escaped
    text = run_cli("bench", url, *args, env=env)
    assert text.code == 0 and "first error: BadStatusLine" in text.out
    for where in (result.out, result.err, text.out, text.err, saved.read_text()):
        assert KEY not in where and KEY[:20] not in where


@pytest.mark.parametrize("stream", ["badstatus", "headers"])
def test_an_answer_that_is_not_http_is_a_network_error(
    stand_in, tmp_path: Path, stream: str
) -> None:
    # http.client's protocol errors (BadStatusLine, too many headers) are no OSError: asking
    # /v1/models for the model was an internal error (exit 1).
    url = stand_in(stream)
    env = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    for model in ((), ("--model", "m")):
        result = run_cli("bench", url, "--requests", "2", *model, "--format", "json", env=env)
        assert result.code == 6, result.out + result.err
        error = json.loads(result.out)["error"]
        assert error["code"] == "NETWORK_ERROR"
        if not model:  # asking for the model: the runner's http_get found no HTTP answer
            assert error["message"].endswith("/v1/models lists no model (HTTP no answer)")
        assert "Traceback" not in result.err
    assert not (tmp_path / "state" / "bench.jsonl").exists()


def test_a_figure_too_large_for_a_float_is_a_malformed_line(tmp_path: Path) -> None:
    # A 401-digit integer passed as a number and failed float(): OverflowError, 'internal
    # error' (exit 1) from every command that reads the results.
    state = tmp_path / "state"
    path = state / "bench.jsonl"
    append_result(path, _result("a", 10**400, 1.0))
    append_result(path, _result("b", 1e300, 1.0))
    append_result(path, _result("c", 1.0, 1.0, gpus=10**400))
    append_result(path, _result("d", 10.0, 1.0))
    results, problems = read_results(path)
    assert [r["key"]["configuration"] for r in results] == ["d"]
    assert len(problems) == 1 and "skipped 3 malformed line(s)" in problems[0]
    env = {"AIMC_STATE_DIR": str(state), "CACHE_DIR": str(tmp_path / "cache")}
    model = ("aimc-examples/tiny-llama", "--target", "cpu", "--recipes", str(EXAMPLES))
    commands = [
        ("list", "configs", "--target", "cpu"),
        ("compile", *model, "--optimize", "throughput", "-o", str(tmp_path / "o")),
    ]
    for command in commands:
        result = run_cli(*command, env=env)
        assert result.code == 0, (command, result.err)
        assert "skipped 3 malformed line(s)" in result.err and "internal" not in result.err


def test_a_url_or_timeout_the_client_cannot_use_is_a_usage_error(tmp_path: Path) -> None:
    # A bad port or host killed every request's thread (a traceback each, then 'not sent',
    # exit 6); a timeout beyond what a timer takes failed each request with OverflowError.
    env = {"AIMC_STATE_DIR": str(tmp_path / "state")}
    for url in ("http://127.0.0.1:99999", "http://[::1", "http://127.0.0.1:x", "http://:80"):
        result = run_cli("bench", url, "--model", "m", "--requests", "2", env=env)
        assert result.code == 2 and "not an http(s) URL" in result.err, (url, result.err)
        assert "Traceback" not in result.err and len(result.err.splitlines()) == 2
    huge = run_cli("bench", "http://127.0.0.1:1", "--model", "m", "--timeout", "1e300", env=env)
    assert huge.code == 2 and "--timeout" in huge.err and "Traceback" not in huge.err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("output_tokens_per_s: 50", "output_tokens_per_s: 1e300"),
        ("ttft_ms: {p50: 12.5, p95: 20}", "ttft_ms: {p50: 12.5, p95: 1e300}"),
        ("input_len: 32", "input_len: 9000000000000000000"),
    ],
    ids=["throughput", "percentile", "workload"],
)
def test_a_published_figure_beyond_any_real_one_is_refused_at_its_line(
    tmp_path: Path, old: str, new: str
) -> None:
    """Failed before: the schema had no maximum, so 1e300 reached the estimates and the
    listing (the bench results file has bounds of its own)."""
    path = tmp_path / "models" / "aimc-examples" / "tiny-published.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PUBLISHED.replace(old, new, 1))
    result = run_cli("validate", str(path))
    assert result.code == 2, result.out
    line = PUBLISHED.splitlines().index(next(ln for ln in PUBLISHED.splitlines() if old in ln))
    assert f"tiny-published.yaml:{line + 1}:" in result.out and "must be at most" in result.out
