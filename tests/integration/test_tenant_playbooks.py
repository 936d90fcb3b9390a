"""playbooks/tenant.yml and playbooks/tenants.yml: every operation works, and new keys never leak.

With key_file (what the tokenlabs CLI passes through ansible-runner) a key appears in no output and no runner
artifact; without it, the one "shown once" task prints it and nothing else does, even at -vvv.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster, unwritable_key_paths
from tokenlabs import runner

KEY_RE = re.compile(r"tlabs_sk_[0-9a-f]{48}")


def stored_keys(cluster: Cluster, ns: str) -> dict[str, str]:
    items = client.CoreV1Api(cluster.api).list_namespaced_secret(ns).items
    return {s.metadata.name: base64.b64decode(s.data["api_key"]).decode() for s in items}


def scan(root: Path, keys: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            hits += [f"{path}: {key[:14]}..." for key in keys if key in text]
    return hits


def test_runner_with_key_file_leaks_no_key(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    env = {k: v for k, v in k8s_cluster.env.items() if k.startswith(("K8S_AUTH_", "KUBECONFIG", "PATH"))}
    common = {"tokenlabs_tenant_namespace": namespace}
    steps = [
        ("playbooks/tenant.yml", {"action": "add", "tenant": "acme", "tier": "pro", "key_file": str(keys_dir / "a")}),
        ("playbooks/tenant.yml", {"action": "retier", "tenant": "acme", "tier": "enterprise"}),
        (
            "playbooks/tenant.yml",
            {"action": "rotate", "tenant": "acme", "previous_key_ttl": "1h", "key_file": str(keys_dir / "b")},
        ),
        ("playbooks/tenants.yml", {"key_file": str(keys_dir / "demo.yml")}),
        ("playbooks/tenant.yml", {"action": "list"}),
        ("playbooks/tenant.yml", {"action": "show", "tenant": "acme"}),
    ]
    for playbook, extravars in steps:
        result = runner.run_playbook(
            playbook,
            inventory=REPO_ROOT / "inventory" / "lab",
            artifacts_root=artifacts,
            extravars={**common, **extravars},
            envvars=env,
        )
        assert result.ok, (playbook, extravars, result.failures)
    first = (keys_dir / "a").read_text().strip()
    second = (keys_dir / "b").read_text().strip()
    demo = yaml.safe_load((keys_dir / "demo.yml").read_text())
    for path in keys_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert set(demo) == {"demo-free", "demo-pro", "demo-enterprise"}
    keys = stored_keys(k8s_cluster, namespace)
    assert keys["tenant-acme"] == second
    assert first in keys.values(), "the rotated-out key is kept in its grace-period Secret"
    assert {keys[f"tenant-{name}"] for name in demo} == set(demo.values())
    everything = [first, second, *demo.values()]
    assert scan(artifacts, everything) == []

    revoke = runner.run_playbook(
        "playbooks/tenant.yml",
        inventory=REPO_ROOT / "inventory" / "lab",
        artifacts_root=artifacts,
        extravars={**common, "action": "revoke", "tenant": "acme"},
        envvars=env,
    )
    assert revoke.ok
    assert not any(name.startswith("tenant-acme") for name in stored_keys(k8s_cluster, namespace))


def tenant_play(cluster: Cluster, namespace: str, *flags: str, **extravars: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook playbooks/tenant.yml with ``extravars`` in ``namespace``; ``flags`` go on the command line."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/tenant.yml", *flags]
    for name, value in {**extravars, "tokenlabs_tenant_namespace": namespace}.items():
        cmd += ["-e", json.dumps({name: value})]  # JSON: a value may hold a newline
    env = {**cluster.env, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)


def test_shown_once_without_key_file_even_at_vvv(k8s_cluster: Cluster, namespace: str) -> None:
    # No action: a tenant and a tier mean "add", as in the README's example.
    proc = tenant_play(k8s_cluster, namespace, "-vvv", "--diff", tenant="once", tier="free")
    assert proc.returncode == 0, proc.stdout[-4000:]
    key = stored_keys(k8s_cluster, namespace)["tenant-once"]
    output = proc.stdout + proc.stderr
    assert output.count(key) == 1
    assert KEY_RE.findall(output) == [key]
    shown = output.index(key)
    assert "shown once" in output[max(0, shown - 400) : shown]

    # A bad request fails with the module's message although the module task itself is no_log.
    bad = tenant_play(k8s_cluster, namespace, action="add", tenant="Not_Valid", tier="free")
    assert bad.returncode != 0
    assert "not a DNS-1123 label" in bad.stdout

    # A key file that could not be written is refused before the tenant is created: its key would be lost.
    lost = tenant_play(k8s_cluster, namespace, tenant="lost", tier="free", key_file="/nonexistent/dir/lost.key")
    assert lost.returncode != 0
    assert "does not exist" in lost.stdout
    assert "tenant-lost" not in stored_keys(k8s_cluster, namespace)


def test_no_key_is_lost_when_the_key_file_cannot_be_written(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A path in /sys, a directory given as the file, a file in an immutable directory: add and rotate change
    nothing on the server, because the new key could not be handed over."""
    assert tenant_play(k8s_cluster, namespace, tenant="keep", tier="pro").returncode == 0
    before = stored_keys(k8s_cluster, namespace)
    with unwritable_key_paths(tmp_path) as paths:
        for path in paths:
            added = tenant_play(k8s_cluster, namespace, action="add", tenant="fresh", tier="pro", key_file=path)
            assert added.returncode != 0 and "key file" in added.stdout, (path, added.stdout[-2000:])
            rotated = tenant_play(k8s_cluster, namespace, action="rotate", tenant="keep", key_file=path)
            assert rotated.returncode != 0 and "key file" in rotated.stdout, (path, rotated.stdout[-2000:])
            assert stored_keys(k8s_cluster, namespace) == before, path


def test_clear_errors_and_an_honest_revoke(k8s_cluster: Cluster, namespace: str) -> None:
    client.CoreV1Api(k8s_cluster.api).create_namespaced_secret(
        namespace, {"metadata": {"name": "tenant-theirs"}, "stringData": {"api_key": "x"}}
    )
    cases = [
        ({"action": "show", "tenant": "acme\nx"}, "not a DNS-1123 label"),
        ({"action": "rotate", "tenant": "theirs", "previous_key_ttl": "99999999h"}, "longer than 365 days"),
        ({"action": "retier", "tenant": "theirs", "tier": "pro"}, "not managed by tokenlabs"),
        ({"action": "rotate", "tenant": "theirs"}, "not managed by tokenlabs"),
    ]
    for extravars, message in cases:
        proc = tenant_play(k8s_cluster, namespace, **extravars)
        assert proc.returncode != 0, extravars
        assert message in proc.stdout, (extravars, proc.stdout[-2000:])
        assert "has no attribute" not in proc.stdout
    revoked = tenant_play(k8s_cluster, namespace, action="revoke", tenant="ghost")
    assert revoked.returncode == 0, revoked.stdout[-2000:]
    assert f"tenant ghost does not exist in {namespace}; nothing to revoke" in revoked.stdout
    assert set(stored_keys(k8s_cluster, namespace)) == {"tenant-theirs"}
