"""`aim-engine cache`: statistics and listing of a Hugging Face cache, offline downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REV = "a" * 40


def _cached(cache: Path, repo: str, files: dict[str, bytes]) -> None:
    """A model in the Hugging Face cache layout (blobs, snapshots, refs)."""
    base = cache / f"models--{repo.replace('/', '--')}"
    (base / "blobs").mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(REV)
    snapshot = base / "snapshots" / REV
    snapshot.mkdir(parents=True)
    for i, (name, data) in enumerate(files.items()):
        blob = base / "blobs" / f"{i:040x}"
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("../..") / "blobs" / blob.name)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    _cached(folder, "Qwen/Qwen3-8B", {"config.json": b"{}", "model.safetensors": b"x" * 4096})
    _cached(folder, "org/other", {"config.json": b"{}"})
    return folder


def test_stats(cli, cache: Path) -> None:
    result = cli("cache", "stats", "--format", "json", env={"CACHE_DIR": str(cache)})
    assert result.code == 0
    data = json.loads(result.out)["data"]
    assert (data["models"], data["files"], data["exists"]) == (2, 3, True)


def test_stats_of_a_missing_cache(cli, tmp_path: Path) -> None:
    result = cli("cache", "stats", env={"CACHE_DIR": str(tmp_path / "none")})
    assert result.code == 0
    assert "(not created yet)" in result.out and "models: 0" in result.out


def test_list_with_filter(cli, cache: Path) -> None:
    result = cli(
        "cache", "list", "--filter", "qwen", "--format", "json", env={"CACHE_DIR": str(cache)}
    )
    rows = json.loads(result.out)["data"]
    assert [r["model"] for r in rows] == ["Qwen/Qwen3-8B"]
    assert rows[0]["refs"] == ["main"] and rows[0]["files"] == 2


def test_download_of_a_cached_recipe_model_works_offline(cli, cache: Path) -> None:
    result = cli(
        "cache", "download", "Qwen/Qwen3-8B", env={"CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    )
    assert result.code == 0, result.err
    assert result.out.strip().endswith(f"snapshots/{REV}")


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
