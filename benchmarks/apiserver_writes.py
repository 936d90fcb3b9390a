"""Write requests a kube-apiserver has answered, read from its own request counter (shared by the benchmarks)."""

from __future__ import annotations

import re
from collections import Counter

from kubernetes import client

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
_REQUEST_TOTAL = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def writes(api: client.ApiClient) -> Counter[str]:
    """Write requests answered so far (any status), by ``resource`` or ``resource/subresource``.

    Dry-run writes (what ``--check`` sends) are counted under ``dry-run:<resource>``. The counter covers the whole
    server: every client's writes are in it.
    """
    text = api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True
    ).data.decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _REQUEST_TOTAL.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") in WRITE_VERBS:
            resource = labels.get("resource", "")
            key = f"{resource}/{labels['subresource']}" if labels.get("subresource") else resource
            counts[f"dry-run:{key}" if labels.get("dry_run") else key] += int(float(match["value"]))
    return counts


def resource_of(key: str) -> str:
    """The resource a ``writes`` key counts, without its dry-run mark or subresource."""
    return key.removeprefix("dry-run:").split("/", 1)[0]
