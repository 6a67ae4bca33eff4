"""A Hugging Face cache written by hand, as huggingface_hub lays it out (blobs, snapshots,
refs), for the cache and JSON-output tests."""

from __future__ import annotations

from pathlib import Path

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
