"""tenant, tenants and tenant_info modules end to end, with the Kubernetes API replaced by an in-memory store."""

from __future__ import annotations

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant as t
from ansible_collections.tokenlabs.platform.plugins.modules import tenant, tenant_info, tenants

from tests.unit.plugins.modules.utils import AnsibleExitJson, AnsibleFailJson, FakeApi, set_module_args

pytestmark = pytest.mark.usefixtures("module_exits")

KEY = "tlabs_sk_" + "1" * 48
OTHER = "tlabs_sk_" + "2" * 48


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    for module in (tenant, tenants, tenant_info):
        monkeypatch.setattr(module, "connect", lambda _params, token=True: fake)
    return fake


def run(module, args, check_mode=False, diff=False):
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with set_module_args(args), pytest.raises((AnsibleExitJson, AnsibleFailJson)) as result:
        module.main()
    return result.value.args[0]


def test_create_returns_the_key_once(api):
    first = run(tenant, {"name": "acme", "tier": "pro"})
    assert first["changed"] is True
    assert first["key_action"] == "created"
    assert t.KEY_PATTERN.match(first["api_key"])
    assert t.decode_key(api.store["tenant-acme"]) == first["api_key"]
    second = run(tenant, {"name": "acme", "tier": "pro"})
    assert second["changed"] is False
    assert "api_key" not in second
    assert second["fingerprint"] == t.fingerprint(first["api_key"])
    assert first["api_key"] not in repr(second)


def test_update_tier_keeps_key(api):
    created = run(tenant, {"name": "acme", "tier": "pro"})
    writes = api.writes
    result = run(tenant, {"name": "acme", "tier": "enterprise"}, diff=True)
    assert result["changed"] is True
    assert "api_key" not in result
    assert api.writes == writes + 1
    assert t.decode_key(api.store["tenant-acme"]) == created["api_key"]
    assert created["api_key"] not in repr(result["diff"])
    assert result["tenant"]["tier"] == "enterprise"


def test_noop_makes_no_write(api):
    run(tenant, {"name": "acme", "tier": "pro", "api_key": KEY})
    writes = api.writes
    result = run(tenant, {"name": "acme", "tier": "pro", "api_key": KEY})
    assert result["changed"] is False
    assert api.writes == writes


def test_delete(api):
    run(tenant, {"name": "acme", "tier": "pro"})
    result = run(tenant, {"name": "acme", "state": "absent"})
    assert result["changed"] is True
    assert api.store == {}
    assert run(tenant, {"name": "acme", "state": "absent"})["changed"] is False


def test_check_mode_create_writes_nothing_and_returns_no_key(api):
    result = run(tenant, {"name": "acme", "tier": "pro"}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert "api_key" not in result
    assert api.writes == 0
    assert api.store == {}
    assert "tenant-acme" in result["diff"]["after"]


def test_missing_name_fails():
    result = run(tenant, {"tier": "pro"})
    assert result["failed"] is True
    assert "name" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "Acme", "tier": "pro"}, "DNS-1123"),
        ({"name": "acme", "tier": "gold"}, "unknown tier"),
        ({"name": "acme", "tier": "pro", "api_key": "tlabs_sk_short"}, "malformed"),
        ({"name": "acme"}, "tier is required"),
    ],
)
def test_bad_input_fails_without_writes(api, args, message):
    result = run(tenant, args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.writes == 0


def test_rotation_with_grace_then_expiry(api):
    created = run(tenant, {"name": "acme", "tier": "pro"})
    rotated = run(tenant, {"name": "acme", "rotate_key": True, "previous_key_ttl": "1h"})
    assert rotated["key_action"] == "rotated"
    assert rotated["api_key"] != created["api_key"]
    (prev,) = rotated["tenant"]["previous_keys"]
    assert prev["fingerprint"] == t.fingerprint(created["api_key"])
    api.store[prev["secret"]]["metadata"]["annotations"][t.EXPIRES_ANNOTATION] = "2000-01-01T00:00:00Z"
    cleaned = run(tenant, {"name": "acme"})
    assert cleaned["changed"] is True
    assert prev["secret"] not in api.store
    assert "api_key" not in cleaned


def test_bulk_creates_then_makes_zero_writes(api):
    wanted = [{"name": f"t{i}", "tier": "pro"} for i in range(20)]
    first = run(tenants, {"tenants": wanted})
    assert len(first["api_keys"]) == 20
    assert first["writes"] == 20
    api.writes = 0
    second = run(tenants, {"tenants": wanted})
    assert second["changed"] is False
    assert second["writes"] == 0
    assert second["api_keys"] == {}
    assert [c[0] for c in api.calls[-1:]] == ["list"]


def test_bulk_check_mode_and_exclusive(api):
    run(tenants, {"tenants": [{"name": "a", "tier": "pro"}, {"name": "b", "tier": "pro"}]})
    writes = api.writes
    predicted = run(tenants, {"tenants": [{"name": "a", "tier": "free"}], "exclusive": True}, check_mode=True)
    assert predicted["changed"] is True
    assert predicted["removed"] == ["b"]
    assert predicted["updated"] == ["a"]
    assert api.writes == writes
    applied = run(tenants, {"tenants": [{"name": "a", "tier": "free"}], "exclusive": True})
    assert applied["removed"] == ["b"]
    assert sorted(api.store) == ["tenant-a"]


def test_bulk_bad_entry_fails_before_any_write(api):
    result = run(tenants, {"tenants": [{"name": "ok", "tier": "pro"}, {"name": "Bad", "tier": "pro"}]})
    assert result["failed"] is True
    assert "tenants[1]" in result["msg"]
    assert api.writes == 0


def test_info_lists_without_keys(api):
    created = run(tenant, {"name": "acme", "tier": "pro"})
    run(tenant, {"name": "beta", "tier": "free"})
    listed = run(tenant_info, {})
    assert [x["name"] for x in listed["tenants"]] == ["acme", "beta"]
    assert created["api_key"] not in repr(listed)
    assert [x["name"] for x in run(tenant_info, {"tier": "free"})["tenants"]] == ["beta"]
    assert run(tenant_info, {"name": "acme"})["tenants"][0]["fingerprint"] == t.fingerprint(created["api_key"])


def test_conflict_is_retried(api, monkeypatch):
    run(tenant, {"name": "acme", "tier": "pro"})
    real = api.apply_write
    bumped = []

    def interfere(write):
        if not bumped:  # another writer touches the Secret between our read and our write
            bumped.append(True)
            api._store(api.store["tenant-acme"])
        real(write)

    monkeypatch.setattr(api, "apply_write", interfere)
    result = run(tenant, {"name": "acme", "tier": "enterprise"})
    assert result["changed"] is True
    assert api.store["tenant-acme"]["metadata"]["annotations"][t.TIER_ANNOTATION] == "enterprise"
