"""The bare-metal playbooks against three simulated machines (molecule/shims) and the test cluster.

cluster.yml runs every phase in order; upgrade.yml moves nodes one at a time (control plane first)
through cordon, drain, refresh and uncordon; teardown.yml refuses to start without the confirmation
and removes MicroK8s workers first.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster
from tokenlabs.lab import sources

SHIMS = REPO_ROOT / "molecule" / "shims"
UPGRADE_VARS = {"upgrade_channel": "1.37/stable", "upgrade_platform": False}
# The real GPU Operator chart at its pin; its operator does not run here, so the test creates the RuntimeClass
# the operator would, under a name of its own.
GPU_TEST_VARS = {
    "gpu_operator_chart_ref": str(sources.chart_path("gpu-operator")),
    "gpu_operator_chart_repo_url": "",
    "gpu_operator_runtime_class": "nvidia-bare-metal-test",
    "gpu_operator_wait_timeout": 60,
}


class Machines:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env

    def calls(self) -> list[dict[str, Any]]:
        lines = (self.directory / "calls.jsonl").read_text().splitlines()
        return [entry for entry in map(json.loads, lines) if "argv" in entry]

    def state(self) -> dict[str, Any]:
        return json.loads((self.directory / "state.json").read_text())

    def playbook(self, name: str, *args: str, extra: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            f"--inventory={SHIMS / 'inventory' / 'hosts.yml'}",
            str(REPO_ROOT / "playbooks" / name),
            *args,
        ]
        if extra:
            argv.append(f"--extra-vars={json.dumps(extra)}")
        return subprocess.run(argv, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, check=False)


@pytest.fixture
def machines(k8s_workloads: Cluster, tmp_path: Path) -> Iterator[Machines]:
    directory = tmp_path / "machines"
    env = {
        **k8s_workloads.env,
        "PATH": os.pathsep.join([str(SHIMS / "bin"), k8s_workloads.env["PATH"]]),
        "TOKENLABS_SHIM_DIR": str(directory),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    seed = SHIMS / "seeds" / "healthy.json"
    subprocess.run([str(SHIMS / "bin" / "shimctl"), "init", str(seed), sys.executable], env=env, check=True)
    yield Machines(directory, env)
    core = client.CoreV1Api(k8s_workloads.api)
    for node in ("controller", "spark-01", "spark-02"):
        core.patch_node(node, {"spec": {"unschedulable": None}})
    subprocess.run(
        [
            str(k8s_workloads.bin_dir / "helm"),
            "uninstall",
            "gpu-operator",
            "-n",
            "gpu-operator-resources",
            "--wait",
            "--ignore-not-found",
        ],
        env=k8s_workloads.env,
        capture_output=True,
        check=False,
    )


def mutating(calls: list[dict[str, Any]]) -> list[str]:
    return [f"{c['host']} {' '.join(c['argv'][:2])}" for c in calls if c["mutating"]]


@pytest.mark.workloads
def test_cluster_upgrade_and_teardown(machines: Machines, k8s_workloads: Cluster) -> None:
    runtime_class = {"metadata": {"name": GPU_TEST_VARS["gpu_operator_runtime_class"]}, "handler": "nvidia"}
    with contextlib.suppress(client.exceptions.ApiException):
        client.NodeV1Api(k8s_workloads.api).create_runtime_class(runtime_class)
    run = machines.playbook("cluster.yml", "--skip-tags=molecule-notest", extra=GPU_TEST_VARS)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    changes = mutating(machines.calls())
    # Phases in order: install+hold everywhere, addons on the controller, joins one at a time.
    assert changes.index("controller snap install") < changes.index("controller microk8s enable")
    assert changes.index("controller microk8s enable") < changes.index("spark-01 microk8s join")
    assert changes.index("spark-01 microk8s join") < changes.index("spark-02 microk8s join")
    # The GPU guard finds the snap's template and no toolkit drop-in (no toolkit runs here): nothing to do.
    assert not [c for c in changes if c.endswith("snap restart")]
    assert all(h["snaps"]["microk8s"]["held"] for h in machines.state()["hosts"].values())
    assert machines.state()["hosts"]["controller"]["microk8s"]["members"] == ["spark-01", "spark-02"]
    assert (Path(machines.directory) / "reports" / "spark-02.json").is_file()

    # Upgrade: one node at a time, control plane first, each drained before its refresh.
    before = len(machines.calls())
    run = machines.playbook("upgrade.yml", "--tags=upgrade_nodes", extra=UPGRADE_VARS)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    refreshes = [
        c["host"]
        for c in machines.calls()[before:]
        if c["argv"][:2] == ["snap", "refresh"] and "--channel=1.37/stable" in c["argv"]
    ]
    assert refreshes == ["controller", "spark-01", "spark-02"]
    assert {h["snaps"]["microk8s"]["channel"] for h in machines.state()["hosts"].values()} == {"1.37/stable"}
    assert all(h["snaps"]["microk8s"]["held"] for h in machines.state()["hosts"].values())
    assert run.stdout.count("Upgrade | Cordon and drain the node") == 3
    core = client.CoreV1Api(k8s_workloads.api)
    assert not any(core.read_node(n).spec.unschedulable for n in ("controller", "spark-01", "spark-02"))

    # A second upgrade to the same channel touches nothing.
    before = len(machines.calls())
    run = machines.playbook("upgrade.yml", "--tags=upgrade_nodes", extra=UPGRADE_VARS)
    assert run.returncode == 0, run.stdout[-6000:]
    assert mutating(machines.calls()[before:]) == []

    # Teardown without the confirmation changes nothing.
    before = len(machines.calls())
    run = machines.playbook("teardown.yml", extra={"teardown_microk8s": True})
    assert run.returncode != 0
    assert "re-run with -e teardown_confirm=tokenlabs" in run.stdout + run.stderr
    assert machines.calls()[before:] == []

    # Confirmed: MicroK8s removed from the workers first, the controller last.
    run = machines.playbook(
        "teardown.yml",
        "--tags=teardown_microk8s",
        extra={"teardown_confirm": "tokenlabs", "teardown_microk8s": True},
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    removals = [c["host"] for c in machines.calls() if c["argv"][:2] == ["snap", "remove"]]
    assert removals == ["spark-02", "spark-01", "controller"]
    assert all(not h["snaps"] for h in machines.state()["hosts"].values())
