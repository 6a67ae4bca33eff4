"""Options shared by several commands, each defined once (as in pip-tools)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from aimc.cli import report

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["format_option", "recipes_option"]


def recipes_option(f: F) -> F:
    """``--recipes DIR`` (repeatable): user recipe directories, before the shipped ones."""
    return click.option(
        "--recipes",
        "recipe_dirs",
        multiple=True,
        metavar="DIR",
        type=click.Path(file_okay=False, dir_okay=True),
        help="Extra recipe directory (repeatable; before $AIMC_RECIPES and the shipped ones).",
    )(f)


def _remember_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    report.set_format(value)
    return value


def format_option(*choices: str, default: str = "table") -> Callable[[F], F]:
    """``--format`` with the given choices; errors are printed in the same format."""

    def decorate(f: F) -> F:
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(choices),
            default=default,
            show_default=True,
            callback=_remember_format,
            is_eager=True,
            help="Output format.",
        )(f)

    return decorate
