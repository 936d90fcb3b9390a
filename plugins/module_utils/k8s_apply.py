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
from typing import Any, Dict, List, Mapping, Optional, Sequence

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
