"""Pure tenant logic: validation, keys, desired versus current, redacted diffs, bulk plans."""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant as t

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
KEY_A = "tlabs_sk_" + "a" * 48
KEY_B = "tlabs_sk_" + "b" * 48
KEY_C = "tlabs_sk_" + "c" * 48
NS = "kuadrant-system"


def server(obj: dict[str, Any], rv: str = "7") -> dict[str, Any]:
    """What the API server returns for a written object: base64 data, resourceVersion, no stringData."""
    stored = {
        **obj,
        "metadata": {**obj["metadata"], "resourceVersion": rv, "creationTimestamp": "2025-01-01T00:00:00Z"},
    }
    if "stringData" in stored:
        data = dict(stored.get("data") or {})
        data.update({k: base64.b64encode(v.encode()).decode() for k, v in stored.pop("stringData").items()})
        stored["data"] = data
    return stored


def existing(tenant: str = "acme", tier: str = "pro", key: str = KEY_A, **extra: Any) -> dict[str, Any]:
    return server(t.build_secret(tenant, tier, key, NS, **extra))


def previous(
    tenant: str = "acme",
    tier: str = "pro",
    key: str = KEY_B,
    expires: datetime.datetime | None = None,
    *,
    owned: bool = True,
):
    """A grace-period Secret as the server holds it: owned by its expiry Job, or (``owned=False``) as written before
    there were expiry Jobs."""
    when = expires or NOW + datetime.timedelta(hours=1)
    name = t.previous_secret_name(tenant, key)
    job = t.expiry_job_name(name, when) if owned else None
    obj = server(
        t.build_secret(tenant, tier, key, NS, previous_of=name, expires_at=t.format_time(when), owner_job=job), rv="9"
    )
    for ref in obj["metadata"].get("ownerReferences", []):
        ref["uid"] = "uid-" + ref["name"]
    return obj


def holder(tenant: str = "acme", tier: str = "pro", key: str = KEY_A, at: datetime.datetime = NOW):
    """A hand-over holder of the current key, as an interrupted re-tier leaves it."""
    name = t.previous_secret_name(tenant, key)
    return server(t.build_secret(tenant, tier, key, NS, previous_of=name, handover_at=t.format_time(at)), rv="9")


def ops(p: t.TenantPlan) -> list[str]:
    """The writes of a plan as verbs, with the kind when it is not a Secret."""
    return [w.verb if w.kind == t.Write.SECRET else f"{w.verb} {w.kind.lower()}" for w in p.writes]


def spec(name: str = "acme", **kwargs: Any) -> t.TenantSpec:
    return t.TenantSpec(name, **kwargs)


def plan(s: t.TenantSpec, current=None, prev=None, **kwargs: Any) -> t.TenantPlan:
    return t.plan_tenant(s, NS, current, prev or [], now=NOW, key_factory=lambda: KEY_C, **kwargs)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_id", "message"),
    [
        ("", "non-empty"),
        ("Acme", "not a DNS-1123 label"),
        ("ACME", "not a DNS-1123 label"),
        ("a" * 64, "64 characters long"),
        ("acmé", "not a DNS-1123 label"),
        ("-acme", "not a DNS-1123 label"),
        ("acme-", "not a DNS-1123 label"),
        ("ac_me", "not a DNS-1123 label"),
        ("ac.me", "not a DNS-1123 label"),
        (None, "non-empty"),
        (42, "non-empty"),
    ],
)
def test_bad_tenant_ids_are_rejected(tenant_id, message):
    with pytest.raises(t.TenantError, match=message):
        t.validate_tenant_id(tenant_id)


@pytest.mark.parametrize("tenant_id", ["a", "acme", "acme-corp-2", "0", "a" * 63])
def test_good_tenant_ids(tenant_id):
    assert t.validate_tenant_id(tenant_id) == tenant_id


@pytest.mark.parametrize("tier", ["gold", "Pro", "", None])
def test_unknown_tier(tier):
    with pytest.raises(t.TenantError, match="unknown tier"):
        t.validate_tier(tier, t.DEFAULT_TIERS)


def test_custom_tiers_are_data():
    assert t.validate_tier("gold", ["free", "gold"]) == "gold"
    with pytest.raises(t.TenantError, match="allowed_tiers is empty"):
        t.validate_tier("free", [])


@pytest.mark.parametrize(
    "key",
    ["", "tlabs_sk_", "tlabs_sk_" + "A" * 48, "tlabs_sk_" + "a" * 47, "tlabs_sk_" + "a" * 49, "sk_" + "a" * 48, 123],
)
def test_malformed_keys_are_rejected_without_echo(key):
    with pytest.raises(t.TenantError, match="malformed") as err:
        t.validate_key(key)
    if isinstance(key, str) and len(key) > len(t.KEY_PREFIX):
        assert key not in str(err.value)


@pytest.mark.parametrize(
    ("labels", "annotations", "message"),
    [
        ({"app": "other"}, None, "cannot be overridden"),
        ({"app.kubernetes.io/managed-by": "me"}, None, "cannot be overridden"),
        (None, {"kuadrant.io/groups": "enterprise"}, "cannot be overridden"),
        ({"bad key!": "x"}, None, "not a valid Kubernetes label key"),
        ({"team": "has space"}, None, "invalid value"),
        (None, {"note": 3}, "must be a string"),
    ],
)
def test_extras_cannot_break_the_contract(labels, annotations, message):
    with pytest.raises(t.TenantError, match=message):
        t.validate_extras(labels, annotations)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("", None), ("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400), (7, 7), ("365d", 31536000)],
)
def test_ttl(value, seconds):
    assert t.parse_ttl(value) == seconds


@pytest.mark.parametrize("value", ["1y", "-5m", "0", "soon", True])
def test_bad_ttl(value):
    with pytest.raises(t.TenantError):
        t.parse_ttl(value)


@pytest.mark.parametrize("value", ["99999999h", "366d", "53w", 10**12])
def test_a_ttl_beyond_a_year_is_refused_with_its_reason(value):
    with pytest.raises(t.TenantError, match="longer than 365 days"):
        t.parse_ttl(value)


# --- keys -------------------------------------------------------------------------------------


def test_generated_keys_match_the_contract_and_differ():
    keys = {t.generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(re.fullmatch(r"tlabs_sk_[0-9a-f]{48}", k) for k in keys)


def test_fingerprint_and_redaction_do_not_contain_the_key():
    assert t.fingerprint(KEY_A).startswith("sha256:")
    assert KEY_A not in t.redacted(KEY_A)
    assert t.fingerprint(KEY_A) != t.fingerprint(KEY_B)


@pytest.mark.parametrize(
    "secret",
    [
        {"data": {"api_key": base64.b64encode(KEY_A.encode()).decode()}},
        {"stringData": {"api_key": KEY_A}},
        {"data": {"api_key": "b3RoZXI="}, "stringData": {"api_key": KEY_A}},
    ],
)
def test_decode_key_reads_data_and_string_data(secret):
    assert t.decode_key(secret) == KEY_A


def test_decode_key_of_garbage_is_none():
    assert t.decode_key({"data": {"api_key": "!!!"}}) is None
    assert t.decode_key({}) is None


# --- single-tenant plans (table) --------------------------------------------------------------


CASES = [
    # id, spec kwargs, current, previous, expected verbs, key_action, returned key
    ("create", {"tier": "pro"}, None, [], ["create"], "created", KEY_C),
    ("create-with-key", {"tier": "pro", "api_key": KEY_B}, None, [], ["create"], "created", KEY_B),
    ("no-op", {"tier": "pro"}, existing(), [], [], None, None),
    ("no-op-tier-omitted", {}, existing(), [], [], None, None),
    ("no-op-same-key", {"tier": "pro", "api_key": KEY_A}, existing(), [], [], None, None),
    # Authorino only sees a tier change through a second holder of the key: create it, patch, then delete it.
    ("retier", {"tier": "enterprise"}, existing(), [], ["create", "patch", "delete"], None, None),
    ("rotate", {"rotate_key": True}, existing(), [], ["patch"], "rotated", KEY_C),
    (
        "rotate-grace",
        {"rotate_key": True, "previous_key_ttl": "1h"},
        existing(),
        [],
        # The old key is kept (with the Job that removes it when it expires) before it is replaced, so a failure in
        # between never leaves it unusable.
        ["create job", "create", "patch"],
        "rotated",
        KEY_C,
    ),
    ("rotate-to-given", {"api_key": KEY_B}, existing(), [], ["patch"], "rotated", KEY_B),
    ("expired-prev", {}, existing(), [previous(expires=NOW)], ["delete", "delete job"], None, None),
    ("valid-prev", {}, existing(), [previous()], [], None, None),
    # A grace-period Secret from before expiry Jobs gets one, so it too goes when it expires.
    ("unowned-prev", {}, existing(), [previous(owned=False)], ["create job", "patch"], None, None),
    ("retier-prev", {"tier": "free"}, existing(), [previous()], ["patch", "create", "patch", "delete"], None, None),
    # A hand-over an interrupted run left behind is finished, never just deleted (that would revoke the key).
    ("handover-left", {"tier": "pro"}, existing(), [holder()], ["patch", "delete"], None, None),
    (
        "handover-left-before-holders-had-no-expiry",
        {"tier": "pro"},
        existing(),
        [previous(key=KEY_A, expires=NOW, owned=False)],
        ["patch", "delete"],
        None,
        None,
    ),
    ("absent", {"state": "absent"}, existing(), [previous()], ["delete", "delete", "delete job"], None, None),
    ("absent-missing", {"state": "absent"}, None, [], [], None, None),
]


@pytest.mark.parametrize("case", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_table(case):
    kwargs, current, prev, verbs, key_action, new_key = case
    p = plan(spec(**kwargs), current, prev)
    assert ops(p) == verbs
    assert p.changed is bool(verbs)
    assert p.key_action == key_action
    assert p.new_key == new_key


def test_retier_hands_the_key_over_so_authorino_sees_the_new_tier():
    p = plan(spec(tier="enterprise"), existing())
    holder, patch, delete = p.writes
    assert holder.verb == "create" and holder.settle == 0
    assert t.decode_key(holder.body) == KEY_A
    assert holder.body["metadata"]["annotations"]["kuadrant.io/groups"] == "enterprise"
    assert holder.body["metadata"]["labels"]["tokenlabs.io/key"] == "previous"
    # While it holds the current key for Authorino, neither the expiry rule nor an expiry Job may touch it.
    assert "tokenlabs.io/expires-at" not in holder.body["metadata"]["annotations"]
    assert holder.body["metadata"]["annotations"]["tokenlabs.io/handover-at"] == "2025-06-01T12:00:00Z"
    assert "ownerReferences" not in holder.body["metadata"]
    assert patch.name == "tenant-acme"
    assert patch.body == {
        "metadata": {
            "annotations": {"kuadrant.io/groups": "enterprise", "tokenlabs.io/handover-at": "2025-06-01T12:00:00Z"},
            "resourceVersion": "7",
        }
    }
    assert "data" not in patch.body
    assert (delete.verb, delete.name) == ("delete", holder.name)
    assert delete.settle > 0
    assert p.after["tenant-acme"]["annotations"]["kuadrant.io/groups"] == "enterprise"
    assert holder.name not in p.after


def test_a_rotation_needs_no_hand_over():
    p = plan(spec(tier="enterprise", rotate_key=True), existing())
    assert [w.verb for w in p.writes] == ["patch"]


def test_a_rotation_removes_a_hand_over_holder_of_the_replaced_key():
    left = holder()
    p = plan(spec(rotate_key=True), existing(), [left])
    assert [(w.verb, w.name) for w in p.writes] == [("delete", t._meta(left)["name"]), ("patch", "tenant-acme")]
    graced = plan(spec(rotate_key=True, previous_key_ttl="1h"), existing(), [left])
    name = t._meta(left)["name"]
    job = t.expiry_job_name(name, NOW + datetime.timedelta(hours=1))
    assert [(w.verb, w.name) for w in graced.writes] == [
        ("delete", name),
        ("create", job),
        ("create", name),
        ("patch", "tenant-acme"),
    ]


def test_bulk_listing_without_keys_marks_the_hand_over_pending():
    p = plan(spec(tier="enterprise"), existing(), key_known=False)
    assert p.handover_pending is True
    assert [w.verb for w in p.writes] == ["patch"]


def test_rotation_patch_carries_the_new_key_and_resource_version():
    p = plan(spec(rotate_key=True), existing())
    body = p.writes[0].body
    assert base64.b64decode(body["data"]["api_key"]).decode() == KEY_C
    assert body["metadata"]["resourceVersion"] == "7"


def test_grace_secret_keeps_old_key_user_id_tier_and_authorino_labels():
    p = plan(spec(rotate_key=True, previous_key_ttl="2h"), existing())
    body = p.writes[1].body
    meta = body["metadata"]
    assert t.decode_key(body) == KEY_A
    assert meta["name"].startswith("tenant-acme-prev-")
    assert meta["annotations"]["secret.kuadrant.io/user-id"] == "acme"
    assert meta["annotations"]["kuadrant.io/groups"] == "pro"
    assert meta["annotations"]["tokenlabs.io/expires-at"] == "2025-06-01T14:00:00Z"
    assert {"authorino.kuadrant.io/managed-by": "authorino", "app": "token-labs"}.items() <= meta["labels"].items()
    assert meta["labels"]["tokenlabs.io/key"] == "previous"


def test_grace_secret_is_owned_by_a_job_that_runs_nothing_and_fails_at_its_expiry():
    p = plan(spec(rotate_key=True, previous_key_ttl="2h"), existing())
    job, secret, _patch = p.writes
    assert (job.kind, secret.kind) == ("Job", "Secret")
    body = job.body
    # No pod ever runs: the job controller fails the Job at its deadline, the TTL-after-finished controller deletes
    # it, and the garbage collector deletes the Secret it owns.
    assert body["spec"]["parallelism"] == 0
    assert body["spec"]["activeDeadlineSeconds"] == 7200
    assert body["spec"]["ttlSecondsAfterFinished"] == 0
    assert body["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert body["metadata"]["annotations"] == {
        "tokenlabs.io/secret": secret.name,
        "tokenlabs.io/expires-at": "2025-06-01T14:00:00Z",
    }
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tokenlabs", "tokenlabs.io/tenant": "acme"}
    # The uid is the server's, filled in when the Job exists; the plan leaves it empty.
    assert secret.body["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job.name, "uid": ""}
    ]
    assert p.after[secret.name]["removed_by"] == f"Job {job.name}"


def test_expiry_job_names_fit_a_label_and_differ_per_expiry():
    longest = t.previous_secret_name("a" * 63, KEY_A)
    name = t.expiry_job_name(longest, NOW)
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert t.expiry_job_name(longest, NOW + datetime.timedelta(seconds=1)) != name


@pytest.mark.parametrize(("seconds", "deadline"), [(15, 15), (0.2, 1), (90.5, 91)])
def test_the_deadline_never_ends_before_the_expiry(seconds, deadline):
    job = t.build_expiry_job("acme", NS, "s", NOW + datetime.timedelta(seconds=seconds), NOW)
    assert job["spec"]["activeDeadlineSeconds"] == deadline


def test_a_previous_key_without_its_job_gets_one_with_the_remaining_time():
    prev = previous(owned=False, expires=NOW + datetime.timedelta(minutes=10))
    p = plan(spec(), existing(), [prev])
    job, patch = p.writes
    assert job.body["spec"]["activeDeadlineSeconds"] == 600
    assert patch.name == t._meta(prev)["name"]
    assert patch.body == {
        "metadata": {
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job.name, "uid": ""}],
            "resourceVersion": "9",
        }
    }


def test_a_tier_change_and_a_missing_job_are_one_patch_of_the_previous_key():
    p = plan(spec(tier="free"), existing(), [previous(owned=False)])
    prev_name = t.previous_secret_name("acme", KEY_B)
    (patch,) = [w for w in p.writes if w.name == prev_name]
    assert set(patch.body["metadata"]) == {"annotations", "ownerReferences", "resourceVersion"}


def test_a_revocation_removes_the_expiry_jobs_too():
    prev = previous()
    p = plan(spec(state="absent"), existing(), [prev])
    job = p.writes[-1]
    assert (job.verb, job.kind, job.uid) == ("delete", "Job", t._meta(prev)["ownerReferences"][0]["uid"])


@pytest.mark.parametrize("bad", ["acme\n", "acme\r\n"])
def test_a_trailing_newline_is_not_a_tenant_id(bad):
    with pytest.raises(t.TenantError, match="DNS-1123"):
        t.validate_tenant_id(bad)


def test_a_trailing_newline_is_not_a_key():
    with pytest.raises(t.TenantError, match="malformed"):
        t.validate_key(KEY_A + "\n")


def test_create_requires_a_tier():
    with pytest.raises(t.TenantError, match="tier is required"):
        plan(spec(), None)


def test_string_data_and_data_compare_equal():
    """A Secret written with stringData by another tool is what the server stores as base64 data."""
    obj = t.build_secret("acme", "pro", KEY_A, NS)
    obj["stringData"] = {"api_key": KEY_A}
    del obj["data"]
    assert plan(spec(tier="pro", api_key=KEY_A), server(obj)).writes == []


def test_corrupted_key_is_repaired_as_rotation():
    current = existing()
    current["data"] = {}
    p = plan(spec(), current)
    assert p.key_action == "rotated"
    assert p.new_key == KEY_C


@pytest.mark.parametrize(
    "current",
    [
        {"metadata": {"name": "tenant-acme", "namespace": NS, "labels": {"app": "token-labs"}}},
        {"metadata": {"name": "tenant-acme", "namespace": NS}},
    ],
)
@pytest.mark.parametrize("kwargs", [{"tier": "pro"}, {"state": "absent"}])
def test_foreign_secret_is_refused(current, kwargs):
    with pytest.raises(t.TenantError, match=r"not managed by tokenlabs.*refusing"):
        plan(spec(**kwargs), current)


def test_secret_of_another_tenant_is_refused():
    with pytest.raises(t.TenantError, match="belongs to tenant 'other'"):
        plan(spec(tier="pro"), existing(tenant="other"))


def test_diff_is_redacted():
    p = plan(spec(rotate_key=True, previous_key_ttl="1h"), existing())
    text = repr(p.before) + repr(p.after)
    assert KEY_A not in text
    assert KEY_C not in text
    assert p.before["tenant-acme"]["data"]["api_key"] == t.redacted(KEY_A)
    assert p.after["tenant-acme"]["data"]["api_key"] == t.redacted(KEY_C)


def test_facts_never_carry_the_key():
    facts = t.tenant_facts("acme", NS, existing(), [previous()])
    assert KEY_A not in repr(facts)
    assert KEY_B not in repr(facts)
    assert facts["tier"] == "pro"
    assert facts["fingerprint"] == t.fingerprint(KEY_A)
    assert facts["previous_keys"][0]["fingerprint"] == t.fingerprint(KEY_B)
    assert facts["previous_keys"][0]["expires_at"] == "2025-06-01T13:00:00Z"
    assert facts["previous_keys"][0]["removed_by"].startswith("key-expiry-")
    assert facts["previous_keys"][0]["handover"] is False


# --- bulk -------------------------------------------------------------------------------------


def metadata_only(obj: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": obj["metadata"]}


def bulk(specs, listing, exclusive=False):
    return t.plan_tenants(specs, NS, [metadata_only(o) for o in listing], exclusive=exclusive, now=NOW)


def test_bulk_creates_missing_and_leaves_matching_alone():
    b = bulk([spec("acme", tier="pro"), spec("new", tier="free")], [existing()])
    assert b.created == ["new"]
    assert b.unchanged == ["acme"]
    assert [w.verb for w in b.writes] == ["create"]


def test_bulk_with_nothing_to_change_plans_zero_writes():
    listing = [existing(f"t{i}", "pro", t.generate_key()) for i in range(50)]
    b = bulk([spec(f"t{i}", tier="pro") for i in range(50)], listing)
    assert b.writes == []
    assert len(b.unchanged) == 50


def test_bulk_never_touches_keys_it_did_not_read():
    b = bulk([spec("acme", tier="enterprise")], [existing()])
    (write,) = b.writes
    assert "data" not in write.body


def test_bulk_exclusive_removes_unlisted_managed_tenants_and_their_previous_keys():
    gone = previous("gone")
    listing = [existing(), existing("gone"), gone, {"metadata": {"name": "unrelated", "labels": {}}}]
    b = bulk([spec("acme", tier="pro")], listing, exclusive=True)
    assert b.removed == ["gone"]
    job = t._meta(gone)["ownerReferences"][0]["name"]
    assert sorted(w.name for w in b.writes) == sorted(["tenant-gone", t.previous_secret_name("gone", KEY_B), job])
    assert all(w.verb == "delete" for w in b.writes)


def test_bulk_without_exclusive_keeps_unlisted():
    assert bulk([spec("acme", tier="pro")], [existing(), existing("other")]).writes == []


def test_bulk_refuses_a_foreign_name_clash_before_planning_writes():
    foreign = {"metadata": {"name": "tenant-new", "namespace": NS, "labels": {"app": "token-labs"}}}
    with pytest.raises(t.TenantError, match="not managed by tokenlabs"):
        bulk([spec("a", tier="pro"), spec("new", tier="pro")], [foreign])


def test_bulk_duplicate_ids():
    with pytest.raises(t.TenantError, match="listed twice"):
        bulk([spec("a", tier="pro"), spec("a", tier="free")], [])


def test_bulk_gives_a_previous_key_without_its_job_one_and_then_plans_nothing():
    b = bulk([spec("acme", tier="pro")], [existing(), previous(owned=False)])
    assert [(w.verb, w.kind) for w in b.writes] == [("create", "Job"), ("patch", "Secret")]
    assert bulk([spec("acme", tier="pro")], [existing(), previous()]).writes == []


def test_bulk_keeps_a_hand_over_holder_for_its_window_and_never_gives_it_a_job():
    recent = holder(at=NOW - datetime.timedelta(seconds=t.HANDOVER_SECONDS - 1))
    assert bulk([spec("acme", tier="pro")], [existing(), recent]).writes == []
    stale = holder(at=NOW - datetime.timedelta(seconds=t.HANDOVER_SECONDS))
    assert [w.verb for w in bulk([spec("acme", tier="pro")], [existing(), stale]).writes] == ["delete"]
