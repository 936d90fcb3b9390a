"""tenant, tenants and tenant_info modules end to end, with the Kubernetes API replaced by an in-memory store."""

from __future__ import annotations

import subprocess

import pytest
import yaml
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
    # The key is handed over (a short-lived second holder, the patch, its removal) so Authorino sees the tier.
    assert api.writes == writes + 3
    assert set(api.store) == {"tenant-acme"}
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
    # The Secret is owned by the expiry Job the server created, by that Job's uid.
    (job,) = api.jobs.values()
    assert prev["removed_by"] == job["metadata"]["name"]
    (owner,) = api.store[prev["secret"]]["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": prev["removed_by"], "uid": job["metadata"]["uid"]}
    assert job["spec"]["activeDeadlineSeconds"] in (3600, 3601)
    assert run(tenant, {"name": "acme"})["changed"] is False
    api.store[prev["secret"]]["metadata"]["annotations"][t.EXPIRES_ANNOTATION] = "2000-01-01T00:00:00Z"
    cleaned = run(tenant, {"name": "acme"})
    assert cleaned["changed"] is True
    assert prev["secret"] not in api.store
    assert api.jobs == {}
    assert "api_key" not in cleaned


def test_check_mode_rotation_with_grace_shows_the_expiry_and_writes_nothing(api):
    run(tenant, {"name": "acme", "tier": "pro"})
    writes = api.writes
    result = run(tenant, {"name": "acme", "rotate_key": True, "previous_key_ttl": "15s"}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert api.writes == writes
    assert api.jobs == {}
    (prev,) = [v for k, v in result["diff"]["after"].items() if k != "tenant-acme"]
    assert prev["annotations"][t.EXPIRES_ANNOTATION]
    assert prev["removed_by"].startswith("Job key-expiry-")


def test_revoke_removes_the_expiry_jobs(api):
    run(tenant, {"name": "acme", "tier": "pro"})
    run(tenant, {"name": "acme", "rotate_key": True, "previous_key_ttl": "1h"})
    assert len(api.jobs) == 1
    run(tenant, {"name": "acme", "state": "absent"})
    assert api.store == {}
    assert api.jobs == {}


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


@pytest.fixture
def immutable_dir(tmp_path):
    """A directory nobody may create files in, root included (chattr +i)."""
    path = tmp_path / "immutable"
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=True)


def unwritable_key_files(tmp_path, immutable_dir):
    (tmp_path / "a-directory").mkdir()
    return {
        "/sys/tokenlabs-tenant.key": "cannot be written",
        str(immutable_dir / "k"): "cannot be written",
        str(tmp_path / "a-directory"): "is a directory",
        str(tmp_path / "missing" / "k"): "does not exist",
    }


def test_add_with_an_unwritable_key_file_changes_nothing(api, tmp_path, immutable_dir):
    for path, message in unwritable_key_files(tmp_path, immutable_dir).items():
        result = run(tenant, {"name": "acme", "tier": "pro", "api_key_file": path})
        assert message in result["msg"], path
        assert api.calls == [] and api.store == {}, f"{path}: no API call at all"


def test_rotate_with_an_unwritable_key_file_keeps_the_old_key(api, tmp_path, immutable_dir):
    run(tenant, {"name": "acme", "tier": "pro", "api_key": KEY})
    before = dict(api.store)
    for path, message in unwritable_key_files(tmp_path, immutable_dir).items():
        result = run(tenant, {"name": "acme", "rotate_key": True, "api_key_file": path})
        assert result["failed"] is True, path
        assert message in result["msg"], path
        assert api.store == before, path


def test_key_file_holds_the_key_before_the_server_does(api, tmp_path, monkeypatch):
    key_file = tmp_path / "acme.key"
    seen = []
    real = api.apply_write

    def write(w):
        seen.append(key_file.read_text().strip() if key_file.exists() else None)
        real(w)

    monkeypatch.setattr(api, "apply_write", write)
    result = run(tenant, {"name": "acme", "tier": "pro", "api_key_file": str(key_file)})
    stored = t.decode_key(api.store["tenant-acme"])
    assert seen == [stored]
    assert "api_key" not in result and stored not in repr(result)
    assert result["api_key_file"] == str(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    rotated = run(tenant, {"name": "acme", "rotate_key": True, "api_key_file": str(key_file)})
    assert "api_key" not in rotated
    assert key_file.read_text().strip() == t.decode_key(api.store["tenant-acme"]) != stored


def test_key_file_is_put_back_when_the_server_refuses(api, tmp_path, monkeypatch):
    run(tenant, {"name": "acme", "tier": "pro", "api_key": KEY})
    key_file = tmp_path / "acme.key"
    key_file.write_text(KEY + "\n")

    def refuse(_write):
        raise t.TenantError("PATCH refused (403)")

    monkeypatch.setattr(api, "apply_write", refuse)
    result = run(tenant, {"name": "acme", "rotate_key": True, "api_key_file": str(key_file)})
    assert result["failed"] is True
    assert key_file.read_text() == KEY + "\n"
    fresh = tmp_path / "beta.key"
    assert run(tenant, {"name": "beta", "tier": "pro", "api_key_file": str(fresh)})["failed"] is True
    assert not fresh.exists()


def test_check_mode_checks_the_key_file_and_writes_nothing(api, tmp_path):
    key_file = tmp_path / "acme.key"
    result = run(tenant, {"name": "acme", "tier": "pro", "api_key_file": str(key_file)}, check_mode=True)
    assert result["changed"] is True and not key_file.exists()
    bad = run(tenant, {"name": "acme", "tier": "pro", "api_key_file": str(tmp_path)}, check_mode=True)
    assert bad["failed"] is True and "is a directory" in bad["msg"]


def test_bulk_key_file_is_merged_before_the_writes_and_refused_first(api, tmp_path, immutable_dir):
    key_file = tmp_path / "keys.yml"
    key_file.write_text("old: " + KEY + "\n")
    for path, message in unwritable_key_files(tmp_path, immutable_dir).items():
        result = run(tenants, {"tenants": [{"name": "a", "tier": "pro"}], "api_keys_file": path})
        assert message in result["msg"], path
        assert api.calls == [] and api.store == {}, path
    result = run(tenants, {"tenants": [{"name": "a", "tier": "pro"}], "api_keys_file": str(key_file)})
    assert result["api_keys"] == {}
    keys = yaml.safe_load(key_file.read_text())
    assert keys == {"old": KEY, "a": t.decode_key(api.store["tenant-a"])}


def test_bulk_key_file_keeps_only_keys_the_server_stored(api, tmp_path, monkeypatch):
    key_file = tmp_path / "keys.yml"
    real = api.apply_write

    def refuse_b(write):
        if write.tenant == "b":
            raise t.TenantError("POST refused (422)")
        real(write)

    monkeypatch.setattr(api, "apply_write", refuse_b)
    wanted = [{"name": "a", "tier": "pro"}, {"name": "b", "tier": "pro"}]
    result = run(tenants, {"tenants": wanted, "api_keys_file": str(key_file)})
    assert result["failed"] is True
    assert set(yaml.safe_load(key_file.read_text())) == {"a"}


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        (tenant_info, {"name": "acme\nx"}, "DNS-1123"),
        (tenant, {"name": "acme\nx", "tier": "pro"}, "DNS-1123"),
        (tenant, {"name": "acme", "rotate_key": True, "previous_key_ttl": "99999999h"}, "365 days"),
        (tenant, {"name": "acme", "rotate_key": True, "previous_key_ttl": "400d"}, "365 days"),
    ],
)
def test_bad_input_fails_before_any_api_call(api, module, args, message):
    result = run(module, args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.calls == []


def test_retier_or_rotate_of_a_foreign_secret_says_it_is_not_ours(api):
    api._store({"metadata": {"name": "tenant-acme", "labels": {}}, "data": {t.DATA_KEY: t.encode_key(KEY)}})
    for args in ({"tier": "enterprise"}, {"rotate_key": True}):
        result = run(tenant, {"name": "acme", "must_exist": True, **args})
        assert result["failed"] is True
        assert "not managed by tokenlabs" in result["msg"]
    assert t.decode_key(api.store["tenant-acme"]) == KEY


def test_must_exist_refuses_to_create(api):
    result = run(tenant, {"name": "acme", "tier": "pro", "must_exist": True})
    assert result["failed"] is True
    assert "does not exist" in result["msg"]
    assert api.store == {}


def test_revoke_of_an_unknown_tenant_says_it_did_not_exist(api):
    result = run(tenant, {"name": "ghost", "state": "absent"})
    assert result["changed"] is False
    assert result["existed"] is False
    run(tenant, {"name": "acme", "tier": "pro"})
    assert run(tenant, {"name": "acme", "state": "absent"})["existed"] is True


def test_bulk_retier_hands_the_key_over_like_the_single_module(api):
    run(tenants, {"tenants": [{"name": "a", "tier": "pro"}]})
    key = t.decode_key(api.store["tenant-a"])
    api.calls.clear()
    result = run(tenants, {"tenants": [{"name": "a", "tier": "free"}]})
    assert result["updated"] == ["a"]
    holder = t.previous_secret_name("a", key)
    writes = [c for c in api.calls if c[0] in ("create", "patch", "delete")]
    assert writes == [("create", holder), ("patch", "tenant-a"), ("delete", holder)]
    assert set(api.store) == {"tenant-a"}
    assert t.annotations_of(api.store["tenant-a"])["kuadrant.io/groups"] == "free"
    assert t.decode_key(api.store["tenant-a"]) == key
