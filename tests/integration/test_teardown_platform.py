"""playbooks/teardown.yml's platform part: every Helm release in the platform namespaces is uninstalled, the
GatewayClass and the namespaces deleted. Run on namespaces of the test's own, so the session cluster keeps the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from tests.conftest import REPO_ROOT, Cluster
from tokenlabs.lab import sources


def _exists(read: object, *args: str) -> bool:
    try:
        read(*args)  # type: ignore[operator]
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# Namespaces are deleted by the controller-manager, which the workloads cluster runs.
@pytest.mark.workloads
def test_teardown_uninstalls_releases_and_cluster_scoped_objects(k8s_workloads: Cluster, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespaces = [f"td-serving-{suffix}", f"td-gateway-{suffix}"]
    gateway_class = f"td-eg-{suffix}"
    helm = [str(k8s_workloads.bin_dir / "helm"), f"--kubeconfig={k8s_workloads.kubeconfig}"]
    # A real chart with namespaced objects only, so two releases of it sit side by side.
    chart = sources.chart_path("inferencepool")
    for index, namespace in enumerate(namespaces):
        subprocess.run(
            [
                *helm,
                "install",
                f"release-{index}",
                str(chart),
                "--namespace",
                namespace,
                "--create-namespace",
                # The one value the chart requires: which pods the pool selects.
                f"--set=inferencePool.modelServers.matchLabels.app=td-{index}",
            ],
            check=True,
            capture_output=True,
        )
    classes = dynamic.DynamicClient(k8s_workloads.api).resources.get(
        api_version="gateway.networking.k8s.io/v1", kind="GatewayClass"
    )
    classes.create(
        body={
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": gateway_class},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        }
    )
    extra = tmp_path / "extra.json"
    extra.write_text(
        json.dumps(
            {
                "teardown_confirm": "tokenlabs",
                "teardown_namespaces": namespaces,
                "teardown_gateway_classes": [gateway_class],
                "tokenlabs_kubeconfig": str(k8s_workloads.kubeconfig),
            }
        )
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/teardown.yml",
            "--tags=teardown_platform",
            "-e",
            f"@{extra}",
        ],
        cwd=REPO_ROOT,
        env=k8s_workloads.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "Uninstall every release" in proc.stdout
    for index, namespace in enumerate(namespaces):
        assert f"{namespace}/release-{index}" in proc.stdout
        listed = subprocess.run(
            [*helm, "list", "--all", "--namespace", namespace, "--output", "json"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert json.loads(listed.stdout) == []
    core = client.CoreV1Api(k8s_workloads.api)
    assert [ns for ns in namespaces if _exists(core.read_namespace, ns)] == []
    assert not _exists(lambda name: classes.get(name=name), gateway_class)
