"""Hypothesis properties: quoting, determinism, and the Plan's JSON round trip."""

from __future__ import annotations

import json
import subprocess

from hypothesis import given, reject, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.emit.emitters import compile_plan
from aimc.emit.templating import shell_quote
from aimc.plan.candidates import candidates
from aimc.plan.model import Plan
from aimc.plan.request import Request

CATALOG = Catalog.default()
PAIRS = sorted(
    {
        (r.model_id, c.hardware, c.gpus, c.precision, c.backend)
        for r in CATALOG.recipes()
        for c in candidates(r)
    }
)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)


@settings(max_examples=40, deadline=None)
@given(TEXT)
def test_a_quoted_value_stays_one_shell_word(value: str) -> None:
    script = 'eval "set -- $1"; printf "%s\\n%s" "$#" "$1"'
    out = subprocess.run(
        ["bash", "-c", script, "_", shell_quote(value)], capture_output=True, check=True
    ).stdout.decode("utf-8", "surrogateescape")
    count, _, word = out.partition("\n")
    assert count == "1"
    assert word == value


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(PAIRS), TEXT.filter(lambda v: v.strip() == v and v))
def test_rendering_is_deterministic(pair, value: str) -> None:
    model, target, gpus, precision, backend = pair
    request = Request(
        model=model,
        gpus=gpus,
        precision=precision,
        backend=backend,
        sets=(f"chat-template={value}",) if backend == "vllm" else (),
    )
    try:
        first = compile_plan(make_plan(CATALOG, request, target), request, target).files
    except ConfigError:  # a value that --set reads as a number, list...: not a string arg
        reject()
    second = compile_plan(make_plan(Catalog.default(), request, target), request, target).files
    assert first == second


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(PAIRS), st.integers(1, 65535), TEXT)
def test_plan_json_round_trips(pair, port: int, value: str) -> None:
    model, target, gpus, precision, backend = pair
    request = Request(
        model=model,
        gpus=gpus,
        precision=precision,
        backend=backend,
        port=port,
        sets=("env.AIMC_TEST=x", f"args.chat-template={value}") if backend == "vllm" else (),
    )
    try:
        plan = make_plan(CATALOG, request, target)
    except ConfigError:
        reject()
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan
    assert again.to_json() == plan.to_json()
