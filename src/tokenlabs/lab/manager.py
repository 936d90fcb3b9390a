"""Start, inspect and stop the lab control plane kept alive by the supervisor process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tokenlabs.lab.supervisor import ERROR_FILE, STATE_FILE

# A cold start may build the binaries first; the build script prints its own progress.
_UP_TIMEOUT = 90 * 60.0
_DOWN_TIMEOUT = 60.0


class LabError(RuntimeError):
    """The lab could not be started or stopped."""


def _alive(pid: int) -> bool:
    # A supervisor started by this very process lingers as a zombie until reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state(run_dir: Path) -> dict[str, Any] | None:
    """The running lab's state, or None when no supervisor is alive."""
    path = run_dir / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if _alive(int(data["pid"])) else None


def up(run_dir: Path, *, workloads: bool = True) -> dict[str, Any]:
    """Start the lab control plane unless it already runs; return its state."""
    current = state(run_dir)
    if current is not None:
        return current
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    args = [sys.executable, "-m", "tokenlabs.lab.supervisor", "--run-dir", str(run_dir)]
    if not workloads:
        args.append("--no-workloads")
    with (run_dir / "supervisor.log").open("ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + _UP_TIMEOUT
    while time.monotonic() < deadline:
        current = state(run_dir)
        if current is not None:
            return current
        if proc.poll() is not None:
            error = run_dir / ERROR_FILE
            reason = error.read_text() if error.exists() else f"see {run_dir / 'supervisor.log'}"
            raise LabError(f"the lab control plane did not start: {reason}")
        time.sleep(0.5)
    proc.terminate()
    raise LabError(f"the lab control plane was not ready after {_UP_TIMEOUT:.0f}s")


def down(run_dir: Path) -> bool:
    """Stop the lab; True when one was running."""
    current = state(run_dir)
    if current is None:
        return False
    pid = int(current["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _DOWN_TIMEOUT
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        raise LabError(f"supervisor {pid} did not stop within {_DOWN_TIMEOUT:.0f}s")
    return True
