# Copyright: (c) 2026, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-tenant requests and tokens over a time range, from Prometheus, as rows for a billing export.

Limitador counts what the gateway's policies charge: ``authorized_calls`` (calls let through),
``limited_calls`` (requests refused with 429) and ``authorized_hits`` (what those calls charged). Both
the request limits (``<tier>-requests``, +1 per request) and the token limits (``<tier>-tokens``, +N per
response) feed the same counters, told apart only by the limit name label: requests are read from the
request limits and tokens from the token limits, or each request would be billed as a token too. The
monitoring role's TelemetryPolicy adds the labels ``user`` (tenant id) and ``tier``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible.module_utils.urls import open_url

FIELDS = ("tenant", "tier", "requests", "rejected_requests", "tokens")
_DURATION = re.compile(r"^(\d+)([smhdw])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class UsageError(Exception):
    """Prometheus could not be asked or did not answer as expected."""


@dataclass
class UsageQuery:
    prometheus_url: str
    start: datetime
    end: datetime
    token_metric: str = "authorized_hits"
    request_metric: str = "authorized_calls"
    rejected_metric: str = "limited_calls"
    tenant_label: str = "user"
    tier_label: str = "tier"
    limit_label: str = "limit_name"
    request_limits: str = ".+-requests"
    token_limits: str = ".+-tokens"
    bearer_token: str | None = None
    timeout: float = 30.0

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def promql(self, metric: str, limits: str | None = None) -> str:
        """``limits``: a regular expression the limit name must match; None counts every limit."""
        by = f"{self.tenant_label}, {self.tier_label}"
        matchers = f'{self.tenant_label}!=""'
        if limits is not None:
            matchers += f",{self.limit_label}=~{json.dumps(limits)}"
        return f"sum by ({by}) (increase({metric}{{{matchers}}}[{self.seconds}s]))"

    def columns(self) -> dict[str, tuple[str, str | None]]:
        """Report column -> (counter, limit-name pattern). A refusal is one request whichever limit refused it."""
        return {
            "requests": (self.request_metric, self.request_limits),
            "rejected_requests": (self.rejected_metric, None),
            "tokens": (self.token_metric, self.token_limits),
        }


Fetch = Callable[[str, dict[str, str], float], bytes]


def base_url(url: str) -> str:
    """The Prometheus address an API URL was built from: what the operator configured."""
    return url.split("?", maxsplit=1)[0].removesuffix("/api/v1/query")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return str(getattr(reason, "strerror", None) or reason).lower()


def urllib_fetch(url: str, headers: dict[str, str], timeout: float) -> bytes:
    try:
        with open_url(url, headers=headers, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UsageError(f"no Prometheus API at {base_url(url)} (HTTP 404 on /api/v1/query)") from exc
        raise UsageError(f"Prometheus at {base_url(url)} answered HTTP {exc.code}: {exc.read()[:300]!r}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UsageError(f"no Prometheus answers at {base_url(url)} ({_reason(exc)})") from exc


def parse_time(value: str, now: datetime) -> datetime:
    """``now``, a duration before now (``24h``, ``7d``), or an RFC 3339 / ISO 8601 timestamp."""
    value = value.strip()
    if value == "now":
        return now
    match = _DURATION.match(value)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"cannot read time {value!r}: use 'now', a duration like '24h' or an RFC 3339 timestamp"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def instant_query(q: UsageQuery, promql: str, fetch: Fetch = urllib_fetch) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": promql, "time": f"{q.end.timestamp():.3f}"})
    headers = {"Accept": "application/json"}
    if q.bearer_token:
        headers["Authorization"] = f"Bearer {q.bearer_token}"
    raw = fetch(f"{q.prometheus_url.rstrip('/')}/api/v1/query?{params}", headers, q.timeout)
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"Prometheus answer is not JSON: {raw[:200]!r}") from exc
    if payload.get("status") != "success":
        raise UsageError(f"Prometheus refused {promql!r}: {payload.get('error', payload)}")
    data = payload.get("data") or {}
    if data.get("resultType") != "vector":
        raise UsageError(f"expected a vector for {promql!r}, got {data.get('resultType')!r}")
    return list(data.get("result") or [])


def collect(q: UsageQuery, fetch: Fetch = urllib_fetch) -> list[dict[str, Any]]:
    """One row per (tenant, tier), sorted, with whole numbers (increase() extrapolates fractions)."""
    if q.seconds <= 0:
        raise UsageError(f"the range is empty: start {q.start.isoformat()} is not before end {q.end.isoformat()}")
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for column, (metric, limits) in q.columns().items():
        for sample in instant_query(q, q.promql(metric, limits), fetch):
            labels = sample.get("metric") or {}
            key = (str(labels.get(q.tenant_label, "")), str(labels.get(q.tier_label, "")))
            row = rows.setdefault(
                key, {"tenant": key[0], "tier": key[1], "requests": 0, "rejected_requests": 0, "tokens": 0}
            )
            row[column] = round(float(sample["value"][1]))
    return [rows[key] for key in sorted(rows)]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(q: UsageQuery, rows: list[dict[str, Any]]) -> str:
    document = {
        "start": q.start.isoformat(),
        "end": q.end.isoformat(),
        "metrics": {column: q.promql(metric, limits) for column, (metric, limits) in q.columns().items()},
        "tenants": rows,
        "totals": {column: sum(row[column] for row in rows) for column in ("requests", "rejected_requests", "tokens")},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
