"""The tokenlabs command's parsing and error reporting (no playbook runs here)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tokenlabs import cli, runner


def test_tenant_add_parses_tier_and_key_file() -> None:
    args = cli.build_parser().parse_args(["tenant", "add", "acme", "--tier", "pro", "--key-file", "k"])
    assert (args.action, args.tenant, args.tier, args.key_file) == ("add", "acme", "pro", "k")
    assert args.func is cli.cmd_tenant


def test_tenant_add_requires_a_tier(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["tenant", "add", "acme"])
    assert exc.value.code == 2
    assert "--tier" in capsys.readouterr().err


def test_up_takes_check_and_tags() -> None:
    args = cli.build_parser().parse_args(["up", "--check", "--tags", "gateway,policies"])
    assert args.check is True
    assert args.tags == "gateway,policies"
    assert args.inventory.endswith("inventory/production")


def test_missing_inventory_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "-i", "/nonexistent/inventory"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tokenlabs: inventory /nonexistent/inventory does not exist"]


class FakeRun:
    """Stands in for cli.run: records the call and answers with a canned result of the tenant task."""

    def __init__(self, applied: dict[str, Any]) -> None:
        self.applied = applied
        self.calls: list[dict[str, Any]] = []

    def __call__(self, args: argparse.Namespace, playbook: str, **kwargs: Any) -> runner.PlayResult:
        self.calls.append({"args": args, "playbook": playbook, **kwargs})
        result = runner.PlayResult(rc=0, status="successful", artifacts=Path("/nonexistent"), duration=0.0)
        result.captured[cli.TENANT_APPLY_TASK] = self.applied
        return result


DIFF = {
    "before": {"tenant-acme": {"annotations": {"kuadrant.io/groups": "pro"}}},
    "after": {"tenant-acme": {"annotations": {"kuadrant.io/groups": "enterprise"}}},
}


@pytest.mark.parametrize(
    "action",
    [["add", "acme", "--tier", "pro"], ["retier", "acme", "--tier", "pro"], ["rotate", "acme"], ["revoke", "acme"]],
)
def test_tenant_changes_take_check_and_diff(action: list[str]) -> None:
    args = cli.build_parser().parse_args(["tenant", *action, "--check", "--diff"])
    assert (args.check, args.diff) == (True, True)


def test_tenant_check_runs_in_check_mode_and_prints_the_diff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRun({"changed": True, "existed": True, "key_action": None, "diff": DIFF})
    monkeypatch.setattr(cli, "run", fake)
    assert cli.main(["tenant", "retier", "acme", "--tier", "enterprise", "--check"]) == 0
    (call,) = fake.calls
    assert call["args"].check is True
    assert call["envvars"] == {"ANSIBLE_DIFF_ALWAYS": "true"}
    out = capsys.readouterr().out
    assert '-      "kuadrant.io/groups": "pro"' in out
    assert '+      "kuadrant.io/groups": "enterprise"' in out
    assert "nothing was changed" in out


def test_tenant_diff_alone_changes_and_shows_the_diff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRun({"changed": True, "existed": True, "key_action": None, "diff": DIFF})
    monkeypatch.setattr(cli, "run", fake)
    assert cli.main(["tenant", "retier", "acme", "--tier", "enterprise", "--diff", "--json"]) == 0
    (call,) = fake.calls
    assert call["args"].check is False
    assert call["report"](fake(call["args"], "x"))["diff"] == DIFF


def test_revoke_of_an_unknown_tenant_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "run", FakeRun({"changed": False, "existed": False, "key_action": None}))
    assert cli.main(["tenant", "revoke", "ghost"]) == 0
    assert "tenant ghost does not exist; nothing to revoke (changed=false)" in capsys.readouterr().out


def test_every_tenant_write_but_revoke_hands_the_key_file_to_the_playbook(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun({"changed": False, "existed": True, "key_action": None})
    monkeypatch.setattr(cli, "run", fake)
    for argv in (["add", "a", "--tier", "pro"], ["retier", "a", "--tier", "pro"], ["rotate", "a"], ["revoke", "a"]):
        cli.main(["tenant", *argv])
    handed = ["key_file" in call["extravars"] for call in fake.calls]
    assert handed == [True, True, True, False]


def test_usage_without_prometheus_is_one_line_naming_the_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_prometheus(*_: object, **__: object) -> None:
        raise cli.TaskFailed(cli.USAGE_QUERY_TASK, "localhost", "no Prometheus answers at http://p:9090 (refused)")

    monkeypatch.setattr(cli, "run", no_prometheus)
    assert cli.main(["usage", "--since", "24h", "--prometheus-url", "http://p:9090"]) == 1
    assert capsys.readouterr().err == "tokenlabs: no Prometheus answers at http://p:9090 (refused)\n"
