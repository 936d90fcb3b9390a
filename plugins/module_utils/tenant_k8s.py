# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)
"""Executes tenant plans against the Kubernetes API.

The connection takes kubernetes.core's options (k8s_auth_options and their K8S_AUTH_* environment variables)
through kube_client, so it behaves as in kubernetes.core.k8s. Requests carry JSON bodies and return plain dicts:
a listing of a thousand Secrets is not turned into model objects, and merge patches carry the resourceVersion
so concurrent writers meet a 409 instead of overwriting each other.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import (
    METADATA_ONLY,
    KubeError,
    auth_argspec,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import connect as kube_connect
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant import (
    DEFAULT_NAMESPACE,
    DEFAULT_TIERS,
    KEY_ROLE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    MANAGED_SELECTOR,
    ROLE_PREVIOUS,
    TENANT_LABEL,
    BulkPlan,
    ConflictError,
    TenantError,
    TenantPlan,
    TenantSpec,
    Write,
    plan_tenant,
    plan_tenants,
    secret_name,
    tenant_facts,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_keyfile import KeyFile

CONFLICT_ATTEMPTS = 5
DEFAULT_WORKERS = 8
_MERGE_PATCH = "application/merge-patch+json"


def common_argspec(token: bool = True) -> Dict[str, Any]:
    spec = auth_argspec(token)
    spec.update(
        namespace=dict(type="str", default=DEFAULT_NAMESPACE),
        allowed_tiers=dict(type="list", elements="str", default=list(DEFAULT_TIERS)),
    )
    return spec


def connect(params: Dict[str, Any], token: bool = True) -> "TenantApi":
    """An API handle from the module's connection options; a clear TenantError if no client can be built."""
    try:
        return TenantApi(kube_connect(params, token), params["namespace"])
    except KubeError as exc:
        raise TenantError(str(exc)) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


class TenantApi:
    """Secrets in one namespace, as dicts, through a kube_client client."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.writes = 0
        self._lock = threading.Lock()

    def _path(self, name: Optional[str] = None, kind: str = Write.SECRET) -> str:
        if kind == Write.JOB:
            base = "/apis/batch/v1/namespaces/{0}/jobs".format(self.namespace)
        else:
            base = "/api/v1/namespaces/{0}/secrets".format(self.namespace)
        return base if name is None else "{0}/{1}".format(base, name)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Optional[List[Tuple[str, str]]] = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        parse: bool = True,
    ) -> Dict[str, Any]:
        try:
            payload = self.client.request(method, path, query, body=body, content_type=content_type, accept=accept)
        except KubeError as exc:
            if exc.status is None:
                raise Unreachable("Cannot reach the Kubernetes API server: {0}".format(_short(exc))) from exc
            raise _api_error(exc, method, path) from exc
        return json.loads(payload) if parse and payload else {}

    def get(self, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self._call("GET", self._path(name))
        except NotFound:
            return None

    def list(self, selector: Optional[str] = None, metadata_only: bool = False) -> List[Dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        accept = METADATA_ONLY if metadata_only else "application/json"
        return self._call("GET", self._path(), query=query, accept=accept).get("items") or []

    def previous(self, tenant: str) -> List[Dict[str, Any]]:
        selector = "{0},{1}={2},{3}={4}".format(MANAGED_SELECTOR, TENANT_LABEL, tenant, KEY_ROLE_LABEL, ROLE_PREVIOUS)
        return self.list(selector)

    def get_job(self, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self._call("GET", self._path(name, Write.JOB))
        except NotFound:
            return None

    def apply_write(self, write: Write) -> Optional[str]:
        """Perform one write; for the creation of a Job, return its uid (what its Secret's owner reference needs)."""
        with self._lock:
            self.writes += 1
        # The server's answer to a write is not used otherwise: what is reported comes from the plan or a fresh read.
        if write.verb == Write.CREATE:
            created = self._call("POST", self._path(kind=write.kind), body=write.body, parse=write.kind == Write.JOB)
            return (created.get("metadata") or {}).get("uid")
        if write.verb == Write.PATCH:
            self._call("PATCH", self._path(write.name), body=write.body, content_type=_MERGE_PATCH, parse=False)
            return None
        body: Dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if write.resource_version:
            body["preconditions"] = {"resourceVersion": write.resource_version}
        if write.uid:
            body["preconditions"] = {"uid": write.uid}
        if write.kind == Write.JOB:
            # The API's default for Jobs orphans what they own; nothing should outlive its expiry Job.
            body["propagationPolicy"] = "Background"
        with contextlib.suppress(NotFound):  # already gone: the desired state
            self._call("DELETE", self._path(write.name, write.kind), body=body, parse=False)
        return None


class NotFound(TenantError):
    pass


class Unreachable(TenantError):
    """No answer from the server: a write may or may not have been stored."""


def _api_error(exc: KubeError, method: str, path: str) -> TenantError:
    if exc.status == 404:
        return NotFound("{0} {1}: not found".format(method, path))
    if exc.status == 409:
        return ConflictError("{0} {1}: conflict: {2}".format(method, path, exc))
    if exc.status in (401, 403):
        return TenantError("{0} {1} was refused by the API server ({2}): {3}".format(method, path, exc.status, exc))
    return TenantError("{0} {1} failed ({2}): {3}".format(method, path, exc.status, exc))


def _apply_plan(api: TenantApi, plan: TenantPlan, sleep: Callable[[float], None] = time.sleep) -> None:
    jobs: Dict[str, str] = {}
    for write in plan.writes:
        if write.settle:
            sleep(write.settle)
        _own(write, jobs)
        try:
            uid = api.apply_write(write)
        except ConflictError:
            if write.kind == Write.JOB:
                uid = _existing_job_uid(api, write)
            # A grace-period Secret is named after the old key: if it exists, that key is already kept.
            elif write.verb == Write.CREATE and write.name != secret_name(write.tenant):
                continue
            else:
                raise
        if write.kind == Write.JOB and write.verb == Write.CREATE:
            if not uid:
                raise TenantError("the API server created Job {0} without a uid".format(write.name))
            jobs[write.name] = uid


def _own(write: Write, jobs: Dict[str, str]) -> None:
    """Fill in the uid of a Job created earlier in the plan where the write names it as the Secret's owner.

    The garbage collector deletes a Secret whose owners are all missing, so an owner reference with a wrong uid
    would remove the key at once: a reference to a Job this plan did not create is an error, never a guess.
    """
    for ref in ((write.body or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and not ref.get("uid"):
            if ref.get("name") not in jobs:
                message = "{0} names Job {1}, which this run did not create".format(write.name, ref.get("name"))
                raise TenantError(message)
            ref["uid"] = jobs[ref["name"]]


def _existing_job_uid(api: TenantApi, write: Write) -> str:
    """A Job of that name exists (a concurrent run with the same expiry to the second): use it if it is the same."""
    found = api.get_job(write.name) or {}
    meta = found.get("metadata") or {}
    wanted = ((write.body or {}).get("metadata") or {}).get("annotations") or {}
    annotations = meta.get("annotations") or {}
    ours = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
    if not ours or any(annotations.get(k) != v for k, v in wanted.items()):
        message = "Job {0}/{1} exists and is not this expiry's; refusing to use it".format(api.namespace, write.name)
        raise TenantError(message)
    return meta.get("uid") or ""


def reconcile_tenant(
    api: TenantApi,
    spec: TenantSpec,
    check_mode: bool,
    sleep: Callable[[float], None] = time.sleep,
    key_file: Optional[KeyFile] = None,
) -> TenantPlan:
    """Read, plan and write one tenant; on a 409 read again and re-plan (another writer got there first).

    With ``key_file`` a new key is in that file before the server is asked to store it, and the file is put back
    when the server refuses; the caller has already called ``key_file.check()``.
    """
    for attempt in range(CONFLICT_ATTEMPTS):
        current = api.get(secret_name(spec.name))
        previous = api.previous(spec.name)
        plan = plan_tenant(spec, api.namespace, current, previous)
        if not plan.changed:
            plan.facts = tenant_facts(spec.name, api.namespace, current, previous)
            return plan
        if check_mode:
            return plan
        if key_file is not None and plan.new_key:
            key_file.deliver({spec.name: plan.new_key})
        try:
            _apply_plan(api, plan, sleep)
        except ConflictError:
            sleep(0.05 * (attempt + 1))
            continue
        except Unreachable as exc:
            if key_file is not None and plan.new_key:
                raise TenantError(
                    "{0}; {1} keeps the new key, which is valid if the write reached the server".format(
                        exc, key_file.path
                    )
                ) from exc
            raise
        except TenantError:
            if key_file is not None:
                key_file.undo()
            raise
        if spec.state == "present":
            stored = api.get(secret_name(spec.name))
            plan.facts = tenant_facts(spec.name, api.namespace, stored, api.previous(spec.name))
        return plan
    if key_file is not None:
        key_file.undo()
    raise TenantError(
        "tenant {0!r}: the Secret kept changing during {1} attempts (409 Conflict); "
        "another process is writing it".format(spec.name, CONFLICT_ATTEMPTS)
    )


def reconcile_tenants(
    api: TenantApi,
    specs: List[TenantSpec],
    exclusive: bool,
    check_mode: bool,
    *,
    workers: int = DEFAULT_WORKERS,
    key_file: Optional[KeyFile] = None,
) -> Tuple[BulkPlan, List[str]]:
    """One metadata-only LIST of the namespace, one plan, then only the writes that differ (tenants in parallel).

    Returns the plan and the tenants whose writes failed, with reasons, after retrying conflicts. Keys of tenants
    whose creation the server refused are dropped from the plan. With ``key_file`` (already checked) every new key
    is in the file before the first write, and afterwards the file holds exactly the keys the server took.
    """
    listing = api.list(metadata_only=True)
    bulk = plan_tenants(specs, api.namespace, listing, exclusive=exclusive)
    pending = [p for p in bulk.plans if p.changed]
    if check_mode or not pending:
        return bulk, []
    by_name = {s.name: s for s in specs}
    errors: List[str] = []
    delivered = _new_keys(bulk)
    if key_file is not None and delivered:
        key_file.deliver(delivered)

    def run(plan: TenantPlan) -> Optional[str]:
        try:
            if plan.handover_pending:
                return _handover_one(api, plan, by_name[plan.tenant])
            _apply_plan(api, plan)
        except ConflictError:
            return _retry_one(api, plan, by_name.get(plan.tenant))
        except Unreachable as exc:
            return "{0}: {1}".format(plan.tenant, exc)
        except TenantError as exc:
            plan.new_key = None
            plan.key_action = None
            return "{0}: {1}".format(plan.tenant, exc)
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending)))) as pool:
        for error in pool.map(run, pending):
            if error:
                errors.append(error)
    stored = _new_keys(bulk)
    if key_file is not None and stored != delivered:
        key_file.undo()
        if stored:
            key_file.deliver(stored)
    return bulk, errors


def _handover_one(api: TenantApi, plan: TenantPlan, spec: TenantSpec) -> Optional[str]:
    """A tier change found by the bulk listing, which carries no keys: read this tenant's Secrets and hand over."""

    def no_new_key() -> str:
        raise TenantError("its key is missing or malformed: repair it with a rotation first")

    for _attempt in range(CONFLICT_ATTEMPTS):
        current = api.get(secret_name(spec.name))
        fresh = plan_tenant(spec, api.namespace, current, api.previous(spec.name), key_factory=no_new_key)
        try:
            _apply_plan(api, fresh)
        except ConflictError:
            time.sleep(0.05)
            continue
        plan.writes = fresh.writes
        return None
    return "{0}: the Secret kept changing (409 Conflict)".format(spec.name)


def _new_keys(bulk: BulkPlan) -> Dict[str, str]:
    return {p.tenant: p.new_key for p in bulk.plans if p.new_key}


def _retry_one(api: TenantApi, plan: TenantPlan, spec: Optional[TenantSpec]) -> Optional[str]:
    spec = spec or TenantSpec(plan.tenant, state="absent")
    # The conflicting write was refused, so the key planned with it was never stored.
    plan.new_key = None
    plan.key_action = None
    for _attempt in range(CONFLICT_ATTEMPTS):
        try:
            current = api.get(secret_name(spec.name))
            fresh = plan_tenant(spec, api.namespace, current, api.previous(spec.name), key_known=False)
            _apply_plan(api, fresh)
        except ConflictError:
            time.sleep(0.05)
            continue
        except TenantError as exc:
            return "{0}: {1}".format(spec.name, exc)
        # Whoever created the Secret first owns its key: only a key this retry stored is reported.
        if fresh.key_action == "created":
            plan.new_key, plan.key_action = fresh.new_key, fresh.key_action
        plan.writes = fresh.writes
        return None
    return "{0}: the Secret kept changing (409 Conflict)".format(spec.name)
