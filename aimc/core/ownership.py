"""Which artifact folders are aimc's: the manifest read back, and what it proves.

Takes a folder; hands on whether aimc wrote it (:func:`is_aimc_folder`), what stands
between aimc and replacing it (:func:`owned`: empty when its one manifest is aimc's and
every entry is an artifact that manifest lists, unchanged since, or a runtime file), and
refuses to run a folder whose artifacts changed since ``compile`` (:func:`verify_artifacts`).
Reads only; :mod:`aimc.core.write` is the one writer and asks this module first.

The manifest (aimc's ownership and drift record) is ``manifest.json`` in a folder of local
artifacts and ``manifest.aimc`` (the same JSON) in a folder of Kubernetes manifests:
``kubectl apply -f DIR`` decodes every ``.json``, ``.yaml`` and ``.yml`` file in DIR (and
below it with ``-R``) and stops at a JSON file that is no Kubernetes object; it skips
every other name (k8s.io/cli-runtime ``pkg/resource/visitor.go``: ``ignoreFile`` compares
``filepath.Ext`` with ``FileExtensions``). A folder holds one of the two; a folder written
with either (Kubernetes folders of earlier aimc versions hold ``manifest.json``) may be
replaced by the other kind. A manifest is opened without following links and never
waited on (a FIFO), and one larger than :data:`MAX_MANIFEST_BYTES` is not aimc's.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from aimc.core.digest import sha256
from aimc.core.errors import ConfigError

__all__ = [
    "KUBERNETES_MANIFEST",
    "MANIFEST",
    "MANIFESTS",
    "MAX_MANIFEST_BYTES",
    "RUNTIME_FILES",
    "artifact_name_ok",
    "folder_manifest",
    "is_aimc_folder",
    "owned",
    "read_manifest",
    "verify_artifacts",
]

#: The manifest of a folder of local artifacts.
MANIFEST = "manifest.json"
#: The manifest of a folder of Kubernetes manifests: a name kubectl does not read.
KUBERNETES_MANIFEST = "manifest.aimc"
#: Every name a manifest has; a folder holds one of them.
MANIFESTS = (MANIFEST, KUBERNETES_MANIFEST)
#: Files aimc adds to an artifact folder after writing it (the runner's log and the previous
#: run's, aimc.run.runner.LOG_NAME and PREVIOUS_LOG_NAME): kept on rewrite, never reported as
#: drift.
RUNTIME_FILES = frozenset({"server.log", "server.log.1"})
#: Largest manifest aimc reads back.
MAX_MANIFEST_BYTES = 2**20


def artifact_name_ok(name: object) -> bool:
    """An artifact name aimc writes and reads back: a relative path of plain parts
    (``launch.sh``, ``models/org/name.yaml``), never absolute, never ``.``/``..``, no NUL."""
    return (
        isinstance(name, str)
        and "\0" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def _manifest_names(folder: Path) -> list[str]:
    """The manifest names present in ``folder`` (any kind of entry), in :data:`MANIFESTS`
    order."""
    return [name for name in MANIFESTS if os.path.lexists(folder / name)]


def read_manifest(path: Path) -> dict[str, str] | None:
    """{artifact name: sha256} from the manifest at ``path`` when it is aimc's, else None."""
    # Opened, not followed, then checked: a manifest swapped for a symlink or a FIFO after
    # a check is never read (nor waited on).
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
                return None
            data = json.loads(os.read(fd, MAX_MANIFEST_BYTES + 1))
        finally:
            os.close(fd)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not str(data.get("generator", "")).startswith("aimc "):
        return None
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, dict) or not all(
        isinstance(v, str) and artifact_name_ok(k) for k, v in artifacts.items()
    ):
        return None
    return dict(artifacts)


def folder_manifest(folder: Path) -> tuple[str, dict[str, str]] | None:
    """(manifest name, {artifact name: sha256}) of ``folder`` when it holds exactly one
    manifest and that one is aimc's, else None."""
    names = _manifest_names(folder)
    if len(names) != 1:
        return None
    artifacts = read_manifest(folder / names[0])
    return None if artifacts is None else (names[0], artifacts)


def _file_sha256(path: Path) -> str | None:
    """sha256 of the regular file at ``path`` (not followed: a symlink is not the file the
    manifest recorded), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        digest = sha256()
        for block in iter(lambda: f.read(2**16), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str | None:
    digest = sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(2**16), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def verify_artifacts(folder: Path, needed: str = "launch.sh") -> None:
    """Refuse to use a folder of local artifacts unless every artifact its ``manifest.json``
    lists is a regular file with the sha256 the manifest records (``needed`` among them).

    Files the manifest does not list are left alone (the runner's log, a user's notes):
    nothing runs them. The manifest itself is not hashed; the check catches artifacts
    edited, truncated or replaced after ``compile``, not a folder rewritten as a whole.

    Raises:
        ConfigError: The manifest is not aimc's, ``needed`` is not listed, or an artifact
            is missing, not a regular file or changed (the first in name order is named).
    """
    hint = "recompile the folder ('aim-engine compile ... -o DIR'); edits go in recipes or --set"
    found = folder_manifest(folder)
    if found is None or found[0] != MANIFEST:
        raise ConfigError(f"{folder / MANIFEST} is not a manifest written by aimc", hint=hint)
    artifacts = found[1]
    if needed not in artifacts:
        raise ConfigError(f"{folder / needed} is not listed in {folder / MANIFEST}", hint=hint)
    for name in sorted(artifacts):
        digest = _file_sha256(folder / name)
        if digest is None:
            raise ConfigError(
                f"{folder / name} is missing or not a regular file ({MANIFEST} lists it)",
                hint=hint,
            )
        if digest != artifacts[name]:
            raise ConfigError(
                f"{folder / name} changed since aimc wrote it (its sha256 differs from "
                f"{MANIFEST}); nothing was started",
                hint=hint,
            )


def is_aimc_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest aimc wrote (its generator is aimc): a folder with
    any other ``manifest.json`` (``{}``), or with two manifests, is not one whose files aimc
    reads as its own."""
    return folder_manifest(folder) is not None


def owned(folder: Path, *, check_hashes: bool = True) -> list[str]:
    """What stands between aimc and replacing ``folder``: one line per entry it did not write.

    Empty when aimc may replace the folder: it is empty, or its one manifest
    (:data:`MANIFESTS`) is aimc's and every entry is a regular file that the manifest lists
    (with the recorded sha256 when ``check_hashes``), the manifest itself or a runtime file
    (:data:`RUNTIME_FILES`).
    """
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    if not entries:
        return []
    names = _manifest_names(folder)
    if not names:
        return [f"no manifest ({' or '.join(MANIFESTS)}) written by aimc"]
    if len(names) > 1:
        return [f"{' and '.join(names)} both (an aimc folder holds one manifest)"]
    artifacts = read_manifest(folder / names[0])
    if artifacts is None:
        return [f"{names[0]} is not written by aimc"]
    # Folders aimc makes for artifact names with parts (an imported recipe collection).
    folders = {
        "/".join(parts[:i])
        for parts in (name.split("/") for name in artifacts)
        for i in range(1, len(parts))
    }
    problems: list[str] = []
    _owned_entries(entries, "", names[0], artifacts, folders, check_hashes, problems)
    return problems


def _owned_entries(
    entries: list[os.DirEntry[str]],
    prefix: str,
    manifest: str,
    artifacts: Mapping[str, str],
    folders: set[str],
    check_hashes: bool,
    problems: list[str],
) -> None:
    for entry in entries:
        name = prefix + entry.name
        if name in folders and entry.is_dir(follow_symlinks=False):
            inner = sorted(os.scandir(entry.path), key=lambda e: e.name)
            _owned_entries(inner, f"{name}/", manifest, artifacts, folders, check_hashes, problems)
        elif not entry.is_file(follow_symlinks=False):
            problems.append(f"{name} (not a file aimc writes)")
        elif name in artifacts:
            if check_hashes and _sha256(Path(entry.path)) != artifacts[name]:
                problems.append(f"{name} (changed since aimc wrote it)")
        elif prefix or (name not in RUNTIME_FILES and name != manifest):
            problems.append(f"{name} (not listed in {manifest})")
