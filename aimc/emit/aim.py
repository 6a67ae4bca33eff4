"""AMD AIM operator artifacts (``--emit aim``): the plan as ``aim.eai.amd.com`` resources.

Written against ``aim.eai.amd.com/v1alpha1`` of amd-enterprise-ai/aim-engine v0.2.1 (commit
9223504, the vendored CRDs: tests/data/aim/SOURCE.md). The operator does not run an image
with arguments: it runs an AIM image, whose runtime (amd-enterprise-ai/aim-build, commit
2be2cf8: ``src/aim_runtime``) picks a profile and starts ``python -m
vllm.entrypoints.openai.api_server --model <cached path>`` with the profile's engine
arguments, overridden by ``AIM_ENGINE_ARGS`` (a JSON object of long flag names:
``docs/engine-args-override.md``; the runtime then sets ``port`` and ``served-model-name``
itself). So the plan reaches an AIM cluster as three resources, all named ``plan.name``:

- ``aimmodel.yaml``: an ``AIMModel`` on AMD's base image (:data:`AIM_BASE_IMAGE`, the
  runtime on ROCm vLLM, ``docs/latest_aims.md``), image discovery off (it has no model
  metadata to read);
- ``aimservicetemplate.yaml``: an ``AIMServiceTemplate`` of that model: the plan's GPUs
  (``hardware.gpu``: count, the AIM GPU model of the target, the vendor's device resource),
  the model as a static source (``hf://MODEL``: no discovery job; the operator downloads it
  into its template cache, a PVC, once), ``AIM_ENGINE_ARGS`` (:func:`engine_args`) and the
  plan's environment; ``type: unoptimized`` (aimc's plan, not one AMD validated);
- ``aimservice.yaml``: an ``AIMService`` that names the model and the template (no
  auto-selection), ``replicas``, and the CPU and memory of ``--emit k8s``'s pod.

What the operator and its runtime allow, and is refused otherwise (exit 2): AMD GPUs the
base image has general vLLM profiles for (``profiles/general``: MI300X and MI325X, 1, 2, 4
or 8 GPUs, :data:`AIM_GPU_MODELS`), vLLM (the runtime's only engine), one node (a KServe
InferenceService predictor), port 8000 (the InferenceService's container port), the model
served under its id (the runtime's ``served-model-name``), a Hugging Face repo id of the form
``ORG/NAME`` at its default revision (the CRD's pattern; the operator's downloader takes no
revision). The base image's vLLM is AMD's release, not the plan's pinned one: the runtime
checks ``AIM_ENGINE_ARGS`` against its own ``schemas/vllm_engine_schema.json`` when it starts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aimc.backends import vocabulary
from aimc.core.errors import ConfigError
from aimc.emit.autoscale import Autoscale, aim_scaling
from aimc.emit.cluster import emit_request_line, folder, render_files
from aimc.emit.k8s import check_plan
from aimc.emit.k8s_pod import env_entry, k8s_escape, pod_resources, secret_name
from aimc.emit.monitoring import monitoring_resources
from aimc.emit.render import container_env, server_argv
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.vendors import vendor

__all__ = [
    "AIM_API",
    "AIM_BASE_IMAGE",
    "AIM_GPU_COUNTS",
    "AIM_GPU_MODELS",
    "AIM_PORT",
    "AIM_SERVICE_LABEL",
    "FILES",
    "aim_resources",
    "compile_aim",
    "engine_args",
    "render_aim",
]

AIM_API = "aim.eai.amd.com/v1alpha1"
#: AMD's AIM base image (aim-build ``docs/latest_aims.md``: ``amdenterpriseai/aim-base:0.9``).
AIM_BASE_IMAGE = "amdenterpriseai/aim-base:0.9"
#: The AIMService's container port (aim-engine ``constants.DefaultHTTPPort``) and the
#: runtime's default ``AIM_PORT``.
AIM_PORT = 8000
#: The label the operator puts on the InferenceService of an AIMService (and KServe on its
#: pods): the AIMService's name (aim-engine v0.2.1 ``constants.LabelService``).
AIM_SERVICE_LABEL = "aim.eai.amd.com/service"
#: aimc target -> the GPU model the operator labels nodes with (aim-engine
#: ``internal/utils/resources.go`` ``KnownAmdDevices``), for the targets whose GPUs the
#: base image has general profiles for (aim-build ``profiles/general/vllm-<gpu>-...``).
AIM_GPU_MODELS = {"mi300x": "MI300X", "mi325x": "MI325X"}
#: The GPU counts of those profiles (``tp1``, ``tp2``, ``tp4``, ``tp8``).
AIM_GPU_COUNTS = (1, 2, 4, 8)
#: Engine arguments the runtime sets itself (``command_generator.py``: ``--model``, then
#: ``port`` and ``served-model-name`` after the overrides); ``host`` is vLLM's default.
RUNTIME_ARGS = ("model", "host", "port", "served-model-name")
#: The CRD's patterns: ``AIMModelSource.modelId`` (the source is ``hf://`` + it).
_MODEL_ID = re.compile(r"^[a-zA-Z0-9_-]+/[a-zA-Z0-9._-]+\Z")
#: Variables the operator's cache and the runtime own (the downloads, the cache path).
_OWN_ENV = ("HF_HUB_CACHE", "HF_HUB_OFFLINE")

FILES = (
    "aimmodel.yaml",
    "aimservice.yaml",
    "aimservicetemplate.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
)


def _refuse(why: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"--emit aim: {why}", hint=hint)


def _check(plan: Plan, replicas: int) -> None:
    check_plan(plan, replicas, "aim")
    gpu = str(plan.hardware["name"])
    if plan.hardware.get("vendor") != "amd" or gpu not in AIM_GPU_MODELS:
        raise _refuse(
            f"the AIM base image has vLLM profiles for {', '.join(AIM_GPU_MODELS)} only, not {gpu}",
            hint="--emit k8s or --emit kserve run it on any GPU",
        )
    if plan.backend != "vllm":
        raise _refuse(f"the AIM runtime starts vLLM only, not {plan.backend}")
    if plan.nodes > 1:
        raise _refuse(f"an AIMService runs on one node, and this plan spans {plan.nodes}")
    if plan.total_gpus not in AIM_GPU_COUNTS:
        raise _refuse(
            f"the AIM base image has profiles for 1, 2, 4 or 8 GPUs, not {plan.total_gpus}"
        )
    if plan.port != AIM_PORT:
        raise _refuse(f"AIM serves on port {AIM_PORT}, not {plan.port}", hint="drop --port")
    if plan.served_model_name != plan.model_id:
        raise _refuse(
            "the AIM runtime serves the model under its id", hint="drop served_model_name"
        )
    if not _MODEL_ID.match(plan.model_id):
        raise _refuse(f"{plan.model_id!r} is not a model id of the form ORG/NAME")
    if plan.model_revision:
        raise _refuse("the AIM operator downloads a model's default revision only")


def engine_args(plan: Plan) -> dict[str, Any]:
    """``AIM_ENGINE_ARGS``: the plan's engine arguments by long flag name with their values
    (numbers stay numbers: the runtime checks types), less :data:`RUNTIME_ARGS`. The runtime
    writes ``--NAME`` for ``true`` and for ``null`` and drops ``false``
    (``_build_engine_args``), so a negatable flag set false is ``no-NAME: null``."""
    server_argv(plan)  # the engine-value rule on every argument (no value read as a flag)
    flags = vocabulary(plan.backend).flags
    args: dict[str, Any] = {}
    for name, setting in plan.args.items():
        if name in RUNTIME_ARGS:
            continue
        if setting.value is False:
            if flags.get(name, {}).get("negatable"):
                args[f"no-{name}"] = None
            continue
        args[name] = setting.value
    return args


def _env(plan: Plan) -> list[dict[str, Any]]:
    """The template's environment: ``AIM_ENGINE_ARGS``, then the plan's variables and the
    caller's pass-through secrets (from the optional Secret) as ``--emit k8s`` has them."""
    text = json.dumps(engine_args(plan), ensure_ascii=False, separators=(",", ":"))
    env = [{"name": "AIM_ENGINE_ARGS", "value": k8s_escape(text)}]
    env += [env_entry(plan, n, v) for n, v in container_env(plan) if n not in _OWN_ENV]
    return env


def _meta(plan: Plan, kind: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "aimc"}
    return {"apiVersion": AIM_API, "kind": kind, "metadata": {"name": plan.name, "labels": labels}}


def _template(plan: Plan) -> dict[str, Any]:
    resource = vendor(str(plan.hardware["vendor"])).device_resource
    gpu = {"requests": plan.total_gpus, "model": AIM_GPU_MODELS[str(plan.hardware["name"])]}
    if resource:
        gpu["resourceName"] = resource
    # The download's credential: HF_TOKEN only (HF_HUB_OFFLINE would stop the download).
    token = [env_entry(plan, n, None) for n in plan.passthrough_env if n == "HF_TOKEN"]
    source: dict[str, Any] = {"modelId": plan.model_id, "sourceUri": f"hf://{plan.model_id}"}
    if token:
        source["env"] = token
    spec = {
        "modelName": plan.name,
        "type": "unoptimized",
        "hardware": {"gpu": gpu},
        "modelSources": [source],
        "env": _env(plan),
    }
    return {**_meta(plan, "AIMServiceTemplate"), "spec": spec}


def _cpu_memory(plan: Plan) -> dict[str, dict[str, Any]]:
    """``--emit k8s``'s requests and limits less the GPUs (the template's hardware)."""
    gpu = vendor(str(plan.hardware["vendor"])).device_resource
    return {k: {n: v for n, v in q.items() if n != gpu} for k, q in pod_resources(plan).items()}


def aim_resources(
    plan: Plan, replicas: int = 1, autoscale: Autoscale | None = None
) -> dict[str, dict[str, Any]]:
    """The AIM resources of ``plan``, by file name (data, before YAML): with ``autoscale``,
    the AIMService's own autoscaling fields (:func:`aimc.emit.autoscale.aim_scaling`)
    instead of ``replicas``; ``monitoring/`` always (the operator's pods are KServe
    InferenceService pods, labelled ``serving.kserve.io/inferenceservice``)."""
    _check(plan, replicas)
    model = {
        "image": AIM_BASE_IMAGE,
        "discovery": {"extractMetadata": False, "createServiceTemplates": False},
    }
    service = {
        "model": {"name": plan.name},
        "template": {"name": plan.name},
        "replicas": replicas,
        "resources": _cpu_memory(plan),
    }
    if autoscale is not None:
        del service["replicas"]
        service.update(aim_scaling(plan, autoscale))
    # The operator names the InferenceService it creates {service}-{hash of the namespace}
    # (aim-engine v0.2.1 internal/aimservice/kserve.go GenerateInferenceServiceName), so
    # its pods are found by the label it puts on that InferenceService,
    # aim.eai.amd.com/service = the AIMService's name, which KServe copies onto the
    # predictor pods (utils.Union(..., isvc.Labels, ...) in its predictor reconciler).
    selector = {AIM_SERVICE_LABEL: plan.name}
    return {
        "aimmodel.yaml": {**_meta(plan, "AIMModel"), "spec": model},
        "aimservice.yaml": {**_meta(plan, "AIMService"), "spec": service},
        "aimservicetemplate.yaml": _template(plan),
        **monitoring_resources(plan, selector, {"port": "http"}, AIM_SERVICE_LABEL),
    }


def _notes(plan: Plan) -> dict[str, list[str]]:
    secret = secret_name(plan)
    secrets = [n for n in plan.passthrough_env if n not in _OWN_ENV]
    common = [
        "kubectl apply -f .   (aimmodel.yaml, aimservicetemplate.yaml, aimservice.yaml; needs"
        " the AIM operator, aim.eai.amd.com)",
        f"{', '.join(secrets)} come from the optional Secret {secret} (one key each), never"
        " from a value:",
        f"  kubectl create secret generic {secret} --from-literal=HF_TOKEN=...",
    ]
    return {
        "aimmodel.yaml": [
            *common,
            "The AIM base image's runtime starts vLLM on the model the operator caches"
            f" ({plan.model_id}).",
        ],
        "aimservicetemplate.yaml": [
            *common,
            "AIM_ENGINE_ARGS overrides the engine arguments of the base image's profile with"
            " the plan's",
            "(AMD's vLLM release, not the plan's pinned one; the runtime checks them when it"
            " starts).",
            'Every "$" in env is written "$$": the kubelet would expand "$(NAME)".',
        ],
        "aimservice.yaml": [
            *common,
            f"The operator serves it through a KServe InferenceService on port {AIM_PORT}.",
        ],
    }


def render_aim(
    plan: Plan, line: str, replicas: int = 1, autoscale: Autoscale | None = None
) -> dict[str, str]:
    """The AIM files of ``plan`` by name, ``manifest.aimc`` excluded."""
    return render_files(plan, line, aim_resources(plan, replicas, autoscale), _notes(plan))


def aim_line(
    request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> str:
    """The ``aim-engine compile`` line of an AIM folder."""
    return emit_request_line(request, target, "aim", replicas, autoscale)


def compile_aim(
    plan: Plan,
    request: Request,
    target: str,
    replicas: int = 1,
    autoscale: Autoscale | None = None,
) -> dict[str, str]:
    """Every file of ``--emit aim``, ``manifest.aimc`` included."""
    line = aim_line(request, target, replicas, autoscale)
    files = render_aim(plan, line, replicas, autoscale)
    kubernetes: dict[str, Any] = {"emit": "aim", "replicas": replicas}
    if autoscale is not None:
        kubernetes["autoscale"] = autoscale.record()
    return folder(plan, request, line, files, kubernetes)
