"""The tenant modules against the real API server: lifecycle, check mode, stringData, foreign Secrets, bad input,
concurrency. Modules run through ansible-playbook exactly as operators run them; the server is checked directly."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster

KEY_RE = r"tlabs_sk_[0-9a-f]{48}"


def run_tasks(
    cluster: Cluster, tmp_path: Path, tasks: list[dict[str, Any]], *, check: bool = False, name: str = "play"
) -> list[dict[str, Any]]:
    """Run tasks on localhost; return each task's result (the JSON callback keeps registered values intact)."""
    play = [{"name": "Test", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(path)]
    if check:
        cmd += ["--check", "--diff"]
    env = {
        **cluster.env,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"ansible-playbook output is not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return [task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]]


def tenant(ns: str, **params: Any) -> dict[str, Any]:
    return {"tokenlabs.platform.tenant": {"namespace": ns, **params}, "ignore_errors": True}


def secrets(cluster: Cluster, ns: str) -> dict[str, Any]:
    items = client.CoreV1Api(cluster.api).list_namespaced_secret(ns).items
    return {s.metadata.name: s for s in items}


def key_of(secret: Any) -> str:
    return base64.b64decode(secret.data["api_key"]).decode()


def test_lifecycle(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    created, again, check_create, check_retier = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            tenant(ns, name="acme", tier="pro"),
            tenant(ns, name="acme", tier="pro"),
            {**tenant(ns, name="beta", tier="free"), "check_mode": True},
            {**tenant(ns, name="acme", tier="enterprise"), "check_mode": True, "diff": True},
        ],
        name="create",
    )
    assert created["changed"] is True
    assert created["key_action"] == "created"
    stored = secrets(k8s_cluster, ns)
    assert set(stored) == {"tenant-acme"}, "check mode must not create beta"
    acme = stored["tenant-acme"]
    key = key_of(acme)
    assert created["api_key"] == key
    assert acme.metadata.labels["authorino.kuadrant.io/managed-by"] == "authorino"
    assert acme.metadata.labels["app"] == "token-labs"
    assert acme.metadata.annotations == {"kuadrant.io/groups": "pro", "secret.kuadrant.io/user-id": "acme"}
    assert again["changed"] is False
    assert "api_key" not in again
    assert check_create["changed"] is True
    assert "api_key" not in check_create
    assert check_retier["changed"] is True
    assert key not in json.dumps(check_retier)
    assert acme.metadata.annotations["kuadrant.io/groups"] == "pro", "check mode must not re-tier"
    assert secrets(k8s_cluster, ns)["tenant-acme"].metadata.resource_version == acme.metadata.resource_version

    retier, rotate = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            tenant(ns, name="acme", tier="enterprise"),
            tenant(ns, name="acme", rotate_key=True, previous_key_ttl="1h"),
        ],
        name="rotate",
    )
    assert retier["changed"] is True
    assert "api_key" not in retier
    assert retier["fingerprint"] == created["fingerprint"], "a tier change keeps the key"
    assert rotate["key_action"] == "rotated"
    stored = secrets(k8s_cluster, ns)
    assert key_of(stored["tenant-acme"]) == rotate["api_key"] != key
    (prev_name,) = [n for n in stored if n.startswith("tenant-acme-prev-")]
    prev = stored[prev_name]
    assert key_of(prev) == key, "the old key stays valid during its grace period"
    assert prev.metadata.annotations["secret.kuadrant.io/user-id"] == "acme"
    assert prev.metadata.annotations["kuadrant.io/groups"] == "enterprise"
    assert "tokenlabs.io/expires-at" in prev.metadata.annotations
    assert prev.metadata.labels["authorino.kuadrant.io/managed-by"] == "authorino"

    client.CoreV1Api(k8s_cluster.api).patch_namespaced_secret(
        prev_name, ns, {"metadata": {"annotations": {"tokenlabs.io/expires-at": "2000-01-01T00:00:00Z"}}}
    )
    expired, revoked, revoked_again = run_tasks(
        k8s_cluster,
        tmp_path,
        [tenant(ns, name="acme"), tenant(ns, name="acme", state="absent"), tenant(ns, name="acme", state="absent")],
        name="revoke",
    )
    assert expired["changed"] is True
    assert expired["tenant"]["previous_keys"] == []
    assert revoked["changed"] is True
    assert revoked_again["changed"] is False
    assert secrets(k8s_cluster, ns) == {}


def test_string_data_round_trip(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A Secret written with stringData is stored as base64 data: same key and tier means no change."""
    key = "tlabs_sk_" + "ab" * 24
    labels = {
        "authorino.kuadrant.io/managed-by": "authorino",
        "app": "token-labs",
        "app.kubernetes.io/managed-by": "tokenlabs",
        "tokenlabs.io/tenant": "legacy",
        "tokenlabs.io/key": "current",
    }
    annotations = {"kuadrant.io/groups": "pro", "secret.kuadrant.io/user-id": "legacy"}
    client.CoreV1Api(k8s_cluster.api).create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "tenant-legacy", "labels": labels, "annotations": annotations},
            "stringData": {"api_key": key},
        },
    )
    (same,) = run_tasks(k8s_cluster, tmp_path, [tenant(namespace, name="legacy", tier="pro", api_key=key)])
    assert same["changed"] is False
    assert same["writes"] == 0


def test_foreign_secret_is_refused(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(k8s_cluster.api)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "tenant-foreign", "labels": {"app": "token-labs"}}, "stringData": {"api_key": "x"}},
    )
    before = core.read_namespaced_secret("tenant-foreign", namespace)
    results = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            tenant(namespace, name="foreign", tier="pro"),
            tenant(namespace, name="foreign", state="absent"),
            {
                "tokenlabs.platform.tenants": {
                    "namespace": namespace,
                    "tenants": [{"name": "fresh", "tier": "pro"}, {"name": "foreign", "tier": "pro"}],
                },
                "ignore_errors": True,
            },
        ],
    )
    for result in results:
        assert result.get("failed") is True
        assert "not managed by tokenlabs" in result["msg"]
    after = secrets(k8s_cluster, namespace)
    assert set(after) == {"tenant-foreign"}, "nothing is written when a foreign Secret is in the way"
    assert after["tenant-foreign"].metadata.resource_version == before.metadata.resource_version


def test_bad_input_writes_nothing(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    broken = tmp_path / "unreachable.kubeconfig"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    cases = [
        ({"name": "Acme", "tier": "pro"}, "not a DNS-1123 label"),
        ({"name": "a" * 64, "tier": "pro"}, "64 characters long"),
        ({"name": "", "tier": "pro"}, "non-empty"),
        ({"name": "acmé", "tier": "pro"}, "not a DNS-1123 label"),
        ({"name": "acme", "tier": "platinum"}, "unknown tier"),
        ({"name": "acme", "tier": "pro", "api_key": "tlabs_sk_NOTHEX"}, "api_key is malformed"),
        ({"name": "acme", "tier": "pro", "labels": {"app": "x"}}, "cannot be overridden"),
        ({"name": "acme", "tier": "pro", "kubeconfig": str(broken)}, "Cannot reach the Kubernetes API server"),
    ]
    tasks = [tenant(namespace, **params) for params, _ in cases]
    tasks.append(
        {
            "tokenlabs.platform.tenants": {
                "namespace": namespace,
                "tenants": [{"name": "ok", "tier": "pro"}, {"name": "Bad", "tier": "pro"}],
            },
            "ignore_errors": True,
        }
    )
    results = run_tasks(k8s_cluster, tmp_path, tasks)
    for (params, message), result in zip(cases, results[:-1], strict=True):
        assert result.get("failed") is True, params
        assert message in result["msg"], (params, result["msg"])
        assert "NOTHEX" not in result["msg"]
    assert "tenants[1]" in results[-1]["msg"]
    assert secrets(k8s_cluster, namespace) == {}


def test_concurrent_runs_converge(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    outcomes: dict[int, list[dict[str, Any]]] = {}

    def worker(index: int) -> None:
        tasks = [tenant(namespace, name="race", tier="pro"), tenant(namespace, name="race", tier="enterprise")]
        outcomes[index] = run_tasks(k8s_cluster, tmp_path, tasks, name=f"race{index}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [r for runs in outcomes.values() for r in runs]
    assert all(not r.get("failed") for r in results), results
    stored = secrets(k8s_cluster, namespace)
    assert set(stored) == {"tenant-race"}
    keys = [r["api_key"] for r in results if "api_key" in r]
    assert keys == [key_of(stored["tenant-race"])], "exactly one run created the key, and it is the stored one"
    assert stored["tenant-race"].metadata.annotations["kuadrant.io/groups"] == "enterprise"


def test_bulk_reconcile_and_info(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    wanted = [{"name": f"bulk-{i}", "tier": ["free", "pro", "enterprise"][i % 3]} for i in range(30)]
    bulk = {"tokenlabs.platform.tenants": {"namespace": namespace, "tenants": wanted}}
    fewer = {"tokenlabs.platform.tenants": {"namespace": namespace, "tenants": wanted[:10], "exclusive": True}}
    created, unchanged, info, pruned = run_tasks(
        k8s_cluster,
        tmp_path,
        [bulk, bulk, {"tokenlabs.platform.tenant_info": {"namespace": namespace, "tier": "pro"}}, fewer],
    )
    assert sorted(created["created"]) == sorted(w["name"] for w in wanted)
    assert created["writes"] == 30
    assert unchanged["changed"] is False
    assert unchanged["writes"] == 0
    assert {t["name"] for t in info["tenants"]} == {w["name"] for w in wanted if w["tier"] == "pro"}
    assert all("api_key" not in t for t in info["tenants"])
    assert len(pruned["removed"]) == 20
    assert len(secrets(k8s_cluster, namespace)) == 10


def unwritable_key_files(tmp_path: Path) -> list[str]:
    """Key files no one can write, root included: in /sys, in an immutable directory, a directory."""
    immutable = tmp_path / "immutable"
    immutable.mkdir()
    paths = ["/sys/tokenlabs-tenant.key", str(tmp_path)]
    if subprocess.run(["chattr", "+i", str(immutable)], capture_output=True, check=False).returncode == 0:
        paths.append(str(immutable / "acme.key"))
    return paths


@pytest.fixture
def key_file_dirs(tmp_path: Path) -> Any:
    yield tmp_path
    subprocess.run(["chattr", "-i", str(tmp_path / "immutable")], capture_output=True, check=False)


def test_no_key_is_lost_to_an_unwritable_key_file(k8s_cluster: Cluster, namespace: str, key_file_dirs: Path) -> None:
    ns = namespace
    paths = unwritable_key_files(key_file_dirs)
    (created,) = run_tasks(k8s_cluster, key_file_dirs, [tenant(ns, name="acme", tier="pro")], name="seed")
    before = secrets(k8s_cluster, ns)["tenant-acme"]
    bulk = {"namespace": ns, "tenants": [{"name": "bulkco", "tier": "pro"}]}
    tasks = []
    for path in paths:
        tasks.append(tenant(ns, name="newco", tier="pro", api_key_file=path))
        tasks.append(tenant(ns, name="acme", rotate_key=True, api_key_file=path))
        tasks.append({"tokenlabs.platform.tenants": {**bulk, "api_keys_file": path}, "ignore_errors": True})
    results = run_tasks(k8s_cluster, key_file_dirs, tasks, name="unwritable")
    for result in results:
        assert result.get("failed") is True, result
        assert "key file" in result["msg"], result["msg"]
    after = secrets(k8s_cluster, ns)
    assert set(after) == {"tenant-acme"}, "no tenant was created without its key handed over"
    assert after["tenant-acme"].metadata.resource_version == before.metadata.resource_version
    assert key_of(after["tenant-acme"]) == created["api_key"], "the key was not rotated away"


def test_key_file_receives_the_key_and_the_result_does_not(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    single, bulk = tmp_path / "acme.key", tmp_path / "keys.yml"
    added, rotated, reconciled = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            tenant(namespace, name="acme", tier="pro", api_key_file=str(single)),
            tenant(namespace, name="acme", rotate_key=True, must_exist=True, api_key_file=str(single)),
            {
                "tokenlabs.platform.tenants": {
                    "namespace": namespace,
                    "tenants": [{"name": "b1", "tier": "free"}, {"name": "b2", "tier": "pro"}],
                    "api_keys_file": str(bulk),
                }
            },
        ],
    )
    for result in (added, rotated, reconciled):
        assert result.get("failed") is not True, result.get("msg")
    stored = secrets(k8s_cluster, namespace)
    assert single.read_text().strip() == key_of(stored["tenant-acme"])
    assert yaml.safe_load(bulk.read_text()) == {n: key_of(stored[f"tenant-{n}"]) for n in ("b1", "b2")}
    for result in (added, rotated, reconciled):
        assert not re.search(KEY_RE, json.dumps(result)), "a key handed over through key_file is in no result"
    assert single.stat().st_mode & 0o777 == bulk.stat().st_mode & 0o777 == 0o600


def test_clear_errors_before_any_api_call(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(k8s_cluster.api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "tenant-theirs"}, "stringData": {"api_key": "x"}})
    cases = [
        ({"tokenlabs.platform.tenant_info": {"namespace": namespace, "name": "acme\nx"}}, "not a DNS-1123 label"),
        (tenant(namespace, name="acme\nx", tier="pro"), "not a DNS-1123 label"),
        (tenant(namespace, name="theirs", rotate_key=True, previous_key_ttl="99999999h"), "longer than 365 days"),
        (tenant(namespace, name="theirs", tier="enterprise", must_exist=True), "not managed by tokenlabs"),
        (tenant(namespace, name="theirs", rotate_key=True, must_exist=True), "not managed by tokenlabs"),
        (tenant(namespace, name="nobody", tier="pro", must_exist=True), "does not exist"),
    ]
    tasks = [{**task, "ignore_errors": True} for task, _ in cases]
    for (_, message), result in zip(cases, run_tasks(k8s_cluster, tmp_path, tasks), strict=True):
        assert result.get("failed") is True, message
        assert message in result["msg"], result["msg"]
    assert set(secrets(k8s_cluster, namespace)) == {"tenant-theirs"}


def test_exec_credential_plugin_kubeconfig(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A kubeconfig whose user is an exec plugin (as with OIDC or cloud logins) works like any other."""
    config = yaml.safe_load(k8s_cluster.kubeconfig.read_text())
    user = config["users"][0]["user"]
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": base64.b64decode(user.pop("client-certificate-data")).decode(),
            "clientKeyData": base64.b64decode(user.pop("client-key-data")).decode(),
        },
    }
    plugin = tmp_path / "credential.json"
    plugin.write_text(json.dumps(credential))
    user["exec"] = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "cat",
        "args": [str(plugin)],
        "interactiveMode": "Never",
    }
    exec_kubeconfig = tmp_path / "exec.kubeconfig"
    exec_kubeconfig.write_text(yaml.safe_dump(config))
    created, listed = run_tasks(
        k8s_cluster,
        tmp_path,
        [
            tenant(namespace, name="oidc", tier="pro", kubeconfig=str(exec_kubeconfig)),
            {"tokenlabs.platform.tenant_info": {"namespace": namespace, "kubeconfig": str(exec_kubeconfig)}},
        ],
    )
    assert created.get("failed") is not True, created.get("msg")
    assert [t["name"] for t in listed["tenants"]] == ["oidc"]
