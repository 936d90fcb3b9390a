"""Shared fixtures: one real control plane per test session, a fresh namespace per test.

Set ``TOKENLABS_KUBECONFIG`` to run against an existing cluster instead (its CRDs are installed
if missing; workload tests expect nodes named like the lab inventory's).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tokenlabs.lab import controllers, controlplane, sources
from tokenlabs.lab.nodes import LAB_NODES

REPO_ROOT = Path(__file__).resolve().parents[1]


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and is not an unreaped zombie (which holds no ports, files or memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class Cluster:
    """What a test needs to talk to the API server."""

    kubeconfig: Path
    api: client.ApiClient
    plane: controlplane.ControlPlane | None
    bin_dir: Path
    # kubernetes.core caches API discovery in the temp dir, keyed only by server address and user: a
    # fresh one per session keeps an earlier run's view of a cluster on the same port out of this one.
    tmp_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for ansible-playbook / molecule / kubectl / helm subprocesses."""
        path = os.pathsep.join([str(Path(sys.executable).parent), str(self.bin_dir), os.environ["PATH"]])
        return {
            **os.environ,
            "PATH": path,
            "KUBECONFIG": str(self.kubeconfig),
            "K8S_AUTH_KUBECONFIG": str(self.kubeconfig),
            "TMPDIR": str(self.tmp_dir),
        }

    def ensure_workloads(self) -> None:
        if self.plane is not None and not any(p.name == "kwok" for p in self.plane.processes):
            self.plane.start_workloads(LAB_NODES, controllers.image_table(controllers.ensure()))


@pytest.fixture(scope="session")
def k8s_binaries() -> sources.Binaries:
    return sources.ensure_binaries()


@pytest.fixture(scope="session")
def k8s_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bins: sources.Binaries = request.getfixturevalue("k8s_binaries")
    existing = os.environ.get("TOKENLABS_KUBECONFIG")
    if existing:
        api = config.new_client_from_config(config_file=existing)
        cluster = Cluster(Path(existing), api, None, bins.bin_dir, tmp_path_factory.mktemp("tmp"))
        _apply_crds(cluster, sources.crd_manifests())
        yield cluster
        return
    controlplane.install_signal_handlers()
    with controlplane.running(
        bins.bin_dir, tmp_path_factory.mktemp("control-plane"), kwok_stages=bins.kwok_stages
    ) as plane:
        plane.install_crds(sources.crd_manifests())
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        yield Cluster(plane.kubeconfig, api, plane, bins.bin_dir, tmp_path_factory.mktemp("tmp"))


def _apply_crds(cluster: Cluster, manifests: list[Path]) -> None:
    """The pinned upstream CRDs on a cluster the harness did not start, as its own control plane gets them."""
    kubectl = [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}"]
    apply = [*kubectl, "apply", "--server-side", "--force-conflicts", "--field-manager=tokenlabs-lab"]
    for manifest in manifests:
        subprocess.run([*apply, "-f", str(manifest)], check=True, capture_output=True)
    wait = [*kubectl, "wait", "--for=condition=Established", "--timeout=120s", "crd", "--all"]
    subprocess.run(wait, check=True, capture_output=True)


@pytest.fixture(scope="session")
def k8s_workloads(k8s_cluster: Cluster) -> Cluster:
    """The session cluster plus controller-manager, scheduler and kwok nodes."""
    k8s_cluster.ensure_workloads()
    return k8s_cluster


@pytest.fixture
def namespace(k8s_cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s_cluster.api)
    core.create_namespace({"metadata": {"name": name, "labels": {"tokenlabs.io/test": "true"}}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def kuadrant_crds(k8s_cluster: Cluster) -> Cluster:
    """Kuadrant's CRDs, which only its chart carries (as templates): the chart installed as the kuadrant role
    installs it, the one release a cluster can hold, unless an earlier test or scenario left it in place."""
    crds = client.ApiextensionsV1Api(k8s_cluster.api)
    for _ in range(60):
        try:
            crd = crds.read_custom_resource_definition("kuadrants.kuadrant.io")
        except ApiException as exc:
            if exc.status != 404:
                raise
            break
        if crd.metadata.deletion_timestamp is None:
            return k8s_cluster
        time.sleep(2)  # an uninstall in progress: wait for the old CRDs to go
    helm = [str(k8s_cluster.bin_dir / "helm"), f"--kubeconfig={k8s_cluster.kubeconfig}"]
    install = ["upgrade", "--install", "kuadrant-operator", str(sources.chart_path("kuadrant-operator"))]
    subprocess.run(
        [*helm, *install, "--namespace=kuadrant-system", "--create-namespace"], check=True, capture_output=True
    )
    wait = [str(k8s_cluster.bin_dir / "kubectl"), f"--kubeconfig={k8s_cluster.kubeconfig}", "wait"]
    subprocess.run(
        [*wait, "--for=condition=Established", "--timeout=120s", "crd", "-l", "app.kubernetes.io/managed-by=Helm"],
        check=True,
        capture_output=True,
    )
    return k8s_cluster


@contextlib.contextmanager
def unwritable_key_paths(tmp_path: Path) -> Iterator[list[str]]:
    """Key-file paths nothing may write: one in /sys, a directory, and (where chattr +i works) a file in an
    immutable directory, which root cannot write either."""
    immutable = tmp_path / "immutable"
    immutable.mkdir()
    paths = ["/sys/tokenlabs-tenant.key", str(tmp_path)]
    if subprocess.run(["chattr", "+i", str(immutable)], capture_output=True, check=False).returncode == 0:
        paths.append(str(immutable / "k"))
    try:
        yield paths
    finally:
        subprocess.run(["chattr", "-i", str(immutable)], capture_output=True, check=False)
