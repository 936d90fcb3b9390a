"""Tenant operations through the tokenlabs command: the key is shown once and never kept."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster, unwritable_key_paths

TOKENLABS = str(Path(sys.executable).parent / "tokenlabs")
KEY = re.compile(r"tlabs_sk_[0-9a-f]{48}")


def _tenant(cluster: Cluster, artifacts: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "TOKENLABS_ARTIFACTS": str(artifacts)}
    return subprocess.run(
        [TOKENLABS, "tenant", *args, "-i", str(REPO_ROOT / "inventory" / "lab")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_add_list_rotate_revoke_round_trip(k8s_cluster: Cluster, tmp_path: Path) -> None:
    core = client.CoreV1Api(k8s_cluster.api)
    if "kuadrant-system" not in [n.metadata.name for n in core.list_namespace().items]:
        core.create_namespace({"metadata": {"name": "kuadrant-system"}})
    artifacts = tmp_path / "runs"

    added = _tenant(k8s_cluster, artifacts, "add", "cli-acme", "--tier", "pro")
    assert added.returncode == 0, added.stderr[-3000:]
    keys = KEY.findall(added.stdout + added.stderr)
    assert len(keys) == 1, "the new key is printed exactly once"
    first_key = keys[0]

    listed = _tenant(k8s_cluster, artifacts, "list", "--tier", "pro", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    tenants = {t["name"]: t for t in json.loads(listed.stdout)["tenants"]}
    assert tenants["cli-acme"]["tier"] == "pro"
    assert not KEY.search(listed.stdout)

    rotated = _tenant(k8s_cluster, artifacts, "rotate", "cli-acme", "--key-file", str(tmp_path / "new.key"))
    assert rotated.returncode == 0, rotated.stderr[-3000:]
    new_key = (tmp_path / "new.key").read_text().strip()
    assert KEY.fullmatch(new_key)
    assert new_key != first_key
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    assert not KEY.search(rotated.stdout + rotated.stderr)

    as_json = _tenant(k8s_cluster, artifacts, "rotate", "cli-acme", "--json")
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    document = json.loads(as_json.stdout)  # one document, with the key in it
    assert document["ok"] and document["tenant"] == "cli-acme"
    assert KEY.fullmatch(document["api_key"]) and document["api_key"] != new_key
    assert len(KEY.findall(as_json.stdout + as_json.stderr)) == 1

    revoked = _tenant(k8s_cluster, artifacts, "revoke", "cli-acme")
    assert revoked.returncode == 0, revoked.stderr[-3000:]
    shown = _tenant(k8s_cluster, artifacts, "show", "cli-acme")
    assert shown.returncode == 1
    assert "does not exist" in shown.stderr.splitlines()[-1]

    leaked = [str(p) for p in artifacts.rglob("*") if p.is_file() and KEY.search(p.read_text(errors="ignore"))]
    assert leaked == []


def _kuadrant_system(cluster: Cluster) -> client.CoreV1Api:
    core = client.CoreV1Api(cluster.api)
    if "kuadrant-system" not in [n.metadata.name for n in core.list_namespace().items]:
        core.create_namespace({"metadata": {"name": "kuadrant-system"}})
    return core


def _secret_state(core: client.CoreV1Api, prefix: str) -> dict[str, str]:
    items = core.list_namespaced_secret("kuadrant-system").items
    return {s.metadata.name: s.metadata.resource_version for s in items if s.metadata.name.startswith(prefix)}


def test_no_key_is_lost_when_the_key_file_cannot_be_written(k8s_cluster: Cluster, tmp_path: Path) -> None:
    core = _kuadrant_system(k8s_cluster)
    artifacts = tmp_path / "runs"
    assert _tenant(k8s_cluster, artifacts, "add", "cli-keep", "--tier", "pro").returncode == 0
    before = _secret_state(core, "tenant-cli-")
    try:
        with unwritable_key_paths(tmp_path) as paths:
            for path in paths:
                added = _tenant(k8s_cluster, artifacts, "add", "cli-fresh", "--tier", "pro", "--key-file", path)
                assert added.returncode == 1 and "key file" in added.stderr.splitlines()[-1], added.stderr[-2000:]
                rotated = _tenant(k8s_cluster, artifacts, "rotate", "cli-keep", "--key-file", path)
                assert rotated.returncode == 1 and "key file" in rotated.stderr.splitlines()[-1], rotated.stderr[-2000:]
                assert _secret_state(core, "tenant-cli-") == before, path
    finally:
        _tenant(k8s_cluster, artifacts, "revoke", "cli-keep")


def test_check_diff_and_clear_errors(k8s_cluster: Cluster, tmp_path: Path) -> None:
    core = _kuadrant_system(k8s_cluster)
    artifacts = tmp_path / "runs"
    core.create_namespaced_secret(
        "kuadrant-system", {"metadata": {"name": "tenant-cli-theirs"}, "stringData": {"api_key": "x"}}
    )
    try:
        checked = _tenant(k8s_cluster, artifacts, "add", "cli-diff", "--tier", "pro", "--check")
        assert checked.returncode == 0, checked.stderr[-3000:]
        assert '+    "annotations": {' in checked.stdout and "nothing was changed" in checked.stdout
        assert not KEY.search(checked.stdout + checked.stderr)
        assert "tenant-cli-diff" not in _secret_state(core, "tenant-cli-")

        assert _tenant(k8s_cluster, artifacts, "add", "cli-diff", "--tier", "pro").returncode == 0
        before = _secret_state(core, "tenant-cli-diff")
        retier_check = _tenant(k8s_cluster, artifacts, "retier", "cli-diff", "--tier", "enterprise", "--check")
        assert '-      "kuadrant.io/groups": "pro"' in retier_check.stdout, retier_check.stdout
        assert '+      "kuadrant.io/groups": "enterprise"' in retier_check.stdout
        assert _secret_state(core, "tenant-cli-diff") == before
        retier = _tenant(k8s_cluster, artifacts, "retier", "cli-diff", "--tier", "enterprise", "--diff", "--json")
        assert retier.returncode == 0, retier.stderr[-3000:]
        document = json.loads(retier.stdout)
        assert document["changed"] is True
        assert document["diff"]["after"]["tenant-cli-diff"]["annotations"]["kuadrant.io/groups"] == "enterprise"
        assert not KEY.search(retier.stdout)

        ghost = _tenant(k8s_cluster, artifacts, "revoke", "cli-ghost")
        assert ghost.returncode == 0, ghost.stderr[-3000:]
        assert "tenant cli-ghost does not exist; nothing to revoke (changed=false)" in ghost.stdout

        for argv, message in (
            (["show", "cli-acme\nx"], "not a DNS-1123 label"),
            (["rotate", "cli-diff", "--previous-key-ttl", "99999999h"], "longer than 365 days"),
            (["retier", "cli-theirs", "--tier", "pro"], "not managed by tokenlabs"),
            (["rotate", "cli-theirs"], "not managed by tokenlabs"),
        ):
            failed = _tenant(k8s_cluster, artifacts, *argv)
            assert failed.returncode == 1, argv
            assert message in failed.stderr.splitlines()[-1], (argv, failed.stderr[-2000:])
        assert _secret_state(core, "tenant-cli-diff") != before
    finally:
        core.delete_namespaced_secret("tenant-cli-theirs", "kuadrant-system")
        _tenant(k8s_cluster, artifacts, "revoke", "cli-diff")
