"""The test control plane is a real Kubernetes API server with the real upstream CRDs."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Cluster
from tokenlabs.lab import sources
from tokenlabs.lab.nodes import GPU_PRODUCT_LABEL, GPU_RESOURCE


def _custom(cluster: Cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster.api)


def _gateway(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "tokenlabs", "namespace": namespace},
        "spec": {
            "gatewayClassName": "eg",
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def _route(namespace: str, path: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "tts", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "tokenlabs"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                    "backendRefs": [{"name": "magpie-tts", "port": 8000}],
                    "timeouts": {"request": "300s"},
                }
            ],
        },
    }


_PLURALS = {"Gateway": "gateways", "HTTPRoute": "httproutes", "RateLimitPolicy": "ratelimitpolicies"}


def _create(cluster: Cluster, obj: dict[str, Any]) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    result: dict[str, Any] = _custom(cluster).create_namespaced_custom_object(
        group, version, obj["metadata"]["namespace"], _PLURALS[obj["kind"]], obj
    )
    return result


def test_server_reports_the_pinned_version(k8s_cluster: Cluster) -> None:
    info = client.VersionApi(k8s_cluster.api).get_code()
    pinned = sources.versions()["versions_kubernetes"]
    assert info.git_version == pinned
    assert info.minor == pinned.split(".")[1]


def test_namespace_and_secret_round_trip(k8s_cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(k8s_cluster.api)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "probe"}, "stringData": {"api_key": "not-a-real-key"}},
    )
    secret = core.read_namespaced_secret("probe", namespace)
    # The server stores stringData as base64 data and never returns stringData.
    assert secret.string_data is None
    assert base64.b64decode(secret.data["api_key"]) == b"not-a-real-key"
    assert core.read_namespace(namespace).status.phase == "Active"


def test_valid_gateway_and_route_are_accepted(k8s_cluster: Cluster, namespace: str) -> None:
    gateway = _create(k8s_cluster, _gateway(namespace))
    route = _create(k8s_cluster, _route(namespace, "/v1/audio/speech"))
    assert gateway["metadata"]["uid"]
    # Defaults filled in by the CRD schema prove the server validated the object against it.
    assert route["spec"]["parentRefs"][0]["kind"] == "Gateway"
    assert route["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1


def test_invalid_route_is_rejected_by_the_crd_schema(k8s_cluster: Cluster, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        _create(k8s_cluster, _route(namespace, "v1/no-leading-slash"))
    status = json.loads(err.value.body)
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('HTTPRoute.gateway.networking.k8s.io "tts" is invalid')
    assert "must be an absolute path and start with '/'" in status["message"]
    assert status["details"]["causes"][0]["field"] == "spec.rules[0].matches[0].path"


@pytest.mark.usefixtures("kuadrant_crds")
def test_malformed_rate_limit_policy_is_rejected(k8s_cluster: Cluster, namespace: str) -> None:
    policy = {
        "apiVersion": "kuadrant.io/v1",
        "kind": "RateLimitPolicy",
        "metadata": {"name": "free", "namespace": namespace},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "tokenlabs"},
            "limits": {"per-minute": {"rates": [{"limit": 10, "window": "1 minute"}]}},
        },
    }
    with pytest.raises(ApiException) as err:
        _create(k8s_cluster, policy)
    status = json.loads(err.value.body)
    assert status["code"] == 422
    assert status["message"].startswith('RateLimitPolicy.kuadrant.io "free" is invalid')
    assert 'spec.limits.per-minute.rates[0].window: Invalid value: "1 minute"' in status["message"]
    assert "should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'" in status["message"]


@pytest.mark.workloads
def test_spark_node_is_ready_with_a_gpu(k8s_workloads: Cluster) -> None:
    node = client.CoreV1Api(k8s_workloads.api).read_node("spark-01")
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True"
    # spark-01's GPU is time-sliced in two (profile shared-2): the device plugin's view of it.
    assert node.status.allocatable[GPU_RESOURCE] == "2"
    assert node.metadata.labels[GPU_PRODUCT_LABEL] == "NVIDIA-GB10-SHARED"
    assert node.metadata.labels["kubernetes.io/arch"] == "arm64"


@pytest.mark.workloads
def test_deployment_pinned_to_a_spark_becomes_available(k8s_workloads: Cluster, namespace: str) -> None:
    apps = client.AppsV1Api(k8s_workloads.api)
    labels = {"app": "gpu-probe"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "gpu-probe"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": "spark-01"},
                        "runtimeClassName": "nvidia",
                        "containers": [
                            {
                                "name": "probe",
                                "image": "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04",
                                "resources": {"limits": {GPU_RESOURCE: "1"}},
                            }
                        ],
                    },
                },
            },
        },
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment_status("gpu-probe", namespace).status
        if status.available_replicas == 1:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"gpu-probe not available after 90s: {status}")
    pods = client.CoreV1Api(k8s_workloads.api).list_namespaced_pod(namespace, label_selector="app=gpu-probe")
    assert [p.spec.node_name for p in pods.items] == ["spark-01"]
