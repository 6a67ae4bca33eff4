"""The server's phase while ``run`` waits: read from vLLM 0.32's real startup lines, shown as
a status line on a terminal or as LOG_FORMAT records on stderr, never on stdout.

``tests/data/vllm-0.32-cpu-startup.log`` is the log of the tiny Llama started by aimc with
vLLM 0.32.0 on this CPU (paths replaced); the stand-in server prints it line by line.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.run.progress import PHASES, StartWatch, phase_of, printable
from tests.conftest import ROOT
from tests.helpers.runs import RunLab, cli_env

STARTUP = ROOT / "tests" / "data" / "vllm-0.32-cpu-startup.log"


def test_the_phases_of_vllms_real_cpu_startup_in_order() -> None:
    lines = STARTUP.read_text(encoding="utf-8").splitlines()
    seen = [p for p in (phase_of(line) for line in lines) if p]
    firsts = list(dict.fromkeys(seen))
    assert firsts == ["loading weights", "profiling memory"]  # eager CPU: no graphs
    watch = StartWatch()
    watch.feed(lines)
    assert watch.phase == "profiling memory"


@pytest.mark.parametrize(
    ("line", "phase"),
    [
        # vLLM 0.32's GPU messages (vllm/utils/mem_utils.py, v1/worker/gpu_model_runner.py)
        (
            "INFO [gpu_model_runner.py:5040] Starting to load model Qwen/Qwen3-8B...",
            "loading weights",
        ),
        ("INFO Model loading took 15.3 GiB memory and 8.1 seconds", "loading weights"),
        ("INFO Memory profiling takes 4.21 seconds. Total non-torch memory", "profiling memory"),
        ("INFO GPU KV cache size: 431,232 tokens", "profiling memory"),
        ("Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%", "capturing graphs"),
        ("INFO Graph capturing finished in 12 secs, took 0.51 GiB", "capturing graphs"),
        ("INFO Route: /health, Methods: GET", None),
    ],
)
def test_a_line_announces_its_phase(line: str, phase: str | None) -> None:
    assert phase_of(line) == phase


def test_a_phase_never_goes_back_and_each_is_reported_once(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("Starting to load model x\n")
    notes: list[str] = []
    watch = StartWatch(note=lambda _m, phase, _e: notes.append(phase))
    watch(1.0, log, False)
    with log.open("a") as f:
        f.write(
            "GPU KV cache size: 10 tokens\nCapturing CUDA graphs 1/4\nLoading weights took 1 s\n"
        )
    watch(2.0, log, False)
    watch(3.0, log, True)
    watch(4.0, log, True)
    watch.done(5.0)
    assert notes == list(PHASES)


def test_phases_logged_after_the_last_poll_are_reported_when_the_model_is_listed(
    tmp_path: Path,
) -> None:
    """Failed before: a server that went through its phases between two polls and was then
    listed reported only 'starting' and the last phases (CI on a loaded machine)."""
    log = tmp_path / "server.log"
    log.write_text("")
    notes: list[str] = []
    watch = StartWatch(note=lambda _m, phase, _e: notes.append(phase))
    watch(0.5, log, False)
    log.write_text("Starting to load model x\nGPU KV cache size: 10 tokens\n")
    watch.done(1.0)
    assert notes == ["starting", "loading weights", "profiling memory", "health ok", "model listed"]
    # Listed before any poll: done() reads the log it is given.
    notes.clear()
    watch = StartWatch(note=lambda _m, phase, _e: notes.append(phase))
    watch.done(0.2, log)
    assert notes == ["starting", "loading weights", "profiling memory", "health ok", "model listed"]


def test_the_status_line_is_one_masked_line_without_control_characters(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    token = "hf_" + "a" * 30
    log.write_bytes(
        b"Starting to load model\n\x1b[2J\x1b]0;owned\x07 token " + token.encode() + b" \xff\n"
    )

    class Terminal:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    term = Terminal()
    watch = StartWatch(terminal=term)  # type: ignore[arg-type]
    watch(3.0, log, False)
    watch.done(4.0)
    shown = term.text
    assert shown.startswith("\r[    3s] loading weights | ")
    assert "\x1b" not in shown and "\x07" not in shown and token not in shown and "hf_***" in shown
    assert shown.endswith("\n") and shown.count("\n") == 1
    assert "model listed" in shown


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_printable_is_one_line_of_bounded_width(text: str) -> None:
    shown = printable(text, limit=80)
    assert len(shown) <= 80
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in shown)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=20000))
def test_any_log_bytes_are_read_bounded(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    log = tmp_path_factory.mktemp("log") / "server.log"
    log.write_bytes(data)
    watch = StartWatch(note=lambda *_: None)
    watch(1.0, log, False)
    assert len(watch.last_line) <= 4096
    assert watch.phase in PHASES


def _run_env(lab: RunLab) -> dict[str, str]:
    return {
        **lab.env,
        "FAKE_MODE": "ready",
        "FAKE_LOG_LINES": str(STARTUP),
        "FAKE_LINE_DELAY": "0.01",
        "FAKE_LIST_DELAY": "0.5",
    }


def test_log_format_json_gives_each_phase_as_a_record_on_stderr(lab: RunLab) -> None:
    result = lab.run("run", str(lab.folder), "--timeout", "60", **_run_env(lab), LOG_FORMAT="json")
    assert result.code == 0, result.err
    assert result.out.startswith(f"ready: http://localhost:{lab.port} serves ")
    records = [json.loads(line) for line in result.err.splitlines()]
    phases = [r["phase"] for r in records if "phase" in r]
    # vLLM on a CPU runs eager: it captures no graphs.
    assert phases == [
        "starting",
        "loading weights",
        "profiling memory",
        "health ok",
        "model listed",
    ]
    assert all(r["logger"] == "aimc" and r["message"].startswith("server phase: ") for r in records)


def test_a_terminal_gets_one_status_line_and_stdout_nothing_extra(lab: RunLab) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimc", "run", str(lab.folder), "--timeout", "60"],
        cwd=ROOT,
        env=cli_env({**_run_env(lab), "LOG_FORMAT": "text"}),
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        start_new_session=True,
    )
    lab.reaper.groups.add(proc.pid)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=60)
    reader.join(10)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, shown
    assert out.splitlines()[0].startswith(f"ready: http://localhost:{lab.port} serves ")
    assert len(out.splitlines()) == 3  # ready, log, stop: the status line is not on stdout
    # Which phases a redraw catches depends on the polls; the first and the last are fixed.
    assert re.match(r"\r\[\s*\d+s\] (starting|loading weights)", shown), shown[:200]
    assert "] model listed | fake server: ready" in shown and shown.endswith("\n")
    assert '"logger"' not in shown  # no LOG_FORMAT record on a terminal
