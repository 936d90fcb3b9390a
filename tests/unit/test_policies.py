"""The tier table becomes Kuadrant policies with exactly the table's numbers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_TIERS = REPO_ROOT / "inventory" / "lab" / "group_vars" / "all" / "tiers.yml"


def _load_filters() -> ModuleType:
    spec = importlib.util.spec_from_file_location("platform_filters", REPO_ROOT / "plugins" / "filter" / "platform.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = _load_filters()


@pytest.fixture(scope="module")
def seed_tiers() -> dict[str, Any]:
    return yaml.safe_load(SEED_TIERS.read_text())["tokenlabs_tiers"]


def _rates(policy: dict[str, Any], limit: str) -> dict[str, int]:
    return {r["window"]: r["limit"] for r in policy["spec"]["limits"][limit]["rates"]}


# The seed README's table: tier -> (requests/min, requests/day, tokens/min, tokens/day).
SEED_TABLE = {
    "free": (10, 100, 5_000, 50_000),
    "pro": (100, 5_000, 50_000, 500_000),
    "enterprise": (1_000, 50_000, 500_000, 5_000_000),
}


@pytest.mark.parametrize("tier", sorted(SEED_TABLE))
def test_seed_numbers_per_tier_and_window(seed_tiers: dict[str, Any], tier: str) -> None:
    rpm, rpd, tpm, tpd = SEED_TABLE[tier]
    rlp = filters.kuadrant_rate_limit_policy(seed_tiers, "r", "ns", "gw")
    trlp = filters.kuadrant_token_rate_limit_policy(seed_tiers, "t", "ns", "gw")
    assert _rates(rlp, f"{tier}-requests") == {"1m": rpm, "24h": rpd}
    assert _rates(trlp, f"{tier}-tokens") == {"1m": tpm, "24h": tpd}


def test_seed_policies_cover_every_tier_and_count_per_tenant(seed_tiers: dict[str, Any]) -> None:
    rlp = filters.kuadrant_rate_limit_policy(seed_tiers, "r", "ns", "gw")
    trlp = filters.kuadrant_token_rate_limit_policy(seed_tiers, "t", "ns", "gw")
    assert sorted(rlp["spec"]["limits"]) == ["enterprise-requests", "free-requests", "pro-requests"]
    assert sorted(trlp["spec"]["limits"]) == ["enterprise-tokens", "free-tokens", "pro-tokens"]
    for limit in [*rlp["spec"]["limits"].values(), *trlp["spec"]["limits"].values()]:
        assert limit["counters"] == [{"expression": "auth.identity.userid"}]
    assert rlp["spec"]["targetRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}


def test_models_discovery_is_exempt_and_both_completion_paths_are_metered(seed_tiers: dict[str, Any]) -> None:
    rlp = filters.kuadrant_rate_limit_policy(seed_tiers, "r", "ns", "gw")
    trlp = filters.kuadrant_token_rate_limit_policy(seed_tiers, "t", "ns", "gw")
    free = rlp["spec"]["limits"]["free-requests"]["when"]
    assert free == [
        {"predicate": '!request.url_path.startsWith("/v1/models")'},
        {"predicate": 'auth.identity.groups == "free"'},
    ]
    paths = trlp["spec"]["limits"]["pro-tokens"]["when"][0]["predicate"]
    assert paths == 'request.url_path == "/v1/chat/completions" || request.url_path == "/v1/completions"'


def test_auth_policy_admits_only_known_tiers(seed_tiers: dict[str, Any]) -> None:
    labels = {"app": "token-labs", "authorino.kuadrant.io/managed-by": "authorino"}
    policy = filters.kuadrant_auth_policy(seed_tiers, "a", "ns", "gw", labels)
    rules = policy["spec"]["rules"]
    key = rules["authentication"]["tenant-api-keys"]
    assert key["apiKey"]["selector"]["matchLabels"] == labels
    assert key["credentials"]["authorizationHeader"]["prefix"] == "Bearer"
    predicate = rules["authorization"]["known-tier"]["patternMatching"]["patterns"][0]["predicate"]
    assert predicate.endswith('in ["free", "pro", "enterprise"]')
    identity = rules["response"]["success"]["filters"]["identity"]["json"]["properties"]
    assert set(identity) == {"groups", "userid"}


def test_auth_policy_refuses_a_previous_key_from_the_second_it_expires(seed_tiers: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location("tenant_utils", REPO_ROOT / "plugins" / "module_utils" / "tenant.py")
    assert spec is not None and spec.loader is not None
    tenant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tenant)
    policy = filters.kuadrant_auth_policy(seed_tiers, "a", "ns", "gw", {"app": "token-labs"})
    rule = policy["spec"]["rules"]["authorization"]["key-not-expired"]
    (pattern,) = rule["patternMatching"]["patterns"]
    annotation = 'auth.identity.metadata.annotations["tokenlabs.io/expires-at"]'
    assert pattern["predicate"] == (
        '!("tokenlabs.io/expires-at" in auth.identity.metadata.annotations) || '
        f"int(request.time.seconds) < int(timestamp({annotation}))"
    )
    # The annotation the rule reads is the one the tenant modules write.
    assert filters.KEY_EXPIRY_ANNOTATION == tenant.EXPIRES_ANNOTATION


def test_a_new_tier_is_one_entry(seed_tiers: dict[str, Any]) -> None:
    tiers = {**seed_tiers, "research": {"tokens_per_hour": 7, "requests_per_second": 3}}
    rlp = filters.kuadrant_rate_limit_policy(tiers, "r", "ns", "gw")
    trlp = filters.kuadrant_token_rate_limit_policy(tiers, "t", "ns", "gw")
    assert _rates(rlp, "research-requests") == {"1s": 3}
    assert _rates(trlp, "research-tokens") == {"1h": 7}


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"free": {"requests_per_minute": -1}}, "must be a positive whole number"),
        ({"free": {"requests_per_minute": 0}}, "must be a positive whole number"),
        ({"free": {"requests_per_minute": True}}, "must be a positive whole number"),
        ({"free": {"requests_per_minute": "10"}}, "must be a positive whole number"),
        ({"free": {"requests_per_week": 10}}, "unknown quota 'requests_per_week'"),
        ({"free": {"bytes_per_day": 10}}, "unknown quota 'bytes_per_day'"),
        ({"Free": {"requests_per_day": 10}}, "name must be lower-case"),
        ({"free": {}}, "needs at least one quota"),
        ({}, "non-empty mapping"),
    ],
)
def test_broken_tables_are_rejected(tiers: dict[str, Any], message: str) -> None:
    errors = filters.tier_table_errors(tiers)
    assert any(message in e for e in errors), errors
    with pytest.raises(filters.AnsibleFilterError, match="invalid tier table"):
        filters.kuadrant_rate_limit_policy(tiers, "r", "ns", "gw")


def test_seed_table_is_valid(seed_tiers: dict[str, Any]) -> None:
    assert filters.tier_table_errors(seed_tiers) == []


def test_model_list_answers_every_model_once() -> None:
    body = json.loads(filters.openai_model_list(["a/b", "c", "a/b"]))
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["a/b", "c"]
    assert {m["object"] for m in body["data"]} == {"model"}


def test_site_yml_stops_on_a_broken_tier_table_before_its_first_phase(tmp_path: Path) -> None:
    """The first play of site.yml refuses the table, so no phase (CRDs, charts, policies) runs on it."""
    extra = tmp_path / "tiers.json"
    extra.write_text(json.dumps({"tokenlabs_tiers": {"free": {"requests_per_minute": -1, "tokens_per_fortnight": 5}}}))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-e", f"@{extra}", "--tags", "never"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "Invalid tier table" in proc.stdout
    assert "requests_per_minute must be a positive whole number" in proc.stdout
    assert "Boilerplate | Pinned versions" not in proc.stdout


def _extension_policy(message: str, gateway: str = "tokenlabs-gateway") -> dict[str, Any]:
    return {
        "metadata": {"name": "kuadrant-tokenlabs-gateway"},
        "spec": {"wasm": [{"code": {"type": "Image", "image": {"url": "oci://quay.io/kuadrant/wasm-shim:v0.14.1"}}}]},
        "status": {
            "ancestors": [
                {
                    "ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway},
                    "conditions": [{"type": "Accepted", "status": "False", "reason": "Invalid", "message": message}],
                }
            ]
        },
    }


def test_a_wasm_fetch_failure_is_told_apart_from_any_other_refusal() -> None:
    # As Envoy Gateway v1.8.3 words it in the lab.
    fetch = (
        'Wasm: could not fetch Wasm OCI image: could not fetch manifest: Get "https://quay.io/v2/": dial tcp: '
        "lookup quay.io on [::1]:53: read udp [::1]:40164->[::1]:53: read: connection refused."
    )
    refused = filters.wasm_fetch_failures([_extension_policy(fetch)], "tokenlabs-gateway")
    assert refused == ["kuadrant-tokenlabs-gateway"]
    # What it says once it has stopped retrying the image.
    given_up = "Wasm: failed to get Wasm module oci://quay.io/kuadrant/wasm-shim:v0.14.1 after 10 attempts."
    refused = filters.wasm_fetch_failures([_extension_policy(given_up)], "tokenlabs-gateway")
    assert refused == ["kuadrant-tokenlabs-gateway"]
    assert filters.wasm_fetch_failures([_extension_policy(fetch, "other")], "tokenlabs-gateway") == []
    conflicted = "Unable to target Gateway tokenlabs-gateway, another EnvoyExtensionPolicy has already attached to it"
    assert filters.wasm_fetch_failures([_extension_policy(conflicted)], "tokenlabs-gateway") == []
    elsewhere = fetch.replace("quay.io", "registry.example")
    assert filters.wasm_fetch_failures([_extension_policy(elsewhere)], "tokenlabs-gateway") == []
