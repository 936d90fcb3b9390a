"""How the lab's kubelet reads pod specs, checked without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokenlabs.lab import controllers, kubelet


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "eg-1", "namespace": "envoy-gateway-system", "uid": "u1", "labels": {"app": "eg"}},
        "spec": {"serviceAccountName": "envoy-gateway", "nodeName": "controller", **spec},
        "status": {"podIP": "10.244.0.7"},
    }


class FakeCluster(kubelet.Cluster):
    def __init__(self, objects: dict[tuple[str, str, str], dict[str, bytes]]) -> None:
        self.objects = objects

    def data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
        found = self.objects.get((kind, namespace, name))
        if found is None and not optional:
            raise kubelet.PodError(f"{kind} {namespace}/{name} does not exist yet")
        return found

    def token(self, namespace: str, account: str, audiences: list[str] | None, seconds: int) -> str:
        return f"token-for-{namespace}-{account}-{audiences}"


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("docker.io/envoyproxy/gateway:v1.8.3", "docker.io/envoyproxy/gateway"),
        ("quay.io/kuadrant/authorino@sha256:abc", "quay.io/kuadrant/authorino"),
        ("registry:5000/team/ctl:v1", "registry:5000/team/ctl"),
        ("registry:5000/team/ctl", "registry:5000/team/ctl"),
    ],
)
def test_image_repository_drops_tag_and_digest(image: str, repository: str) -> None:
    assert kubelet.image_repository(image) == repository


def test_dependent_variables_expand_as_kubernetes_does() -> None:
    env = {"NS": "kuadrant-system"}
    assert kubelet._expand("--ns=$(NS)", env) == "--ns=kuadrant-system"
    assert kubelet._expand("$$(NS) $(MISSING)", env) == "$(NS) $(MISSING)"


def test_environment_resolves_field_secret_and_configmap_references() -> None:
    cluster = FakeCluster(
        {
            ("secret", "envoy-gateway-system", "creds"): {"user": b"alice"},
            ("configmap", "envoy-gateway-system", "cfg"): {"A": b"1", "B": b"2"},
        }
    )
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "WHO", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "WHERE", "value": "$(NS)/x"},
        ],
    }
    env = kubelet.container_env(container, _pod(), cluster, {"PATH": "/bin"})
    assert env["NS"] == "envoy-gateway-system"
    assert env["WHO"] == "alice"
    assert env["CFG_A"] == "1"
    assert env["APP"] == "eg"
    assert env["WHERE"] == "envoy-gateway-system/x"
    assert "GONE" not in env


def test_a_missing_secret_keeps_the_pod_waiting(tmp_path: Path) -> None:
    volume = {"name": "certs", "secret": {"secretName": "envoy-gateway"}}
    with pytest.raises(kubelet.PodError, match="does not exist yet"):
        kubelet.materialize_volume(volume, _pod(), tmp_path / "certs", FakeCluster({}))


def test_projected_token_volume_holds_token_ca_and_namespace(tmp_path: Path) -> None:
    volume = {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "audience": "aud"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ]
        },
    }
    published = FakeCluster({("configmap", "envoy-gateway-system", "kube-root-ca.crt"): {"ca.crt": b"CA"}})
    kubelet.materialize_volume(volume, _pod(), tmp_path / "v", published)
    assert (tmp_path / "v" / "token").read_text() == "token-for-envoy-gateway-system-envoy-gateway-['aud']"
    assert (tmp_path / "v" / "ca.crt").read_bytes() == b"CA"
    assert (tmp_path / "v" / "namespace").read_text() == "envoy-gateway-system"


def test_mount_paths_never_create_directories_on_the_host() -> None:
    assert kubelet.mount_target("/certs") == "/certs"
    assert kubelet.mount_target("/tmp/k8s-webhook-server/serving-certs").startswith("/tmp/")
    with pytest.raises(kubelet.PodError, match="on the host"):
        kubelet.mount_target("/etc/tokenlabs-does-not-exist/conf")


def test_named_target_ports_resolve_through_the_pod_spec() -> None:
    pod = _pod(containers=[{"name": "c", "ports": [{"name": "webhook", "containerPort": 9443}]}])
    run = kubelet.PodRun("u1", "ns", "p", pod, Path("/nonexistent"), [])
    assert run.container_port("webhook") == 9443
    assert run.container_port(8080) == 8080
    assert run.container_port("metrics") is None


def test_every_pinned_controller_names_a_module_release_and_an_image() -> None:
    pinned = controllers.pinned()
    assert {c.name for c in pinned} >= {"envoy-gateway", "kuadrant-operator", "authorino"}
    for ctl in pinned:
        assert ctl.version.startswith("v"), ctl
        assert "/" in ctl.image and ":" not in ctl.image.rsplit("/", 1)[-1], ctl
    keys = {c.cache_key("go1.26.8", "amd64") for c in pinned}
    assert len(keys) == len(pinned)
