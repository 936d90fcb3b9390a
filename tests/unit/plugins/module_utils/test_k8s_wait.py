"""What counts as ready for k8s_wait: conditions per scope and generation, tolerated messages, stop reasons, reads."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import k8s_wait as w

NS = "tokenlabs-gateway"
EG = "gateway.envoyproxy.io/gatewayclass-controller"


def obj(kind: str, name: str, status: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": NS, "generation": generation}, "status": status}


def cond(type_: str, status: str = "True", reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}


def route(name: str, *parents: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return obj("HTTPRoute", name, {"parents": list(parents)}, generation)


def parent(gateway: str, *conditions: dict[str, Any], controller: str = EG) -> dict[str, Any]:
    return {"parentRef": {"name": gateway}, "controllerName": controller, "conditions": list(conditions)}


GATEWAY = w.Selection(
    "Gateway", "gateway.networking.k8s.io/v1", NS, names=["gw"], conditions=[w.Condition("Programmed")]
)
ROUTES = w.Selection(
    "HTTPRoute",
    "gateway.networking.k8s.io/v1",
    NS,
    conditions=[
        w.Condition("Accepted", scope="parents", parent="gw"),
        w.Condition("ResolvedRefs", scope="parents", parent="gw"),
    ],
)


def test_a_status_condition_counts_only_at_the_wanted_status_and_for_the_current_generation() -> None:
    assert w.judge(GATEWAY, obj("Gateway", "gw", {"conditions": [cond("Programmed", observedGeneration=2)]}, 2)) == (
        w.READY,
        [],
    )
    state, why = w.judge(GATEWAY, obj("Gateway", "gw", {"conditions": [cond("Programmed", observedGeneration=1)]}, 2))
    assert state == w.WAITING and why == ["Programmed: not yet observed for generation 2"]
    state, why = w.judge(
        GATEWAY, obj("Gateway", "gw", {"conditions": [cond("Programmed", "False", "Invalid", "no listeners")]})
    )
    assert state == w.WAITING and why == ["Programmed False Invalid (no listeners)"]
    state, why = w.judge(GATEWAY, obj("Gateway", "gw", {}))
    assert state == w.WAITING and why == ["Programmed: not reported yet"]


def test_the_status_generation_stands_in_for_conditions_that_carry_none() -> None:
    deployment = w.Selection("Deployment", "apps/v1", NS, names=["d"], conditions=[w.Condition("Available")])
    stale = obj("Deployment", "d", {"observedGeneration": 3, "conditions": [cond("Available")]}, 4)
    assert w.judge(deployment, stale)[0] == w.WAITING
    assert w.judge(deployment, {**stale, "metadata": {**stale["metadata"], "generation": 3}})[0] == w.READY


def test_routes_are_judged_on_every_entry_of_their_gateway_that_carries_the_condition() -> None:
    ok = parent("gw", cond("Accepted"), cond("ResolvedRefs"))
    policy_entry = parent(
        "gw", cond("kuadrant.io/AuthPolicyAffected", "False"), controller="kuadrant.io/policy-controller"
    )
    other_gateway = parent("other", cond("Accepted", "False"), cond("ResolvedRefs", "False"))
    assert w.judge(ROUTES, route("r", ok, policy_entry, other_gateway)) == (w.READY, [])
    invalid = parent(
        "gw", cond("Accepted"), cond("ResolvedRefs", "False", "InvalidKind", "Kind InferencePool is not supported")
    )
    state, why = w.judge(ROUTES, route("r", invalid))
    assert state == w.WAITING and why == ["ResolvedRefs False InvalidKind (Kind InferencePool is not supported)"]
    state, why = w.judge(ROUTES, route("r", policy_entry))
    assert state == w.WAITING and why == [
        "Accepted: no parent status for gw yet",
        "ResolvedRefs: no parent status for gw yet",
    ]
    stale = parent("gw", cond("Accepted", observedGeneration=1), cond("ResolvedRefs", observedGeneration=1))
    assert w.judge(ROUTES, route("r", stale, generation=2))[0] == w.WAITING


def test_a_named_controller_picks_its_entries_even_without_the_condition() -> None:
    selection = w.Selection(
        "HTTPRoute", "v", NS, names=["r"], conditions=[w.Condition("Accepted", scope="parents", controller=EG)]
    )
    state, why = w.judge(selection, route("r", parent("gw", cond("ResolvedRefs"))))
    assert state == w.WAITING and why == ["Accepted: not reported yet"]


def test_a_tolerated_message_passes_as_tolerated_and_nothing_else_does() -> None:
    component = "EnvoyExtensionPolicy (tokenlabs/tokenlabs-gateway)"
    selection = w.Selection(
        "AuthPolicy",
        "kuadrant.io/v1",
        NS,
        names=["auth"],
        conditions=[
            w.Condition(
                "Enforced", tolerate=["{kind} waiting for the following components to sync: [" + component + "]"]
            )
        ],
    )

    def policy(status: str, message: str) -> dict[str, Any]:
        return obj("AuthPolicy", "auth", {"conditions": [cond("Enforced", status, "Unknown", message)]})

    assert w.judge(selection, policy("True", "AuthPolicy has been successfully enforced"))[0] == w.READY
    held = policy("False", f"AuthPolicy waiting for the following components to sync: [{component}]")
    assert w.judge(selection, held)[0] == w.TOLERATED
    more = f"AuthPolicy waiting for the following components to sync: [AuthConfig (tokenlabs/x) {component}]"
    assert w.judge(selection, policy("False", more))[0] == w.WAITING
    assert w.judge(selection, policy("False", "target not found"))[0] == w.WAITING
    assert w.judge(selection, obj("AuthPolicy", "auth", {}))[0] == w.WAITING


def test_a_stop_reason_ends_the_wait() -> None:
    selection = w.Selection(
        "Kuadrant",
        "kuadrant.io/v1beta1",
        NS,
        names=["k"],
        conditions=[w.Condition("Ready", stop_reasons=["MissingDependency"])],
    )
    missing = obj(
        "Kuadrant", "k", {"conditions": [cond("Ready", "False", "MissingDependency", "[Limitador] is not installed")]}
    )
    outcome = w.evaluate([selection], {selection.read_key: [missing]})
    assert outcome.state == w.STOPPED
    assert outcome.problems() == [
        "Kuadrant tokenlabs-gateway/k: Ready False MissingDependency ([Limitador] is not installed)"
    ]


def test_ready_replicas() -> None:
    selection = w.Selection("Deployment", "apps/v1", NS, names=["tts"], min_ready_replicas=2, description="on spark-01")
    assert w.judge(selection, obj("Deployment", "tts", {"readyReplicas": 2, "observedGeneration": 1}))[0] == w.READY
    state, why = w.judge(selection, obj("Deployment", "tts", {"readyReplicas": 1, "observedGeneration": 1}))
    assert state == w.WAITING and why == ["1 of 2 replicas ready"]


def test_names_must_exist_and_a_selector_adds_every_match_once() -> None:
    named = w.Selection(
        "HTTPRoute",
        "v",
        NS,
        names=["a", "missing"],
        label_selectors=["managed=yes"],
        conditions=[w.Condition("Accepted", scope="parents", parent="gw")],
    )
    model = w.Selection(
        "HTTPRoute",
        "v",
        NS,
        names=["llm"],
        label_selectors=["managed=yes"],
        conditions=named.conditions,
        description="generated",
    )
    ok = parent("gw", cond("Accepted"))
    read = [route("a", ok), route("llm", ok), route("extra", parent("gw", cond("Accepted", "False", "NotAllowed")))]
    outcome = w.evaluate([named, model], {named.read_key: read})
    assert [(o["name"], o["state"]) for o in outcome.objects] == [
        ("a", w.READY),
        ("missing", w.WAITING),
        ("extra", w.WAITING),
        ("llm", w.READY),
    ]
    assert outcome.problems() == [
        "HTTPRoute tokenlabs-gateway/missing: not found",
        "HTTPRoute tokenlabs-gateway/extra: Accepted False NotAllowed",
    ]
    assert w.evaluate([model], {model.read_key: []}).problems() == [
        "HTTPRoute tokenlabs-gateway/llm (generated): not found"
    ]


def test_a_tolerated_object_does_not_hide_one_that_waits() -> None:
    assert w.evaluate([], {}).state == w.READY
    tolerating = w.Selection(
        "AuthPolicy", "v", NS, names=["p"], conditions=[w.Condition("Enforced", tolerate=["held"])]
    )
    held = obj("AuthPolicy", "p", {"conditions": [cond("Enforced", "False", message="held")]})
    outcome = w.evaluate([tolerating, GATEWAY], {tolerating.read_key: [held], GATEWAY.read_key: []})
    assert outcome.state == w.WAITING
    assert outcome.tolerated() == ["AuthPolicy tokenlabs-gateway/p: Enforced False (held)"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"conditions": []}, "nothing to wait for"),
        ({"conditions": [], "min_ready_replicas": -1}, "must not be negative"),
    ],
)
def test_bad_selections_are_refused(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(w.WaitError, match=error):
        w.Selection("Deployment", "apps/v1", NS, names=["d"], **kwargs)


def test_bad_conditions_are_refused() -> None:
    with pytest.raises(w.WaitError, match="scope must be one of"):
        w.Condition("Accepted", scope="spec")
    with pytest.raises(w.WaitError, match="parents and ancestors"):
        w.Condition("Accepted", parent="gw")


class _Reader:
    """Reports the Gateway Programmed from the given poll on."""

    def __init__(self, ready_from: int) -> None:
        self.ready_from = ready_from
        self.polls = 0

    def read(self, group: Any) -> list[dict[str, Any]]:
        self.polls += 1
        status = "True" if self.polls >= self.ready_from else "False"
        return [obj("Gateway", "gw", {"conditions": [cond("Programmed", status)]})]


def test_the_wait_polls_until_ready_or_the_timeout() -> None:
    outcome, polls, _ = w.wait(_Reader(3), [GATEWAY], timeout=5, delay=0.01)
    assert (outcome.state, polls) == (w.READY, 3)
    outcome, polls, _ = w.wait(_Reader(1000), [GATEWAY], timeout=0, delay=0.01)
    assert (outcome.state, polls) == (w.WAITING, 1)
