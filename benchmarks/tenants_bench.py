"""Tenant reconcile benchmark against a local API server (not a test: prints and records, never asserts).

For each N: (a) tokenlabs.platform.tenants creating N tenants, (b) the same with nothing to change,
(c) a kubernetes.core.k8s task looping over N Secrets, (d) one ``kubectl apply --server-side`` of the same N Secrets.
Each case runs in a fresh namespace; times are medians over --repeats runs. "wall" is the whole process
(ansible-playbook or kubectl); "task" is the task alone, as Ansible's JSON callback times it.

    .venv/bin/python benchmarks/tenants_bench.py [--sizes 100 1000] [--repeats 3] [--loop-max 1000]

The kubernetes.core.k8s loop costs about a second per Secret; with --loop-max below N, (c) for that N is
estimated from the per-Secret time measured at the largest N <= loop-max and marked "estimated" in the
table and the JSON.

(b)'s writes are counted on the server: the kube-apiserver's ``apiserver_request_total`` counter of Secret
writes (POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION, any status) before and after the run, so a write
that changed nothing is counted too. The counter covers the whole server: on a shared cluster
(TOKENLABS_KUBECONFIG) other writers would be counted as well. As a cross-check, "objects_changed_b" counts
Secrets in the namespace that appeared, disappeared or got a new resourceVersion. (The module's own
``writes`` result cannot be read: the task runs with no_log, which censors the whole result.)

Uses TOKENLABS_KUBECONFIG when set, else starts its own etcd + kube-apiserver.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apiserver_writes
import yaml
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "tenants.json"
TIERS = ("free", "pro", "enterprise")


@contextlib.contextmanager
def cluster(work: Path) -> Iterator[tuple[str, Path]]:
    existing = os.environ.get("TOKENLABS_KUBECONFIG")
    from tokenlabs.lab import controlplane, sources  # noqa: PLC0415 - only when no cluster is given

    bins = sources.ensure_binaries()
    if existing:
        yield existing, bins.bin_dir
        return
    with controlplane.running(bins.bin_dir, work / "control-plane") as plane:
        yield str(plane.kubeconfig), bins.bin_dir


class Bench:
    def __init__(self, kubeconfig: str, bin_dir: Path, work: Path) -> None:
        self.kubeconfig = kubeconfig
        self.work = work
        self.core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir), os.environ["PATH"]]),
            "KUBECONFIG": kubeconfig,
            "K8S_AUTH_KUBECONFIG": kubeconfig,
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOCALHOST_WARNING": "false",
        }
        self.counter = 0

    def namespace(self, label: str) -> str:
        self.counter += 1
        name = f"bench-{label}-{self.counter}-{secrets.token_hex(3)}"
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def cleanup(self, namespace: str) -> None:
        self.core.delete_namespace(namespace)

    def secret_writes(self) -> int:
        """Secret write requests the API server has answered so far, by its own request counter."""
        counted = apiserver_writes.writes(self.core.api_client)
        return sum(n for key, n in counted.items() if apiserver_writes.resource_of(key) == "secrets")

    def versions(self, namespace: str) -> dict[str, str]:
        return {s.metadata.uid: s.metadata.resource_version for s in self.core.list_namespaced_secret(namespace).items}

    def playbook(self, tasks: list[dict[str, Any]], variables: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
        """Run one play; return (process wall seconds, task seconds, the task's result)."""
        self.counter += 1
        path = self.work / f"play-{self.counter}.yml"
        play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": variables, "tasks": tasks}]
        path.write_text(yaml.safe_dump(play))
        started = time.perf_counter()
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), str(path)],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])
        task = json.loads(proc.stdout)["plays"][0]["tasks"][0]
        duration = task["task"]["duration"]
        task_seconds = (_parse(duration["end"]) - _parse(duration["start"])).total_seconds()
        return wall, task_seconds, task["hosts"]["localhost"]

    def kubectl_apply(self, namespace: str, objects: list[dict[str, Any]]) -> float:
        path = self.work / f"{namespace}.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
        started = time.perf_counter()
        subprocess.run(
            ["kubectl", "apply", "--server-side", "--field-manager=bench", "-n", namespace, "-f", str(path)],
            env=self.env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def tenant_list(n: int) -> list[dict[str, str]]:
    return [{"name": f"tenant{i:05d}", "tier": TIERS[i % 3]} for i in range(n)]


def secret_objects(tenants: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The same Secrets our module writes, for the kubernetes.core.k8s and kubectl cases."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": f"tenant-{t['name']}",
                "labels": {
                    "authorino.kuadrant.io/managed-by": "authorino",
                    "app": "token-labs",
                    "app.kubernetes.io/managed-by": "tokenlabs",
                    "tokenlabs.io/tenant": t["name"],
                    "tokenlabs.io/key": "current",
                },
                "annotations": {"kuadrant.io/groups": t["tier"], "secret.kuadrant.io/user-id": t["name"]},
            },
            "stringData": {"api_key": "tlabs_sk_" + secrets.token_hex(24)},
        }
        for t in tenants
    ]


def measure(
    bench: Bench, n: int, repeats: int, loop_repeats: int, loop_per_item: dict[str, float] | None
) -> dict[str, Any]:
    tenants = tenant_list(n)
    objects = secret_objects(tenants)
    load_before = os.getloadavg()
    rows: dict[str, dict[str, list[float]]] = {k: {"wall": [], "task": []} for k in "abcd"}
    writes_b: list[int] = []
    changed_b: list[int] = []
    reconcile = [
        {
            "tokenlabs.platform.tenants": {"tenants": "{{ bench_tenants }}", "namespace": "{{ bench_ns }}"},
            "no_log": True,
        }
    ]
    for _ in range(repeats):
        ns = bench.namespace("a")
        wall, task, _result = bench.playbook(reconcile, {"bench_tenants": tenants, "bench_ns": ns})
        rows["a"]["wall"].append(wall)
        rows["a"]["task"].append(task)
        before, writes_before = bench.versions(ns), bench.secret_writes()
        wall, task, _result = bench.playbook(reconcile, {"bench_tenants": tenants, "bench_ns": ns})
        writes_b.append(bench.secret_writes() - writes_before)
        after = bench.versions(ns)
        changed_b.append(len(set(before.items()) ^ set(after.items())))
        rows["b"]["wall"].append(wall)
        rows["b"]["task"].append(task)
        bench.cleanup(ns)

        ns = bench.namespace("d")
        rows["d"]["wall"].append(bench.kubectl_apply(ns, objects))
        bench.cleanup(ns)
    loop = [
        {
            "kubernetes.core.k8s": {"state": "present", "namespace": "{{ bench_ns }}", "definition": "{{ item }}"},
            "loop": "{{ bench_objects }}",
            "no_log": True,
        }
    ]
    for _ in range(loop_repeats if loop_per_item is None else 0):
        ns = bench.namespace("c")
        wall, task, _result = bench.playbook(loop, {"bench_objects": objects, "bench_ns": ns})
        rows["c"]["wall"].append(wall)
        rows["c"]["task"].append(task)
        bench.cleanup(ns)
    med = {k: {m: statistics.median(v) if v else None for m, v in row.items()} for k, row in rows.items()}
    if loop_per_item is not None:
        med["c"] = {m: per_item * n for m, per_item in loop_per_item.items()}
    return {
        "n": n,
        "c_estimated": loop_per_item is not None,
        "repeats": {"a": repeats, "b": repeats, "c": loop_repeats, "d": repeats},
        "median_seconds": med,
        "samples": rows,
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "writes_b": writes_b,
        "objects_changed_b": changed_b,
        "ratios": {
            "a_over_d_wall": med["a"]["wall"] / med["d"]["wall"],
            "a_over_d_task": med["a"]["task"] / med["d"]["wall"],
            "c_over_a_wall": med["c"]["wall"] / med["a"]["wall"],
            "c_over_a_task": med["c"]["task"] / med["a"]["task"],
        },
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| N | (a) bulk create wall / task | (b) no-op wall / task, writes | (c) k8s loop wall / task | "
        "(d) kubectl SSA | a/d (wall, task) | c/a (wall, task) | load 1m before/after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, q = r["median_seconds"], r["ratios"]
        lines.append(
            f"| {r['n']} | {m['a']['wall']:.2f} s / {m['a']['task']:.2f} s | {m['b']['wall']:.2f} s / "
            f"{m['b']['task']:.2f} s, {max(r['writes_b'])} | {m['c']['wall']:.1f} s / {m['c']['task']:.1f} s"
            f"{' (estimated)' if r['c_estimated'] else ''} | "
            f"{m['d']['wall']:.2f} s | {q['a_over_d_wall']:.2f}x, {q['a_over_d_task']:.2f}x | "
            f"{q['c_over_a_wall']:.0f}x, {q['c_over_a_task']:.0f}x | "
            f"{r['load_average']['before'][0]:.1f} / {r['load_average']['after'][0]:.1f} |"
        )
    return "\n".join(lines)


def write_report(output: Path, results: list[dict[str, Any]]) -> None:
    report = {
        "benchmark": "tenants",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-repeats", type=int, default=1, help="runs of the slow kubernetes.core.k8s loop")
    parser.add_argument("--loop-max", type=int, default=1000, help="largest N at which (c) is measured, not estimated")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tenants-bench-") as tmp, cluster(Path(tmp)) as (kubeconfig, bin_dir):
        bench = Bench(kubeconfig, bin_dir, Path(tmp))
        results: list[dict[str, Any]] = []
        per_item: dict[str, float] | None = None
        for n in sorted(args.sizes):
            result = measure(bench, n, args.repeats, args.loop_repeats, per_item if n > args.loop_max else None)
            if not result["c_estimated"]:
                per_item = {m: v / n for m, v in result["median_seconds"]["c"].items()}
            results.append(result)
            write_report(args.output, results)
            print(table([result]).splitlines()[-1], flush=True)
    print(table(results))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
