"""helm_current against a release helm itself installed, and against kubernetes.core.helm's own judgement."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Cluster
from tests.integration.test_tenant_modules import run_tasks
from tokenlabs.lab import sources

RELEASE, NAMESPACE = "kuadrant-operator", "kuadrant-system"


def deployed_values(cluster: Cluster) -> dict[str, Any]:
    helm = [str(cluster.bin_dir / "helm"), f"--kubeconfig={cluster.kubeconfig}"]
    out = subprocess.run(
        [*helm, "get", "values", RELEASE, f"--namespace={NAMESPACE}", "--output=json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out) or {}


def test_current_only_for_the_deployed_chart_and_values(kuadrant_crds: Cluster, tmp_path: Path) -> None:
    cluster = kuadrant_crds
    chart = str(sources.chart_path("kuadrant-operator"))
    values = deployed_values(cluster)
    changed = {**values, "tokenlabs-test": 1}

    def release(**overrides: Any) -> dict[str, Any]:
        return {"name": RELEASE, "namespace": NAMESPACE, "chart_ref": chart, "values": values, **overrides}

    def helm_check(release_values: dict[str, Any]) -> dict[str, Any]:
        return {
            "kubernetes.core.helm": {
                "binary_path": str(cluster.bin_dir / "helm"),
                "release_name": RELEASE,
                "release_namespace": NAMESPACE,
                "chart_ref": chart,
                "release_values": release_values,
            },
            "check_mode": True,
        }

    found, helm_same, helm_changed = run_tasks(
        cluster,
        tmp_path,
        [
            {
                "tokenlabs.platform.helm_current": {
                    "releases": [
                        release(),
                        release(values=changed),
                        release(chart_ref="kuadrant-operator", chart_version="0.0.1"),
                        release(chart_ref="kuadrant-operator"),
                        release(name="absent"),
                    ]
                }
            },
            helm_check(values),
            helm_check(changed),
        ],
    )
    assert found["current"] == [f"{NAMESPACE}/{RELEASE}"] and found["changed"] is False
    reasons = [r["reason"] for r in found["releases"]]
    assert reasons[0] is None
    assert reasons[1] == "values differ"
    assert reasons[2].startswith("runs chart kuadrant-operator-") and reasons[2].endswith(
        "wanted kuadrant-operator-0.0.1"
    )
    assert "needs its chart_version" in reasons[3]
    assert reasons[4] == "no deployed revision"
    # What helm_current calls current is what kubernetes.core.helm leaves alone, and the other way round.
    assert helm_same["changed"] is False and helm_changed["changed"] is True
