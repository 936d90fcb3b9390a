"""Module test harness: set_module_args, exit/fail as exceptions, and an in-memory Secret store."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.tokenlabs.platform.plugins.module_utils import tenant as t
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import NotFound, TenantApi

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    patch_module_args = None


@contextlib.contextmanager
def set_module_args(args: dict[str, Any]) -> Iterator[None]:
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    from ansible.module_utils import basic  # noqa: PLC0415 - only on old ansible-core

    previous = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = previous


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def exit_json(_self: Any, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def fail_json(_self: Any, **kwargs: Any) -> None:
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


@pytest.fixture
def module_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.exit_json", exit_json)
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.fail_json", fail_json)


class FakeApi(TenantApi):
    """Secrets in a dict, stored the way the API server stores them (base64 data, resourceVersion); expiry Jobs in
    another, with the uid the server gives them."""

    def __init__(self, namespace: str = t.DEFAULT_NAMESPACE, objects: list[dict[str, Any]] | None = None) -> None:
        super().__init__(client=None, namespace=namespace)
        self.store: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rv = 100
        self.calls: list[tuple[str, str]] = []
        for obj in objects or []:
            self._store(copy.deepcopy(obj))

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        obj["metadata"]["namespace"] = self.namespace
        self.store[obj["metadata"]["name"]] = obj
        return obj

    def get(self, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        obj = self.store.get(name)
        return copy.deepcopy(obj) if obj else None

    def list(self, selector: str | None = None, metadata_only: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("list", selector or ""))
        wanted = dict(part.split("=", 1) for part in selector.split(",")) if selector else {}
        items = [o for o in self.store.values() if wanted.items() <= t.labels_of(o).items()]
        if metadata_only:
            return [{"metadata": copy.deepcopy(o["metadata"])} for o in items]
        return copy.deepcopy(items)

    def get_job(self, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(name))

    def apply_write(self, write: t.Write) -> str | None:
        self.writes += 1
        self.calls.append((write.verb, write.name))
        if write.kind == t.Write.JOB:
            return self._job_write(write)
        if write.verb == t.Write.CREATE:
            if write.name in self.store:
                raise t.ConflictError("already exists")
            self._store(copy.deepcopy(write.body))
        elif write.verb == t.Write.PATCH:
            obj = self.store.get(write.name)
            if obj is None:
                raise NotFound("gone")
            meta = write.body.get("metadata", {})
            if meta.get("resourceVersion") and meta["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise t.ConflictError("conflict")
            for section in ("labels", "annotations"):
                obj["metadata"].setdefault(section, {}).update(meta.get(section) or {})
            if "ownerReferences" in meta:
                obj["metadata"]["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
            obj.setdefault("data", {}).update(write.body.get("data") or {})
            self._store(obj)
        else:
            self.store.pop(write.name, None)
        return None

    def _job_write(self, write: t.Write) -> str | None:
        if write.verb == t.Write.CREATE:
            if write.name in self.jobs:
                raise t.ConflictError("already exists")
            job = copy.deepcopy(write.body)
            job["metadata"]["uid"] = f"uid-{write.name}"
            self.jobs[write.name] = job
            return job["metadata"]["uid"]
        stored_uid = self.jobs.get(write.name, {}).get("metadata", {}).get("uid")
        if write.verb == t.Write.DELETE and write.uid in (None, stored_uid):
            self.jobs.pop(write.name, None)
        return None
