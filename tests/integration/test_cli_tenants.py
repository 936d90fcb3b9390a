"""Tenant operations through the tokenlabs command: the key is shown once and never kept."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster

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
