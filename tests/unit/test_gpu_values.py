"""Every value the gpu_operator role passes to the chart is a key of the chart's own values.yaml.

The values are rendered the way Ansible renders them (role defaults, role vars, the versions pins),
with and without time-slicing, then walked key by key against the pinned chart's defaults. A map the
chart leaves empty (``{}``) is open: any key below it is accepted. Lists are leaves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from tests.conftest import REPO_ROOT

ROLE = REPO_ROOT / "roles" / "gpu_operator"
CHART_VALUES_DIR = Path(os.environ.get("TOKENLABS_CHART_VALUES_DIR", REPO_ROOT.parent / "shared" / "chart-values"))


def chart_defaults() -> dict[str, Any]:
    version = yaml.safe_load((REPO_ROOT / "roles/versions/defaults/main.yml").read_text())["versions_gpu_operator"]
    path = CHART_VALUES_DIR / f"gpu-operator-{version.lstrip('v')}" / "values.yaml"
    if not path.is_file():
        pytest.skip(f"chart defaults not available: {path}")
    return yaml.safe_load(path.read_text())


def trusted(value: Any) -> Any:
    """Role files are trusted templates when Ansible loads them; mark them the same way here."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value


def render_values(host_profiles: dict[str, str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for path in (REPO_ROOT / "roles/versions/defaults/main.yml", ROLE / "defaults/main.yml", ROLE / "vars/main.yml"):
        variables.update(trusted(yaml.safe_load(path.read_text())))
    hostvars = {node: {"gpu_operator_time_slicing_profile": profile} for node, profile in host_profiles.items()}
    variables.update(
        groups={"spark": list(host_profiles)},
        hostvars=hostvars,
        gpu_operator_values=extra or {},
    )
    return Templar(loader=loader, variables=variables).template(variables["__gpu_operator_chart_values"])


def unknown_keys(values: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[str]:
    missing = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            missing.append(path)
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and defaults[key]:
            missing += unknown_keys(value, defaults[key], path + ".")
    return missing


@pytest.mark.parametrize(
    "profiles",
    [{"spark-01": "", "spark-02": ""}, {"spark-01": "shared-2", "spark-02": ""}],
    ids=["no-sharing", "time-slicing"],
)
def test_every_value_is_a_chart_key(profiles: dict[str, str]) -> None:
    values = render_values(profiles)
    assert unknown_keys(values, chart_defaults()) == []


def test_values_use_microk8s_paths_and_the_host_driver() -> None:
    values = render_values({"spark-01": "", "spark-02": ""})
    assert values["driver"]["enabled"] is False
    assert values["operator"]["runtimeClass"] == "nvidia"
    env = {item["name"]: item["value"] for item in values["toolkit"]["env"]}
    assert env == {
        "CONTAINERD_CONFIG": "/var/snap/microk8s/current/args/containerd-template.toml",
        "CONTAINERD_SOCKET": "/var/snap/microk8s/common/run/containerd.sock",
        "RUNTIME_CONFIG_SOURCE": "file=/var/snap/microk8s/current/args/containerd.toml",
        "CONTAINERD_SET_AS_DEFAULT": "false",
        # The operator's own default, named so that the containerd guard and the toolkit mean the same file.
        "RUNTIME_DROP_IN_CONFIG": "/etc/containerd/conf.d/99-nvidia.toml",
    }
    assert "devicePlugin" not in values


def test_time_slicing_profile_becomes_a_device_plugin_config() -> None:
    values = render_values({"spark-01": "shared-2", "spark-02": ""})
    config = values["devicePlugin"]["config"]
    assert config["create"] is True
    assert config["default"] == "default"
    assert set(config["data"]) == {"default", "shared-2"}
    shared = yaml.safe_load(config["data"]["shared-2"])
    assert shared["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 2}]


def test_the_check_catches_a_key_the_chart_does_not_have() -> None:
    # operator.defaultRuntime is what older instructions set; this chart version has no such key.
    values = render_values({"spark-01": ""}, extra={"operator": {"defaultRuntime": "containerd"}})
    assert unknown_keys(values, chart_defaults()) == ["operator.defaultRuntime"]
