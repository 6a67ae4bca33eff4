"""The LeaderWorkerSet controller's naming rules, and aimc's objects beside them.

The rules are transcribed from kubernetes-sigs/lws at commit 060ab4d (the commit of the
vendored CRD, tests/data/lws/SOURCE.md); each carries its file:line there. Failed before:
aimc's Service had the LeaderWorkerSet's own name: the name of the headless Service the
controller creates, only when none exists, for ``LWS_LEADER_ADDRESS``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.k8s import resources
from aimc.emit.k8s_lws import STATEFULSET_NAME_MAX
from aimc.emit.k8s_pod import LABEL_MAX
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.plan.resolve import plan_name
from tests.helpers.k8s import kubelet_expand
from tests.helpers.plans import plan_with_env

CATALOG = Catalog.default()
LWS_MODEL = "meta-llama/Llama-3.1-405B-Instruct"
NAMESPACE = "team-a"
#: A DNS-1035 label: what a Service's and a LeaderWorkerSet's name must be
#: (pkg/webhooks/leaderworkerset_webhook.go:127-129: NameIsDNS1035Label).
DNS1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
#: api/leaderworkerset/v1/leaderworkerset_types.go:37 and :45.
SET_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"


def controller_objects(lws: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every object the LWS controller creates for ``lws``."""
    name = lws["metadata"]["name"]
    spec = lws["spec"]
    size = spec["leaderWorkerTemplate"]["size"]
    policy = spec.get("networkConfig", {}).get("subdomainPolicy", "Shared")
    # leaderworkerset_controller.go:846: the leader StatefulSet is named after the LWS.
    made = {("StatefulSet", name)}
    if policy == "Shared":
        # leaderworkerset_controller.go:213-216: one headless Service named after the LWS,
        # created by controller_utils.go:33-51 only if no Service of that name exists.
        made.add(("Service", name))
    for group in range(spec["replicas"]):
        leader = f"{name}-{group}"  # a StatefulSet's pod: NAME-ORDINAL
        made.add(("Pod", leader))
        if policy == "UniquePerReplica":
            made.add(("Service", leader))  # pod_controller.go:124-127
        if size > 1:
            # pod_controller.go:436 and :442: a worker StatefulSet named after its leader
            # pod, ordinals from 1 (none when size is 1: pod_controller.go:137-140).
            made.add(("StatefulSet", leader))
            made |= {("Pod", f"{leader}-{index}") for index in range(1, size)}
    return made


def controller_service_name(lws_name: str) -> re.Pattern[str]:
    """Every Service name the controller may give a LeaderWorkerSet of this name, whatever
    its replicas and subdomain policy: NAME or NAME-GROUP."""
    return re.compile(re.escape(lws_name) + r"(-[0-9]+)?")


def leader_address(lws: dict[str, Any], group: int) -> str:
    """``LWS_LEADER_ADDRESS`` of group ``group``: pod_utils.go:143-146, ``NAME-GROUP.
    SUBDOMAIN.NAMESPACE``, the subdomain being the headless Service's name (the LWS's,
    with the Shared policy: leaderworkerset_controller.go:848)."""
    name = lws["metadata"]["name"]
    return f"{name}-{group}.{name}.{NAMESPACE}"


def lws_env(lws: dict[str, Any], group: int, index: int) -> dict[str, str]:
    """The variables the webhook adds to every container (pod_utils.go:132-179)."""
    return {
        "LWS_LEADER_ADDRESS": leader_address(lws, group),
        "LWS_GROUP_SIZE": str(lws["spec"]["leaderWorkerTemplate"]["size"]),
        "LWS_WORKER_INDEX": str(index),
    }


@functools.cache
def _plan() -> Plan:
    return make_plan(CATALOG, Request(model=LWS_MODEL, precision="bf16"), "h100")


def _check(plan: Plan, replicas: int) -> None:
    """No object aimc writes has a name the controller creates, every name the controller
    derives from aimc's is valid, and the leader address resolves through the controller's
    own Service."""
    written = resources(plan, replicas)
    lws = written["leaderworkerset.yaml"]
    service = written["service.yaml"]
    name = lws["metadata"]["name"]
    ours = {(r["kind"], r["metadata"]["name"]) for r in written.values()}
    ours.add(("Secret", f"{plan.name}-secrets"))  # referenced, created by the user
    assert not ours & controller_objects(lws)
    assert not controller_service_name(name).fullmatch(service["metadata"]["name"])
    for kind, made in controller_objects(lws):
        limit = STATEFULSET_NAME_MAX if kind == "StatefulSet" else LABEL_MAX
        assert len(made) <= limit, (kind, made)
    assert DNS1035.fullmatch(name) and DNS1035.fullmatch(service["metadata"]["name"])
    assert len(service["metadata"]["name"]) <= LABEL_MAX
    # aimc's Service selects the leaders (worker index 0) of this LWS and no worker.
    selector = service["spec"]["selector"]
    assert selector == {SET_NAME_LABEL: name, WORKER_INDEX_LABEL: "0"}


def test_the_service_is_not_the_controllers() -> None:
    plan = _plan()
    written = resources(plan, 1)
    lws = written["leaderworkerset.yaml"]
    assert lws["metadata"]["name"] == "aim-llama-3-1-405b-instruct"
    assert written["service.yaml"]["metadata"]["name"] == "aim-llama-3-1-405b-instruct-leader"
    assert ("Service", "aim-llama-3-1-405b-instruct") in controller_objects(lws)
    for replicas in (1, 3, 10, 11, 1000):
        _check(plan, replicas)


def test_a_63_character_name_is_shortened_for_the_controller() -> None:
    """The longest plan name (63) would give worker StatefulSets of 65 characters, whose
    pods the StatefulSet controller cannot create: the LWS name is cut to fit, with a hash
    that keeps two long names apart."""
    base = _plan()
    one = dataclasses.replace(base, name=plan_name("org/" + "a" * 70))
    two = dataclasses.replace(base, name=plan_name("org/" + "a" * 57 + "-bc"))
    assert len(one.name) == len(two.name) == 63
    names = [resources(p, 1)["leaderworkerset.yaml"]["metadata"]["name"] for p in (one, two)]
    assert names[0] != names[1]
    assert all(len(n) == STATEFULSET_NAME_MAX - 2 for n in names)
    assert all(n.startswith("aim-aaaa") for n in names)
    services = [resources(p, 1)["service.yaml"]["metadata"]["name"] for p in (one, two)]
    assert services[0] != services[1] and all(len(s) == LABEL_MAX for s in services)
    for plan in (one, two):
        _check(plan, 1)
        _check(plan, 100)


@settings(max_examples=100, deadline=None)
@given(
    model=st.text(min_size=0, max_size=120),
    replicas=st.integers(1, 1200),
    nodes=st.integers(2, 16),
)
def test_no_name_collides_for_any_model(model: str, replicas: int, nodes: int) -> None:
    """Hostile and long model names: whatever the repo name, replicas and nodes."""
    plan = dataclasses.replace(_plan(), name=plan_name(f"org/{model}"), nodes=nodes)
    _check(plan, replicas)


@pytest.mark.parametrize("replicas", [1, 2])
def test_lws_variables_are_used_as_the_controller_defines_them(replicas: int) -> None:
    """With the variables the webhook gives each pod, the kubelet's expansion makes every
    pod of every group the node rank the controller numbered it, joined at its own group's
    leader; --nnodes is the group size and the pipeline's depth."""
    plan = _plan()
    lws = resources(plan, replicas)["leaderworkerset.yaml"]
    template = lws["spec"]["leaderWorkerTemplate"]
    size = template["size"]
    assert size == plan.nodes == 2
    pods = [("leaderTemplate", 0)] + [("workerTemplate", i) for i in range(1, size)]
    for group in range(replicas):
        for which, index in pods:
            (container,) = template[which]["spec"]["containers"]
            env = lws_env(lws, group, index)
            words = [kubelet_expand(w, env) for w in container["args"]]
            used = {m for w in container["args"] for m in re.findall(r"\$\((\w+)\)", w)}
            assert used <= {"LWS_LEADER_ADDRESS", "LWS_WORKER_INDEX"}

            def value(flag: str, words: list[str] = words) -> str:
                assert words.count(flag) == 1
                return words[words.index(flag) + 1]

            assert value("--node-rank") == str(index)
            assert value("--master-addr") == leader_address(lws, group)
            assert value("--nnodes") == value("--pipeline-parallel-size") == str(size)
            assert ("--headless" in words) == (index != 0)


@pytest.mark.parametrize("replicas", [1, 9, 10, 11, 100, 101])
@pytest.mark.parametrize("nodes", [1, 2, 10, 11])
def test_lws_name_is_the_longest_the_controller_s_names_allow(replicas: int, nodes: int) -> None:
    """Derived from the controller's names, not from lws_name's arithmetic: worker
    StatefulSets ``NAME-GROUP`` at most 52 characters, worker pods ``NAME-GROUP-INDEX`` at
    most 63, for the largest group and index; the name is as long as both allow."""
    import hashlib

    from aimc.emit.k8s_lws import lws_name

    plan = dataclasses.replace(plan_with_env("docker", "A"), name="m" * 80, nodes=nodes)
    group, index = str(replicas - 1), str(nodes - 1)
    longest = max(
        n for n in range(64) if n + 1 + len(group) <= 52 and n + 2 + len(group) + len(index) <= 63
    )
    digest = hashlib.sha256(b"m" * 80).hexdigest()[:5]
    assert lws_name(plan, replicas) == "m" * (longest - 6) + "-" + digest
