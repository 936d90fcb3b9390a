"""Billing figures from known Limitador series: requests and tokens each counted once, on their own limits.

Limitador keeps one set of counters for every limit: a request is +1 on ``authorized_calls`` and
``authorized_hits`` of the request limit (``<tier>-requests``), and its response charges the token limit
(``<tier>-tokens``) with another call and N hits. A small evaluator applies each query's label matchers
to those series, so a query that counts the wrong limit shows up as a wrong number.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.tokenlabs.platform.plugins.module_utils import usage_report as u

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLE = REPO_ROOT / "roles" / "monitoring"

# (counter, labels, increase over the range). acme made 120 requests and used 48000 tokens, 3 refused;
# zeta made 100 requests and used 49991 tokens; a series without a tenant is not billed.
SERIES: list[tuple[str, dict[str, str], float]] = [
    ("authorized_calls", {"user": "acme", "tier": "pro", "limit_name": "pro-requests"}, 120.0),
    ("authorized_hits", {"user": "acme", "tier": "pro", "limit_name": "pro-requests"}, 120.0),
    ("authorized_calls", {"user": "acme", "tier": "pro", "limit_name": "pro-tokens"}, 120.0),
    ("authorized_hits", {"user": "acme", "tier": "pro", "limit_name": "pro-tokens"}, 48000.0),
    ("limited_calls", {"user": "acme", "tier": "pro", "limit_name": "pro-requests"}, 3.0),
    ("authorized_calls", {"user": "zeta", "tier": "free", "limit_name": "free-requests"}, 99.6),
    ("authorized_hits", {"user": "zeta", "tier": "free", "limit_name": "free-requests"}, 99.6),
    ("authorized_calls", {"user": "zeta", "tier": "free", "limit_name": "free-tokens"}, 99.6),
    ("authorized_hits", {"user": "zeta", "tier": "free", "limit_name": "free-tokens"}, 49990.9),
    ("authorized_hits", {"user": "", "tier": "", "limit_name": "free-tokens"}, 7.0),
]
EXPECTED = [
    {"tenant": "acme", "tier": "pro", "requests": 120, "rejected_requests": 3, "tokens": 48000},
    {"tenant": "zeta", "tier": "free", "requests": 100, "rejected_requests": 0, "tokens": 49991},
]
_INCREASE = re.compile(r"increase\((?P<metric>[A-Za-z_:][\w:]*)\{(?P<matchers>[^}]*)\}\[[^\]]+\]\)")
_MATCHER = re.compile(r'\s*(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*")\s*,?')


def matches(labels: dict[str, str], matchers: str) -> bool:
    """PromQL label matching: a missing label is the empty string, regular expressions are anchored."""
    pos = 0
    while pos < len(matchers):
        found = _MATCHER.match(matchers, pos)
        assert found, f"cannot read matchers {matchers!r} at {pos}"
        have, want = labels.get(found["label"], ""), json.loads(found["value"])
        ok = {
            "=": have == want,
            "!=": have != want,
            "=~": re.fullmatch(want, have) is not None,
            "!~": re.fullmatch(want, have) is None,
        }[found["op"]]
        if not ok:
            return False
        pos = found.end()
    return True


def evaluate(promql: str) -> dict[tuple[str, str], float]:
    """``sum by (user, tier) (increase(metric{...}[range]))`` over SERIES."""
    selector = _INCREASE.search(promql)
    assert selector, promql
    totals: dict[tuple[str, str], float] = {}
    for metric, labels, value in SERIES:
        if metric == selector["metric"] and matches(labels, selector["matchers"]):
            key = (labels["user"], labels["tier"])
            totals[key] = totals.get(key, 0.0) + value
    return totals


def fake_prometheus(url: str, headers: dict[str, str], timeout: float) -> bytes:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["query"][0]
    result = [
        {"metric": {"user": user, "tier": tier}, "value": [0, str(value)]}
        for (user, tier), value in evaluate(query).items()
    ]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def query() -> u.UsageQuery:
    return u.UsageQuery(
        prometheus_url="http://prometheus:9090",
        start=datetime(2026, 10, 1, tzinfo=UTC),
        end=datetime(2026, 11, 1, tzinfo=UTC),
    )


def test_requests_and_tokens_are_each_read_from_their_own_limits() -> None:
    assert u.collect(query(), fake_prometheus) == EXPECTED


def test_the_queries_name_the_limits_they_count() -> None:
    q = query()
    assert q.promql("authorized_hits", q.token_limits) == (
        'sum by (user, tier) (increase(authorized_hits{user!="",limit_name=~".+-tokens"}[2678400s]))'
    )
    document = json.loads(u.to_json(q, EXPECTED))
    assert document["metrics"]["requests"].count('limit_name=~".+-requests"') == 1
    assert document["totals"] == {"requests": 220, "rejected_requests": 3, "tokens": 97991}


def rendered_rules() -> dict[str, str]:
    variables: dict[str, Any] = {}
    for path in (ROLE / "defaults/main.yml", ROLE / "vars/main.yml"):
        for name, value in yaml.safe_load(path.read_text()).items():
            variables[name] = trust_as_template(value) if isinstance(value, str) else value
    templar = Templar(loader=DataLoader(), variables=variables)
    text = templar.template(trust_as_template((ROLE / "templates/rules.yaml.j2").read_text()))
    rule = yaml.safe_load(text)
    return {r["record"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}


@pytest.mark.parametrize(
    ("record", "column"), [("tenant:tokens:increase1h", "tokens"), ("tenant:requests:increase1h", "requests")]
)
def test_recording_rules_count_what_the_report_counts(record: str, column: str) -> None:
    got = {key: round(value) for key, value in evaluate(rendered_rules()[record]).items()}
    assert got == {(row["tenant"], row["tier"]): row[column] for row in EXPECTED}


def test_no_prometheus_is_one_plain_sentence_with_the_address() -> None:
    with pytest.raises(u.UsageError) as raised:
        u.urllib_fetch("http://127.0.0.1:9/api/v1/query?query=up", {}, 5)
    assert str(raised.value) == "no Prometheus answers at http://127.0.0.1:9 (connection refused)"
