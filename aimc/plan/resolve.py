"""Resolve stage: (request, recipe, hardware profile) -> :class:`~aimc.plan.model.Plan`.

Takes a :class:`Request` (model, GPU count, precision, backend, target, overrides), the
recipe and the target's hardware profile; picks the one configuration that matches,
merges the settings of every layer in the documented precedence (:func:`merge`) and
derives the backend's flags. Pure: no file is read and no process started here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aimc.backends import BACKENDS, vocabulary
from aimc.core.diagnostics import whole_line
from aimc.core.errors import ConfigError
from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.candidates import Candidate
from aimc.plan.estimate import Estimate
from aimc.plan.layers import Choice, Context, layers_of, merge_scoped
from aimc.plan.model import Plan, Setting, mountable
from aimc.plan.request import Request
from aimc.plan.shared import Shared
from aimc.plan.vllm_memory import RUNTIME_ARGS, RUNTIME_ENV
from aimc.plan.weights import checkpoint_total
from aimc.vendors import vendor, visibility_variables

__all__ = ["PRECISION_ORDER", "build_plan", "estimate_for", "plan_name"]


#: Quality order used when the request leaves the precision open.
PRECISION_ORDER = ("fp32", "bf16", "fp16", "fp8", "int8", "nvfp4", "mxfp4", "int4")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def plan_name(model_id: str) -> str:
    """:attr:`Plan.name` of a model: ``aim-`` and the lower-case repo name, every run of
    other characters one ``-``, at most 63 characters (a DNS-1035 label: a container,
    Compose project and Kubernetes name)."""
    return f"aim-{_slug(model_id.split('/')[-1])}"[:63].rstrip("-")


class _Sized:
    """A plan's parts before they are put together: the steps of :func:`build_plan` (a
    plain record: made for every estimate, read by :func:`build_plan` alone)."""

    __slots__ = ("args", "ctx", "env", "estimate", "image", "launcher", "local", "merged", "source")

    def __init__(
        self,
        ctx: Context,
        merged: Mapping[str, Setting],
        args: dict[str, Setting],
        env: dict[str, Setting],
        source: str,
        local: bool,
        image: str | None,
        launcher: str,
        estimate: Estimate,
    ):
        self.ctx, self.merged, self.args, self.env = ctx, merged, args, env
        self.source, self.local, self.image, self.launcher = source, local, image, launcher
        self.estimate = estimate


def _sized(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    chosen: Candidate,
    data_parallel: int,
    shared: Shared | None,
) -> _Sized:
    """``chosen``'s plan parts, made in :func:`build_plan`'s steps and order."""
    shared = shared or Shared(recipe, request)
    ctx = shared.context(recipe, hardware, request, chosen)
    recipe_side = layers_of(ctx, shared.once, shared.profiles.once)
    merged, given_args, given_env = merge_scoped(
        [*recipe_side, *shared.user_layers(chosen.backend)]
    )
    chosen_flags = shared.once(_chosen_flags, ctx.choice)
    args = _engine_args(ctx, merged, given_args, chosen_flags, data_parallel)
    env = _checked_env(given_env, shared.request, shared.check_env)
    _check_name_and_port(merged)
    source, local = shared.once(_model_source, ctx.choice)
    image, launcher = _image_and_launcher(ctx, merged, source, local)
    memory = _estimate(
        shared, ctx.weights, source, chosen, hardware.data, merged, args, env, request
    )
    return _Sized(ctx, merged, args, env, source, local, image, launcher, memory)


def estimate_for(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    chosen: Candidate,
    shared: Shared | None = None,
) -> Estimate:
    """The memory estimate of the plan :func:`build_plan` would build (the plan itself is
    not put together).

    Raises:
        ConfigError: As :func:`build_plan`.
    """
    return _sized(recipe, hardware, request, chosen, 1, shared).estimate


def build_plan(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    chosen: Candidate,
    decisions: Sequence[str] = (),
    data_parallel: int = 1,
    shared: Shared | None = None,
) -> Plan:
    """The plan for one concrete candidate: every layer merged, flags derived, memory
    estimated. ``shared``: the work shared with the other candidates of the recipe on the
    profile for the request (:class:`~aimc.plan.shared.Shared`; the plan is the same without it).

    Raises:
        ConfigError: An override is invalid, or a value cannot be written safely.
    """
    sized = _sized(recipe, hardware, request, chosen, data_parallel, shared)
    ctx, merged = sized.ctx, sized.merged
    return Plan(
        **_served(ctx, merged, sized.source, sized.local),
        **_launched(ctx, merged, sized.launcher, sized.image),
        args=sized.args,
        env=sized.env,
        decisions=list(decisions),
        data_parallel=data_parallel,
        estimate=sized.estimate.to_json(),
        nodes=chosen.nodes,
        devices=(
            list(request.devices[: chosen.gpus * data_parallel])
            if request.devices is not None
            else None
        ),
    )


def _served(
    ctx: Context, merged: Mapping[str, Setting], source: str, local: bool
) -> dict[str, Any]:
    """The plan's fields that say what is served: the model, its recipe and hardware, the
    configuration, backend, precision and GPU count chosen."""
    recipe, chosen = ctx.recipe, ctx.chosen
    return {
        "name": plan_name(recipe.model_id),
        "model_id": recipe.model_id,
        "served_model_name": _served_names(merged["served_model_name"].value)[0],
        "model_source": source,
        "model_revision": ctx.weights.get("revision"),
        "local_model": local,
        "recipe": {
            "source": recipe.root.label,
            "path": ctx.rsrc.display,
            "sha256": recipe.doc.sha256,
        },
        "hardware": _hardware_record(ctx.hardware, ctx.hsrc.display, chosen.nodes),
        "configuration": chosen.config_id,
        "backend": chosen.backend,
        "backend_version": vocabulary(chosen.backend).version,
        "precision": chosen.precision,
        "gpus": chosen.gpus,
    }


def _launched(
    ctx: Context, merged: Mapping[str, Setting], launcher: str, image: str | None
) -> dict[str, Any]:
    """The plan's fields that say how the server is started and reached."""
    engine = ctx.engine
    return {
        "port": merged["port"].value,
        "launcher": launcher,
        "image": image,
        "container": _container(ctx.hardware.data, ctx.chosen.nodes),
        "command": list(
            engine.container_command if launcher == "docker" else engine.process_command
        ),
        "passthrough_env": list(engine.passthrough_env),
        "health_path": engine.health_path,
    }


def _checked_env(
    env: dict[str, Setting], request: Request, check: Callable[[str, str, str], None]
) -> dict[str, Setting]:
    """The plan's environment: every ``env.*`` setting (``env``: by name, sorted,
    :func:`~aimc.plan.layers.merge_scoped`), each checked to be writable (``check``:
    :func:`~aimc.core.safety.check_env`), and no visibility variable when the plan names
    its GPUs."""
    for name, setting in env.items():
        check(name, str(setting.value), setting.source)
    if request.devices is not None:
        _no_visibility_env(env)
    return env


def _hardware_record(hardware: Hardware, display: str, nodes: int) -> dict[str, Any]:
    """What the plan records of its hardware profile (the interconnect only across nodes)."""
    hw = hardware.data
    return {
        "name": hardware.name,
        "vendor": hw["vendor"],
        "architecture": hw["architecture"],
        "memory_gib": hw["memory_gib"],
        "gpus_per_node": hw["gpus_per_node"],
        **({"host": dict(hw["host"])} if "host" in hw else {}),
        **(
            {"interconnect": copy.deepcopy(hw["interconnect"])}
            if "interconnect" in hw and nodes > 1
            else {}
        ),
        "source": hardware.root.label,
        "path": display,
        "sha256": hardware.doc.sha256,
    }


def _container(hw: Mapping[str, Any], nodes: int) -> dict[str, Any]:
    """The profile's ``container``; a multi-node plan over RDMA adds what ``docker run``
    needs for it: ``--device /dev/infiniband`` (the verbs devices), ``--cap-add IPC_LOCK``
    and ``--ulimit memlock=-1`` (verbs pin the buffers they register; NCCL's "Troubleshooting"
    asks for an unlimited memlock limit in containers)."""
    container = copy.deepcopy(dict(hw.get("container", {})))
    if nodes > 1 and "rdma" in hw.get("interconnect", {}):
        for key, value in (("devices", "/dev/infiniband"), ("cap_add", "IPC_LOCK")):
            if value not in container.get(key, []):
                container[key] = [*container.get(key, []), value]
        container["ulimits"] = ["memlock=-1"]
    return container


def _chosen_flags(side: Choice) -> dict[str, Setting]:
    """The flags the chosen configuration, backend and precision alone set, in their
    order: the weights' dtype, quantization and revision, and trust_remote_code."""
    engine, weights, precision = side.engine, side.weights, side.precision
    wsrc, wlayer = side.weights_src, side.weights_layer
    flags: dict[str, Setting] = {}
    # weights.dtype: auto (the engine reads the checkpoint's own, config.json), or the
    # dtype a quantized precision computes in (lint/dtype); else the precision's own.
    dtype = weights.get("dtype") or engine.dtypes.get(precision)
    if dtype and (precision in engine.dtypes or dtype != "auto"):
        flags[engine.flags["dtype"]] = Setting(dtype, wlayer, wsrc)
    for key in ("quantization", "revision"):
        if key in weights:
            flags[engine.flags[key]] = Setting(weights[key], wlayer, wsrc)
    if side.recipe.data["model"].get("trust_remote_code"):
        flags[engine.flags["trust_remote_code"]] = Setting(
            True, "recipe", side.rsrc("/model/trust_remote_code")
        )
    return flags


def _engine_args(
    ctx: Context,
    merged: Mapping[str, Setting],
    rest: Mapping[str, Setting],
    chosen_flags: Mapping[str, Setting],
    replicas: int,
) -> dict[str, Setting]:
    """The backend's flags: those aimc derives (GPU count, context..., ``chosen_flags``:
    :func:`_chosen_flags`) first, then every ``args.*`` setting (``rest``: by flag, sorted,
    :func:`~aimc.plan.layers.merge_scoped`) that does not override one of them."""
    engine, chosen = ctx.engine, ctx.chosen
    gpus_src = (
        ("cli", "GPU_COUNT argument")
        if ctx.request.gpus is not None
        else ("configuration", ctx.rsrc(f"{ctx.cbase}/gpus/{ctx.conf['gpus'].index(chosen.gpus)}"))
    )
    core: dict[str, Setting] = {engine.flags["gpus"]: Setting(chosen.gpus, *gpus_src)}
    for key in ("context_length", "memory_utilization"):
        if key in merged:
            core[engine.flags[key]] = merged[key]
    core.update(chosen_flags)
    for key in ("served_model_name", "host", "port"):
        core[engine.flags[key]] = merged[key]
    if replicas > 1:
        core[engine.flags["data_parallel"]] = Setting(replicas, "cli", "--optimize throughput")
    if chosen.nodes > 1:
        # The engine's own multi-node launch: every node runs the backend's node_args and
        # the launchers add its rank and the head's address (aimc.emit.render.node_role_args).
        nsrc = ctx.rsrc(f"{ctx.cbase}/nodes/{ctx.conf['nodes'].index(chosen.nodes)}")
        if engine.multinode == "tensor":
            # One tensor-parallel group over every GPU of every node.
            core[engine.flags["gpus"]] = Setting(
                chosen.gpus * chosen.nodes, gpus_src[0], f"{gpus_src[1]} x nodes ({nsrc})"
            )
        node_args = engine.node_args(chosen.nodes) if engine.node_args else {}
        for flag, value in node_args.items():
            core[flag] = Setting(value, "configuration", nsrc)
    if not rest:  # most plans: no flag of the layers' own
        return core
    return {**core, **{k: v for k, v in rest.items() if k not in core}}


def _no_visibility_env(env: Mapping[str, Setting]) -> None:
    """Refuse a visibility variable set by a layer when the plan names its GPUs: the
    artifacts set it from the devices (:func:`aimc.emit.render.device_env`)."""
    for name in visibility_variables():
        if name in env:
            raise ConfigError(
                f"env.{name} ({env[name].source}) would choose GPUs the plan already names "
                "by device id",
                hint="leave the choice of GPUs to --devices",
            )


def _served_names(value: Any) -> list[Any]:
    """The served name(s): a name, or a list of names (the first is the plan's)."""
    return list(value) if isinstance(value, list) and value else [value]


#: A served model name: 1 to 200 characters, none a control character.
_ONE_LINE_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def _check_name_and_port(merged: Mapping[str, Setting]) -> None:
    served = merged["served_model_name"]
    for name in _served_names(served.value):
        if not isinstance(name, str) or not _ONE_LINE_NAME.fullmatch(name):
            raise ConfigError(
                f"served model name {name!r} ({served.source}) is not a one-line name",
                hint="use up to 200 printable characters",
            )
    port = merged["port"].value
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"port {port!r} ({merged['port'].source}) is not a TCP port number")


def _model_source(side: Choice) -> tuple[str, bool]:
    """(what the server loads: a repository id or an absolute folder, is it a folder)."""
    if "path" in side.weights:
        base = Path(side.recipe.path).resolve().parent
        return str((base / side.weights["path"]).resolve()), True
    return str(side.weights["repo"]), False


def _image_and_launcher(
    ctx: Context, merged: Mapping[str, Setting], source: str, local: bool
) -> tuple[str | None, str]:
    image = merged["image"].value if "image" in merged else None
    default = ctx.hardware.data.get("container", {}).get("launcher", "docker")
    launcher = ctx.request.launcher or (default if image else "process")
    if launcher == "docker" and not image:
        raise ConfigError(
            f"no container image for {ctx.chosen.backend} on {ctx.hardware.name}",
            hint="use --launcher process, or --set image=NAME:TAG",
        )
    if local and launcher == "docker" and not mountable(source):
        raise ConfigError(
            f"the model folder {whole_line(source)!r} cannot be mounted into a container",
            hint="docker -v splits at ':' and ','; move or link the folder to a plain path, "
            "or use --launcher process",
        )
    return image, launcher


def _estimate(
    shared: Shared,
    weights: Mapping[str, Any],
    source: str,
    chosen: Candidate,
    hw: Mapping[str, Any],
    merged: Mapping[str, Setting],
    args: Mapping[str, Setting],
    env: Mapping[str, Setting],
    request: Request,
) -> Estimate:
    """The memory estimate of a plan being built of the recipe of ``shared`` (vLLM on a
    GPU: with vLLM 0.32's runtime terms, :meth:`Shared.runtime
    <aimc.plan.shared.Shared.runtime>`), by :meth:`Shared.estimate
    <aimc.plan.shared.Shared.estimate>`."""
    engine = BACKENDS[chosen.backend]
    across = engine.multinode == "tensor"
    tp = chosen.gpus * chosen.nodes if across else chosen.gpus
    size, basis = checkpoint_total(weights, request.checkpoint_bytes.get(source), tp)
    util = (
        merged["memory_utilization"].value
        if "memory_utilization" in merged
        else engine.assumed_memory_fraction
    )
    kv_budget = _kv_budget(hw, env)
    if kv_budget is not None:
        util = 1.0
    kv_setting = args.get("kv-cache-dtype")
    # Across nodes: vLLM's pipeline stages split the layers, SGLang's tensor-parallel group
    # splits every layer over gpus x nodes GPUs.
    runtime = None
    if chosen.backend == "vllm" and kv_budget is None:
        # The flags and variables the runtime reads (most plans set none of them).
        run_args, run_env = RUNTIME_ARGS.intersection(args), RUNTIME_ENV.intersection(env)
        runtime = shared.runtime(
            hw,
            {k: args[k].value for k in run_args} if run_args else {},
            {k: str(env[k].value) for k in run_env} if run_env else {},
            tp,
            1 if across else chosen.nodes,
        )
    return shared.estimate(
        shared.facts,
        chosen.precision,
        tp,
        float(hw["memory_gib"]),
        float(util),
        int(merged["context_length"].value),
        str(kv_setting.value) if kv_setting else "auto",
        size,
        basis,
        kv_budget,
        1 if across else chosen.nodes,
        runtime,
    )


def _kv_budget(hw: Mapping[str, Any], env: Mapping[str, Setting]) -> float | None:
    """A fixed KV cache size in GiB (a vendor whose backend takes one, such as vLLM's CPU
    backend: its variable, else what it assumes), or None."""
    kv_env = vendor(str(hw["vendor"])).kv_cache_env
    if not kv_env:
        return None
    name, assumed = kv_env
    space = env.get(name)
    try:
        return float(space.value) if space else assumed
    except ValueError:
        return assumed
