"""k8s_wait against the real API server: one read when nothing waits, a status that arrives while waiting, the
failure message, per-parent route status, and bad input."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import Cluster
from tests.integration.test_tenant_modules import run_tasks

GW = ("gateway.networking.k8s.io", "v1")
CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


def wait_task(objects: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {
        "tokenlabs.platform.k8s_wait": {"objects": objects, "timeout": 10, "delay": 0.5, **params},
        "ignore_errors": True,
    }


def gateway(name: str, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "api_version": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "name": name,
        "conditions": conditions or [{"type": "Programmed"}],
    }


def create_gateway(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    return client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(*GW, ns, "gateways", body)


def set_status(cluster: Cluster, ns: str, plural: str, name: str, status: dict[str, Any]) -> None:
    api = client.CustomObjectsApi(cluster.api)
    api.patch_namespaced_custom_object_status(*GW, ns, plural, name, {"status": status})


def programmed(generation: int, status: str = "True", message: str = "") -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = {"type": "Programmed", "status": status, "reason": "Programmed" if status == "True" else "Invalid"}
    return {
        "conditions": [{**condition, "message": message, "observedGeneration": generation, "lastTransitionTime": now}]
    }


def test_ready_objects_cost_one_read_and_a_late_status_is_waited_for(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    create_gateway(k8s_cluster, ns, "ready")
    set_status(k8s_cluster, ns, "gateways", "ready", programmed(1))
    create_gateway(k8s_cluster, ns, "late")
    # Set while ansible-playbook starts or the wait polls (the poll loop itself is unit-tested).
    timer = threading.Timer(3.0, set_status, (k8s_cluster, ns, "gateways", "late", programmed(1)))
    timer.start()
    try:
        (ready, late) = run_tasks(
            k8s_cluster,
            tmp_path,
            [
                wait_task([{**gateway("ready"), "namespace": ns}]),
                wait_task([{**gateway("late"), "namespace": ns}]),
            ],
        )
    finally:
        timer.cancel()
    assert ready["ready"] is True and ready["changed"] is False
    assert (ready["polls"], ready["requests"]) == (1, 1)
    assert late["ready"] is True and late["elapsed"] < 10, late


def test_a_failed_wait_names_each_object_with_its_condition(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    create_gateway(k8s_cluster, ns, "invalid")
    set_status(k8s_cluster, ns, "gateways", "invalid", programmed(1, "False", "no listener is valid"))
    failed, reported = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            wait_task([{**gateway("invalid"), "namespace": ns}, {**gateway("absent"), "namespace": ns}], timeout=1),
            wait_task([{**gateway("invalid"), "namespace": ns}], timeout=0, fail=False),
        ],
    )
    assert failed.get("failed") is True
    assert f"Gateway {ns}/invalid: Programmed False Invalid (no listener is valid)" in failed["msg"]
    assert f"Gateway {ns}/absent: not found" in failed["msg"]
    assert reported.get("failed") is not True and reported["ready"] is False
    assert [o["state"] for o in reported["objects"]] == ["waiting"]


def test_routes_wait_for_their_gateway_controller_entry(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "models", "labels": {"app.kubernetes.io/managed-by": "tokenlabs-platform"}},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]},
    }
    client.CustomObjectsApi(k8s_cluster.api).create_namespaced_custom_object(*GW, ns, "httproutes", body)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def entry(controller: str, *conditions: tuple[str, str]) -> dict[str, Any]:
        return {
            "parentRef": {"name": "gw"},
            "controllerName": controller,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": "R",
                    "message": "",
                    "observedGeneration": 1,
                    "lastTransitionTime": now,
                }
                for t, s in conditions
            ],
        }

    policy = entry("kuadrant.io/policy-controller", ("kuadrant.io/AuthPolicyAffected", "True"))
    set_status(k8s_cluster, ns, "httproutes", "models", {"parents": [policy]})
    routes = {
        "api_version": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "namespace": ns,
        "label_selectors": ["app.kubernetes.io/managed-by=tokenlabs-platform"],
        "conditions": [
            {"type": "Accepted", "scope": "parents", "parent": "gw"},
            {"type": "ResolvedRefs", "scope": "parents", "parent": "gw"},
        ],
    }
    (waiting,) = run_tasks(k8s_cluster, tmp_path, [wait_task([routes], timeout=1)], name="waiting")
    assert f"HTTPRoute {ns}/models: Accepted: no parent status for gw yet" in waiting["msg"]
    eg = entry(CONTROLLER, ("Accepted", "True"), ("ResolvedRefs", "False"))
    set_status(k8s_cluster, ns, "httproutes", "models", {"parents": [policy, eg]})
    (unresolved,) = run_tasks(k8s_cluster, tmp_path, [wait_task([routes], timeout=1)], name="unresolved")
    assert f"HTTPRoute {ns}/models: ResolvedRefs False R" in unresolved["msg"]
    eg = entry(CONTROLLER, ("Accepted", "True"), ("ResolvedRefs", "True"))
    set_status(k8s_cluster, ns, "httproutes", "models", {"parents": [policy, eg]})
    (resolved,) = run_tasks(k8s_cluster, tmp_path, [wait_task([routes])], name="resolved")
    assert resolved["ready"] is True, resolved


def test_bad_input_fails_before_waiting(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    unknown, unscoped, nothing = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            wait_task(
                [
                    {
                        "api_version": "example.com/v1",
                        "kind": "Widget",
                        "namespace": ns,
                        "name": "w",
                        "conditions": [{"type": "Ready"}],
                    }
                ]
            ),
            wait_task([gateway("gw")]),
            wait_task([{"kind": "Node", "name": "n"}]),
        ],
    )
    assert "example.com/v1 Widget is not served by the cluster" in unknown["msg"]
    assert "Gateway is namespaced: give the namespace" in unscoped["msg"]
    assert "nothing to wait for" in nothing["msg"]
