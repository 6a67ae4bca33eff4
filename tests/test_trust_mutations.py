"""Tests that kill the mutations issue 22's audit landed green (one deliberate bug at a time):

- :func:`aimc.core.safety.check_env` loosened from ``fullmatch`` to ``match``: hostile env names
  through the Python API and every renderer that writes a name (launch.sh, aim.env,
  compose.yaml, the Kubernetes manifests);
- the JSON error report no longer masking: token-shaped input echoed by every reporter
  (errors and diagnostics, ``--format json|text|github``, ``LOG_FORMAT=json|text``);
- ``compile --check`` ignoring files aimc did not generate in that folder.

``bench/mutation.py`` runs the same kind of check with cosmic-ray over the trust-critical
functions; its survivors are explained in ``bench/mutation_survivors.md``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aim_launcher import AIMConfigGenerator, AIMDockerManager
from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.core.safety import check_env
from aimc.core.write import diff_artifacts, stale_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.k8s import render_k8s
from aimc.emit.render import render
from aimc.plan.model import Plan, Setting
from aimc.plan.request import Request
from tests.conftest import ROOT
from tests.helpers.runs import FAKE

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"

# --- env names -----------------------------------------------------------------------------

#: Each starts with a valid name, so only a whole-name match refuses it.
HOSTILE_ENV_NAMES = [
    "A;touch PWNED;B",
    "A$(touch PWNED)",
    "A`touch PWNED`",
    "A\ntouch PWNED",
    "A\n",
    "A B",
    "A=B",
    "A-B",
    "A.B",
    "A\x00B",
    "A" * 129,  # a valid shape, longer than ENV_NAME's 128 characters
]

_VALID_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(_VALID_NAME, st.text(min_size=1, max_size=20))
def test_a_name_with_anything_after_a_valid_prefix_is_refused(prefix: str, rest: str) -> None:
    """``check_env`` judges the whole name: a valid start never lets the rest through."""
    name = prefix + rest
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name, re.ASCII):
        check_env(name, "x", "test")  # a valid name (the rest was name characters)
        return
    with pytest.raises(ConfigError, match="is not a variable name"):
        check_env(name, "x", "test")


def test_name_length_bound() -> None:
    check_env("A" * 128, "x", "test")
    with pytest.raises(ConfigError, match="is not a variable name"):
        check_env("A" * 129, "x", "test")


@pytest.fixture
def api_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The API's state and cache in ``tmp_path``, the current folder a sandbox (where an
    injected ``touch PWNED`` would land)."""
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("AIM_PYTHON", str(python))
    monkeypatch.setenv("FAKE_MODE", "ready")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    monkeypatch.chdir(sandbox)
    return tmp_path


def _nothing_written(base: Path, name: str) -> None:
    assert not (base / "state" / "builds" / name).exists()
    assert not list((base / "state").rglob("*.json")) if (base / "state").exists() else True
    assert not list(base.rglob("PWNED"))


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
def test_run_command_directly_refuses_a_hostile_env_name(api_env: Path, name: str) -> None:
    """Before issue 22 nothing but ``check_env`` stood between this name and
    ``export A;touch PWNED;B=x`` in launch.sh: no test fed one through the API."""
    config = {"command": ["/bin/true"], "port": 8999, "env": {name: "x"}}
    result = AIMDockerManager().run_command_directly(config, "aim-envname", 0, timeout=5)
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert "is not a variable name" in result["error"]["message"]
    _nothing_written(api_env, "aim-envname")


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES[:4], ids=range(4))
def test_run_command_directly_refuses_a_plan_with_a_hostile_env_name(
    api_env: Path, name: str
) -> None:
    """A ``plan`` configuration (a dict the caller may have edited) is rendered again: its
    env names pass the same check."""
    from ruamel.yaml import YAML

    examples = ROOT / "examples"
    recipe = YAML(typ="safe").load(
        (examples / "recipes/models/aimc-examples/tiny-llama.yaml").read_text()
    )
    recipe["weights"]["fp32"]["path"] = str(examples / "models/tiny-llama")
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1)
    assert config is not None
    plan = json.loads(config["files"]["manifest.json"])["plan"]
    plan["env"] = {name: {"value": "x", "layer": "user", "source": "test"}}
    result = AIMDockerManager().run_command_directly({"plan": plan}, "aim-envplan", 1, timeout=5)
    assert result["success"] is False, result
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert "is not a variable name" in result["error"]["message"]
    _nothing_written(api_env, "aim-envplan")


def _plan_with_env(launcher: str, name: str) -> Plan:
    plan = make_plan(
        Catalog.default(), Request(model="Qwen/Qwen3-8B", launcher=launcher, sets=("env.A=1",)),
        "h100",
    )  # fmt: skip
    setting: Setting = plan.env["A"]
    return dataclasses.replace(plan, env={name: setting})


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
@pytest.mark.parametrize("launcher", ["process", "docker"])
def test_every_renderer_refuses_a_hostile_env_name(launcher: str, name: str) -> None:
    """launch.sh, aim.env and compose.yaml (``render``) and, for a container, the Kubernetes
    manifests (``render_k8s``) refuse a plan whose env name is not a variable name, even
    one that did not come through :func:`aimc.plan.resolve.make_plan`."""
    plan = _plan_with_env(launcher, name)
    with pytest.raises(ConfigError, match="is not a variable name"):
        render(plan, "test")
    if launcher == "docker":
        with pytest.raises(ConfigError, match="is not a variable name"):
            render_k8s(plan, "test")


def test_a_valid_env_name_renders_everywhere() -> None:
    """The refusals above are about the name: the same plan with a valid one renders."""
    for launcher in ("process", "docker"):
        plan = _plan_with_env(launcher, "AIM_OK")
        files = render(plan, "test")
        assert "export AIM_OK=1" in files["launch.sh"]
        assert "AIM_OK=1" in files["aim.env"].splitlines()
    assert "AIM_OK" in render_k8s(plan, "test")["deployment.yaml"]


def test_compile_refuses_a_hostile_env_name_from_every_source(cli, tmp_path: Path) -> None:
    """--set, --config and a recipe file: refused (exit 2), no folder written."""
    from ruamel.yaml import YAML

    yaml = YAML()
    recipe = yaml.load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    recipe["defaults"]["env"] = {"A\n": "x"}
    (tmp_path / "r" / "models" / "Qwen").mkdir(parents=True)
    with (tmp_path / "r" / "models" / "Qwen" / "Qwen3-8B.yaml").open("w") as f:
        yaml.dump(recipe, f)
    (tmp_path / "config.json").write_text(json.dumps({"env": {"A;touch PWNED;B": "x"}}))
    base = ("compile", "Qwen/Qwen3-8B", "--target", "h100")
    for extra in (
        ("--set", "env.A;touch PWNED;B=x"),
        ("--config", "config.json"),
        ("--recipes", "r"),
        ("--config", "config.json", "--emit", "k8s", "--launcher", "docker"),
    ):
        out = tmp_path / "out"
        result = cli(*base, *extra, "-o", str(out), cwd=tmp_path)
        assert result.code == 2, (extra, result.err)
        assert "Traceback" not in result.err
        assert not out.exists()
    assert not list(tmp_path.rglob("PWNED"))


# --- masking in every reporter -------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_an_error_echoing_a_token_masks_it(cli, tmp_path: Path, fmt: str, log_format: str) -> None:
    """Before issue 22 nothing failed when the JSON error report stopped masking:
    ``compile hf_<token>/x --format json`` printed the token."""
    out = tmp_path / "out"
    result = cli(
        "compile", f"{TOKEN}/x", "--target", "h100", "-o", str(out), "--format", fmt,
        env={"LOG_FORMAT": log_format},
    )  # fmt: skip
    assert result.code == 2, result.err
    assert TOKEN not in result.out + result.err
    assert "hf_***/x" in result.out + result.err
    if fmt == "json":
        error = json.loads(result.out)["error"]
        assert error["message"] == "no recipe for model 'hf_***/x'"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_value_of_a_secret_variable_is_masked_in_an_error(
    cli, tmp_path: Path, fmt: str
) -> None:
    """Not token-shaped, but the caller's HF_TOKEN: masked all the same."""
    secret = "plainsecret123"
    result = cli(
        "compile", f"{secret}/x", "--target", "h100", "-o", str(tmp_path / "o"), "--format", fmt,
        env={"HF_TOKEN": secret},
    )  # fmt: skip
    assert result.code == 2
    assert secret not in result.out + result.err
    assert "***/x" in result.out + result.err


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("fmt", ["json", "text", "github"])
def test_validate_never_echoes_a_token_from_a_file(
    cli, tmp_path: Path, fmt: str, log_format: str
) -> None:
    """Before issue 22 ``validate`` printed a token-shaped key of a recipe whole, in its
    text and GitHub annotations and in the JSON report's ``data`` (only the JSON error
    summary masked it): a CI log would show a token pasted into a recipe."""
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    text = re.sub(r"(?m)^  context_length: .*$", f"  {TOKEN}: 1", text, count=1)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "Qwen3-8B.yaml").write_text(text)
    result = cli("validate", "v", "--format", fmt, cwd=tmp_path, env={"LOG_FORMAT": log_format})
    assert result.code == 2, result.err
    assert TOKEN not in result.out + result.err
    assert "unknown key 'hf_***'" in result.out + result.err
    if fmt == "json":
        (diagnostic,) = json.loads(result.out)["data"]["diagnostics"]
        assert diagnostic["message"] == "unknown key 'hf_***'"
        assert diagnostic["pointer"] == "/defaults/hf_***"


# --- compile --check and files aimc did not write ------------------------------------------

#: Files aimc writes into some folder, never into a single-node vLLM process folder.
STRAY = ["launch-worker.sh", "sglang.yaml", "deployment.yaml", "leaderworkerset.yaml",
         "manifest.aimc"]  # fmt: skip


@pytest.mark.parametrize("stray", STRAY)
def test_check_reports_a_file_it_would_not_write(cli, tmp_path: Path, stray: str) -> None:
    """Before issue 22 nothing failed when ``--check`` ignored files that should not be
    there: a folder with a stray ``launch-worker.sh`` was "up to date"."""
    out = tmp_path / "out"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "--launcher", "process", "-o", str(out))
    assert cli(*args).code == 0
    assert not (out / stray).exists()
    assert cli(*args, "--check").code == 0
    (out / stray).write_text("#!/bin/sh\nexec evil\n")
    text = cli(*args, "--check")
    assert text.code == 1
    assert text.out == f"--- {out / stray}\n+++ (not generated)\n@@ unexpected file @@\n"
    assert "up to date" not in text.out + text.err
    as_json = cli(*args, "--check", "--format", "json")
    assert as_json.code == 1
    body = json.loads(as_json.out)
    assert body["success"] is False and f"{out / stray}" in body["data"]["diff"]
    github = cli(*args, "--check", "--format", "github", cwd=tmp_path)
    assert github.code == 1
    assert f"::error file=out/{stray}," in github.out


def test_stale_and_diff_name_an_extra_file_and_only_it(tmp_path: Path) -> None:
    files = compile_plan(
        make_plan(Catalog.default(), Request(model="Qwen/Qwen3-8B", launcher="process"), "h100"),
        Request(model="Qwen/Qwen3-8B", launcher="process"),
        "h100",
    ).files
    from aimc.core.write import write_artifacts

    out = tmp_path / "out"
    write_artifacts(out, files)
    assert stale_artifacts(out, files) == [] and diff_artifacts(out, files) == ""
    (out / "server.log").write_text("a run's log is not an artifact\n")
    assert stale_artifacts(out, files) == [] and diff_artifacts(out, files) == ""
    (out / "launch-worker.sh").write_text("x\n")
    assert stale_artifacts(out, files) == ["launch-worker.sh"]
    diff = diff_artifacts(out, files)
    assert diff == f"--- {out / 'launch-worker.sh'}\n+++ (not generated)\n@@ unexpected file @@\n"


# --- what bench/mutation.py found left unchecked in the reporters -----------------------


@pytest.mark.parametrize(
    "args",
    [
        ("compile", "no-such/model", "--target", "h100", "--format", "text"),
        ("compile", "no-such/model", "--target", "h100", "--format", "github"),
        ("list", "models", "--format", "yaml", "--recipes", "/nonexistent/aimc-recipes"),
        ("list", "models", "--format", "table", "--recipes", "/nonexistent/aimc-recipes"),
    ],
)
def test_only_format_json_puts_an_error_on_stdout(cli, tmp_path: Path, args) -> None:
    """Every other format (``github``, ``table``, ``text``, ``yaml``: before and after
    ``json`` in sort order) reports an error on stderr, as a log line, stdout empty."""
    env = {"LOG_FORMAT": "json"}
    out = ("-o", str(tmp_path / "o")) if args[0] == "compile" else ()
    result = cli(*args, *out, env=env)
    assert result.code == 2, result.err
    assert result.out == ""
    (record,) = [json.loads(line) for line in result.err.splitlines() if '"ERROR"' in line]
    assert record["code"] == "CONFIGURATION_ERROR"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_summary_line_is_the_count_of_every_diagnostic(
    capsys, monkeypatch, log_format: str
) -> None:
    from aimc.cli.report import print_diagnostics
    from aimc.core.diagnostics import Diagnostic

    monkeypatch.setenv("LOG_FORMAT", log_format)
    print_diagnostics(
        [Diagnostic("a.yaml", 1, 1, "first"), Diagnostic("a.yaml", 2, 1, "second"),
         Diagnostic("a.yaml", 3, 1, "third", severity="warning")],
        summary=True,
    )  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    last = json.loads(lines[-1])["message"] if log_format == "json" else lines[-1]
    assert last == "2 errors, 1 warning in 1 file"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_error_s_details_are_printed_and_masked(capsys, monkeypatch, log_format: str) -> None:
    from aimc.cli.report import print_error, set_format

    monkeypatch.setenv("LOG_FORMAT", log_format)
    set_format("text")
    print_error(ConfigError(f"failed {TOKEN}", hint=f"h {TOKEN}", details=f"one\ntwo {TOKEN}"))
    err = capsys.readouterr().err
    assert TOKEN not in err
    if log_format == "text":
        assert err.splitlines() == [
            "error: failed hf_***", "hint: h hf_***", "details:", "  one", "  two hf_***"
        ]  # fmt: skip
    else:
        (record,) = [json.loads(line) for line in err.splitlines()]
        assert (record["message"], record["hint"]) == ("failed hf_***", "h hf_***")
        assert record["details"] == "one\ntwo hf_***"


def test_the_json_error_document_is_exactly_its_schema_s_shape(capsys) -> None:
    from aimc.cli.report import print_error, set_format

    set_format("json")
    try:
        print_error(
            ConfigError(f"a\nb {TOKEN}", hint="c\nd", details=f"e\nf {TOKEN}"), data={"k": 1}
        )
    finally:
        set_format("table")
    captured = capsys.readouterr()
    assert captured.err == ""
    body = json.loads(captured.out)
    assert captured.out == json.dumps(body, indent=2) + "\n"
    assert list(body) == ["success", "error", "data", "timestamp"]
    assert body["success"] is False
    assert body["error"] == {
        "code": "CONFIGURATION_ERROR",
        "message": "a\\nb hf_***",
        "hint": "c\\nd",
        "details": "e\nf hf_***",
    }
    assert body["data"] == {"k": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_log_line_is_on_stderr_in_its_format(capsys, monkeypatch, log_format: str) -> None:
    from aimc.core.log import line

    monkeypatch.setenv("LOG_FORMAT", log_format)
    line("warning", f"m {TOKEN}", "WARNING", hint="h", rule="r")
    line("note", "n", "INFO", text=f"shown as is {TOKEN}")
    line("error", "e", "ERROR")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    if log_format == "text":
        assert lines == ["warning: m hf_***", "hint: h", "shown as is hf_***", "error: e"]
        return
    records = [json.loads(line) for line in lines]
    assert [(r["level"], r["message"]) for r in records] == [
        ("WARNING", "m hf_***"), ("INFO", "n"), ("ERROR", "e")
    ]  # fmt: skip
    assert (records[0]["hint"], records[0]["rule"]) == ("h", "r")
    assert "text" not in records[1]


def test_a_diagnostic_is_one_masked_line_in_every_field() -> None:
    from aimc.core.diagnostics import Diagnostic

    d = Diagnostic("a.yaml", 1, 2, f"m\n{TOKEN}", pointer=f"/x/{TOKEN}", hint=f"h\n{TOKEN}")
    assert (d.message, d.pointer, d.hint) == ("m\\nhf_***", "/x/hf_***", "h\\nhf_***")
    assert Diagnostic("a.yaml", 1, 2, "m").hint is None


# --- Kubernetes names at their bounds ------------------------------------------------------


def test_k8s_name_is_kept_up_to_the_limit_then_cut_with_five_hex_digits() -> None:
    import hashlib

    from aimc.emit.k8s_pod import k8s_name

    assert k8s_name("a" * 10, "-x", 12) == "a" * 10 + "-x"
    digest = hashlib.sha256(b"a" * 11).hexdigest()[:5]
    assert k8s_name("a" * 11, "-x", 12) == f"aaaa-{digest}-x"
    assert len(k8s_name("b" * 80, "-leader", 63)) == 63


@pytest.mark.parametrize("replicas", [1, 9, 10, 11, 100, 101])
@pytest.mark.parametrize("nodes", [1, 2, 10, 11])
def test_lws_name_is_the_longest_the_controller_s_names_allow(replicas: int, nodes: int) -> None:
    """Derived from the controller's names, not from lws_name's arithmetic: worker
    StatefulSets ``NAME-GROUP`` at most 52 characters, worker pods ``NAME-GROUP-INDEX`` at
    most 63, for the largest group and index; the name is as long as both allow."""
    import hashlib

    from aimc.emit.k8s_lws import lws_name

    plan = dataclasses.replace(_plan_with_env("docker", "A"), name="m" * 80, nodes=nodes)
    group, index = str(replicas - 1), str(nodes - 1)
    longest = max(
        n for n in range(64) if n + 1 + len(group) <= 52 and n + 2 + len(group) + len(index) <= 63
    )
    digest = hashlib.sha256(b"m" * 80).hexdigest()[:5]
    assert lws_name(plan, replicas) == "m" * (longest - 6) + "-" + digest


def test_check_names_a_launch_sh_that_lost_its_mode_and_a_file_without_a_last_newline(
    tmp_path: Path,
) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "launch.sh").chmod(0o644)
    assert stale_artifacts(out, files) == ["launch.sh"]
    assert diff_artifacts(out, files) == f"{out / 'launch.sh'}: not executable\n"
    (out / "launch.sh").chmod(0o755)
    (out / "aim.env").write_text(files["aim.env"].rstrip("\n"))
    assert stale_artifacts(out, files) == ["aim.env"]
    diff = diff_artifacts(out, files)
    assert diff.endswith("\n") and "\n\\ No newline" not in diff
    assert all(line.endswith("\n") for line in diff.splitlines(keepends=True))
    removed = [line for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---"]
    assert removed == ["-" + files["aim.env"].rstrip("\n").splitlines()[-1]]  # the last line only


def test_check_names_every_difference_missing_extra_and_changed(tmp_path: Path) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "aim.env").unlink()
    (out / "aaa-extra").write_text("x\n")
    (out / "launch-worker.sh").write_text("x\n")
    (out / "vllm.yaml").write_text("edited: true\n")
    assert stale_artifacts(out, files) == ["aaa-extra", "aim.env", "launch-worker.sh", "vllm.yaml"]
    diff = diff_artifacts(out, files)
    assert f"--- /dev/null\n+++ {out / 'aim.env'} (generated)\n" in diff
    for extra in ("aaa-extra", "launch-worker.sh"):
        assert f"--- {out / extra}\n+++ (not generated)\n@@ unexpected file @@\n" in diff
    assert f"--- {out / 'vllm.yaml'}\n+++ {out / 'vllm.yaml'} (generated)\n" in diff
    assert "-edited: true\n" in diff


def test_check_reads_a_file_that_is_not_utf8_as_stale(tmp_path: Path) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "vllm.yaml").write_bytes(b"\xff\xfe not text")
    assert stale_artifacts(out, files) == ["vllm.yaml"]
    assert "\n-<unreadable>\n" in diff_artifacts(out, files)


def test_an_up_to_date_check_is_text_in_text_and_github_formats(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    assert cli(*args).code == 0
    for fmt in ("text", "github"):
        result = cli(*args, "--check", "--format", fmt)
        assert (result.code, result.out) == (0, f"{out} is up to date\n"), fmt
    result = cli(*args, "--check", "--format", "json")
    assert json.loads(result.out)["message"] == f"{out} is up to date"


def test_the_check_diff_masks_a_token_in_an_edited_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compile --check`` prints the diff of the folder's own files into a CI log: a token
    someone pasted into an artifact, or the caller's HF_TOKEN value, never shows."""
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    shaped = "hf_" + "A1b2C3d4" * 4
    mine = "my-own-secret-value-42"
    monkeypatch.setenv("HF_TOKEN", mine)
    with (out / "launch.sh").open("a") as f:
        f.write(f"export HF_TOKEN={shaped}\n# {mine}\n")
    (out / "stray.txt").write_text(f"{shaped}\n")
    diff = diff_artifacts(out, files)
    assert "-export HF_TOKEN=hf_***\n" in diff and "-# ***\n" in diff
    assert shaped not in diff and mine not in diff
