"""The run summary: counts from the recap, failures, and the slowest tasks with their times."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tokenlabs import cli, runner


def _done(event: str, task: str, seconds: float, host: str = "localhost") -> dict[str, Any]:
    return {"event": event, "event_data": {"task": task, "host": host, "duration": seconds, "res": {}}}


EVENTS = [
    {"event": "playbook_on_start", "event_data": {}},
    _done("runner_on_ok", "Gateway | Apply", 6.9),
    _done("runner_on_skipped", "Gateway | Skip", 0.01),
    _done("runner_on_ok", "Kuadrant | CR", 4.4),
    _done("runner_on_failed", "Policies | Wait", 12.5),
    _done("runner_on_ok", "CRDs | Look up", 2.1),
    _done("runner_on_ok", "Tenants | Apply", 3.3),
    _done("runner_on_ok", "Namespaces", 1.0),
    {"event": "runner_on_ok", "event_data": {"task": "no timing", "host": "localhost"}},
    {"event": "playbook_on_stats", "event_data": {"ok": {"localhost": 5}, "changed": {"localhost": 1}}},
]


@pytest.fixture
def result(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> runner.PlayResult:
    def fake_run(**kwargs: Any) -> SimpleNamespace:
        for event in EVENTS:
            kwargs["event_handler"](event)
        return SimpleNamespace(rc=2, status="failed")

    monkeypatch.setattr(runner.ansible_runner, "run", fake_run)
    return runner.run_playbook("site.yml", inventory=tmp_path, artifacts_root=tmp_path)


def test_the_five_slowest_tasks_longest_first(result: runner.PlayResult) -> None:
    assert [(t["task"], t["seconds"]) for t in result.slowest] == [
        ("Policies | Wait", 12.5),
        ("Gateway | Apply", 6.9),
        ("Kuadrant | CR", 4.4),
        ("Tenants | Apply", 3.3),
        ("CRDs | Look up", 2.1),
    ]
    assert result.hosts == {"localhost": {"ok": 5, "changed": 1}}
    assert [f["task"] for f in result.failures] == ["Policies | Wait"]


def test_the_summary_prints_them(result: runner.PlayResult) -> None:
    text = io.StringIO()
    cli.print_summary(result, as_json=False, out=text)
    lines = text.getvalue().splitlines()
    start = lines.index("slowest tasks:")
    assert [line.split()[0] for line in lines[start + 1 : start + 6]] == ["12.5s", "6.9s", "4.4s", "3.3s", "2.1s"]
    assert lines[start + 1].endswith("Policies | Wait")
    payload = io.StringIO()
    cli.print_summary(result, as_json=True, out=payload)
    assert json.loads(payload.getvalue())["slowest_tasks"][0] == {
        "task": "Policies | Wait",
        "host": "localhost",
        "seconds": 12.5,
    }
