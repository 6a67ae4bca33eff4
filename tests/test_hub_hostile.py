"""`aim-engine cache download` against a hostile hub: every request bounded, the token only
for the hub's own host.

The hub is the local stand-in (tests/fakes/hub.py on 127.0.0.1); "another host" is a second
local server (tests/fakes/other_host.py on ``localhost``, another origin) that records every
request it receives, so a test sees exactly what reached it. Each test failed before the
download went through :mod:`aimc.modelcache.hub_guard`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.core.errors import NetworkError
from aimc.modelcache.download import _MAX_FILES
from aimc.modelcache.hub_guard import (
    MAX_API_BYTES,
    MAX_API_REQUESTS,
    MAX_REQUESTS,
    REQUESTS_PER_FILE,
    Guard,
)
from tests.conftest import Result, run_cli
from tests.fakes.hub import FakeHub
from tests.fakes.other_host import Answer, OtherHost

REPO = "aimc-test/tiny"
FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b'{"version": "1.0"}',
    "model-1.safetensors": bytes(range(256)) * 64,  # 16 KiB
}
#: What the other host sends for a file: ten times its announced size, then it closes
#: (two of them in a row appear in no file of the repository).
JUNK = b"\xee"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub().start()
    server.add(REPO, FILES)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def other() -> Iterator[OtherHost]:
    server = OtherHost().start()
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
        "HF_TOKEN": hub.token,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def _download(env: dict[str, str]) -> Result:
    return run_cli("cache", "download", REPO, "--format", "json", env=env, timeout=120)


def _error(result: Result) -> dict[str, str]:
    error: dict[str, str] = json.loads(result.out)["error"]
    return error


def _assert_no_token_reached(other: OtherHost, token: str) -> None:
    for request in other.received:
        assert "authorization" not in {k.lower() for k in request.headers}, request
        assert token not in request.target
        assert not any(token in value for value in request.headers.values()), request


def _head(hub: FakeHub, name: str, **extra: str) -> dict[str, str]:
    """The headers the stand-in hub answers a HEAD of ``name`` with (LFS for weights)."""
    repo = hub.repos[REPO]
    headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{repo.oid(name)}"'}
    if repo.is_lfs(name):
        headers["X-Linked-Etag"] = f'"{repo.sha256(name)}"'
        headers["X-Linked-Size"] = str(len(FILES[name]))
    else:
        headers["Content-Length"] = str(len(FILES[name]))
    return {**headers, **extra}


def _sender(size: int) -> Answer:
    """An answer without ``Content-Length`` sending ten times ``size`` bytes, then closing."""
    return 200, {"Content-Type": "application/octet-stream"}, [JUNK * size] * 10


def _cache_files(env: dict[str, str]) -> dict[str, bytes]:
    """{path: content} of every file the download left for the repository."""
    folder = Path(env["CACHE_DIR"]) / "models--aimc-test--tiny"
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_xet_headers_naming_another_host_never_get_the_token(hub, other, env) -> None:
    """Item 1. Before: huggingface_hub's Xet path sent ``Authorization: Bearer <HF_TOKEN>`` to
    the refresh route the HEAD named, then failed as an internal error (exit 1). Now Xet
    is off and every file comes from the hub's own ``resolve`` URL."""
    route = f"{other.url}/api/models/{REPO}/xet-read-token/{hub.repos[REPO].commit}"
    hub.head_answers = {
        name: (200, _head(hub, name, **{"X-Xet-Hash": "a" * 64, "X-Xet-Refresh-Route": route}))
        for name in FILES
    }
    other.answer = lambda method, path: (200, {"Content-Type": "application/json"}, [b"{}"])
    result = _download(env)
    _assert_no_token_reached(other, hub.token)
    assert other.received == []
    assert result.code == 0, result.err
    data = json.loads(result.out)["data"]
    assert data["complete"] is True
    snapshot = Path(data["path"])
    assert {p.name: p.read_bytes() for p in snapshot.iterdir()} == FILES
    assert hub.token not in result.out + result.err


def test_a_size_the_hub_does_not_announce_is_exit_6_before_any_byte(hub, other, env) -> None:
    """Item 2. Before: a HEAD redirecting to another host without ``X-Linked-Size`` left the
    size unknown, the free-space check counted it as 0, and whatever the other host sent
    (here ten times the file) was written and reported complete (exit 0)."""
    name = "model-1.safetensors"
    headers = _head(hub, name, Location=f"{other.url}/blob/{name}")
    del headers["X-Linked-Size"]
    hub.head_answers = {name: (302, headers)}
    other.answer = lambda method, path: _sender(len(FILES[name]))
    result = _download(env)
    assert result.code == 6, result.err
    error = _error(result)
    assert error["code"] == "NETWORK_ERROR"
    assert error["message"] == (
        f"the hub announced no size for {REPO}/{name}: nothing was downloaded"
    )
    assert json.loads(result.out)["success"] is False and "data" not in json.loads(result.out)
    assert [r.method for r in other.received] == []  # not one byte was asked for
    assert not any(JUNK * 2 in content for content in _cache_files(env).values())
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", ["config.json", "model-1.safetensors"])
def test_a_file_from_another_host_is_cut_at_its_announced_size(hub, other, env, name) -> None:
    """Item 2. The HEAD announces the real size and redirects to another host that sends ten
    times it without ``Content-Length``. Before: huggingface_hub wrote all of it for
    ``config.json``, then failed its own size check as a cache error (exit 5). Now the
    answer is cut at the announced size: exit 6, nothing kept or reported complete, and the
    other host never sees the token."""
    size = len(FILES[name])
    # huggingface_hub believes only X-Linked-Size on a redirect (for any file).
    redirect = _head(hub, name, Location=f"{other.url}/blob/{name}", **{"X-Linked-Size": str(size)})
    hub.head_answers = {name: (302, redirect)}
    other.answer = lambda method, path: _sender(size)
    result = _download(env)
    assert result.code == 6, result.err
    assert _error(result)["message"] == (
        f"the hub sent more than the {size} bytes it announced for {REPO}/{name}"
    )
    assert json.loads(result.out)["success"] is False and "data" not in json.loads(result.out)
    assert [r.method for r in other.received] == ["GET"]
    _assert_no_token_reached(other, hub.token)
    for path, content in _cache_files(env).items():  # never more than announced on disk
        assert JUNK * 2 not in content or len(content) <= size, path
    snapshots = Path(env["CACHE_DIR"]) / "models--aimc-test--tiny" / "snapshots"
    assert not list(snapshots.rglob(name))


def test_model_info_redirected_to_another_host_without_an_id_is_exit_6(hub, other, env) -> None:
    """Item 3. Before: ``internal error: KeyError: 'id'`` (exit 1)."""
    hub.api_answers = {"info": (302, {"Location": f"{other.url}/api/models/{REPO}"}, b"")}
    body = json.dumps({"sha": hub.repos[REPO].commit}).encode()
    other.answer = lambda method, path: (200, {"Content-Type": "application/json"}, [body])
    result = _download(env)
    assert result.code == 6, result.err
    error = _error(result)
    assert error["code"] == "NETWORK_ERROR"
    assert error["message"].startswith(f"the hub's answer for {REPO} is not what the hub sends")
    assert "\n" not in error["message"] and "Traceback" not in result.err
    assert [r.method for r in other.received] == ["GET"]
    _assert_no_token_reached(other, hub.token)


def test_an_endless_tree_listing_is_stopped(hub, env) -> None:
    """A listing whose every page names a next one: huggingface_hub follows it forever
    (before: the command never ended). Now the request count is bounded: exit 6."""
    commit = hub.repos[REPO].commit
    more = f'<{hub.url}/api/models/{REPO}/tree/{commit}?cursor=again>; rel="next"'
    hub.api_answers = {"tree": (200, {"Content-Type": "application/json", "Link": more}, b"[]")}
    result = _download(env)
    assert result.code == 6, result.err
    assert _error(result)["message"] == (
        f"the hub needed more than {MAX_API_REQUESTS} requests for {REPO}: stopped"
    )
    trees = [p for m, p in hub.requests if "/tree/" in p]
    assert MAX_API_REQUESTS - 5 <= len(trees) <= MAX_API_REQUESTS
    # Every request a listing of the most files aimc accepts needs stays within the bound.
    assert MAX_REQUESTS >= REQUESTS_PER_FILE * _MAX_FILES + MAX_API_REQUESTS


def test_a_huge_listing_is_refused(hub, other, env) -> None:
    """A listing announced as 1 TiB is refused before its body; one streamed without a
    length (from another host) is cut once the hub's answers pass the bound. Before: read
    whole into memory."""
    hub.api_answers = {"tree": (200, {"Content-Length": str(2**40)}, b"[]")}
    result = _download(env)
    assert result.code == 6, result.err
    message = f"the hub's answers for {REPO} (info, listings) exceed {MAX_API_BYTES} bytes: stopped"
    assert _error(result)["message"] == message

    hub.api_answers = {"tree": (302, {"Location": f"{other.url}/tree"}, b"")}
    chunk = b" " * 2**20
    other.answer = lambda method, path: (200, {}, [b"["] + [chunk] * (MAX_API_BYTES // 2**20 + 8))
    result = _download(env)
    assert result.code == 6, result.err
    assert _error(result)["message"] == message


def test_a_hostile_x_repo_commit_never_becomes_a_path(hub, env, tmp_path) -> None:
    """A 404 naming a commit ``../../../escaped``: huggingface_hub records a missing file at
    ``.no_exist/<commit>/<file>``, so before it created ``escaped/config.json`` outside the
    cache. Now the header is refused: exit 6, nothing outside the cache."""
    headers = {"X-Repo-Commit": "../../../escaped", "X-Error-Code": "EntryNotFound"}
    hub.head_answers = {"config.json": (404, headers)}
    result = _download(env)
    assert result.code == 6, result.err
    assert _error(result)["message"] == f"the hub named no commit hash for {REPO} (X-Repo-Commit)"
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]

    # Another commit than the one asked for: before, huggingface_hub recorded it as what
    # refs/<commit> names. Now refused before it reads the answer.
    commit = hub.repos[REPO].commit
    hub.head_answers = {"config.json": (404, {**headers, "X-Repo-Commit": "b" * 40})}
    result = _download(env)
    assert result.code == 6, result.err
    assert _error(result)["message"] == (
        f"the hub named commit {'b' * 40} for a file of {REPO} at {commit}"
    )
    refs = Path(env["CACHE_DIR"]) / "models--aimc-test--tiny" / "refs"
    assert not any("b" * 40 in p.read_text() for p in refs.rglob("*") if p.is_file())
    assert not list(Path(env["CACHE_DIR"]).rglob("b" * 40))


# Hostile values the guard handles: a URL's origin (who gets the token) and X-Repo-Commit.

HUB = "http://127.0.0.1:8080"
_hosts = st.sampled_from(
    [
        "127.0.0.1",
        "localhost",
        "127.0.0.1.evil",
        "evil",
        "127.0.0.2",
        "[::1]",
        "0x7f.1",
        "LOCALHOST",
    ]
)
_urls = st.builds(
    lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP"]),
    st.sampled_from(["", "127.0.0.1:8080@", "u:p@", "x@"]),
    _hosts,
    st.sampled_from(["", ":8080", ":80", ":443", ":08080"]),
    st.sampled_from(["/", "/api/models/a/b", "/@127.0.0.1:8080/", "/%2F%2Fevil"]),
)


@settings(max_examples=300, deadline=None)
@given(url=_urls)
def test_the_token_goes_to_the_hub_s_origin_only(url: str) -> None:
    """Whatever the URL, ``Authorization`` survives exactly when httpx2 (the client that
    connects) sends the request to the hub's scheme, host and port."""
    guard = Guard(REPO, HUB)
    request = httpx2.Request("GET", url, headers={"Authorization": "Bearer hf_secret"})
    guard.on_request(request)
    target = request.url
    port = target.port or {"http": 80, "https": 443}[target.scheme]
    at_hub = (target.scheme, target.host, port) == ("http", "127.0.0.1", 8080)
    assert ("Authorization" in request.headers) == at_hub
    assert request.headers["Accept-Encoding"] == "identity"


@settings(max_examples=300, deadline=None)
@given(commit=st.text(max_size=60))
def test_an_x_repo_commit_that_is_not_a_hash_is_refused(commit: str) -> None:
    guard = Guard(REPO, HUB)
    request = httpx2.Request("HEAD", f"{HUB}/{REPO}/resolve/main/config.json")
    try:
        response = httpx2.Response(200, headers={"X-Repo-Commit": commit}, request=request)
    except (UnicodeEncodeError, ValueError):
        return  # not a header value at all
    is_hash = len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    if is_hash:
        guard.on_response(response)
    else:
        with pytest.raises(NetworkError, match="named no commit hash"):
            guard.on_response(response)


@pytest.mark.parametrize("sent", [10, 23], ids=["the-later-size", "the-first-size"])
def test_a_file_of_another_size_than_listed_is_never_complete(hub, other, env, sent) -> None:
    """The first HEAD of ``config.json`` (the listing, the free-space check) announces its 23
    bytes, later ones 10, and the other host sends ``sent`` bytes. Before: 10 bytes were kept
    and reported complete (exit 0), 23 failed huggingface_hub's own check as a cache error
    (exit 5). Now: exit 6 both times, and the file is not in the snapshot."""
    name, size = "config.json", len(FILES["config.json"])
    redirect = _head(hub, name, Location=f"{other.url}/blob/{name}", **{"X-Linked-Size": "23"})
    hub.head_answers = {name: (302, redirect)}
    hub.later_head_answers = {name: (302, {**redirect, "X-Linked-Size": "10"})}
    other.answer = lambda method, path: (200, {"Content-Length": str(sent)}, [JUNK * sent])
    assert size == 23
    result = _download(env)
    assert result.code == 6, result.err
    message = _error(result)["message"]
    if sent == 10:
        assert message == (
            f"{REPO}/{name} came with 10 bytes but the hub announced 23: removed, the "
            "download is not complete"
        )
    else:
        assert message.startswith(
            f"download of {REPO} failed: the hub sent another size than it announced"
        )
    assert json.loads(result.out)["success"] is False
    snapshots = Path(env["CACHE_DIR"]) / "models--aimc-test--tiny" / "snapshots"
    assert not list(snapshots.rglob(name))
    assert not any(
        JUNK * 2 in content and not path.endswith(".incomplete")
        for path, content in _cache_files(env).items()
    )


def test_guarded_routes_every_request_and_restores_huggingface_hub_afterwards() -> None:
    """Inside the block huggingface_hub's one session is the guarded client and Xet is off;
    afterwards both are as they were (the Python API's process goes on)."""
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import _http

    from aimc.modelcache.hub_guard import guarded

    before = (_http._GLOBAL_CLIENT_FACTORY, constants.HF_HUB_DISABLE_XET)
    with guarded(REPO) as guard:
        assert constants.HF_HUB_DISABLE_XET is True
        hooks = get_session().event_hooks
        assert guard.on_request in hooks["request"] and guard.on_response in hooks["response"]
    assert before == (_http._GLOBAL_CLIENT_FACTORY, constants.HF_HUB_DISABLE_XET)
    assert guard.on_request not in get_session().event_hooks["request"]


def test_a_mirror_under_a_path_keeps_its_bounds() -> None:
    """An ``HF_ENDPOINT`` with a path (a mirror serving the hub under one): its files are
    still cut at their listed size (not at the answers' shared bound), and its API pages
    still counted."""
    mirror = "https://mirror.example/hf"
    guard = Guard("org/m", mirror)
    guard.allow({"model.safetensors": 10})
    url = f"{mirror}/org/m/resolve/{'c' * 40}/model.safetensors"
    for length, refused in ((10, False), (11, True)):
        request = httpx2.Request("GET", url)
        response = httpx2.Response(200, headers={"Content-Length": str(length)}, request=request)
        if refused:
            with pytest.raises(NetworkError, match="more than the 10 bytes it announced"):
                guard.on_response(response)
        else:
            guard.on_response(response)
    for _ in range(MAX_API_REQUESTS):
        guard.on_request(httpx2.Request("GET", f"{mirror}/api/models/org/m/tree/main"))
    with pytest.raises(NetworkError, match=f"more than {MAX_API_REQUESTS} requests"):
        guard.on_request(httpx2.Request("GET", f"{mirror}/api/models/org/m/tree/main"))
