"""The ``tokenlabs`` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tokenlabs import runner
from tokenlabs.lab import manager
from tokenlabs.lab.controlplane import install_signal_handlers

LAB_DIR = runner.REPO_ROOT / ".lab"
LAB_INVENTORY = runner.REPO_ROOT / "inventory" / "lab"


def _print_result(result: runner.PlayResult, as_json: bool) -> None:
    if as_json:
        payload = {
            "ok": result.ok,
            "rc": result.rc,
            "duration": round(result.duration, 1),
            "hosts": result.hosts,
            "failures": result.failures,
            "artifacts": str(result.artifacts),
        }
        print(json.dumps(payload, indent=2))
        return
    print(f"{'host':<20} {'ok':>5} {'changed':>8} {'failed':>7} {'skipped':>8}")
    for host, counts in sorted(result.hosts.items()):
        print(
            f"{host:<20} {counts.get('ok', 0):>5} {counts.get('changed', 0):>8} "
            f"{counts.get('failed', 0) + counts.get('unreachable', 0):>7} {counts.get('skipped', 0):>8}"
        )
    for failure in result.failures:
        print(f"FAILED {failure['host']} | {failure['task']}: {failure['message']}", file=sys.stderr)
    print(f"{result.status} in {result.duration:.1f}s; artifacts: {result.artifacts}")


def _lab_up(args: argparse.Namespace) -> int:
    print("starting the lab control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
    state = manager.up(LAB_DIR)
    print(f"cluster {state['server']}  kubeconfig {state['kubeconfig']}")
    result = runner.run_playbook(
        "site.yml",
        inventory=LAB_INVENTORY,
        artifacts_root=LAB_DIR / "runs",
        envvars={"K8S_AUTH_KUBECONFIG": state["kubeconfig"], "KUBECONFIG": state["kubeconfig"]},
        tags=args.tags,
        check=args.check,
    )
    _print_result(result, args.json)
    return 0 if result.ok else 1


def _lab_down(_args: argparse.Namespace) -> int:
    print("lab stopped" if manager.down(LAB_DIR) else "no lab running")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    state: dict[str, Any] | None = manager.state(LAB_DIR)
    if args.json:
        print(json.dumps({"running": state is not None, **(state or {})}, indent=2))
    elif state is None:
        print("no lab running")
    else:
        print(f"running: {state['server']} (supervisor pid {state['pid']}), nodes: {', '.join(state['nodes'])}")
        print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenlabs", description="Operate the TokenLabs platform.")
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the local lab: a real control plane with simulated Spark nodes")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="start the lab and converge site.yml against it")
    up.add_argument("--tags", help="run only these site.yml tags")
    up.add_argument("--check", action="store_true", help="--check --diff: report, change nothing")
    up.add_argument("--json", action="store_true", help="machine-readable summary")
    up.set_defaults(func=_lab_up)
    lab_sub.add_parser("down", help="stop the lab and remove its data").set_defaults(func=_lab_down)
    status = lab_sub.add_parser("status", help="is the lab running, and where")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_lab_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_signal_handlers()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except manager.LabError as exc:
        print(f"tokenlabs: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
