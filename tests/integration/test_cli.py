"""The tokenlabs command through ansible-runner: failures, JSON, and the lab's life cycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, process_running

TOKENLABS = str(Path(sys.executable).parent / "tokenlabs")


def _tokenlabs(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOKENLABS, *args],
        cwd=REPO_ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_failing_play_exits_non_zero_and_names_the_task(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    controller:\n      hosts:\n        controller:\n")
    env = {**os.environ, "TOKENLABS_ARTIFACTS": str(tmp_path / "runs")}
    proc = _tokenlabs("up", "-i", str(inventory), env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tokenlabs: task 'Boilerplate | Check the inventory groups' failed on localhost:")
    assert "Traceback" not in proc.stderr


def test_json_summary_parses(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    controller:\n      hosts:\n        controller:\n")
    env = {**os.environ, "TOKENLABS_ARTIFACTS": str(tmp_path / "runs")}
    proc = _tokenlabs("up", "-i", str(inventory), "--json", "--tags", "always", env=env)
    summary = json.loads(proc.stdout)
    assert summary["ok"] is False
    assert summary["failures"][0]["task"] == "Boilerplate | Check the inventory groups"
    assert Path(summary["artifacts"]).is_dir()


@pytest.mark.workloads
def test_lab_up_is_idempotent_and_down_removes_it(tmp_path: Path, k8s_binaries: object) -> None:
    env = {**os.environ, "TOKENLABS_LAB_DIR": str(tmp_path / "lab")}
    first = _tokenlabs("lab", "up", "--json", env=env)
    assert first.returncode == 0, first.stderr[-5000:]
    try:
        assert json.loads(first.stdout)["ok"] is True
        second = _tokenlabs("lab", "up", "--json", env=env)
        assert second.returncode == 0, second.stderr[-5000:]
        hosts = json.loads(second.stdout)["hosts"]
        assert {h: c.get("changed", 0) for h, c in hosts.items()} == dict.fromkeys(hosts, 0)
        status = json.loads(_tokenlabs("lab", "status", "--json", env=env).stdout)
        assert status["running"] is True
        assert status["nodes"] == ["controller", "spark-01", "spark-02"]
        pids = [status["pid"], *status["component_pids"]]
    finally:
        down = _tokenlabs("lab", "down", env=env)
    assert down.returncode == 0
    assert "lab stopped" in down.stdout
    assert [p for p in pids if process_running(p)] == []
    assert json.loads(_tokenlabs("lab", "status", "--json", env=env).stdout)["running"] is False
    assert not (tmp_path / "lab" / "tenant-keys.yml").exists()
