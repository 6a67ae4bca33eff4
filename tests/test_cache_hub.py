"""`aim-engine cache download|list|remove|prune` against a local hub (tests/fakes/hub.py).

Every download goes to a stand-in hub on 127.0.0.1 (``HF_ENDPOINT``): the real CLI in a
subprocess fetches a tiny repository the test builds, shows progress, resumes after a kill,
refetches with ``--force``, needs ``HF_TOKEN`` for a gated repository (and never writes or
prints it), refuses a repository larger than the free space, then lists it complete,
removes and prunes it. No test reaches the real hub.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Result, run_cli
from tests.fakes.hub import FakeHub

REPO = "aimc-test/tiny"
#: An index naming two shards, and the shards: what a sharded checkpoint looks like.
INDEX = json.dumps(
    {"metadata": {}, "weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
)
FILES = {
    "config.json": b'{"model_type": "llama"}',
    "generation_config.json": b"{}",
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b"{}",
    "model.safetensors.index.json": INDEX.encode(),
    "model-1.safetensors": bytes(range(256)) * 64,  # 16 KiB
    "model-2.safetensors": bytes(reversed(range(256))) * 256,  # 64 KiB: finishes last
    "pytorch_model.bin": b"never fetched",
    "original/consolidated.00.pth": b"never fetched",
    "README.md": b"not read by vLLM",
}
WANTED = sorted(set(FILES) - {"pytorch_model.bin", "original/consolidated.00.pth", "README.md"})


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub().start()
    server.add(REPO, FILES)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path, hub: FakeHub) -> dict[str, str]:
    return {
        "CACHE_DIR": str(tmp_path / "cache"),
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "LOG_FORMAT": "json",
    }


def _cache(env: dict[str, str], *args: str) -> Result:
    return run_cli("cache", *args, env=env)


def _snapshot(env: dict[str, str], commit: str) -> Path:
    return Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit


def test_download_fetches_only_what_vllm_reads_and_lists_it_complete(hub, env) -> None:
    commit = hub.repos[REPO].commit
    result = _cache(env, "download", REPO, "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert (data["revision"], data["complete"], data["missing"]) == (commit, True, [])
    snapshot = _snapshot(env, commit)
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*")) == WANTED
    for name in WANTED:
        assert (snapshot / name).read_bytes() == FILES[name]
    assert hub.gets(REPO, "pytorch_model.bin") == hub.gets(REPO, "consolidated.00.pth") == 0
    expected = sum(len(FILES[n]) for n in WANTED) - len(FILES["tokenizer_config.json"])
    # generation_config.json and tokenizer_config.json hold the same bytes: one blob.
    assert data["size_bytes"] == sum(len(FILES[n]) for n in WANTED)

    rows = json.loads(_cache(env, "list", "--format", "json").out)["data"]
    assert [(r["model"], r["status"], r["size_bytes"]) for r in rows] == [
        (REPO, "complete", expected)
    ]
    stats = json.loads(_cache(env, "stats", "--format", "json").out)["data"]
    assert (stats["complete"], stats["size_bytes"]) == (1, expected)
    # Cached: a second download fetches nothing.
    before = len(hub.requests)
    assert _cache(env, "download", REPO).code == 0
    assert not [r for r in hub.requests[before:] if r[0] == "GET" and "/resolve/" in r[1]]


def test_progress_records_on_stderr_with_log_format_json(hub, env) -> None:
    hub.slow = 0.05  # 64 chunks of 1 KiB: about 3.2 s (records come every 1 s)
    result = _cache(env, "download", REPO)
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    progress = [r["progress"] for r in records if "progress" in r]
    total = sum(len(FILES[n]) for n in WANTED)
    assert len(progress) >= 2, result.err  # at least one while running, and the last
    assert all(p["model"] == REPO and p["total_bytes"] == total for p in progress)
    done = [p["done_bytes"] for p in progress]
    assert done == sorted(done) and done[-1] == total and progress[-1]["percent"] == 100.0
    assert any(0 < d < total for d in done), done  # one record while bytes arrived


def test_a_download_killed_midway_resumes_to_the_same_bytes(hub, env, tmp_path) -> None:
    hub.slow = 0.1  # the second shard takes about 6 s: time to catch it halfway
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimc", "cache", "download", REPO],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AIMC_")}, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        blobs = Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}" / "blobs"
        deadline = time.monotonic() + 30
        # Wait for the first shard finished and a quarter of the second one received.
        while time.monotonic() < deadline:
            names = os.listdir(blobs) if blobs.is_dir() else []
            finished = [n for n in names if len(n) == 64 and "." not in n]
            part = [blobs / n for n in names if n.endswith(".incomplete")]
            with contextlib.suppress(FileNotFoundError):  # renamed meanwhile: look again
                if finished and part and part[0].stat().st_size >= 16 * 1024:
                    break
            time.sleep(0.02)
        else:
            pytest.fail("the download never got halfway")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    commit = hub.repos[REPO].commit
    listed = json.loads(_cache(env, "list", "--format", "json").out)["data"][0]
    kept = sum(p.stat().st_size for p in blobs.glob("*.incomplete"))
    assert 16 * 1024 <= kept < len(FILES["model-2.safetensors"])
    assert listed["problems"] == [], listed
    assert (listed["status"], listed["incomplete_bytes"]) == ("incomplete", kept)
    assert listed["size_bytes"] == len(FILES["model-1.safetensors"]) + kept
    assert listed["missing"][0] == "config.json"  # nothing linked yet: all is listed
    fetched = {n: hub.gets(REPO, n) for n in ("model-1.safetensors", "model-2.safetensors")}
    hub.slow = 0
    result = _cache(env, "download", REPO, "--format", "json")
    assert result.code == 0, result.err
    snapshot = _snapshot(env, commit)
    for name in WANTED:
        assert (snapshot / name).read_bytes() == FILES[name]
    # The shard finished before the kill was not fetched again; the one cut midway was
    # fetched from the byte where it stopped.
    again = {n: hub.gets(REPO, n) - fetched[n] for n in fetched}
    assert again == {"model-1.safetensors": 0, "model-2.safetensors": 1}, again
    assert hub.ranges[-1] == ("model-2.safetensors", kept)
    assert json.loads(_cache(env, "list", "--format", "json").out)["data"][0]["status"] == (
        "complete"
    )
    assert not [n for n in os.listdir(blobs) if "incomplete" in n]  # nothing left over


def test_force_fetches_every_file_again(hub, env) -> None:
    assert _cache(env, "download", REPO).code == 0
    first = hub.gets(REPO, "model-1.safetensors")
    assert _cache(env, "download", REPO).code == 0
    assert hub.gets(REPO, "model-1.safetensors") == first
    result = _cache(env, "download", REPO, "--force")
    assert result.code == 0, result.err
    assert hub.gets(REPO, "model-1.safetensors") == first + 1


def test_a_gated_repository_needs_hf_token_and_never_stores_it(hub, env, tmp_path) -> None:
    hub.add("aimc-test/gated", FILES, gated=True)
    denied = _cache(env, "download", "aimc-test/gated", "--format", "json")
    assert denied.code == 7, denied.err
    assert json.loads(denied.out)["error"]["code"] == "PERMISSION_DENIED"
    assert "HF_TOKEN" in denied.out  # the hint says how to give it

    result = run_cli("cache", "download", "aimc-test/gated", env={**env, "HF_TOKEN": hub.token})
    assert result.code == 0, result.err
    assert hub.token not in result.out + result.err
    for file in tmp_path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            assert hub.token.encode() not in file.read_bytes(), file


def test_a_repository_larger_than_the_free_space_is_refused_before_any_byte(hub, env) -> None:
    hub.add("aimc-test/huge", FILES, advertise={"model-1.safetensors": 2**59})
    result = _cache(env, "download", "aimc-test/huge", "--format", "json")
    assert result.code == 5, result.err
    error = json.loads(result.out)["error"]
    assert error["code"] == "CACHE_ERROR"
    needed = 2**59 + sum(len(FILES[n]) for n in WANTED if n != "model-1.safetensors")
    assert f"needs 512.0 PiB ({needed} bytes) but" in error["message"]
    assert "bytes) free" in error["message"]
    assert hub.gets("aimc-test/huge", "model-2.safetensors") == 0


@pytest.mark.parametrize(
    "name",
    [
        "a/../../escape.safetensors",  # refused by huggingface_hub itself: exit 6 too
        "/tmp/escape.safetensors",
        "escape\n.safetensors",
    ],
)
def test_a_hostile_file_name_from_the_hub_is_refused(hub, env, tmp_path, name) -> None:
    hub.add("aimc-test/hostile", {**FILES, name: b"owned"})
    result = _cache(env, "download", "aimc-test/hostile", "--format", "json")
    assert result.code == 6, result.err
    assert "unsafe file name" in json.loads(result.out)["error"]["message"]
    assert not list(tmp_path.rglob("escape*"))
    assert not [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]


def test_remove_and_prune(hub, env) -> None:
    old = hub.repos[REPO].commit
    assert _cache(env, "download", REPO).code == 0
    new = hub.add(REPO, {**FILES, "config.json": b'{"model_type": "llama", "v": 2}'})
    assert _cache(env, "download", REPO).code == 0
    row = json.loads(_cache(env, "list", "--format", "json").out)["data"][0]
    assert row["revisions"] == sorted([old[:12], new[:12]]) and row["refs"] == ["main"]

    refused = _cache(env, "prune", "--format", "json")  # no --yes, no terminal
    assert refused.code == 2 and _snapshot(env, old).is_dir()

    pruned = _cache(env, "prune", "--yes", "--format", "json")
    assert pruned.code == 0, pruned.err
    assert json.loads(pruned.out)["data"]["revisions"] == [old[:12]]
    assert not _snapshot(env, old).exists() and _snapshot(env, new).is_dir()
    assert _cache(env, "prune", "--yes").out.strip() == "nothing to remove"

    missing = _cache(env, "remove", "no-such/model", "--yes", "--format", "json")
    assert missing.code == 5
    removed = _cache(env, "remove", REPO, "--yes", "--format", "json")
    assert removed.code == 0, removed.err
    assert json.loads(removed.out)["data"]["models"] == [REPO]
    assert json.loads(_cache(env, "list", "--format", "json").out)["data"] == []


def _half_cached_box(tmp_path: Path) -> Any:
    """A stand-in GPU machine whose cache holds Qwen3-32B with only its config.json."""
    from tests.helpers.gpu_tools import GPUBox

    (tmp_path / "box").mkdir()
    box = GPUBox(tmp_path / "box")
    snapshot = box.tmp / "cache" / "models--Qwen--Qwen3-32B" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("ab" * 20)
    return box


def test_launch_with_an_incomplete_cached_model_and_no_hub_fails_fast(hub, env, tmp_path) -> None:
    """The missing files are named, nothing is started, exit 6."""
    box = _half_cached_box(tmp_path)
    started = time.monotonic()
    result = box.run("launch", "Qwen/Qwen3-32B", "8", "--format", "json")
    try:
        assert result.code == 6, result.err + result.out
        message = json.loads(result.out)["error"]["message"]
        assert "incomplete" in message and "model.safetensors" in message and "tokenizer" in message
        assert time.monotonic() - started < 30
        assert not (box.tmp / "pids.json").exists()
    finally:
        box.stop_all()


def test_a_hub_sending_more_than_it_announced_is_cut_off(hub, env, tmp_path) -> None:
    hub.add("aimc-test/liar", FILES, advertise={"model-2.safetensors": 100})
    result = _cache(env, "download", "aimc-test/liar", "--format", "json")
    assert result.code == 6, result.err
    assert "sent more than the 100 bytes it announced" in json.loads(result.out)["error"]["message"]
    sizes = [p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert max(sizes) < len(FILES["model-2.safetensors"])  # never the whole lie on disk


def test_absurd_sizes_and_huge_headers_from_the_hub_are_network_errors(hub, env) -> None:
    hub.add("aimc-test/absurd", FILES, advertise={"model-1.safetensors": 2**70})
    result = _cache(env, "download", "aimc-test/absurd", "--format", "json")
    assert result.code == 6, result.err
    assert "absurd size" in json.loads(result.out)["error"]["message"]

    hub.extra_headers = {"X-Junk": "x" * 2**20}
    result = _cache(env, "download", REPO, "--format", "json")
    assert result.code == 6, result.err
    assert "Traceback" not in result.err and len(result.out) < 2000
    assert not (Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}").exists()


def test_a_progress_bar_on_a_terminal(hub, env) -> None:
    """On a terminal the bar is redrawn on one line (``\\r``) and ends at 100%."""
    import pty

    hub.slow = 0.005  # 80 chunks: about 0.4 s, two redraws at least
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimc", "cache", "download", REPO],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AIMC_")}, **env},
        stdout=subprocess.DEVNULL,
        stderr=child,
    )
    os.close(child)
    out = b""
    try:
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        proc.wait(timeout=30)
        os.close(main)
    assert proc.returncode == 0, out
    text = out.decode().replace("\r\n", "\n")  # the terminal's line ends
    assert text.count("\r[") >= 2 and "{" not in text  # a bar, not records
    last = text.rsplit("\r", 1)[1]
    assert last.startswith("[" + "#" * 30 + "]") and "(100.0%)" in last


def test_launch_completes_an_incomplete_cached_model_then_starts_offline(hub, tmp_path) -> None:
    box = _half_cached_box(tmp_path)
    hub.add("Qwen/Qwen3-32B", {k: v for k, v in FILES.items() if "original" not in k})
    box.env["HF_ENDPOINT"] = hub.url
    try:
        result = box.run("launch", "Qwen/Qwen3-32B", "8", "--format", "json")
        assert result.code == 0, result.err + result.out
        assert hub.gets("Qwen/Qwen3-32B", "model-2.safetensors") == 1
        pids = json.loads((box.tmp / "pids.json").read_text())
        environ = Path(f"/proc/{pids['server']}/environ").read_bytes().split(b"\0")
        assert b"HF_HUB_OFFLINE=1" in environ
    finally:
        box.stop_all()


def test_download_of_a_recipe_precision_and_of_a_pinned_revision(hub, env) -> None:
    """``--precision fp8`` of a recipe fetches its fp8 repository; ``--revision`` a commit."""
    fp8 = hub.add("Qwen/Qwen3-8B-FP8", FILES)
    result = _cache(env, "download", "Qwen/Qwen3-8B", "--precision", "fp8", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert (data["model"], data["revision"]) == ("Qwen/Qwen3-8B-FP8", fp8)
    listed = json.loads(_cache(env, "list", "--format", "json").out)["data"]
    assert listed[0]["recipes"] == ["Qwen/Qwen3-8B fp8"]

    commit = hub.repos[REPO].commit
    result = _cache(env, "download", REPO, "--revision", commit, "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["path"].endswith(f"snapshots/{commit}")
    assert not [r for r in hub.requests if r[1].endswith("/revision/main") and REPO in r[1]]


# -- hostile revisions, hubs and cache contents -------------------------------------------


@pytest.mark.parametrize(
    "revision",
    ["../../../victim.txt", "main/../../../../victim.txt", "{tmp}/victim.txt"],
    ids=["dotdot", "branch-dotdot", "absolute"],
)
def test_a_revision_that_is_a_path_is_refused_before_the_hub_is_asked(
    hub, env, tmp_path, revision
) -> None:
    """Before: huggingface_hub wrote the hub's answer (a commit, or any text a hostile hub
    chose) to ``refs/<revision>``, here the file beside the cache."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    revision = revision.format(tmp=tmp_path)
    result = _cache(env, "download", REPO, "--revision", revision, "--format", "json")
    assert result.code == 2, result.err
    error = json.loads(result.out)["error"]
    assert error["code"] == "CONFIGURATION_ERROR"
    assert "is not a branch, tag or commit name" in error["message"]
    assert victim.read_text() == "precious\n"
    assert hub.requests == []


@pytest.mark.parametrize("sha", ["zzzz", "../../../../escape", "export PWNED=1"])
def test_a_hub_naming_no_commit_hash_is_refused_before_any_file(hub, env, tmp_path, sha) -> None:
    """Before: the hub's ``sha`` became a path (``snapshots/<sha>``) and a ref's text, and
    ``zzzz`` was a successful download."""
    hub.info_sha = sha
    result = _cache(env, "download", REPO, "--format", "json")
    assert result.code == 6, result.err
    error = json.loads(result.out)["error"]
    assert error["message"] == f"the hub named no commit hash for {REPO} at main"
    assert not [r for r in hub.requests if "/resolve/" in r[1] or "/tree/" in r[1]]
    assert not list(tmp_path.rglob("escape*"))
    assert not (Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}").exists()


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_a_part_file_that_is_not_a_file_is_replaced_never_written_through(
    hub, env, tmp_path, kind
) -> None:
    """``blobs/<etag>.resume.incomplete`` as a link, a FIFO or a folder: the download starts
    that file over. Before: a link's target was overwritten and made 0644 (then the link
    became the blob), a FIFO hung the command, a folder was exit 5."""
    import hashlib

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    blobs = Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}" / "blobs"
    blobs.mkdir(parents=True)
    etag = hashlib.sha256(FILES["model-2.safetensors"]).hexdigest()
    part = blobs / f"{etag}.resume.incomplete"
    if kind == "link":
        part.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(part)
    else:
        part.mkdir()
    result = run_cli("cache", "download", REPO, env=env, timeout=30)
    assert result.code == 0, result.err
    assert victim.read_text() == "precious\n" and victim.stat().st_mode & 0o777 == 0o600
    assert not (blobs / etag).is_symlink() and not part.exists() and not part.is_symlink()
    snapshot = _snapshot(env, hub.repos[REPO].commit)
    assert (snapshot / "model-2.safetensors").read_bytes() == FILES["model-2.safetensors"]


def test_a_hub_announcing_another_size_after_the_free_space_check_is_refused(hub, env) -> None:
    """Before: the size of a second request was believed, so a hub could pass the free-space
    check with an honest listing and then send any number of bytes."""
    hub.resize = {"model-2.safetensors": 2**50}
    result = _cache(env, "download", REPO, "--format", "json")
    assert result.code == 6, result.err
    error = json.loads(result.out)["error"]
    size = len(FILES["model-2.safetensors"])
    assert error["message"] == (
        f"the hub listed {size} bytes for {REPO}/model-2.safetensors, then announced {2**50}"
    )
    assert hub.gets(REPO, "model-2.safetensors") == 0


@pytest.mark.parametrize(
    "answer",
    [(500, {}), (302, {"Location": "http://localhost:9/elsewhere"})],
    ids=["500", "redirect-to-another-host"],
)
def test_force_with_a_failing_hub_is_a_network_error(hub, env, answer) -> None:
    """Before: huggingface_hub's ``ValueError("Force download failed ...")`` was an internal
    error (exit 1); its cause is what went wrong."""
    hub.head_answers = {"config.json": answer}
    result = _cache(env, "download", REPO, "--force", "--format", "json")
    assert result.code == 6, result.err
    assert json.loads(result.out)["error"]["code"] == "NETWORK_ERROR"
    assert "Traceback" not in result.err


def test_a_wrong_hf_token_is_a_permission_error_that_never_shows_it(hub, env) -> None:
    """The hub's 401 "Invalid credentials": exit 7 naming HF_TOKEN (before: exit 6)."""
    hub.reject_bad_tokens = True
    token = "hf_wrongwrongwrongwrongwrong0000"
    result = run_cli("cache", "download", REPO, "--format", "json", env={**env, "HF_TOKEN": token})
    assert result.code == 7, result.err
    error = json.loads(result.out)["error"]
    assert error["code"] == "PERMISSION_DENIED" and "check HF_TOKEN" in error["message"]
    assert token not in result.out + result.err


def test_a_branch_s_ref_is_written_in_the_cache_and_never_through_a_link(hub, env, tmp_path):
    """aimc writes ``refs/<revision>`` itself (the commit it checked): a branch with ``/``
    gets its folders, and a refs folder that is a link is refused (exit 5). Before: it was
    written through the link."""
    commit = hub.repos[REPO].commit
    result = _cache(env, "download", REPO, "--revision", "refs/pr/1", "--format", "json")
    assert result.code == 0, result.err
    refs = Path(env["CACHE_DIR"]) / f"models--{REPO.replace('/', '--')}" / "refs"
    assert (refs / "refs" / "pr" / "1").read_text() == commit
    assert sorted(p.name for p in refs.rglob("*") if p.is_file()) == ["1"]

    hub.add("aimc-test/linked", FILES)
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = Path(env["CACHE_DIR"]) / "models--aimc-test--linked"
    linked.mkdir()
    (linked / "refs").symlink_to(outside)
    result = _cache(env, "download", "aimc-test/linked", "--format", "json")
    assert result.code == 5, result.err
    assert "refs of aimc-test/linked" in json.loads(result.out)["error"]["message"]
    assert list(outside.iterdir()) == []
