"""Every environment variable aimc honours, read and validated in one place.

:meth:`Settings.load` builds one frozen :class:`Settings` with the precedence
**flag > environment > default**: a flag (a keyword argument: a command-line option or a
Python API argument) wins when it is given (not None), else the environment variable when
it is set and not empty, else the default written in this module (and nowhere else).

===================  ======================  =========================  ======================
variable             default                 validation                 field: read by
===================  ======================  =========================  ======================
``CACHE_DIR``        /workspace/model-cache  made absolute [1]_; a      cache_dir: ``cache``
                                             file: CacheError (exit 5)  commands, ``launch``,
                                             when the cache is used     the API, the server
                                                                        [2]_
``AIMC_STATE_DIR``   $XDG_STATE_HOME/aimc,   a path                     state_dir: the runner
                     else                                               (run records),
                     ~/.local/state/aimc                                ``launch`` builds
``DOCKER_SOCKET``    unset: Docker's own     a path                     docker_socket: the
                     /var/run/docker.sock                               runner [3]_
``DEFAULT_PORT``     8000                    integer 1-65535, else      default_port:
                                             ConfigError (exit 2)       ``compile``,
                                                                        ``launch``, API [4]_
``DEFAULT_TIMEOUT``  600                     positive finite seconds,   default_timeout:
                                             else ConfigError (exit 2)  ``launch``, ``run``,
                                                                        the API [5]_
``AIM_DEBUG``        off                     1/true/yes/on, 0/false/    debug: the CLI,
                                             no/off/"" [6]_             ``launch``, API [7]_
``LOG_LEVEL``        INFO                    DEBUG INFO WARNING WARN    log_level:
                                             ERROR CRITICAL [6]_        :mod:`aimc.core.log`
``LOG_FORMAT``       json                    json, text [6]_            log_format:
                                                                        :mod:`aimc.core.log`
``AIMC_RECIPES``     none                    folders split at ``:``,    recipe_dirs: the
                                             empty parts skipped        catalog [8]_
``AIMC_DETECT_       10                      positive finite seconds    detect_timeout:
TIMEOUT``                                    [6]_                       :mod:`aimc.detect` [9]_
``AIMC_KFD_          /sys/class/kfd/kfd/     a path                     kfd_topology:
TOPOLOGY``           topology/nodes                                     :mod:`aimc.detect` [9]_
===================  ======================  =========================  ======================

.. [1] The server runs in its own folder, so a relative ``CACHE_DIR`` is made absolute
   against the current folder. A ``CACHE_DIR`` that exists and is not a folder is refused
   by :func:`aimc.modelcache.checkpoint.check_cache_dir` when the cache is used, not at load.
.. [2] ``launch`` and the API hand the cache to the server as ``CACHE_DIR``
   (:meth:`Settings.server_env`).
.. [3] ``DOCKER_HOST=unix://PATH`` for the ``docker`` commands of the runner, unless
   ``DOCKER_HOST`` is set.
.. [4] The plan's port when ``--port`` (API: ``port=``) is not given; the flag is the
   plan's top layer and ``DEFAULT_PORT`` its bottom one, so recipes and ``--config`` sit
   between them.
.. [5] Seconds to wait for readiness when ``--timeout`` (API: ``timeout=``) is not given.
.. [6] Any case. Anything else is one warning line on stderr (once per process for a
   variable and value) and the default.
.. [7] The same as ``--debug``: tracebacks of internal errors and, for ``launch`` and the
   API's ``launch_model``, verbose server logs: the plan gets the backend's debug
   settings (vLLM ``VLLM_LOGGING_LEVEL=DEBUG`` in its env, SGLang ``--log-level debug``),
   so they reach the server in a container as well as in a bare process.
.. [8] After the ``--recipes`` directories, before the shipped recipes.
.. [9] Read from the environment :func:`aimc.detect.detect` is given (tests pass their
   own), through :func:`setting`: how long one detection tool may run, and the KFD
   topology folder to read.

Without ``AIMC_STATE_DIR`` and ``XDG_STATE_HOME`` the state folder is under the home
folder (``HOME``, else the password database); with none of them it is a ConfigError.
An empty variable counts as unset.

Read elsewhere, not settings:

- ``AIM_PYTHON`` (default ``python3``): read by the generated ``launch.sh`` at run time (the
  interpreter with the backend installed, for the bare-process launcher), never by aimc.
- Secrets and server variables (``HF_TOKEN``, ``HF_HUB_OFFLINE``, ``VLLM_API_KEY``...):
  never read into settings; they pass through to the server untouched.

This module imports only the standard library and :mod:`aimc.core.errors` (and, to write a
warning, :mod:`aimc.core.logrecord`), so that the command line starts fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, overload

from aimc.core.errors import ConfigError

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "Settings",
    "setting",
]

#: Defaults, each written once (see the table above).
DEFAULT_CACHE_DIR = "/workspace/model-cache"
DEFAULT_PORT = 8000
DEFAULT_TIMEOUT = 600.0
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LOG_FORMAT = "json"
DEFAULT_DETECT_TIMEOUT = 10.0
DEFAULT_KFD_TOPOLOGY = "/sys/class/kfd/kfd/topology/nodes"

#: ``LOG_LEVEL`` names and their numeric levels.
LOG_LEVELS: Mapping[str, int] = MappingProxyType(
    {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
)
LOG_FORMATS = ("json", "text")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

#: (variable, value) pairs already warned about in this process.
_warned: set[tuple[str, str]] = set()


class _Invalid(ValueError):
    """A value that does not pass a setting's validation; the text says why."""


def _text(value: object) -> str:
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str):
            return text
    raise _Invalid("is not a text value")


def _path(value: object) -> Path:
    text = _text(value)
    if not text:
        raise _Invalid("is empty")
    if "\x00" in text:
        raise _Invalid("contains a NUL character")
    return Path(text)


def _absolute_path(value: object) -> Path:
    return Path(os.path.abspath(_path(value)))


def _port(value: object) -> int:
    if isinstance(value, bool):
        raise _Invalid("is not a port number (an integer 1-65535)")
    if isinstance(value, int):
        port = value
    else:
        try:
            port = int(_text(value).strip())
        except (ValueError, _Invalid):
            raise _Invalid("is not a port number (an integer 1-65535)") from None
    if not 1 <= port <= 65535:
        raise _Invalid("is not a port number (an integer 1-65535)")
    return port


def _seconds(value: object) -> float:
    reason = "is not a positive number of seconds"
    if isinstance(value, bool):
        raise _Invalid(reason)
    try:
        seconds = float(value) if isinstance(value, (int, float)) else float(_text(value))
    except (ValueError, OverflowError, _Invalid):
        raise _Invalid(reason) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise _Invalid(reason)
    return seconds


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Invalid(f"is not one of {', '.join(_TRUE + _FALSE[:-1])}")


def _log_level(value: object) -> str:
    name = _text(value).strip().upper()
    if name not in LOG_LEVELS:
        raise _Invalid(f"is not one of {', '.join(LOG_LEVELS)}")
    return name


def _log_format(value: object) -> str:
    name = _text(value).strip().lower()
    if name not in LOG_FORMATS:
        raise _Invalid(f"is not one of {', '.join(LOG_FORMATS)}")
    return name


def _recipe_dirs(value: object) -> tuple[Path, ...]:
    if isinstance(value, (str, os.PathLike)):
        return tuple(Path(d) for d in _text(value).split(os.pathsep) if d)
    if isinstance(value, Sequence):
        return tuple(_path(d) for d in value)
    raise _Invalid("is not a list of directories")


def _home(environ: Mapping[str, str]) -> Path:
    if environ.get("HOME"):
        return Path(environ["HOME"])
    try:
        import pwd  # deferred: POSIX only, and needed only without HOME

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError, OSError):
        raise ConfigError(
            "cannot find the home folder for the state folder: set AIMC_STATE_DIR"
        ) from None


def _default_state_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_STATE_HOME")
    return (Path(base) if base else _home(environ) / ".local" / "state") / "aimc"


class _Var(NamedTuple):
    """One setting: its field, its variable, its default and its validation (a named tuple:
    a dataclass costs each start-up ~0.5 ms more)."""

    field: str
    env: str
    default: Callable[[Mapping[str, str]], Any]
    parse: Callable[[object], Any]
    #: True: an invalid environment value is a warning and the default, not an error.
    lenient: bool = False


_VARS = (
    _Var("cache_dir", "CACHE_DIR", lambda env: Path(DEFAULT_CACHE_DIR), _absolute_path),
    _Var("state_dir", "AIMC_STATE_DIR", _default_state_dir, _path),
    _Var("docker_socket", "DOCKER_SOCKET", lambda env: None, _path),
    _Var("default_port", "DEFAULT_PORT", lambda env: DEFAULT_PORT, _port),
    _Var("default_timeout", "DEFAULT_TIMEOUT", lambda env: DEFAULT_TIMEOUT, _seconds),
    _Var("debug", "AIM_DEBUG", lambda env: False, _bool, lenient=True),
    _Var("log_level", "LOG_LEVEL", lambda env: DEFAULT_LOG_LEVEL, _log_level, lenient=True),
    _Var("log_format", "LOG_FORMAT", lambda env: DEFAULT_LOG_FORMAT, _log_format, lenient=True),
    _Var("recipe_dirs", "AIMC_RECIPES", lambda env: (), _recipe_dirs),
    _Var(
        "detect_timeout",
        "AIMC_DETECT_TIMEOUT",
        lambda env: DEFAULT_DETECT_TIMEOUT,
        _seconds,
        lenient=True,
    ),
    _Var("kfd_topology", "AIMC_KFD_TOPOLOGY", lambda env: Path(DEFAULT_KFD_TOPOLOGY), _path),
)
_BY_FIELD = {var.field: var for var in _VARS}


def _shown(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 320:
        return f"<an integer of {value.bit_length()} bits>"  # repr refuses 4300+ digits
    try:
        text = repr(value)
    except Exception:  # an object whose repr fails
        return f"<a {type(value).__name__} value>"
    return text if len(text) <= 80 else text[:77] + "..."


def _warn_once(name: str, value: str, message: str, env: Mapping[str, str]) -> None:
    """One warning line on stderr (once per process for a variable and value): a JSON
    record under ``LOG_FORMAT=json`` (the default, also when LOG_FORMAT itself is the
    invalid one), else ``warning: ...`` (see :mod:`aimc.core.log`)."""
    if (name, value) in _warned:
        return
    _warned.add((name, value))
    try:
        fmt = _log_format(env.get("LOG_FORMAT") or DEFAULT_LOG_FORMAT)
    except _Invalid:
        fmt = DEFAULT_LOG_FORMAT
    if fmt == "json":
        from aimc.core.logrecord import json_record

        text = json_record("WARNING", message, variable=name)
    else:
        text = f"warning: {message}"
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # no usable stderr: the warning is not worth a failure
        pass


def _flag(var: _Var, value: object) -> Any:
    """The value of a flag given for ``var``; ConfigError naming the flag when invalid."""
    try:
        return var.parse(value)
    except _Invalid as exc:
        raise ConfigError(f"{var.field}={_shown(value)} {exc}") from None


def _from_env(var: _Var, raw: str, env: Mapping[str, str]) -> tuple[Any, str]:
    """(value, origin) of ``var`` set to ``raw`` in the environment ``env``.

    Raises:
        ConfigError: ``raw`` is invalid and ``var`` is not lenient (one line naming both).
    """
    try:
        return var.parse(raw), "environment"
    except _Invalid as exc:
        if not var.lenient:
            raise ConfigError(f"{var.env}={_shown(raw)} {exc}") from None
        default = var.default(env)
        shown = ("on" if default else "off") if isinstance(default, bool) else default
        message = f"{var.env}={_shown(raw)} {exc}; using the default ({shown})"
        _warn_once(var.env, raw, message, env)
        return default, "default"


def _value(var: _Var, flag: object, env: Mapping[str, str]) -> tuple[Any, str]:
    """(value, origin) of ``var``: the flag when given, else the environment, else the
    default. The one place where the precedence is applied."""
    if flag is not None:
        return _flag(var, flag), "flag"
    raw = env.get(var.env, "")
    if raw:
        return _from_env(var, raw, env)
    return var.default(env), "default"


@dataclass(frozen=True)
class Settings:
    """aimc's settings, built by :meth:`Settings.load` (see the module's table).

    Attributes:
        cache_dir: The Hugging Face model cache (absolute).
        state_dir: Run records and ``launch`` build folders.
        docker_socket: The Docker engine socket, or None for the Docker CLI's own.
        default_port: The endpoint port when none is given.
        default_timeout: Seconds to wait for readiness when none is given.
        debug: Tracebacks of internal errors; verbose logs of servers ``launch`` starts.
        log_level: Notes below this level are hidden.
        log_format: ``json`` or ``text`` notes.
        recipe_dirs: Recipe directories from ``AIMC_RECIPES`` (``--recipes`` ones come
            before them, the shipped recipes after).
        detect_timeout: Seconds one GPU detection tool may run.
        kfd_topology: The KFD topology folder GPU detection reads.
        origins: Field name -> ``flag``, ``environment`` or ``default``: where the value
            came from.
    """

    cache_dir: Path
    state_dir: Path
    docker_socket: Path | None
    default_port: int
    default_timeout: float
    debug: bool
    log_level: str
    log_format: str
    recipe_dirs: tuple[Path, ...]
    detect_timeout: float
    kfd_topology: Path
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        docker_socket: str | os.PathLike[str] | None = None,
        default_port: int | None = None,
        default_timeout: float | None = None,
        debug: bool | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
        recipe_dirs: Sequence[str | os.PathLike[str]] | None = None,
        detect_timeout: float | None = None,
        kfd_topology: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """The settings: each flag given (not None), else its variable in ``environ``
        (default: this process's environment) when set and not empty, else its default.

        Raises:
            ConfigError: A variable or flag has an invalid value (one line naming it and
                its value); lenient variables (``AIM_DEBUG``, ``LOG_LEVEL``,
                ``LOG_FORMAT``) warn once on stderr and take their default instead.
        """
        flags: dict[str, object] = {
            "cache_dir": cache_dir,
            "state_dir": state_dir,
            "docker_socket": docker_socket,
            "default_port": default_port,
            "default_timeout": default_timeout,
            "debug": debug,
            "log_level": log_level,
            "log_format": log_format,
            "recipe_dirs": recipe_dirs,
            "detect_timeout": detect_timeout,
            "kfd_topology": kfd_topology,
        }
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for var in _VARS:
            values[var.field], origins[var.field] = _value(var, flags[var.field], env)
        return cls(**values, origins=MappingProxyType(origins))

    def with_flags(self, **flags: object) -> Settings:
        """These settings with the flags that are given (not None) on top: the flag layer
        of :meth:`load`, for flags known only later (a command's ``--timeout``).

        Raises:
            ConfigError: A flag has an invalid value.
            TypeError: A flag is not a setting.
        """
        values: dict[str, Any] = {}
        origins = dict(self.origins)
        for name, flag in flags.items():
            var = _BY_FIELD.get(name)
            if var is None:
                raise TypeError(f"{name!r} is not a setting")
            if flag is not None:
                values[name], origins[name] = _flag(var, flag), "flag"
        if not values:
            return self
        return dataclasses.replace(self, **values, origins=MappingProxyType(origins))

    def origin(self, name: str) -> str:
        """Where the field ``name`` came from: ``flag``, ``environment`` or ``default``."""
        return self.origins.get(name, "default")

    @property
    def default_port_given(self) -> int | None:
        """``default_port`` when the environment (``DEFAULT_PORT``) or a flag set it, else
        None: a plan then records its port as the aimc default rather than ``$DEFAULT_PORT``."""
        return None if self.origin("default_port") == "default" else self.default_port

    def server_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a server aimc starts.

        A copy of ``environ`` (default: this process's) with everything passed through
        untouched (secrets such as ``HF_TOKEN`` included), ``CACHE_DIR`` set to
        :attr:`cache_dir`, and under :attr:`debug` ``AIM_DEBUG=1``. The server's own debug
        level is no variable of this environment (a container would not see it): it is in
        the plan (:attr:`aimc.plan.request.Request.debug`).
        """
        env = dict(os.environ if environ is None else environ)
        env["CACHE_DIR"] = str(self.cache_dir)
        if self.debug:
            env["AIM_DEBUG"] = "1"
        return env


_Env = Mapping[str, str] | None


@overload
def setting(
    name: Literal["cache_dir", "state_dir", "kfd_topology"],
    environ: _Env = None,
    flag: object = None,
) -> Path: ...
@overload
def setting(
    name: Literal["docker_socket"], environ: _Env = None, flag: object = None
) -> Path | None: ...
@overload
def setting(name: Literal["default_port"], environ: _Env = None, flag: object = None) -> int: ...
@overload
def setting(
    name: Literal["default_timeout", "detect_timeout"], environ: _Env = None, flag: object = None
) -> float: ...
@overload
def setting(name: Literal["debug"], environ: _Env = None, flag: object = None) -> bool: ...
@overload
def setting(
    name: Literal["log_level", "log_format"], environ: _Env = None, flag: object = None
) -> str: ...
@overload
def setting(
    name: Literal["recipe_dirs"], environ: _Env = None, flag: object = None
) -> tuple[Path, ...]: ...
def setting(name: str, environ: _Env = None, flag: object = None) -> Any:
    """One field of :class:`Settings`, with the same precedence and validation as
    :meth:`Settings.load` (``flag`` when given, else the variable in ``environ``, default
    this process's environment, else the default), without the others.

    For library code that needs one value (the runner's state folder, the catalog's recipe
    directories, the log's level): an invalid variable it does not use does not fail it.
    The command line and the API's launch methods load (and so check) all of them.

    Raises:
        ConfigError: The flag or the variable is invalid (and the variable not lenient).
    """
    var = _BY_FIELD[name]
    value, _origin = _value(var, flag, os.environ if environ is None else environ)
    return value
