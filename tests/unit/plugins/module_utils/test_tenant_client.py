"""tenant_client resolves kubernetes.core's connection options the way kubernetes.core does, and hands every
configuration it does not implement to the kubernetes client."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant_client as c
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant_k8s as k

OPTIONS = list(k.auth_argspec())


def kubeconfig(user: dict[str, Any], cluster: dict[str, Any] | None = None, name: str = "lab") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "clusters": [{"name": name, "cluster": cluster or {"server": "http://127.0.0.1:8080/"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": user}],
    }


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    for option in [*c.AUTH_OPTIONS, *c.AUTH_OPTIONS.values(), "impersonate_user", "impersonate_groups"]:
        monkeypatch.delenv(f"K8S_AUTH_{option.upper()}", raising=False)


def test_options_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_AUTH_HOST", "https://env:6443")
    monkeypatch.setenv("K8S_AUTH_VALIDATE_CERTS", "no")
    auth = c.auth_settings({"host": "https://param:6443/"}, OPTIONS)
    assert auth == {"host": "https://param:6443/", "verify_ssl": False}


def test_api_key_option_is_left_out_when_the_module_does_not_offer_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_AUTH_API_KEY", "from-env")
    assert c.auth_settings({"api_key": "tenant-key"}, list(k.auth_argspec(token=False))) == {"api_key": "from-env"}


def test_host_and_token_need_no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    endpoint = c.resolve({"host": "https://api:6443/", "api_key": "abc", "verify_ssl": False})
    assert (endpoint.host, endpoint.authorization, endpoint.verify) == ("https://api:6443", "Bearer abc", False)


def test_kubeconfig_file_with_context_token_file_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    config = kubeconfig({"tokenFile": "token"}, {"server": "https://api:6443", "certificate-authority": "ca.pem"})
    config["contexts"].append({"name": "other", "context": {"cluster": "lab", "user": "basic"}})
    config["users"].append({"name": "basic", "user": {"username": "u", "password": "p"}})
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    endpoint = c.resolve({"kubeconfig": str(path)})
    assert (endpoint.authorization, endpoint.ca_file) == ("Bearer tok", str(tmp_path / "ca.pem"))
    other = c.resolve({"kubeconfig": str(path), "context": "other"})
    assert other.authorization == "Basic " + base64.b64encode(b"u:p").decode()


def test_kubeconfig_env_and_option_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = base64.b64encode(b"PEM").decode()
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(kubeconfig({"token": "t"}, {"server": "https://a:1", "certificate-authority-data": ca}))
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    endpoint = c.resolve(c.auth_settings({"ca_cert": "/etc/ca.pem", "validate_certs": False}, OPTIONS))
    assert (endpoint.host, endpoint.authorization) == ("https://a:1", "Bearer t")
    assert (endpoint.ca_file, endpoint.ca_data, endpoint.verify) == ("/etc/ca.pem", None, False)


def test_kubeconfig_dict_with_certificate_data() -> None:
    pem = base64.b64encode(b"PEM").decode()
    config = kubeconfig(
        {"client-certificate-data": pem, "client-key-data": pem},
        {"server": "https://a:1", "certificate-authority-data": pem, "tls-server-name": "kubernetes"},
    )
    endpoint = c.resolve({"kubeconfig": config})
    assert (endpoint.ca_data, endpoint.cert, endpoint.server_name) == ("PEM", ("PEM", "PEM"), "kubernetes")


@pytest.mark.parametrize(
    ("auth", "user"),
    [
        ({}, {"exec": {"command": "get-token"}}),
        ({}, {"auth-provider": {"name": "oidc"}}),
        ({"proxy": "http://proxy:3128"}, {"token": "t"}),
        ({"persist_config": True}, {"token": "t"}),
    ],
)
def test_unsupported_configurations_go_to_the_kubernetes_client(auth: dict[str, Any], user: dict[str, Any]) -> None:
    with pytest.raises(c.Unsupported):
        c.resolve({"kubeconfig": kubeconfig(user), **auth})


def test_list_of_kubeconfig_files_goes_to_the_kubernetes_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/a:/b")
    with pytest.raises(c.Unsupported):
        c.resolve({})


def test_connect_falls_back_to_the_kubernetes_client(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = object()
    monkeypatch.setattr(k, "_client_transport", lambda _params, _options: marker)
    plugin = {"exec": {"command": "get-token", "apiVersion": "client.authentication.k8s.io/v1"}}
    assert k.connect({"kubeconfig": kubeconfig(plugin), "namespace": "n"}).transport is marker
    fast = k.connect({"kubeconfig": kubeconfig({"token": "t"}), "namespace": "n"})
    assert isinstance(fast.transport, c.HttpTransport)


def test_impersonation_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_AUTH_IMPERSONATE_GROUPS", "a,b,")
    headers = c.impersonation_headers({"impersonate_user": "jane"})
    assert headers == [("Impersonate-User", "jane"), ("Impersonate-Group", "a"), ("Impersonate-Group", "b")]


def test_unknown_context_is_a_clear_error() -> None:
    with pytest.raises(k.TenantError, match="no context named 'missing'"):
        k.connect({"kubeconfig": kubeconfig({"token": "t"}), "context": "missing", "namespace": "n"})
