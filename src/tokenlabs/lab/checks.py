"""What the real control planes decided, checked against what the platform asked for.

- every controller-set condition (``tokenlabs.lab.status``);
- Authorino's decision for each tenant key on every route rule Kuadrant protects (the AuthConfig per rule),
  asked over ext_authz as Kuadrant's Wasm filter asks: allowed, with the tenant's user id and tier as identity;
  a key no tenant holds is refused;
- the limits kuadrant-operator wrote into Limitador, against the tier table.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tokenlabs.lab import authcheck, status
from tokenlabs.lab.report import custom_objects

KUADRANT_NAMESPACE = "kuadrant-system"
ROUTE_ANNOTATION = "HTTPRouteRule.gateway.networking.k8s.io"
_WINDOWS = {"minute": 60, "day": 86400}


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    ok: bool
    detail: str


def authorino_address(api: client.ApiClient) -> str | None:
    """host:port of Authorino's gRPC ext_authz Service, as the operator names it after the Authorino CR."""
    core = client.CoreV1Api(api)
    for authorino in custom_objects(api, "operator.authorino.kuadrant.io", "v1beta1", "authorinos", KUADRANT_NAMESPACE):
        name = f"{authorino['metadata']['name']}-authorino-authorization"
        try:
            svc = core.read_namespaced_service(name, KUADRANT_NAMESPACE)
        except ApiException:
            continue
        port = next((p.port for p in svc.spec.ports if p.name == "grpc"), 50051)
        return f"{svc.spec.cluster_ip}:{port}"
    return None


def decisions(api: client.ApiClient, keys: dict[str, str], tiers: dict[str, str]) -> list[Finding]:
    """Authorino's verdict per tenant (``keys``: id -> key; ``tiers``: id -> tier) on every protected route rule."""
    address = authorino_address(api)
    if address is None:
        return [Finding("authorino", "ext_authz", False, "no Authorino authorization Service")]
    configs = [
        (c["metadata"]["name"], c["metadata"].get("annotations", {}).get(ROUTE_ANNOTATION, c["metadata"]["name"]))
        for c in custom_objects(api, "authorino.kuadrant.io", "v1beta3", "authconfigs", KUADRANT_NAMESPACE)
    ]
    if not configs:
        return [Finding("authorino", "ext_authz", False, "no AuthConfig: Kuadrant has not translated the AuthPolicy")]
    # A key of the tenants' format that no tenant holds.
    probes = {**keys, "(unknown key)": "tlabs_sk_" + secrets.token_hex(24)}
    findings = []
    for tenant, key in probes.items():
        wrong: list[str] = []
        for config, rule in configs:
            request = authcheck.check_request(
                config, "POST", "/v1/chat/completions", "gateway.lab", {"authorization": f"Bearer {key}"}
            )
            try:
                verdict = authcheck.check(address, request)
            except Exception as exc:  # any transport failure is the finding itself
                wrong.append(f"{rule}: {exc}")
                continue
            identity = verdict.metadata.get("identity", {})
            if tenant not in keys:
                if verdict.allowed:
                    wrong.append(f"{rule}: allowed as {identity}")
            elif not verdict.allowed:
                wrong.append(f"{rule}: refused ({verdict.http_status})")
            elif identity.get("userid") != tenant or identity.get("groups") != tiers.get(tenant):
                wrong.append(f"{rule}: identity {identity}, want user {tenant} tier {tiers.get(tenant)}")
        expect = "refused" if tenant not in keys else f"allowed as {tenant} ({tiers.get(tenant)})"
        detail = f"{expect} on {len(configs) - len(wrong)}/{len(configs)} route rules" + (
            "; " + "; ".join(wrong) if wrong else ""
        )
        findings.append(Finding("authorino", tenant, not wrong, detail))
    return findings


def limited_routes(api: client.ApiClient) -> set[str]:
    """``namespace/name`` of every HTTPRoute on a Gateway that a RateLimitPolicy or TokenRateLimitPolicy targets."""
    gateways = set()
    for version, plural in (("v1", "ratelimitpolicies"), ("v1alpha1", "tokenratelimitpolicies")):
        for policy in custom_objects(api, "kuadrant.io", version, plural):
            ref = policy.get("spec", {}).get("targetRef") or {}
            if ref.get("kind") == "Gateway":
                gateways.add((policy["metadata"]["namespace"], ref.get("name")))
    routes = set()
    for route in custom_objects(api, "gateway.networking.k8s.io", "v1", "httproutes"):
        namespace = route["metadata"]["namespace"]
        for parent in route.get("spec", {}).get("parentRefs") or []:
            if (
                parent.get("kind", "Gateway") == "Gateway"
                and (parent.get("namespace", namespace), parent.get("name")) in gateways
            ):
                routes.add(f"{namespace}/{route['metadata']['name']}")
    return routes


def limits(api: client.ApiClient, table: dict[str, dict[str, int]]) -> list[Finding]:
    """Limitador's limits, by tier, kind and window, against the tier table.

    Kuadrant keys every counter by the HTTPRoute it counts on, so the table holds per tenant on each route of the
    Gateway: each limit must be there, with the table's number, once for every route of the Gateway.
    """
    routes = limited_routes(api)
    found: dict[tuple[str, int], set[int]] = defaultdict(set)
    scopes: dict[tuple[str, int], set[str]] = defaultdict(set)
    for limitador in custom_objects(api, "limitador.kuadrant.io", "v1alpha1", "limitadors", KUADRANT_NAMESPACE):
        for limit in limitador.get("spec", {}).get("limits") or []:
            found[(limit.get("name", ""), int(limit.get("seconds", 0)))].add(int(limit.get("max_value", -1)))
            scopes[(limit.get("name", ""), int(limit.get("seconds", 0)))].add(limit.get("namespace", ""))
    findings = []
    for tier, quotas in sorted(table.items()):
        for kind in ("requests", "tokens"):
            for window, seconds in _WINDOWS.items():
                want = quotas.get(f"{kind}_per_{window}")
                got = found.get((f"{tier}-{kind}", seconds), set())
                where = scopes.get((f"{tier}-{kind}", seconds), set())
                missing = ", ".join(sorted(routes - where))
                counted = ", ".join(sorted(where)) or "nowhere"
                findings.append(
                    Finding(
                        "limitador",
                        f"{tier} {kind}/{window}",
                        got == {want} and bool(routes) and where == routes,
                        f"want {want}, Limitador has {sorted(got) or 'none'}; counted per tenant on {counted}"
                        + (f"; not on {missing}" if missing else ""),
                    )
                )
    return findings


def limit_names_in_metrics(api: client.ApiClient) -> list[Finding]:
    """limitador-operator runs Limitador with --limit-name-in-labels, which usage reports need, for each Limitador."""
    findings = []
    apps = client.AppsV1Api(api)
    for limitador in custom_objects(api, "limitador.kuadrant.io", "v1alpha1", "limitadors", KUADRANT_NAMESPACE):
        name = f"limitador-{limitador['metadata']['name']}"
        try:
            deployment = apps.read_namespaced_deployment(name, KUADRANT_NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise
            findings.append(Finding("limitador-metrics", name, False, "no Deployment"))
            continue
        args = [a for c in deployment.spec.template.spec.containers for a in (c.command or []) + (c.args or [])]
        labelled = "--limit-name-in-labels" in args
        findings.append(
            Finding("limitador-metrics", name, labelled, f"counters {'carry' if labelled else 'lack'} limit_name")
        )
    return findings


def run(api: client.ApiClient, keys: dict[str, str], tiers: dict[str, str], table: dict[str, Any]) -> dict[str, Any]:
    rows = status.collect(api)
    found = decisions(api, keys, tiers) + limits(api, table) + limit_names_in_metrics(api)
    return {
        "ok": not status.failures(rows) and all(f.ok for f in found),
        "statuses": status.as_dicts(rows),
        "checks": [asdict(f) for f in found],
    }


def render(result: dict[str, Any]) -> str:
    lines = ["controller status:"]
    for row in result["statuses"]:
        mark = "ok  " if row["ok"] else "FAIL"
        where = f"{row['namespace']}/{row['name']}" if row["namespace"] else row["name"]
        parent = f" [{row['parent']}]" if row["parent"] else ""
        reason = "" if row["ok"] else f" {row['reason']}: {row['message']}"
        lines.append(f"  {mark} {row['kind']} {where}{parent} {row['condition']}={row['status']}{reason}")
    lines.append("decisions:")
    for found in result["checks"]:
        lines.append(f"  {'ok  ' if found['ok'] else 'FAIL'} {found['check']} {found['subject']}: {found['detail']}")
    return "\n".join(lines)
