# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Helm release already runs the wanted chart with the wanted values, read from Helm's own storage.

Helm 3 keeps each release revision in a Secret of the release's namespace (labels ``owner=helm``, ``name``,
``status``), its data a base64 text of the gzipped release JSON. The deployed revision names its chart (name,
version, appVersion) and keeps the values the user supplied (``config``), which is what ``helm get values``
prints and what kubernetes.core.helm compares. One list of those Secrets per namespace answers for every release
in it, where kubernetes.core.helm runs the helm binary three times per release to find the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import os
import tarfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError, auth_argspec, connect

_GZIP_MAGIC = b"\x1f\x8b"


class ChartError(Exception):
    """A chart whose name and version cannot be told."""


def argspec() -> Dict[str, Any]:
    spec = auth_argspec()
    spec.update(
        releases=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", required=True),
                chart_ref=dict(type="str", required=True),
                chart_version=dict(type="str"),
                values=dict(type="dict", default={}),
            ),
        ),
    )
    return spec


def decode_release(secret: Mapping[str, Any]) -> Dict[str, Any]:
    """The release JSON of one of Helm's Secrets."""
    raw = base64.b64decode(base64.b64decode((secret.get("data") or {}).get("release") or ""))
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw)


def _chart_yaml(chart_ref: str) -> Optional[Dict[str, Any]]:
    """Chart.yaml of a chart directory or archive on this machine; None for a repository or OCI reference."""
    import yaml  # noqa: PLC0415 - PyYAML comes with Ansible on the controller; loaded only for a local chart

    try:
        if os.path.isdir(chart_ref):
            with open(os.path.join(chart_ref, "Chart.yaml"), encoding="utf-8") as handle:
                return yaml.safe_load(handle)
        if os.path.isfile(chart_ref):
            with tarfile.open(chart_ref) as archive:
                top = [m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")]
                handle = archive.extractfile(top[0]) if top else None
                if handle is None:
                    raise ChartError("no Chart.yaml at the top of the archive")
                return yaml.safe_load(handle)
    except (OSError, tarfile.TarError, yaml.YAMLError) as exc:
        raise ChartError(str(exc)) from exc
    return None


def wanted_chart(chart_ref: str, chart_version: Optional[str]) -> Tuple[str, Optional[str], Optional[str]]:
    """Name, version and appVersion of the chart a release is to run (appVersion only where the chart is local)."""
    metadata = _chart_yaml(chart_ref)
    if metadata is not None:
        return str(metadata["name"]), str(metadata["version"]), metadata.get("appVersion")
    if not chart_version:
        raise ChartError("{0}: a chart from a repository needs its chart_version".format(chart_ref))
    return chart_ref.rstrip("/").rsplit("/", 1)[-1], chart_version, None


def judge(wanted: Mapping[str, Any], deployed: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why the release is not current, or None when it is."""
    if deployed is None:
        return "no deployed revision"
    try:
        name, version, app_version = wanted_chart(wanted["chart_ref"], wanted.get("chart_version"))
    except (ChartError, KeyError, TypeError) as exc:
        return "chart not readable: {0}".format(exc)
    chart = (deployed.get("chart") or {}).get("metadata") or {}
    if (chart.get("name"), chart.get("version")) != (name, version):
        return "runs chart {0}-{1}, wanted {2}-{3}".format(chart.get("name"), chart.get("version"), name, version)
    if app_version is not None and chart.get("appVersion") != app_version:
        return "runs appVersion {0}, the chart has {1}".format(chart.get("appVersion"), app_version)
    if (deployed.get("config") or {}) != dict(wanted.get("values") or {}):
        return "values differ"
    return None


def _deployed(client: Any, namespace: str) -> Dict[str, Dict[str, Any]]:
    """The deployed revision of every release in a namespace, by release name."""
    path = client.resource("Secret", "v1").path(namespace=namespace)
    data = json.loads(client.request("GET", path, [("labelSelector", "owner=helm,status=deployed")]))
    releases = {}
    for secret in data.get("items") or []:
        name = ((secret.get("metadata") or {}).get("labels") or {}).get("name")
        if name:
            releases[name] = decode_release(secret)
    return releases


def execute(params: Mapping[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """The module's result; reads only."""
    try:
        client = connect(params)
        by_namespace = {ns: _deployed(client, ns) for ns in sorted({r["namespace"] for r in params["releases"]})}
    except (KubeError, ValueError) as exc:
        return {"failed": True, "msg": "Reading Helm's releases failed: {0}".format(exc)}
    releases: List[Dict[str, Any]] = []
    for wanted in params["releases"]:
        reason = judge(wanted, by_namespace[wanted["namespace"]].get(wanted["name"]))
        releases.append(
            {"name": wanted["name"], "namespace": wanted["namespace"], "current": reason is None, "reason": reason}
        )
    return {
        "changed": False,
        "releases": releases,
        "current": ["{0}/{1}".format(r["namespace"], r["name"]) for r in releases if r["current"]],
    }
