"""The tokenlabs command's parsing and error reporting (no playbook runs here)."""

from __future__ import annotations

import pytest

from tokenlabs import cli


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
