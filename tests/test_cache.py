"""`aim-engine cache`: statistics and listing of a Hugging Face cache, offline downloads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.cache import REV, _cached


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    _cached(
        folder,
        "Qwen/Qwen3-8B",
        {"config.json": b"{}", "tokenizer.json": b"[]", "model.safetensors": b"x" * 4096},
    )
    _cached(folder, "org/other", {"config.json": b"{}"})
    return folder


def test_stats(cli, cache: Path) -> None:
    result = cli("cache", "stats", "--format", "json", env={"CACHE_DIR": str(cache)})
    assert result.code == 0
    data = json.loads(result.out)["data"]
    assert (data["models"], data["files"], data["exists"]) == (2, 4, True)
    assert (data["complete"], data["incomplete"], data["broken"]) == (1, 1, 0)
    assert data["size_bytes"] == 2 + 2 + 4096 + 2  # exact: every blob once


def test_stats_of_a_missing_cache(cli, tmp_path: Path) -> None:
    result = cli("cache", "stats", env={"CACHE_DIR": str(tmp_path / "none")})
    assert result.code == 0
    assert "(not created yet)" in result.out and "models:     0 " in result.out


def test_list_with_filter(cli, cache: Path) -> None:
    result = cli(
        "cache", "list", "--filter", "qwen", "--format", "json", env={"CACHE_DIR": str(cache)}
    )
    rows = json.loads(result.out)["data"]
    assert [r["model"] for r in rows] == ["Qwen/Qwen3-8B"]
    assert rows[0]["refs"] == ["main"] and rows[0]["files"] == 3
    assert rows[0]["recipes"] == ["Qwen/Qwen3-8B bf16"]  # the recipe's weights it is


def test_download_of_a_cached_recipe_model_works_offline(cli, cache: Path) -> None:
    result = cli(
        "cache", "download", "Qwen/Qwen3-8B", env={"CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    )
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].endswith(f"snapshots/{REV}")
    assert result.out.splitlines()[1] == "3 files, 4.0 KiB (4100 bytes), complete"


def test_download_offline_of_an_incomplete_cached_model_says_what_is_missing(cli, cache) -> None:
    env = {"CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    result = cli("cache", "download", "org/other", "--format", "json", env=env)
    assert result.code == 6, result.err
    message = json.loads(result.out)["error"]["message"]
    assert "org/other in" in message and "is incomplete (missing: tokenizer" in message
    assert "model.safetensors)" in message


def test_download_offline_of_a_missing_model_is_a_network_error(cli, cache: Path) -> None:
    result = cli(
        "cache",
        "download",
        "Qwen/Qwen3-32B",
        "--format",
        "json",
        env={"CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    assert result.code == 6
    body = json.loads(result.out)
    assert body["error"]["code"] == "NETWORK_ERROR"
    assert "Qwen/Qwen3-32B is not in" in body["error"]["message"]


def test_download_of_a_local_folder_recipe(cli, tmp_path: Path) -> None:
    from tests.conftest import ROOT

    result = cli(
        "cache",
        "download",
        "aimc-examples/tiny-llama",
        "--recipes",
        str(ROOT / "examples/recipes"),
        env={"CACHE_DIR": str(tmp_path / "c"), "HF_HUB_OFFLINE": "1"},
    )
    assert result.code == 2
    assert "weights are a local folder" in result.err


# -- complete, incomplete and broken entries: stats and list as golden files ------------

#: Fixed times for every cached file, so the outputs are the same on any day.
USED, CHANGED = 1767225600, 1767139200  # 2026-01-01, 2025-12-31 00:00 UTC
INDEX = json.dumps({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})


def _mixed_cache(tmp: Path) -> Path:
    """A cache with one entry of each kind: complete, incomplete, broken (three ways)."""
    cache = tmp / "cache"
    sharded = {
        "config.json": b'{"a": 1}',
        "tokenizer.json": b"{}",
        "model.safetensors.index.json": INDEX.encode(),
        "model-1.safetensors": b"1" * 3000,
        "model-2.safetensors": b"2" * 3000,
    }
    _cached(cache, "aimc-test/complete", sharded)
    _cached(cache, "aimc-test/incomplete", {k: v for k, v in sharded.items() if "-2" not in k})
    partial = cache / "models--aimc-test--incomplete" / "blobs" / f"{'e' * 64}.1234abcd.incomplete"
    partial.write_bytes(b"2" * 1000)
    _cached(cache, "aimc-test/dangling", {"config.json": b"{}", "tokenizer.json": b"{}"})
    base = cache / "models--aimc-test--dangling"
    (base / "snapshots" / REV / "model.safetensors").symlink_to("../../blobs/" + "f" * 40)
    (base / "refs" / "dev").write_text("b" * 40)  # a ref to a snapshot that is not there
    outside = tmp / "outside.safetensors"
    outside.write_bytes(b"not the cache's")
    _cached(cache, "aimc-test/escapes", {"config.json": b"{}", "tokenizer.json": b"{}"})
    (cache / "models--aimc-test--escapes" / "snapshots" / REV / "model.safetensors").symlink_to(
        outside
    )
    for file in cache.rglob("*"):
        os.utime(file, (USED, CHANGED), follow_symlinks=False)
    return cache


def _anonymous(text: str, cache: Path) -> str:
    return text.replace(str(cache), "$CACHE_DIR")


@pytest.mark.parametrize("command", ["stats", "list"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_stats_and_list_golden(cli, tmp_path: Path, golden, command: str, fmt: str) -> None:
    cache = _mixed_cache(tmp_path)
    result = cli("cache", command, "--format", fmt, env={"CACHE_DIR": str(cache)})
    assert result.code == 0, result.err
    golden(f"cache/{command}.{'txt' if fmt == 'table' else 'json'}", _anonymous(result.out, cache))


def test_list_says_what_is_missing_and_why_an_entry_is_broken(cli, tmp_path: Path) -> None:
    cache = _mixed_cache(tmp_path)
    rows = json.loads(cli("cache", "list", "--format", "json", env={"CACHE_DIR": str(cache)}).out)
    by_model = {r["model"]: r for r in rows["data"]}
    assert {m: r["status"] for m, r in by_model.items()} == {
        "aimc-test/complete": "complete",
        "aimc-test/dangling": "broken",
        "aimc-test/escapes": "broken",
        "aimc-test/incomplete": "incomplete",
    }
    assert by_model["aimc-test/incomplete"]["missing"] == ["model-2.safetensors"]
    assert by_model["aimc-test/incomplete"]["incomplete_bytes"] == 1000
    assert by_model["aimc-test/complete"]["size_bytes"] == 8 + 2 + len(INDEX) + 6000
    problems = by_model["aimc-test/dangling"]["problems"]
    assert any("model.safetensors is a dangling link" in p for p in problems)
    assert any("ref dev points at missing revision bbbbbbbbbbbb" in p for p in problems)
    assert any("links out of the cache" in p for p in by_model["aimc-test/escapes"]["problems"])


# -- removal never leaves the cache -------------------------------------------------------


def test_remove_unlinks_links_out_of_the_cache_and_never_follows_them(cli, tmp_path) -> None:
    cache = _mixed_cache(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    (cache / "models--evil--folder").symlink_to(victim, target_is_directory=True)
    env = {"CACHE_DIR": str(cache)}
    for model in ("aimc-test/escapes", "evil/folder", "aimc-test/dangling"):
        result = cli("cache", "remove", model, "--yes", "--format", "json", env=env)
        assert result.code == 0, result.err + result.out
    assert (tmp_path / "outside.safetensors").read_bytes() == b"not the cache's"
    assert (victim / "precious").read_text() == "keep me"
    rows = json.loads(cli("cache", "list", "--format", "json", env=env).out)["data"]
    assert [r["model"] for r in rows] == ["aimc-test/complete", "aimc-test/incomplete"]


def test_prune_of_a_detached_revision_linking_out_keeps_the_target(cli, tmp_path) -> None:
    """huggingface_hub's own plan would delete the link's target as a blob."""
    cache = tmp_path / "cache"
    _cached(cache, "aimc-test/model", {"config.json": b"{}", "tokenizer.json": b"{}"})
    outside = tmp_path / "outside.bin"
    outside.write_text("precious")
    detached = cache / "models--aimc-test--model" / "snapshots" / ("c" * 40)
    detached.mkdir()
    (detached / "model.safetensors").symlink_to(outside)
    foreign_blob = tmp_path / "foreign-blob"
    foreign_blob.write_text("not the cache's")
    (cache / "models--aimc-test--model" / "blobs" / ("d" * 40)).symlink_to(foreign_blob)
    (detached / "config.json").symlink_to(Path("../..") / "blobs" / ("d" * 40))
    result = cli("cache", "prune", "--yes", "--format", "json", env={"CACHE_DIR": str(cache)})
    assert result.code == 0, result.err + result.out
    assert json.loads(result.out)["data"]["revisions"] == ["c" * 12]
    assert not detached.exists()
    assert outside.read_text() == "precious" and foreign_blob.read_text() == "not the cache's"
    assert (cache / "models--aimc-test--model" / "snapshots" / REV / "config.json").is_file()


def test_remove_asks_first(cli, tmp_path) -> None:
    cache = _mixed_cache(tmp_path)
    result = cli("cache", "remove", "aimc-test/complete", env={"CACHE_DIR": str(cache)})
    assert result.code == 2 and "--yes" in result.err
    assert (cache / "models--aimc-test--complete").is_dir()


# -- properties: hostile names and sizes -------------------------------------------------

_NAMES = st.lists(
    st.sampled_from(
        ["a", "b", ".", "/", "\\", "\n", "\x00", "-", "_", " ", "..", "é", "x.safetensors"]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(shards=st.lists(_NAMES, min_size=1, max_size=4))
def test_missing_files_never_calls_a_hostile_index_complete(shards: list[str]) -> None:
    """An index naming shards outside the snapshot (``..``, absolute) is never complete,
    and what is reported missing is one line each."""
    import tempfile

    from aimc.modelcache.cache import missing_files

    with tempfile.TemporaryDirectory(prefix="aimc-cache-test-") as tmp:
        snapshot = Path(tmp) / "models--a--b" / "snapshots" / REV
        snapshot.mkdir(parents=True)
        (Path(tmp) / "escape.safetensors").write_text("x")
        for name in ("config.json", "tokenizer.json"):
            (snapshot / name).write_text("{}")
        index = {"weight_map": {str(i): s for i, s in enumerate(shards)}}
        (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
        missing = missing_files(snapshot)
        assert all("\n" not in m and "\x00" not in m for m in missing)
        hostile = [s for s in shards if s.startswith("/") or ".." in s.split("/") or not s]
        if hostile:
            assert missing


class _Info:
    def __init__(self, filename: str, file_size: object) -> None:
        self.filename, self.file_size = filename, file_size


@settings(max_examples=80, deadline=None)
@given(name=_NAMES, size=st.one_of(st.none(), st.integers(-(2**70), 2**70)))
def test_hostile_hub_listings_are_refused(name: str, size: int | None) -> None:
    from aimc.core.errors import NetworkError
    from aimc.modelcache.download import _checked_listing

    try:
        _checked_listing("a/b", [_Info(name, size)])
    except NetworkError as exc:
        assert "\n" not in exc.message
        return
    parts = name.split("/")
    assert name and not name.startswith("/") and ".." not in parts and "." not in parts
    assert "\n" not in name and "\x00" not in name and "\\" not in name
    assert size is None or 0 <= size < 2**60


@settings(deadline=None)
@given(size=st.integers(0, 2**60))
def test_human_size_is_short_with_its_unit(size: int) -> None:
    from aimc.modelcache.cache import human_size

    text = human_size(size)
    assert len(text) <= 12 and text.split()[1] in ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    assert (size < 1024) == text.endswith(" B")


@settings(max_examples=60, deadline=None)
@given(model=_NAMES, revision=st.one_of(st.none(), _NAMES))
def test_remove_of_a_hostile_name_removes_nothing(model: str, revision: str | None) -> None:
    """Whatever MODEL and --revision say, removal is planned inside the cache or refused."""
    import tempfile

    from aimc.core.errors import CacheError
    from aimc.modelcache.cache_removal import removal

    with tempfile.TemporaryDirectory(prefix="aimc-cache-test-") as tmp:
        cache = Path(tmp) / "cache"
        _cached(cache, "a/b", {"config.json": b"{}"})
        (Path(tmp) / "outside").write_text("keep")
        before = sorted(str(p) for p in Path(tmp).rglob("*"))
        try:
            plan = removal(cache, model, revision)
        except CacheError:
            assert sorted(str(p) for p in Path(tmp).rglob("*")) == before
            return
        assert plan.models == ["a/b"]
        plan.execute()
        assert (Path(tmp) / "outside").read_text() == "keep"
        assert not (cache / "models--a--b" / "snapshots" / REV).exists()


def test_prune_removes_interrupted_downloads_no_download_holds(cli, tmp_path) -> None:
    from filelock import FileLock

    cache = _mixed_cache(tmp_path)
    blobs = cache / "models--aimc-test--incomplete" / "blobs"
    held = blobs / f"{'9' * 64}.resume.incomplete"  # a download running now
    held.write_bytes(b"3" * 10)
    locks = cache / ".locks" / "models--aimc-test--incomplete"
    locks.mkdir(parents=True)
    env = {"CACHE_DIR": str(cache)}
    with FileLock(str(locks / f"{'9' * 64}.lock")):
        result = cli("cache", "prune", "--yes", "--format", "json", env=env)
    assert result.code == 0, result.err + result.out
    data = json.loads(result.out)["data"]
    assert (data["incomplete_files"], data["freed_bytes"], data["revisions"]) == (1, 1000, [])
    assert sorted(p.name for p in blobs.glob("*.incomplete")) == [held.name]


def test_remove_through_a_cache_dir_that_is_a_link(cli, tmp_path) -> None:
    """huggingface_hub resolves CACHE_DIR; what it plans is still recognised as the cache's."""
    cache = _mixed_cache(tmp_path)
    link = tmp_path / "link-to-cache"
    link.symlink_to(cache, target_is_directory=True)
    env = {"CACHE_DIR": str(link)}
    result = cli("cache", "remove", "aimc-test/complete", "--yes", "--format", "json", env=env)
    assert result.code == 0, result.err + result.out
    assert json.loads(result.out)["data"]["freed_bytes"] == 6082
    assert not (cache / "models--aimc-test--complete").exists()
    # Every other repository has a revision with the same commit hash: all kept.
    for other in ("incomplete", "dangling", "escapes"):
        assert (cache / f"models--aimc-test--{other}" / "snapshots" / REV).is_dir(), other


def test_prune_keeps_a_fork_s_revision_with_the_same_hash(cli, tmp_path) -> None:
    """A commit detached in one repository and named by a ref in its fork stays there."""
    cache = tmp_path / "cache"
    _cached(cache, "org/model", {"config.json": b"{}"})
    _cached(cache, "fork/model", {"config.json": b"{}"})
    (cache / "models--org--model" / "refs" / "main").write_text("b" * 40)
    newer = cache / "models--org--model" / "snapshots" / ("b" * 40)
    newer.mkdir()
    result = cli("cache", "prune", "--yes", "--format", "json", env={"CACHE_DIR": str(cache)})
    assert result.code == 0, result.err + result.out
    assert json.loads(result.out)["data"]["models"] == ["org/model"]
    assert not (cache / "models--org--model" / "snapshots" / REV).exists() and newer.is_dir()
    assert (cache / "models--fork--model" / "snapshots" / REV / "config.json").is_file()


@settings(max_examples=40, deadline=None)
@given(
    ref_name=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
        min_size=1,
        max_size=20,
    ),
    ref_body=st.binary(max_size=80),
    file_name=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
        min_size=1,
        max_size=20,
    ),
)
def test_scan_of_a_hostile_cache_entry_never_fails(
    ref_name: str, ref_body: bytes, file_name: str
) -> None:
    """Odd ref names and contents, odd file names: listed (maybe broken), one line each."""
    import tempfile

    from aimc.modelcache.cache import scan

    if ref_name in (".", "..") or file_name in (".", ".."):
        return
    with tempfile.TemporaryDirectory(prefix="aimc-cache-test-") as tmp:
        cache = Path(tmp)
        _cached(cache, "a/b", {"config.json": b"{}"})
        try:
            (cache / "models--a--b" / "refs" / ref_name).write_bytes(ref_body)
            (cache / "models--a--b" / "snapshots" / REV / file_name).symlink_to("../../nowhere")
        except OSError:
            return  # a name the file system refuses
        (entry,) = scan(cache)
        assert entry.status in ("complete", "incomplete", "broken")
        for line in [*entry.problems, *entry.missing]:
            assert "\n" not in line and "\r" not in line and len(line) < 400


@settings(max_examples=40, deadline=None)
@given(model=st.text(max_size=60), total=st.integers(1, 2**59))
def test_progress_records_are_one_json_line_each(model: str, total: int) -> None:
    """Whatever the model id holds (line breaks, a token), a record is one JSON line with
    the id masked (LOG_FORMAT=json, the default, which the test session sets to text)."""
    import contextlib
    import io
    import tempfile

    from aimc.modelcache.download_progress import Progress

    token = "hf_" + "a" * 30
    err = io.StringIO()
    with (
        mock.patch.dict(os.environ, LOG_FORMAT="json"),
        tempfile.TemporaryDirectory(prefix="aimc-cache-test-") as tmp,
        contextlib.redirect_stderr(err),
        Progress(f"{model}/{token}", total, Path(tmp)),
    ):
        pass
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["progress"]["total_bytes"] == total and record["progress"]["percent"] == 100.0
    assert token not in lines[0] and "\n" not in record["progress"]["model"]


def test_remove_waits_for_no_download(cli, tmp_path) -> None:
    """A model whose download is running (a lock in ``.locks`` held) is not removed."""
    from filelock import FileLock

    cache = _mixed_cache(tmp_path)
    locks = cache / ".locks" / "models--aimc-test--complete"
    locks.mkdir(parents=True)
    env = {"CACHE_DIR": str(cache)}
    with FileLock(str(locks / f"{'9' * 64}.lock")):
        result = cli("cache", "remove", "aimc-test/complete", "--yes", env=env)
    assert result.code == 5 and "is being downloaded now" in result.err
    assert (cache / "models--aimc-test--complete" / "snapshots" / REV).is_dir()
    assert cli("cache", "remove", "aimc-test/complete", "--yes", env=env).code == 0


# -- what a cached or local model folder may make aimc read -----------------------------


def _safetensors(shape: list[int]) -> bytes:
    """A safetensors file of one BF16 tensor: its header and no data."""
    size = 2
    for dim in shape:
        size *= dim
    header = json.dumps({"w": {"dtype": "BF16", "shape": shape, "data_offsets": [0, size]}})
    return len(header).to_bytes(8, "little") + header.encode()


def _without_waiting(fn, fifo: Path):
    """``fn()``, failing the test if it waits on ``fifo`` (a writer then releases it)."""
    import contextlib
    import threading

    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        while thread.is_alive():
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(0.1)
        pytest.fail(f"reading the folder waited on the FIFO {fifo.name}")
    return out[0]


def test_a_link_out_of_the_cache_is_never_read_for_sizes_or_parameters(tmp_path) -> None:
    """Before: a snapshot's ``*.safetensors`` linking anywhere was read (its header sized the
    model for ``launch`` and ``show-config``)."""
    from aimc.check.catalog import Catalog
    from aimc.modelcache.checkpoint import local_sizes
    from aimc.plan.derive import derive_recipe

    cache = tmp_path / "cache"
    config = {"num_attention_heads": 8, "hidden_size": 64, "num_hidden_layers": 2}
    files = {"config.json": json.dumps(config).encode(), "tokenizer.json": b"{}"}
    _cached(cache, "org/m", {**files, "model.safetensors": _safetensors([10, 10])})
    snapshot = cache / "models--org--m" / "snapshots" / REV
    assert local_sizes([("org/m", None, False)], cache) == {"org/m": 200}
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(_safetensors([10**6, 7000]))
    (snapshot / "zz-outside.safetensors").symlink_to(outside)
    assert local_sizes([("org/m", None, False)], cache) == {}
    recipe = derive_recipe(snapshot, Catalog.default().hardware("mi300x"), repo="org/m")
    assert recipe.data["model"]["facts"]["parameters"] < 10**6  # the estimate, not the link's


def test_a_fifo_in_a_model_folder_never_makes_aimc_wait(tmp_path) -> None:
    """Before: ``launch``/``show-config`` of a cached model or a local folder holding a FIFO
    named ``*.safetensors`` (or ``config.json``) hung opening it."""
    from aimc.check.catalog import Catalog
    from aimc.core.errors import ConfigError
    from aimc.modelcache.checkpoint import checkpoint_bytes
    from aimc.plan.derive import _parameters, derive_recipe

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(_safetensors([10, 10]))
    os.mkfifo(folder / "zz.safetensors")
    root = folder.parent
    read = _without_waiting(
        lambda: (checkpoint_bytes(folder), checkpoint_bytes(folder, root), _parameters(folder)),
        folder / "zz.safetensors",
    )
    assert read == (None, None, None)

    os.mkfifo(folder / "config.json")
    hardware = Catalog.default().hardware("mi300x")

    def derive() -> str:
        try:
            derive_recipe(folder, hardware)
        except ConfigError as exc:
            return exc.message
        return "derived"

    assert "not a regular file" in _without_waiting(derive, folder / "config.json")


def test_a_blobs_folder_that_is_a_link_makes_the_entry_broken(cli, tmp_path) -> None:
    """Before: listed complete, though its files were served from outside the cache."""
    cache = tmp_path / "cache"
    base = cache / "models--org--m"
    snapshot = base / "snapshots" / REV
    snapshot.mkdir(parents=True)
    for name, data in {"config.json": b"{}", "tokenizer.json": b"{}"}.items():
        (snapshot / name).write_bytes(data)
    (snapshot / "model.safetensors").write_bytes(_safetensors([2]))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(REV)
    (tmp_path / "elsewhere").mkdir()
    (base / "blobs").symlink_to(tmp_path / "elsewhere")
    rows = json.loads(cli("cache", "list", "--format", "json", env={"CACHE_DIR": str(cache)}).out)
    row = rows["data"][0]
    assert (row["status"], row["problems"]) == ("broken", ["blobs is not a folder"])


def test_mask_hides_a_secret_also_without_its_surrounding_whitespace() -> None:
    """huggingface_hub strips HF_TOKEN before sending it: a server echoing it echoes that."""
    from aimc.core.safety import holds_secret, mask

    env = {"HF_TOKEN": "  my-private-secret-value\n"}
    assert mask("bad token my-private-secret-value here", env) == "bad token *** here"
    assert mask("as given:   my-private-secret-value\n", env) == "as given: ***"
    assert holds_secret("x my-private-secret-value", env)
    assert mask("abcde and more", {"HF_TOKEN": " abcde "}) == "abcde and more"  # too short


#: Revisions as git names them, and paths or odd text that are none.
_REVISIONS = ["main", "v1.0", "refs/pr/1", "release-2.0_rc.1", "a" * 40, "a" * 200]
_NOT_REVISIONS = [
    "../x",
    "main/../../x",
    "/abs/ref",
    "a/./b",
    ".hidden",
    "a//b",
    "a/",
    "a..b",
    "main\n",
    "ma\x00in",
    "a b",
    "",
    "a" * 201,
]


@pytest.mark.parametrize("revision", _REVISIONS + _NOT_REVISIONS)
def test_a_revision_is_a_git_name_never_a_path(revision: str) -> None:
    """The check before huggingface_hub writes ``refs/<revision>`` and the recipe schema's
    ``weights.revision`` agree (both the jsonschema and the compiled check). Before: the
    schema allowed ``../`` and the download took any text."""
    from aimc.core.errors import ConfigError
    from aimc.domain.schema import validator_class
    from aimc.domain.schema_compiler import ecma_pattern
    from aimc.modelcache.checkpoint import check_revision
    from tests.conftest import ROOT

    schema = json.loads((ROOT / "schemas/recipe.schema.json").read_text())
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("revision"), dict) and "pattern" in node["revision"]:
                found.append(node["revision"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    (prop,) = found
    valid = revision in _REVISIONS
    assert validator_class()(prop).is_valid(revision) is valid
    compiled = ecma_pattern(prop["pattern"]).search(revision) is not None
    assert (compiled and len(revision) <= prop["maxLength"]) is valid
    if valid:
        check_revision(revision)
    else:
        with pytest.raises(ConfigError) as refused:
            check_revision(revision)
        assert "\n" not in refused.value.message
