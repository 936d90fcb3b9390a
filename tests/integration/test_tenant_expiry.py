"""A previous key's Secret goes when it expires, with nobody running anything: the real API server, job controller,
TTL-after-finished controller and garbage collector (kube-controller-manager), through the modules as operators run
them. What Authorino decides about an expired key is proven on the lab (test_lab_tenants.py)."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import Cluster
from tests.integration.test_tenant_modules import key_of, run_tasks, secrets, tenant

pytestmark = pytest.mark.workloads

# Job failure, TTL deletion and garbage collection each take a sync or two; on a loaded 2-core machine, seconds.
REMOVAL_TIMEOUT = 120


def _jobs(cluster: Cluster, ns: str) -> dict[str, Any]:
    return {j.metadata.name: j for j in client.BatchV1Api(cluster.api).list_namespaced_job(ns).items}


def _expires(secret: Any) -> datetime.datetime:
    stamp = secret.metadata.annotations["tokenlabs.io/expires-at"]
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _wait_gone(cluster: Cluster, ns: str, name: str) -> datetime.datetime:
    core = client.CoreV1Api(cluster.api)
    deadline = time.monotonic() + REMOVAL_TIMEOUT
    while time.monotonic() < deadline:
        if name not in [s.metadata.name for s in core.list_namespaced_secret(ns).items]:
            return datetime.datetime.now(datetime.UTC)
        time.sleep(0.5)
    jobs = {n: (j.status.conditions or []) for n, j in _jobs(cluster, ns).items()}
    pytest.fail(f"{ns}/{name} still exists {REMOVAL_TIMEOUT}s after its expiry; jobs: {jobs}")


def test_a_previous_key_is_removed_in_the_cluster_when_it_expires(
    k8s_workloads: Cluster, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    created, check_rotate = run_tasks(
        k8s_workloads,
        tmp_path,
        [
            tenant(ns, name="acme", tier="pro"),
            {**tenant(ns, name="acme", rotate_key=True, previous_key_ttl="10s"), "check_mode": True, "diff": True},
        ],
        name="create",
    )
    assert check_rotate["changed"] is True
    assert _jobs(k8s_workloads, ns) == {}, "check mode creates no Job"
    (planned,) = [v for k, v in check_rotate["diff"]["after"].items() if k != "tenant-acme"]
    assert planned["removed_by"].startswith("Job key-expiry-")

    (rotated,) = run_tasks(
        k8s_workloads, tmp_path, [tenant(ns, name="acme", rotate_key=True, previous_key_ttl="10s")], name="rotate"
    )
    assert rotated["key_action"] == "rotated"
    stored = secrets(k8s_workloads, ns)
    current = stored["tenant-acme"]
    (prev_name,) = [n for n in stored if n.startswith("tenant-acme-prev-")]
    prev = stored[prev_name]
    assert key_of(prev) == created["api_key"]
    (job,) = _jobs(k8s_workloads, ns).values()
    (owner,) = prev.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Job", job.metadata.name, job.metadata.uid)
    assert job.spec.parallelism == 0
    assert job.spec.active_deadline_seconds in (10, 11)
    assert job.spec.ttl_seconds_after_finished == 0
    assert job.metadata.annotations["tokenlabs.io/secret"] == prev_name
    (listed,) = rotated["tenant"]["previous_keys"]
    assert listed["removed_by"] == job.metadata.name
    assert listed["expires_at"] == prev.metadata.annotations["tokenlabs.io/expires-at"]

    # Nobody runs anything from here on: the cluster removes the Secret, never before its expiry.
    gone_at = _wait_gone(k8s_workloads, ns, prev_name)
    assert gone_at >= _expires(prev)
    assert _jobs(k8s_workloads, ns) == {}
    after = secrets(k8s_workloads, ns)
    assert set(after) == {"tenant-acme"}
    assert after["tenant-acme"].metadata.resource_version == current.metadata.resource_version
    (settled,) = run_tasks(k8s_workloads, tmp_path, [tenant(ns, name="acme")], name="settled")
    assert settled["changed"] is False
    assert settled["tenant"]["previous_keys"] == []


def test_a_previous_key_written_before_expiry_jobs_gets_one_and_goes(
    k8s_workloads: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A grace-period Secret as an earlier version left it (no owner): the bulk reconcile gives it its Job."""
    ns = namespace
    run_tasks(k8s_workloads, tmp_path, [tenant(ns, name="acme", tier="pro")], name="create")
    old = "tlabs_sk_" + "d" * 48
    expires = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(seconds=20)
    legacy = {
        "metadata": {
            "name": "tenant-acme-prev-legacy",
            "labels": {
                "authorino.kuadrant.io/managed-by": "authorino",
                "app": "token-labs",
                "app.kubernetes.io/managed-by": "tokenlabs",
                "tokenlabs.io/tenant": "acme",
                "tokenlabs.io/key": "previous",
            },
            "annotations": {
                "kuadrant.io/groups": "pro",
                "secret.kuadrant.io/user-id": "acme",
                "tokenlabs.io/expires-at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
        "stringData": {"api_key": old},
    }
    client.CoreV1Api(k8s_workloads.api).create_namespaced_secret(ns, legacy)
    bulk = {"tokenlabs.platform.tenants": {"namespace": ns, "tenants": [{"name": "acme", "tier": "pro"}]}}
    repaired, again = run_tasks(k8s_workloads, tmp_path, [bulk, bulk], name="bulk")
    assert repaired["changed"] is True
    assert again["changed"] is False
    assert again["writes"] == 0
    (job,) = _jobs(k8s_workloads, ns).values()
    (owner,) = secrets(k8s_workloads, ns)["tenant-acme-prev-legacy"].metadata.owner_references
    assert owner.uid == job.metadata.uid
    assert _wait_gone(k8s_workloads, ns, "tenant-acme-prev-legacy") >= expires


def test_a_revocation_takes_the_expiry_jobs_with_it(k8s_workloads: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    _created, _rotated, again = run_tasks(
        k8s_workloads,
        tmp_path,
        [
            tenant(ns, name="acme", tier="pro"),
            tenant(ns, name="acme", rotate_key=True, previous_key_ttl="1h"),
            tenant(ns, name="acme"),
        ],
        name="rotate",
    )
    assert len(_jobs(k8s_workloads, ns)) == 1
    assert again["changed"] is False, "a previous key with its Job is left alone"
    assert again["writes"] == 0
    (revoked,) = run_tasks(k8s_workloads, tmp_path, [tenant(ns, name="acme", state="absent")], name="revoke")
    assert revoked["changed"] is True
    assert secrets(k8s_workloads, ns) == {}
    assert _jobs(k8s_workloads, ns) == {}
