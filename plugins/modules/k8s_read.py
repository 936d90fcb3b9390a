#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_read
short_description: Read Kubernetes objects with one request
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Reads one object by name or the objects of a kind (in a namespace, by label selector) with one request, and
    returns them as M(kubernetes.core.k8s_info) does (RV(resources), RV(api_found)).
  - Made for playbooks that read often. Where the connection allows it, it does not load the kubernetes package,
    and O(metadata_only) reads objects without their spec and status (a list of CRDs without their schemas).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode as otherwise.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  kind:
    description: Kind of the objects.
    type: str
    required: true
  api_version:
    description: API version of the kind.
    type: str
    default: v1
  namespace:
    description: Namespace to read in; leave out for cluster-scoped kinds or every namespace.
    type: str
  name:
    description: The one object to read; without it, every object that matches O(label_selectors).
    type: str
  label_selectors:
    description: Selectors every object read must match.
    type: list
    elements: str
    default: []
  metadata_only:
    description: Return only C(apiVersion), C(kind) and C(metadata) of each object.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the names and annotations of every CRD
  tokenlabs.platform.k8s_read:
    api_version: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata_only: true
  register: crds

- name: Read one node
  tokenlabs.platform.k8s_read:
    kind: Node
    name: spark-01
  register: node
"""

RETURN = r"""
resources:
  description: The objects read; empty when the object or its API does not exist.
  returned: always
  type: list
  elements: dict
api_found:
  description: Whether the cluster serves the kind.
  returned: always
  type: bool
"""

import json  # noqa: E402
from typing import Any, Dict, List  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError, NotServed, connect  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import auth_argspec  # noqa: E402

_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_METADATA_ONLY_ONE = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


def argspec() -> Dict[str, Any]:
    spec = auth_argspec()
    spec.update(
        kind=dict(type="str", required=True),
        api_version=dict(type="str", default="v1"),
        namespace=dict(type="str"),
        name=dict(type="str"),
        label_selectors=dict(type="list", elements="str", default=[]),
        metadata_only=dict(type="bool", default=False),
    )
    return spec


def read(client: Any, params: Dict[str, Any]) -> List[Dict[str, Any]]:
    resource = client.resource(params["kind"], params["api_version"])
    namespace = params["namespace"] if resource.namespaced else None
    path = resource.path(name=params["name"], namespace=namespace)
    query = [("labelSelector", ",".join(params["label_selectors"]))] if params["label_selectors"] else []
    accept = None
    if params["metadata_only"]:
        accept = _METADATA_ONLY_ONE if params["name"] else _METADATA_ONLY
    try:
        data = json.loads(client.request("GET", path, query, accept=accept))
    except KubeError as exc:
        if exc.status == 404 and params["name"]:
            return []
        raise
    items = [data] if params["name"] else data.get("items") or []
    if params["metadata_only"]:
        # A metadata list names kind and apiVersion once, for the list: give each object its own.
        items = [
            {"apiVersion": params["api_version"], "kind": params["kind"], "metadata": i.get("metadata")} for i in items
        ]
    return items


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    try:
        client = connect(module.params)
        try:
            resources = read(client, module.params)
        except NotServed:
            module.exit_json(changed=False, resources=[], api_found=False)
    except KubeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, resources=resources, api_found=True)


if __name__ == "__main__":
    main()
