"""The options that choose the artifacts (:func:`emit_options`): ``--emit``, ``--replicas``,
and the ``--autoscale`` options of the cluster outputs (``--autoscale``, ``--min-replicas``,
``--max-replicas``, ``--prometheus-url``, ``--bench-results``), passed to a command as one
:class:`EmitArgs`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from aimc.cli.options import OneOf, Registered, Whole, current_settings
from aimc.core.errors import ConfigError
from aimc.emit.autoscale_defaults import AUTOSCALERS, DEFAULT_MAX_REPLICAS, DEFAULT_PROMETHEUS
from aimc.emit.emitters import EMITTERS, names

if TYPE_CHECKING:
    from aimc.emit.autoscale import Autoscale

__all__ = ["EmitArgs", "emit_options"]

F = TypeVar("F", bound=Callable[..., Any])


class EmitArgs:
    """The values of the options :func:`emit_options` adds: which artifacts to produce, never
    changed (a plain class: a dataclass costs each start-up ~0.5 ms; read by attribute only)."""

    __slots__ = ("autoscale", "emit", "replicas")

    def __init__(self, emit: str, replicas: int, autoscale: Autoscale | None = None) -> None:
        self.emit = emit
        self.replicas = replicas
        self.autoscale = autoscale

    def check(self) -> None:
        """Refuse ``--replicas`` for an emitter that takes none, ``--autoscale`` for one that
        does not scale or with ``--replicas`` (exit 2)."""
        if self.autoscale is not None:
            self.autoscale.check()
            if not EMITTERS[self.emit].autoscale:
                takes = [n for n, e in EMITTERS.items() if e.autoscale]
                raise ConfigError("--autoscale needs " + " or ".join(f"--emit {n}" for n in takes))
            if self.autoscale.results is not None and not EMITTERS[self.emit].measured_targets:
                takes = [n for n, e in EMITTERS.items() if e.measured_targets]
                raise ConfigError(
                    f"--bench-results: --emit {self.emit} scales on its own fields, with no"
                    " running-requests target to derive from bench results",
                    hint="drop --bench-results, or " + " or ".join(f"--emit {n}" for n in takes),
                )
            if self.replicas != 1:
                raise ConfigError(
                    "--replicas is a fixed count; with --autoscale the replicas range from"
                    " --min-replicas to --max-replicas",
                    hint="drop --replicas",
                )

        if self.replicas != 1 and not EMITTERS[self.emit].replicas:
            takes = [n for n, e in EMITTERS.items() if e.replicas]
            raise ConfigError(
                "--replicas needs " + " or ".join(f"--emit {n}" for n in takes),
                hint="add " + " or ".join(f"--emit {n}" for n in takes),
            )


def emit_options(f: F) -> F:
    """``--emit NAME`` (a registered emitter: :mod:`aimc.emit.emitters`), ``--replicas N``
    and the ``--autoscale`` options, passed as one ``emit: EmitArgs`` argument."""

    @functools.wraps(f)
    def collect(*args: Any, **kwargs: Any) -> Any:
        scale = _autoscale_args(kwargs)
        emit = EmitArgs(kwargs.pop("emit"), kwargs.pop("replicas"), scale)
        return f(*args, emit=emit, **kwargs)

    wrapped: Any = collect
    for option in _autoscale_options():
        wrapped = option(wrapped)
    wrapped = click.option(
        "--replicas",
        type=Whole(1, 1000, "a replica count"),
        default=1,
        show_default=True,
        help="With --emit k8s: Deployment replicas behind the one Service.",
    )(wrapped)
    wrapped = click.option(
        "--emit",
        type=Registered(names),
        default="local",
        show_default=True,
        help="Artifacts: "
        + " or ".join(f"{e.name} ({e.description})" for e in EMITTERS.values())
        + ".",
    )(wrapped)
    return wrapped  # type: ignore[no-any-return]


def _autoscale_args(kwargs: dict[str, Any]) -> Autoscale | None:
    """The ``--autoscale`` options taken out of ``kwargs``: None without ``--autoscale``
    (then the other three must be left at their defaults)."""
    given = [kwargs.pop(k) for k in ("autoscale", "min_replicas", "max_replicas", "prometheus_url")]
    results: str | None = kwargs.pop("bench_results")
    if given[0] is None and (given[1:] != [1, DEFAULT_MAX_REPLICAS, DEFAULT_PROMETHEUS] or results):
        raise ConfigError(
            "--min-replicas, --max-replicas, --prometheus-url and --bench-results need --autoscale"
        )
    if given[0] is None:
        return None
    from aimc.cli.results import given_runs, local_runs  # deferred: only with --autoscale
    from aimc.emit.autoscale import Autoscale

    kind, low, high, url = given
    if results is None:
        return Autoscale(kind, low, high, url, bench=local_runs(current_settings().state_dir))
    return Autoscale(kind, low, high, url, bench=given_runs(results), results=results)


def _autoscale_options() -> list[Callable[[Any], Any]]:
    """``--autoscale``, ``--min-replicas``, ``--max-replicas``, ``--prometheus-url``."""
    return [
        click.option(
            "--bench-results",
            metavar="FILE",
            default=None,
            help="With --autoscale: the bench results (a bench.jsonl) to find the "
            "configuration's saturation point in, instead of this machine's "
            "$AIMC_STATE_DIR/bench.jsonl; a file kept beside the output gives the same "
            "files on every machine.",
        ),
        click.option(
            "--prometheus-url",
            default=DEFAULT_PROMETHEUS,
            show_default=True,
            help="With --autoscale keda: the Prometheus the ScaledObject queries.",
        ),
        click.option(
            "--max-replicas",
            type=Whole(1, 1000, "a replica count"),
            default=DEFAULT_MAX_REPLICAS,
            show_default=True,
            help="With --autoscale: the most replicas.",
        ),
        click.option(
            "--min-replicas",
            type=Whole(0, 1000, "a replica count"),
            default=1,
            show_default=True,
            help="With --autoscale: the fewest replicas (0: scale to zero, KEDA and --emit k8s).",
        ),
        click.option(
            "--autoscale",
            type=OneOf(AUTOSCALERS),
            default=None,
            help="With --emit k8s, kserve or aim: scale on the engine's queue and KV cache, "
            "with KEDA (a ScaledObject) or a HorizontalPodAutoscaler.",
        ),
    ]
