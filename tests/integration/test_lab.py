"""The lab end to end, on the real controllers: converge twice, what the controllers accept, what Authorino
decides. A defect the real control planes show is held as a strict xfail (it fails while the defect lasts and
turns the suite red the day it is fixed, so the mark goes with the fix).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from tests.conftest import REPO_ROOT, process_running
from tests.integration.test_cli import _tokenlabs
from tokenlabs.lab import authcheck, checks

# Two converges of the whole site on 2 cores: longer than the suite's default per-test limit.
pytestmark = [pytest.mark.workloads, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, k8s_binaries: object) -> Iterator[dict[str, Any]]:
    lab_dir = tmp_path_factory.mktemp("lab")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "TOKENLABS_LAB_DIR": str(lab_dir), "PATH": path}
    state: dict[str, Any] = {"env": env, "dir": lab_dir, "down": None}
    try:
        first = _tokenlabs("lab", "up", "--json", env=env)
        assert first.returncode == 0, first.stderr[-5000:]
        state["first"] = json.loads(first.stdout)
        second = _tokenlabs("lab", "up", "--json", env=env)
        assert second.returncode == 0, second.stderr[-5000:]
        state["second"] = json.loads(second.stdout)
        state["status"] = json.loads(_tokenlabs("lab", "status", "--json", env=env).stdout)
        yield state
    finally:
        if state["down"] is None:
            _tokenlabs("lab", "down", env=env)


def _rows(lab: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [row for row in lab["second"]["controllers"]["statuses"] if row["kind"] == kind]


def _failing(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['kind']} {r['namespace']}/{r['name']} {r['condition']}={r['status']} {r['reason']}: {r['message']}"
        for r in rows
        if not r["ok"]
    ]


def test_second_converge_changes_nothing(lab: dict[str, Any]) -> None:
    assert lab["first"]["ok"] is True
    hosts = lab["second"]["hosts"]
    assert {h: c.get("changed", 0) for h, c in hosts.items()} == dict.fromkeys(hosts, 0)
    assert lab["status"]["running"] is True
    assert lab["status"]["nodes"] == ["controller", "spark-01", "spark-02"]


def test_envoy_gateway_accepts_the_class_and_programs_the_gateway(lab: dict[str, Any]) -> None:
    rows = _rows(lab, "GatewayClass") + _rows(lab, "Gateway")
    assert {r["condition"] for r in rows} == {"Accepted", "Programmed"}
    assert _failing(rows) == []


def test_authorino_accepts_every_tenant_as_itself_and_refuses_an_unknown_key(lab: dict[str, Any]) -> None:
    verdicts = {c["subject"]: c for c in lab["second"]["controllers"]["checks"] if c["check"] == "authorino"}
    tenants = {t["id"] for t in lab["second"]["report"]["tenants"]}
    assert tenants and set(verdicts) == tenants | {"(unknown key)"}
    assert [v["detail"] for v in verdicts.values() if not v["ok"]] == []


def test_limitador_holds_the_tier_table(lab: dict[str, Any]) -> None:
    limits = [c for c in lab["second"]["controllers"]["checks"] if c["check"] == "limitador"]
    assert len(limits) == 3 * 2 * 2  # tiers x (requests, tokens) x (minute, day)
    assert [c["detail"] for c in limits if not c["ok"]] == []


def test_limitador_labels_its_counters_with_the_limit_name(lab: dict[str, Any]) -> None:
    found = [c for c in lab["second"]["controllers"]["checks"] if c["check"] == "limitador-metrics"]
    assert found and [c["detail"] for c in found if not c["ok"]] == []


def test_every_route_resolves_its_backends(lab: dict[str, Any]) -> None:
    """Issue 11.1: the model route's InferencePools resolve through Envoy AI Gateway, the extension server."""
    routes = _rows(lab, "HTTPRoute")
    assert "tokenlabs-llm" in {r["name"] for r in routes}
    assert _failing(routes) == []


def test_no_extension_policy_is_conflicted(lab: dict[str, Any]) -> None:
    """Issue 11.2: nothing of ours takes the Gateway's one EnvoyExtensionPolicy slot, Kuadrant's Wasm policy's."""
    conflicted = [r for r in _rows(lab, "EnvoyExtensionPolicy") if r["reason"] == "Conflicted"]
    assert conflicted == []


def test_a_retier_is_reflected_by_authorino_without_a_refusal(lab: dict[str, Any]) -> None:
    keys = yaml.safe_load((Path(lab["dir"]) / "tenant-keys.yml").read_text())
    api = config.new_client_from_config(config_file=lab["status"]["kubeconfig"])
    address = checks.authorino_address(api)
    assert address is not None
    configs = [c for c in lab["second"]["controllers"]["statuses"] if c["kind"] == "AuthConfig"]
    bearer = {"authorization": f"Bearer {keys['demo-free']}"}
    request = authcheck.check_request(configs[0]["name"], "POST", "/v1/chat/completions", "gateway.lab", bearer)
    verdicts: list[authcheck.Decision] = []
    done = threading.Event()

    def ask() -> None:  # the tenant keeps calling while its tier changes
        while not done.is_set() and len(verdicts) < 2000:
            verdicts.append(authcheck.check(address, request))
            time.sleep(0.02)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        lab_inventory = str(REPO_ROOT / "inventory" / "lab")
        proc = _tokenlabs("tenant", "retier", "demo-free", "--tier", "pro", "-i", lab_inventory, env=lab["env"])
    finally:
        done.set()
        asker.join()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert verdicts and all(v.allowed for v in verdicts), [v.http_status for v in verdicts if not v.allowed]
    after = authcheck.check(address, request)
    assert after.allowed
    assert after.metadata["identity"] == {"userid": "demo-free", "groups": "pro"}


def test_down_removes_the_lab(lab: dict[str, Any]) -> None:
    pids = [lab["status"]["pid"], *lab["status"]["component_pids"]]
    down = _tokenlabs("lab", "down", env=lab["env"])
    lab["down"] = down
    assert down.returncode == 0
    assert "lab stopped" in down.stdout
    assert [p for p in pids if process_running(p)] == []
    assert json.loads(_tokenlabs("lab", "status", "--json", env=lab["env"]).stdout)["running"] is False
    assert not (Path(lab["dir"]) / "tenant-keys.yml").exists()
