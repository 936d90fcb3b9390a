"""k8s_read against the real API server: one object, a selection, metadata only, a missing object or API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import Cluster
from tests.integration.test_tenant_modules import run_tasks


def read(**params: Any) -> dict[str, Any]:
    return {"tokenlabs.platform.k8s_read": params, "ignore_errors": True}


def test_reads(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(k8s_cluster.api)
    for name, team in (("a", "x"), ("b", "y")):
        body = {"metadata": {"name": name, "labels": {"team": team}}, "data": {"k": "v"}}
        core.create_namespaced_config_map(namespace, body)
    one, selected, crds, missing, unserved = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            read(kind="ConfigMap", namespace=namespace, name="a"),
            read(kind="ConfigMap", namespace=namespace, label_selectors=["team=y"]),
            read(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition", metadata_only=True),
            read(kind="ConfigMap", namespace=namespace, name="absent"),
            read(api_version="example.com/v1", kind="Widget", namespace=namespace),
        ],
    )
    assert [r["data"] for r in one["resources"]] == [{"k": "v"}] and one["changed"] is False
    assert [r["metadata"]["name"] for r in selected["resources"]] == ["b"]
    names = {r["metadata"]["name"] for r in crds["resources"]}
    assert "httproutes.gateway.networking.k8s.io" in names
    assert all(set(r) == {"apiVersion", "kind", "metadata"} for r in crds["resources"])
    assert missing["resources"] == [] and missing["api_found"] is True
    assert unserved["resources"] == [] and unserved["api_found"] is False and not unserved.get("failed")


def test_the_module_gives_what_the_in_process_action_gives(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """On the controller the action plugin does the module's work itself; an async task still runs the module."""
    client.CoreV1Api(k8s_cluster.api).create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    params = {"kind": "ConfigMap", "namespace": namespace, "name": "a"}
    in_process, as_module, bad = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            read(**params),
            {**read(**params), "async": 60, "poll": 1},
            read(kind="ConfigMap", colour="blue"),
        ],
    )
    assert "invocation" not in in_process and "invocation" in as_module
    assert in_process["resources"] == as_module["resources"] and in_process["api_found"] is as_module["api_found"]
    assert bad["failed"] is True and "colour" in bad["msg"]
