"""The DCGM exporter is scraped once: the monitoring role's ServiceMonitor or the GPU Operator chart's, not both.

The chart turns its own ServiceMonitor on by default (``dcgmExporter.serviceMonitor.enabled``); the values are
rendered as the gpu_operator role renders them, with the production inventory's variables, and merged over
the pinned chart's defaults.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import REPO_ROOT
from tests.unit.test_gpu_values import chart_defaults, render_values

INVENTORY = REPO_ROOT / "inventory" / "production" / "group_vars" / "all"


def inventory_vars() -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for path in sorted(INVENTORY.glob("*.yml")):
        variables.update(yaml.safe_load(path.read_text()) or {})
    return variables


def test_production_scrapes_the_dcgm_exporter_once() -> None:
    inventory = inventory_vars()
    role_defaults = yaml.safe_load((REPO_ROOT / "roles/monitoring/defaults/main.yml").read_text())
    ours = inventory.get("monitoring_dcgm_servicemonitor", role_defaults["monitoring_dcgm_servicemonitor"])
    values = render_values({"spark-01": "", "spark-02": ""}, extra=inventory.get("gpu_operator_values", {}))
    chart = chart_defaults()["dcgmExporter"]["serviceMonitor"]
    theirs = values.get("dcgmExporter", {}).get("serviceMonitor", {}).get("enabled", chart["enabled"])
    assert [bool(ours), bool(theirs)].count(True) == 1
