"""The lab's Limitador check: the tier table's numbers, once on every route of the limited Gateway."""

from __future__ import annotations

from typing import Any

import pytest

from tokenlabs.lab import checks

TABLE = {"free": {"requests_per_minute": 10, "requests_per_day": 100, "tokens_per_minute": 5, "tokens_per_day": 50}}
ROUTES = ("tokenlabs-llm", "magpie-tts")


def _objects(routes_with_limits: tuple[str, ...], free_minute: int = 10) -> dict[str, list[dict[str, Any]]]:
    numbers = {**TABLE["free"], "requests_per_minute": free_minute}
    limits = [
        {"name": f"free-{kind}", "seconds": secs, "max_value": numbers[f"{kind}_per_{window}"], "namespace": f"ns/{r}"}
        for r in routes_with_limits
        for kind in ("requests", "tokens")
        for window, secs in (("minute", 60), ("day", 86400))
    ]
    gateway_ref = {"kind": "Gateway", "name": "gw"}
    return {
        "limitadors": [{"spec": {"limits": limits}}],
        "ratelimitpolicies": [{"metadata": {"namespace": "ns"}, "spec": {"targetRef": gateway_ref}}],
        "tokenratelimitpolicies": [],
        "httproutes": [
            {"metadata": {"namespace": "ns", "name": r}, "spec": {"parentRefs": [{"name": "gw"}]}} for r in ROUTES
        ]
        + [{"metadata": {"namespace": "ns", "name": "elsewhere"}, "spec": {"parentRefs": [{"name": "other"}]}}],
    }


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    objects: dict[str, list[dict[str, Any]]] = {}
    monkeypatch.setattr(checks, "custom_objects", lambda _api, _group, _version, plural, _ns=None: objects[plural])
    return objects


def test_every_limit_on_every_route_of_the_gateway_passes(cluster: dict[str, list[dict[str, Any]]]) -> None:
    cluster.update(_objects(ROUTES))
    found = checks.limits(None, TABLE)  # type: ignore[arg-type]
    assert len(found) == 4
    assert all(f.ok for f in found), [f.detail for f in found]
    assert "counted per tenant on ns/magpie-tts, ns/tokenlabs-llm" in found[0].detail


def test_a_route_without_the_limits_or_a_wrong_number_fails(cluster: dict[str, list[dict[str, Any]]]) -> None:
    cluster.update(_objects(ROUTES[:1]))
    assert not any(f.ok for f in checks.limits(None, TABLE))  # type: ignore[arg-type]
    assert "not on ns/magpie-tts" in checks.limits(None, TABLE)[0].detail  # type: ignore[arg-type]
    cluster.update(_objects(ROUTES, free_minute=11))
    assert [f.subject for f in checks.limits(None, TABLE) if not f.ok] == ["free requests/minute"]  # type: ignore[arg-type]
