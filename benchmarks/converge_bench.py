"""site.yml converge benchmark on the lab (not a test: prints and records, never asserts).

In one run, on a lab of its own (real control plane and controllers, started in a temporary directory):
(a) the first converge of an empty cluster, (b) a no-op converge, (d) ``--check --diff`` on the converged state,
(c) a converge with one tier number changed (the free tier's requests per minute, given as extra vars).
(d) runs before (c) so that it checks the state the inventory describes. For each: wall time, tasks run,
tasks changed, API writes counted on the server (kube-apiserver's ``apiserver_request_total`` for write verbs,
before and after) and time per role (the sum of its tasks' durations, as ansible-runner times them). The
server counts every client: "API writes" leaves out what the control plane and the controllers write all the
time (leases, events, status subresources) and dry runs (counted apart); the JSON keeps every resource. A
server-side apply that changes nothing still counts as a write. Ratios compare runs of this one invocation,
on the same machine at the same time.

    .venv/bin/python benchmarks/converge_bench.py [--output benchmarks/results/converge.json]

The lab needs root (the lab kubelet's namespaces) and the built binaries, as ``make lab`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apiserver_writes
import yaml
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "converge.json"
INVENTORY = REPO_ROOT / "inventory" / "lab"
# Written all the time by the control plane and the controllers, whatever the playbook does.
BACKGROUND = frozenset({"leases", "events"})
CHANGED_TIER, CHANGED_QUOTA = "free", "requests_per_minute"


def _ours(resource: str) -> bool:
    """Writes the playbook itself can have made: not the controllers' leader leases, events or status reports."""
    return not resource.startswith("dry-run:") and resource not in BACKGROUND and not resource.endswith("/status")


def _role(data: dict[str, Any]) -> str:
    if data.get("role"):
        return str(data["role"]).rsplit(".", 1)[-1]
    return str(data.get("play", "")) or "(play)"


def converge(
    api: client.ApiClient, env: dict[str, str], work: Path, label: str, *, extravars: dict[str, Any], check: bool
) -> dict[str, Any]:
    from tokenlabs import runner  # noqa: PLC0415 - after TOKENLABS_LAB_DIR is set

    per_role: dict[str, float] = defaultdict(float)
    tasks = changed = 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal tasks, changed
        data = event.get("event_data", {})
        if event.get("event") in runner.TASK_DONE:
            tasks += 1
            changed += bool((data.get("res") or {}).get("changed"))
            per_role[_role(data)] += float(data.get("duration") or 0.0)

    before = apiserver_writes.writes(api)
    started = time.monotonic()
    result = runner.run_playbook(
        "site.yml",
        inventory=INVENTORY,
        artifacts_root=work / "runs",
        extravars=extravars,
        envvars=env,
        check=check,
        on_event=on_event,
    )
    wall = time.monotonic() - started
    delta = apiserver_writes.writes(api) - before
    if not result.ok:
        failure = result.failures[0] if result.failures else {"task": result.status, "message": ""}
        raise SystemExit(f"{label}: site.yml failed at {failure['task']}: {failure['message']}")
    return {
        "case": label,
        "wall_seconds": round(wall, 1),
        "tasks": tasks,
        "changed": sum(h.get("changed", 0) for h in result.hosts.values()),
        "changed_events": changed,
        "api_writes": sum(n for r, n in delta.items() if _ours(r)),
        "dry_run_writes": sum(n for r, n in delta.items() if r.startswith("dry-run:")),
        "api_writes_by_resource": {r: n for r, n in sorted(delta.items()) if n},
        "seconds_by_role": {r: round(s, 1) for r, s in sorted(per_role.items(), key=lambda i: -i[1])},
        "slowest_tasks": [{**t, "seconds": round(t["seconds"], 1)} for t in result.slowest],
    }


@contextlib.contextmanager
def lab(work: Path) -> Iterator[tuple[client.ApiClient, dict[str, str]]]:
    os.environ["TOKENLABS_LAB_DIR"] = str(work / "lab")
    from tokenlabs.lab import manager  # noqa: PLC0415 - after TOKENLABS_LAB_DIR is set

    state = manager.up(Path(os.environ["TOKENLABS_LAB_DIR"]))
    try:
        path = os.pathsep.join([str(Path(sys.executable).parent), state["bin_dir"], os.environ.get("PATH", "")])
        env = {"K8S_AUTH_KUBECONFIG": state["kubeconfig"], "KUBECONFIG": state["kubeconfig"], "PATH": path}
        yield config.new_client_from_config(config_file=state["kubeconfig"]), env
    finally:
        manager.down(Path(os.environ["TOKENLABS_LAB_DIR"]))


def changed_tiers() -> dict[str, Any]:
    tiers = yaml.safe_load((INVENTORY / "group_vars" / "all" / "tiers.yml").read_text())["tokenlabs_tiers"]
    bumped = copy.deepcopy(tiers)
    bumped[CHANGED_TIER][CHANGED_QUOTA] += 1
    return bumped


def table(results: list[dict[str, Any]]) -> str:
    first, noop = results[0]["wall_seconds"], results[1]["wall_seconds"]
    lines = [
        "| case | wall | vs first | vs no-op | tasks | changed | API writes | dry-run writes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['case']} | {r['wall_seconds']:.1f} s | {r['wall_seconds'] / first:.2f}x | "
            f"{r['wall_seconds'] / noop:.2f}x | {r['tasks']} | {r['changed']} | {r['api_writes']} | "
            f"{r['dry_run_writes']} |"
        )
    roles = sorted(results[0]["seconds_by_role"], key=lambda role: -results[0]["seconds_by_role"][role])
    lines += ["", "| role | " + " | ".join(r["case"] for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for role in roles:
        cells = " | ".join(f"{r['seconds_by_role'].get(role, 0.0):.1f} s" for r in results)
        lines.append(f"| {role} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="converge-bench-") as tmp, lab(Path(tmp)) as (api, env):
        keys = {"tokenlabs_tenants_key_file": str(Path(tmp) / "tenant-keys.yml")}
        for label, extra, check in (
            ("a first", keys, False),
            ("b no-op", keys, False),
            ("d check", keys, True),
            ("c one tier number", {**keys, "tokenlabs_tiers": changed_tiers()}, False),
        ):
            results.append(converge(api, env, Path(tmp), label, extravars=extra, check=check))
            print(f"{label}: {results[-1]['wall_seconds']} s, {results[-1]['api_writes']} writes", flush=True)
    report = {
        "benchmark": "converge",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "changed_number": f"{CHANGED_TIER}.{CHANGED_QUOTA}",
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
