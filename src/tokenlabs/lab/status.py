"""The conditions the real controllers set, object by object: what the lab proves after a converge.

One row per object and condition (per parent or ancestor for routes and Envoy Gateway policies), with the
controller's reason and message, and whether it holds for the object's current generation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kubernetes import client

from tokenlabs.lab.report import custom_objects


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    conditions: tuple[str, ...]
    # Where the conditions live: the object's own status, or one entry per route parent / policy ancestor.
    scope: str = "object"


KINDS: tuple[Kind, ...] = (
    Kind("gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass", ("Accepted",)),
    Kind("gateway.networking.k8s.io", "v1", "gateways", "Gateway", ("Accepted", "Programmed")),
    Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", ("Accepted", "ResolvedRefs"), "parents"),
    Kind(
        "gateway.envoyproxy.io",
        "v1alpha1",
        "envoyextensionpolicies",
        "EnvoyExtensionPolicy",
        ("Accepted",),
        "ancestors",
    ),
    Kind("gateway.envoyproxy.io", "v1alpha1", "envoypatchpolicies", "EnvoyPatchPolicy", ("Accepted",), "ancestors"),
    Kind(
        "gateway.envoyproxy.io",
        "v1alpha1",
        "backendtrafficpolicies",
        "BackendTrafficPolicy",
        ("Accepted",),
        "ancestors",
    ),
    Kind("gateway.envoyproxy.io", "v1alpha1", "securitypolicies", "SecurityPolicy", ("Accepted",), "ancestors"),
    Kind("aigateway.envoyproxy.io", "v1beta1", "aigatewayroutes", "AIGatewayRoute", ("Accepted",)),
    Kind("kuadrant.io", "v1beta1", "kuadrants", "Kuadrant", ("Ready",)),
    Kind("limitador.kuadrant.io", "v1alpha1", "limitadors", "Limitador", ("Ready",)),
    Kind("operator.authorino.kuadrant.io", "v1beta1", "authorinos", "Authorino", ("Ready",)),
    Kind("authorino.kuadrant.io", "v1beta3", "authconfigs", "AuthConfig", ("Ready",)),
    Kind("kuadrant.io", "v1", "authpolicies", "AuthPolicy", ("Accepted", "Enforced")),
    Kind("kuadrant.io", "v1", "ratelimitpolicies", "RateLimitPolicy", ("Accepted", "Enforced")),
    Kind("kuadrant.io", "v1alpha1", "tokenratelimitpolicies", "TokenRateLimitPolicy", ("Accepted", "Enforced")),
)


@dataclass(frozen=True)
class Row:
    kind: str
    namespace: str
    name: str
    condition: str
    status: str
    reason: str
    message: str
    ok: bool
    parent: str = ""

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        parent = f" (parent {self.parent})" if self.parent else ""
        return f"{self.kind} {where}{parent}: {self.condition}={self.status} {self.reason} {self.message}".rstrip()


def _rows(kind: Kind, obj: dict[str, Any], conditions: list[dict[str, Any]], parent: str) -> list[Row]:
    meta = obj["metadata"]
    namespace, generation = meta.get("namespace", ""), meta.get("generation", 0)
    found = {c.get("type"): c for c in conditions}
    rows = []
    for wanted in kind.conditions:
        cond = found.get(wanted)
        if cond is None:
            status, reason, message, ok = "Unknown", "NoStatus", "the controller has not reported it", False
        else:
            current = cond.get("observedGeneration", generation) >= generation
            message = str(cond.get("message", ""))
            if not current:
                message = f"(stale: generation {cond.get('observedGeneration')} < {generation}) {message}"
            status, reason = str(cond.get("status")), str(cond.get("reason", ""))
            ok = status == "True" and current
        rows.append(Row(kind.kind, namespace, meta["name"], wanted, status, reason, message, ok, parent))
    return rows


def _parent_name(ref: dict[str, Any]) -> str:
    name = f"{ref.get('namespace', '')}/{ref.get('name', '')}".lstrip("/")
    return f"{ref.get('kind', 'Gateway')} {name}" + (f"#{ref['sectionName']}" if ref.get("sectionName") else "")


def collect(api: client.ApiClient, kinds: tuple[Kind, ...] = KINDS) -> list[Row]:
    """Every condition of every object of ``kinds`` on the cluster."""
    rows: list[Row] = []
    for kind in kinds:
        for obj in custom_objects(api, kind.group, kind.version, kind.plural):
            status = obj.get("status") or {}
            if kind.scope == "object":
                rows += _rows(kind, obj, status.get("conditions") or [], "")
                continue
            entries = status.get(kind.scope) or []
            if not entries:
                meta = obj["metadata"]
                rows.append(
                    Row(
                        kind.kind,
                        meta.get("namespace", ""),
                        meta["name"],
                        "/".join(kind.conditions),
                        "Unknown",
                        "NoStatus",
                        f"no {kind.scope} in status: no controller took it",
                        False,
                    )
                )
            for entry in entries:
                conditions = entry.get("conditions") or []
                # Policy controllers add entries of their own (kuadrant.io/AuthPolicyAffected, ...): not ours to judge.
                if conditions and not any(c.get("type") in kind.conditions for c in conditions):
                    continue
                ref = entry.get("parentRef") or entry.get("ancestorRef") or {}
                rows += _rows(kind, obj, conditions, _parent_name(ref))
    return rows


def failures(rows: list[Row]) -> list[Row]:
    return [row for row in rows if not row.ok]


def as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
