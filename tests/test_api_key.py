"""API keys end to end, and the debug level reaching the server, with stand-ins (issue 20).

The stand-in server requires the key as vLLM 0.32 does (``VLLM_API_KEY`` in its own
environment: ``/v1/*`` answers 401 without ``Authorization: Bearer <key>``, ``/health`` is
open); the stand-in ``docker run`` (tests/fakes/fake_docker.py) gives its "container" only
the variables Docker would. Before issue 20 a server started with a key never became ready
(the runner polled ``/v1/models`` without it, exit 4 at the timeout), ``status`` called it
"starting" forever, and ``--debug`` set ``VLLM_LOGGING_LEVEL`` in docker's environment, not
the container's. The real vLLM server with a key is in test_server.py.
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.core.errors import ConfigError
from aimc.run.probe import api_key, http_get
from tests.helpers.runs import EXAMPLES, FAKE, NAME, RunLab, environ_of, wait_for

KEY = "sk-" + "a1" * 20
FAKE_DOCKER = FAKE.parent / "fake_docker.py"
IMAGE = ("--set", "image=vllm/vllm-openai:v0.32.0")
REFUSED = (
    "VLLM_API_KEY cannot be sent as an HTTP bearer token: it must be printable ASCII, at "
    "most 4096 characters, without a space at either end",
    "set VLLM_API_KEY to the key without surrounding spaces or other characters (the "
    "server could never match it)",
)


def _status(lab: RunLab, **env: str) -> list[tuple[str, str]]:
    shown = lab.run("status", "--format", "json", **env)
    assert shown.code == 0, shown.err
    return [(row["name"], row["status"]) for row in json.loads(shown.out)["data"]]


def _code_of(url: str, key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _files_holding(folder: Path, secret: str) -> list[Path]:
    return [
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()
    ]


def _docker(lab: RunLab) -> dict[str, str]:
    """A stand-in ``docker``: ``run`` is fake_docker.py (only Docker's environment)."""
    bindir = lab.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    docker = bindir / "docker"
    docker.write_text(
        "#!/bin/bash\n"
        'case "$1" in\n  version) echo 28.2.2;;\n'
        "  rm) exit 0;;\n"
        f'  run) exec {sys.executable} {FAKE_DOCKER} "$@";;\nesac\n'
    )
    docker.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


# --- a server started with a key ----------------------------------------------------------


def test_a_server_started_with_a_key_is_ready_running_and_benched(lab: RunLab) -> None:
    outputs = []
    ran = lab.run(
        "run", str(lab.folder), "--timeout", "120", "--format", "json",
        FAKE_MODE="ready", VLLM_API_KEY=KEY,
    )  # fmt: skip
    outputs.append(ran)
    assert ran.code == 0, ran.err + ran.out
    url = json.loads(ran.out)["data"]["endpoint_url"]
    # The server requires the key: without it /v1 is refused, /health is open.
    assert _code_of(f"{url}/v1/models") == 401
    assert _code_of(f"{url}/v1/models", KEY) == 200
    assert _code_of(f"{url}/health") == 200

    assert _status(lab, VLLM_API_KEY=KEY) == [(NAME, "running")]
    for env in ({}, {"VLLM_API_KEY": "not-the-key-789"}):
        assert _status(lab, **env) == [(NAME, "unauthorized")]
        table = lab.run("status", **env)
        outputs.append(table)
        assert table.code == 0 and "unauthorized" in table.out
        assert "set VLLM_API_KEY to the API key it was started with" in table.err

    load = ("--requests", "2", "--concurrency", "1", "--input-len", "8", "--output-len", "4")
    benched = lab.run("bench", NAME, *load, "--client", "aimc", "--format", "json",
                      VLLM_API_KEY=KEY)  # fmt: skip
    by_url = lab.run("bench", url, *load, "--format", "json", VLLM_API_KEY=KEY)
    refused = lab.run("bench", NAME, *load, "--client", "aimc")
    asked = lab.run("bench", url, *load)
    outputs += [benched, by_url, refused, asked]
    for done in (benched, by_url):
        assert done.code == 0, done.err
        data = json.loads(done.out)["data"]
        assert data["figures"]["completed"] == 2 and data["model"] == "aimc-examples/tiny-llama"
    # Without the key: every completion is refused, and asking /v1/models for the model too.
    assert refused.code == 6 and "completed: HTTP 401" in refused.err
    assert asked.code == 6 and "refuses the request as unauthorized (HTTP 401)" in asked.err
    for failed in (refused, asked):
        assert "hint: set VLLM_API_KEY to the server's API key" in failed.err

    for result in outputs:
        assert KEY not in result.out + result.err
    assert _files_holding(lab.tmp, KEY) == []  # artifacts, log, run record, bench results
    assert lab.run("stop", NAME).code == 0


def test_a_server_that_wants_another_key_fails_at_once_saying_why(lab: RunLab) -> None:
    # FAKE_API_KEY: the stand-in wants a key of its own (as vLLM started with --api-key).
    for env, why in (({"VLLM_API_KEY": KEY}, "is not that key"), ({}, "is not set")):
        result = lab.run(
            "run", str(lab.folder), "--timeout", "600",
            FAKE_MODE="ready", FAKE_API_KEY="the-servers-own-key", **env,
        )  # fmt: skip
        assert result.code == 4, result.err + result.out
        assert (
            "error: the server answers but refuses aimc's requests to /v1/models as "
            f"unauthorized: it requires an API key, and VLLM_API_KEY {why}\n"
            "hint: start it with the key in VLLM_API_KEY (aimc passes it through and sends it "
            "as the bearer token); never in its arguments\n"
        ) in result.err
        assert KEY not in result.out + result.err
        assert lab.run("status").out.strip() == "no server running"


@pytest.mark.parametrize("bad", [" lead", "trail ", "new\nline", "tab\tin", "caf\u00e9-key"])
def test_a_key_no_header_can_carry_is_refused_before_anything_starts(lab: RunLab, bad: str) -> None:
    for words in (("run", str(lab.folder)), ("status",), ("bench", NAME)):
        result = lab.run(*words, "--format", "json", FAKE_MODE="ready", VLLM_API_KEY=bad)
        assert result.code == 2, result.err + result.out
        error = json.loads(result.out)["error"]
        assert (error["message"], error["hint"]) == REFUSED and "details" not in error
        assert bad.strip() not in result.out + result.err
    assert not lab.pids.exists()  # no server was started


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers 200 with the Authorization header it received (or '-')."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = self.headers.get("Authorization", "-").encode("latin-1")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/models"
    server.shutdown()
    server.server_close()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_key_is_sent_exactly_or_refused_without_echo(echo_url: str, text: str) -> None:
    """A hostile VLLM_API_KEY: either the server receives exactly 'Bearer <key>' (so vLLM,
    which compares the text after 'Bearer ', can match it), or aimc refuses it with a
    message that never holds it."""
    env = {"VLLM_API_KEY": text}
    try:
        key = api_key(env)
    except ConfigError as exc:
        assert (exc.message, exc.hint) == REFUSED  # the same words whatever the key
        return
    if not text:
        assert key is None and http_get(echo_url, 5, key) == (200, b"-")
        return
    assert key == text
    assert http_get(echo_url, 5, key) == (200, f"Bearer {text}".encode("latin-1"))


def test_the_python_api_launches_a_server_that_wants_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aim_launcher import AIMEngine
    from aimc.run.runs import load_records, stop_record
    from tests.helpers.runs import free_port

    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    for name, value in {
        "AIM_PYTHON": str(python), "AIMC_STATE_DIR": str(tmp_path / "state"),
        "CACHE_DIR": str(tmp_path / "cache"), "FAKE_MODE": "ready", "VLLM_API_KEY": KEY,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    try:
        result = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES]).launch_model(
            "aimc-examples/tiny-llama", port=free_port(), timeout=120
        )
        assert result["success"] is True, result
        url = result["data"]["endpoint_url"]
        assert _code_of(f"{url}/v1/models") == 401 and _code_of(f"{url}/v1/models", KEY) == 200
        assert KEY not in json.dumps(result)
    finally:
        for record in load_records():
            stop_record(record)
    assert _files_holding(tmp_path, KEY) == []


# --- the docker launcher ------------------------------------------------------------------


@pytest.fixture
def docker_folder(lab: RunLab) -> Path:
    folder = lab.tmp / "docker-build"
    result = lab.run(
        "compile", "aimc-examples/tiny-llama", "--target", "cpu", "--recipes", str(EXAMPLES),
        "--port", str(lab.port), "--launcher", "docker", *IMAGE, "-o", str(folder),
    )  # fmt: skip
    assert result.code == 0, result.err
    return folder


def test_a_container_gets_the_key_by_name_and_the_runner_sends_it(
    lab: RunLab, docker_folder: Path
) -> None:
    env = _docker(lab)
    ran = lab.run("run", str(docker_folder), "--timeout", "120", FAKE_MODE="ready",
                  VLLM_API_KEY=KEY, **env)  # fmt: skip
    assert ran.code == 0, ran.err + ran.out
    assert environ_of(lab.server_pid())["VLLM_API_KEY"] == KEY  # through '-e VLLM_API_KEY'
    assert _status(lab, VLLM_API_KEY=KEY, **env) == [(NAME, "running")]
    assert KEY not in ran.out + ran.err and _files_holding(lab.tmp, KEY) == []
    assert lab.run("stop", NAME, **env).code == 0


# --- debug reaches the server -------------------------------------------------------------


def _launch(lab: RunLab, *extra: str, **env: str) -> Path:
    folder = lab.tmp / "launched"
    result = lab.run(*lab.launch_args(*extra, "-o", str(folder)), FAKE_MODE="ready", **env)
    assert result.code == 0, result.err + result.out
    return folder


@pytest.mark.parametrize("launcher", ["process", "docker"])
@pytest.mark.parametrize("how", ["launch --debug", "AIM_DEBUG=1", "none"])
def test_debug_reaches_the_server_under_either_launcher(
    lab: RunLab, launcher: str, how: str
) -> None:
    env = _docker(lab) if launcher == "docker" else {}
    extra = ["--launcher", launcher, *(IMAGE if launcher == "docker" else ())]
    if how == "launch --debug":
        extra.append("--debug")
    elif how == "AIM_DEBUG=1":
        env["AIM_DEBUG"] = "1"
    folder = _launch(lab, *extra, **env)
    server_env = environ_of(lab.server_pid())
    aim_env = (folder / "aim.env").read_text()
    if how == "none":
        assert "VLLM_LOGGING_LEVEL" not in server_env and "VLLM_LOGGING_LEVEL" not in aim_env
    else:
        assert server_env["VLLM_LOGGING_LEVEL"] == "DEBUG"
        assert "VLLM_LOGGING_LEVEL=DEBUG" in aim_env.splitlines()
    if launcher == "docker":
        # The stand-in docker ran with the caller's environment; its container did not.
        assert "CACHE_DIR" not in server_env and "AIM_PYTHON" not in server_env
    assert lab.run("stop", NAME, **env).code == 0


def test_a_debug_launch_writes_a_reproduce_command_that_gives_the_same_files(
    lab: RunLab,
) -> None:
    folder = _launch(lab, "--launcher", "docker", *IMAGE, "--debug", **_docker(lab))
    script = (folder / "launch.sh").read_text()
    assert "export VLLM_LOGGING_LEVEL=DEBUG\n" in script
    assert "  -e VLLM_LOGGING_LEVEL \\\n" in script  # into the container, by name
    compose = (folder / "compose.yaml").read_text()
    assert "env_file:" in compose and "aim.env" in compose  # compose reads aim.env
    line = json.loads((folder / "manifest.json").read_text())["inputs"]["command"]
    assert "--set env.VLLM_LOGGING_LEVEL=DEBUG" in line and "--debug" not in line
    assert lab.run("stop", NAME, **_docker(lab)).code == 0
    again = lab.tmp / "again"
    words = shlex.split(line)[1:]  # without "aim-engine"
    compiled = lab.run(*words, "--recipes", str(EXAMPLES), "-o", str(again))
    assert compiled.code == 0, compiled.err
    written = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "server.log"}
    assert written == {p.name: p.read_bytes() for p in again.iterdir()}


def test_debug_gives_sglang_its_log_level_flag(tmp_path: Path) -> None:
    """SGLang 0.5.19 has no logging variable: its --log-level flag (server_args.py)."""
    from aimc.app.pipeline import make_plan
    from aimc.check.catalog import Catalog
    from aimc.emit.emitters import compile_plan
    from aimc.plan.request import Request

    catalog = Catalog.default()
    for debug in (False, True):
        request = Request(model="Qwen/Qwen3-8B", gpus=1, backend="sglang", debug=debug)
        plan = make_plan(catalog, request, "h100", tmp_path)
        script = compile_plan(plan, request, "h100").files["launch.sh"]
        assert ("--log-level debug" in script) is debug
        assert "VLLM_LOGGING_LEVEL" not in script


def test_an_explicit_set_wins_over_debug(lab: RunLab) -> None:
    folder = _launch(lab, "--debug", "--set", "env.VLLM_LOGGING_LEVEL=WARNING")
    assert "VLLM_LOGGING_LEVEL=WARNING" in (folder / "aim.env").read_text().splitlines()
    assert environ_of(lab.server_pid())["VLLM_LOGGING_LEVEL"] == "WARNING"
    assert wait_for(lambda: lab.run("stop", NAME).code == 0)
