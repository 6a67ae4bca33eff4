"""aimc.core.write's ownership rules in-process, one entry kind at a time: which folders aimc
may replace (``owned``), which manifests are its own, which temporary siblings it removes.
``bench/mutation.py`` mutates these functions against this file (the CLI tests of
``test_output_folder.py`` check the same rules end to end)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from aimc.core.errors import ConfigError
from aimc.core.ownership import (
    MAX_MANIFEST_BYTES,
    artifact_name_ok,
    folder_manifest,
    is_aimc_folder,
    owned,
    read_manifest,
)
from aimc.core.write import _ours, _remove_ours, write_artifacts


def _manifest_text(files: dict[str, str], generator: str = "aimc 0.1.0") -> str:
    artifacts = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in files.items()}
    return json.dumps({"generator": generator, "artifacts": artifacts})


def _folder(path: Path, files: dict[str, str], manifest: str = "manifest.json") -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / manifest).write_text(_manifest_text(files))
    return path


FILES = {"launch.sh": "#!/bin/sh\n", "aim.env": "A=1\n"}


# --- names and manifests -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["launch.sh", "models/org/name.yaml", "a..b", ".hidden"])
def test_artifact_names_aimc_writes(name: str) -> None:
    assert artifact_name_ok(name)


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "..", "../a", "a/..", "a\0b", 1, None]
)
def test_artifact_names_aimc_never_writes(name: object) -> None:
    assert not artifact_name_ok(name)


def test_read_manifest_accepts_only_aimc_s(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(_manifest_text(FILES))
    assert read_manifest(path) == {
        n: hashlib.sha256(t.encode()).hexdigest() for n, t in FILES.items()
    }
    for text in (
        "{}",
        "[]",
        "not json",
        _manifest_text(FILES, generator="webpack 5"),
        _manifest_text(FILES, generator="aimc"),  # "aimc " and a version
        json.dumps({"generator": "aimc 1", "artifacts": ["launch.sh"]}),
        json.dumps({"generator": "aimc 1", "artifacts": {"../x": "0"}}),
        json.dumps({"generator": "aimc 1", "artifacts": {"x": 0}}),
        json.dumps({"generator": "aimc 1"}),
    ):
        path.write_text(text)
        assert read_manifest(path) is None, text
    path.write_text(json.dumps({"generator": "aimc 1", "artifacts": {}}))
    assert read_manifest(path) == {}


def test_read_manifest_refuses_links_fifos_and_big_files(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(_manifest_text(FILES))
    link = tmp_path / "manifest.json"
    link.symlink_to(real)
    assert read_manifest(link) is None
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert read_manifest(fifo) is None  # and does not wait for a writer
    big = tmp_path / "big.json"
    text = _manifest_text(FILES)
    big.write_text(text[:-1] + " " * (MAX_MANIFEST_BYTES - len(text)) + "}")
    assert big.stat().st_size == MAX_MANIFEST_BYTES
    assert read_manifest(big) is not None  # exactly the limit
    big.write_text(text[:-1] + " " * (MAX_MANIFEST_BYTES - len(text) + 1) + "}")
    assert read_manifest(big) is None
    assert read_manifest(tmp_path / "missing.json") is None


def test_a_folder_is_aimc_s_with_exactly_one_aimc_manifest(tmp_path: Path) -> None:
    one = _folder(tmp_path / "one", FILES)
    assert is_aimc_folder(one) and folder_manifest(one) is not None
    assert folder_manifest(one)[0] == "manifest.json"  # type: ignore[index]
    k8s = _folder(tmp_path / "k8s", FILES, manifest="manifest.aimc")
    assert is_aimc_folder(k8s)
    (one / "manifest.aimc").write_text(_manifest_text(FILES))
    assert not is_aimc_folder(one)  # two manifests
    none = tmp_path / "none"
    none.mkdir()
    assert not is_aimc_folder(none)
    (none / "manifest.json").write_text("{}")
    assert not is_aimc_folder(none)


# --- owned ---------------------------------------------------------------------------------


def test_owned_is_empty_for_an_empty_folder_and_an_unchanged_aimc_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert owned(empty) == []
    folder = _folder(tmp_path / "out", FILES)
    assert owned(folder) == []
    (folder / "server.log").write_text("log\n")
    (folder / "server.log.1").write_text("log\n")
    assert owned(folder) == []  # runtime files are carried over


def test_owned_names_every_entry_aimc_did_not_write(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "out", FILES)
    (folder / "launch.sh").write_text("#!/bin/sh\nevil\n")
    (folder / "extra.txt").write_text("mine\n")
    (folder / "sub").mkdir()
    (folder / "link").symlink_to(folder / "aim.env")
    assert owned(folder) == [
        "extra.txt (not listed in manifest.json)",
        "launch.sh (changed since aimc wrote it)",
        "link (not a file aimc writes)",
        "sub (not a file aimc writes)",
    ]
    assert owned(folder, check_hashes=False) == [
        "extra.txt (not listed in manifest.json)",
        "link (not a file aimc writes)",
        "sub (not a file aimc writes)",
    ]


def test_owned_without_an_aimc_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a").write_text("x")
    assert owned(folder) == ["no manifest (manifest.json or manifest.aimc) written by aimc"]
    (folder / "manifest.json").write_text("{}")
    assert owned(folder) == ["manifest.json is not written by aimc"]
    (folder / "manifest.aimc").write_text(_manifest_text({}))
    assert owned(folder) == [
        "manifest.json and manifest.aimc both (an aimc folder holds one manifest)"
    ]


def test_owned_walks_only_the_folders_its_artifact_names_make(tmp_path: Path) -> None:
    files = {"models/org/a.yaml": "a\n", "top.yaml": "t\n"}
    folder = _folder(tmp_path / "out", files)
    assert owned(folder) == []
    (folder / "models" / "org" / "b.yaml").write_text("b\n")
    (folder / "models" / "server.log").write_text("b\n")
    (folder / "models" / "manifest.json").write_text("{}")
    assert owned(folder) == [
        "models/manifest.json (not listed in manifest.json)",
        "models/org/b.yaml (not listed in manifest.json)",
        "models/server.log (not listed in manifest.json)",
    ]


def test_write_refuses_what_owned_names_and_a_link(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "out", FILES)
    (folder / "extra.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match=r"holds what aimc did not write: extra\.txt"):
        write_artifacts(folder, FILES)
    assert (folder / "extra.txt").read_text() == "mine\n"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        write_artifacts(link, FILES)
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        write_artifacts(plain, FILES)
    many = tmp_path / "many"
    many.mkdir()
    (many / "manifest.json").write_text(_manifest_text({}))
    for i in range(7):
        (many / f"f{i}").write_text("x")
    with pytest.raises(ConfigError) as caught:
        write_artifacts(many, FILES)
    assert "f4 (not listed" in caught.value.message and "f5" not in caught.value.message
    assert caught.value.message.endswith("; ...")
    write_artifacts(tmp_path / "new", {**FILES, "manifest.json": _manifest_text(FILES)})
    assert owned(tmp_path / "new") == []


# --- temporary siblings --------------------------------------------------------------------


def test_ours_is_an_empty_folder_or_a_fully_listed_aimc_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _ours(empty)
    folder = _folder(tmp_path / "out", FILES)
    (folder / "launch.sh").write_text("edited after the kill\n")  # hashes are not checked
    assert _ours(folder)
    (folder / "extra").write_text("x")
    assert not _ours(folder)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a").write_text("x")
    assert not _ours(foreign)
    link = tmp_path / "link"
    link.symlink_to(empty)
    assert not _ours(link)
    assert not _ours(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert not _ours(plain)


def test_remove_ours_removes_everything_and_the_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "out", {**FILES, "models/org/a.yaml": "a\n"})
    (folder / "server.log").write_text("x")
    _remove_ours(folder)
    assert not folder.exists()
    kept = _folder(tmp_path / "kept", FILES)
    (kept / "sub").mkdir()
    (kept / "sub" / "x").write_text("x")
    os.chmod(kept / "sub", 0o500)  # (root ignores it; the folder is removed as a tree)
    try:
        _remove_ours(kept)
    finally:
        if (kept / "sub").exists():
            os.chmod(kept / "sub", 0o700)


def test_every_edit_and_every_extra_name_is_reported(tmp_path: Path) -> None:
    """Whatever the edited file's sha256 and the extra file's name sort like."""
    folder = _folder(tmp_path / "out", FILES)
    for i in range(16):  # about half sort below the recorded sha256, half above
        (folder / "aim.env").write_text(f"B={i}\n")
        assert owned(folder) == ["aim.env (changed since aimc wrote it)"], i
    (folder / "aim.env").write_text(FILES["aim.env"])
    for name in ("0", "a", "manifest.jso", "manifest.json5", "server.log.2", "zz", "~"):
        (folder / name).write_text("x")
        assert owned(folder) == [f"{name} (not listed in manifest.json)"], name
        (folder / name).unlink()


@pytest.mark.parametrize(("extra", "cut"), [(1, False), (5, False), (6, True)])
def test_the_refusal_names_five_entries_then_says_there_are_more(
    tmp_path: Path, extra: int, cut: bool
) -> None:
    folder = _folder(tmp_path / "out", FILES)
    for i in range(extra):
        (folder / f"f{i}").write_text("x")
    with pytest.raises(ConfigError) as caught:
        write_artifacts(folder, FILES)
    assert caught.value.message.endswith("; ...") is cut
    assert f"f{min(extra, 5) - 1} (not listed" in caught.value.message


def test_a_link_in_place_of_an_artifact_folder_is_not_walked(tmp_path: Path) -> None:
    files = {"models/org/a.yaml": "a\n"}
    folder = _folder(tmp_path / "out", files)
    elsewhere = _folder(tmp_path / "elsewhere", {"org/a.yaml": "a\n"})
    shutil.rmtree(folder / "models")
    (folder / "models").symlink_to(elsewhere)
    assert owned(folder) == ["models (not a file aimc writes)"]


def test_remove_ours_unlinks_a_link_and_never_follows_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    folder = _folder(tmp_path / "out", FILES)
    (folder / "link").symlink_to(outside)
    _remove_ours(folder)
    assert not os.path.lexists(folder)
    assert (outside / "keep").read_text() == "x"


def test_an_unreadable_folder_is_not_ours_and_not_replaced(tmp_path: Path, monkeypatch) -> None:
    """Whatever cannot be read is never taken for aimc's (root reads any folder: the error
    is simulated)."""
    import aimc.core.write

    folder = _folder(tmp_path / "out", FILES)

    def unreadable(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(aimc.core.write.os, "scandir", unreadable)
    assert not _ours(folder)
    with pytest.raises(Exception) as caught:
        write_artifacts(folder, FILES)
    assert getattr(caught.value, "exit_code", None) == 7, caught.value
    assert "Permission denied" in str(caught.value)
