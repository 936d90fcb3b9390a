#!/usr/bin/python
# Copyright: (c) 2026, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: usage_report
short_description: Export per-tenant requests and tokens for a time range from Prometheus
version_added: 0.1.0
description:
  - Asks Prometheus how many requests each tenant made, how many were refused and how many tokens were
    charged between O(start) and O(end), and writes the result as CSV and JSON (billing export).
  - Counts come from Limitador's metrics with the C(user) and C(tier) labels the monitoring role's
    TelemetryPolicy adds. Request and token limits share Limitador's counters; requests are counted on the
    limits whose name matches O(request_limits) and tokens on those matching O(token_limits).
options:
  prometheus_url:
    description: Prometheus base URL, for example C(http://prometheus-operated.monitoring:9090).
    type: str
    required: true
  start:
    description: Start of the range; C(now), a duration before now (C(24h), C(7d)) or an RFC 3339 timestamp.
    type: str
    default: 24h
  end:
    description: End of the range, in the same forms.
    type: str
    default: now
  csv_path:
    description: Where to write the CSV file (one row per tenant and tier).
    type: path
  json_path:
    description: Where to write the JSON document (range, metric names, rows, totals).
    type: path
  token_metric:
    description: Counter of charged tokens.
    type: str
    default: authorized_hits
  request_metric:
    description: Counter of requests let through.
    type: str
    default: authorized_calls
  rejected_metric:
    description: Counter of requests refused by a limit.
    type: str
    default: limited_calls
  tenant_label:
    description: Label holding the tenant id.
    type: str
    default: user
  tier_label:
    description: Label holding the tier.
    type: str
    default: tier
  limit_label:
    description: Label holding the Limitador limit name.
    type: str
    default: limit_name
  request_limits:
    description: Regular expression matching the names of the request limits (the policies role's C(<tier>-requests)).
    type: str
    default: .+-requests
  token_limits:
    description: Regular expression matching the names of the token limits (the policies role's C(<tier>-tokens)).
    type: str
    default: .+-tokens
  bearer_token:
    description: Token for a Prometheus behind authentication.
    type: str
  timeout:
    description: Seconds to wait for each query.
    type: float
    default: 30
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Queries Prometheus and reports whether the files would change, without writing them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
author:
  - TokenLabs platform team (@tokenlabs)
"""

EXAMPLES = r"""
- name: Usage | Last month per tenant
  tokenlabs.platform.usage_report:
    prometheus_url: http://prometheus-operated.monitoring:9090
    start: "2026-10-01T00:00:00Z"
    end: "2026-11-01T00:00:00Z"
    csv_path: /srv/billing/2026-10.csv
    json_path: /srv/billing/2026-10.json
"""

RETURN = r"""
rows:
  description: One entry per tenant and tier.
  returned: success
  type: list
  elements: dict
  sample: [{tenant: acme, tier: pro, requests: 1200, rejected_requests: 3, tokens: 480000}]
start:
  description: Start of the range (RFC 3339).
  returned: success
  type: str
end:
  description: End of the range (RFC 3339).
  returned: success
  type: str
"""

import os  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Any, Dict, List, Tuple  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.usage_report import (  # noqa: E402
    UsageError,
    UsageQuery,
    collect,
    parse_time,
    to_csv,
    to_json,
)


def argspec() -> Dict[str, Any]:
    return {
        "prometheus_url": {"type": "str", "required": True},
        "start": {"type": "str", "default": "24h"},
        "end": {"type": "str", "default": "now"},
        "csv_path": {"type": "path"},
        "json_path": {"type": "path"},
        "token_metric": {"type": "str", "no_log": False, "default": "authorized_hits"},
        "request_metric": {"type": "str", "default": "authorized_calls"},
        "rejected_metric": {"type": "str", "default": "limited_calls"},
        "tenant_label": {"type": "str", "default": "user"},
        "tier_label": {"type": "str", "default": "tier"},
        "limit_label": {"type": "str", "default": "limit_name"},
        "request_limits": {"type": "str", "default": ".+-requests"},
        "token_limits": {"type": "str", "no_log": False, "default": ".+-tokens"},
        "bearer_token": {"type": "str", "no_log": True},
        "timeout": {"type": "float", "default": 30},
    }


def write_outputs(module: AnsibleModule, outputs: List[Tuple[str, str]]) -> Tuple[bool, List[Dict[str, str]]]:
    """Write each file whose content differs; returns (changed, diff list)."""
    changed, diffs = False, []
    for path, content in outputs:
        before = ""
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                before = handle.read()
        if before == content:
            continue
        changed = True
        diffs.append({"before": before, "after": content, "before_header": path, "after_header": path})
        if not module.check_mode:
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(content)
            module.atomic_move(tmp, path)
    return changed, diffs


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    p = module.params
    now = datetime.now(timezone.utc)
    try:
        query = UsageQuery(
            prometheus_url=p["prometheus_url"],
            start=parse_time(p["start"], now),
            end=parse_time(p["end"], now),
            token_metric=p["token_metric"],
            request_metric=p["request_metric"],
            rejected_metric=p["rejected_metric"],
            tenant_label=p["tenant_label"],
            tier_label=p["tier_label"],
            limit_label=p["limit_label"],
            request_limits=p["request_limits"],
            token_limits=p["token_limits"],
            bearer_token=p["bearer_token"],
            timeout=p["timeout"],
        )
        rows = collect(query)
    except UsageError as exc:
        module.fail_json(msg=str(exc))
    outputs = [
        (path, render(query, rows))
        for path, render in ((p["csv_path"], lambda _q, r: to_csv(r)), (p["json_path"], to_json))
        if path
    ]
    changed, diffs = write_outputs(module, outputs)
    result = {"changed": changed, "rows": rows, "start": query.start.isoformat(), "end": query.end.isoformat()}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
