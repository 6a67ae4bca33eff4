"""The precedence layers of a plan's settings.

Each source of settings is a :class:`~aimc.plan.precedence.Layer` (the backend's defaults,
the hardware profile, the recipe, the matching configuration, a ``--config`` file, the
command line), built here with every value's ``file:line`` source, each from what it reads
alone (the recipe's and the configuration's from a :class:`Choice`);
:func:`~aimc.plan.precedence.merge_scoped` applies them in the documented precedence
(:data:`~aimc.plan.precedence.LAYERS`, lowest first), the only place precedence is
written. Overrides are checked as they are read (secrets, managed and unknown engine args,
the ``--config`` schema for ``--set`` items). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aimc.backends import BACKENDS, Backend, vocabulary
from aimc.core.errors import ConfigError
from aimc.core.loader import Document, escape_pointer
from aimc.core.settings import DEFAULT_PORT
from aimc.domain.engine_args import check_arg, is_secret, shown_set
from aimc.domain.recipe import Hardware, Recipe, default_backend
from aimc.plan.candidates import Candidate
from aimc.plan.precedence import LAYERS, Layer, _kept, merge_scoped
from aimc.plan.request import NEUTRAL, Request, parse_set

__all__ = [
    "LAYERS",
    "Choice",
    "Context",
    "Layer",
    "Src",
    "backend_layer",
    "configuration_layer",
    "count_listed",
    "hardware_display",
    "hardware_layer",
    "layers_of",
    "merge_scoped",
    "recipe_display",
    "recipe_layer",
    "user_layers",
    "weights_values",
]


class Src:
    """``file:line`` sources for values of one document; for a hardware profile's, the
    backend's and the profile's layers :func:`layers_of` made of it (:attr:`layers`)."""

    def __init__(self, doc: Document, display: str):
        self.doc, self.display = doc, display
        #: (backend, default port, more than one GPU, more than one node) -> the backend's
        #: and the profile's layers (all they read but the document, held here).
        self.layers: dict[tuple[str, int | None, bool, bool], tuple[Layer, Layer]] = {}

    def __call__(self, pointer: str) -> str:
        line, _ = self.doc.position(pointer)
        return f"{self.display}:{line}"


def _scoped(
    values: dict[str, tuple[Any, str]],
    mapping: Mapping[str, Any],
    prefix: str,
    base: str,
    src: Src,
) -> None:
    for name, value in mapping.items():
        values[f"{prefix}.{name}"] = (value, src(f"{base}/{escape_pointer(name)}"))


def _neutral(
    values: dict[str, tuple[Any, str]], mapping: Mapping[str, Any], base: str, src: Src
) -> None:
    for key in NEUTRAL:
        if key in mapping:
            values[key] = (mapping[key], src(f"{base}/{key}"))


def recipe_display(recipe: Recipe) -> str:
    if recipe.root.label == "shipped":
        rel = Path(recipe.path).resolve().relative_to(recipe.root.path.resolve())
        return f"recipes/{rel.as_posix()}"
    return recipe.path


def hardware_display(hw: Hardware) -> str:
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
    from aimc.domain.schema import check_schema

    scope, _, name = key.partition(".")
    data: dict[str, Any] = {scope: {name: value}} if name else {key: value}
    if scope == "env":
        _no_secret(name, f"--set {shown}")
    problems = check_schema(Document(path="--set", data=data, sha256=""), "Overrides")
    if problems:
        raise ConfigError(f"--set {shown}: {problems[0].message}", hint=problems[0].hint)
    if scope == "args":
        _check_args({name: value}, backend, f"--set {shown}")


def user_layers(request: Request, backend: str) -> list[Layer]:
    layers = []
    if request.config is not None:
        doc = request.config
        src = Src(doc, doc.path)
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


class Choice:
    """The recipe, where its values are (``file:line``), and the configuration, backend and
    precision chosen of it: all that the recipe and configuration layers read, so that
    their values serve every hardware profile and GPU count of that choice
    (:class:`aimc.plan.shared.Shared`). What it derives is kept (the recipe is not changed
    while it serves). Equal only to itself, never changed once made (a plain class, not a
    dataclass: building one costs each start-up ~0.5 ms; read by attribute only, never
    printed or replaced; no ``__slots__``: :class:`_kept` keeps in ``__dict__``)."""

    def __init__(self, recipe: Recipe, rsrc: Src, index: int, backend: str, precision: str):
        self.recipe, self.rsrc, self.index = recipe, rsrc, index
        self.backend, self.precision = backend, precision
        #: Whether the GPU count asked for is listed (:func:`count_listed`) -> the recipe's
        #: and the configuration's layers of the choice (all else they read is the choice).
        self.layers: dict[bool, tuple[Layer, Layer]] = {}

    @_kept
    def engine(self) -> Backend:
        return BACKENDS[self.backend]

    @_kept
    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = self.recipe.data["configurations"][self.index]
        return conf

    @_kept
    def cbase(self) -> str:
        return f"/configurations/{self.index}"

    @_kept
    def weights_ptr(self) -> str:
        """Where the chosen weights are: the configuration's own, else the recipe's."""
        own = f"{self.cbase}/weights/{self.precision}"
        return (
            own if self.precision in self.conf.get("weights", {}) else f"/weights/{self.precision}"
        )

    @_kept
    def weights_src(self) -> str:
        """Where the chosen weights are, as ``file:line``."""
        return self.rsrc(self.weights_ptr)

    @_kept
    def weights(self) -> dict[str, Any]:
        own = self.conf.get("weights", {})
        w: dict[str, Any] = own.get(self.precision) or self.recipe.data["weights"][self.precision]
        return w

    @_kept
    def weights_layer(self) -> str:
        return "configuration" if self.weights_ptr.startswith(self.cbase) else "recipe"


class Context:
    """What every step of :func:`build_plan` reads: the inputs and where values came from
    (a plain record, made for every plan and estimate: equal only to itself)."""

    __slots__ = ("choice", "chosen", "hardware", "hsrc", "request")

    def __init__(
        self, choice: Choice, hardware: Hardware, hsrc: Src, request: Request, chosen: Candidate
    ):
        self.choice, self.hardware, self.hsrc = choice, hardware, hsrc
        self.request, self.chosen = request, chosen

    @property
    def recipe(self) -> Recipe:
        return self.choice.recipe

    @property
    def rsrc(self) -> Src:
        return self.choice.rsrc

    @property
    def engine(self) -> Backend:
        return self.choice.engine

    @property
    def conf(self) -> dict[str, Any]:
        return self.choice.conf

    @property
    def cbase(self) -> str:
        return self.choice.cbase

    @property
    def weights_ptr(self) -> str:
        return self.choice.weights_ptr

    @property
    def weights_src(self) -> str:
        return self.choice.weights_src

    @property
    def weights(self) -> dict[str, Any]:
        return self.choice.weights

    @property
    def weights_layer(self) -> str:
        return self.choice.weights_layer


def _now(make: Callable[..., Layer], *args: Any) -> Layer:
    return make(*args)


def layers_of(
    ctx: Context, once: Callable[..., Layer] = _now, across: Callable[..., Layer] | None = None
) -> list[Layer]:
    """The layers of the recipe side, lowest first: the backend's defaults, the hardware
    profile, the recipe, the matching configuration (the user's come from
    :func:`user_layers`). Each is made by ``once(make, *args)``: ``make(*args)``, or the
    layer made before for the same arguments (:class:`aimc.plan.shared.Shared`; a layer
    reads its arguments alone); the backend's and the profile's, which read no recipe, by
    ``across`` when given (:class:`aimc.plan.shared.Profiles`: made once for many recipes).
    Each pair, once made, is kept where all it reads is, for what else it reads (a key of
    a few scalars: cheaper than asking ``once`` for each layer of every plan): the
    recipe's and the configuration's on the :class:`Choice` (:attr:`Choice.layers`), the
    backend's and the profile's on the profile's :class:`Src` (:attr:`Src.layers`)."""
    chosen, side, hsrc = ctx.chosen, ctx.choice, ctx.hsrc
    listed = count_listed(side, ctx.request)
    recipe_side = side.layers.get(listed)
    if recipe_side is None:
        recipe_side = side.layers[listed] = (
            once(recipe_layer, side.rsrc, side.backend, _recipe_weights(side)),
            once(configuration_layer, side, listed),
        )
    backend, port = chosen.backend, ctx.request.default_port
    multi_gpu, multi_node = chosen.gpus > 1, chosen.nodes > 1
    profile_side = hsrc.layers.get((backend, port, multi_gpu, multi_node))
    if profile_side is None:
        across = across or once
        profile_side = hsrc.layers[backend, port, multi_gpu, multi_node] = (
            across(backend_layer, backend, port),
            across(hardware_layer, hsrc, backend, multi_gpu, multi_node),
        )
    return [*profile_side, *recipe_side]


def count_listed(choice: Choice, request: Request) -> bool:
    """Whether the GPU count ``request`` asks for is one the configuration lists (its
    ``low_memory`` context applies then)."""
    return request.gpus in choice.conf["gpus"]


def backend_layer(backend: str, default_port: int | None) -> Layer:
    """Layer 1: the engine's defaults (host, memory fraction, port, the backend's
    ``default_args``); ``default_port``: ``$DEFAULT_PORT``, when set."""
    values: dict[str, tuple[Any, str]] = {"host": ("0.0.0.0", "aimc default")}
    engine = BACKENDS[backend]
    if engine.default_memory_utilization is not None:
        values["memory_utilization"] = (
            engine.default_memory_utilization,
            f"{backend} {vocabulary(backend).version} default",
        )
    if default_port is not None:
        values["port"] = (default_port, "$DEFAULT_PORT")
    else:
        values["port"] = (DEFAULT_PORT, "aimc default")
    for flag, value in engine.default_args.items():
        values[f"args.{flag}"] = (value, f"aimc default for {backend}")
    return Layer("backend", values)


def hardware_layer(src: Src, backend_name: str, multi_gpu: bool, multi_node: bool) -> Layer:
    """Layer 2: the profile's env (multi-GPU env with more than one GPU, the interconnect's
    across nodes), backend args, image; ``src``: the profile's sources (its document)."""
    hw = src.doc.data
    values: dict[str, tuple[Any, str]] = {}
    _scoped(values, hw.get("env", {}), "env", "/env", src)
    if multi_gpu:
        _scoped(values, hw.get("multi_gpu_env", {}), "env", "/multi_gpu_env", src)
    if multi_node:
        values.update(_interconnect_env(hw.get("interconnect", {}), src))
    backend = hw.get("backends", {}).get(backend_name, {})
    base = f"/backends/{backend_name}"
    _scoped(values, backend.get("env", {}), "env", f"{base}/env", src)
    _scoped(values, backend.get("args", {}), "args", f"{base}/args", src)
    if "image" in backend:
        values["image"] = (backend["image"], src(f"{base}/image"))
    return Layer("hardware", values)


def _interconnect_env(net: Mapping[str, Any], src: Src) -> dict[str, tuple[Any, str]]:
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


def _recipe_weights(side: Choice) -> str | None:
    """The precision whose weights the recipe layer holds for ``side``: its own, when the
    configuration does not hold them (None)."""
    return side.precision if side.weights_layer == "recipe" else None


def recipe_layer(src: Src, backend: str, precision: str | None) -> Layer:
    """Layer 3: the recipe's facts (context, name) and ``defaults`` (its ``args`` for the
    recipe's default backend alone) and, for a ``precision`` whose weights the recipe holds
    (:func:`_recipe_weights`), what they imply; ``src``: the recipe's sources (its
    document). The same layer for every configuration of that backend and precision."""
    data = src.doc.data
    defaults = data.get("defaults", {})
    values: dict[str, tuple[Any, str]] = {
        "context_length": (data["model"]["facts"]["max_context"], src("/model/facts/max_context")),
        "served_model_name": (str(data["model"]["id"]), src("/model/id")),
    }
    _neutral(values, defaults, "/defaults", src)
    if backend == default_backend(data):
        _scoped(values, defaults.get("args", {}), "args", "/defaults/args", src)
    _scoped(values, defaults.get("env", {}), "env", "/defaults/env", src)
    if precision is not None:
        ptr = f"/weights/{precision}"
        values.update(_weights_values(BACKENDS[backend], data["weights"][precision], ptr, src))
    return Layer("recipe", values)


def configuration_layer(side: Choice, count_listed: bool) -> Layer:
    """Layer 4: the configuration entry that matched (and the weights it names);
    ``count_listed``: the GPU count asked for is one it lists (:func:`count_listed`)."""
    conf, base, src = side.conf, side.cbase, side.rsrc
    values: dict[str, tuple[Any, str]] = {}
    if "low_memory" in conf and count_listed:
        # Marked to fit only with a shorter context: that context, when its count is asked
        # for; a count left open sees it at the recipe's context (low-memory, not chosen).
        limit = conf["low_memory"]["max_context"]
        values["context_length"] = (limit, src(f"{base}/low_memory/max_context"))
    _neutral(values, conf, base, src)
    _scoped(values, conf.get("args", {}), "args", f"{base}/args", src)
    _scoped(values, conf.get("env", {}), "env", f"{base}/env", src)
    if side.weights_layer == "configuration":
        values.update(weights_values(side))
    return Layer("configuration", values)


def weights_values(side: Choice) -> dict[str, tuple[Any, str]]:
    """Settings the chosen weights imply (their KV-cache dtype)."""
    return _weights_values(side.engine, side.weights, side.weights_ptr, side.rsrc)


def _weights_values(
    engine: Backend, weights: Mapping[str, Any], ptr: str, src: Src
) -> dict[str, tuple[Any, str]]:
    """Settings the weights entry ``weights`` at ``ptr`` implies for ``engine``."""
    if "kv_cache_dtype" not in weights:
        return {}
    flag = engine.flags["kv_cache_dtype"]
    value = engine.kv_cache_dtypes[weights["kv_cache_dtype"]]
    return {f"args.{flag}": (value, src(f"{ptr}/kv_cache_dtype"))}
