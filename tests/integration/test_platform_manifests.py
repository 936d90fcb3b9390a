"""Every manifest the platform roles own is accepted by the real API server with the upstream CRDs.

The manifests are rendered by the roles themselves (their manifests tasks) for a 3-tier and a 5-tier
table, then created in a fresh namespace: the server validates them against the pinned CRD schemas
(including their CEL rules). A broken tier table must stop the policies role before it applies anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from tests.conftest import REPO_ROOT, Cluster

INVENTORY = REPO_ROOT / "inventory" / "lab" / "group_vars" / "all"
MODELS = yaml.safe_load((INVENTORY / "models.yml").read_text())["tokenlabs_models"]
THREE_TIERS = yaml.safe_load((INVENTORY / "tiers.yml").read_text())["tokenlabs_tiers"]
FIVE_TIERS = {
    **THREE_TIERS,
    "starter": {"requests_per_minute": 20, "requests_per_day": 1000, "tokens_per_day": 100_000},
    "research": {"requests_per_second": 5, "tokens_per_minute": 20_000, "tokens_per_hour": 600_000},
}
TIERS = [3, 5]

RENDER_PLAY = """
- name: Render {tiers}
  hosts: localhost
  gather_facts: false
  vars:
    __ns: "{namespace}"
  roles:
    - role: tokenlabs.platform.versions
  tasks:
    - name: Gateway
      ansible.builtin.include_role: {{name: tokenlabs.platform.gateway, tasks_from: manifests.yml}}
      vars: {{gateway_namespace: "{{{{ __ns }}}}", gateway_models: "{{{{ models }}}}"}}
    - name: Model routing
      ansible.builtin.include_role: {{name: tokenlabs.platform.model_routing, tasks_from: manifests.yml}}
      vars:
        model_routing_namespace: "{{{{ __ns }}}}"
        model_routing_models: "{{{{ models }}}}"
    - name: Kuadrant
      ansible.builtin.include_role: {{name: tokenlabs.platform.kuadrant, tasks_from: manifests.yml}}
      vars: {{kuadrant_namespace: "{{{{ __ns }}}}", kuadrant_redis_persistence: true}}
    - name: Policies
      ansible.builtin.include_role: {{name: tokenlabs.platform.policies, tasks_from: manifests.yml}}
      vars: {{policies_namespace: "{{{{ __ns }}}}", policies_tiers: "{{{{ tiers_{tiers} }}}}"}}
    - name: Write
      ansible.builtin.copy:
        dest: "{out}"
        mode: "0644"
        content: >-
          {{{{ (__gateway_manifests + __model_routing_manifests + __kuadrant_manifests + __policies_manifests)
          | to_json }}}}
"""

BROKEN_PLAY = """
- name: Policies with a broken tier table
  hosts: localhost
  gather_facts: false
  roles:
    - role: tokenlabs.platform.versions
    - role: tokenlabs.platform.policies
      policies_namespace: "{namespace}"
      policies_wait_for_status: false
      policies_tiers:
        free: {{requests_per_minute: -5, tokens_per_day: 100}}
        pro: {{requests_per_fortnight: 10}}
"""


def _playbook(cluster: Cluster, tmp: Path, text: str, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    play = tmp / f"play-{uuid.uuid4().hex[:6]}.yml"
    play.write_text(text)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(REPO_ROOT / "molecule" / "inventory.yml"),
            "-e",
            json.dumps(extra),
            str(play),
        ],
        cwd=REPO_ROOT,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def namespaces(k8s_cluster: Cluster) -> Iterator[dict[int, str]]:
    core = client.CoreV1Api(k8s_cluster.api)
    names = {tiers: f"t-pm-{tiers}-{uuid.uuid4().hex[:6]}" for tiers in TIERS}
    for name in names.values():
        core.create_namespace({"metadata": {"name": name, "labels": {"tokenlabs.io/test": "true"}}})
    yield names
    for name in names.values():
        core.delete_namespace(name)


@pytest.fixture(scope="module")
def rendered(
    k8s_cluster: Cluster, namespaces: dict[int, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[int, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("manifests")
    plays = []
    outputs = {}
    for tiers in TIERS:
        out = tmp / f"{tiers}.json"
        outputs[tiers] = out
        plays.append(RENDER_PLAY.format(tiers=tiers, namespace=namespaces[tiers], out=out))
    extra = {"models": MODELS, "tiers_3": THREE_TIERS, "tiers_5": FIVE_TIERS}
    proc = _playbook(k8s_cluster, tmp, "---\n" + "\n".join(plays), extra)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return {tiers: json.loads(path.read_text()) for tiers, path in outputs.items()}


@pytest.mark.usefixtures("kuadrant_crds")
@pytest.mark.parametrize("tiers", TIERS, ids=[f"{t}tiers" for t in TIERS])
def test_server_accepts_every_manifest(
    k8s_cluster: Cluster,
    namespaces: dict[int, str],
    rendered: dict[int, list[dict[str, Any]]],
    tiers: int,
) -> None:
    dyn = dynamic.DynamicClient(k8s_cluster.api)
    namespace = namespaces[tiers]
    objects = [o for o in rendered[tiers] if o["kind"] != "Namespace"]
    kinds = {o["kind"] for o in objects}
    expected = {
        "Gateway",
        "HTTPRoute",
        "HTTPRouteFilter",
        "BackendTrafficPolicy",
        "Kuadrant",
        "AuthPolicy",
        "RateLimitPolicy",
        "TokenRateLimitPolicy",
        "Secret",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "AIGatewayRoute",
    }
    assert kinds == expected
    rejected = []
    for obj in objects:
        assert obj["metadata"]["namespace"] == namespace
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            resource.create(body=obj, namespace=namespace)
        except ApiException as exc:
            rejected.append(f"{obj['kind']} {obj['metadata']['name']}: {exc.body}")
    assert rejected == []

    rlp = dyn.resources.get(api_version="kuadrant.io/v1", kind="RateLimitPolicy").get(
        name="tokenlabs-request-limits", namespace=namespace
    )
    assert len(rlp.spec.limits.to_dict()) == tiers
    # The model route is Envoy AI Gateway's: an AIGatewayRoute it turns into the HTTPRoute of the same name.
    routes = [
        o for o in objects if o["kind"] in ("HTTPRoute", "AIGatewayRoute") and o["metadata"]["name"] == "tokenlabs-llm"
    ]
    assert [r["kind"] for r in routes] == ["AIGatewayRoute"]
    pools = [ref["name"] for rule in routes[0]["spec"]["rules"] for ref in rule["backendRefs"]]
    assert pools == [m["pool"] for m in MODELS]


def test_nothing_of_ours_takes_the_gateways_extension_policy_slot(rendered: dict[int, list[dict[str, Any]]]) -> None:
    """Issue 11.2: Envoy Gateway takes one EnvoyExtensionPolicy per Gateway, and Kuadrant's Wasm policy needs it."""
    for objects in rendered.values():
        assert [o["metadata"]["name"] for o in objects if o["kind"] == "EnvoyExtensionPolicy"] == []


@pytest.mark.usefixtures("kuadrant_crds")
def test_broken_tier_table_fails_before_anything_is_applied(
    k8s_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    proc = _playbook(k8s_cluster, tmp_path, BROKEN_PLAY.format(namespace=namespace), {})
    assert proc.returncode != 0
    assert "requests_per_minute must be a positive whole number" in proc.stdout
    assert "unknown quota 'requests_per_fortnight'" in proc.stdout
    dyn = dynamic.DynamicClient(k8s_cluster.api)
    for api_version, kind in [
        ("kuadrant.io/v1", "AuthPolicy"),
        ("kuadrant.io/v1", "RateLimitPolicy"),
        ("kuadrant.io/v1alpha1", "TokenRateLimitPolicy"),
    ]:
        assert dyn.resources.get(api_version=api_version, kind=kind).get(namespace=namespace).items == []
