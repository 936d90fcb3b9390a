"""TenantApi over a kube_client client: what each kind of failure becomes, and what a key file keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant as t
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant_k8s as k
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_keyfile import KeyFile


class FakeClient:
    """A kube_client client whose reads find nothing and whose writes fail with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[Any] = []

    def request(self, method: str, path: str, query: Any = None, **kwargs: Any) -> bytes:
        self.calls.append((method, path, {"Accept": kwargs["accept"], "Content-Type": kwargs["content_type"]}))
        self.bodies.append(kwargs.get("body"))
        if method == "GET":
            if path.endswith("/secrets"):
                return json.dumps({"items": []}).encode()
            raise KubeError("not found", 404)
        if self.error is not None:
            raise self.error
        return b"{}"


def api_error(status: int) -> KubeError:
    return KubeError(f"server says {status}", status)


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (api_error(409), t.ConflictError, "conflict: server says 409"),
        (api_error(403), t.TenantError, "refused by the API server (403): server says 403"),
        (api_error(422), t.TenantError, "failed (422): server says 422"),
        (
            KubeError("cannot reach the Kubernetes API server at https://x: connection refused"),
            k.Unreachable,
            "Cannot reach",
        ),
    ],
)
def test_failures_become_tenant_errors(error: Exception, kind: type, text: str) -> None:
    api = k.TenantApi(FakeClient(error), "ns")
    write = t.Write(t.Write.PATCH, "tenant-a", "a", body={"metadata": {}})
    with pytest.raises(kind) as raised:
        api.apply_write(write)
    assert text in str(raised.value)


def test_merge_patches_and_metadata_listings_ask_for_the_right_types() -> None:
    fake = FakeClient()
    api = k.TenantApi(fake, "ns")
    api.apply_write(t.Write(t.Write.PATCH, "tenant-a", "a", body={"metadata": {}}))
    api.list(metadata_only=True)
    assert fake.calls[0][2]["Content-Type"] == "application/merge-patch+json"
    assert "PartialObjectMetadataList" in fake.calls[1][2]["Accept"]
    assert api.get("tenant-missing") is None


def test_a_refused_create_takes_the_key_back_out_of_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.key"
    key_file = KeyFile(str(path))
    key_file.check()
    with pytest.raises(t.TenantError, match="422"):
        k.reconcile_tenant(
            k.TenantApi(FakeClient(api_error(422)), "ns"), t.TenantSpec("acme", tier="pro"), False, key_file=key_file
        )
    assert not path.exists()


def test_an_unanswered_create_leaves_the_key_in_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.key"
    key_file = KeyFile(str(path))
    key_file.check()
    lost = KubeError("cannot reach the Kubernetes API server: connection reset")
    with pytest.raises(t.TenantError, match="keeps the new key"):
        k.reconcile_tenant(
            k.TenantApi(FakeClient(lost), "ns"), t.TenantSpec("acme", tier="pro"), False, key_file=key_file
        )
    assert t.KEY_PATTERN.match(path.read_text().strip())


def test_connect_names_a_broken_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope.kubeconfig"
    with pytest.raises(t.TenantError, match=r"cannot read the kubeconfig .*nope\.kubeconfig"):
        k.connect({"kubeconfig": str(missing), "namespace": "ns"})


def _grace_plan(api: Any) -> t.TenantPlan:
    current = t.build_secret("acme", "pro", "tlabs_sk_" + "a" * 48, "ns")
    current["metadata"]["resourceVersion"] = "1"
    spec = t.TenantSpec("acme", rotate_key=True, previous_key_ttl="1h")
    return t.plan_tenant(spec, "ns", current, [], key_factory=lambda: "tlabs_sk_" + "c" * 48)


def _fake_api() -> Any:
    from tests.unit.plugins.modules.utils import FakeApi  # noqa: PLC0415 - the module tests' in-memory server

    return FakeApi("ns")


def test_the_grace_secret_is_owned_by_the_uid_the_server_gave_its_job() -> None:
    api = _fake_api()
    plan = _grace_plan(api)
    api.store["tenant-acme"] = {"metadata": {"name": "tenant-acme", "resourceVersion": "1"}}
    k._apply_plan(api, plan)
    (job,) = api.jobs.values()
    secret = next(v for n, v in api.store.items() if n != "tenant-acme")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]


def test_a_job_of_that_name_from_elsewhere_is_refused_before_the_secret_names_it() -> None:
    api = _fake_api()
    plan = _grace_plan(api)
    job_write = plan.writes[0]
    api.jobs[job_write.name] = {"metadata": {"name": job_write.name, "uid": "theirs", "labels": {}, "annotations": {}}}
    with pytest.raises(t.TenantError, match="is not this expiry's"):
        k._apply_plan(api, plan)
    assert api.store == {}, "no Secret may name a Job that is not its own"


def test_the_same_expiry_from_a_concurrent_run_shares_its_job() -> None:
    api = _fake_api()
    plan = _grace_plan(api)
    job_write = plan.writes[0]
    api.jobs[job_write.name] = {**job_write.body, "metadata": {**job_write.body["metadata"], "uid": "concurrent"}}
    api.store["tenant-acme"] = {"metadata": {"name": "tenant-acme", "resourceVersion": "1"}}
    k._apply_plan(api, plan)
    secret = next(v for n, v in api.store.items() if n != "tenant-acme")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "concurrent"


def test_an_owner_reference_to_a_job_the_plan_did_not_create_is_an_error() -> None:
    write = t.Write(t.Write.CREATE, "s", "acme", body={"metadata": {"ownerReferences": [t.job_owner_reference("j")]}})
    with pytest.raises(t.TenantError, match="did not create"):
        k._own(write, {})


def test_jobs_are_created_and_deleted_at_their_own_path_with_background_propagation() -> None:
    fake = FakeClient()
    api = k.TenantApi(fake, "ns")
    api.apply_write(t.Write(t.Write.DELETE, "key-expiry-x", "a", kind=t.Write.JOB, uid="u1"))
    method, path, _headers = fake.calls[0]
    assert (method, path) == ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/key-expiry-x")
    # The API's default for Jobs would orphan the Secret; the uid makes sure only that Job goes.
    assert fake.bodies[0]["propagationPolicy"] == "Background"
    assert fake.bodies[0]["preconditions"] == {"uid": "u1"}
    api.apply_write(t.Write(t.Write.CREATE, "key-expiry-y", "a", body={"metadata": {}}, kind=t.Write.JOB))
    assert fake.calls[1][:2] == ("POST", "/apis/batch/v1/namespaces/ns/jobs")
