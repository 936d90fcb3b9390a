# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How k8s_apply decides what to write, kept apart from the API calls so it is unit-testable.

An object is written only when a server-side dry run of its apply gives something other than what the server
holds: the server itself applies defaults, quantities and the removal of fields this manager no longer sets, so
the comparison has no rules of its own to get wrong. What the server changes on its own (status, resource
version, the bookkeeping of field managers) is left out of the comparison and of the diff.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError, auth_argspec, connect

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
DELETED = "deleted"
ABSENT = "absent"

_SERVER_METADATA = ("managedFields", "resourceVersion", "generation")


class ApplyError(Exception):
    """Bad input or a refused request (with the server's status): reported with the object it concerns."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


def ident(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    where = (
        "{0}/{1}".format(metadata["namespace"], metadata.get("name"))
        if metadata.get("namespace")
        else metadata.get("name")
    )
    return "{0} {1}".format(obj.get("kind"), where)


def flatten(definitions: Any) -> List[Dict[str, Any]]:
    """Manifests from a manifest, a list of them, or nested lists (as from_yaml_all gives); empty entries dropped."""
    if definitions is None:
        return []
    if isinstance(definitions, Mapping):
        return [dict(definitions)]
    if isinstance(definitions, (list, tuple)):
        return [obj for item in definitions for obj in flatten(item)]
    raise ApplyError(
        "definitions must be manifests (mappings) or lists of them, not {0}".format(type(definitions).__name__)
    )


def validated(definitions: Sequence[Mapping[str, Any]], namespace: Optional[str]) -> List[Dict[str, Any]]:
    """Every manifest names its apiVersion, kind and name, appears once, and gets the default namespace if it has
    none (cluster-scoped kinds drop it later); all problems are reported together, before anything is written."""
    problems = []
    seen = set()
    out = []
    for index, definition in enumerate(definitions):
        obj = copy.deepcopy(dict(definition))
        metadata = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = metadata
        missing = [field for field in ("apiVersion", "kind") if not obj.get(field)]
        if not metadata.get("name"):
            missing.append("metadata.name")
        if missing:
            problems.append("definitions[{0}]: no {1}".format(index, ", ".join(missing)))
            continue
        if namespace and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        key = (obj["apiVersion"].split("/")[0], obj["kind"], metadata.get("namespace"), metadata["name"])
        if key in seen:
            problems.append("definitions[{0}]: {1} appears twice".format(index, ident(obj)))
        seen.add(key)
        out.append(obj)
    if problems:
        raise ApplyError("; ".join(problems))
    return out


def comparable(obj: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """The object without what the server changes on its own."""
    if obj is None:
        return None
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    metadata = out.get("metadata") or {}
    for field in _SERVER_METADATA:
        metadata.pop(field, None)
    return out


def differs(live: Optional[Mapping[str, Any]], dry_run: Mapping[str, Any]) -> bool:
    return comparable(live) != comparable(dry_run)


def _fingerprint(value: Any) -> str:
    return "<redacted sha256:{0}>".format(hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12])


def redacted(obj: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """For diffs: a Secret's values as fingerprints (a change still shows), everything else as is."""
    out = comparable(obj)
    if out is None or out.get("kind") != "Secret":
        return out
    for field in ("data", "stringData"):
        if isinstance(out.get(field), Mapping):
            out[field] = {key: _fingerprint(value) for key, value in out[field].items()}
    metadata = out.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = _fingerprint(
            annotations["kubectl.kubernetes.io/last-applied-configuration"]
        )
    return out


_APPLY = "application/apply-patch+yaml"


def argspec() -> Dict[str, Any]:
    spec = auth_argspec()
    spec.update(
        definitions=dict(type="raw", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        namespace=dict(type="str"),
        field_manager=dict(type="str", default="tokenlabs"),
        force_conflicts=dict(type="bool", default=True),
    )
    return spec


class Api:
    """Objects as dicts; counts its writes."""

    def __init__(self, client: Any, field_manager: str, force: bool) -> None:
        self.client = client
        self.field_manager = field_manager
        self.force = force
        self.writes = 0

    def path(self, obj: Dict[str, Any]) -> str:
        """The object's path; drops the namespace of a cluster-scoped kind."""
        try:
            resource = self.client.resource(obj["kind"], obj["apiVersion"])
        except KubeError as exc:
            raise ApplyError("{0}: {1}".format(ident(obj), exc)) from exc
        metadata = obj["metadata"]
        if not resource.namespaced:
            metadata.pop("namespace", None)
        elif not metadata.get("namespace"):
            raise ApplyError("{0}: {1} is namespaced: give its namespace".format(ident(obj), obj["kind"]))
        return resource.path(name=metadata["name"], namespace=metadata.get("namespace"))

    def _call(
        self, method: str, path: str, obj: Mapping[str, Any], query: List[Tuple[str, str]], body: Any = None
    ) -> Any:
        try:
            data = self.client.request(
                method, path, query, body=body, content_type=_APPLY if method == "PATCH" else "application/json"
            )
        except KubeError as exc:
            if exc.status is None:
                raise ApplyError("{0}: {1}".format(ident(obj), exc)) from exc
            raise ApplyError(
                "{0}: {1} refused ({2}): {3}".format(ident(obj), method, exc.status, exc), exc.status
            ) from exc
        return json.loads(data) if data else {}

    def get(self, obj: Dict[str, Any], path: str) -> Optional[Dict[str, Any]]:
        try:
            return self._call("GET", path, obj, [])
        except ApplyError as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: Dict[str, Any], path: str, dry_run: bool) -> Dict[str, Any]:
        query = [("fieldManager", self.field_manager)]
        if self.force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        else:
            self.writes += 1
        return self._call("PATCH", path, obj, query, body=obj)

    def delete(self, obj: Dict[str, Any], path: str) -> None:
        self.writes += 1
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self._call("DELETE", path, obj, [], body=body)
        except ApplyError as exc:
            if exc.status != 404:  # gone in the meantime: the desired state
                raise


def _created_namespaces(objects: List[Dict[str, Any]], live: Dict[int, Optional[Dict[str, Any]]]) -> Set[str]:
    return {o["metadata"]["name"] for i, o in enumerate(objects) if o["kind"] == "Namespace" and live[i] is None}


def present(api: Api, objects: List[Dict[str, Any]], check_mode: bool) -> Tuple[List[str], List[Dict[str, Any]]]:
    """Plan every object (read and dry run) before writing any; then write those that differ, in order."""
    paths = [api.path(obj) for obj in objects]
    live = {i: api.get(obj, paths[i]) for i, obj in enumerate(objects)}
    new_namespaces = _created_namespaces(objects, live)
    actions: List[str] = []
    after: List[Optional[Dict[str, Any]]] = []
    for i, obj in enumerate(objects):
        # An object in a namespace this run creates cannot be dry-run yet: it is new, and checked when created.
        if live[i] is None and obj["metadata"].get("namespace") in new_namespaces:
            actions.append(CREATED)
            after.append(obj)
            continue
        dry = api.apply(obj, paths[i], dry_run=True)
        actions.append(CREATED if live[i] is None else UPDATED if differs(live[i], dry) else UNCHANGED)
        after.append(dry)
    if not check_mode:
        for i, obj in enumerate(objects):
            if actions[i] != UNCHANGED:
                after[i] = api.apply(obj, paths[i], dry_run=False)
    diffs = [
        {
            "before_header": ident(obj),
            "after_header": ident(obj),
            "before": redacted(live[i]) or {},
            "after": redacted(after[i]) or {},
        }
        for i, obj in enumerate(objects)
        if actions[i] != UNCHANGED
    ]
    return actions, diffs


def absent(api: Api, objects: List[Dict[str, Any]], check_mode: bool) -> Tuple[List[str], List[Dict[str, Any]]]:
    paths = [api.path(obj) for obj in objects]
    actions: List[str] = []
    diffs = []
    for i, obj in enumerate(objects):
        live = api.get(obj, paths[i])
        if live is None:
            actions.append(ABSENT)
            continue
        if not check_mode:
            api.delete(obj, paths[i])
        actions.append(DELETED)
        diffs.append({"before_header": ident(obj), "after_header": ident(obj), "before": redacted(live), "after": {}})
    return actions, diffs


def execute(params: Mapping[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """The module's result: what each object needed, the writes made and, in diff mode, the diffs."""
    api = None
    try:
        objects = validated(flatten(params["definitions"]), params["namespace"])
        api = Api(connect(params), params["field_manager"], params["force_conflicts"])
        run = present if params["state"] == "present" else absent
        actions, diffs = run(api, objects, check_mode)
    except (ApplyError, KubeError) as exc:
        return {"failed": True, "msg": str(exc), "writes": api.writes if api else 0}
    result: Dict[str, Any] = {
        "changed": any(a in (CREATED, UPDATED, DELETED) for a in actions),
        "objects": [
            {
                "kind": obj["kind"],
                "namespace": obj["metadata"].get("namespace"),
                "name": obj["metadata"]["name"],
                "action": action,
            }
            for obj, action in zip(objects, actions, strict=True)
        ],
        "writes": api.writes,
    }
    if diff:
        result["diff"] = diffs
    return result
