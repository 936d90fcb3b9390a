"""What exists on a cluster after a converge: nodes, releases, gateway, routes, policies, tenants.

Tenant keys are never read into the report: only ids and tiers.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

TENANT_NAMESPACE = "kuadrant-system"
TENANT_SELECTOR = "app=token-labs"
TIER_ANNOTATION = "kuadrant.io/groups"
USER_ANNOTATION = "secret.kuadrant.io/user-id"


def custom_objects(
    api: client.ApiClient, group: str, version: str, plural: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """Every object of a custom resource (in ``namespace`` when given); none when its CRD is not installed."""
    custom = client.CustomObjectsApi(api)
    try:
        if namespace is None:
            listing = custom.list_cluster_custom_object(group, version, plural)
        else:
            listing = custom.list_namespaced_custom_object(group, version, namespace, plural)
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return list(listing.get("items", []))


def _ready(node: client.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def collect(kubeconfig: str) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    nodes = [
        {
            "name": n.metadata.name,
            "arch": n.metadata.labels.get("kubernetes.io/arch", ""),
            "role": n.metadata.labels.get("tokenlabs.io/role", ""),
            "gpus": (n.status.allocatable or {}).get("nvidia.com/gpu", "0"),
            "ready": _ready(n),
        }
        for n in core.list_node().items
    ]
    releases = [
        {
            "name": s.metadata.labels.get("name", ""),
            "namespace": s.metadata.namespace,
            "revision": s.metadata.labels.get("version", ""),
            "status": s.metadata.labels.get("status", ""),
        }
        for s in core.list_secret_for_all_namespaces(label_selector="owner=helm").items
        if s.metadata.labels.get("status") == "deployed"
    ]
    routes = [
        {
            "name": r["metadata"]["name"],
            "namespace": r["metadata"]["namespace"],
            "paths": sorted(
                {
                    m.get("path", {}).get("value", "")
                    for rule in r["spec"].get("rules", [])
                    for m in rule.get("matches", [])
                }
                - {""}
            ),
        }
        for r in custom_objects(api, "gateway.networking.k8s.io", "v1", "httproutes")
    ]
    policies = []
    for plural, version in (
        ("authpolicies", "v1"),
        ("ratelimitpolicies", "v1"),
        ("tokenratelimitpolicies", "v1alpha1"),
    ):
        for p in custom_objects(api, "kuadrant.io", version, plural):
            limits = p.get("spec", {}).get("limits", {})
            policies.append(
                {
                    "kind": p["kind"],
                    "name": p["metadata"]["name"],
                    "limits": {
                        name: [f"{r['limit']}/{r['window']}" for r in spec.get("rates", [])]
                        for name, spec in limits.items()
                    },
                }
            )
    try:
        secrets = core.list_namespaced_secret(TENANT_NAMESPACE, label_selector=TENANT_SELECTOR).items
    except ApiException as exc:
        if exc.status != 404:
            raise
        secrets = []
    tenants = sorted(
        {
            (s.metadata.annotations.get(USER_ANNOTATION, ""), s.metadata.annotations.get(TIER_ANNOTATION, ""))
            for s in secrets
            if s.metadata.annotations
        }
    )
    return {
        "nodes": nodes,
        "releases": releases,
        "gateways": [
            {
                "name": g["metadata"]["name"],
                "namespace": g["metadata"]["namespace"],
                "class": g["spec"]["gatewayClassName"],
            }
            for g in custom_objects(api, "gateway.networking.k8s.io", "v1", "gateways")
        ],
        "routes": routes,
        "policies": policies,
        "tenants": [{"id": t, "tier": tier} for t, tier in tenants],
    }


def render(report: dict[str, Any], tts_url: str | None = None) -> str:
    lines = ["", "nodes:"]
    lines += [
        f"  {n['name']:<12} {n['arch']:<6} role={n['role']:<11} gpus={n['gpus']} "
        + ("Ready" if n["ready"] else "NotReady")
        for n in report["nodes"]
    ]
    lines.append("helm releases:")
    lines += [f"  {r['namespace']}/{r['name']} (revision {r['revision']})" for r in report["releases"]] or ["  none"]
    lines.append("gateways:")
    lines += [f"  {g['namespace']}/{g['name']} class={g['class']}" for g in report["gateways"]] or ["  none"]
    lines.append("routes:")
    lines += [f"  {r['namespace']}/{r['name']}: {', '.join(r['paths'])}" for r in report["routes"]] or ["  none"]
    lines.append("policies:")
    for p in report["policies"]:
        limits = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["limits"].items())
        lines.append(f"  {p['kind']} {p['name']}" + (f" — {limits}" if limits else ""))
    if not report["policies"]:
        lines.append("  none")
    lines.append("tenants:")
    lines += [f"  {t['id']} ({t['tier']})" for t in report["tenants"]] or ["  none"]
    if tts_url:
        lines += [
            "speech service (CPU engine) on loopback:",
            f"  curl -s {tts_url}/v1/audio/speech -H 'Content-Type: application/json' \\",
            '    -d \'{"model": "tts-1", "input": "Hello from TokenLabs.", "voice": "alloy", '
            '"response_format": "wav"}\' -o hello.wav',
        ]
    else:
        lines += [
            "speech service: not running (install it with `make setup`, which adds services/magpie_tts,",
            "  or it was started with --no-tts)",
        ]
    return "\n".join(lines)
