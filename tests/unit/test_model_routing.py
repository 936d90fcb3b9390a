"""Model routing is Envoy AI Gateway only, and the route check runs once the routes' backends exist.

Read from the playbooks as Ansible itself lists them (`--list-tasks`, no cluster): the order of site.yml, and the
first play's refusal of an inventory that still sets a removed Body Based Router setting.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTE_WAIT = "Gateway | Wait until every route is Accepted with its references resolved"


def _playbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module", params=["lab", "production"])
def site_tasks(request: pytest.FixtureRequest) -> list[tuple[str, str]]:
    """(play, task) for every task of site.yml, in run order, with the given inventory."""
    proc = _playbook("-i", str(REPO_ROOT / "inventory" / request.param), "site.yml", "--list-tasks")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tasks, play = [], ""
    for line in proc.stdout.splitlines():
        if found := re.match(r"\s+play #\d+ \([^)]*\): (.+?)\tTAGS", line):
            play = found.group(1)
        elif "\tTAGS: " in line and line.startswith("      "):
            tasks.append((play, line.strip().split("\tTAGS: ")[0].split(" : ", 1)[-1]))
    return tasks


def test_routes_are_checked_after_serving_created_their_backends(site_tasks: list[tuple[str, str]]) -> None:
    """Issue 11.4: one site.yml run on an empty cluster waits for the routes only once pools and Services exist."""
    names = [task for _, task in site_tasks]
    assert names.count(ROUTE_WAIT) == 1
    wait = names.index(ROUTE_WAIT)
    assert site_tasks[wait][0].startswith("Serving | ")
    pools = max(i for i, name in enumerate(names) if name.startswith("LLM-d | "))
    speech = max(i for i, name in enumerate(names) if name.startswith("Magpie TTS | "))
    routing = max(i for i, name in enumerate(names) if name.startswith("Model routing | "))
    assert wait > max(pools, speech, routing)
    # The gateway role still waits for its Gateway in the platform phase.
    assert names.index("Gateway | Wait until the Gateway is Programmed") < routing


def test_nothing_but_the_clean_up_knows_the_body_based_router(site_tasks: list[tuple[str, str]]) -> None:
    mentions = [task for _, task in site_tasks if re.search(r"body.based|bbr", task, flags=re.IGNORECASE)]
    assert mentions
    assert all(task.startswith("Model routing | ") for task in mentions)
    assert all(re.search(r"Look for|Remove|Uninstall", task) for task in mentions)


@pytest.mark.parametrize(
    "setting", ["tokenlabs_model_routing=bbr", "gateway_model_routing=bbr", "model_routing_bbr_port=9004"]
)
def test_an_inventory_with_a_removed_setting_is_stopped_by_the_first_play(setting: str) -> None:
    proc = _playbook("site.yml", "-e", setting, "--tags", "never")
    assert proc.returncode != 0
    text = " ".join(proc.stdout.split())
    assert f"The inventory sets {setting.partition('=')[0]}, which no longer exist" in text
    assert "Boilerplate | Pinned versions" not in proc.stdout


@pytest.mark.parametrize("inventory", ["lab", "production"])
def test_inventories_set_no_routing_mode(inventory: str) -> None:
    settings: dict[str, object] = {}
    for path in (REPO_ROOT / "inventory" / inventory / "group_vars" / "all").glob("*.yml"):
        settings |= yaml.safe_load(path.read_text()) or {}
    assert [k for k in settings if re.search(r"model_routing_mode|_model_routing$|_bbr_|body_based", k)] == []
