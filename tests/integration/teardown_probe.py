"""Run by test_teardown.py in a child pytest: start the session cluster, report its pids, wait."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import Cluster


def test_hold_the_cluster(k8s_workloads: Cluster) -> None:
    assert k8s_workloads.plane is not None
    pids = k8s_workloads.plane.pids
    Path(os.environ["TOKENLABS_PROBE_PIDS"]).write_text(json.dumps(pids))
    time.sleep(600)
