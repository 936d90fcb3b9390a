"""Run the collection's playbooks through ansible-runner and summarise what happened."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

REPO_ROOT = Path(__file__).resolve().parents[2]

# playbook_on_stats keys -> summary columns
_RECAP = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "ignored": "ignored",
    "rescued": "rescued",
}
# Events that close a task on a host; ansible-runner stamps each with the task's duration on that host.
TASK_DONE = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
SLOWEST = 5


@dataclass
class PlayResult:
    """Outcome of one playbook run."""

    rc: int
    status: str
    artifacts: Path
    duration: float
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    captured: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The slowest task runs, longest first: {"task", "host", "seconds"}.
    slowest: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"


def _failure_message(res: Mapping[str, Any]) -> str:
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = res.get(key)
        if value:
            return str(value).strip()
    return "failed"


def run_playbook(
    playbook: str,
    *,
    inventory: Path,
    artifacts_root: Path,
    extravars: Mapping[str, Any] | None = None,
    envvars: Mapping[str, str] | None = None,
    tags: str | None = None,
    check: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    capture: tuple[str, ...] = (),
) -> PlayResult:
    """Run ``playbook`` (relative to the repository) and collect per-host counts and failures.

    The results of tasks named in ``capture`` are kept (no_log tasks arrive censored by Ansible).
    """
    stamp = time.strftime("%Y%m%dT%H%M%S")
    private = artifacts_root / f"{stamp}-{Path(playbook).stem}"
    private.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: list[dict[str, str]] = []
    captured: dict[str, dict[str, Any]] = {}
    timings: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> bool:
        name = event.get("event", "")
        data = event.get("event_data", {})
        if name == "playbook_on_stats":
            # The recap counts no_log tasks' changes too, which their censored events hide.
            for stat, key in _RECAP.items():
                for host, count in (data.get(stat) or {}).items():
                    hosts[host][key] += int(count)
        elif name in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            failures.append(
                {
                    "host": data.get("host", ""),
                    "task": data.get("task", ""),
                    "message": _failure_message(data.get("res", {})),
                }
            )
        if name == "runner_on_ok" and data.get("task") in capture:
            captured[data["task"]] = data.get("res", {})
        if name in TASK_DONE and isinstance(data.get("duration"), (int, float)):
            timings.append({"task": data.get("task", ""), "host": data.get("host", ""), "seconds": data["duration"]})
        if on_event is not None:
            on_event(event)
        return True

    cmdline = []
    if check:
        cmdline += ["--check", "--diff"]
    if tags:
        cmdline += ["--tags", tags]
    started = time.monotonic()
    result = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(REPO_ROOT),
        playbook=playbook,
        inventory=str(inventory),
        extravars=dict(extravars or {}),
        envvars={"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), **(envvars or {})},
        cmdline=" ".join(cmdline) or None,
        event_handler=handler,
        quiet=True,
    )
    return PlayResult(
        rc=int(result.rc),
        status=str(result.status),
        artifacts=private,
        duration=time.monotonic() - started,
        hosts={h: dict(c) for h, c in hosts.items()},
        failures=failures,
        captured=captured,
        slowest=sorted(timings, key=lambda t: t["seconds"], reverse=True)[:SLOWEST],
    )
