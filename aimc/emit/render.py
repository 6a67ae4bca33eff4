"""Render stage: :class:`~aimc.plan.model.Plan` -> {artifact name: text}.

Pure: builds the values each artifact needs (the server's argv, docker options, the
Compose and native-config data) and lets the templates in ``templates/`` format them.
The same plan gives byte-identical text on any machine: no timestamps, no host paths other
than those the plan holds, sorted where order is not meaningful.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aimc import __version__
from aimc.backends import BACKENDS, vocabulary
from aimc.core.digest import sha256
from aimc.core.errors import ConfigError
from aimc.core.safety import check_argv_word
from aimc.emit.rendered import render_templates
from aimc.emit.templating import shell_quote
from aimc.plan.model import Plan, Setting, mountable
from aimc.vendors import vendor

__all__ = [
    "CONTAINER_CACHE",
    "command_plan",
    "container_args",
    "container_env",
    "container_view",
    "device_env",
    "interconnect_note",
    "manifest",
    "multinode_layout",
    "node_role_args",
    "rdma",
    "render",
    "render_command",
    "server_argv",
    "server_argv_groups",
    "store_port",
    "worker_role",
]

#: Where the model cache is mounted inside containers.
CONTAINER_CACHE = "/workspace/model-cache"
#: Where a local model folder is mounted inside containers.
CONTAINER_MODELS = "/models"


def _flag_words(name: str, value: Any, negatable: bool) -> list[str]:
    """One engine arg as argv words, with vLLM's ``--config`` semantics."""
    if isinstance(value, bool):
        if value:
            return [f"--{name}"]
        return [f"--no-{name}"] if negatable else []
    if isinstance(value, list):
        return [f"--{name}", *(str(v) for v in value)] if value else []
    if isinstance(value, dict):
        return [f"--{name}", json.dumps(value, sort_keys=True)]
    return [f"--{name}", str(value)]


def model_path(plan: Plan) -> str:
    """The model as the server sees it (a container path for a mounted local folder)."""
    if plan.local_model and plan.launcher == "docker":
        return f"{CONTAINER_MODELS}/{plan.model_source.rstrip('/').rsplit('/', 1)[-1]}"
    return plan.model_source


def server_argv_groups(plan: Plan) -> list[list[str]]:
    """The server's arguments after its command, grouped: the model, then one group per arg.

    Every value reaches the server's argv here (``launch.sh``, ``compose.yaml``, the
    Kubernetes args; the native config file holds the same words, which vLLM's
    ``load_config_file`` turns back into argv), so this is where the engine-value rule is
    applied to each of them, whatever layer or plan set it.

    Raises:
        ConfigError: A value would be read as a flag
            (:func:`aimc.core.safety.check_argv_word`).
    """
    engine = BACKENDS[plan.backend]
    flags = vocabulary(plan.backend).flags
    neutral = {flag: key for key, flag in engine.flags.items()}
    model = model_path(plan)
    check_argv_word("the model", model, plan.model_source)
    flag = engine.model_flag if plan.launcher == "docker" else engine.process_model_flag
    groups = [[f"--{flag}", model] if flag else [model]]
    for name, setting in plan.args.items():
        words = _flag_words(name, setting.value, bool(flags.get(name, {}).get("negatable")))
        field = f"{neutral[name]} (--{name})" if name in neutral else f"--{name}"
        for word in words[1:]:
            check_argv_word(field, word, setting.source)
        if words:
            groups.append(words)
    return groups


def server_argv(plan: Plan) -> list[str]:
    """The server's arguments after its command: the model, then every engine arg."""
    return [word for group in server_argv_groups(plan) for word in group]


def container_args(plan: Plan) -> list[str]:
    """What follows the image in ``docker run`` (the container's CMD): the plan's command,
    then :func:`server_argv`. Kubernetes' ``args`` are the same words."""
    return [*plan.command, *server_argv(plan)]


def store_port(plan: Plan) -> int:
    """The head node's torch.distributed port that every other node joins."""
    return BACKENDS[plan.backend].store_port


def node_role_args(plan: Plan, rank: str, master_addr: str) -> list[str]:
    """What one node of a multi-node plan (``plan.nodes`` > 1) adds after
    :func:`container_args` (``--nnodes`` is in the plan's args): the backend's
    :attr:`~aimc.backends.Backend.role_args`. Node rank ``0`` is the head: it serves the
    API and hosts torch.distributed's store at ``master_addr``.

    Raises:
        ConfigError: The backend serves on one node only.
    """
    role_args = BACKENDS[plan.backend].role_args
    if role_args is None:
        raise ConfigError(f"{plan.backend} does not serve across nodes")
    return role_args(rank, master_addr)


def multinode_layout(plan: Plan) -> str:
    """How a multi-node plan spans its nodes, in words."""
    if BACKENDS[plan.backend].multinode == "tensor":
        return (
            f"tensor parallel {plan.gpus * plan.nodes} across the nodes ({plan.gpus} GPUs on each)"
        )
    return f"tensor parallel {plan.gpus} on each node, pipeline parallel {plan.nodes} across nodes"


def worker_role(plan: Plan) -> str:
    """What a node of rank above 0 of a multi-node plan runs, in words."""
    return BACKENDS[plan.backend].worker_role


def rdma(plan: Plan) -> dict[str, Any] | None:
    """The profile's ``interconnect.rdma`` of a multi-node plan (None: TCP sockets)."""
    if plan.nodes < 2:
        return None
    found = plan.hardware.get("interconnect", {}).get("rdma")
    return dict(found) if found else None


def interconnect_note(plan: Plan) -> str | None:
    """What a multi-node plan's nodes talk over, in one line (None for one node)."""
    if plan.nodes < 2:
        return None
    net = plan.hardware.get("interconnect", {})
    nic = f"; NIC {net['socket_ifname']}" if "socket_ifname" in net else ""
    found = rdma(plan)
    if found is None:
        return (
            f"TCP sockets: {plan.hardware['name']} declares no RDMA (interconnect.rdma in "
            f"the hardware profile), so NCCL/RCCL between the nodes fall back to sockets{nic}"
        )
    hcas = f", NCCL_IB_HCA {','.join(found['hcas'])}" if found.get("hcas") else ""
    return f"RDMA: {found.get('count', 1)} x {found['resource']} per pod{hcas}{nic}"


def container_env(plan: Plan) -> list[tuple[str, str | None]]:
    """The container's environment, in ``docker run -e`` order: the plan's variables with
    their values, the caller's pass-through variables (secrets: value ``None``, never
    written), then ``HF_HUB_CACHE`` pointing at :data:`CONTAINER_CACHE`."""
    env: list[tuple[str, str | None]] = [(name, str(s.value)) for name, s in plan.env.items()]
    env += [(name, None) for name in plan.passthrough_env]
    env.append(("HF_HUB_CACHE", CONTAINER_CACHE))
    return env


def device_env(plan: Plan, container: bool) -> list[tuple[str, str]]:
    """The variables that give the server the plan's GPUs (:attr:`Plan.devices`), after
    the plan's own: in a container (``container``: ``aim.env``, which Compose's
    ``env_file`` and ``docker run -e NAME`` pass in), or for a bare process (``launch.sh``'s
    exports when the launcher is ``process``). The vendor says which
    (:class:`~aimc.vendors.Vendor`): its ``device_env`` holding the device ids as its
    ``device_tool`` numbers them, after its ``process_env`` for a bare process; nothing in
    a container that reserves its GPUs (``reservation``: the runtime maps only those).
    """
    if plan.devices is None:
        return []
    maker = vendor(str(plan.hardware.get("vendor")))
    if maker.device_env is None or (container and maker.reservation):
        return []
    ids = ",".join(str(i) for i in plan.devices)
    return [*(() if container else maker.process_env), (maker.device_env, ids)]


def hidden_env(plan: Plan) -> list[str]:
    """The caller's variables ``launch.sh`` unsets before a bare process that gets
    :func:`device_env` (the vendor's ``unset_env``)."""
    if plan.devices is None or plan.launcher != "process":
        return []
    return list(vendor(str(plan.hardware.get("vendor"))).unset_env)


def _reservation(plan: Plan) -> str | None:
    """The Docker device driver the container reserves its GPUs through (``--gpus``,
    Compose's device reservation) when its profile asks for it (``gpu_reservation``).

    Raises:
        ConfigError: The profile asks for it and its vendor reserves no GPUs that way.
    """
    if not plan.container.get("gpu_reservation"):
        return None
    maker = vendor(str(plan.hardware.get("vendor")))
    if maker.reservation is None:
        raise ConfigError(
            f"hardware profile {plan.hardware.get('name')}: container.gpu_reservation, but "
            f"{maker.name} GPUs are not reserved through Docker's --gpus",
            hint="leave gpu_reservation out; map the device nodes with container.devices",
        )
    return maker.reservation


def _gpus_option(plan: Plan) -> str:
    """``docker run --gpus``: the count, or the devices. Docker reads the value as CSV, so
    a list of devices is one quoted field: ``"device=4,5,6,7"`` (Docker's GPU guide:
    ``--gpus '"device=0,2"'``)."""
    if plan.devices is None:
        return str(plan.total_gpus)
    return '"device=' + ",".join(str(i) for i in plan.devices) + '"'


def _docker_options(plan: Plan) -> list[list[str]]:
    """``docker run`` options, one option (with its value) per entry.

    Raises:
        ConfigError: The image, the word after them, would be read as an option.
    """
    check_argv_word("image", str(plan.image), "the plan's image")
    c = plan.container
    opts: list[list[str]] = []
    opts += [["--device", d] for d in c.get("devices", [])]
    opts += [["--group-add", g] for g in c.get("group_add", [])]
    opts += [["--security-opt", s] for s in c.get("security_opt", [])]
    opts += [["--cap-add", s] for s in c.get("cap_add", [])]
    opts += [["--ulimit", u] for u in c.get("ulimits", [])]
    if _reservation(plan):
        opts.append(["--gpus", _gpus_option(plan)])
    if "ipc" in c:
        opts.append(["--ipc", c["ipc"]])
    if "shm_size" in c:
        opts.append(["--shm-size", c["shm_size"]])
    if plan.nodes > 1:
        # NCCL between nodes and torch.distributed's store (the head's port 29501) use the
        # host's interfaces; the API port is the host's too.
        opts.append(["--network", "host"])
    else:
        opts.append(["-p", f"{plan.port}:{plan.port}"])
    if plan.local_model:
        opts.append(["-v", f"{plan.model_source}:{model_path(plan)}:ro"])
    # container_env's names: the plan's values come from launch.sh's exports (aim.env),
    # secrets from the caller; HF_HUB_CACHE (its last entry) is given here.
    *passed, (cache_name, cache_value) = container_env(plan)
    opts += [["-e", name] for name, _ in passed]
    opts += [["-e", name] for name, _ in device_env(plan, container=True)]
    opts.append(["-e", f"{cache_name}={cache_value}"])
    return opts


def container_view(plan: Plan) -> Plan | None:
    """``plan`` as a container runs it: itself for the Docker launcher; for a bare process
    with an image (compose.yaml beside a process launch.sh), the same plan with the
    container's command and model path; None when it has no image or its local model folder
    cannot be mounted."""
    if plan.launcher == "docker":
        return plan
    if not plan.image or (plan.local_model and not mountable(plan.model_source)):
        return None
    command = list(BACKENDS[plan.backend].container_command)
    return dataclasses.replace(plan, launcher="docker", command=command)


def _compose_escape(value: Any) -> Any:
    """Compose interpolates ``$``; a literal ``$`` is written ``$$``."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_compose_escape(v) for v in value]
    return value


def _compose(plan: Plan) -> dict[str, Any]:
    """compose.yaml's data for a plan as a container runs it (:func:`container_view`)."""
    command = container_args(plan)
    c = plan.container
    service: dict[str, Any] = {
        "container_name": plan.name,
        "image": _compose_escape(plan.image),
        "command": _compose_escape(command),
        "env_file": ["aim.env"],
        "environment": {
            "HF_HUB_CACHE": CONTAINER_CACHE,
            **{name: None for name in plan.passthrough_env},
        },
        "ports": [f"{plan.port}:{plan.port}"],
        "volumes": [f"${{CACHE_DIR:-{CONTAINER_CACHE}}}:{CONTAINER_CACHE}"],
    }
    if plan.local_model:
        service["volumes"].append(_compose_escape(f"{plan.model_source}:{model_path(plan)}:ro"))
    for key in ("devices", "group_add", "security_opt", "cap_add"):
        if c.get(key):
            service[key] = list(c[key])
    if "ipc" in c:
        service["ipc"] = c["ipc"]
    if "shm_size" in c:
        service["shm_size"] = c["shm_size"]
    url = f"http://127.0.0.1:{plan.port}{plan.health_path}"
    service["healthcheck"] = {
        "test": ["CMD", "python3", "-c", f"import urllib.request; urllib.request.urlopen({url!r})"],
        "interval": "10s",
        "timeout": "5s",
        "retries": 3,
        "start_period": "600s",
    }
    driver = _reservation(plan)
    if driver:
        # The Compose Specification: count and device_ids are exclusive; ids are strings.
        chosen: dict[str, Any] = (
            {"count": plan.total_gpus}
            if plan.devices is None
            else {"device_ids": [str(i) for i in plan.devices]}
        )
        service["deploy"] = {
            "resources": {
                "reservations": {"devices": [{"driver": driver, **chosen, "capabilities": ["gpu"]}]}
            }
        }
    # No top-level ``name``: Debian's docker-compose (1.29) refuses it. The project is named
    # with -p (see the header); the container by container_name, as launch.sh names it.
    return {"services": {"server": service}}


def _native_config(plan: Plan) -> dict[str, Any]:
    engine = BACKENDS[plan.backend]
    config: dict[str, Any] = {engine.model_flag or "model": model_path(plan)}
    config.update({name: s.value for name, s in plan.args.items()})
    return config


def render(plan: Plan, request_line: str) -> dict[str, str]:
    """Every artifact of ``plan`` except the manifest, by file name.

    Args:
        plan: The resolved plan.
        request_line: The ``aim-engine compile ...`` command that reproduces the plan
            (written into the headers).
    """

    in_container = container_view(plan)
    own_env = [(name, str(s.value)) for name, s in plan.env.items()]
    context = {
        "plan": plan,
        "version": __version__,
        "request_line": request_line,
        "argv_groups": server_argv_groups(plan),
        # launch.sh's exports, and aim.env (the container's, also for Compose beside a bare
        # process: an NVIDIA container numbers its GPUs from 0, a bare process does not).
        "env": own_env + device_env(plan, container=plan.launcher == "docker"),
        "file_env": own_env + device_env(plan, container=True),
        "unset": hidden_env(plan),
        "devices": ",".join(str(i) for i in plan.devices) if plan.devices is not None else None,
        # The headers' words for the devices: whose numbering, how a container gets them.
        "maker": _maker(plan),
        "docker_options": _docker_options(plan) if plan.launcher == "docker" else [],
        "container_cache": CONTAINER_CACHE,
        "compose": _compose(in_container) if in_container else None,
        "native_config": _native_config(plan),
        "node": None,
    }
    names = ["launch.sh", "aim.env"]
    templates = {name: f"{name}.j2" for name in names}
    config_file = BACKENDS[plan.backend].config_file
    if config_file:
        templates[config_file] = "native-config.yaml.j2"
        context["native_comment"] = BACKENDS[plan.backend].config_comment
    if plan.nodes > 1:
        # The bare-metal pair (Compose runs on one host: none).
        context["node"] = _node(plan, "0")
        context["worker_node"] = _node(plan, "$AIM_NODE_RANK")
        templates["launch-worker.sh"] = "launch-worker.sh.j2"
    elif in_container:
        templates["compose.yaml"] = "compose.yaml.j2"
    return render_templates({name: templates[name] for name in sorted(templates)}, context)


def _maker(plan: Plan) -> dict[str, str | None] | None:
    """What the headers say of the vendor of a plan's devices (None without devices)."""
    if plan.devices is None:
        return None
    maker = vendor(str(plan.hardware["vendor"]))
    return {
        "device_tool": maker.device_tool,
        "device_env": maker.device_env,
        "reservation": maker.reservation,
    }


def _node(plan: Plan, rank: str) -> dict[str, Any]:
    """The role of one node's script: the words it adds after the server's arguments
    (:func:`node_role_args`), the script's variables double-quoted, the rest shell-quoted.
    SGLang takes the head's address as ``HOST:PORT`` (split at the last ``:``): a hostname
    or IPv4 address there, no IPv6 literal."""

    tensor = BACKENDS[plan.backend].multinode == "tensor"
    words = node_role_args(plan, rank, "$AIM_MASTER_ADDR")
    return {
        "head": rank == "0",
        "script": "launch.sh" if rank == "0" else "launch-worker.sh",
        "ranks": "1" if plan.nodes == 2 else f"1 to {plan.nodes - 1}",
        "words": " ".join(f'"{w}"' if w.startswith("$AIM_") else shell_quote(w) for w in words),
        "layout": multinode_layout(plan),
        "port": store_port(plan),
        "worker_role": worker_role(plan),
        "address": "hostname or IPv4 address" if tensor else "hostname or IP address",
        "host_re": (
            "^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"
            if tensor
            else "^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$"
        ),
    }


def manifest(plan: Plan, artifacts: dict[str, str], inputs: dict[str, Any]) -> str:
    """``manifest.json``: the plan, the inputs' hashes and each artifact's sha256."""
    data = {
        "generator": f"aimc {__version__}",
        "inputs": inputs,
        "artifacts": {name: sha256(text.encode()).hexdigest() for name, text in artifacts.items()},
        "plan": plan.to_json(),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def command_plan(
    argv: list[str],
    name: str,
    gpus: int,
    port: int,
    env: dict[str, str],
    health_path: str = "/health",
    model: str = "",
) -> Plan:
    """The plan of a command given as is (the Python API's ``run_command_directly``): a
    bare process that runs ``argv``; ready when ``health_path`` answers (and ``model`` is
    listed, when given). A :attr:`~aimc.plan.model.Plan.raw_command`: no recipe, hardware
    profile or backend."""

    return Plan(
        name=name,
        model_id=model,
        served_model_name=model,
        model_source="",
        model_revision=None,
        local_model=False,
        recipe={},
        hardware={},
        configuration="",
        backend="",
        backend_version="",
        precision="",
        gpus=gpus,
        port=port,
        launcher="process",
        image=None,
        container={},
        command=list(argv),
        env={k: Setting(v, "cli", "run_command_directly") for k, v in sorted(env.items())},
        health_path=health_path,
        raw_command=True,
    )


def render_command(plan: Plan) -> dict[str, str]:
    """``launch.sh`` (exports, then ``exec`` of the command) and ``manifest.json`` of a
    :func:`command_plan`."""

    context = {
        "plan": plan,
        "version": __version__,
        "env": [(name, str(s.value)) for name, s in plan.env.items()],
    }
    files = render_templates({"launch.sh": "command.sh.j2"}, context)
    files["manifest.json"] = manifest(plan, files, {"command": plan.command})
    return files
