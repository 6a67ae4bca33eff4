"""Facts of a model aimc has no recipe for, from the hub when the model cache lacks them
(issue 25): ``config.json``, the safetensors index and, for a quantized checkpoint, the
safetensors headers by byte range, bounded as ``cache download`` is (the token only to the
hub, answers bounded, never a traceback), the revision the hub named written above the
imported recipe; ``--offline`` and ``HF_HUB_OFFLINE=1`` never ask it. Every hub is a
stand-in on 127.0.0.1 (tests/fakes/hub.py); nothing reaches the internet.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.interop import _hub_facts
from aimc.modelcache import hub_files
from tests.conftest import Result, run_cli
from tests.fakes.hub import FakeHub
from tests.fakes.other_host import OtherHost
from tests.helpers.interop import AIM_QWEN_FP8, write

MODEL = "acme/Tiny-7B"
TOKEN = "hf_hubfactstesttoken0123456789abcd"
PROFILE = "aim-build/profiles/{model}/vllm-mi300x-bf16-tp1-latency.yaml"
AIM = """\
aim_id: {model}
model_id: {model}
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: bf16
  type: optimized
engine_args:
  max-model-len: 8192
  tensor-parallel-size: 1
"""
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "max_position_embeddings": 32768,
    "vocab_size": 128256,
    "torch_dtype": "bfloat16",
}
QUANTIZED = {**CONFIG, "quantization_config": {"quant_method": "fp8"}}


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _index(total: object = 14_000_000_000, shards: tuple[str, ...] = ()) -> bytes:
    weight_map = {f"t{i}": name for i, name in enumerate(shards)}
    return _json({"metadata": {"total_size": total}, "weight_map": weight_map})


def _safetensors(shapes: dict[str, object], length: int | None = None) -> bytes:
    """A safetensors file: its header (``length`` overrides the size it announces), then
    a few bytes standing for the tensors."""
    header = _json(
        {k: {"dtype": "F8_E4M3", "shape": v, "data_offsets": [0, 0]} for k, v in shapes.items()}
    )
    return struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * 64


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub(token=TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path, hub: FakeHub) -> dict[str, str]:
    return {
        "CACHE_DIR": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
    }


def _collection(tmp_path: Path, *models: str) -> None:
    """An aim-build checkout with a profile of each of ``models`` and one of Qwen3-32B,
    which aimc ships a recipe of (so an import without the others' facts still writes)."""
    files = {PROFILE.format(model=m): AIM.format(model=m) for m in models}
    files["aim-build/profiles/Qwen/Qwen3-32B/vllm-mi300x-fp8-tp1-latency.yaml"] = AIM_QWEN_FP8
    write(tmp_path, files)


def _import(tmp_path: Path, env: dict[str, str], *flags: str) -> Result:
    return run_cli(
        "import", "aim-profiles", "aim-build", "-o", "out", *flags, cwd=tmp_path, env=env
    )


def _no_facts(result: Result, model: str = MODEL) -> str:
    """The hint of ``model``'s interop/facts warning (it says why); the import of the rest
    exited 0, without a traceback or the token."""
    assert result.code == 0, result.err
    lines = (result.out + result.err).splitlines()
    assert not any("Traceback" in ln or TOKEN in ln for ln in lines)
    at = next(i for i, ln in enumerate(lines) if "aimc knows no facts" in ln and model in ln)
    return lines[at + 1]


def test_an_uncatalogued_model_gets_its_facts_from_the_hub_with_its_revision(
    tmp_path: Path, hub: FakeHub, env: dict[str, str]
) -> None:
    """Failed before: the model cache was the only place looked in (not imported)."""
    commit = hub.add(
        MODEL, {"config.json": _json(CONFIG), "model.safetensors.index.json": _index()}
    )
    _collection(tmp_path, MODEL)
    result = _import(tmp_path, env)
    assert result.code == 0, result.err
    text = (tmp_path / "out/models/acme/Tiny-7B.yaml").read_text()
    note = f"# model.facts from config.json of {MODEL} at revision {commit} (the hub, {hub.url})"
    assert note in text.splitlines()
    recipe = yaml.safe_load(text)
    assert recipe["model"]["architecture"] == "LlamaForCausalLM"
    facts = recipe["model"]["facts"]
    assert facts["parameters"] == 7_000_000_000  # total_size / 2 bytes of bfloat16
    assert (facts["layers"], facts["kv_heads"], facts["max_context"]) == (32, 8, 32768)
    # config.json at main, the index at the commit the hub named; nothing else, no writes.
    assert hub.requests == [
        ("GET", f"/{MODEL}/resolve/main/config.json"),
        ("GET", f"/{MODEL}/resolve/{commit}/model.safetensors.index.json"),
    ]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "hf-home").exists()
    built = run_cli(
        "compile", MODEL, "--target", "mi300x", "--recipes", "out", "-o", "build",
        "--launcher", "process", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert built.code == 0, built.err
    assert "--max-model-len 8192" in (tmp_path / "build/launch.sh").read_text()
    checked = run_cli("validate", "--from", "aim-profiles", "aim-build", cwd=tmp_path, env=env)
    assert checked.code == 0 and "aimc knows no facts" not in checked.out, checked.out


def test_a_quantized_checkpoint_is_counted_from_its_safetensors_headers(
    tmp_path: Path, hub: FakeHub, env: dict[str, str]
) -> None:
    """An FP8 checkpoint mixes element sizes: its parameters are the tensors of its
    safetensors headers, read by byte range (one of them larger than the first range)."""
    many = {f"layer.{i}.weight": [64, 64] for i in range(3000)}  # a header of ~170 KB
    shards = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    hub.add(
        MODEL,
        {
            "config.json": _json(QUANTIZED),
            "model.safetensors.index.json": _index(7, shards),
            shards[0]: _safetensors({"embed": [128256, 4096]}),
            shards[1]: _safetensors(many),
        },
    )
    assert len(_safetensors(many)) > _hub_facts.PROBE
    _collection(tmp_path, MODEL)
    result = _import(tmp_path, env)
    assert result.code == 0, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/acme/Tiny-7B.yaml").read_text())
    assert recipe["model"]["facts"]["parameters"] == 128256 * 4096 + 3000 * 64 * 64
    assert hub.gets(MODEL, shards[1]) == 2  # the first range, then the whole header


@pytest.mark.parametrize(
    ("flag", "variables", "why"),
    [
        ("--offline", {}, "--offline"),
        ("", {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE=1"),
        ("", {"HF_HUB_OFFLINE": "yes", "TRANSFORMERS_OFFLINE": "0"}, "HF_HUB_OFFLINE=YES"),
        ("", {"TRANSFORMERS_OFFLINE": "1"}, "TRANSFORMERS_OFFLINE=1"),
    ],
)
def test_offline_never_asks_the_hub(
    tmp_path: Path,
    hub: FakeHub,
    env: dict[str, str],
    flag: str,
    variables: dict[str, str],
    why: str,
) -> None:
    """The model is on the hub, but the hub is forbidden: not imported (a warning saying
    why), the import of the rest exits 0 as documented, and the hub got no request."""
    hub.add(MODEL, {"config.json": _json(CONFIG), "model.safetensors.index.json": _index()})
    _collection(tmp_path, MODEL)
    env = {**env, **variables}
    flags = [flag] if flag else []
    hint = _no_facts(_import(tmp_path, env, *flags))
    assert (
        f"its config.json is not in the model cache (looked for in {tmp_path / 'cache'}), "
        f"and the hub is not asked ({why})" in hint
    )
    assert not (tmp_path / "out/models/acme/Tiny-7B.yaml").exists()
    assert (tmp_path / "out/models/Qwen/Qwen3-32B.yaml").exists()
    checked = run_cli(
        "validate", "--from", "aim-profiles", "aim-build", *flags, cwd=tmp_path, env=env
    )
    assert checked.code == 0 and f"the hub is not asked ({why})" in checked.out
    assert hub.requests == []


def test_offline_is_refused_without_from(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_cli("validate", "--offline", cwd=tmp_path, env=env)
    assert result.code == 2 and "--offline applies to --from collections" in result.err


def _redirect_loop(hub: FakeHub) -> None:
    hub.get_answers["config.json"] = (302, {"Location": f"/{MODEL}/resolve/main/config.json"}, b"")


#: A hostile hub's answers for the model -> what the warning says.
HOSTILE = {
    "oversized config.json": (
        lambda hub: hub.add(MODEL, {"config.json": b"{" + b" " * 2**21 + b"}"}),
        "is larger than the 1048576 bytes aimc reads of it",
    ),
    "config.json not JSON": (
        lambda hub: hub.add(MODEL, {"config.json": b"<html>not json"}),
        "is not JSON",
    ),
    "a dimension not a whole number": (
        lambda hub: hub.add(MODEL, {"config.json": _json({**CONFIG, "hidden_size": "4k"})}),
        "lacks a model dimension",
    ),
    "a total_size not a number, no headers": (
        lambda hub: hub.add(
            MODEL,
            {
                "config.json": _json(CONFIG),
                "model.safetensors.index.json": _index("14e9", ("model-1.safetensors",)),
            },
        ),
        "model-1.safetensors is not on the hub",
    ),
    "a header's shape not whole numbers": (
        lambda hub: hub.add(
            MODEL,
            {"config.json": _json(QUANTIZED), "model.safetensors": _safetensors({"w": ["4k", 2]})},
        ),
        "model.safetensors's header is not a safetensors header",
    ),
    "a header announcing 2**63 bytes": (
        lambda hub: hub.add(
            MODEL, {"config.json": _json(QUANTIZED), "model.safetensors": _safetensors({}, 2**63)}
        ),
        f"header is {2**63} bytes long (aimc reads at most 25000000)",
    ),
    "an index naming a file outside": (
        lambda hub: hub.add(
            MODEL,
            {
                "config.json": _json(QUANTIZED),
                "model.safetensors.index.json": _index(1, ("../x.safetensors",)),
            },
        ),
        "names a file that is not a safetensors file of it",
    ),
    "a redirect loop": (
        lambda hub: (hub.add(MODEL, {"config.json": b"{}"}), _redirect_loop(hub)),
        "TooManyRedirects",
    ),
    "a server error": (
        lambda hub: (
            hub.add(MODEL, {"config.json": b"{}"}),
            hub.get_answers.update({"config.json": (500, {}, b"oops " + TOKEN.encode())}),
        ),
        "the hub answered 500 for acme/Tiny-7B/config.json",
    ),
    "a commit that is not a hash": (
        lambda hub: (
            hub.add(MODEL, {"config.json": b"{}"}),
            hub.get_answers.update({"config.json": (200, {"X-Repo-Commit": "../../main"}, b"{}")}),
        ),
        "the hub named no commit hash",
    ),
    "no commit at all": (
        lambda hub: (
            hub.add(MODEL, {"config.json": b"{}"}),
            hub.get_answers.update({"config.json": (200, {}, _json(CONFIG))}),
        ),
        "the hub named no commit for acme/Tiny-7B (X-Repo-Commit)",
    ),
    "a compressed answer": (
        lambda hub: (
            hub.add(MODEL, {"config.json": b"{}"}),
            hub.get_answers.update(
                {
                    "config.json": (
                        200,
                        {"X-Repo-Commit": "a" * 40, "Content-Encoding": "gzip"},
                        b"x",
                    )
                }
            ),
        ),
        "a compressed answer (gzip)",
    ),
    "a repository that is not there": (lambda hub: None, "acme/Tiny-7B was not found on the hub"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_hub_answer_is_a_reason_never_a_traceback(
    tmp_path: Path, hub: FakeHub, env: dict[str, str], case: str
) -> None:
    setup, reason = HOSTILE[case]
    setup(hub)
    _collection(tmp_path, MODEL)
    hint = _no_facts(_import(tmp_path, env))
    assert "not in the model cache; the hub: " in hint and reason in hint, hint
    assert not (tmp_path / "out/models/acme/Tiny-7B.yaml").exists()


def test_a_redirect_to_another_host_gets_no_token(
    tmp_path: Path, hub: FakeHub, env: dict[str, str]
) -> None:
    """The hub sends a checkpoint's bytes from its CDN: followed, without the token; what
    the other host answers is read as bounded as the hub's."""
    other = OtherHost(lambda method, path: (200, {}, [_safetensors({"w": [1000, 7]})])).start()
    try:
        commit = hub.add(MODEL, {"config.json": _json(QUANTIZED), "model.safetensors": b"x"})
        hub.get_answers["model.safetensors"] = (
            302,
            {"Location": f"{other.url}/cdn/model.safetensors", "X-Repo-Commit": commit},
            b"",
        )
        _collection(tmp_path, MODEL)
        result = _import(tmp_path, env)
    finally:
        other.stop()
    assert result.code == 0, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/acme/Tiny-7B.yaml").read_text())
    assert recipe["model"]["facts"]["parameters"] == 7000
    assert [r.target for r in other.received] == ["/cdn/model.safetensors"]
    assert all(k.lower() != "authorization" for r in other.received for k in r.headers)
    assert all(TOKEN not in v for r in other.received for v in r.headers.values())


def test_a_gated_model_needs_the_token_which_is_never_echoed(
    tmp_path: Path, hub: FakeHub, env: dict[str, str]
) -> None:
    hub.add(
        MODEL, {"config.json": _json(CONFIG), "model.safetensors.index.json": _index()}, gated=True
    )
    hub.reject_bad_tokens = True
    _collection(tmp_path, MODEL)
    hint = _no_facts(_import(tmp_path, {k: v for k, v in env.items() if k != "HF_TOKEN"}))
    assert "acme/Tiny-7B is gated: access needs a token" in hint
    wrong = "hf_wrongtoken0123456789abcdefghijk"
    hint = _no_facts(_import(tmp_path, {**env, "HF_TOKEN": wrong}))
    assert "the hub refused the credentials for acme/Tiny-7B (401)" in hint and wrong not in hint
    result = _import(tmp_path, env)  # the right token: imported, and written nowhere
    assert result.code == 0 and TOKEN not in result.out + result.err
    assert (tmp_path / "out/models/acme/Tiny-7B.yaml").exists()
    assert all(TOKEN not in p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_a_hub_echoing_the_token_in_config_json_gets_it_written_nowhere(
    tmp_path: Path, hub: FakeHub, env: dict[str, str]
) -> None:
    """Failed before (from the model cache too): a token-shaped architecture was written as
    the recipe's model.architecture."""
    config = {**CONFIG, "architectures": [TOKEN]}
    hub.add(MODEL, {"config.json": _json(config), "model.safetensors.index.json": _index()})
    _collection(tmp_path, MODEL)
    result = _import(tmp_path, env)
    assert result.code == 0 and TOKEN not in result.out + result.err, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/acme/Tiny-7B.yaml").read_text())
    assert "architecture" not in recipe["model"]
    assert all(TOKEN not in p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_a_hanging_hub_is_bounded_and_not_asked_for_the_other_models(
    tmp_path: Path, hub: FakeHub, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.json's answer never starts: the model's facts stop at the deadline (here 1 s)
    with a reason, and the next model is not asked."""
    monkeypatch.setattr(_hub_facts, "DEADLINE", 1.0)
    other = "acme/Other-7B"
    hub.add(MODEL, {"config.json": _json(CONFIG)})
    hub.add(other, {"config.json": _json(CONFIG)})
    hub.stall["config.json"] = 60
    _collection(tmp_path, MODEL, other)
    result = _import(tmp_path, env)
    first, second = sorted(
        (_no_facts(result, m) for m in (MODEL, other)), key=lambda h: "not asked" in h
    )
    assert f"; the hub: {hub.url} did not answer in time for acme/Other-7B" in first, first
    assert f"; the hub: not asked, after {hub.url} did not answer in time for" in second
    assert len([r for r in hub.requests if r[1].endswith("/config.json")]) == 1


def test_a_hub_trickling_bytes_is_bounded(
    tmp_path: Path, hub: FakeHub, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hub_facts, "DEADLINE", 1.0)
    hub.add(MODEL, {"config.json": _json({**CONFIG, "pad": "x" * 40_000})})
    hub.slow = 0.2  # 40 chunks of 1 KiB: 8 s
    _collection(tmp_path, MODEL)
    hint = _no_facts(_import(tmp_path, env))
    assert f"; the hub: {hub.url} did not answer" in hint, hint


def test_an_unreachable_hub_is_a_reason(tmp_path: Path, env: dict[str, str]) -> None:
    _collection(tmp_path, MODEL)
    hint = _no_facts(_import(tmp_path, {**env, "HF_ENDPOINT": "http://127.0.0.1:9"}))
    assert "the hub: http://127.0.0.1:9 cannot be reached for acme/Tiny-7B" in hint
    hint = _no_facts(_import(tmp_path, {**env, "HF_ENDPOINT": "file:///etc"}))
    assert "HF_ENDPOINT is not usable: 'file:///etc' is not an http(s) URL" in hint


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=20))
def test_the_hub_named_in_a_recipe_comment_is_one_safe_line(endpoint: str, password: str) -> None:
    """HF_ENDPOINT is the user's text and reaches the imported recipe's comment: one line,
    no control character, never a user's password, the YAML under it unchanged."""
    for text in (endpoint, f"https://user:{password}{TOKEN}@hub.example{endpoint}"):
        shown = hub_files.shown_endpoint(text)
        assert shown.isprintable() and not any(c in shown for c in "\x85\u2028\u2029")
        assert TOKEN not in shown and (not password or f":{password}{TOKEN}@" not in shown)
        note = (
            f"# model.facts from config.json of {MODEL} at revision {'a' * 40} (the hub, {shown})"
        )
        assert yaml.safe_load(f"{note}\nmodel: {{id: {MODEL}}}\n") == {"model": {"id": MODEL}}
