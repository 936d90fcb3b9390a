"""Filters that turn the inventory's tier table and models list into gateway manifests.

The tier table (``tokenlabs_tiers``) maps a tier name to quotas named ``<metric>_per_<window>``,
for example ``requests_per_minute: 10``. Everything Kuadrant enforces is generated from it, so
the table is validated first: a typo in a window or a negative limit must stop the run before
a policy that silently allows everything reaches the cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
  name: platform
  short_description: Tier-table and models-list filters for the gateway roles
  description:
    - C(tier_table_errors) lists what is wrong with a tier table (empty list when valid).
    - C(kuadrant_auth_policy), C(kuadrant_rate_limit_policy) and C(kuadrant_token_rate_limit_policy)
      render the Kuadrant policies for a validated tier table.
    - C(openai_model_list) renders the JSON body of C(GET /v1/models) for a list of model ids.
    - C(wasm_fetch_failures) names the EnvoyExtensionPolicies whose Wasm image Envoy Gateway could not fetch.
"""

# Kuadrant/Limitador window strings for each window name a tier table may use.
WINDOWS: dict[str, str] = {"second": "1s", "minute": "1m", "hour": "1h", "day": "24h"}
METRICS: tuple[str, ...] = ("requests", "tokens")
_QUOTA_KEY = re.compile(r"^(?P<metric>[a-z]+)_per_(?P<window>[a-z]+)\Z")
# Tier names end up in limit names and CEL string literals: keep them to DNS-label characters.
_TIER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?\Z")

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
TIER_ANNOTATION = "kuadrant.io/groups"
USER_ID_ANNOTATION = "secret.kuadrant.io/user-id"
TIER_ATTRIBUTE = "auth.identity.groups"
USER_ID_ATTRIBUTE = "auth.identity.userid"
# Set by the tenant modules on a previous key in its grace period (RFC 3339, whole seconds, UTC).
KEY_EXPIRY_ANNOTATION = "tokenlabs.io/expires-at"


def tier_table_errors(tiers: Any) -> list[str]:
    """Every problem in ``tiers``, worded for the operator; empty when the table is usable."""
    if not isinstance(tiers, Mapping) or not tiers:
        return ["the tier table must be a non-empty mapping of tier name to quotas"]
    errors: list[str] = []
    for tier, quotas in tiers.items():
        if not isinstance(tier, str) or not _TIER_NAME.match(tier):
            errors.append(f"tier {tier!r}: name must be lower-case letters, digits and '-' (at most 32)")
        if not isinstance(quotas, Mapping) or not quotas:
            errors.append(f"tier {tier!r}: needs at least one quota such as requests_per_minute")
            continue
        for key, value in quotas.items():
            match = _QUOTA_KEY.match(str(key))
            if not match or match["metric"] not in METRICS or match["window"] not in WINDOWS:
                errors.append(
                    f"tier {tier!r}: unknown quota {key!r}; use <{'|'.join(METRICS)}>_per_<{'|'.join(WINDOWS)}>"
                )
            # bool is an int subclass: `true` is not a limit.
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                errors.append(f"tier {tier!r}: {key} must be a positive whole number, not {value!r}")
    return errors


def _validated(tiers: Any) -> Mapping[str, Mapping[str, int]]:
    errors = tier_table_errors(tiers)
    if errors:
        raise AnsibleFilterError("invalid tier table: " + "; ".join(errors))
    return tiers


def tier_rates(tiers: Any, metric: str) -> dict[str, list[dict[str, Any]]]:
    """Per tier, the Kuadrant ``rates`` for one metric, shortest window first; tiers without it are left out."""
    if metric not in METRICS:
        raise AnsibleFilterError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    order = list(WINDOWS)
    result: dict[str, list[dict[str, Any]]] = {}
    for tier, quotas in _validated(tiers).items():
        rates = []
        for window in order:
            key = f"{metric}_per_{window}"
            if key in quotas:
                rates.append({"limit": int(quotas[key]), "window": WINDOWS[window]})
        if rates:
            result[tier] = rates
    return result


def _cel_string(value: str) -> str:
    return json.dumps(value)


def _metadata(name: str, namespace: str, labels: Mapping[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _gateway_ref(gateway: str) -> dict[str, str]:
    return {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": gateway}


def _tier_predicate(tier: str) -> dict[str, str]:
    return {"predicate": f"{TIER_ATTRIBUTE} == {_cel_string(tier)}"}


def kuadrant_auth_policy(
    tiers: Any,
    name: str,
    namespace: str,
    gateway: str,
    tenant_labels: Mapping[str, str],
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """AuthPolicy: API key from ``Authorization: Bearer``, known tiers only, tier and user id exposed to limiters."""
    known = ", ".join(_cel_string(t) for t in _validated(tiers))
    annotations = "auth.identity.metadata.annotations"
    tier_of_key = f"{annotations}[{_cel_string(TIER_ANNOTATION)}]"
    user_of_key = f"{annotations}[{_cel_string(USER_ID_ANNOTATION)}]"
    expiry = _cel_string(KEY_EXPIRY_ANNOTATION)
    # request.time is the proxy's (Envoy's or Kuadrant's Wasm filter's) time of the request, in Authorino's
    # authorization JSON as {seconds, nanos}. A key without an expiry is never compared; one with an expiry is
    # refused from that second on, and refused too when the request carries no time (the comparison fails).
    not_expired = f"!({expiry} in {annotations}) || int(request.time.seconds) < int(timestamp({annotations}[{expiry}]))"
    return {
        "apiVersion": "kuadrant.io/v1",
        "kind": "AuthPolicy",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "targetRef": _gateway_ref(gateway),
            "rules": {
                "authentication": {
                    "tenant-api-keys": {
                        "apiKey": {"selector": {"matchLabels": dict(tenant_labels)}},
                        "credentials": {"authorizationHeader": {"prefix": "Bearer"}},
                    }
                },
                "authorization": {
                    # A key whose tier is not in the table would otherwise pass with no limit at all.
                    "known-tier": {"patternMatching": {"patterns": [{"predicate": f"{tier_of_key} in [{known}]"}]}},
                    # A previous key stops working the second it expires, whenever its Secret is removed.
                    "key-not-expired": {"patternMatching": {"patterns": [{"predicate": not_expired}]}},
                },
                "response": {
                    "success": {
                        "filters": {
                            "identity": {
                                "json": {
                                    "properties": {
                                        "groups": {"expression": tier_of_key},
                                        "userid": {"expression": user_of_key},
                                    }
                                }
                            }
                        }
                    }
                },
            },
        },
    }


def _limits(tiers: Any, metric: str, suffix: str, scope: Sequence[Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    return {
        f"{tier}-{suffix}": {
            "rates": rates,
            "when": [*(dict(p) for p in scope), _tier_predicate(tier)],
            "counters": [{"expression": USER_ID_ATTRIBUTE}],
        }
        for tier, rates in tier_rates(tiers, metric).items()
    }


def kuadrant_rate_limit_policy(
    tiers: Any,
    name: str,
    namespace: str,
    gateway: str,
    *,
    exempt_path_prefixes: Sequence[str] = ("/v1/models",),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """RateLimitPolicy: requests per tier and window, counted per tenant, discovery paths exempt."""
    scope = [{"predicate": f"!request.url_path.startsWith({_cel_string(p)})"} for p in exempt_path_prefixes]
    return {
        "apiVersion": "kuadrant.io/v1",
        "kind": "RateLimitPolicy",
        "metadata": _metadata(name, namespace, labels),
        "spec": {"targetRef": _gateway_ref(gateway), "limits": _limits(tiers, "requests", "requests", scope)},
    }


def kuadrant_token_rate_limit_policy(
    tiers: Any,
    name: str,
    namespace: str,
    gateway: str,
    *,
    metered_paths: Sequence[str] = ("/v1/chat/completions", "/v1/completions"),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """TokenRateLimitPolicy: ``usage.total_tokens`` per tier and window on the completion endpoints."""
    if not metered_paths:
        raise AnsibleFilterError("metered_paths must name at least one path")
    paths = " || ".join(f"request.url_path == {_cel_string(p)}" for p in metered_paths)
    return {
        "apiVersion": "kuadrant.io/v1alpha1",
        "kind": "TokenRateLimitPolicy",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "targetRef": _gateway_ref(gateway),
            "limits": _limits(tiers, "tokens", "tokens", [{"predicate": paths}]),
        },
    }


def openai_model_list(model_ids: Sequence[str], owned_by: str = "tokenlabs") -> str:
    """The JSON an OpenAI client expects from ``GET /v1/models``, one entry per id, in order, without duplicates."""
    seen: list[str] = []
    for model_id in model_ids:
        if not isinstance(model_id, str) or not model_id:
            raise AnsibleFilterError(f"model ids must be non-empty strings, not {model_id!r}")
        if model_id not in seen:
            seen.append(model_id)
    data = [{"id": m, "object": "model", "created": 0, "owned_by": owned_by} for m in seen]
    return json.dumps({"object": "list", "data": data}, separators=(",", ":"))


# Envoy Gateway v1.8's wasm cache, when the image's registry cannot be reached or refuses it, and once it has given
# up on that image after repeated failures.
_WASM_FETCH_FAILED = ("could not fetch Wasm OCI image", "failed to get Wasm module")


def wasm_fetch_failures(resources: Sequence[Mapping[str, Any]], gateway: str) -> list[str]:
    """EnvoyExtensionPolicies Envoy Gateway refuses on ``gateway`` because it could not fetch their Wasm image.

    Only Envoy Gateway's fetch failures ("could not fetch Wasm OCI image", or "failed to get Wasm module" once it
    stops retrying) naming the registry of the policy's own image count, so any other reason stays a failure.
    """
    names = []
    for policy in resources:
        registries = [
            w["code"]["image"]["url"].removeprefix("oci://").split("/", 1)[0]
            for w in (policy.get("spec") or {}).get("wasm") or []
            if (w.get("code") or {}).get("type") == "Image" and (w["code"].get("image") or {}).get("url")
        ]
        for ancestor in (policy.get("status") or {}).get("ancestors") or []:
            ref = ancestor.get("ancestorRef") or {}
            if ref.get("kind", "Gateway") != "Gateway" or ref.get("name") != gateway:
                continue
            refused = [
                c
                for c in ancestor.get("conditions") or []
                if c.get("type") == "Accepted"
                and c.get("status") == "False"
                and any(failed in (c.get("message") or "") for failed in _WASM_FETCH_FAILED)
                and any(registry in c["message"] for registry in registries)
            ]
            if refused:
                names.append(policy["metadata"]["name"])
    return names


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "tier_table_errors": tier_table_errors,
            "tier_rates": tier_rates,
            "kuadrant_auth_policy": kuadrant_auth_policy,
            "kuadrant_rate_limit_policy": kuadrant_rate_limit_policy,
            "kuadrant_token_rate_limit_policy": kuadrant_token_rate_limit_policy,
            "openai_model_list": openai_model_list,
            "wasm_fetch_failures": wasm_fetch_failures,
        }
