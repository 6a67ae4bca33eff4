"""Resolve stage: (request, recipe, hardware profile) -> :class:`~aimc.plan.Plan`.

Takes a :class:`Request` (model, GPU count, precision, backend, target, overrides), the
recipe and the target's hardware profile; picks the one configuration that matches,
merges the settings of every layer in the documented precedence (:func:`merge`) and
derives the backend's flags. Pure: no file is read and no process started here.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimc.backends import BACKENDS, Backend, vocabulary
from aimc.diagnostics import whole_line
from aimc.engine_args import check_arg, is_secret, shown_set
from aimc.errors import ConfigError
from aimc.estimate import GIB, Estimate, estimate
from aimc.loader import MAX_INT, Document, escape_pointer
from aimc.plan import Plan, Setting, mountable
from aimc.recipe import Hardware, Recipe, config_id, default_backend
from aimc.safety import check_env, format_devices
from aimc.settings import DEFAULT_PORT

__all__ = [
    "GPU_COUNT_MAX",
    "LAYERS",
    "PRECISION_ORDER",
    "Candidate",
    "Layer",
    "Request",
    "build_plan",
    "candidates",
    "merge",
    "parse_set",
    "plan_name",
    "request_line",
    "summary",
]

#: Precedence layers, lowest first.
LAYERS = ("backend", "hardware", "recipe", "configuration", "config-file", "cli")

#: Quality order used when the request leaves the precision open.
PRECISION_ORDER = ("fp32", "bf16", "fp16", "fp8", "int8", "mxfp4", "int4")
#: Most GPUs one request may name (GPU_COUNT, --gpu-count, the API's gpu_count).
GPU_COUNT_MAX = 64

#: Neutral settings (besides ``args.*`` and ``env.*``) that layers may set.
NEUTRAL = ("context_length", "memory_utilization", "served_model_name", "host", "port", "image")


def _neutral_flag(flag: str) -> str | None:
    """The neutral setting that a registered backend's ``flag`` carries, if any: ``--set``
    takes either spelling (``served-model-name=x`` is ``served_model_name=x``)."""
    for entry in BACKENDS.values():
        neutral = entry.managed.get(flag)
        if neutral in NEUTRAL:
            return neutral
    return None


#: Host paths ``docker run -v`` and Compose read as one path.
#: Lone surrogates: what Python makes of command-line bytes that are not UTF-8.
_UNENCODABLE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Request:
    """What the user asked for.

    Attributes:
        model: Model id.
        gpus: GPU count, or None to let the recipe decide.
        precision: Precision, or None.
        backend: Backend, or None for the recipe's default.
        port: Port, or None for ``$DEFAULT_PORT`` / 8000.
        launcher: ``docker`` or ``process``, or None (docker when the target has an image).
        config: A loaded ``--config`` file, if any.
        sets: ``--set key=value`` items, in order.
        default_port: Value of ``$DEFAULT_PORT`` when set.
        available_gpus: GPUs visible on this machine (``--target auto``), else None.
        optimize: ``latency`` or ``throughput`` when the GPU count is left open.
        nodes: Nodes asked for (``--nodes``; a multi-node configuration), or None.
        checkpoint_bytes: Real sizes of checkpoints found locally (source -> bytes).
        measured: Figures measured on this machine (``aim-engine bench`` results, as
            :class:`aimc.measured.Measurement`) that ``optimize`` prefers; a recipe's
            published ``measured:`` figures are read from the recipe.
        devices: The GPUs to serve on, by device id (``--devices``, or this machine's
            usable GPUs, :func:`aimc.build.for_target`): exactly ``gpus`` of them when
            the count is given, else the GPUs a count left open fills; None: any GPUs.
        debug: Verbose server logs (``launch --debug``, ``AIM_DEBUG=1``): the chosen
            backend's :attr:`~aimc.backends.Backend.debug_sets`, as ``--set`` items ahead of
            :attr:`sets` (so an explicit ``--set`` of the same key wins).
    """

    model: str
    gpus: int | None = None
    precision: str | None = None
    backend: str | None = None
    port: int | None = None
    launcher: str | None = None
    config: Document | None = None
    sets: tuple[str, ...] = ()
    default_port: int | None = None
    available_gpus: int | None = None
    optimize: str | None = None
    nodes: int | None = None
    checkpoint_bytes: Mapping[str, int] = field(default_factory=dict)
    measured: tuple[Any, ...] = ()
    devices: tuple[int, ...] | None = None
    debug: bool = False

    def set_items(self, backend: str) -> tuple[str, ...]:
        """The ``--set`` items of the cli layer for ``backend``: the debug ones (under
        :attr:`debug`), then :attr:`sets`."""
        return (*(BACKENDS[backend].debug_sets if self.debug else ()), *self.sets)


@dataclass(frozen=True)
class Layer:
    """The settings one layer contributes: key -> (value, source)."""

    name: str
    values: dict[str, tuple[Any, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One concrete (configuration, hardware, precision, GPU count, backend) combination;
    ``nodes`` > 1 for a multi-node configuration (``gpus`` GPUs on each node)."""

    index: int
    config_id: str
    hardware: str
    precision: str
    gpus: int
    backend: str
    nodes: int = 1


def merge(layers: Sequence[Layer]) -> dict[str, Setting]:
    """Merge settings; a higher layer replaces a lower one's value for the same key.

    ====  ===============  =====================================================
    rank  layer            what it holds
    ====  ===============  =====================================================
    1     backend          the engine's defaults (port, host, memory fraction)
    2     hardware         the target profile's env, multi-GPU env, backend args
    3     recipe           the recipe's facts, weights and ``defaults``
    4     configuration    the configuration entry that matched
    5     config-file      ``--config FILE``
    6     cli              GPU count, ``--port``, ``--set key=value``
    ====  ===============  =====================================================

    A value of None removes whatever a lower layer set. Keys are neutral settings
    (``context_length``...), ``args.<flag>`` or ``env.<NAME>``.
    """
    order = {name: i for i, name in enumerate(LAYERS)}
    out: dict[str, Setting] = {}
    for layer in sorted(layers, key=lambda la: order[la.name]):
        for key, (value, source) in layer.values.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = Setting(value, layer.name, source)
    return out


def candidates(recipe: Recipe, hardware: str | None = None) -> list[Candidate]:
    """Every concrete combination the recipe allows (on ``hardware`` when given)."""
    out = []
    for i, conf, backend in recipe.configurations():
        for hw in conf["hardware"]:
            if hardware is not None and hw != hardware:
                continue
            for precision in conf["precision"]:
                for gpus in conf["gpus"]:
                    for nodes in conf.get("nodes", [1]):
                        out.append(
                            Candidate(
                                i,
                                config_id(conf, i),
                                hw,
                                precision,
                                gpus,
                                backend,
                                nodes,
                            )
                        )
    return out


def summary(cands: Sequence[Candidate]) -> str:
    groups: dict[tuple[str, str], list[int]] = {}
    multi: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for c in cands:
        if c.nodes > 1:
            multi.setdefault((c.backend, c.precision), set()).add((c.nodes, c.gpus))
        else:
            groups.setdefault((c.backend, c.precision), []).append(c.gpus)
    parts = [
        f"{b} {p} on {','.join(map(str, sorted(set(g))))} GPUs"
        for (b, p), g in sorted(groups.items())
    ]
    parts += [
        f"{b} {p} on " + ",".join(f"{n} nodes x {g}" for n, g in sorted(sizes)) + " GPUs"
        for (b, p), sizes in sorted(multi.items())
    ]
    return "; ".join(parts)


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` from ``--set`` -> (layer key, value). Values are YAML scalars.

    Raises:
        ConfigError: The item is not ``key=value``.
    """
    if not item.isprintable() and _UNENCODABLE.search(item):
        raise ConfigError(f"--set {shown_set(item)!r}: not valid UTF-8 text")
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"--set {shown_set(item)!r}: expected key=value",
            hint="e.g. --set max-num-seqs=128 or --set env.VLLM_LOGGING_LEVEL=DEBUG",
        )
    if key.startswith("env."):
        return key, raw
    key = _neutral_flag(key.removeprefix("args.")) or key
    if not key.startswith("args.") and key not in NEUTRAL:
        key = f"args.{key}"
    return key, _scalar(raw)


def _scalar(raw: str) -> Any:
    """A ``--set`` value: YAML numbers, booleans and null, flow lists and mappings; any
    other text stays the literal string (so ``a: b`` or a newline are not re-read)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = raw.strip()
    if not text or any(not c.isprintable() for c in raw):
        return raw
    try:
        value = YAML(typ="safe", pure=True).load(io.StringIO(text))
        if _has_big_int(value):
            raise OverflowError
    except YAMLError:
        return raw
    except (ValueError, ArithmeticError, RecursionError):  # 5,000 digits, [[[[...
        raise ConfigError(
            f"--set value {shown_set(raw)!r} is too large or too deeply nested",
            hint=f"integers are at most {MAX_INT} (2**63 - 1)",
        ) from None
    if isinstance(value, (bool, int, float)) and not isinstance(value, str):
        return value
    if value is None and text in ("null", "~"):
        return None
    if isinstance(value, (list, dict)) and text[0] in "[{":
        return value
    return raw


def _has_big_int(value: Any, depth: int = 0) -> bool:
    """An integer beyond 64 bits anywhere in ``value`` (a --set flow list or mapping)."""

    if depth > 64:
        raise RecursionError
    if type(value) is int:
        return not -MAX_INT - 1 <= value <= MAX_INT
    items = value.items() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(
        _has_big_int(k, depth + 1) or _has_big_int(v, depth + 1)
        for k, v in (items if isinstance(value, dict) else ((None, x) for x in items))
    )


class _Src:
    """``file:line`` sources for values of one document."""

    def __init__(self, doc: Document, display: str):
        self.doc, self.display = doc, display

    def __call__(self, pointer: str) -> str:
        line, _ = self.doc.position(pointer)
        return f"{self.display}:{line}"


def _scoped(
    values: dict[str, tuple[Any, str]],
    mapping: Mapping[str, Any],
    prefix: str,
    base: str,
    src: _Src,
) -> None:
    for name, value in mapping.items():
        values[f"{prefix}.{name}"] = (value, src(f"{base}/{escape_pointer(name)}"))


def _neutral(
    values: dict[str, tuple[Any, str]], mapping: Mapping[str, Any], base: str, src: _Src
) -> None:
    for key in NEUTRAL:
        if key in mapping:
            values[key] = (mapping[key], src(f"{base}/{key}"))


def _display(recipe: Recipe) -> str:
    if recipe.root.label == "shipped":
        rel = Path(recipe.path).resolve().relative_to(recipe.root.path.resolve())
        return f"recipes/{rel.as_posix()}"
    return recipe.path


def _hardware_display(hw: Hardware) -> str:
    if hw.root.label == "shipped":
        return f"recipes/hardware/{Path(hw.doc.path).name}"
    return hw.doc.path


def _no_secret(name: str, where: str) -> None:
    if is_secret(name):
        raise ConfigError(
            f"{where}: '{name}' is a secret and would be written to the artifacts",
            hint="pass it through the environment instead (HF_TOKEN, VLLM_API_KEY)",
        )


def _check_args(args: Mapping[str, Any], backend: str, where: str) -> None:
    for name, value in args.items():
        problem = check_arg(name, value, backend)
        if problem:
            raise ConfigError(f"{where}: {problem.message}", hint=problem.hint)


def _check_set(key: str, value: Any, shown: str, backend: str) -> None:
    """One ``--set`` item, checked by the same schema as a ``--config`` file's key."""
    from aimc.schema import check_schema

    scope, _, name = key.partition(".")
    data: dict[str, Any] = {scope: {name: value}} if name else {key: value}
    if scope == "env":
        _no_secret(name, f"--set {shown}")
    problems = check_schema(Document(path="--set", data=data, sha256=""), "Overrides")
    if problems:
        raise ConfigError(f"--set {shown}: {problems[0].message}", hint=problems[0].hint)
    if scope == "args":
        _check_args({name: value}, backend, f"--set {shown}")


def _user_layers(request: Request, backend: str) -> list[Layer]:
    layers = []
    if request.config is not None:
        doc = request.config
        src = _Src(doc, doc.path)
        values: dict[str, tuple[Any, str]] = {}
        _neutral(values, doc.data, "", src)
        _check_args(doc.data.get("args", {}), backend, doc.path)
        _scoped(values, doc.data.get("args", {}), "args", "/args", src)
        for name in doc.data.get("env", {}):
            _no_secret(name, doc.path)
        _scoped(values, doc.data.get("env", {}), "env", "/env", src)
        layers.append(Layer("config-file", values))
    cli: dict[str, tuple[Any, str]] = {}
    for item in request.set_items(backend):
        shown = shown_set(item)
        key, value = parse_set(item)
        _check_set(key, value, shown, backend)
        cli[key] = (value, f"--set {shown}")
    if request.port is not None:
        cli["port"] = (request.port, "--port")
    layers.append(Layer("cli", cli))
    return layers


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def plan_name(model_id: str) -> str:
    """:attr:`Plan.name` of a model: ``aim-`` and the lower-case repo name, every run of
    other characters one ``-``, at most 63 characters (a DNS-1035 label: a container,
    Compose project and Kubernetes name)."""
    return f"aim-{_slug(model_id.split('/')[-1])}"[:63].rstrip("-")


@dataclass(frozen=True)
class _Context:
    """What every step of :func:`build_plan` reads: the inputs and where values came from."""

    recipe: Recipe
    hardware: Hardware
    request: Request
    chosen: Candidate
    rsrc: _Src
    hsrc: _Src

    @property
    def engine(self) -> Backend:
        return BACKENDS[self.chosen.backend]

    @property
    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = self.recipe.data["configurations"][self.chosen.index]
        return conf

    @property
    def cbase(self) -> str:
        return f"/configurations/{self.chosen.index}"

    @property
    def weights_ptr(self) -> str:
        """Where the chosen weights are: the configuration's own, else the recipe's."""
        own = f"{self.cbase}/weights/{self.chosen.precision}"
        return (
            own
            if self.chosen.precision in self.conf.get("weights", {})
            else (f"/weights/{self.chosen.precision}")
        )

    @property
    def weights(self) -> dict[str, Any]:
        own = self.conf.get("weights", {})
        w: dict[str, Any] = (
            own.get(self.chosen.precision) or self.recipe.data["weights"][self.chosen.precision]
        )
        return w

    @property
    def weights_layer(self) -> str:
        return "configuration" if self.weights_ptr.startswith(self.cbase) else "recipe"


def build_plan(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    chosen: Candidate,
    decisions: Sequence[str] = (),
    data_parallel: int = 1,
) -> Plan:
    """The plan for one concrete candidate: every layer merged, flags derived, memory
    estimated.

    Raises:
        ConfigError: An override is invalid, or a value cannot be written safely.
    """
    ctx = _Context(
        recipe,
        hardware,
        request,
        chosen,
        _Src(recipe.doc, _display(recipe)),
        _Src(hardware.doc, _hardware_display(hardware)),
    )
    merged = merge(
        [
            _backend_layer(ctx),
            _hardware_layer(ctx),
            _recipe_layer(ctx),
            _configuration_layer(ctx),
            *_user_layers(request, chosen.backend),
        ]
    )
    args = _engine_args(ctx, merged, data_parallel)
    env = {k[4:]: s for k, s in sorted(merged.items()) if k.startswith("env.")}
    for name, setting in env.items():
        check_env(name, str(setting.value), setting.source)
    if request.devices is not None:
        _no_visibility_env(env)
    _check_name_and_port(merged)
    source, local = _model_source(ctx)
    image, launcher = _image_and_launcher(ctx, merged, source, local)
    hw = hardware.data
    memory = _estimate(
        recipe.data["model"]["facts"], ctx.weights, source, chosen, hw, merged, args, env, request
    )
    engine = ctx.engine
    return Plan(
        name=plan_name(recipe.model_id),
        model_id=recipe.model_id,
        served_model_name=str(merged["served_model_name"].value),
        model_source=source,
        model_revision=ctx.weights.get("revision"),
        local_model=local,
        recipe={"source": recipe.root.label, "path": _display(recipe), "sha256": recipe.doc.sha256},
        hardware={
            "name": hardware.name,
            "vendor": hw["vendor"],
            "architecture": hw["architecture"],
            "memory_gib": hw["memory_gib"],
            "gpus_per_node": hw["gpus_per_node"],
            **({"host": dict(hw["host"])} if "host" in hw else {}),
            **(
                {"interconnect": copy.deepcopy(hw["interconnect"])}
                if "interconnect" in hw and chosen.nodes > 1
                else {}
            ),
            "source": hardware.root.label,
            "path": _hardware_display(hardware),
            "sha256": hardware.doc.sha256,
        },
        configuration=chosen.config_id,
        backend=chosen.backend,
        backend_version=vocabulary(chosen.backend).version,
        precision=chosen.precision,
        gpus=chosen.gpus,
        port=merged["port"].value,
        launcher=launcher,
        image=image,
        container=_container(hw, chosen.nodes),
        command=list(engine.container_command if launcher == "docker" else engine.process_command),
        args=args,
        env=env,
        passthrough_env=list(BACKENDS[chosen.backend].passthrough_env),
        health_path=engine.health_path,
        decisions=list(decisions),
        data_parallel=data_parallel,
        estimate=memory.to_json(),
        nodes=chosen.nodes,
        devices=(
            list(request.devices[: chosen.gpus * data_parallel])
            if request.devices is not None
            else None
        ),
    )


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


def _backend_layer(ctx: _Context) -> Layer:
    """Layer 1: the engine's defaults (host, memory fraction, port)."""
    values: dict[str, tuple[Any, str]] = {"host": ("0.0.0.0", "aimc default")}
    backend = ctx.chosen.backend
    if ctx.engine.default_memory_utilization is not None:
        values["memory_utilization"] = (
            ctx.engine.default_memory_utilization,
            f"{backend} {vocabulary(backend).version} default",
        )
    if ctx.request.default_port is not None:
        values["port"] = (ctx.request.default_port, "$DEFAULT_PORT")
    else:
        values["port"] = (DEFAULT_PORT, "aimc default")
    return Layer("backend", values)


def _hardware_layer(ctx: _Context) -> Layer:
    """Layer 2: the profile's env (multi-GPU env with more than one GPU), backend args, image."""
    hw, src = ctx.hardware.data, ctx.hsrc
    values: dict[str, tuple[Any, str]] = {}
    _scoped(values, hw.get("env", {}), "env", "/env", src)
    if ctx.chosen.gpus > 1:
        _scoped(values, hw.get("multi_gpu_env", {}), "env", "/multi_gpu_env", src)
    if ctx.chosen.nodes > 1:
        values.update(_interconnect_env(hw.get("interconnect", {}), src))
    backend = hw.get("backends", {}).get(ctx.chosen.backend, {})
    base = f"/backends/{ctx.chosen.backend}"
    _scoped(values, backend.get("env", {}), "env", f"{base}/env", src)
    _scoped(values, backend.get("args", {}), "args", f"{base}/args", src)
    if "image" in backend:
        values["image"] = (backend["image"], src(f"{base}/image"))
    return Layer("hardware", values)


def _interconnect_env(net: Mapping[str, Any], src: _Src) -> dict[str, tuple[Any, str]]:
    """A multi-node plan's interconnect variables, from the profile's ``interconnect``.

    NCCL's environment variables (NCCL User Guide, "Environment Variables"), which RCCL
    reads under the same names: ``NCCL_SOCKET_IFNAME`` (the IP interfaces NCCL's bootstrap
    and socket transport use) and ``NCCL_IB_HCA`` (the RDMA adapters, comma-separated,
    ``mlx5_0:1`` for a port); PyTorch's ``GLOO_SOCKET_IFNAME`` (torch.distributed, "Common
    environment variables": the interface of the Gloo backend, which vLLM's CPU process
    groups use). Without them NCCL and Gloo choose an interface themselves (the wrong one on
    a host with several) and NCCL runs over sockets when it finds no RDMA device."""
    values: dict[str, tuple[Any, str]] = {}
    if "socket_ifname" in net:
        where = src("/interconnect/socket_ifname")
        values["env.NCCL_SOCKET_IFNAME"] = (net["socket_ifname"], where)
        values["env.GLOO_SOCKET_IFNAME"] = (net["socket_ifname"], where)
    hcas = net.get("rdma", {}).get("hcas")
    if hcas:
        values["env.NCCL_IB_HCA"] = (",".join(hcas), src("/interconnect/rdma/hcas"))
    return values


def _recipe_layer(ctx: _Context) -> Layer:
    """Layer 3: the recipe's facts (context, name) and ``defaults``."""
    data, src = ctx.recipe.data, ctx.rsrc
    defaults = data.get("defaults", {})
    values: dict[str, tuple[Any, str]] = {
        "context_length": (data["model"]["facts"]["max_context"], src("/model/facts/max_context")),
        "served_model_name": (ctx.recipe.model_id, src("/model/id")),
    }
    _neutral(values, defaults, "/defaults", src)
    if ctx.chosen.backend == default_backend(data):
        _scoped(values, defaults.get("args", {}), "args", "/defaults/args", src)
    _scoped(values, defaults.get("env", {}), "env", "/defaults/env", src)
    if ctx.weights_layer == "recipe":
        values.update(_weights_values(ctx))
    return Layer("recipe", values)


def _configuration_layer(ctx: _Context) -> Layer:
    """Layer 4: the configuration entry that matched (and the weights it names)."""
    conf, base, src = ctx.conf, ctx.cbase, ctx.rsrc
    values: dict[str, tuple[Any, str]] = {}
    if "low_memory" in conf and ctx.request.gpus in conf["gpus"]:
        # Marked to fit only with a shorter context: that context, when its count is asked
        # for; a count left open sees it at the recipe's context (low-memory, not chosen).
        limit = conf["low_memory"]["max_context"]
        values["context_length"] = (limit, src(f"{base}/low_memory/max_context"))
    _neutral(values, conf, base, src)
    _scoped(values, conf.get("args", {}), "args", f"{base}/args", src)
    _scoped(values, conf.get("env", {}), "env", f"{base}/env", src)
    if ctx.weights_layer == "configuration":
        values.update(_weights_values(ctx))
    return Layer("configuration", values)


def _weights_values(ctx: _Context) -> dict[str, tuple[Any, str]]:
    """Settings the chosen weights imply (their KV-cache dtype)."""
    if "kv_cache_dtype" not in ctx.weights:
        return {}
    flag = ctx.engine.flags["kv_cache_dtype"]
    value = ctx.engine.kv_cache_dtypes[ctx.weights["kv_cache_dtype"]]
    return {f"args.{flag}": (value, ctx.rsrc(f"{ctx.weights_ptr}/kv_cache_dtype"))}


def _engine_args(ctx: _Context, merged: Mapping[str, Setting], replicas: int) -> dict[str, Setting]:
    """The backend's flags: those aimc derives (GPU count, dtype, context...) first, then
    every ``args.*`` setting that does not override one of them."""
    engine, chosen, weights = ctx.engine, ctx.chosen, ctx.weights
    gpus_src = (
        ("cli", "GPU_COUNT argument")
        if ctx.request.gpus is not None
        else ("configuration", ctx.rsrc(f"{ctx.cbase}/gpus/{ctx.conf['gpus'].index(chosen.gpus)}"))
    )
    core: dict[str, Setting] = {engine.flags["gpus"]: Setting(chosen.gpus, *gpus_src)}
    wsrc, wlayer = ctx.rsrc(ctx.weights_ptr), ctx.weights_layer
    for key in ("context_length", "memory_utilization"):
        if key in merged:
            core[engine.flags[key]] = merged[key]
    if chosen.precision in engine.dtypes:
        core[engine.flags["dtype"]] = Setting(engine.dtypes[chosen.precision], wlayer, wsrc)
    for key in ("quantization", "revision"):
        if key in weights:
            core[engine.flags[key]] = Setting(weights[key], wlayer, wsrc)
    if ctx.recipe.data["model"].get("trust_remote_code"):
        core[engine.flags["trust_remote_code"]] = Setting(
            True, "recipe", ctx.rsrc("/model/trust_remote_code")
        )
    for key in ("served_model_name", "host", "port"):
        core[engine.flags[key]] = merged[key]
    if replicas > 1:
        core[engine.flags["data_parallel"]] = Setting(replicas, "cli", "--optimize throughput")
    if chosen.nodes > 1:
        # The engine's own multi-node launch (no Ray): every node runs --nnodes N and the
        # launchers add its rank and the head's address (aimc.render.node_role_args).
        nsrc = ctx.rsrc(f"{ctx.cbase}/nodes/{ctx.conf['nodes'].index(chosen.nodes)}")
        if engine.multinode == "tensor":
            # SGLang: one tensor-parallel group over every GPU of every node.
            core[engine.flags["gpus"]] = Setting(
                chosen.gpus * chosen.nodes, gpus_src[0], f"{gpus_src[1]} x nodes ({nsrc})"
            )
        else:
            # vLLM: one pipeline stage per node.
            core["pipeline-parallel-size"] = Setting(chosen.nodes, "configuration", nsrc)
        core["nnodes"] = Setting(chosen.nodes, "configuration", nsrc)
        if engine.multinode == "pipeline":
            # On CUDA vLLM picks mp with nnodes > 1 by itself, on ROCm it must be told.
            core["distributed-executor-backend"] = Setting("mp", "configuration", nsrc)
    rest = {k[5:]: s for k, s in sorted(merged.items()) if k.startswith("args.")}
    return {**core, **{k: v for k, v in rest.items() if k not in core}}


def _no_visibility_env(env: Mapping[str, Setting]) -> None:
    """Refuse a visibility variable set by a layer when the plan names its GPUs: the
    artifacts set it from the devices (:func:`aimc.render.device_env`)."""
    from aimc.detect.visibility import VARIABLES

    for name in VARIABLES:
        if name in env:
            raise ConfigError(
                f"env.{name} ({env[name].source}) would choose GPUs the plan already names "
                "by device id",
                hint="leave the choice of GPUs to --devices",
            )


def _check_name_and_port(merged: Mapping[str, Setting]) -> None:
    served = merged["served_model_name"]
    if not isinstance(served.value, str) or not re.fullmatch(
        r"[^\x00-\x1f\x7f]{1,200}", served.value
    ):
        raise ConfigError(
            f"served model name {served.value!r} ({served.source}) is not a one-line name",
            hint="use up to 200 printable characters",
        )
    port = merged["port"].value
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"port {port!r} ({merged['port'].source}) is not a TCP port number")


def _model_source(ctx: _Context) -> tuple[str, bool]:
    """(what the server loads: a repository id or an absolute folder, is it a folder)."""
    if "path" in ctx.weights:
        base = Path(ctx.recipe.path).resolve().parent
        return str((base / ctx.weights["path"]).resolve()), True
    return str(ctx.weights["repo"]), False


def _image_and_launcher(
    ctx: _Context, merged: Mapping[str, Setting], source: str, local: bool
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
    facts: Mapping[str, Any],
    weights: Mapping[str, Any],
    source: str,
    chosen: Candidate,
    hw: Mapping[str, Any],
    merged: Mapping[str, Setting],
    args: Mapping[str, Setting],
    env: Mapping[str, Setting],
    request: Request,
) -> Estimate:
    """The memory estimate of a plan being built."""
    size = request.checkpoint_bytes.get(source)
    basis = "checkpoint"
    if size is None and "size_gib" in weights:
        size, basis = weights["size_gib"] * GIB, "recipe"
    util = (
        merged["memory_utilization"].value
        if "memory_utilization" in merged
        else BACKENDS[chosen.backend].assumed_memory_fraction
    )
    kv_budget = None
    if hw["vendor"] == "cpu":
        space = env.get("VLLM_CPU_KVCACHE_SPACE")
        try:
            kv_budget = float(space.value) if space else 4.0
        except ValueError:
            kv_budget = 4.0
        util = 1.0
    kv_setting = args.get("kv-cache-dtype")
    # Across nodes: vLLM's pipeline stages split the layers, SGLang's tensor-parallel group
    # splits every layer over gpus x nodes GPUs.
    across = BACKENDS[chosen.backend].multinode == "tensor"
    return estimate(
        facts,
        chosen.precision,
        chosen.gpus * chosen.nodes if across else chosen.gpus,
        float(hw["memory_gib"]),
        float(util),
        int(merged["context_length"].value),
        kv_cache_dtype=str(kv_setting.value) if kv_setting else "auto",
        weights_bytes=size,
        weights_basis=basis,
        kv_budget_gib=kv_budget,
        pp=1 if across else chosen.nodes,
    )


def request_line(request: Request, target: str, backend: str | None = None) -> str:
    """The ``aim-engine compile`` command line that reproduces a plan: ``request`` as
    :func:`aimc.build.for_target` made it (its devices written out), for the target by name (of
    ``backend``: the debug settings of ``launch --debug`` are written as the ``--set``
    items they are)."""
    words = ["aim-engine", "compile", request.model]
    if request.gpus is not None:
        words.append(str(request.gpus))
    words += ["--target", target]
    if request.devices is not None:
        words += ["--devices", format_devices(request.devices)]
    for flag, value in (
        ("--precision", request.precision),
        ("--backend", request.backend),
        ("--port", request.port),
        ("--optimize", request.optimize),
        ("--nodes", request.nodes),
        ("--launcher", request.launcher),
    ):
        if value is not None:
            words += [flag, str(value)]
    if request.config is not None:
        words += ["--config", request.config.path]
    for item in request.set_items(backend) if backend else request.sets:
        words += ["--set", item]
    return shlex.join(words)
