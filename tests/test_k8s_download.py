"""One download per model, not one per pod.

Before, every pod of a LeaderWorkerSet group and every replica downloaded the whole model
into the same ReadWriteMany cache at once. Now one step downloads (the pod's own ``download``
init container when it is the only pod, else a ``NAME-download`` Job), marks the snapshot
complete, and every server pod waits for the mark (``wait-for-model``) and starts offline.
The download and wait steps are run here for real, with this venv's Python and its
huggingface_hub, against the stand-in hub (tests/fakes/hub.py) on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.k8s import compile_k8s, resources
from aimc.emit.k8s_download import DOWNLOAD_SCRIPT, READY_DIR, ready_mark
from aimc.emit.render import CONTAINER_CACHE
from aimc.emit.templating import to_yaml
from aimc.plan.request import Request
from tests.fakes.hub import FakeHub
from tests.helpers.k8s import kubelet_expand, load_yaml

CATALOG = Catalog.default()
MODEL = "Qwen/Qwen3-8B"
LWS_MODEL = "meta-llama/Llama-3.1-405B-Instruct"


def _files(model: str = MODEL, replicas: int = 1, **request: Any) -> dict[str, Any]:
    req = Request(model=model, **request)
    plan = make_plan(CATALOG, req, "h100")
    texts = compile_k8s(plan, req, "h100", replicas)
    return {name: load_yaml(text) for name, text in texts.items() if name.endswith(".yaml")}


def _server_pods(files: dict[str, Any]) -> list[dict[str, Any]]:
    if "deployment.yaml" in files:
        return [files["deployment.yaml"]["spec"]["template"]["spec"]]
    lwt = files["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
    return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def test_one_pod_downloads_in_its_init_container_then_starts_offline() -> None:
    files = _files()
    assert "download.yaml" not in files
    (pod,) = _server_pods(files)
    (init,) = pod["initContainers"]
    assert init["name"] == "download"
    (server,) = pod["containers"]
    assert _env(server)["HF_HUB_OFFLINE"] == {"name": "HF_HUB_OFFLINE", "value": "1"}
    assert init["image"] == server["image"]


def test_replicas_and_groups_share_one_download_job() -> None:
    """Replicas and every pod of a LeaderWorkerSet group: one Job (one pod, no parallelism)
    downloads; every server pod waits for the mark the Job writes, none downloads."""
    for files in (_files(replicas=3), _files(LWS_MODEL, 2, precision="bf16")):
        job = files["download.yaml"]
        assert job["kind"] == "Job"
        assert "parallelism" not in job["spec"] and "completions" not in job["spec"]
        (download,) = job["spec"]["template"]["spec"]["containers"]
        mark = _env(download)["AIMC_MODEL_READY"]["value"]
        assert mark.startswith(READY_DIR + "/")
        # The Job's pods are no server: the Services and the Deployment select "server".
        assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
            "download"
        )
        for pod in _server_pods(files):
            (wait,) = pod["initContainers"]
            assert wait["name"] == "wait-for-model"
            assert _env(wait)["AIMC_MODEL_READY"]["value"] == mark
            assert wait["volumeMounts"][0]["readOnly"] is True
            for server in pod["containers"]:
                assert _env(server)["HF_HUB_OFFLINE"]["value"] == "1"


def test_the_download_step_gets_the_hub_secrets_only() -> None:
    """HF_TOKEN and the caller's HF_HUB_OFFLINE (a cache filled beforehand) reach the
    download, by reference; the server's VLLM_API_KEY does not."""
    for files in (_files(), _files(replicas=2)):
        if "download.yaml" in files:
            (download,) = files["download.yaml"]["spec"]["template"]["spec"]["containers"]
        else:
            (download,) = _server_pods(files)[0]["initContainers"]
        env = _env(download)
        assert "VLLM_API_KEY" not in env
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
        assert "valueFrom" in env["HF_HUB_OFFLINE"]


def test_only_the_leader_has_probes_and_its_restart_recreates_the_group() -> None:
    """A headless worker serves no HTTP: the leader's startup probe is the group's budget,
    and RecreateGroupOnPodRestart makes its restart the group's."""
    files = _files(LWS_MODEL, 2, precision="bf16")
    leader, worker = (pod["containers"][0] for pod in _server_pods(files))
    assert "startupProbe" in leader
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(worker)
    assert "--headless" in worker["args"]
    lwt = files["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
    assert lwt["restartPolicy"] == "RecreateGroupOnPodRestart"


def _process_env(container: dict[str, Any], tmp: Path, secret: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet gives it, the cache moved under ``tmp``."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp / "home")}
    for entry in container["env"]:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret:
                env[entry["name"]] = secret[ref["key"]]
            continue
        value = kubelet_expand(entry["value"], {})
        env[entry["name"]] = value.replace(CONTAINER_CACHE, str(tmp / "cache"))
    return env


def _run(container: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[str]:
    python, flag, script = container["command"]
    assert (python, flag) == ("python3", "-c")
    return subprocess.Popen(
        [sys.executable, flag, kubelet_expand(script, {})],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_job_downloads_once_and_the_pods_start_offline(tmp_path: Path) -> None:
    """The Job's script, run as written, downloads the gated repository with the Secret's
    token (without Llama's ``original/`` checkpoints, as vLLM), marks it complete; the
    waiting step returns only then; the server's environment (offline) finds the snapshot
    with the hub out of reach."""
    files = _files(replicas=3)
    (download,) = files["download.yaml"]["spec"]["template"]["spec"]["containers"]
    (wait,) = _server_pods(files)[0]["initContainers"]
    (server,) = _server_pods(files)[0]["containers"]
    hub = FakeHub().start()
    weights = {
        "config.json": b'{"model_type": "qwen3"}',
        "model.safetensors": b"\0" * 4096,
        "original/consolidated.00.pth": b"\1" * 4096,
    }
    hub.add(MODEL, weights, gated=True)
    waiter = None
    try:
        env = _process_env(download, tmp_path, {"HF_TOKEN": hub.token})
        env["HF_ENDPOINT"] = hub.url
        waiter = _run(wait, _process_env(wait, tmp_path, {}))
        assert waiter.poll() is None  # no mark yet: it waits
        downloader = _run(download, env)
        out, _ = downloader.communicate(timeout=120)
        assert downloader.returncode == 0, out
        assert waiter.wait(timeout=60) == 0
    finally:
        hub.stop()
        if waiter is not None and waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert hub.gets(MODEL, "model.safetensors") == 1
    assert hub.gets(MODEL, "consolidated.00.pth") == 0
    mark = Path(env["AIMC_MODEL_READY"])
    assert mark.is_file() and mark.parent == tmp_path / "cache" / ".aimc-ready"
    # The server: offline, the hub unreachable; the repo id resolves to the cached snapshot
    # as vLLM 0.32 resolves it with HF_HUB_OFFLINE set (vllm/engine/arg_utils.py:908 calls
    # get_model_path, vllm/transformers_utils/repo_utils.py:286-304: this call), after
    # which vLLM loads from that folder and downloads nothing.
    offline = _process_env(server, tmp_path, {})
    assert offline["HF_HUB_OFFLINE"] == "1"
    offline["HF_ENDPOINT"] = "http://127.0.0.1:9"
    code = (
        "from huggingface_hub import snapshot_download; "
        f"print(snapshot_download({MODEL!r}, local_files_only=True, ignore_patterns='*'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], env=offline, capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stderr
    snapshot = Path(found.stdout.strip())
    assert (snapshot / "model.safetensors").read_bytes() == weights["model.safetensors"]
    assert not (snapshot / "original").exists()


REVISIONS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(model=REVISIONS, revision=REVISIONS)
def test_hostile_model_names_reach_the_download_step_as_themselves(
    model: str, revision: str
) -> None:
    """A model id and revision reach the download step only as env values (never in the
    script or a path): through YAML and the kubelet's ``$(...)`` expansion they read back
    as themselves, and the ready mark is hex."""
    base = make_plan(CATALOG, Request(model=MODEL), "h100")
    plan = dataclasses.replace(base, model_id=model, model_revision=revision)
    for replicas in (1, 2):
        written = resources(plan, replicas)
        pod = (
            written["download.yaml"]["spec"]["template"]["spec"]["containers"][0]
            if replicas > 1
            else written["deployment.yaml"]["spec"]["template"]["spec"]["initContainers"][0]
        )
        read = load_yaml(to_yaml(pod))
        env = {e["name"]: kubelet_expand(e["value"], {}) for e in read["env"] if "value" in e}
        assert env["AIMC_MODEL"] == model
        assert env["AIMC_REVISION"] == revision
        mark = env["AIMC_MODEL_READY"]
        assert mark == ready_mark(plan)
        assert mark.rsplit("/", 1)[1].isalnum() and mark.rsplit("/", 1)[0] == READY_DIR
        # The script is the same text whatever the model: the names are no part of it.
        assert kubelet_expand(read["command"][2], {}) == DOWNLOAD_SCRIPT
