"""What may be written where: the one place that judges names and values bound for artifacts.

Every user-controlled string that reaches a generated file passes a check here, chosen by
its destination:

==============  =====================================================================
destination     rule
==============  =====================================================================
env name        ``[A-Za-z_][A-Za-z0-9_]*``, at most 128 characters (:data:`ENV_NAME`): the
                shell's and Docker's variable names; anything else could end an
                ``export`` line
env value       :data:`ENV_VALUE` characters only: ``aim.env`` is read literally by
                ``docker --env-file`` and expanded by a shell, so it must mean the same
engine arg      the backend's vocabulary (:func:`aimc.domain.engine_args.check_arg`); a value never
                starts with ``-`` (it would be read as another flag) unless argparse
                reads it as a negative number (:func:`flag_like`), and holds no NUL;
                every argv word is checked where the plan becomes argv
                (:func:`check_argv_word`, from :func:`aimc.emit.render.server_argv_groups`)
device ids      ``--devices``: :func:`parse_devices` (comma-separated integers 0-255, no
                duplicates): they reach ``docker run --gpus``, Compose ``device_ids`` and
                ``CUDA_VISIBLE_DEVICES``
image, host...  the ``--config`` schema (``overrides.schema.json``), for ``--set`` too
comment         :func:`aimc.core.diagnostics.whole_line` (control characters escaped)
shell word      :func:`aimc.emit.templating.shell_quote`
YAML / compose  :func:`aimc.emit.templating.to_yaml` (JSON-quoted strings), ``$`` doubled
==============  =====================================================================

Secrets never leave aimc: :func:`mask` hides token-shaped text and the values of the
caller's secret variables in every message, and :func:`shown_set` hides the value of a
``--set`` item whose name is a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aimc.core.diagnostics import whole_line
from aimc.core.errors import ConfigError
from aimc.core.masking import SECRET_ENV, mask

__all__ = [
    "ENV_NAME",
    "ENV_VALUE",
    "MAX_DEVICE_ID",
    "NEGATIVE_NUMBER",
    "SECRET_ENV",
    "check_argv_word",
    "check_env",
    "flag_like",
    "format_devices",
    "holds_secret",
    "mask",
    "parse_devices",
    "shorten",
]

#: Names of environment variables aimc writes (``export NAME=...``, ``NAME=...``). The
#: schemas' ``propertyNames`` pattern and the importers (``aimc.interop._args.ENV_NAME``)
#: take the same shape with no bound (the recipe format has none); the bound is the write
#: stage's, so a longer name is refused here, where it would reach an artifact, with its
#: source named (``tests/test_vocabulary.py`` ties the three).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Characters an environment value may hold: the same text for a shell and ``--env-file``.
ENV_VALUE = re.compile(r"[A-Za-z0-9_@%+=:,./^-]{0,4096}")

#: The largest GPU device id ``--devices`` takes (an 8-GPU node split into 8 partitions
#: each numbers 64; the bound only keeps a typo from being written).
MAX_DEVICE_ID = 255
#: ``--devices``: ASCII digits (no sign, no leading zero) separated by single commas.
#: Compiled on first use (re's cache): compiling it costs each start-up ~0.2 ms, and only
#: ``--devices`` is checked against it.
_DEVICES = r"(0|[1-9][0-9]{0,2})(,(0|[1-9][0-9]{0,2})){0,63}"

#: An argument word argparse reads as a negative number, not as an option: Python 3.11's
#: ``ArgumentParser._negative_number_matcher`` (``^-\d+$|^-\d*\.\d+$``; 3.13 reads more,
#: ``-\.?\d`` as a prefix, so this is the narrower of the two). vLLM's
#: FlexibleArgumentParser and SGLang's server_args.py are argparse parsers. The pattern's
#: text, compiled on first use (re's cache): compiling it costs each start-up ~0.1 ms, and
#: only a word that starts with ``-`` is checked against it (none on a compile's path).
NEGATIVE_NUMBER = r"-\d+|-\d*\.\d+"


def check_env(name: str, value: str, source: str) -> None:
    """Refuse an environment variable that cannot be written safely.

    Raises:
        ConfigError: The name is not a variable name, or the value holds shell syntax.
    """
    if not ENV_NAME.fullmatch(name):
        raise ConfigError(
            f"environment variable name {shorten(whole_line(name))!r} ({source}) is not a "
            "variable name",
            hint="names use letters, digits and '_' and do not start with a digit",
        )
    if holds_secret(value):
        raise ConfigError(
            f"environment variable {name} ({source}) holds a token or the value of one of "
            "your secret variables; it would be written to aim.env",
            hint="pass secrets through the environment (HF_TOKEN, VLLM_API_KEY), never in a "
            "recipe or --set",
        )
    if not ENV_VALUE.fullmatch(value):
        raise ConfigError(
            f"environment variable {name}={shorten(mask(whole_line(value)))!r} ({source}) "
            "cannot be written safely to aim.env",
            hint="env values may use letters, digits and _ @ % + = : , . / ^ - only, up to "
            "4096 characters (docker --env-file reads them literally, a shell would "
            "expand them)",
        )


def flag_like(word: str) -> bool:
    """Whether an argument word would be read as an option (or is not one word): it starts
    with ``-`` and is not a :data:`NEGATIVE_NUMBER` (``-inf``, ``-1e5``, ``-x`` are
    options to argparse), or it holds a NUL (which ends the word in ``execve``)."""
    return "\0" in word or (
        word.startswith("-") and not re.fullmatch(NEGATIVE_NUMBER, word, re.ASCII)
    )


def check_argv_word(field: str, word: str, source: str) -> None:
    """Refuse a value bound for the server's argv that the server would read as a flag.

    Args:
        field: What the value is (``served_model_name``, ``--tokenizer``, ``the model``).
        word: The argv word, as it is written.
        source: Where the value was set (``--set ...``, ``file:line``).

    Raises:
        ConfigError: :func:`flag_like` ``word``.
    """
    if flag_like(word):
        raise ConfigError(
            f"{field} {shorten(mask(whole_line(word)), 60)!r} "
            f"({shorten(whole_line(source), 80)}) "
            "starts with '-' (the server would read it as another flag) or holds a NUL",
            hint="an engine value never starts with '-' (negative numbers aside)",
        )


def shorten(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def holds_secret(value: object, environ: Mapping[str, str] | None = None, depth: int = 0) -> bool:
    """True when ``value`` (text, or a list or mapping holding text) contains something
    :func:`mask` hides: a token-shaped word, or the value of one of the caller's secret
    variables. Such a value is never written to an artifact or imported."""
    if depth > 32:
        return False
    if isinstance(value, str):
        return mask(value, environ) != value
    if isinstance(value, Mapping):
        return any(
            holds_secret(k, environ, depth + 1) or holds_secret(v, environ, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return any(holds_secret(v, environ, depth + 1) for v in value)
    return False


def parse_devices(text: str) -> tuple[int, ...]:
    """``--devices 4,5,6,7`` -> ``(4, 5, 6, 7)``: the GPUs a server uses, by the device ids
    ``nvidia-smi`` / ``amd-smi`` number them, in the order given.

    Raises:
        ConfigError: Anything but 1 to 64 comma-separated integers 0 to
            :data:`MAX_DEVICE_ID` (written plainly: no sign, space or leading zero), or a
            device named twice.
    """
    if not re.fullmatch(_DEVICES, text, re.ASCII):
        raise ConfigError(
            f"--devices {shorten(mask(whole_line(text)), 60)!r} is not a list of GPU device ids",
            hint="give comma-separated device ids as nvidia-smi / amd-smi number them, "
            f"e.g. --devices 4,5,6,7 (each 0 to {MAX_DEVICE_ID}, no spaces)",
        )
    ids = tuple(int(word) for word in text.split(","))
    if max(ids) > MAX_DEVICE_ID:
        raise ConfigError(
            f"--devices {text}: device id {max(ids)} is above {MAX_DEVICE_ID}",
            hint="give device ids as nvidia-smi / amd-smi number them",
        )
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(
            f"--devices {text} names device {twice[0]} more than once",
            hint="name each GPU once",
        )
    return ids


def format_devices(ids: tuple[int, ...] | list[int]) -> str:
    """``4,5,6,7``: device ids as ``--devices`` takes them (and the artifacts write them)."""
    return ",".join(str(int(i)) for i in ids)
