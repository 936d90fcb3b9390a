# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_read module's work, shared by the module and its action plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from typing import Any, Dict, List, Mapping

from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import (
    METADATA_ONLY,
    METADATA_ONLY_ONE,
    KubeError,
    NotServed,
    auth_argspec,
    connect,
)


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


def read(client: Any, params: Mapping[str, Any]) -> List[Dict[str, Any]]:
    resource = client.resource(params["kind"], params["api_version"])
    namespace = params["namespace"] if resource.namespaced else None
    path = resource.path(name=params["name"], namespace=namespace)
    query = [("labelSelector", ",".join(params["label_selectors"]))] if params["label_selectors"] else []
    accept = None
    if params["metadata_only"]:
        accept = METADATA_ONLY_ONE if params["name"] else METADATA_ONLY
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


def execute(params: Mapping[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """The module's result; reads only, so check and diff mode change nothing."""
    try:
        client = connect(params)
        try:
            return {"changed": False, "resources": read(client, params), "api_found": True}
        except NotServed:
            return {"changed": False, "resources": [], "api_found": False}
    except KubeError as exc:
        return {"failed": True, "msg": str(exc)}
