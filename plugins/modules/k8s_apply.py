#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_apply
short_description: Server-side apply a set of Kubernetes objects in one pass, writing only what differs
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Applies every manifest given (server-side apply, one field manager) or deletes them, in one module run, with one
    client and one discovery for all of them, where a task looping over M(kubernetes.core.k8s) pays for both per
    object.
  - Before anything is written, each object is read and its apply is run as a server-side dry run; an object is
    written only when the dry run differs from what the server holds (leaving out status and the server's own
    bookkeeping), so a run with nothing to change makes no write, and the server's own defaulting, quantity
    normalisation and removal of fields no longer set decide what a change is.
  - Every manifest is validated, and every apply dry-run, before the first write, so a bad manifest or a refused
    object stops the run with nothing written. An object whose namespace this run creates is checked when it is created.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reads and dry runs only; reports what would be created, updated or deleted.
  diff_mode:
    support: full
    description: Before and after of each object that changes; a Secret's values appear only as fingerprints.
options:
  definitions:
    description: The manifests, a list of them, or lists of lists (as C(from_yaml_all) gives).
    type: raw
    required: true
  state:
    description: C(present) applies the objects, C(absent) deletes them (only kind, apiVersion and name are used).
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace for namespaced objects whose manifest has none.
    type: str
  field_manager:
    description:
      - Field manager of the applies. Give each caller its own when several apply the same object (a namespace two
        roles share), because with one manager for both, each apply removes the fields only the other sets.
    type: str
    default: tokenlabs
  force_conflicts:
    description: Take over fields another manager owns (as C(kubectl apply --server-side --force-conflicts)).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Apply the Gateway and its routes
  tokenlabs.platform.k8s_apply:
    definitions: "{{ gateway_manifests }}"

- name: Remove routes that are no longer configured
  tokenlabs.platform.k8s_apply:
    state: absent
    definitions:
      - {apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: old, namespace: tokenlabs}}
"""

RETURN = r"""
objects:
  description: Each object with what happened to it (created, updated, unchanged, deleted, absent).
  returned: always
  type: list
  elements: dict
  sample: [{kind: Gateway, namespace: tokenlabs, name: tokenlabs-gateway, action: unchanged}]
writes:
  description: Writes made (dry runs not counted).
  returned: always
  type: int
"""

import json  # noqa: E402
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.k8s_apply import (  # noqa: E402
    ABSENT,
    CREATED,
    DELETED,
    UNCHANGED,
    UPDATED,
    ApplyError,
    differs,
    flatten,
    ident,
    redacted,
    validated,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError, connect  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import auth_argspec  # noqa: E402

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


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    params = module.params
    api = None
    try:
        objects = validated(flatten(params["definitions"]), params["namespace"])
        api = Api(connect(params), params["field_manager"], params["force_conflicts"])
        run = present if params["state"] == "present" else absent
        actions, diffs = run(api, objects, module.check_mode)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), writes=api.writes if api else 0)
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
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
