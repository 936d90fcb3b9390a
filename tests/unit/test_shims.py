"""The recording shims behave like the tools they stand in for (molecule/shims/hostshim.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

SHIMS = REPO_ROOT / "molecule" / "shims"


def load_shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostshim", SHIMS / "hostshim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostshim"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


shim = load_shim()


@pytest.fixture
def machines(tmp_path: Path) -> Path:
    seed = json.loads((SHIMS / "seeds" / "healthy.json").read_text())
    shim.init(tmp_path, seed, sys.executable)
    return tmp_path


def run(directory: Path, host: str, *argv: str, env: dict[str, str] | None = None) -> Any:
    return shim.run_tool(argv[0], list(argv[1:]), directory, host, env or {})


def calls(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / "calls.jsonl").read_text().splitlines()]


def test_install_hold_and_list(machines: Path) -> None:
    assert run(machines, "spark-01", "snap", "list", "microk8s").rc == 1
    out = run(machines, "spark-01", "snap", "install", "microk8s", "--classic", "--channel=1.33/stable")
    assert out.rc == 0 and "installed" in out.stdout
    assert run(machines, "spark-01", "snap", "refresh", "--hold", "microk8s").rc == 0
    row = run(machines, "spark-01", "snap", "list", "microk8s").stdout.splitlines()[1].split()
    assert row[3] == "1.33/stable" and row[5] == "classic,held"
    template = machines / "spark-01/fs/var/snap/microk8s/current/args/containerd-template.toml"
    assert "runtimes.runc]" in template.read_text()
    assert [c["mutating"] for c in calls(machines)] == [False, True, True, False]


def test_addons_are_refused_on_workers_and_nvidia_on_arm64(machines: Path) -> None:
    for host in ("controller", "spark-01"):
        run(machines, host, "snap", "install", "microk8s", "--classic", "--channel=1.33/stable")
    assert run(machines, "spark-01", "microk8s", "enable", "nvidia").stdout.startswith("Addon nvidia was not found")
    assert "is enabled" in run(machines, "controller", "microk8s", "enable", "metallb:10.0.0.1-10.0.0.9").stdout
    assert "already enabled" in run(machines, "controller", "microk8s", "enable", "metallb").stdout
    status = run(machines, "controller", "microk8s", "status", "--format", "yaml").stdout
    assert "- name: metallb\n  repository: core\n  status: enabled" in status


def test_tokens_are_single_use_even_when_the_join_fails(machines: Path) -> None:
    for host in ("controller", "spark-01", "spark-02"):
        run(machines, host, "snap", "install", "microk8s", "--classic", "--channel=1.33/stable")
    token = json.loads(run(machines, "controller", "microk8s", "add-node", "--format", "json").stdout)["token"]
    joined = run(machines, "spark-01", "microk8s", "join", f"10.77.0.10:25000/{token}", "--worker")
    assert joined.rc == 0
    reused = run(machines, "spark-02", "microk8s", "join", f"10.77.0.10:25000/{token}", "--worker")
    assert reused.rc == 1 and "Invalid token" in reused.stdout
    nodes = json.loads(run(machines, "controller", "microk8s", "kubectl", "get", "nodes", "-o", "json").stdout)
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["controller", "spark-01"]
    assert (machines / "spark-01/fs/var/snap/microk8s/current/var/lock/clustered.lock").exists()
    assert run(machines, "spark-01", "microk8s", "status").rc == 1


def test_injected_failures_and_gpu_probes(machines: Path) -> None:
    state = json.loads((machines / "state.json").read_text())
    state["failures"] = [{"host": "spark-02", "argv": ["nvidia-smi"], "rc": 9, "stdout": "driver gone\n", "times": 1}]
    (machines / "state.json").write_text(json.dumps(state))
    failed = run(machines, "spark-02", "nvidia-smi", "-L")
    assert (failed.rc, failed.stdout) == (9, "driver gone\n")
    assert run(machines, "spark-02", "nvidia-smi", "-L").stdout.startswith("GPU 0: NVIDIA GB10")
    query = run(machines, "spark-02", "nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    assert query.stdout == "580.95.05\n"
    assert run(machines, "controller", "nvidia-smi", "-L").rc == 9
    missing = run(machines, "spark-01", "getent", "hosts", "spark-02", "nowhere")
    assert (missing.rc, missing.stdout.split()) == (2, ["10.77.0.12", "spark-02"])


def test_the_toolkit_leaves_its_drop_in_and_an_import_of_its_directory(tmp_path: Path) -> None:
    shim.init(tmp_path, json.loads((SHIMS / "seeds" / "clustered.json").read_text()), sys.executable)
    args = "fs/var/snap/microk8s/current/args/containerd-template.toml"
    drop_in = "fs/etc/containerd/conf.d/99-nvidia.toml"
    for host in ("spark-01", "spark-02"):
        template = (tmp_path / host / args).read_text()
        assert template.startswith(f'imports = ["{tmp_path / host / "fs/etc/containerd/conf.d"}/*.toml"]\n')
        assert 'runtimes.nvidia.options]\n            BinaryName = "' in (tmp_path / host / drop_in).read_text()
    assert "runtimes.runc]" in (tmp_path / "spark-01" / args).read_text()
    assert "runtimes.runc]" not in (tmp_path / "spark-02" / args).read_text()
    assert not (tmp_path / "controller" / drop_in).exists()
    # The drop-in is the toolkit's, not the snap's: removing MicroK8s leaves it.
    run(tmp_path, "spark-01", "snap", "remove", "microk8s")
    assert not (tmp_path / "spark-01" / args).exists()
    assert (tmp_path / "spark-01" / drop_in).exists()
