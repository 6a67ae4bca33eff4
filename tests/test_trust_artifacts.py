"""Trust (issue 9): nothing injected runs, no user folder is lost, no secret is echoed.

Each test names the hole it closes; every one of them failed on the code before issue 9
(the commit before "Trust: ..."), as its docstring says.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.render import render, server_argv
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import ROOT, default_stop_signals

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
"""
TOKEN = "hf_" + "Q7x9" * 9
SHIPPED = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"


def _yaml(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def _sandbox_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def _run_launch(folder: Path, sandbox: Path) -> dict:
    """Run ``launch.sh`` with a recording stand-in for Python; returns what it saw."""
    python = sandbox / "fake-python"
    python.write_text(RECORDER)
    python.chmod(0o755)
    record = sandbox / "record.json"
    env = {
        "PATH": os.environ["PATH"],
        "AIM_PYTHON": str(python),
        "RECORD": str(record),
        "CACHE_DIR": str(sandbox / "cache"),
    }
    result = subprocess.run(
        ["bash", str(folder / "launch.sh")],
        env=env,
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    seen: dict = json.loads(record.read_text())
    return seen


def _source_env(folder: Path, sandbox: Path) -> dict[str, str]:
    """``set -a; . aim.env`` in a clean shell; the variables it exported."""
    script = 'set -a; . "$1"; set +a; env -0'
    out = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c", script, "_", str(folder / "aim.env")],
        cwd=sandbox,
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


# --- class 1: code execution through names, headers and images -------------------------

HOSTILE_ENV_NAMES = [
    "X;touch${IFS}PWNED;Y",
    "`touch PWNED`",
    "$(touch PWNED)",
    "A\ntouch PWNED\nB",
    "A B",
    "1X",
    "X-Y",
]


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
def test_hostile_env_names_are_refused(cli, tmp_path: Path, name: str) -> None:
    """Before issue 9 the name went unquoted into ``export NAME=...`` and ``aim.env``."""
    out = tmp_path / "build"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    result = cli(*args, "--set", f"env.{name}=1", cwd=tmp_path)
    assert result.code == 2, result.err
    assert "is not a valid key here" in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_a_secret_smuggled_in_a_name_is_refused_and_not_echoed(cli, tmp_path: Path) -> None:
    """Before issue 9 ``env.HF_TOKEN;X=hf_...`` passed the secret check, wrote the token into
    every artifact, and a refused token was printed back in the error."""
    for item in (f"env.HF_TOKEN;X={TOKEN}", f"env.HF_TOKEN={TOKEN}", f"hf-token={TOKEN}"):
        for fmt in ("text", "json"):
            out = tmp_path / "build"
            result = cli(
                "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), "--set", item,
                "--format", fmt,
            )  # fmt: skip
            assert result.code == 2
            assert TOKEN not in result.out + result.err
            assert "***" in result.out + result.err
            assert not out.exists()


def test_the_callers_token_is_masked_in_errors(cli, tmp_path: Path) -> None:
    """Before issue 9 an unsafe env value was echoed whole, a pasted token with it."""
    secret = "s3cr3t-value-pasted"
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(tmp_path / "b"),
        "--set", f"env.FOO={secret}$", env={"HF_TOKEN": secret},
    )  # fmt: skip
    assert result.code == 2
    assert secret not in result.err
    assert "environment variable FOO (--set env.FOO=***$) holds a token" in result.err


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("image=--privileged", "is not valid here"),
        ("image=Registry/Upper:1", "is not valid here"),
        ("image=a$b", "is not valid here"),
        ("host=0.0.0.0 --privileged", "is not valid here"),
        ("chat-template=--trust-remote-code", "would read it as another flag"),
        ("tool-call-parser=-x", "would read it as another flag"),
    ],
)
def test_set_checks_images_hosts_and_flag_like_values(cli, item: str, message: str) -> None:
    """Before issue 9 ``--set image=--privileged`` became a ``docker run`` option and
    ``--set`` skipped the checks ``--config`` applies."""
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "mi300x", "--set", item)
    assert result.code == 2
    assert message in result.err


def _user_recipes(parent: Path, dirname: str) -> Path:
    root = parent / dirname
    (root / "models" / "Qwen").mkdir(parents=True)
    shutil.copy(SHIPPED, root / "models" / "Qwen" / "Qwen3-8B.yaml")
    return root


EVIL_DIR = "r\ntrust-remote-code: true\ntouch PWNED\n#"


@pytest.mark.parametrize("how", ["--recipes", "AIMC_RECIPES"])
def test_a_newline_in_a_recipe_path_stays_in_the_comment(cli, tmp_path: Path, how: str) -> None:
    """Before issue 9 the provenance header printed the recipe path raw: a newline in it
    became a shell line in launch.sh and a key in vllm.yaml."""
    # $AIMC_RECIPES is split at ':', so its hostile folder name has none.
    recipes = _user_recipes(tmp_path, EVIL_DIR if how == "--recipes" else "r\ntouch PWNED\n#")
    out = tmp_path / "build"
    args = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--launcher", "process", "-o", str(out)]
    if how == "--recipes":
        result = cli(*args, "--recipes", str(recipes), cwd=tmp_path)
    else:
        result = cli(*args, env={"AIMC_RECIPES": str(recipes)}, cwd=tmp_path)
    assert result.code == 0, result.err
    assert f"({how})" in (out / "launch.sh").read_text()  # the user's recipe was used
    assert "trust-remote-code" not in _yaml((out / "vllm.yaml").read_text())  # type: ignore[operator]
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    seen = _run_launch(out, sandbox)
    assert "--trust-remote-code" not in seen["argv"]
    _source_env(out, sandbox)
    assert not list(tmp_path.rglob("PWNED"))


def test_a_newline_in_a_local_models_parent_stays_in_the_comment(cli, tmp_path: Path) -> None:
    """Before issue 9 a local model folder's path reached the header raw."""
    folder = tmp_path / EVIL_DIR / "tiny"
    folder.mkdir(parents=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "max_position_embeddings": 512,
        "vocab_size": 256,
        "torch_dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config))
    out = tmp_path / "build"
    result = cli("compile", str(folder), "--target", "cpu", "-o", str(out), cwd=tmp_path)
    assert result.code == 0, result.err
    native = _yaml((out / "vllm.yaml").read_text())
    assert "trust-remote-code" not in native  # type: ignore[operator]
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    seen = _run_launch(out, sandbox)
    assert str(folder) in seen["argv"]
    assert not list(tmp_path.rglob("PWNED"))


def test_compose_escapes_a_dollar_in_the_image() -> None:
    """Before issue 9 compose.yaml's ``image:`` was the one string not ``$$``-escaped."""
    request = Request(model="Qwen/Qwen3-8B")
    plan = make_plan(Catalog.default(), request, "h100")
    hostile = dataclasses.replace(plan, image="vllm/vllm-openai:${TAG}")
    compose = _yaml(render(hostile, "x")["compose.yaml"])
    assert compose["services"]["server"]["image"] == "vllm/vllm-openai:$${TAG}"  # type: ignore[index]


# --- class 2: user data ------------------------------------------------------------------


def _compile(cli, out: Path, *extra: str):
    return cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), *extra)


def test_a_web_project_with_a_manifest_json_is_not_replaced(cli, tmp_path: Path) -> None:
    """Before issue 9 any folder holding a file named manifest.json was replaced whole."""
    site = tmp_path / "site"
    (site / "src").mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")
    (site / "src" / "app.js").write_text("run()")
    (site / "manifest.json").write_text('{"name": "my web app", "start_url": "/"}')
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    result = _compile(cli, site)
    assert result.code == 2
    assert "holds what aimc did not write" in result.err
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_files_added_to_an_aimc_folder_are_kept(cli, tmp_path: Path) -> None:
    """Before issue 9 a recompile deleted files a user had added to the folder."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    (out / "NOTES.md").write_text("my notes")
    result = _compile(cli, out, "--port", "9000")
    assert result.code == 2
    assert "NOTES.md (not listed in manifest.json)" in result.err
    assert (out / "NOTES.md").read_text() == "my notes"
    assert "8000" in (out / "launch.sh").read_text()


def test_an_edited_artifact_is_not_overwritten(cli, tmp_path: Path) -> None:
    """Before issue 9 hand edits to an artifact were silently replaced."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    edited = (out / "launch.sh").read_text() + "# my change\n"
    (out / "launch.sh").write_text(edited)
    result = _compile(cli, out)
    assert result.code == 2
    assert "launch.sh (changed since aimc wrote it)" in result.err
    assert (out / "launch.sh").read_text() == edited


def test_a_linked_output_folder_is_refused(cli, tmp_path: Path) -> None:
    """Before issue 9 ``-o LINK`` replaced the link by a folder."""
    real = tmp_path / "real"
    assert _compile(cli, real).code == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    result = _compile(cli, link)
    assert result.code == 2
    assert "symbolic link" in result.err
    assert link.is_symlink()


def test_recompiling_keeps_the_server_log(cli, tmp_path: Path) -> None:
    """Before issue 9 a recompile deleted ``server.log``."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    (out / "server.log").write_text("INFO started\n")
    assert _compile(cli, out, "--port", "9000").code == 0
    assert (out / "server.log").read_text() == "INFO started\n"
    assert "9000" in (out / "launch.sh").read_text()
    assert _compile(cli, out, "--port", "9000", "--check").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def _files(port: int) -> dict[str, str]:
    request = Request(model="Qwen/Qwen3-8B", port=port)
    return compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_swap_survives_a_signal_at_every_step(tmp_path: Path, sig: int, fallback: bool) -> None:
    """Before issue 9 an interrupt between the two renames left neither folder, and a kill
    left ``.old-``/``.new-`` folders behind for good. Here the writer is killed before each
    of its file-system calls in turn (tests/fakes/swap_faults.py)."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_files(8000)))
    new.write_text(json.dumps(_files(9000)))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakes.swap_faults", str(work), str(old), str(new),
         str(int(sig)), "1" if fallback else "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        preexec_fn=default_stop_signals,  # SIGINT/SIGHUP not inherited as ignored
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)
    assert steps[-1]["done"] and len(steps) > 8
    for step in steps:
        assert step["rewrite_ok"] and step["leftovers"] == [], step
        if sig == signal.SIGKILL and fallback:
            # Nothing blocks SIGKILL between two renames; the next write puts it back.
            assert step["state"] in ("old", "new", "missing"), step
        else:
            assert step["state"] in ("old", "new"), step
        if sig != signal.SIGKILL:
            assert step["state"] == "new" and step["left_by_child"] == [], step


@pytest.mark.parametrize("name", ["proj", "m*", "[ab]", "?"])
def test_folders_that_only_look_like_aimcs_temporaries_are_left_alone(
    tmp_path: Path, name: str
) -> None:
    """Failed before: '.proj.new-backup' (a manifest.json of the user's) was deleted and
    '.proj.old-2024' renamed to 'proj'; with '-o m*' the glob matched '.mydata.new-...'."""
    user = {
        f".{name}.new-backup": '{"my": 1}',
        f".{name}.old-2024": '{"also": 1}',
        f".{name}.new-abcdefgh": '{"generator": "someone else"}',  # the temp name's shape
        ".mydata.new-v2abcdef": "{}",
        ".mydata.old-v2abcdef": "{}",
    }
    for folder, manifest in user.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "manifest.json").write_text(manifest)
    write_artifacts(tmp_path / name, _files(8000))
    for folder, manifest in user.items():
        assert (tmp_path / folder / "manifest.json").read_text() == manifest, folder
    assert json.loads((tmp_path / name / "manifest.json").read_text())["generator"].startswith(
        "aimc "
    )


def test_a_kill_while_an_old_folder_is_removed_is_finished_by_the_next_write(
    tmp_path: Path,
) -> None:
    """The manifest is removed last, so what a kill leaves of an old folder still proves
    it is aimc's (before, rmtree could remove it first and the rest stayed for good)."""
    out = tmp_path / "build"
    write_artifacts(out, _files(8000))
    left = tmp_path / ".build.old-k1llm1d0"
    shutil.copytree(out, left)
    (left / "launch.sh").unlink()  # removed before the kill; the manifest is still there
    write_artifacts(out, _files(9000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


# --- properties ----------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["$(touch PWNED)", "`touch PWNED`", "a;touch PWNED", "a\ntouch PWNED",
                     "${IFS}", "--privileged", "'", '"', "\\", "a: b", "- x", "{x: 1}", "&a",
                     "*a", "!!python/object:os.system", "#", "\r", "\x85", "\u2028"]),
)  # fmt: skip
FIELDS = st.sampled_from(
    ["env-name", "env-value", "chat-template", "served_model_name", "image", "host",
     "context_length", "memory_utilization", "tool-call-parser"]
)  # fmt: skip


def _set_item(field: str, text: str) -> str:
    if field == "env-name":
        return f"env.{text}=1"
    if field == "env-value":
        return f"env.AIM_X={text}"
    return f"{field}={text}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(FIELDS, HOSTILE_TEXT, st.sampled_from(["process", "docker"]))
def test_hostile_values_in_every_field_never_run(field: str, text: str, launcher: str) -> None:
    """Any text in any writable field: refused with a ConfigError, or written so that
    launch.sh runs only the server with exactly the planned argv, aim.env sourced sets
    exactly the planned variables, and every YAML file parses to exactly the planned keys."""
    request = Request(model="Qwen/Qwen3-8B", launcher=launcher, sets=(_set_item(field, text),))
    try:
        plan = make_plan(Catalog.default(), request, "mi300x")
        files = compile_plan(plan, request, "mi300x").files
    except ConfigError:
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        out, sandbox = base / "out", base / "sandbox"
        sandbox.mkdir()
        write_artifacts(out, files)
        expected_env = {name: str(s.value) for name, s in plan.env.items()}
        sourced = _source_env(out, sandbox)
        assert {k: sourced.get(k) for k in expected_env} == expected_env
        assert set(sourced) - set(expected_env) <= {"PATH", "PWD", "SHLVL", "_", "OLDPWD"}
        native = _yaml(files["vllm.yaml"])
        assert set(native) == {"model", *plan.args}  # type: ignore[arg-type]
        if plan.launcher == "process":
            seen = _run_launch(out, sandbox)
            assert seen["argv"] == plan.command + server_argv(plan)
        else:
            compose = _yaml(files["compose.yaml"])
            assert set(compose) == {"services"}  # type: ignore[arg-type]
            service = compose["services"]["server"]  # type: ignore[index]
            assert service["image"] == plan.image
            unescaped = [w.replace("$$", "$") for w in service["command"]]
            assert unescaped == plan.command + server_argv(plan)
        assert _sandbox_files(sandbox) <= {"fake-python", "record.json", "cache"}


def test_plan_json_keeps_hostile_text_as_data() -> None:
    """A plan read back from a manifest holds the same strings (no re-typing)."""
    request = Request(model="Qwen/Qwen3-8B", sets=("chat-template=$(touch PWNED)\n#",))
    plan = make_plan(Catalog.default(), request, "h100")
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_notes_mask_secrets(capsys, monkeypatch) -> None:
    """Before issue 9 notes on stderr printed whatever text they were given."""
    from aimc.core.log import note

    monkeypatch.setenv("VLLM_API_KEY", "my-own-api-key-123")
    for fmt in ("json", "text"):
        monkeypatch.setenv("LOG_FORMAT", fmt)
        note(f"fetching with {TOKEN} and key my-own-api-key-123 (Bearer abcdefghijkl)")
        err = capsys.readouterr().err
        assert TOKEN not in err and "my-own-api-key-123" not in err and "abcdefghijkl" not in err
        assert err.count("***") == 3


GITHUB_TOKEN = "ghp_" + "Zz09" * 9


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_a_token_is_masked_whatever_surrounds_it(before: str, after: str) -> None:
    """Failed before: a token glued to a word (``tokenhf_...``, ``HF_TOKEN_hf_...``) was
    shown, because the pattern wanted a word boundary before ``hf_``."""
    from aimc.core.safety import mask

    for token in (TOKEN, GITHUB_TOKEN):
        shown = mask(before + token + after, environ={})
        assert token not in shown and token[8:20] not in shown, shown
    assert mask("HF_TOKEN_" + TOKEN, environ={}) == "HF_TOKEN_hf_***"
    assert mask("task-" + "a" * 30, environ={}) == "task-" + "a" * 30  # not an sk- key


@pytest.mark.parametrize("name", ["HF_TOKEN_VALUE", "PGPASSWORD", "OPENAI_APIKEY", "db-passwd"])
def test_names_that_say_secret_are_secrets(name: str) -> None:
    """Failed before: only a last word TOKEN and whole words PASSWORD/SECRET counted."""
    from aimc.check.lint import is_secret

    assert is_secret(name)


@pytest.mark.parametrize("name", ["max-num-batched-tokens", "tokenizer", "TOKENIZERS_PARALLELISM"])
def test_names_about_tokens_are_not_secrets(name: str) -> None:
    from aimc.check.lint import is_secret

    assert not is_secret(name)


def test_a_token_under_any_name_never_reaches_an_artifact(cli, tmp_path: Path) -> None:
    """Failed before: a token-shaped value under a harmless name (env or arg) passed
    validate and was compiled into aim.env, launch.sh and vllm.yaml."""
    recipe = tmp_path / "models" / "Qwen" / "Qwen3-8B.yaml"
    recipe.parent.mkdir(parents=True)
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    text = text.replace(
        "  context_length: 32768\n",
        f"  context_length: 32768\n  env: {{MY_SETTING: {TOKEN}}}\n  args: {{revision: {TOKEN}}}\n",
        1,
    )
    recipe.write_text(text)
    result = cli("validate", str(recipe))
    assert result.code == 2 and TOKEN not in result.out + result.err
    assert "the value of 'MY_SETTING' holds a token" in result.out
    assert "the value of 'revision' holds a token" in result.out
    for item in (
        f"env.MY_SETTING={TOKEN}",
        f"revision=x{TOKEN}",
        "tokenizer=[a, hf_" + "z" * 30 + "]",
    ):
        out = tmp_path / "o"
        done = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--set", item, "-o", str(out))
        assert done.code == 2 and not out.exists(), done.err
        assert TOKEN not in done.out + done.err and "holds a token" in done.err


def test_a_model_folder_docker_cannot_mount_is_refused(cli, tmp_path: Path) -> None:
    """Before issue 9 ``-v a:b/m:/models/m:ro`` was written, which docker splits at ':'."""
    folder = tmp_path / "a:b" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2})
    )
    args = ("compile", str(folder), "--target", "cpu", "--launcher", "docker")
    result = cli(*args, "--set", "image=vllm/vllm-openai:v0.32.0", "-o", str(tmp_path / "o"))
    assert result.code == 2
    assert "cannot be mounted into a container" in result.err
    assert not (tmp_path / "o").exists()
