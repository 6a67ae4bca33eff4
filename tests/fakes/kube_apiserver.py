"""A discovery-only stand-in Kubernetes API server for the real ``kubectl`` client.

No Kubernetes API server can be installed on these machines (Debian has ``etcd-server`` and
``kubernetes-client``, but no ``kube-apiserver``, ``k3s`` or ``kwok``; none was found among
PyPI's packages; the package registries are all these machines reach), so ``kubectl apply
-f DIR`` is tested against this: a local HTTP server on 127.0.0.1 that answers what
kubectl asks before it writes anything:

- discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``, ``/apis/batch/v1``,
  ``/apis/leaderworkerset.x-k8s.io/v1``, KServe's ``serving.kserve.io/v1alpha1`` and the AIM
  operator's ``aim.eai.amd.com/v1alpha1``): the legacy (unaggregated) documents, which
  kubectl falls back to when the answer is not ``apidiscovery.k8s.io/v2``;
- ``GET`` of one object: 404 NotFound (the namespace is empty), so ``apply`` creates;
- ``POST`` with ``dryRun=All`` (``--dry-run=server``): the object kubectl sent, echoed
  back with 201, and recorded in :attr:`KubeAPI.created`;
- the OpenAPI documents (``/openapi/...``; kubectl 1.20 asks for them even with
  ``--validate=false``): 404;
- anything else: 404, and recorded in :attr:`KubeAPI.other`.

It decides nothing about validity: the schemas are checked with kubernetes-validate and the
LeaderWorkerSet CRD. What it shows is that kubectl decodes every file of a folder, maps
each object to a resource that exists (``kind`` and ``apiVersion`` as a cluster with the
LeaderWorkerSet CRD serves them) and sends it as written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hub import SHUTDOWN_POLL

#: (group version, resource, kind, namespaced) served by the stand-in.
RESOURCES = [
    ("v1", "services", "Service", True),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    ("v1", "secrets", "Secret", True),
    ("v1", "pods", "Pod", True),
    ("v1", "namespaces", "Namespace", False),
    ("apps/v1", "deployments", "Deployment", True),
    ("apps/v1", "statefulsets", "StatefulSet", True),
    ("batch/v1", "jobs", "Job", True),
    ("leaderworkerset.x-k8s.io/v1", "leaderworkersets", "LeaderWorkerSet", True),
    # KServe's and the AIM operator's (--emit kserve, --emit aim).
    ("serving.kserve.io/v1alpha1", "llminferenceservices", "LLMInferenceService", True),
    ("serving.kserve.io/v1alpha1", "llminferenceserviceconfigs", "LLMInferenceServiceConfig", True),
    ("aim.eai.amd.com/v1alpha1", "aimmodels", "AIMModel", True),
    ("aim.eai.amd.com/v1alpha1", "aimservicetemplates", "AIMServiceTemplate", True),
    ("aim.eai.amd.com/v1alpha1", "aimservices", "AIMService", True),
    # monitoring/ and --autoscale: a ConfigMap, prometheus-operator, KEDA, the HPA.
    ("v1", "configmaps", "ConfigMap", True),
    ("monitoring.coreos.com/v1", "podmonitors", "PodMonitor", True),
    ("keda.sh/v1alpha1", "scaledobjects", "ScaledObject", True),
    ("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
]
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource_list(group_version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": resource,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": VERBS,
            }
            for gv, resource, kind, namespaced in RESOURCES
            if gv == group_version
        ],
    }


def _groups() -> dict[str, Any]:
    groups = []
    for gv in sorted({gv for gv, *_ in RESOURCES if "/" in gv}):
        name, version = gv.split("/")
        entry = {"groupVersion": gv, "version": version}
        groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _documents() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {
        "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux"},
        "/api": {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
            ],
        },
        "/apis": _groups(),
        "/api/v1": _resource_list("v1"),
    }
    for gv in {gv for gv, *_ in RESOURCES if "/" in gv}:
        docs[f"/apis/{gv}"] = _resource_list(gv)
    return docs


class KubeAPI:
    """The running stand-in: its URL, a kubeconfig for it, and what kubectl sent."""

    def __init__(self, server: ThreadingHTTPServer, folder: Path):
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        #: (path, object) of every POST (``--dry-run=server`` create).
        self.created: list[tuple[str, dict[str, Any]]] = []
        #: (method, path) of every GET of one object.
        self.gets: list[tuple[str, str]] = []
        #: (method, path) of every request it had no answer for.
        self.other: list[tuple[str, str]] = []
        self.kubeconfig = folder / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "nobody", "user": {}}],
            "contexts": [
                {
                    "name": "stand-in",
                    "context": {"cluster": "stand-in", "user": "nobody", "namespace": "default"},
                }
            ],
            "current-context": "stand-in",
        }
        self.kubeconfig.write_text(json.dumps(config))

    def env(self, home: Path) -> dict[str, str]:
        """The environment a kubectl for this stand-in runs with (its own HOME: the
        discovery cache is written there)."""
        return {"KUBECONFIG": str(self.kubeconfig), "HOME": str(home), "PATH": "/usr/bin:/bin"}


def _handler(api: list[KubeAPI]) -> type[BaseHTTPRequestHandler]:
    documents = _documents()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, path: str) -> None:
            self._send(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"{path} not found",
                    "reason": "NotFound",
                    "code": 404,
                },
            )

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path in documents:
                self._send(200, documents[path])
                return
            if path.startswith(("/api/", "/apis/")) and "/namespaces/" in path:
                api[0].gets.append(("GET", path))
            elif not path.startswith(("/openapi/", "/swagger-")):
                api[0].other.append(("GET", path))
            self._not_found(path)

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if parse_qs(parts.query).get("dryRun") != ["All"]:
                api[0].other.append(("POST", parts.path))
                self._send(403, {"kind": "Status", "apiVersion": "v1", "code": 403})
                return
            api[0].created.append((parts.path, body))
            self._send(201, body)

        def do_PATCH(self) -> None:
            api[0].other.append(("PATCH", urlsplit(self.path).path))
            self._not_found(self.path)

        do_PUT = do_DELETE = do_PATCH

    return Handler


@contextmanager
def kube_api(folder: Path) -> Iterator[KubeAPI]:
    """Run the stand-in on a free port of 127.0.0.1 until the block ends."""
    holder: list[KubeAPI] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    holder.append(KubeAPI(server, folder))
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
