"""Every molecule scenario converges, is idempotent and verifies against the test control plane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Cluster

SCENARIOS = sorted(p.parent.name for p in (REPO_ROOT / "molecule").glob("*/molecule.yml"))


@pytest.mark.molecule
@pytest.mark.workloads
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str, k8s_workloads: Cluster, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    env = {
        **k8s_workloads.env,
        # kubernetes.core keeps its API discovery cache in the temp dir, keyed by server and user; a
        # scenario that deletes and re-creates a CRD must not meet another scenario's stale view of it.
        "TMPDIR": str(tmp_path),
        # Molecule keeps scenario state (e.g. "prepared") under ~/.ansible/tmp, keyed by the checkout's directory
        # name; a state left by an earlier run would skip prepare.
        "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [f"{venv_bin}/molecule", "test", "-s", scenario],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-20000:]
    # On a converged cluster `--check` must report nothing to do, as idempotence does for a real run.
    check = _section(proc.stdout, f"[{scenario} > check] Executing", f"[{scenario} > check] Executed")
    recaps = re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", check, flags=re.MULTILINE)
    assert recaps, check[-5000:]
    assert set(recaps) == {"0"}, check[-20000:]


def _section(text: str, start: str, end: str) -> str:
    begin = text.index(start)
    return text[begin : text.index(end, begin)]
