"""Previous keys expire when they say, on the lab's real controllers: after `tokenlabs tenant rotate
--previous-key-ttl 15s` the real Authorino accepts the old key until its expiry and refuses it from that second on,
and kube-controller-manager removes its Secret, with nobody running anything; `tokenlabs tenant list` shows the
pending expiry meanwhile. A re-tier, whose short-lived key holder must never fall under the expiry rule, still
switches the tier with no refusal.

One `tokenlabs lab up` of its own (test_lab.py converges its lab twice and checks the rest).
"""

from __future__ import annotations

import datetime
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
from kubernetes import client, config

from tests.conftest import REPO_ROOT
from tests.integration.test_cli import _tokenlabs
from tokenlabs.lab import authcheck, checks

pytestmark = [pytest.mark.workloads, pytest.mark.timeout(1800)]

NAMESPACE = "kuadrant-system"
TENANT = "demo-pro"
TTL_SECONDS = 15
# Job failure, TTL deletion and garbage collection each take a sync or two; on a loaded 2-core machine, seconds.
REMOVAL_TIMEOUT = 120


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, k8s_binaries: object) -> Iterator[dict[str, Any]]:
    lab_dir = tmp_path_factory.mktemp("lab")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "TOKENLABS_LAB_DIR": str(lab_dir), "PATH": path}
    try:
        up = _tokenlabs("lab", "up", "--json", env=env)
        assert up.returncode == 0, up.stderr[-5000:]
        status = json.loads(_tokenlabs("lab", "status", "--json", env=env).stdout)
        api = config.new_client_from_config(config_file=status["kubeconfig"])
        address = checks.authorino_address(api)
        assert address is not None
        configs = [r["name"] for r in json.loads(up.stdout)["controllers"]["statuses"] if r["kind"] == "AuthConfig"]
        assert configs, "Kuadrant has not translated the AuthPolicy"
        keys = yaml.safe_load((lab_dir / "tenant-keys.yml").read_text())
        yield {"env": env, "dir": lab_dir, "api": api, "address": address, "config": configs[0], "keys": keys}
    finally:
        _tokenlabs("lab", "down", env=env)


def _tenant(lab: dict[str, Any], *args: str) -> Any:
    return _tokenlabs("tenant", *args, "-i", str(REPO_ROOT / "inventory" / "lab"), env=lab["env"])


def _ask(lab: dict[str, Any], key: str, at: float | None = None) -> authcheck.Decision:
    headers = {"authorization": f"Bearer {key}"}
    request = authcheck.check_request(lab["config"], "POST", "/v1/chat/completions", "gateway.lab", headers, at=at)
    return authcheck.check(lab["address"], request)


def _previous(lab: dict[str, Any]) -> list[Any]:
    selector = f"tokenlabs.io/tenant={TENANT},tokenlabs.io/key=previous"
    return client.CoreV1Api(lab["api"]).list_namespaced_secret(NAMESPACE, label_selector=selector).items


def test_a_previous_key_is_refused_from_its_expiry_and_its_secret_removed(lab: dict[str, Any], tmp_path: Path) -> None:
    old_key = lab["keys"][TENANT]
    assert _ask(lab, old_key).allowed

    key_file = tmp_path / "new.key"
    rotated = _tenant(lab, "rotate", TENANT, "--previous-key-ttl", f"{TTL_SECONDS}s", "--key-file", str(key_file))
    assert rotated.returncode == 0, rotated.stderr[-3000:]
    new_key = key_file.read_text().strip()
    (prev,) = _previous(lab)
    stamp = prev.metadata.annotations["tokenlabs.io/expires-at"]
    expires = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    # Exact to the second, and from the AuthPolicy's rule alone (the Secret is still there): a request the proxy
    # stamps one second before the expiry passes, one stamped at the expiry is refused; the new key has no expiry.
    assert _ask(lab, old_key, at=expires - 1).allowed
    at_expiry = _ask(lab, old_key, at=expires)
    assert (at_expiry.allowed, at_expiry.http_status) == (False, 403)
    assert _ask(lab, new_key, at=expires + 86400).allowed
    assert _previous(lab), "the refusal above came from the rule, with the Secret still in place"

    listed = _tenant(lab, "list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(TENANT + " ")]
    assert f"expires {stamp}" in row, listed.stdout

    # The old key until its expiry, then never again; the new key throughout. Each ask carries its own time, as
    # the proxy stamps each request, and nobody runs anything.
    verdicts: list[tuple[float, bool, int | None]] = []
    while time.time() < expires + 3:
        now = time.time()
        old = _ask(lab, old_key, at=now)
        verdicts.append((now, old.allowed, old.http_status))
        assert _ask(lab, new_key).allowed
        time.sleep(0.25)
    before = [v for v in verdicts if v[0] < expires]
    after = [v for v in verdicts if v[0] >= expires]
    assert before and after
    assert all(allowed for _t, allowed, _s in before), [v for v in before if not v[1]]
    # 403: Authorino still knows the key (its Secret may still be there) and the AuthPolicy's expiry rule refuses it.
    assert [(allowed, status) for _t, allowed, status in after if allowed or status not in (401, 403)] == []

    # Without a run of anything, the cluster removes the Secret; the key is then unknown to Authorino.
    deadline = time.monotonic() + REMOVAL_TIMEOUT
    while _previous(lab) and time.monotonic() < deadline:
        time.sleep(1)
    assert _previous(lab) == [], f"the previous-key Secret is still there {REMOVAL_TIMEOUT}s after its expiry"
    assert client.BatchV1Api(lab["api"]).list_namespaced_job(NAMESPACE).items == []
    gone = _ask(lab, old_key)
    assert (gone.allowed, gone.http_status) == (False, 401)
    assert _ask(lab, new_key).allowed

    listed = _tenant(lab, "list", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    (shown,) = [t for t in json.loads(listed.stdout)["tenants"] if t["name"] == TENANT]
    assert shown["previous_keys"] == []
    lab["keys"][TENANT] = new_key


def test_a_retier_still_switches_the_tier_without_a_refusal(lab: dict[str, Any]) -> None:
    """The hand-over holder carries no expiry (the rule never refuses it) and no expiry Job (nothing removes it)."""
    key = lab["keys"]["demo-free"]
    verdicts: list[authcheck.Decision] = []
    done = threading.Event()

    def ask() -> None:
        while not done.is_set() and len(verdicts) < 2000:
            verdicts.append(_ask(lab, key))
            time.sleep(0.02)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        proc = _tenant(lab, "retier", "demo-free", "--tier", "pro")
    finally:
        done.set()
        asker.join()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert verdicts and all(v.allowed for v in verdicts), [v.http_status for v in verdicts if not v.allowed]
    after = _ask(lab, key)
    assert after.allowed
    assert after.metadata["identity"] == {"userid": "demo-free", "groups": "pro"}
    assert client.BatchV1Api(lab["api"]).list_namespaced_job(NAMESPACE).items == []
