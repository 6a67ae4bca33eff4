"""The command line as the tests run it: ``aim-engine ARGS`` gives one :class:`Result`
(exit status, stdout, stderr), in this process or in a subprocess, with the same meaning.

A *pure* command (:data:`IN_PROCESS`: it starts no server, sends no signal, needs no
terminal and no hub) runs in this process through :func:`aimc.cli.main`, what the
console script's entry runs (:mod:`aimc.__main__`, with the garbage collector paused for
start-up: this process keeps its own), as ``python -m aimc`` would run it:

- the environment is exactly the one the subprocess would get (this process's, without
  ``AIMC_*``/``AIM_*``, plus the test's ``env``), set as ``os.environ`` for the run and
  put back after; ``cwd`` the working folder; stdin empty and not a terminal (the
  subprocess gets ``/dev/null``); stdout and stderr captured apart, as the bytes the
  process would write (UTF-8; stderr with ``backslashreplace``), then read back as
  ``subprocess.run(text=True)`` reads a pipe (universal newlines);
- the exit status is what the process would return: ``SystemExit``'s code (``None`` 0, an
  int modulo 256, anything else printed on stderr and 1); an exception that escapes
  ``main`` (``--debug``) is printed as a traceback on stderr and is status 1, so "no
  traceback" assertions keep their teeth;
- Python's default warning filters, shown on stderr, as in a fresh interpreter;
- aimc's process-wide state starts fresh and is put back after: the settings' "warned
  once per process" set, vocabularies read from an installed backend
  (``validate --vllm-python``), the vocabulary cache. A run that leaves ``os.environ``
  or a signal handler changed fails (the harness would hide it from the next test).

The standard streams are the process's, not a thread's: a thread of the test (a stand-in
server) that wrote on them during a run would write into the run's output; the stand-ins
are quiet.

Everything else runs ``python -m aimc`` in a subprocess: a command of
:data:`PROCESS_COMMANDS` (servers, signals, the hub), an environment that sets
``PYTHON*`` (read by the interpreter at start: stand-in modules on ``PYTHONPATH``), and
any call with ``process=True``, which a test passes where the real process is the point
(a ``timeout`` that must kill a hang, exit behaviour, import cost). ``session=True``
starts it in a session of its own (a ``killpg(0)`` stays inside it).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import locale
import os
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aimc.cli import main
from aimc.core import settings

__all__ = [
    "IN_PROCESS",
    "PROCESS_COMMANDS",
    "ROOT",
    "Result",
    "base_env",
    "in_process",
    "run",
    "run_cli",
    "run_in_process",
    "run_process",
]

ROOT = Path(__file__).resolve().parent.parent.parent

#: ``aimc.backends.vocabulary``, the module (the package's ``vocabulary`` is its function).
_VOCABULARIES = importlib.import_module("aimc.backends.vocabulary")
#: Commands run in this process (``cache`` but its ``download``; no command: --help,
#: --version, a usage error). ``status`` reads run records and asks servers' health over
#: HTTP: it starts nothing and signals nothing.
IN_PROCESS = frozenset(
    {"compile", "validate", "show-config", "list", "import", "debug", "cache", "status"}
)
#: Commands that always run in a subprocess: they start or signal servers, wait for a
#: signal (``logs --follow``), or reach the hub (huggingface_hub reads its environment
#: once, at import).
PROCESS_COMMANDS = frozenset({"launch", "run", "stop", "logs", "bench"})
#: Subcommands of an in-process command that run in a subprocess.
_PROCESS_SUBCOMMANDS = {"cache": frozenset({"download"})}
#: Signals whose handlers a run must leave as it found them.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Python's default warning filters (``python -W`` none, no ``PYTHONWARNINGS``), last first.
_DEFAULT_FILTERS = (
    ("ignore", ResourceWarning),
    ("ignore", ImportWarning),
    ("ignore", PendingDeprecationWarning),
    ("ignore", DeprecationWarning),
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def base_env(env: Mapping[str, str] | None = None, strip: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment without ``AIMC_*``, ``AIM_*`` (and the prefixes in
    ``strip``), plus ``env``: what a command of a test runs with."""
    prefixes = ("AIMC_", "AIM_", *strip)
    full = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    full.update(env or {})
    return full


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    process: bool = False,
    session: bool = False,
) -> Result:
    """``aim-engine ARGS`` with :func:`base_env` plus ``env``, in ``cwd``: in this process
    when it can be (:func:`in_process`), else ``python -m aimc`` (``timeout``: seconds
    before the subprocess is killed and the test fails)."""
    return run(args, base_env(env), cwd=cwd, timeout=timeout, process=process, session=session)


def run(
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    cwd: Path = ROOT,
    timeout: float = 60,
    process: bool = False,
    session: bool = False,
) -> Result:
    """:func:`run_cli` with the whole environment given (nothing stripped or added)."""
    if not process and in_process(args, environ):
        return run_in_process(args, environ, cwd=cwd)
    return run_process(args, environ, cwd=cwd, timeout=timeout, session=session)


def in_process(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether ``aim-engine ARGS`` may run in this process: a pure command, and no
    ``PYTHON*`` variable other than this interpreter started with (only a start reads
    them)."""
    names = {n for n in (*environ, *os.environ) if n.startswith("PYTHON")}
    if any(environ.get(name) != os.environ.get(name) for name in names):
        return False
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return True  # --help, --version, or a usage error
    command = words[0]
    if command in PROCESS_COMMANDS:
        return False
    sub = words[1] if len(words) > 1 else ""
    return sub not in _PROCESS_SUBCOMMANDS.get(command, ())


def run_process(
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    cwd: Path = ROOT,
    timeout: float = 60,
    session: bool = False,
) -> Result:
    """``python -m aimc ARGS`` in a subprocess, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "aimc", *args],
        cwd=cwd,
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=session,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_in_process(args: Sequence[str], environ: Mapping[str, str], *, cwd: Path = ROOT) -> Result:
    """``aim-engine ARGS`` through :func:`aimc.cli.main` in this process, as the process
    would run it (see the module's docstring)."""
    out, err = _Captured("strict"), _Captured("backslashreplace")
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    with _fresh_aimc(), _process_like(environ, cwd, out, err) as changed:
        code = _exit_status(list(args), err.stream)
    moved = [sig.name for sig in _SIGNALS if signal.getsignal(sig) != handlers[sig]]
    for sig in _SIGNALS:
        signal.signal(sig, handlers[sig])
    assert not changed, f"aim-engine {' '.join(args)} changed os.environ: {sorted(changed)}"
    assert not moved, f"aim-engine {' '.join(args)} left signal handlers changed: {moved}"
    return Result(code, out.text(), err.text())


def _exit_status(args: list[str], stderr: TextIO) -> int:
    """Run ``main(args)``; the status the interpreter would exit with. A ``BaseException``
    that is not an ``Exception`` (Ctrl-C of the test run, pytest's outcomes) goes on."""
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code % 256
        print(code, file=stderr)
        return 1
    except Exception as exc:  # what the interpreter prints, then exits 1
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
        return 1
    return 0


class _Captured:
    """A stream as a pipe would take it: bytes in the encoding Python gives a pipe, read
    back as ``subprocess.run(text=True)`` reads it."""

    def __init__(self, errors: str) -> None:
        self.raw = io.BytesIO()
        self.stream = io.TextIOWrapper(self.raw, encoding="utf-8", errors=errors)

    def text(self) -> str:
        self.stream.flush()
        data = self.raw.getvalue().decode(locale.getpreferredencoding(False))
        return data.replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _process_like(
    environ: Mapping[str, str], cwd: Path, out: _Captured, err: _Captured
) -> Iterator[set[str]]:
    """For the block: ``os.environ``, the working folder, the standard streams and the
    warning filters of a fresh process; yields the names of variables the block left
    changed (filled in at its end), and puts everything back."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    changed: set[str] = set()
    os.environ.clear()
    os.environ.update(environ)
    try:
        os.chdir(cwd)
        sys.stdin = sys.__stdin__ = stdin
        sys.stdout = sys.__stdout__ = out.stream
        sys.stderr = sys.__stderr__ = err.stream
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category in reversed(_DEFAULT_FILTERS):
                warnings.filterwarnings(action, category=category)
            warnings.showwarning = _show_warning
            yield changed
    finally:
        now = dict(os.environ)
        changed.update(k for k in now.keys() | environ.keys() if now.get(k) != environ.get(k))
        sys.stdin, sys.stdout, sys.stderr = saved[:3]
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = saved[3:]
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Python's own ``showwarning``, on the stderr of the run."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _fresh_aimc() -> Iterator[None]:
    """aimc's process-wide state as a new process has it, for the block; the caller's
    state back after."""
    warned, installed = set(settings._warned), dict(_VOCABULARIES._INSTALLED)
    settings._warned.clear()
    _VOCABULARIES._INSTALLED.clear()
    _VOCABULARIES.vocabulary.cache_clear()
    try:
        yield
    finally:
        settings._warned.clear()
        settings._warned.update(warned)
        _VOCABULARIES._INSTALLED.clear()
        _VOCABULARIES._INSTALLED.update(installed)
        _VOCABULARIES.vocabulary.cache_clear()
