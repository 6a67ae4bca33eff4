"""Shared test fixtures: the CLI (:mod:`tests.helpers.cli`), golden files, stand-in server
labs; ``ROOT``, ``Result`` and ``run_cli`` for the tests that import them from here."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import Result, run_cli

__all__ = ["CORPUS", "GOLDEN", "ROOT", "Result", "default_stop_signals", "run_cli"]

# aimc's stderr is one JSON record a line by default (LOG_FORMAT=json); these tests read its
# messages as the text lines LOG_FORMAT=text prints, unless a test sets LOG_FORMAT itself
# (tests/test_log.py holds the default to its promise). Set before anything reads it.
os.environ["LOG_FORMAT"] = "text"
# No test reaches the internet: a command that asks the hub (import's facts, a download)
# without a stand-in hub of the test's own (HF_ENDPOINT in its env) finds nothing listening
# here. Set before huggingface_hub is imported (it reads HF_ENDPOINT once).
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CORPUS = ROOT / "tests" / "corpus"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="Rewrite golden files from the current output."
    )


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (``-n``) every test goes to the next free worker, except the test
    modules that start the real vLLM server or use the Docker engine (they carry the
    ``server`` mark): those run one after another on one worker, as they do without ``-n``.
    Each takes gigabytes and a core, and the tests share one Docker engine. (xdist's own
    ``loadgroup`` cannot do this under pytest 9.2, whose node ids it no longer rewrites.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ServerModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "server" if _server_module(nodeid.split("::", 1)[0]) else nodeid

    return ServerModulesTogether(config, log)


@functools.cache
def _server_module(path: str) -> bool:
    """Whether the test module at ``path`` (relative to the checkout) has server tests."""
    file = ROOT / path
    text = file.read_text(encoding="utf-8") if file.is_file() else ""
    return "pytest.mark.server" in text or "pytest.mark.docker" in text


def default_stop_signals() -> None:
    """``preexec_fn`` for a child the test will stop with a signal: SIGINT, SIGTERM and
    SIGHUP acted on by default, whatever this run inherited (a background job of a
    non-interactive shell starts with SIGINT ignored, ``nohup`` ignores SIGHUP, and aimc
    keeps ignored signals ignored, as ``nohup`` users expect)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _server_tmpdir(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """For the real-vLLM tests: TMPDIR of the processes they start is a folder of the test's
    own, removed afterwards (vLLM leaves its ZeroMQ sockets in the temporary folder). Short,
    under /tmp: a socket path has at most 107 bytes."""
    if request.node.get_closest_marker("server") is None:
        yield
        return
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="aimc-test-")
    monkeypatch.setenv("TMPDIR", folder)
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def reaper() -> Iterator[Any]:
    """Kills, at teardown, every process group a test started through aimc
    (:class:`tests.helpers.runs.Reaper`)."""
    from tests.helpers.runs import Reaper

    r = Reaper()
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def lab(tmp_path: Path, reaper: Any) -> Iterator[Any]:
    """A compiled folder served by the stand-in server, with its own state and cache
    (:class:`tests.helpers.runs.RunLab`); every run stopped at teardown. A module
    with a lab of another kind defines its own."""
    from tests.helpers.runs import RunLab

    lab = RunLab(tmp_path, reaper)
    try:
        yield lab
    finally:
        lab.stop_recorded()


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with ``tests/golden/NAME``; ``--update-golden`` rewrites it."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"golden file {path} missing; run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), f"output differs from {path}"

    return check
