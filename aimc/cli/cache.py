"""``aim-engine cache stats|list|download``: the Hugging Face model cache in CACHE_DIR."""

from __future__ import annotations

from typing import Any

import click

from aimc.cli.options import current_settings, format_option, recipes_option
from aimc.cli.report import count, emit, emit_result

__all__ = ["cache"]


def _scan() -> tuple[Any, list[dict[str, Any]]]:
    """The cache folder and one row per cached model repository."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from aimc.checkpoint import check_cache_dir
    from aimc.errors import CacheError

    folder = current_settings().cache_dir
    check_cache_dir(folder)
    try:
        info = scan_cache_dir(folder)
    except CacheNotFound:
        return folder, []
    except (OSError, ValueError) as exc:
        raise CacheError(f"cannot read the model cache {folder}: {exc}") from None
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        rows.append(
            {
                "model": repo.repo_id,
                "size_gib": round(repo.size_on_disk / 2**30, 3),
                "files": repo.nb_files,
                "revisions": sorted(r.commit_hash[:12] for r in repo.revisions),
                "refs": sorted(repo.refs),
                "last_modified": int(repo.last_modified),
                "path": str(repo.repo_path),
            }
        )
    return folder, rows


@click.group()
def cache() -> None:
    """Model cache commands (CACHE_DIR, default /workspace/model-cache)."""


@cache.command()
@format_option("table", "json")
def stats(fmt: str) -> None:
    """Display cache statistics: models, files and size on disk."""
    folder, rows = _scan()
    data = {
        "cache_dir": str(folder),
        "exists": folder.is_dir(),
        "models": len(rows),
        "files": sum(r["files"] for r in rows),
        "size_gib": round(sum(r["size_gib"] for r in rows), 3),
    }
    if fmt == "json":
        emit_result(data, fmt, f"{count(len(rows), 'model')} in {folder}")
        return
    click.echo(f"cache:  {data['cache_dir']}" + ("" if data["exists"] else " (not created yet)"))
    click.echo(f"models: {data['models']}")
    click.echo(f"files:  {data['files']}")
    click.echo(f"size:   {data['size_gib']} GiB")


@cache.command("list")
@click.option(
    "--filter",
    "pattern",
    metavar="TEXT",
    help="Only models whose id contains TEXT (case-insensitive).",
)
@format_option("table", "json", "yaml")
def list_(pattern: str | None, fmt: str) -> None:
    """List cached models."""
    _folder, rows = _scan()
    rows = [r for r in rows if not pattern or pattern.casefold() in r["model"].casefold()]
    message = count(len(rows), "cached model")
    emit(rows, fmt, ["model", "size_gib", "files", "refs", "revisions"], message)


@cache.command()
@click.argument("model")
@click.option("--precision", help="Which of the recipe's weights (default: its default).")
@click.option("--revision", help="Branch, tag or commit (default: the recipe's, else main).")
@click.option("--force", is_flag=True, help="Download again even when cached.")
@recipes_option
@format_option("text", "json", default="text")
def download(
    model: str,
    precision: str | None,
    revision: str | None,
    force: bool,
    recipe_dirs: tuple[str, ...],
    fmt: str,
) -> None:
    """Download MODEL to the cache: a recipe's model id (its weights) or any repository id."""
    from aimc.catalog import Catalog
    from aimc.checkpoint import download
    from aimc.errors import ConfigError

    catalog = Catalog.default(recipe_dirs)
    repo = model
    if model in catalog.model_files():
        data = catalog.recipe(model).data
        chosen = (
            precision or data.get("defaults", {}).get("precision") or next(iter(data["weights"]))
        )
        weights = data["weights"].get(chosen)
        if weights is None:
            raise ConfigError(
                f"{model} has no {chosen} weights", hint="declared: " + ", ".join(data["weights"])
            )
        if "repo" not in weights:
            raise ConfigError(f"{model} {chosen} weights are a local folder: nothing to download")
        repo, revision = weights["repo"], revision or weights.get("revision")
    path = str(download(repo, revision, current_settings().cache_dir, force=force))
    if fmt == "json":
        emit_result({"model": repo, "path": path}, fmt, f"{repo} is in the cache")
    else:
        click.echo(f"{repo}: {path}")
