"""TenantApi over the kubernetes ApiClient: what each kind of failure becomes, and what a key file keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import urllib3
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant as t
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant_k8s as k
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_keyfile import KeyFile
from kubernetes.client.exceptions import ApiException


class Response:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.data = json.dumps(payload).encode()


class FakeClient:
    """An ApiClient whose reads find nothing and whose writes fail with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def call_api(self, path: str, method: str, **kwargs: Any) -> Response:
        self.calls.append((method, path, kwargs["header_params"]))
        assert kwargs["_preload_content"] is False, "raw bytes, never models"
        if method == "GET":
            if path.endswith("/secrets"):
                return Response({"items": []})
            raise ApiException(status=404, reason="Not Found")
        if self.error is not None:
            raise self.error
        return Response({})


def api_error(status: int) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = json.dumps({"message": f"server says {status}"})
    return error


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (api_error(409), t.ConflictError, "conflict: server says 409"),
        (api_error(403), t.TenantError, "refused by the API server (403): server says 403"),
        (api_error(422), t.TenantError, "failed (422): server says 422"),
        (urllib3.exceptions.MaxRetryError(None, "/", "connection refused"), k.Unreachable, "Cannot reach"),
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
    lost = urllib3.exceptions.ProtocolError("connection reset")
    with pytest.raises(t.TenantError, match="keeps the new key"):
        k.reconcile_tenant(
            k.TenantApi(FakeClient(lost), "ns"), t.TenantSpec("acme", tier="pro"), False, key_file=key_file
        )
    assert t.KEY_PATTERN.match(path.read_text().strip())


def test_connect_names_a_broken_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope.kubeconfig"
    with pytest.raises(t.TenantError, match="Cannot reach the Kubernetes API server"):
        k.connect({"kubeconfig": str(missing), "namespace": "ns"})
