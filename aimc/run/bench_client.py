"""aimc's own load generator: streaming completions from ``C`` threads, each timed.

Takes an endpoint URL, a model name and a :class:`~aimc.run.bench.Workload`, and hands on one
:class:`~aimc.run.bench.Sample` per request (time to first token, the gaps between tokens, the
tokens counted, or why it failed) and the wall time; :func:`aimc.run.bench.figures` makes the
figures of them. Standard library only: streaming ``/v1/completions`` with the workload's
seeded prompts, ``max_tokens`` and ``min_tokens`` its output length, ``ignore_eos``.

The server is treated as hostile: every response line is read with a bound
(:data:`LINE_MAX`), a stream ends after :attr:`~aimc.run.bench.Workload.max_events` events,
:data:`STREAM_MAX` bytes or the request timeout (a watchdog shuts a socket that trickles
bytes), and bytes that are not UTF-8, events that are not JSON and HTTP errors fail that
request (its reason masked and cut: a server may echo the ``Authorization`` header), never
the command.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

from aimc.core.diagnostics import one_line
from aimc.core.errors import ConfigError
from aimc.core.safety import mask
from aimc.run.bench import Sample, Workload, prompts

__all__ = ["LINE_MAX", "STREAM_MAX", "check_url", "run_client"]

#: Longest response line read (bytes).
LINE_MAX = 1 << 20
#: Most bytes one streamed response may send.
STREAM_MAX = 16 << 20


def check_url(url: str) -> None:
    """Refuse, before any request, an endpoint URL the client cannot connect to: each
    request's thread would otherwise die of it (a traceback per thread, then 'not sent').

    Raises:
        ConfigError: Not http(s), no host, a bad port (``:99999``) or a broken ``[::1``.
    """
    _connection(url, 1)


def _connection(url: str, timeout: float) -> tuple[Any, str]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # checked here: out of range or not a number is a ValueError
    except ValueError:
        parts, port = urllib.parse.urlsplit(""), None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"not an http(s) URL with a host and a port of 0-65535: {url[:200]!r}",
            hint="e.g. http://127.0.0.1:8000",
        )
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, port, timeout=timeout)
    return conn, parts.path.rstrip("/")


def _one(
    url: str, body: bytes, headers: dict[str, str], workload: Workload, timeout: float
) -> Sample:
    """Send one streaming completion and time its tokens."""
    sample = Sample()
    conn, base = _connection(url, timeout)
    deadline = time.monotonic() + timeout
    # A server that trickles bytes resets the socket timeout on every read: at the
    # deadline the connection is shut, which ends any read in progress.
    watchdog = threading.Timer(timeout, _shut, (None,))
    watchdog.daemon = True
    try:
        sent = time.monotonic()
        conn.connect()
        watchdog.args = (conn.sock,)  # the response reads it after the connection lets go
        watchdog.start()
        conn.request("POST", base + "/v1/completions", body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            sample.error = f"HTTP {response.status}"
            return sample
        if not _read_stream(response, sample, workload, sent, deadline, timeout):
            return sample  # stopped early: its reason stands
    except UnicodeDecodeError:
        sample.error = "the response is not UTF-8"
    except (ValueError, RecursionError) as exc:
        sample.error = _reason(f"bad event: {exc}", headers)
    except Exception as exc:  # OSError, http.client's protocol errors (not OSError)
        sample.error = _reason(f"{type(exc).__name__}: {exc}", headers)
    finally:
        watchdog.cancel()
        conn.close()
    if sample.error is not None and time.monotonic() > deadline:
        sample.error = f"no end of stream within {timeout:g} s"
    return sample


def _read_stream(
    response: Any, sample: Sample, workload: Workload, sent: float, deadline: float, timeout: float
) -> bool:
    """Read the event stream into ``sample`` up to ``[DONE]`` (True), or until it must
    stop early with its reason in ``sample.error`` (False): past ``deadline``, ended, too
    large, too many events.

    Raises:
        UnicodeDecodeError: A line is not UTF-8.
        ValueError, RecursionError: An event is not a JSON object (:func:`_event`).
        Exception: The connection failed (OSError, http.client's protocol errors).
    """
    last: float | None = None
    received = events = chunks = 0
    usage_tokens: int | None = None
    while True:
        if time.monotonic() > deadline:
            sample.error = f"no end of stream within {timeout:g} s"
            return False
        raw = response.readline(LINE_MAX + 1)
        if not raw:
            sample.error = "the stream ended without [DONE]"
            return False
        received += len(raw)
        if len(raw) > LINE_MAX or received > STREAM_MAX:
            sample.error = "response line or stream too large"
            return False
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        events += 1
        if events > workload.max_events:
            sample.error = f"more than {workload.max_events} events"
            return False
        usage, stepped = _event(payload)
        usage_tokens = usage if usage is not None else usage_tokens
        if stepped:
            now = time.monotonic()
            if last is None:
                sample.ttft = now - sent
            else:
                sample.itl.append(now - last)
            last = now
            chunks += 1
    sample.output_tokens = usage_tokens if usage_tokens is not None else chunks
    if sample.ttft is None:
        sample.error = "no token was streamed"
    return True


def _event(payload: str) -> tuple[int | None, bool]:
    """One stream event: its usage's ``completion_tokens`` (None when it has none), and
    whether it is a decoding step.

    Raises:
        ValueError, RecursionError: It is not a JSON object, or its choices not a list.
    """
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise ValueError("an event is not a JSON object")
    usage = event.get("usage")
    tokens = None
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        tokens = usage["completion_tokens"]
    choices = event.get("choices") or []
    if not isinstance(choices, list):
        raise ValueError("choices is not a list")
    # Every chunk with a choice is a decoding step (as vLLM's own client counts):
    # a token's text may be empty until the bytes of a character are complete.
    return tokens, bool(choices)


def _reason(text: str, headers: dict[str, str]) -> str:
    """A failed request's reason as the result keeps it (and prints it, and saves it):
    masked before it is cut, so no part of a secret survives (a hostile server may echo the
    ``Authorization`` header in a bad status line), one line, at most 160 characters."""
    key = headers.get("Authorization", "").removeprefix("Bearer ")
    if len(key) >= 6:  # as mask: a shorter value would hide ordinary words
        text = text.replace(key, "***")
    return one_line(mask(text), limit=160)


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def run_client(
    url: str, model: str, workload: Workload, api_key: str | None, timeout: float = 300
) -> tuple[list[Sample], float]:
    """Run the workload with aimc's client: the samples and the wall time (seconds).

    Raises:
        ConfigError: ``url`` is not one the client can connect to (:func:`check_url`).
    """
    check_url(url)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    bodies = [
        json.dumps(
            {
                "model": model,
                "prompt": prompt,
                "max_tokens": workload.output_len,
                "min_tokens": workload.output_len,
                "ignore_eos": True,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        for prompt in prompts(workload)
    ]
    samples: list[Sample | None] = [None] * len(bodies)
    lock = threading.Lock()
    queue = list(range(len(bodies)))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop(0)
            samples[i] = _one(url, bodies[i], headers, workload, timeout)

    start = time.monotonic()
    threads = [
        threading.Thread(target=worker, daemon=True)
        for _ in range(min(workload.concurrency, len(bodies)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s or Sample(error="not sent") for s in samples], time.monotonic() - start
