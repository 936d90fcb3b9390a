"""Every value the roles pass to an upstream chart exists in that chart at the pinned version.

The roles' values are rendered by Ansible itself (each role's values/manifests tasks), and every key path is
looked up in the chart's own default values.yaml from
../shared/chart-values/<chart>-<version>/ (env TOKENLABS_CHART_VALUES_DIR overrides). A map whose
default is empty ({}) is open: the chart passes it through. values.schema.json, where a chart ships
one, is applied as well. Without the data directory the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VALUES_DIR = Path(os.environ.get("TOKENLABS_CHART_VALUES_DIR", REPO_ROOT.parent / "shared" / "chart-values"))
PINS = yaml.safe_load((REPO_ROOT / "roles" / "versions" / "defaults" / "main.yml").read_text())

# config.envoyGateway is rendered verbatim as Envoy Gateway's own configuration file (the
# EnvoyGateway API, gateway.envoyproxy.io/v1alpha1), not interpreted by the chart: its top-level
# fields are checked against that API instead of the chart defaults.
ENVOY_GATEWAY_CONFIG_FIELDS = {
    "gateway",
    "provider",
    "logging",
    "admin",
    "telemetry",
    "rateLimit",
    "extensionManager",
    "extensionApis",
    "runtimeFlags",
    "extensions",
    "xdsServer",
}
PASSTHROUGH = {"gateway-helm": {("config", "envoyGateway"): ENVOY_GATEWAY_CONFIG_FIELDS}}

RENDER_PLAY = """
- name: Render the chart values the roles pass
  hosts: localhost
  gather_facts: false
  roles:
    - role: tokenlabs.platform.versions
  tasks:
    - name: Envoy Gateway values
      ansible.builtin.include_role:
        name: tokenlabs.platform.envoy_gateway
        tasks_from: values.yml
    - name: Kuadrant values
      ansible.builtin.include_role:
        name: tokenlabs.platform.kuadrant
        tasks_from: manifests.yml
    - name: Model routing values
      ansible.builtin.include_role:
        name: tokenlabs.platform.model_routing
        tasks_from: manifests.yml
      vars:
        model_routing_models: [{name: m/one, pool: one}]
    - name: Write them out
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: "{{ {'gateway-helm': __envoy_gateway_chart_values,
                      'kuadrant-operator': __kuadrant_chart_values,
                      'ai-gateway-helm': __model_routing_ai_gateway_chart_values} | to_json }}"
"""

CHART_PINS = {
    "gateway-helm": "versions_envoy_gateway",
    "kuadrant-operator": "versions_kuadrant_operator",
    "ai-gateway-helm": "versions_envoy_ai_gateway",
}


def _chart_dir(chart: str) -> Path:
    return VALUES_DIR / f"{chart}-{PINS[CHART_PINS[chart]].lstrip('v')}"


def _defaults(chart: str) -> dict[str, Any]:
    directory = _chart_dir(chart)
    for name in ("values.yaml", "values.tmpl.yaml"):
        if (directory / name).exists():
            return yaml.safe_load((directory / name).read_text()) or {}
    raise FileNotFoundError(f"no values.yaml in {directory}")


def unknown_paths(
    values: Mapping[str, Any],
    defaults: Any,
    passthrough: Mapping[tuple[str, ...], set[str]],
    path: tuple[str, ...] = (),
) -> Iterator[str]:
    """Dotted paths in ``values`` the chart's defaults do not have."""
    if path in passthrough:
        for key in values:
            if key not in passthrough[path]:
                yield ".".join((*path, key))
        return
    for key, value in values.items():
        here = (*path, key)
        if not isinstance(defaults, Mapping) or key not in defaults:
            yield ".".join(here)
        elif isinstance(value, Mapping) and isinstance(defaults[key], Mapping) and defaults[key]:
            yield from unknown_paths(value, defaults[key], passthrough, here)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not VALUES_DIR.is_dir():
        pytest.skip(f"chart defaults not found at {VALUES_DIR}; set TOKENLABS_CHART_VALUES_DIR")
    tmp = tmp_path_factory.mktemp("values")
    play = tmp / "render.yml"
    play.write_text(RENDER_PLAY)
    out = tmp / "values.json"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(REPO_ROOT / "molecule" / "inventory.yml"),
            "-e",
            json.dumps({"out": str(out)}),
            str(play),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("chart", sorted(CHART_PINS))
def test_every_value_exists_in_the_pinned_chart(rendered: dict[str, Any], chart: str) -> None:
    values = rendered[chart]
    unknown = list(unknown_paths(values, _defaults(chart), PASSTHROUGH.get(chart, {})))
    assert unknown == [], f"{chart} {PINS[CHART_PINS[chart]]} has no value(s) {unknown}"
    schema = _chart_dir(chart) / "values.schema.json"
    if schema.exists():
        import jsonschema  # noqa: PLC0415 - only charts that ship a schema need it

        jsonschema.validate(values, json.loads(schema.read_text()))


def test_the_checker_catches_invented_keys() -> None:
    defaults = {"router": {"name": "x", "flags": {}}, "provider": {"name": "none"}}
    values = {"router": {"name": "y", "flags": {"anything": 1}, "replica": 2}, "pool": {"name": "p"}}
    assert sorted(unknown_paths(values, defaults, {})) == ["pool", "router.replica"]


def test_envoy_gateway_values_enable_what_kuadrant_and_ai_gateway_need(rendered: dict[str, Any]) -> None:
    config = rendered["gateway-helm"]["config"]["envoyGateway"]
    assert config["extensionApis"] == {"enableEnvoyPatchPolicy": True, "enableBackend": True}
    assert config["rateLimit"]["backend"]["type"] == "Redis"


def test_envoy_gateway_resolves_inference_pools_through_ai_gateway(rendered: dict[str, Any]) -> None:
    """Issue 11.1: without an extension server declaring InferencePool, the model route is ResolvedRefs=False."""
    manager = rendered["gateway-helm"]["config"]["envoyGateway"]["extensionManager"]
    pool = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "version": "v1"}
    assert manager["backendResources"] == [pool]
    assert manager["service"]["fqdn"] == {
        "hostname": "ai-gateway-controller.envoy-ai-gateway-system.svc.cluster.local",
        "port": 1063,
    }
    assert manager["hooks"]["xdsTranslator"]["post"] == ["Translation", "Cluster", "Route"]
