"""Options shared by several commands, each defined once (as in pip-tools)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from aimc.backends import names as backend_names
from aimc.cli import report
from aimc.core.diagnostics import did_you_mean, excerpt
from aimc.core.settings import Settings

if TYPE_CHECKING:
    from aimc.app.planning import Resolved
    from aimc.plan.measured import Measurement
    from aimc.plan.request import Request

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "BadValue",
    "OneOf",
    "PlanArgs",
    "Seconds",
    "Whole",
    "current_settings",
    "format_option",
    "gpu_count_type",
    "plan_options",
    "recipes_option",
    "request_from",
]

PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "int8", "int4", "mxfp4", "nvfp4")


class BadValue(click.BadParameter):
    """A bad option or argument value, in aimc's words: one line naming the parameter and
    the value (``--port='abc' is not a port number (an integer 1-65535)``), with a hint
    (a "did you mean") when there is one; not click's "Invalid value for ..." block."""

    def __init__(self, message: str, ctx: click.Context | None, hint: str | None = None):
        super().__init__(message, ctx=ctx)
        self.hint = hint

    def format_message(self) -> str:
        return self.message


def _label(param: click.Parameter | None) -> str:
    """How a message names the parameter: its long option, or an argument's metavar."""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    if param is not None:
        return param.human_readable_name.upper()
    return "value"


def _shown(value: Any) -> str:
    return excerpt(value)


class Whole(click.ParamType):  # type: ignore[type-arg]
    """An integer from ``low`` to ``high`` (``high`` None: no upper bound), said as
    ``what`` when refused (``a port number``)."""

    name = "integer"

    def __init__(self, low: int, high: int | None, what: str):
        self.low, self.high, self.what = low, high, what

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"{self.low}-{self.high}" if self.high is not None else "INTEGER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                number = None
        if number is None or number < self.low or (self.high is not None and number > self.high):
            bound = f"{self.low}-{self.high}" if self.high is not None else f"{self.low} or more"
            raise BadValue(
                f"{_label(param)}={_shown(value)} is not {self.what} (an integer {bound})", ctx
            )
        return number


class Seconds(click.ParamType):  # type: ignore[type-arg]
    """A finite number of seconds from ``low`` to ``high``."""

    name = "seconds"

    def __init__(self, low: float, high: float | None = None):
        self.low, self.high = low, high

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "SECONDS"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value) if isinstance(value, (int, float)) else float(str(value))
        except (ValueError, OverflowError):
            seconds = math.nan
        if (
            not math.isfinite(seconds)
            or seconds < self.low
            or (self.high is not None and seconds > self.high)
        ):
            bound = (
                f"{self.low:g}-{self.high:g}" if self.high is not None else f"{self.low:g} or more"
            )
            raise BadValue(
                f"{_label(param)}={_shown(value)} is not a number of seconds ({bound})", ctx
            )
        return seconds


class OneOf(click.Choice):  # type: ignore[type-arg]
    """click's Choice, refused in aimc's words with a "did you mean" hint."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            choices = [str(c) for c in self.choices]
            raise BadValue(
                f"{_label(param)}={_shown(value)} is not one of {', '.join(choices)}",
                ctx,
                hint=did_you_mean(str(value), choices),
            ) from None


class Registered(OneOf):
    """A choice among names registered at run time (backends, emitters): read each time
    they are asked for (a value converted, the help written), so one registered after the
    command was built is accepted and shown, and one removed is neither."""

    def __init__(self, names: Callable[[], Sequence[str]]):
        self._names = names
        super().__init__(list(names()))

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """click's constructor sets the choices once; the registry's names win."""


def gpu_count_type() -> Whole:
    """GPU_COUNT and --gpu-count: 1 to :data:`aimc.plan.request.GPU_COUNT_MAX`."""
    from aimc.plan.request import GPU_COUNT_MAX

    return Whole(1, GPU_COUNT_MAX, "a GPU count")


def current_settings() -> Settings:
    """The settings the ``aim-engine`` group loaded for this command (``ctx.obj``), or
    :meth:`Settings.load` outside a command."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    settings = obj.get("settings") if isinstance(obj, dict) else None
    return settings if isinstance(settings, Settings) else Settings.load()


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
            type=OneOf(choices),
            default=default,
            show_default=True,
            callback=_remember_format,
            is_eager=True,
            help="Output format.",
        )(f)

    return decorate


class PlanArgs:
    """The values of the options :func:`plan_options` adds, as one argument, never changed
    (a plain class: a dataclass costs each start-up ~1 ms; read by attribute only)."""

    __slots__ = (
        "backend",
        "config_file",
        "devices",
        "launcher",
        "nodes",
        "optimize",
        "port",
        "precision",
        "recipe_dirs",
        "sets",
        "target",
    )

    def __init__(
        self,
        *,
        target: str,
        precision: str | None,
        backend: str | None,
        port: int | None,
        config_file: Path | None,
        sets: tuple[str, ...],
        optimize: str | None,
        launcher: str | None,
        nodes: int | None,
        devices: str | None,
        recipe_dirs: tuple[str, ...],
    ) -> None:
        self.target = target
        self.precision = precision
        self.backend = backend
        self.port = port
        self.config_file = config_file
        self.sets = sets
        self.optimize = optimize
        self.launcher = launcher
        self.nodes = nodes
        self.devices = devices
        self.recipe_dirs = recipe_dirs

    def resolve(self, model: str, gpus: int | None, debug: bool = False) -> Resolved:
        """Catalog, request, target and plan for ``model`` on ``gpus`` GPUs (``debug``:
        with the backend's verbose-log settings, :attr:`aimc.plan.request.Request.debug`); the
        request as :func:`aimc.app.pipeline.for_target` made it (what the artifacts' header
        writes)."""
        # Deferred on purpose (as every plan import here): these options serve light
        # commands too (validate, cache, logs), which never load the planner.
        from aimc.app.planning import plan_request
        from aimc.check.catalog import Catalog

        catalog = Catalog.default(self.recipe_dirs)
        request = request_from(model, gpus, self, debug)
        return plan_request(catalog, request, self.target, current_settings().cache_dir)


def plan_options(f: F) -> F:
    """The options that shape a plan (target, precision, backend, port, overrides...),
    passed to the command as one ``opts: PlanArgs`` argument."""
    names = PlanArgs.__slots__

    @functools.wraps(f)
    def collect(*args: Any, **kwargs: Any) -> Any:
        opts = PlanArgs(**{name: kwargs.pop(name) for name in names})
        return f(*args, opts=opts, **kwargs)

    wrapped: Any = collect
    for option in reversed(_plan_option_list()):
        wrapped = option(wrapped)
    return wrapped  # type: ignore[no-any-return]


def _plan_option_list() -> list[Callable[[Any], Any]]:
    """The options of :func:`plan_options`, in the order ``--help`` lists them: the target,
    what to serve and its overrides, then :func:`_placement_option_list`."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "--target",
            default="auto",
            show_default=True,
            metavar="NAME",
            help="Hardware profile to compile for; auto detects this machine.",
        ),
        click.option(
            "--precision",
            type=OneOf(PRECISIONS),
            help="Precision (default: the recipe's choice).",
        ),
        click.option(
            "--backend",
            type=Registered(backend_names),
            help="Backend engine (default: the recipe's choice).",
        ),
        click.option(
            "--port",
            type=Whole(1, 65535, "a port number"),
            help="Port for the endpoint (default: $DEFAULT_PORT or 8000).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),  # read (and refused) by build.load_config_file
            metavar="FILE",
            help="User configuration file (overrides above the recipe).",
        ),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override one setting: an engine arg (max-num-seqs=128), "
            "env.NAME=VALUE, context_length, memory_utilization, "
            "served_model_name, host, image. Repeatable.",
        ),
    ]
    return options + _placement_option_list()


def _placement_option_list() -> list[Callable[[Any], Any]]:
    """The options of :func:`plan_options` that size and place the plan (``--optimize``,
    ``--nodes``, ``--launcher``, ``--devices``), and ``--recipes``."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "--optimize",
            type=OneOf(["latency", "throughput"]),
            help="With GPU_COUNT open: latency takes the most GPUs the recipe supports; "
            "throughput the smallest size that fits, with data-parallel replicas over the rest.",
        ),
        click.option(
            "--nodes",
            type=Whole(1, 64, "a node count"),
            help="Nodes to serve on (a multi-node configuration of the recipe: GPU_COUNT is "
            "then per node); default: one node, more only when one does not fit.",
        ),
        click.option(
            "--launcher",
            type=OneOf(["docker", "process"]),
            help="Run in a container or as a bare process (default: docker when "
            "the target has an image).",
        ),
        click.option(
            "--devices",
            metavar="IDS",
            help="The GPUs to serve on, by device id as nvidia-smi / amd-smi number them "
            "(e.g. 4,5,6,7): GPU_COUNT of them, or GPU_COUNT left open fills them. Default "
            "on this machine: the GPUs visible (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES) "
            "and free; for a named target, any.",
        ),
        recipes_option,
    ]
    return options


def request_from(model: str, gpus: int | None, plan: PlanArgs, debug: bool = False) -> Request:
    """A :class:`~aimc.plan.request.Request` from command-line values.

    ``--port`` is the plan's top layer; ``DEFAULT_PORT`` (when set) its bottom one.
    """
    # Deferred on purpose: see PlanArgs.resolve.
    from aimc.app.pipeline import load_config_file
    from aimc.core.safety import parse_devices
    from aimc.plan.request import Request

    return Request(
        model=model,
        gpus=gpus,
        devices=parse_devices(plan.devices) if plan.devices is not None else None,
        precision=plan.precision,
        backend=plan.backend,
        port=plan.port,
        launcher=plan.launcher,
        config=load_config_file(plan.config_file) if plan.config_file else None,
        sets=tuple(plan.sets),
        default_port=current_settings().default_port_given,
        optimize=plan.optimize,
        nodes=plan.nodes,
        measured=_measured() if plan.optimize else (),
        debug=debug,
    )


def _measured() -> tuple[Measurement, ...]:
    """This machine's bench results, for ``--optimize``."""
    from aimc.cli.results import local_measurements  # deferred: only with --optimize

    return tuple(local_measurements(current_settings().state_dir))
