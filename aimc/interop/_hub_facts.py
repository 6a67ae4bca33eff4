"""Facts of a model aimc has no recipe for and the model cache lacks, from the hub.

Takes a model id; hands on its facts read from the hub (``HF_ENDPOINT``) as
:mod:`aimc.interop._facts` reads them from the model cache, with where they came from
(the repository, the commit the hub named for ``main``, the hub), or why they cannot be
had. Read, in memory only (nothing is written, the model cache included), through
:class:`aimc.modelcache.hub_files.HubFiles` (``cache download``'s rules: the token only to
the hub, answers bounded, a commit hash in every answer):

- ``config.json`` (at most :data:`~aimc.interop._facts.MAX_CONFIG` bytes) at ``main``,
  which names the commit every later read asks for;
- ``model.safetensors.index.json`` (at most :data:`~aimc.interop._facts.MAX_INDEX`): the
  parameters from its ``total_size`` for an unquantized checkpoint of one dtype;
- else the safetensors headers of the files its ``weight_map`` names (without an index,
  ``model.safetensors``): at most :data:`MAX_SHARDS` files, the first :data:`PROBE` bytes
  of each asked as a byte range (a larger header, at most :data:`MAX_HEADER` bytes, in a
  second range), :data:`WORKERS` at a time.

Bounds in time: one model's reads end within :data:`DEADLINE` seconds of wall time
whatever the hub does (they run in threads that are left behind when it passes), and all
of one import's within :data:`BUDGET`; once the hub could not be reached or did not
answer in time, it is not asked for the import's other models. Nothing is guessed: what
cannot be read is a reason.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aimc.core.errors import AimcError
from aimc.core.safety import mask, shorten
from aimc.interop._facts import (
    INDEX,
    MAX_CONFIG,
    MAX_INDEX,
    Found,
    config_facts,
    header_parameters,
    index_parameters,
    parsed_config,
)
from aimc.modelcache.hub_files import HubFiles, hub_offline, tls_context

__all__ = ["BUDGET", "DEADLINE", "MAX_HEADER", "MAX_SHARDS", "PROBE", "Hub", "hub_for"]

#: Seconds of wall time the hub may take for one model's facts, and for one import's.
DEADLINE = 60.0
BUDGET = 300.0
#: Most safetensors files whose headers are read for one model (DeepSeek-V3: 163;
#: Llama-3.1-405B: 191).
MAX_SHARDS = 1024
#: The largest safetensors header read: huggingface_hub's
#: ``constants.SAFETENSORS_MAX_HEADER_LENGTH``.
MAX_HEADER = 25_000_000
#: Bytes first asked of each safetensors file: huggingface_hub's
#: ``HfApi.get_safetensors_metadata`` asks the same first 100,000.
PROBE = 100_000
#: Headers read at once.
WORKERS = 8
#: A file name the index may name: safe words, no ``..``, ending ``.safetensors``.
_SHARD = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\.safetensors")

T = TypeVar("T")


def hub_for(offline: bool, environ: Mapping[str, str] | None = None) -> Hub | str:
    """The hub to ask for facts, or why it is not asked: ``--offline`` (``offline``), or
    ``HF_HUB_OFFLINE=1`` (:func:`aimc.modelcache.hub_files.hub_offline`)."""
    if offline:
        return "--offline"
    return hub_offline(environ) or Hub(environ)


class Hub:
    """The hub as one import asks it for model facts (see the module)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        #: Why the hub is no longer asked: it could not be reached, or took too long.
        self.down: str | None = None
        self._spent = 0.0
        self._tls: Any = None  # one SSL context for every model's client

    def facts(self, repo: str) -> Found | str:
        """``repo``'s facts from the hub, or why there are none."""
        if self.down is not None:
            return f"not asked, after {self.down}"
        if self._spent >= BUDGET:
            return f"not asked: the {BUDGET:.0f} s one import may wait for the hub are spent"
        start = time.monotonic()
        limit = min(DEADLINE, BUDGET - self._spent)
        if self._tls is None:
            self._tls = tls_context()
        files = HubFiles(repo, start + limit, self._environ, self._tls)
        try:
            found = _bounded(lambda: _from_hub(repo, files), limit + 1)
        finally:
            self._spent += time.monotonic() - start
            files.close()
        if found is None:
            found = f"{files.shown} did not answer for {repo} within {limit:.0f} s"
            files.unreachable = True
        if files.unreachable and isinstance(found, str):
            self.down = found
        return found


def _bounded(work: Callable[[], Found | str], seconds: float) -> Found | str | None:
    """``work()`` in a thread of its own, or None when it is not done in ``seconds`` (the
    thread is left behind; its reads stop at their deadline). What it raises is a reason."""
    box: list[Found | str] = []

    def run() -> None:
        box.append(_reason_of(work))

    thread = threading.Thread(target=run, name="aimc-hub-facts", daemon=True)
    thread.start()
    thread.join(seconds)
    return box[0] if box else None


def _reason_of(work: Callable[[], T]) -> T | str:
    """``work()``, or what it raised as a reason (aimc's message; another exception's type
    and first line, masked: never a traceback)."""
    try:
        return work()
    except AimcError as exc:
        return exc.message
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [""])[0]
        return shorten(mask(f"{type(exc).__name__}: {text}"))


def _from_hub(repo: str, files: HubFiles) -> Found | str:
    """The facts of ``repo`` read through ``files``, or the reason there are none.

    Raises:
        AimcError: The hub cannot be asked, or refused (see :meth:`HubFiles.read`).
    """
    raw = files.read("config.json", MAX_CONFIG)
    if raw is None:
        return f"{files.shown} has no config.json of {repo}"
    where = f"config.json of {repo} at revision {files.commit} (the hub, {files.shown})"
    config = parsed_config(raw, where)
    if isinstance(config, str):
        return config
    found = config_facts(config, where)
    if isinstance(found, str):
        return found
    facts, architecture = found
    index = files.read(INDEX, MAX_INDEX)
    parameters = index_parameters(index, config)
    if parameters is None:
        shards = _shards(index)
        counted = _headers(files, shards) if isinstance(shards, list) else shards
        if isinstance(counted, str):
            return f"{where} gives no parameter count ({counted}; no index total_size)"
        parameters = counted
    facts["parameters"] = parameters
    return facts, architecture, where


def _shards(index: bytes | None) -> list[str] | str:
    """The safetensors files whose headers give the parameters: those the index's
    ``weight_map`` names, else ``model.safetensors``; why not when the index names none,
    too many, or a name that is not a file of the repository's folder."""
    if index is None:
        return ["model.safetensors"]
    try:
        weight_map = json.loads(index)["weight_map"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return f"its {INDEX} has no weight_map"
    if not isinstance(weight_map, dict) or not weight_map:
        return f"its {INDEX} has no weight_map"
    names = sorted({str(v) for v in weight_map.values()})
    if len(names) > MAX_SHARDS:
        return f"its {INDEX} names {len(names)} files (aimc reads at most {MAX_SHARDS} headers)"
    for name in names:
        if not _SHARD.fullmatch(name) or ".." in name.split("/"):
            return f"its {INDEX} names a file that is not a safetensors file of it"
    return names


def _headers(files: HubFiles, names: Sequence[str]) -> int | str:
    """The parameters in the safetensors headers of ``names``, or why they cannot be read.

    Raises:
        AimcError: A read failed (the first file's in name order), or time ran out.
    """
    counts = _parallel(lambda name: _header(files, name), names, files)
    problems = [c for c in counts if isinstance(c, str)]
    if problems:
        return problems[0]
    total = sum(c for c in counts if isinstance(c, int))
    return total if 0 < total < 10**15 else "its safetensors headers hold no parameters"


def _header(files: HubFiles, name: str) -> int | str:
    """The parameters in the header of the safetensors file ``name``, or why not."""
    head = files.read(name, PROBE, first=True)
    if head is None:
        return f"{name} is not on the hub"
    if len(head) < 8:
        return f"{name} is not a safetensors file"
    (length,) = struct.unpack("<Q", head[:8])
    if not 0 < length <= MAX_HEADER:
        return f"{name}'s header is {length} bytes long (aimc reads at most {MAX_HEADER})"
    if len(head) < 8 + length:
        head = files.read(name, 8 + length, first=True) or b""
        if len(head) < 8 + length:
            return f"{name}'s header is cut short"
    try:
        return header_parameters(json.loads(head[8 : 8 + length]))
    except (ValueError, RecursionError) as exc:
        return f"{name}'s header is not a safetensors header ({shorten(str(exc), 80)})"


def _parallel(work: Callable[[str], T], names: Sequence[str], files: HubFiles) -> list[T]:
    """``work(name)`` for each of ``names``, :data:`WORKERS` at a time in threads that are
    left behind at ``files``' deadline; the results in ``names``' order.

    Raises:
        AimcError: What ``work`` raised for the first name in order; the deadline passed.
    """
    results: dict[int, T] = {}
    errors: dict[int, BaseException] = {}
    todo = iter(range(len(names)))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                i = next(todo, None)
                if i is None or errors:
                    return
            try:
                results[i] = work(names[i])
            except Exception as exc:
                with lock:
                    errors[i] = exc

    threads = [
        threading.Thread(target=run, name="aimc-hub-headers", daemon=True)
        for _ in range(min(WORKERS, len(names)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(files.deadline - time.monotonic(), 0) + 0.5)
    if errors:
        raise errors[min(errors)]
    if len(results) < len(names):
        raise files.late()
    return [results[i] for i in range(len(names))]
