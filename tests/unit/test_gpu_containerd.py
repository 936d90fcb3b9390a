"""The gpu_operator role's containerd guard works with the GPU Operator's drop-in instead of undoing it.

The role's ``containerd`` tasks run against the simulated Sparks of molecule/shims (the real ``snap restart``
goes to the recording shim), from the ``clustered`` seed: both Sparks carry the toolkit's drop-in and its
``imports`` line in MicroK8s's containerd template, and spark-02's template also lost its runc runtime table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

SHIMS = REPO_ROOT / "molecule" / "shims"
TEMPLATE = "fs/var/snap/microk8s/current/args/containerd-template.toml"
DROP_IN = "fs/etc/containerd/conf.d/99-nvidia.toml"
RUNC = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]'


def imports_line(shim_dir: Path, host: str) -> str:
    return f'imports = ["{shim_dir / host / "fs/etc/containerd/conf.d"}/*.toml"]'


@pytest.fixture
def shim_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "shim"
    env = {**os.environ, "TOKENLABS_SHIM_DIR": str(directory)}
    subprocess.run(
        [str(SHIMS / "bin" / "shimctl"), "init", str(SHIMS / "seeds" / "clustered.json"), sys.executable],
        env=env,
        check=True,
    )
    return directory


def converge(shim_dir: Path, check: bool = False) -> dict[str, Any]:
    """Runs the guard on both Sparks; returns the per-host recap counts and the shim calls it made."""
    before = len((shim_dir / "calls.jsonl").read_text().splitlines())
    play = shim_dir.parent / "guard.yml"
    play.write_text(
        "- hosts: spark\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: tokenlabs.platform.gpu_operator\n"
        "        tasks_from: containerd\n"
    )
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", str(SHIMS / "inventory" / "hosts.yml"), str(play)]
        + (["--check"] if check else []),
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "PATH": f"{SHIMS / 'bin'}:{bin_dir}:{os.environ['PATH']}",
            "TOKENLABS_SHIM_DIR": str(shim_dir),
            "ANSIBLE_FORCE_COLOR": "0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    recap = {
        line.split()[0]: int(line.split("changed=")[1].split()[0])
        for line in proc.stdout.splitlines()
        if " changed=" in line and line.split()[0] in {"spark-01", "spark-02"}
    }
    calls = [json.loads(line) for line in (shim_dir / "calls.jsonl").read_text().splitlines()[before:]]
    return {"changed": recap, "calls": [c for c in calls if "argv" in c]}


def restarts(result: dict[str, Any]) -> list[str]:
    return sorted(
        c["host"] for c in result["calls"] if c["argv"] == ["snap", "restart", "microk8s.daemon-containerd"]
    )


def test_the_operators_import_stays_and_only_a_lost_runc_table_is_repaired(shim_dir: Path) -> None:
    drop_ins = {h: (shim_dir / h / DROP_IN).read_text() for h in ("spark-01", "spark-02")}
    healthy_before = (shim_dir / "spark-01" / TEMPLATE).read_text()

    first = converge(shim_dir)

    # spark-01: the toolkit's import and a runc table are what the operator configured; nothing to do.
    assert (shim_dir / "spark-01" / TEMPLATE).read_text() == healthy_before
    # spark-02: runc back from the pristine template, the operator's import kept, exactly once.
    repaired = (shim_dir / "spark-02" / TEMPLATE).read_text()
    assert repaired.count(RUNC) == 1
    assert repaired.splitlines().count(imports_line(shim_dir, "spark-02")) == 1
    assert "runtimes.nvidia]" not in repaired  # the drop-in owns the nvidia runtime
    assert {h: (shim_dir / h / DROP_IN).read_text() for h in drop_ins} == drop_ins
    assert restarts(first) == ["spark-02"]
    assert first["changed"] == {"spark-01": 0, "spark-02": 2}

    # What the toolkit does on every restart of its pod (ensureImports) finds nothing to add, and so do we.
    again = converge(shim_dir)
    assert again["changed"] == {"spark-01": 0, "spark-02": 0}
    assert [c for c in again["calls"] if c["mutating"]] == []


def test_a_template_that_lost_the_operators_import_gets_it_back(shim_dir: Path) -> None:
    # What the earlier guard did: the snap's template restored over the toolkit's, with a runtime table of its own.
    pristine = (shim_dir / "spark-01/fs/snap/microk8s/current/default-args/containerd-template.toml").read_text()
    own_block = (
        "# BEGIN tokenlabs nvidia runtime\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
        '  runtime_type = "io.containerd.runc.v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
        '  BinaryName = "/usr/bin/nvidia-container-runtime"\n'
        "# END tokenlabs nvidia runtime\n"
    )
    (shim_dir / "spark-01" / TEMPLATE).write_text(pristine + own_block)

    first = converge(shim_dir, check=True)
    assert first["changed"]["spark-01"] == 1
    assert (shim_dir / "spark-01" / TEMPLATE).read_text() == pristine + own_block

    converge(shim_dir)
    template = (shim_dir / "spark-01" / TEMPLATE).read_text()
    assert template == imports_line(shim_dir, "spark-01") + "\n" + pristine
    assert converge(shim_dir)["changed"] == {"spark-01": 0, "spark-02": 0}


def test_before_the_operator_runs_a_pristine_template_is_left_alone(shim_dir: Path) -> None:
    pristine = (shim_dir / "spark-01/fs/snap/microk8s/current/default-args/containerd-template.toml").read_text()
    for host in ("spark-01", "spark-02"):
        (shim_dir / host / DROP_IN).unlink()
        (shim_dir / host / TEMPLATE).write_text(pristine)
    result = converge(shim_dir)
    assert result["changed"] == {"spark-01": 0, "spark-02": 0}
    assert restarts(result) == []
