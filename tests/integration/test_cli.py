"""The tokenlabs command through ansible-runner: failures, JSON, and the lab's life cycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

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
