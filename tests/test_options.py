"""Bad option and argument values, in aimc's words.

Every numeric or closed-choice parameter of every command, given a value it refuses, is
exit 2 with one ``error:`` line naming the parameter and the value and one ``hint:`` line,
never click's "Invalid value for ...: 'abc' is not a valid integer range." block.
"""

from __future__ import annotations

import json

import click
import pytest

from aimc.cli import COMMANDS, cli, main
from aimc.cli.options import OneOf, Seconds, Whole


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)
    found = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [((name, sub), command.commands[sub]) for sub in sorted(command.commands)]
        else:
            found.append(((name,), command))
    return found


def _checked_params() -> list[tuple[tuple[str, ...], str, object]]:
    """(command words, the parameter's name, its type) for every numeric or choice one."""
    kinds = (click.types.IntParamType, click.types.FloatParamType, click.Choice, Whole, Seconds)
    return [
        (words, param.name or "", param.type)
        for words, command in _commands()
        for param in command.params
        if isinstance(param.type, kinds)
    ]


PARAMS = _checked_params()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_every_numeric_and_choice_parameter_uses_aimc_types() -> None:
    """Failed before: they were click.IntRange / FloatRange / Choice."""
    assert len(PARAMS) > 25
    click_own = [(w, n) for w, n, t in PARAMS if not isinstance(t, (Whole, Seconds, OneOf))]
    assert click_own == []


@pytest.mark.parametrize(
    ("words", "name", "kind"),
    PARAMS,
    ids=[" ".join((*w, n)) for w, n, _ in PARAMS],
)
def test_a_refused_value_is_one_line_and_a_hint(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...], name: str, kind: object
) -> None:
    command = dict(_commands())[words]
    param = next(p for p in command.params if p.name == name)
    value = "fp61" if isinstance(kind, click.Choice) else "abc"
    if isinstance(param, click.Option):
        label = max(param.opts, key=len)
        args = [*words, label, value]
    else:  # an argument: the ones before it get a plausible value
        label = param.human_readable_name.upper()
        before = [
            p
            for p in command.params[: command.params.index(param)]
            if p.param_type_name == "argument"
        ]
        args = [*words, *("Qwen/Qwen3-8B" for _ in before), value]
    code, out, err = _run(capsys, *args)
    assert (code, out) == (2, ""), err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"error: {label}='{value}' is not "), lines[0]
    assert lines[1].startswith("hint: ")
    for click_words in ("Invalid value", "is not a valid", "is not in the range", "Usage:"):
        assert click_words not in err


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ("compile", "Qwen/Qwen3-8B", "abc"),
            "error: GPU_COUNT='abc' is not a GPU count (an integer 1-64)",
            "hint: see 'aim-engine compile --help'",
        ),
        (
            ("launch", "Qwen/Qwen3-8B", "--port", "70000"),
            "error: --port='70000' is not a port number (an integer 1-65535)",
            "hint: see 'aim-engine launch --help'",
        ),
        (
            ("show-config", "Qwen/Qwen3-8B", "--gpu-count", "0"),
            "error: --gpu-count='0' is not a GPU count (an integer 1-64)",
            "hint: see 'aim-engine show-config --help'",
        ),
        (
            ("run", "build", "--timeout", "nan"),
            "error: --timeout='nan' is not a number of seconds (1 or more)",
            "hint: see 'aim-engine run --help'",
        ),
        (
            ("logs", "x", "-n", "-1"),
            "error: --tail='-1' is not a line count (an integer 0 or more)",
            "hint: see 'aim-engine logs --help'",
        ),
        (
            ("compile", "Qwen/Qwen3-8B", "--precision", "bf61"),
            "error: --precision='bf61' is not one of "
            "fp32, bf16, fp16, fp8, int8, int4, mxfp4, nvfp4",
            "hint: did you mean 'bf16'?",
        ),
        (
            ("compile",),
            "error: Missing argument 'MODEL'",
            "hint: see 'aim-engine compile --help'",
        ),
    ],
)
def test_messages_in_aimc_words(capsys, args, error: str, hint: str) -> None:
    """Failed before: click's four lines (Usage, Try, blank, 'Error: Invalid value
    for '[GPU_COUNT]': 'abc' is not a valid integer range.')."""
    code, out, err = _run(capsys, *args)
    assert (code, out, err.splitlines()) == (2, "", [error, hint])


def test_json_error_carries_the_same_message(capsys) -> None:
    code, out, err = _run(capsys, "compile", "Qwen/Qwen3-8B", "x1", "--format", "json")
    assert code == 2 and err == ""
    assert json.loads(out)["error"]["message"] == (
        "GPU_COUNT='x1' is not a GPU count (an integer 1-64)"
    )


def test_every_command_that_prints_takes_format_json() -> None:
    """``--format json`` is accepted by every command that prints: a new command gets it
    through aimc.cli.options.format_option, or this fails."""
    missing = []
    for words, command in _commands():
        fmt = [p for p in command.params if p.name == "fmt"]
        if not fmt or not isinstance(fmt[0].type, OneOf) or "json" not in fmt[0].type.choices:
            missing.append(" ".join(words))
    assert missing == []
    assert len(_commands()) == 19
