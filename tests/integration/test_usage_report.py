"""The usage report against a stand-in Prometheus on loopback: the queries it sends and the files it writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

SAMPLES = {
    "authorized_calls": [("acme", "pro", "1200.4"), ("zeta", "free", "99.6")],
    "limited_calls": [("zeta", "free", "3")],
    "authorized_hits": [("acme", "pro", "480000.2"), ("zeta", "free", "49990.9")],
}


@pytest.fixture
def prometheus() -> Iterator[tuple[str, list[dict[str, str]]]]:
    queries: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            queries.append(params | {"path": url.path})
            metric = next((m for m in SAMPLES if f"increase({m}{{" in params.get("query", "")), None)
            result: list[dict[str, Any]] = [
                {"metric": {"user": user, "tier": tier}, "value": [float(params["time"]), value]}
                for user, tier, value in SAMPLES.get(metric or "", [])
            ]
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", queries
    finally:
        server.shutdown()
        server.server_close()


def run_playbook(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/usage_report.yml"]
    for name, value in variables.items():
        args += ["-e", f"{name}={value}"]
    return subprocess.run(
        args,
        cwd=REPO_ROOT,
        env={"ANSIBLE_FORCE_COLOR": "0", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_report_for_a_month_queries_increase_over_the_range_and_writes_csv_and_json(
    prometheus: tuple[str, list[dict[str, str]]], tmp_path: Path
) -> None:
    url, queries = prometheus
    proc = run_playbook(
        tmp_path,
        usage_report_prometheus_url=url,
        usage_report_start="2026-10-01T00:00:00Z",
        usage_report_end="2026-11-01T00:00:00Z",
        usage_report_dir=str(tmp_path),
        usage_report_name="2026-10",
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    # One instant query per counter, at the end of the range, over exactly the range (31 days).
    assert {q["path"] for q in queries} == {"/api/v1/query"}
    assert {q["time"] for q in queries} == {"1793491200.000"}
    assert sorted(q["query"] for q in queries) == [
        'sum by (user, tier) (increase(authorized_calls{user!="",limit_name=~".+-requests"}[2678400s]))',
        'sum by (user, tier) (increase(authorized_hits{user!="",limit_name=~".+-tokens"}[2678400s]))',
        'sum by (user, tier) (increase(limited_calls{user!=""}[2678400s]))',
    ]

    rows = list(csv.DictReader((tmp_path / "2026-10.csv").open()))
    assert rows == [
        {"tenant": "acme", "tier": "pro", "requests": "1200", "rejected_requests": "0", "tokens": "480000"},
        {"tenant": "zeta", "tier": "free", "requests": "100", "rejected_requests": "3", "tokens": "49991"},
    ]
    document = json.loads((tmp_path / "2026-10.json").read_text())
    assert document["start"] == "2026-10-01T00:00:00+00:00"
    assert document["end"] == "2026-11-01T00:00:00+00:00"
    assert document["totals"] == {"requests": 1300, "rejected_requests": 3, "tokens": 529991}
    assert document["metrics"]["tokens"] == sorted(q["query"] for q in queries)[1]


def test_an_unreachable_prometheus_fails_with_its_address(tmp_path: Path) -> None:
    proc = run_playbook(
        tmp_path,
        usage_report_prometheus_url="http://127.0.0.1:9",
        usage_report_dir=str(tmp_path),
        usage_report_name="x",
    )
    assert proc.returncode != 0
    assert "no Prometheus answers at http://127.0.0.1:9 (connection refused)" in proc.stdout
    assert not (tmp_path / "x.csv").exists()


def test_an_empty_range_is_refused(prometheus: tuple[str, list[dict[str, str]]], tmp_path: Path) -> None:
    url, queries = prometheus
    proc = run_playbook(
        tmp_path,
        usage_report_prometheus_url=url,
        usage_report_start="now",
        usage_report_dir=str(tmp_path),
        usage_report_name="x",
    )
    assert proc.returncode != 0
    assert "the range is empty" in proc.stdout
    assert queries == []


USAGE_ARGS = ("--prometheus-url", "http://127.0.0.1:9", "--output")


def test_the_usage_command_without_prometheus_says_so_in_one_line(tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    proc = subprocess.run(
        [
            str(venv_bin / "tokenlabs"),
            "usage",
            "-i",
            "inventory/production",
            "--since",
            "24h",
            *USAGE_ARGS,
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env={"PATH": f"{venv_bin}:/usr/bin:/bin", "TOKENLABS_ARTIFACTS": str(tmp_path / "runs"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "tokenlabs: no Prometheus answers at http://127.0.0.1:9 (connection refused)"
