"""k8s_apply against the real API server: create, no-op without writes, update and field removal, check mode and
diff, deletion, and a refused object that leaves nothing written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Cluster
from tests.integration.test_tenant_modules import run_tasks


def apply(definitions: Any, **params: Any) -> dict[str, Any]:
    return {"tokenlabs.platform.k8s_apply": {"definitions": definitions, **params}, "ignore_errors": True}


def configmap(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def actions(result: dict[str, Any]) -> list[str]:
    return [o["action"] for o in result["objects"]]


def test_lifecycle(k8s_cluster: Cluster, tmp_path: Path) -> None:
    ns = f"t-apply-{uuid.uuid4().hex[:8]}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    first = [namespace, configmap(ns, "a", {"k": "1", "gone": "x"})]
    second = [namespace, configmap(ns, "a", {"k": "2"})]
    core = client.CoreV1Api(k8s_cluster.api)
    try:
        created, again, check, updated, removed, removed_again = run_tasks(
            k8s_cluster,
            tmp_path,
            [
                apply(first),
                apply(first),
                {**apply(second), "check_mode": True, "diff": True},
                apply(second),
                apply([configmap(ns, "a", {})], state="absent"),
                apply([configmap(ns, "a", {})], state="absent"),
            ],
        )
        assert created["changed"] is True and actions(created) == ["created", "created"], created
        assert again["changed"] is False and actions(again) == ["unchanged", "unchanged"] and again["writes"] == 0
        assert check["changed"] is True and actions(check) == ["unchanged", "updated"] and check["writes"] == 0
        (diff,) = check["diff"]
        assert diff["before"]["data"] == {"k": "1", "gone": "x"} and diff["after"]["data"] == {"k": "2"}
        # Server-side apply removes the key this manager no longer sets.
        assert actions(updated) == ["unchanged", "updated"] and updated["writes"] == 1
        assert actions(removed) == ["deleted"] and actions(removed_again) == ["absent"]
        assert removed_again["changed"] is False
    finally:
        core.delete_namespace(ns)


def test_a_refused_object_leaves_nothing_written(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {"ports": [{"port": 0}]},
    }
    refused, unknown, incomplete = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            apply([configmap(ns, "first", {"k": "v"}), service]),
            apply([configmap(ns, "first", {"k": "v"}), {**service, "apiVersion": "example.com/v1", "kind": "Widget"}]),
            apply([{"kind": "ConfigMap", "metadata": {"name": "x"}}]),
        ],
    )
    assert refused.get("failed") is True and refused["writes"] == 0
    assert f"Service {ns}/bad: PATCH refused (422)" in refused["msg"]
    assert f"Widget {ns}/bad: example.com/v1 Widget is not served by the cluster" in unknown["msg"]
    assert "definitions[0]: no apiVersion" in incomplete["msg"]
    try:
        client.CoreV1Api(k8s_cluster.api).read_namespaced_config_map("first", ns)
        raise AssertionError("the ConfigMap before the refused Service was written")
    except ApiException as exc:
        assert exc.status == 404


def test_a_secret_diff_never_shows_its_values(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": namespace},
        "data": {"HF_TOKEN": "c2VjcmV0LXZhbHVl"},
    }
    (check,) = run_tasks(k8s_cluster, tmp_path, [{**apply(secret), "check_mode": True, "diff": True}])
    assert check["changed"] is True
    # The task's own arguments hold the manifest (tasks applying Secrets set no_log); the diff must not.
    assert "c2VjcmV0LXZhbHVl" not in json.dumps(check["diff"])
