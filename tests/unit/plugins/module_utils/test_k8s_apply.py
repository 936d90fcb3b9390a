"""k8s_apply's decisions: manifests accepted, what counts as a difference, what a diff may show."""

from __future__ import annotations

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import k8s_apply as a


def cm(name: str, **extra: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


def test_definitions_come_as_one_manifest_or_nested_lists() -> None:
    assert a.flatten(cm("a")) == [cm("a")]
    assert a.flatten([cm("a"), [cm("b"), None], []]) == [cm("a"), cm("b")]
    assert a.flatten(None) == []
    with pytest.raises(a.ApplyError, match="not str"):
        a.flatten(["kind: ConfigMap"])


def test_every_problem_is_reported_before_anything_is_written() -> None:
    with pytest.raises(a.ApplyError) as err:
        a.validated([cm("a"), {"kind": "ConfigMap", "metadata": {}}, cm("a")], "ns")
    assert (
        str(err.value) == "definitions[1]: no apiVersion, metadata.name; definitions[2]: ConfigMap ns/a appears twice"
    )


def test_the_default_namespace_fills_only_what_has_none() -> None:
    objects = a.validated([cm("a"), {**cm("b"), "metadata": {"name": "b", "namespace": "other"}}], "ns")
    assert [o["metadata"]["namespace"] for o in objects] == ["ns", "other"]
    assert a.validated([cm("a")], None)[0]["metadata"] == {"name": "a"}


def test_status_and_server_bookkeeping_are_no_difference() -> None:
    live = {**cm("a", data={"k": "v"}), "status": {"x": 1}}
    live["metadata"] = {"name": "a", "resourceVersion": "7", "generation": 2, "managedFields": [{"manager": "other"}]}
    dry = cm("a", data={"k": "v"})
    dry["metadata"] = {
        "name": "a",
        "resourceVersion": "7",
        "generation": 2,
        "managedFields": [{"manager": "tokenlabs"}],
    }
    assert not a.differs(live, dry)
    assert a.differs(live, {**dry, "data": {"k": "w"}})
    assert a.differs(None, dry)


def test_a_secret_diff_shows_fingerprints_not_values() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}}
    shown = a.redacted(secret)
    assert shown is not None and "c2VjcmV0" not in str(shown)
    assert shown["data"]["password"].startswith("<redacted sha256:")
    changed = a.redacted({**secret, "data": {"password": "b3RoZXI="}})
    assert changed is not None and changed["data"] != shown["data"]
    assert a.redacted(cm("a", data={"k": "v"}))["data"] == {"k": "v"}
