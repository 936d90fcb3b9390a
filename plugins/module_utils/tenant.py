# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)
"""Tenant Secrets as data: validation, key generation, desired-versus-current planning and redacted diffs.

Nothing here talks to Kubernetes. A plan is a list of writes (create, merge patch, delete) that
``tenant_k8s`` executes; an empty list means the tenant already matches. Keys only ever leave this
module as the value of a freshly generated or rotated key; everything a caller may print carries a
fingerprint instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import copy
import datetime
import hashlib
import math
import re
import secrets
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

# The Authorino contract (design README, Tenants): these select the Secret as an API key.
CONTRACT_LABELS = {"authorino.kuadrant.io/managed-by": "authorino", "app": "token-labs"}
TIER_ANNOTATION = "kuadrant.io/groups"
USER_ID_ANNOTATION = "secret.kuadrant.io/user-id"
DATA_KEY = "api_key"

# Ownership: a Secret without this label is foreign and is never modified or deleted.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "tokenlabs"
MANAGED_SELECTOR = "{0}={1}".format(MANAGED_BY_LABEL, MANAGED_BY_VALUE)
MANAGED_BY_SELECTOR_TEXT = "{0}: {1}".format(MANAGED_BY_LABEL, MANAGED_BY_VALUE)
TENANT_LABEL = "tokenlabs.io/tenant"
KEY_ROLE_LABEL = "tokenlabs.io/key"
ROLE_CURRENT = "current"
ROLE_PREVIOUS = "previous"
EXPIRES_ANNOTATION = "tokenlabs.io/expires-at"
HANDOVER_ANNOTATION = "tokenlabs.io/handover-at"

# Authorino keeps an API key's identity (and so its tier) until the key value itself changes: a patched tier
# annotation alone is ignored. It does take a Secret of another name holding the same key as the key's new
# holder, and the tenant's own Secret again when that one changes next. A tier change therefore hands the key
# over: a short-lived Secret with the key and the new tier, the tenant's Secret patched (tier and a hand-over
# stamp), then, once Authorino has taken both in order, the short-lived Secret deleted. The key authenticates
# throughout. A hand-over Secret left by an interrupted run expires after HANDOVER_SECONDS and is finished the
# same way by the next run: deleting it without touching the tenant's Secret would revoke the key.
HANDOVER_SECONDS = 300
HANDOVER_SETTLE_SECONDS = 2.0

# A previous key expires twice over. Authorino refuses it from the second in its expires-at annotation (the
# policies role's AuthPolicy compares that annotation with the request time), and the Secret itself is removed in
# the cluster by Kubernetes' own controllers: it is owned by a Job that runs no pod (parallelism 0) and whose
# activeDeadlineSeconds ends at the expiry; the job controller fails it then, the TTL-after-finished controller
# deletes it, and the garbage collector deletes the Secret it owns. No workload, image pull, ServiceAccount or
# RBAC is added to the cluster. A hand-over holder carries no expires-at and no Job: while an interrupted
# hand-over is left, it may be the Secret Authorino holds the tenant's current key by, and removing or refusing it
# would lock the tenant out.
EXPIRY_JOB_PREFIX = "key-expiry-"
SECRET_ANNOTATION = "tokenlabs.io/secret"
# Never pulled: the Job has no pods. A Job's pod template must name an image, so it names the one every node has.
EXPIRY_JOB_IMAGE = "registry.k8s.io/pause:3.10.2"
JOB_API_VERSION = "batch/v1"

RESERVED_LABELS = frozenset([*CONTRACT_LABELS, MANAGED_BY_LABEL, TENANT_LABEL, KEY_ROLE_LABEL])
RESERVED_ANNOTATIONS = frozenset(
    [TIER_ANNOTATION, USER_ID_ANNOTATION, EXPIRES_ANNOTATION, HANDOVER_ANNOTATION, SECRET_ANNOTATION]
)

KEY_PREFIX = "tlabs_sk_"
KEY_HEX_LENGTH = 48
KEY_PATTERN = re.compile(r"^tlabs_sk_[0-9a-f]{48}\Z")
TENANT_ID_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
TENANT_ID_MAX = 63
DEFAULT_TIERS = ("free", "pro", "enterprise")
DEFAULT_NAMESPACE = "kuadrant-system"
SECRET_PREFIX = "tenant-"

_TTL_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*\Z")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A grace period is a hand-over window; anything longer is a second key that never expires in practice.
MAX_TTL_DAYS = 365
_LABEL_VALUE_PATTERN = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?\Z")
_QUALIFIED_NAME_PATTERN = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z"
)


class TenantError(Exception):
    """The one error type of the tenant modules; its message is what the operator reads."""


class ConflictError(TenantError):
    """The server rejected a write because the object changed underneath (HTTP 409): read again and re-plan."""


# ---------------------------------------------------------------------------------------------
# Validation


def validate_tenant_id(tenant_id: Any) -> str:
    if not isinstance(tenant_id, str) or not tenant_id:
        raise TenantError("tenant id must be a non-empty string (a DNS-1123 label), got {0!r}".format(tenant_id))
    if len(tenant_id) > TENANT_ID_MAX:
        raise TenantError(
            "tenant id {0!r} is {1} characters long; a DNS-1123 label has at most {2}".format(
                tenant_id, len(tenant_id), TENANT_ID_MAX
            )
        )
    if not TENANT_ID_PATTERN.match(tenant_id):
        raise TenantError(
            "tenant id {0!r} is not a DNS-1123 label: use lower-case ASCII letters, digits and '-', "
            "starting and ending with a letter or digit".format(tenant_id)
        )
    return tenant_id


def validate_tier(tier: Any, allowed_tiers: Iterable[str]) -> str:
    allowed = list(allowed_tiers)
    if not allowed:
        raise TenantError("allowed_tiers is empty: no tier can be assigned")
    if tier not in allowed:
        raise TenantError("unknown tier {0!r}; allowed tiers: {1}".format(tier, ", ".join(allowed)))
    return tier


def validate_key(key: Any) -> str:
    # Never echo the value: a malformed key may still be a real secret with a typo.
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise TenantError(
            "api_key is malformed: expected '{0}' followed by {1} lower-case hex characters".format(
                KEY_PREFIX, KEY_HEX_LENGTH
            )
        )
    return key


def validate_extras(labels: Optional[Dict[str, Any]], annotations: Optional[Dict[str, Any]]) -> None:
    for key, value in (labels or {}).items():
        if key in RESERVED_LABELS:
            raise TenantError("label {0!r} is set by the tenant module and cannot be overridden".format(key))
        if not _QUALIFIED_NAME_PATTERN.match(key):
            raise TenantError("label key {0!r} is not a valid Kubernetes label key".format(key))
        if not isinstance(value, str) or not _LABEL_VALUE_PATTERN.match(value):
            raise TenantError("label {0!r} has an invalid value {1!r}".format(key, value))
    for key, value in (annotations or {}).items():
        if key in RESERVED_ANNOTATIONS:
            raise TenantError("annotation {0!r} is set by the tenant module and cannot be overridden".format(key))
        if not _QUALIFIED_NAME_PATTERN.match(key):
            raise TenantError("annotation key {0!r} is not a valid Kubernetes annotation key".format(key))
        if not isinstance(value, str):
            raise TenantError("annotation {0!r} must be a string, got {1!r}".format(key, value))


def parse_ttl(value: Any) -> Optional[int]:
    """``previous_key_ttl`` in seconds: an integer or ``<n>[s|m|h|d|w]``; None or empty means no grace period."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TenantError("previous_key_ttl must be a duration such as 3600, '90m', '24h' or '7d'")
    match = _TTL_PATTERN.match(str(value))
    if not match:
        raise TenantError(
            "previous_key_ttl {0!r} is not a duration; use seconds or <n>s/m/h/d/w, e.g. '24h'".format(value)
        )
    seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    if seconds <= 0:
        raise TenantError("previous_key_ttl must be positive")
    if seconds > MAX_TTL_DAYS * 86400:
        raise TenantError(
            "previous_key_ttl {0!r} is longer than {1} days; the old key must stop working within a year".format(
                value, MAX_TTL_DAYS
            )
        )
    return seconds


# ---------------------------------------------------------------------------------------------
# Keys


def generate_key() -> str:
    """A new key from the operating system's CSPRNG: 192 bits of entropy."""
    return KEY_PREFIX + secrets.token_hex(KEY_HEX_LENGTH // 2)


def fingerprint(key: Optional[str]) -> Optional[str]:
    """A short, non-reversible identifier for a key, safe to print and to compare."""
    if key is None:
        return None
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def redacted(key: Optional[str]) -> Optional[str]:
    if key is None:
        return None
    return "<redacted {0}>".format(fingerprint(key))


def secret_name(tenant_id: str) -> str:
    return SECRET_PREFIX + tenant_id


def previous_secret_name(tenant_id: str, old_key: str) -> str:
    return "{0}{1}-prev-{2}".format(SECRET_PREFIX, tenant_id, hashlib.sha256(old_key.encode("utf-8")).hexdigest()[:10])


def decode_key(secret: Dict[str, Any]) -> Optional[str]:
    """The key a Secret holds, as the server stores it (base64 ``data``); ``stringData`` for local objects."""
    string_data = secret.get("stringData") or {}
    if DATA_KEY in string_data:
        return string_data[DATA_KEY]
    raw = (secret.get("data") or {}).get(DATA_KEY)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def encode_key(key: str) -> str:
    return base64.b64encode(key.encode("utf-8")).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Time


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Optional[str]) -> Optional[datetime.datetime]:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


# ---------------------------------------------------------------------------------------------
# Objects


def _meta(obj: Dict[str, Any]) -> Dict[str, Any]:
    return obj.get("metadata") or {}


def labels_of(obj: Dict[str, Any]) -> Dict[str, str]:
    return dict(_meta(obj).get("labels") or {})


def annotations_of(obj: Dict[str, Any]) -> Dict[str, str]:
    return dict(_meta(obj).get("annotations") or {})


def is_managed(obj: Dict[str, Any]) -> bool:
    return labels_of(obj).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def key_role(obj: Dict[str, Any]) -> str:
    return labels_of(obj).get(KEY_ROLE_LABEL, ROLE_CURRENT)


def tenant_of(obj: Dict[str, Any]) -> Optional[str]:
    return annotations_of(obj).get(USER_ID_ANNOTATION) or labels_of(obj).get(TENANT_LABEL)


def ensure_ours(obj: Dict[str, Any], tenant_id: str) -> None:
    name = _meta(obj).get("name")
    namespace = _meta(obj).get("namespace")
    if not is_managed(obj):
        raise TenantError(
            "Secret {0}/{1} exists but is not managed by tokenlabs (no label {2}); refusing to modify or "
            "delete it. Rename the tenant, or remove that Secret yourself if it is obsolete.".format(
                namespace, name, MANAGED_BY_SELECTOR_TEXT
            )
        )
    owner = tenant_of(obj)
    if owner != tenant_id:
        raise TenantError(
            "Secret {0}/{1} is managed by tokenlabs but belongs to tenant {2!r}, not {3!r}; "
            "refusing to touch it".format(namespace, name, owner, tenant_id)
        )


def managed_labels(tenant_id: str, role: str) -> Dict[str, str]:
    labels = dict(CONTRACT_LABELS)
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    labels[TENANT_LABEL] = tenant_id
    labels[KEY_ROLE_LABEL] = role
    return labels


def build_secret(
    tenant_id: str,
    tier: str,
    key: str,
    namespace: str,
    *,
    labels: Optional[Dict[str, str]] = None,
    annotations: Optional[Dict[str, str]] = None,
    previous_of: Optional[str] = None,
    expires_at: Optional[str] = None,
    handover_at: Optional[str] = None,
    owner_job: Optional[str] = None,
) -> Dict[str, Any]:
    """The Secret for a tenant's current key; with ``expires_at`` for a previous key in its grace period (owned by
    the Job ``owner_job`` that removes it), with ``handover_at`` for a hand-over holder of the current key."""
    role = ROLE_PREVIOUS if expires_at or handover_at else ROLE_CURRENT
    all_labels = dict(labels or {})
    all_labels.update(managed_labels(tenant_id, role))
    all_annotations = dict(annotations or {})
    all_annotations[TIER_ANNOTATION] = tier
    all_annotations[USER_ID_ANNOTATION] = tenant_id
    if expires_at:
        all_annotations[EXPIRES_ANNOTATION] = expires_at
    if handover_at:
        all_annotations[HANDOVER_ANNOTATION] = handover_at
    metadata: Dict[str, Any] = {
        "name": previous_of or secret_name(tenant_id),
        "namespace": namespace,
        "labels": all_labels,
        "annotations": all_annotations,
    }
    if owner_job:
        metadata["ownerReferences"] = [job_owner_reference(owner_job)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {DATA_KEY: encode_key(key)},
    }


def job_owner_reference(job: str, uid: str = "") -> Dict[str, str]:
    """An owner reference to the expiry Job ``job``; the uid is filled in once the Job exists (see tenant_k8s)."""
    return {"apiVersion": JOB_API_VERSION, "kind": "Job", "name": job, "uid": uid}


def expiry_job_name(secret: str, expires: datetime.datetime) -> str:
    """At most 63 characters (the job controller copies a Job's name into a label), and new for every expiry, so
    that a Job left by an interrupted run is never mistaken for the one a later run needs."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:10]
    return "{0}{1}-{2}".format(EXPIRY_JOB_PREFIX, digest, int(expires.timestamp()))


def expiry_job_of(obj: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """The owner reference to the tokenlabs Job that removes this Secret, if any."""
    for ref in _meta(obj).get("ownerReferences") or []:
        name = ref.get("name") or ""
        if ref.get("kind") == "Job" and ref.get("apiVersion") == JOB_API_VERSION and name.startswith(EXPIRY_JOB_PREFIX):
            return ref
    return None


def build_expiry_job(
    tenant_id: str, namespace: str, secret: str, expires: datetime.datetime, now: datetime.datetime
) -> Dict[str, Any]:
    """A Job that runs nothing and fails at ``expires``; its deletion (ttlSecondsAfterFinished: 0) takes the Secret.

    The deadline counts from when the job controller first sees the Job, which is after ``now``: the Secret never
    goes before its expiry. Authorino already refuses the key from that second on, whatever the removal's delay.
    """
    deadline = max(1, math.ceil((expires - now).total_seconds()))
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, TENANT_LABEL: tenant_id}
    return {
        "apiVersion": JOB_API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": expiry_job_name(secret, expires),
            "namespace": namespace,
            "labels": labels,
            "annotations": {SECRET_ANNOTATION: secret, EXPIRES_ANNOTATION: format_time(expires)},
        },
        "spec": {
            "parallelism": 0,
            "completions": 1,
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "expiry",
                            "image": EXPIRY_JOB_IMAGE,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# Plans


class Write:
    """One API write. ``body`` is a full object for create, a JSON merge patch for patch, None for delete.

    ``kind`` is ``Secret`` or ``Job`` (an expiry Job). A Secret body whose owner reference has an empty uid names a
    Job created earlier in the same plan; the executor fills the uid in from the server's answer.
    """

    CREATE = "create"
    PATCH = "patch"
    DELETE = "delete"
    SECRET = "Secret"
    JOB = "Job"

    def __init__(
        self,
        verb: str,
        name: str,
        tenant: str,
        body: Optional[Dict[str, Any]] = None,
        resource_version: Optional[str] = None,
        *,
        settle: float = 0.0,
        kind: str = "Secret",
        uid: Optional[str] = None,
    ) -> None:
        self.verb = verb
        self.name = name
        self.tenant = tenant
        self.body = body
        self.resource_version = resource_version
        # Seconds to wait before this write, so that Authorino has taken the writes before it.
        self.settle = settle
        self.kind = kind
        # A delete precondition: only the object with this uid (an expiry Job named by an owner reference).
        self.uid = uid

    def __repr__(self) -> str:
        if self.kind != Write.SECRET:
            return "Write({0}, {1} {2})".format(self.verb, self.kind, self.name)
        return "Write({0}, {1})".format(self.verb, self.name)


class TenantSpec:
    """What the operator asked for one tenant (validated on construction)."""

    def __init__(
        self,
        name: Any,
        *,
        tier: Optional[str] = None,
        allowed_tiers: Iterable[str] = DEFAULT_TIERS,
        api_key: Optional[str] = None,
        rotate_key: bool = False,
        previous_key_ttl: Any = None,
        labels: Optional[Dict[str, str]] = None,
        annotations: Optional[Dict[str, str]] = None,
        state: str = "present",
        must_exist: bool = False,
    ) -> None:
        self.name = validate_tenant_id(name)
        self.tier = validate_tier(tier, allowed_tiers) if tier is not None else None
        self.api_key = validate_key(api_key) if api_key is not None else None
        self.rotate_key = bool(rotate_key)
        self.previous_key_ttl = parse_ttl(previous_key_ttl)
        validate_extras(labels, annotations)
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        if state not in ("present", "absent"):
            raise TenantError("state must be 'present' or 'absent', got {0!r}".format(state))
        self.state = state
        self.must_exist = bool(must_exist)


class TenantPlan:
    """The writes that bring one tenant to its desired state, and what to report about it."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.writes: List[Write] = []
        self.new_key: Optional[str] = None
        self.key_action: Optional[str] = None  # "created" | "rotated"
        self.before: Dict[str, Any] = {}
        self.after: Dict[str, Any] = {}
        self.facts: Optional[Dict[str, Any]] = None
        # A tier change planned without the key (bulk listing): the hand-over needs a read of the Secret.
        self.handover_pending = False

    @property
    def changed(self) -> bool:
        return bool(self.writes)


def _merge_patch(current: Dict[str, str], desired: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in desired.items() if current.get(k) != v}


def is_handover_holder(obj: Dict[str, Any]) -> bool:
    """A previous-role Secret without an expiry of its own: a hand-over holder of the current key."""
    annotations = annotations_of(obj)
    return EXPIRES_ANNOTATION not in annotations and HANDOVER_ANNOTATION in annotations


def _expiry(obj: Dict[str, Any]) -> Optional[datetime.datetime]:
    if is_handover_holder(obj):
        stamp = parse_time(annotations_of(obj).get(HANDOVER_ANNOTATION))
        return stamp + datetime.timedelta(seconds=HANDOVER_SECONDS) if stamp else None
    return parse_time(annotations_of(obj).get(EXPIRES_ANNOTATION))


def _is_expired(obj: Dict[str, Any], now: datetime.datetime) -> bool:
    expires = _expiry(obj)
    # An unreadable expiry is treated as expired: a previous key must never outlive its grace by accident.
    return expires is None or expires <= now


def view(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A Secret as it may be shown: metadata that matters and the key as a fingerprint."""
    if obj is None:
        return None
    meta = _meta(obj)
    shown: Dict[str, Any] = {
        "labels": dict(sorted((meta.get("labels") or {}).items())),
        "annotations": dict(sorted((meta.get("annotations") or {}).items())),
    }
    key = decode_key(obj)
    if key is not None:
        shown["data"] = {DATA_KEY: redacted(key)}
    job = expiry_job_of(obj)
    if job is not None:
        shown["removed_by"] = "Job {0}".format(job["name"])
    return shown


def _apply_patch(obj: Dict[str, Any], patch: Dict[str, Any]) -> Dict[str, Any]:
    result = copy.deepcopy(obj)
    meta = result.setdefault("metadata", {})
    for section in ("labels", "annotations"):
        changes = (patch.get("metadata") or {}).get(section)
        if changes:
            merged = dict(meta.get(section) or {})
            merged.update(changes)
            meta[section] = merged
    if "ownerReferences" in (patch.get("metadata") or {}):
        meta["ownerReferences"] = copy.deepcopy(patch["metadata"]["ownerReferences"])
    if "data" in patch:
        data = dict(result.get("data") or {})
        data.update(patch["data"])
        result["data"] = data
        result.pop("stringData", None)
    return result


def tenant_facts(
    tenant_id: str, namespace: str, current: Optional[Dict[str, Any]], previous: List[Dict[str, Any]]
) -> Optional[Dict[str, Any]]:
    """What tenant_info and the modules report about a tenant: never the key, at most its fingerprint."""
    if current is None:
        return None
    meta = _meta(current)
    return {
        "name": tenant_id,
        "tier": annotations_of(current).get(TIER_ANNOTATION),
        "namespace": namespace,
        "secret": meta.get("name"),
        "created": meta.get("creationTimestamp"),
        "fingerprint": fingerprint(decode_key(current)),
        "labels": {k: v for k, v in labels_of(current).items() if k not in RESERVED_LABELS},
        "annotations": {k: v for k, v in annotations_of(current).items() if k not in RESERVED_ANNOTATIONS},
        "previous_keys": [_previous_facts(p) for p in sorted(previous, key=lambda p: _meta(p).get("name") or "")],
    }


def _previous_facts(obj: Dict[str, Any]) -> Dict[str, Any]:
    job = expiry_job_of(obj)
    return {
        "secret": _meta(obj).get("name"),
        "fingerprint": fingerprint(decode_key(obj)),
        "expires_at": annotations_of(obj).get(EXPIRES_ANNOTATION),
        "removed_by": job["name"] if job else None,
        "handover": is_handover_holder(obj),
    }


def _delete(obj: Dict[str, Any], tenant: str) -> Write:
    meta = _meta(obj)
    return Write(Write.DELETE, meta.get("name") or "", tenant, resource_version=meta.get("resourceVersion"))


def _delete_all(obj: Dict[str, Any], tenant: str) -> List[Write]:
    """A Secret's deletion and then its expiry Job's (which would otherwise wait for a deadline up to a year out)."""
    writes = [_delete(obj, tenant)]
    job = expiry_job_of(obj)
    if job is not None:
        writes.append(Write(Write.DELETE, job["name"], tenant, kind=Write.JOB, uid=job.get("uid") or None))
    return writes


def plan_tenant(
    spec: TenantSpec,
    namespace: str,
    current: Optional[Dict[str, Any]],
    previous: List[Dict[str, Any]],
    *,
    now: Optional[datetime.datetime] = None,
    key_factory: Callable[[], str] = generate_key,
    key_known: bool = True,
) -> TenantPlan:
    """Compare one tenant's Secrets on the server with ``spec`` and list the writes that reconcile them.

    ``current`` is the Secret ``tenant-<id>`` as the server returned it (or None); ``previous`` are the
    tenant's grace-period Secrets. Foreign objects raise TenantError before any write is planned.
    ``key_known=False`` means the objects carry metadata only (bulk listing): existing keys are left alone.
    """
    now = now or utcnow()
    plan = TenantPlan(spec.name)
    for obj in ([current] if current is not None else []) + previous:
        ensure_ours(obj, spec.name)
    plan.before = _state_view(current, previous)

    if spec.state == "absent":
        for obj in ([current] if current is not None else []) + previous:
            plan.writes.extend(_delete_all(obj, spec.name))
        return plan

    if current is None and spec.must_exist:
        raise TenantError(
            "tenant {0!r} does not exist in {1} (add it first); nothing was changed".format(spec.name, namespace)
        )
    if current is None:
        after_current, tier, old_key = _plan_create(plan, spec, namespace, key_factory), spec.tier or "", None
    else:
        old_key = decode_key(current) if key_known else None
        tier = spec.tier or annotations_of(current).get(TIER_ANNOTATION) or ""
        if not tier:
            raise TenantError("tenant {0!r} has no tier annotation: pass tier to repair it".format(spec.name))
        after_current = _plan_update(
            plan, spec, namespace, current, tier=tier, key_factory=key_factory if key_known else None
        )
    holders = [p for p in previous if old_key is not None and decode_key(p) == old_key]
    after_previous = _plan_previous(
        plan, spec, namespace, [p for p in previous if p not in holders], tier=tier, old_key=old_key, now=now
    )
    if plan.key_action == "rotated":
        # The old key's hand-over holder must not keep a replaced key alive; it goes first, since a grace-period
        # Secret for that key takes the same name.
        plan.writes[:0] = [write for holder in holders for write in _delete_all(holder, spec.name)]
    elif current is not None:
        if old_key is not None:
            after_current = _plan_handover(
                plan, spec, namespace=namespace, current=current, after_current=after_current, holders=holders,
                tier=tier, key=old_key, now=now,
            )
        elif annotations_of(current).get(TIER_ANNOTATION) != tier:
            plan.handover_pending = True
    # The write that may replace the key goes last: should an earlier one fail (keeping the old key for its
    # grace period, say), the old key still authenticates and no new key has been handed out yet. A hand-over
    # Secret goes only after the tenant's own Secret has been written.
    main = secret_name(spec.name)
    plan.writes.sort(key=lambda write: 2 if write.settle else int(write.name == main))
    plan.after = _state_view(after_current, after_previous)
    return plan


def _plan_handover(
    plan: TenantPlan,
    spec: TenantSpec,
    *,
    namespace: str,
    current: Dict[str, Any],
    after_current: Dict[str, Any],
    holders: List[Dict[str, Any]],
    tier: str,
    key: str,
    now: datetime.datetime,
) -> Dict[str, Any]:
    """Make Authorino see a tier change (or finish an interrupted one); see HANDOVER_SECONDS."""
    if annotations_of(current).get(TIER_ANNOTATION) == tier and not holders:
        return after_current
    name = previous_secret_name(spec.name, key)
    if not any(_meta(h).get("name") == name for h in holders):
        body = build_secret(
            spec.name, tier, key, namespace, labels=spec.labels, annotations=spec.annotations,
            previous_of=name, handover_at=format_time(now),
        )
        plan.writes.append(Write(Write.CREATE, name, spec.name, body=body))
    main = secret_name(spec.name)
    stamp = {HANDOVER_ANNOTATION: format_time(now)}
    for write in plan.writes:
        if write.verb == Write.PATCH and write.name == main and write.body is not None:
            write.body["metadata"].setdefault("annotations", {}).update(stamp)
            break
    else:
        patch = {"metadata": {"annotations": stamp, "resourceVersion": _meta(current).get("resourceVersion")}}
        plan.writes.append(Write(Write.PATCH, main, spec.name, body=patch))
    holder_names = {_meta(h).get("name") for h in holders} | {name}
    for holder in sorted(holder_names):
        plan.writes.append(Write(Write.DELETE, holder, spec.name, settle=HANDOVER_SETTLE_SECONDS))
    return _apply_patch(after_current, {"metadata": {"annotations": stamp}})


def _plan_create(plan: TenantPlan, spec: TenantSpec, namespace: str, key_factory: Callable[[], str]) -> Dict[str, Any]:
    if spec.tier is None:
        raise TenantError("tenant {0!r} does not exist: tier is required to create it".format(spec.name))
    key = spec.api_key or key_factory()
    body = build_secret(spec.name, spec.tier, key, namespace, labels=spec.labels, annotations=spec.annotations)
    plan.writes.append(Write(Write.CREATE, secret_name(spec.name), spec.name, body=body))
    plan.new_key = key
    plan.key_action = "created"
    return body


def _plan_update(
    plan: TenantPlan,
    spec: TenantSpec,
    namespace: str,
    current: Dict[str, Any],
    *,
    tier: str,
    key_factory: Optional[Callable[[], str]],
) -> Dict[str, Any]:
    """A merge patch of only what differs: labels, annotations, and the key only when it is to change."""
    desired = build_secret(spec.name, tier, "", namespace, labels=spec.labels, annotations=spec.annotations)
    patch: Dict[str, Any] = {}
    metadata: Dict[str, Any] = {}
    for section, current_values in (("labels", labels_of(current)), ("annotations", annotations_of(current))):
        changes = _merge_patch(current_values, desired["metadata"][section])
        if changes:
            metadata[section] = changes
    if key_factory is not None:
        old_key = decode_key(current)
        new_key = _next_key(spec, old_key, key_factory)
        if new_key != old_key:
            patch["data"] = {DATA_KEY: encode_key(new_key)}
            plan.new_key = new_key
            plan.key_action = "rotated"
    if not metadata and not patch:
        return current
    # resourceVersion makes the merge patch a compare-and-swap: a concurrent writer yields 409, not a lost update.
    metadata["resourceVersion"] = _meta(current).get("resourceVersion")
    patch["metadata"] = metadata
    plan.writes.append(Write(Write.PATCH, secret_name(spec.name), spec.name, body=patch))
    return _apply_patch(current, patch)


def _next_key(spec: TenantSpec, old_key: Optional[str], key_factory: Callable[[], str]) -> str:
    if spec.api_key is not None:
        return spec.api_key
    if spec.rotate_key or old_key is None or not KEY_PATTERN.match(old_key):
        # A missing or corrupted key cannot authenticate anyone: replacing it is a repair, reported as rotation.
        return key_factory()
    return old_key


def _plan_previous(
    plan: TenantPlan,
    spec: TenantSpec,
    namespace: str,
    previous: List[Dict[str, Any]],
    *,
    tier: str,
    old_key: Optional[str],
    now: datetime.datetime,
) -> List[Dict[str, Any]]:
    kept: List[Dict[str, Any]] = []
    for prev in previous:
        if _is_expired(prev, now):
            plan.writes.extend(_delete_all(prev, spec.name))
            continue
        changes: Dict[str, Any] = {}
        # The old key authenticates as the same tenant, so it must carry the same tier.
        if annotations_of(prev).get(TIER_ANNOTATION) != tier:
            changes["annotations"] = {TIER_ANNOTATION: tier}
        if not is_handover_holder(prev) and expiry_job_of(prev) is None:
            changes["ownerReferences"] = _plan_expiry_job(plan, spec, namespace, prev, now=now)
        if changes:
            # One patch, so that its resourceVersion is the one read.
            changes["resourceVersion"] = _meta(prev).get("resourceVersion")
            patch = {"metadata": changes}
            plan.writes.append(Write(Write.PATCH, _meta(prev)["name"], spec.name, body=patch))
            kept.append(_apply_patch(prev, patch))
        else:
            kept.append(prev)
    if plan.key_action == "rotated" and spec.previous_key_ttl and old_key and KEY_PATTERN.match(old_key):
        expires = now + datetime.timedelta(seconds=spec.previous_key_ttl)
        prev_name = previous_secret_name(spec.name, old_key)
        job = build_expiry_job(spec.name, namespace, prev_name, expires, now)
        plan.writes.append(Write(Write.CREATE, _meta(job)["name"], spec.name, body=job, kind=Write.JOB))
        body = build_secret(
            spec.name,
            tier,
            old_key,
            namespace,
            labels=spec.labels,
            annotations=spec.annotations,
            previous_of=prev_name,
            expires_at=format_time(expires),
            owner_job=_meta(job)["name"],
        )
        plan.writes.append(Write(Write.CREATE, prev_name, spec.name, body=body))
        kept.append(body)
    return kept


def _plan_expiry_job(
    plan: TenantPlan, spec: TenantSpec, namespace: str, prev: Dict[str, Any], *, now: datetime.datetime
) -> List[Dict[str, str]]:
    """A previous key without its expiry Job (written before there were any, or its owner reference removed): plan
    the Job and return the owner references the Secret gets, so that it still goes in the cluster when it expires."""
    name = _meta(prev).get("name") or ""
    # Not expired (the caller deleted those), so the expiry is readable.
    expires = _expiry(prev) or now
    job = build_expiry_job(spec.name, namespace, name, expires, now)
    plan.writes.append(Write(Write.CREATE, _meta(job)["name"], spec.name, body=job, kind=Write.JOB))
    # A merge patch replaces the whole list: any other owner is kept by listing it too.
    return [dict(ref) for ref in _meta(prev).get("ownerReferences") or []] + [job_owner_reference(_meta(job)["name"])]


def _state_view(current: Optional[Dict[str, Any]], previous: List[Dict[str, Any]]) -> Dict[str, Any]:
    state: Dict[str, Any] = {}
    if current is not None:
        state[_meta(current).get("name")] = view(current)
    for prev in previous:
        state[_meta(prev).get("name")] = view(prev)
    return state


# ---------------------------------------------------------------------------------------------
# Bulk


def group_by_tenant(
    objects: Iterable[Dict[str, Any]],
) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[Dict[str, Any]]], Dict[str, Dict[str, Any]]]:
    """Split a namespace listing into managed current Secrets, managed previous Secrets and everything else by name."""
    current: Dict[str, Dict[str, Any]] = {}
    previous: Dict[str, List[Dict[str, Any]]] = {}
    others: Dict[str, Dict[str, Any]] = {}
    for obj in objects:
        name = _meta(obj).get("name") or ""
        tenant = tenant_of(obj)
        if not is_managed(obj) or not tenant:
            others[name] = obj
        elif key_role(obj) == ROLE_PREVIOUS:
            previous.setdefault(tenant, []).append(obj)
        elif name == secret_name(tenant):
            current[tenant] = obj
        else:
            others[name] = obj
    return current, previous, others


class BulkPlan:
    def __init__(self) -> None:
        self.plans: List[TenantPlan] = []
        self.created: List[str] = []
        self.updated: List[str] = []
        self.removed: List[str] = []
        self.unchanged: List[str] = []

    @property
    def writes(self) -> List[Write]:
        return [w for p in self.plans for w in p.writes]


def plan_tenants(
    specs: List[TenantSpec],
    namespace: str,
    listing: Iterable[Dict[str, Any]],
    *,
    exclusive: bool,
    now: Optional[datetime.datetime] = None,
    key_factory: Callable[[], str] = generate_key,
) -> BulkPlan:
    """Reconcile a whole tenant list against one namespace listing; refuse before any write on a foreign name clash."""
    now = now or utcnow()
    seen: Dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise TenantError(
                "tenant {0!r} is listed twice (entries {1} and {2})".format(spec.name, seen[spec.name], index)
            )
        seen[spec.name] = index
    current, previous, others = group_by_tenant(listing)
    for spec in specs:
        clash = others.get(secret_name(spec.name))
        if clash is not None:
            ensure_ours(clash, spec.name)
    bulk = BulkPlan()
    for spec in specs:
        existing = current.get(spec.name)
        plan = plan_tenant(
            spec, namespace, existing, previous.get(spec.name, []), now=now, key_factory=key_factory, key_known=False
        )
        bulk.plans.append(plan)
        if existing is None:
            bulk.created.append(spec.name)
        elif plan.changed:
            bulk.updated.append(spec.name)
        else:
            bulk.unchanged.append(spec.name)
    if exclusive:
        stale = sorted((set(current) | set(previous)) - set(seen))
        for tenant in stale:
            gone = TenantSpec(tenant, state="absent")
            bulk.plans.append(
                plan_tenant(gone, namespace, current.get(tenant), previous.get(tenant, []), now=now, key_known=False)
            )
            bulk.removed.append(tenant)
    return bulk
