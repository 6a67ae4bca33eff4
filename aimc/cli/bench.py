"""``aim-engine bench NAME|URL``: measure how fast an endpoint serves, and record it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import click

from aimc.cli.options import OneOf, Seconds, Whole, current_settings, format_option
from aimc.cli.report import emit_result
from aimc.core.errors import AimcError, ConfigError, NetworkError, permission_denied
from aimc.core.log import note
from aimc.core.records import validate_name
from aimc.plan.measured import RESULTS_NAME, append_result, config_key
from aimc.plan.model import Plan
from aimc.run.bench import Figures, Workload, choose_client, figures, result_record, run_vllm
from aimc.run.bench_client import check_url, run_client
from aimc.run.probe import API_KEY_ENV, api_key, http_get
from aimc.run.progress import printable
from aimc.run.runplan import load_plan
from aimc.run.runs import no_such_run, running

__all__ = ["bench"]

#: Longest --timeout (seconds): a week; a larger one has no timer (OverflowError).
TIMEOUT_MAX = 7 * 86400


def _target(target: str) -> tuple[str, str | None, Plan | None]:
    """(endpoint URL, run name or None, the run's plan or None) of NAME|URL.

    Raises:
        ConfigError: Not a URL, no such run, or the run is not running.
    """
    if target.startswith(("http://", "https://")):
        check_url(target)
        return target.rstrip("/"), None, None
    name = validate_name(target)
    record = running(name)
    if record is None:
        raise no_such_run(
            name, what=" is running", otherwise="see 'aim-engine status', or give its URL"
        )
    if os.path.realpath(record.folder) != os.path.normpath(record.folder):
        raise ConfigError(f"the run record of {name} names a folder that is not a real folder")
    return f"http://127.0.0.1:{record.port}", name, load_plan(Path(record.folder))


def _served_model(url: str, api_key: str | None) -> str:
    """The first model ``/v1/models`` lists (asked with ``api_key`` as the bearer token).

    Raises:
        NetworkError: It lists none, or does not answer (in HTTP: see ``aimc.run.probe.http_get``).
    """
    status, body = http_get(url + "/v1/models", timeout=10, api_key=api_key)
    try:
        model = json.loads(body)["data"][0]["id"] if status == 200 else None
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        model = None
    if status in (401, 403):
        raise NetworkError(
            f"{url}/v1/models refuses the request as unauthorized (HTTP {status})",
            hint=f"set {API_KEY_ENV} to the server's API key (sent as the bearer token)",
        )
    if not isinstance(model, str) or not model:
        raise NetworkError(
            f"{url}/v1/models lists no model (HTTP {status or 'no answer'})",
            hint="give the model with --model",
        )
    if len(model) > 400 or not model.isprintable():
        raise NetworkError(
            f"{url}/v1/models lists a model id that is not printable text",
            hint="give the model with --model",
        )
    return model


@click.command()
@click.argument("target", metavar="NAME|URL")
@click.option("--requests", type=Whole(1, 100000, "a request count"), default=32, show_default=True)
@click.option(
    "--concurrency",
    type=Whole(1, 1024, "a concurrency"),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--input-len",
    type=Whole(1, 1 << 20, "a token count"),
    default=128,
    show_default=True,
    help="Prompt length (tokens; words for aimc's client).",
)
@click.option(
    "--output-len",
    type=Whole(1, 1 << 20, "a token count"),
    default=128,
    show_default=True,
    help="Output tokens per request.",
)
@click.option("--seed", type=Whole(0, None, "a seed"), default=0, show_default=True)
@click.option(
    "--client",
    type=OneOf(["auto", "vllm", "aimc"]),
    default="auto",
    show_default=True,
    help="Load generator: vLLM's 'vllm bench serve' (auto: when $AIM_PYTHON has vLLM and "
    "the model is a local folder), or aimc's own small client.",
)
@click.option("--model", metavar="NAME", help="Model to ask for (default: the run's, or the "
              "first /v1/models lists).")  # fmt: skip
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the result to FILE (e.g. in a recipe repository) instead of "
    "$AIMC_STATE_DIR/bench.jsonl.",
)
@click.option(
    "--timeout",
    type=Seconds(1, TIMEOUT_MAX),
    default=600,
    show_default=True,
    help="Seconds one request (or vllm bench serve) may take (at most a week).",
)
@format_option("text", "json", default="text")
def bench(
    target: str,
    requests: int,
    concurrency: int,
    input_len: int,
    output_len: int,
    seed: int,
    client: str,
    model: str | None,
    save: Path | None,
    timeout: float,
    fmt: str,
) -> None:
    """Benchmark NAME (a server aimc started) or URL (an OpenAI endpoint): time to first
    token, inter-token latency, output tokens/s, requests/s, with a seeded synthetic
    workload. The result is recorded with its configuration for 'compile --optimize'."""
    path = save or current_settings().state_dir / RESULTS_NAME
    _check_save(path)
    env = dict(os.environ)
    key = api_key(env)
    url, name, plan = _target(target)
    served = (
        model or (plan.served_model_name if plan is not None else None) or _served_model(url, key)
    )
    workload = Workload(requests, concurrency, input_len, output_len, seed)
    python = env.get("AIM_PYTHON") or "python3"
    tokenizer = plan.model_source if plan is not None and plan.local_model else None
    used, why = choose_client(client, tokenizer, python)
    if fmt != "json":
        note(f"bench {url} ({served}): {used} load generator ({why})")
    if used == "vllm":
        assert tokenizer is not None
        result = run_vllm(python, url, served, tokenizer, workload, env, timeout)
    else:
        result = figures(*run_client(url, served, workload, key, timeout))
    _refuse_none_completed(result, requests, url)
    # A command given as is (run_command_directly) serves no configuration of aimc's.
    key_of = config_key(plan) if plan is not None and not plan.raw_command else None
    record = result_record(key_of, name, url, served, (used, why), workload, result)
    try:
        append_result(path, record)
    except OSError as exc:
        raise _save_error(exc, path) from None
    if fmt == "json":
        emit_result({**record, "saved": str(path)}, fmt, _summary(record))
        return
    _print(record, path)


def _refuse_none_completed(result: Figures, requests: int, url: str) -> None:
    """Raises: NetworkError: No request completed (the first failure's reason, and the API
    key's hint when the server refused it)."""
    if result.completed == 0:
        raise NetworkError(
            f"none of the {requests} requests to {url} completed"
            + (f": {result.first_error}" if result.first_error else ""),
            hint=f"set {API_KEY_ENV} to the server's API key (sent as the bearer token)"
            if result.first_error in ("HTTP 401", "HTTP 403")
            else None,
        )


def _check_save(path: Path) -> None:
    """Refuse, before anything is sent, a results file that is not a regular file (a
    symlink is never written through).

    Raises:
        ConfigError: It exists and is not a regular file.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise ConfigError(
            f"{path} is not a regular file; bench results are appended to one",
            hint="give another file with --save FILE",
        )


def _save_error(exc: OSError, path: Path) -> Exception:
    what = f"cannot append the result to {path}: {exc.strerror or exc}"
    hint = "give a writable file with --save FILE, or set AIMC_STATE_DIR"
    return permission_denied(exc, what, hint=hint) or AimcError(what, hint=hint)


def _summary(record: dict[str, Any]) -> str:
    f = record["figures"]
    return (
        f"{f['output_tokens_per_s']:.1f} output tokens/s, TTFT p50 {f['ttft_ms']['p50']:.1f} ms "
        f"({record['client']})"
    )


def _print(record: dict[str, Any], path: Path) -> None:
    def shown(text: str) -> str:  # masked, one line, no control characters
        return printable(text, 400)

    f, w = record["figures"], record["workload"]
    key = record["key"]
    what = f"{record['run']} ({record['url']})" if record["run"] else record["url"]
    click.echo(f"bench:     {shown(what)}, model {shown(record['model'])}")
    if key:
        click.echo(
            f"config:    {key['model']} on {key['target']}: {key['configuration']}, "
            f"{key['backend']} {key['backend_version']} {key['precision']}, {key['gpus']} GPU(s)"
        )
    click.echo(
        f"load:      {record['client']}: {w['requests']} requests, {w['concurrency']} "
        f"concurrent, {w['input_len']} in / {w['output_len']} out, seed {w['seed']}"
    )
    click.echo(f"TTFT:      p50 {f['ttft_ms']['p50']:.1f} ms, p95 {f['ttft_ms']['p95']:.1f} ms")
    click.echo(f"ITL:       p50 {f['itl_ms']['p50']:.2f} ms, p95 {f['itl_ms']['p95']:.2f} ms")
    click.echo(f"output:    {f['output_tokens_per_s']:.1f} tokens/s ({f['output_tokens']} tokens)")
    click.echo(
        f"requests:  {f['request_throughput']:.2f}/s ({f['completed']} completed, "
        f"{f['failed']} failed, {f['duration_s']:.2f} s)"
    )
    if f.get("first_error"):
        click.echo(f"first error: {shown(f['first_error'])}")
    click.echo(f"saved:     {path}")
