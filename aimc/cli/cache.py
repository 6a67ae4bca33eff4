"""``aim-engine cache stats|list|download|remove|prune``: the Hugging Face model cache in
CACHE_DIR (:mod:`aimc.modelcache.cache` reads it, :mod:`aimc.modelcache.cache_removal` plans
removals,
:func:`aimc.modelcache.download.download` fills it)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import click

from aimc.check.catalog import Catalog
from aimc.cli.options import current_settings, format_option, recipes_option
from aimc.cli.report import count, emit_result, table
from aimc.core.diagnostics import whole_line
from aimc.core.errors import AimcError, ConfigError
from aimc.core.log import line
from aimc.modelcache.cache import Entry, human_size, missing_files, scan
from aimc.modelcache.cache_removal import Removal, prune_plan, removal
from aimc.modelcache.checkpoint import check_cache_dir

__all__ = ["cache"]


def _entries() -> tuple[Path, list[Entry]]:
    folder = current_settings().cache_dir
    check_cache_dir(folder)
    return folder, scan(folder)


def _date(seconds: int) -> str:
    if not seconds:
        return "-"
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M")


@click.group()
def cache() -> None:
    """Model cache commands (CACHE_DIR, default /workspace/model-cache)."""


@cache.command()
@format_option("table", "json")
def stats(fmt: str) -> None:
    """Display cache statistics: models (complete, incomplete, broken), files, exact size."""
    folder, entries = _entries()
    size = sum(e.size_bytes for e in entries)
    by_status = {
        s: sum(1 for e in entries if e.status == s) for s in ("complete", "incomplete", "broken")
    }
    data: dict[str, Any] = {
        "cache_dir": str(folder),
        "exists": folder.is_dir(),
        "models": len(entries),
        **by_status,
        "files": sum(e.files for e in entries),
        "size_bytes": size,
        "size": human_size(size),
        "size_gib": round(size / 2**30, 3),
        "incomplete_bytes": sum(e.incomplete_bytes for e in entries),
        "last_used": max((e.last_used for e in entries), default=0),
    }
    if fmt == "json":
        emit_result(data, fmt, f"{count(len(entries), 'model')} in {folder}")
        return
    states = ", ".join(f"{n} {s}" for s, n in by_status.items())
    click.echo(
        f"cache:      {data['cache_dir']}" + ("" if data["exists"] else " (not created yet)")
    )
    click.echo(f"models:     {data['models']} ({states})")
    click.echo(f"files:      {data['files']}")
    click.echo(f"size:       {data['size']} ({size} bytes)")
    click.echo(
        f"incomplete: {human_size(data['incomplete_bytes'])} of interrupted downloads"
        " (aim-engine cache prune removes them)"
        if data["incomplete_bytes"]
        else "incomplete: none"
    )
    click.echo(f"last used:  {_date(data['last_used'])}")


def _recipe_weights(recipe_dirs: tuple[str, ...]) -> dict[str, list[str]]:
    """Repository id -> the recipes' weights it is (``Qwen/Qwen3-32B fp8``); a recipe that
    does not load is left out (``validate`` reports it)."""
    catalog = Catalog.default(recipe_dirs)
    found: dict[str, set[str]] = {}
    for model in catalog.model_ids():
        try:
            data = catalog.recipe(model).data
        except AimcError:
            continue
        weights = [data["weights"], *(c.get("weights", {}) for c in data["configurations"])]
        for table_ in weights:
            for precision, source in table_.items():
                if "repo" in source:
                    found.setdefault(source["repo"], set()).add(f"{model} {precision}")
    return {repo: sorted(uses) for repo, uses in found.items()}


@cache.command("list")
@click.option(
    "--filter",
    "pattern",
    metavar="TEXT",
    help="Only models whose id contains TEXT (case-insensitive).",
)
@recipes_option
@format_option("table", "json", "yaml")
def list_(pattern: str | None, recipe_dirs: tuple[str, ...], fmt: str) -> None:
    """List cached models: size, revisions, last use, complete / incomplete / broken, and
    which recipe's weights (model and precision) each one is."""

    _folder, entries = _entries()
    entries = [e for e in entries if not pattern or pattern.casefold() in e.model.casefold()]
    message = count(len(entries), "cached model")
    used = _recipe_weights(recipe_dirs) if entries else {}
    if fmt != "table":
        emit_result(
            [{**e.as_json(), "recipes": used.get(e.model, [])} for e in entries], fmt, message
        )
        return
    if not entries:
        click.echo("(none)")
        return
    rows = [
        {
            "model": whole_line(e.model),
            "status": e.status,
            "size": e.as_json()["size"],
            "bytes": e.size_bytes,
            "files": e.files,
            "refs": e.refs,
            "revisions": [r.commit[:12] for r in e.revisions],
            "last_used": _date(e.last_used),
            "recipes": used.get(e.model),
        }
        for e in entries
    ]
    columns = [
        "model",
        "status",
        "size",
        "bytes",
        "files",
        "refs",
        "revisions",
        "last_used",
        "recipes",
    ]
    click.echo(table(rows, columns))
    for e in entries:
        if e.missing:
            click.echo(f"{whole_line(e.model)}: missing {', '.join(e.missing)}")
        for problem in e.problems:
            click.echo(f"{whole_line(e.model)}: broken: {problem}")


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
    """Download MODEL to the cache: a recipe's model id (its weights) or any repository id.

    Only what vLLM reads is fetched (safetensors and index, config, tokenizer, generation
    config). Progress is shown on stderr; an interrupted download resumes with the files
    still missing; HF_TOKEN (from the environment, never stored) opens gated repositories.
    """
    # aimc.modelcache.download brings httpx2 and the hub's machinery: loaded only to download.
    from aimc.modelcache.download import download

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
    path = download(repo, revision, current_settings().cache_dir, force=force)
    missing = missing_files(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    result = {
        "model": repo,
        "path": str(path),
        "revision": path.name,
        "files": len(files),
        "size_bytes": size,
        "complete": not missing,
        "missing": missing,
    }
    if fmt == "json":
        emit_result(result, fmt, f"{repo} is in the cache")
        return
    state = "complete" if not missing else "incomplete: missing " + ", ".join(missing)
    click.echo(f"{repo}: {path}")
    click.echo(f"{count(len(files), 'file')}, {human_size(size)} ({size} bytes), {state}")


def _confirm(what: str, yes: bool, fmt: str) -> bool:
    """Ask before deleting (on a terminal); ``--yes`` skips the question."""
    if yes:
        return True
    if fmt == "json" or not sys.stdin.isatty():
        raise ConfigError(
            f"removing {what} needs confirmation: nothing was removed",
            hint="pass --yes to remove without asking",
        )
    return click.confirm(f"remove {what}?", err=True)


def _report_removal(plan: Removal, fmt: str, yes: bool, what: str) -> None:
    data = plan.as_json()
    if not plan.models and not plan.incomplete_files:
        data["removed"] = False
        if fmt == "json":
            emit_result(data, fmt, "nothing to remove")
        else:
            click.echo("nothing to remove")
        return
    target = f"{what} ({human_size(plan.size_bytes)})"
    if not _confirm(target, yes, fmt):
        line("note", "nothing removed", "INFO", text="nothing removed")
        return
    plan.execute()
    data["removed"] = True
    if fmt == "json":
        emit_result(data, fmt, f"removed {target}")
    else:
        click.echo(f"removed {target}")


@cache.command()
@click.argument("model")
@click.option("--revision", help="Only this revision (commit, or a branch or tag naming one).")
@click.option("--yes", "-y", is_flag=True, help="Remove without asking.")
@format_option("text", "json", default="text")
def remove(model: str, revision: str | None, yes: bool, fmt: str) -> None:
    """Remove MODEL (every revision, or --revision) from the cache."""
    folder = current_settings().cache_dir
    check_cache_dir(folder)
    plan = removal(folder, model, revision)
    revisions = f" revision {', '.join(plan.revisions)}" if revision else ""
    _report_removal(plan, fmt, yes, f"{model}{revisions}")


@cache.command()
@click.option("--yes", "-y", is_flag=True, help="Remove without asking.")
@format_option("text", "json", default="text")
def prune(yes: bool, fmt: str) -> None:
    """Remove revisions no branch or tag names and interrupted downloads."""
    folder = current_settings().cache_dir
    check_cache_dir(folder)
    plan = prune_plan(folder)
    what = ", ".join(
        part
        for part in (
            count(len(plan.revisions), "unreferenced revision") if plan.revisions else "",
            count(len(plan.incomplete_files), "interrupted download")
            if plan.incomplete_files
            else "",
        )
        if part
    )
    _report_removal(plan, fmt, yes, what)
