"""Killing a test run leaves no control-plane process behind, whatever the signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, process_running
from tokenlabs.lab import controlplane

COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "tokenlabs.lab.kubelet"}


def _comm(pid: int) -> str:
    """The program's name: its comm (cut at 15 characters), or the module a Python process runs."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""
    return args[args.index("-m") + 1] if comm.startswith("python") and "-m" in args else comm


def _etcd_data_dir(pid: int) -> Path:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return Path(next(a.removeprefix("--data-dir=") for a in args if a.startswith("--data-dir=")))


@pytest.mark.workloads
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_killed_run_leaves_no_process(sig: signal.Signals, k8s_binaries: object, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids.json"
    env = {**os.environ, "TOKENLABS_PROBE_PIDS": str(pid_file)}
    env.pop("TOKENLABS_KUBECONFIG", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integration/teardown_probe.py"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not pid_file.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.2)
        assert pid_file.exists(), "the child test run never brought its cluster up"
        pids: list[int] = json.loads(pid_file.read_text())
        assert {_comm(p)[:15] for p in pids} == {c[:15] for c in COMPONENTS}  # comm is cut at 15 chars
        data_dir = _etcd_data_dir(next(p for p in pids if _comm(p) == "etcd"))
        child.send_signal(sig)
        child.wait(60)
        deadline = time.monotonic() + 30
        while any(process_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p for p in pids if process_running(p)] == []
        # etcd's in-memory data goes too: at once on a signal the run can handle, else when the next cluster starts.
        if sig == signal.SIGKILL:
            assert data_dir in controlplane.sweep_stale_etcd_data(data_dir.parent)
        assert not data_dir.exists()
    finally:
        if child.poll() is None:
            child.kill()
