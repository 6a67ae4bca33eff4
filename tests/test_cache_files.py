"""aimc.modelcache.cache_files: the Hugging Face cache's layout, and reads that never leave it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from huggingface_hub.file_download import repo_folder_name as hub_folder_name
from hypothesis import given
from hypothesis import strategies as st

from aimc.modelcache.cache_files import (
    COMMIT,
    inside,
    lstat_or_none,
    open_regular,
    read_small,
    repo_folder_name,
)

#: One part of a repository id as huggingface_hub accepts it (validate_repo_id).
_ID_PART = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,18}[A-Za-z0-9])?", fullmatch=True).filter(
    lambda part: "--" not in part and ".." not in part
)


@given(org=_ID_PART, name=_ID_PART)
def test_a_repository_folder_is_named_as_huggingface_hub_names_it(org: str, name: str) -> None:
    repo = f"{org}/{name}"
    assert repo_folder_name(repo) == hub_folder_name(repo_id=repo, repo_type="model")


def test_a_commit_hash_is_forty_lowercase_hex_digits() -> None:
    assert COMMIT.fullmatch("0123456789abcdef" * 2 + "01234567")
    for text in ("a" * 39, "a" * 41, "A" * 40, "../" + "a" * 37, "g" * 40):
        assert not COMMIT.fullmatch(text), text


def test_read_small_reads_a_regular_file_up_to_its_limit(tmp_path: Path) -> None:
    file = tmp_path / "ref"
    file.write_bytes(b"x" * 10)
    assert read_small(file, 10) == b"x" * 10
    assert read_small(file, 9) is None  # larger than the limit: not a prefix
    assert read_small(tmp_path / "absent", 10) is None


def test_read_small_never_opens_a_fifo(tmp_path: Path) -> None:
    """A FIFO named like a ref would make a blocking open wait for a writer forever."""
    fifo = tmp_path / "main"
    os.mkfifo(fifo)
    assert read_small(fifo, 100) is None


def test_lstat_or_none_sees_the_link_itself(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    found = lstat_or_none(link)
    assert found is not None and stat.S_ISLNK(found.st_mode)
    assert lstat_or_none(tmp_path / "absent") is None


def test_inside_resolves_links(tmp_path: Path) -> None:
    repo, outside = tmp_path / "models--a--b", tmp_path / "elsewhere"
    repo.mkdir()
    outside.mkdir()
    (repo / "in").write_text("")
    (repo / "out").symlink_to(outside)
    assert inside(repo / "in", repo)
    assert not inside(repo / "out", repo)
    assert not inside(repo / "out" / "file", repo)


@pytest.mark.parametrize("target", ["elsewhere", "../../etc"])
def test_a_link_out_of_the_cache_is_never_read(tmp_path: Path, target: str) -> None:
    repo = tmp_path / "models--a--b"
    repo.mkdir()
    (tmp_path / "elsewhere").write_text("secret")
    (repo / "ref").symlink_to(tmp_path / target)
    with pytest.raises(OSError) as refused:
        open_regular(repo / "ref", repo)
    assert refused.value.errno == errno.EXDEV


def test_a_ref_that_names_a_path_is_not_followed(tmp_path: Path) -> None:
    """A ref is a commit hash, never a path. Failed before: ``../../..`` in it led out of
    the cache."""
    from aimc.modelcache.checkpoint import cache_snapshot

    cache = tmp_path / "cache"
    refs = cache / "models--org--m" / "refs"
    refs.mkdir(parents=True)
    (refs.parent / "snapshots").mkdir()
    (refs / "main").write_text("../../../")
    assert cache_snapshot(cache, "org/m") is None
    assert cache_snapshot(cache, "../x") is None
