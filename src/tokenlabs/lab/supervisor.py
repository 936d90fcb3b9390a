"""Keeps a lab control plane alive in the background until it is told to stop.

``tokenlabs lab up`` starts this module as a detached process; it writes ``state.json`` once the
cluster is ready (or ``error`` when it is not) and tears everything down on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from tokenlabs.lab import controlplane, sources
from tokenlabs.lab.nodes import LAB_NODES

STATE_FILE = "state.json"
ERROR_FILE = "error"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--no-workloads", action="store_true", help="etcd and kube-apiserver only")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    try:
        bins = sources.ensure_binaries()
        plane = controlplane.ControlPlane(bins.bin_dir, run_dir / "cluster", kwok_stages=bins.kwok_stages)
        plane.start()
    except Exception as exc:
        (run_dir / ERROR_FILE).write_text(str(exc))
        return 1
    try:
        crds = plane.install_crds(sources.crd_manifests())
        if not args.no_workloads:
            plane.start_workloads(LAB_NODES)
        state = {
            "pid": os.getpid(),
            "server": plane.server,
            "kubeconfig": str(plane.kubeconfig),
            "component_pids": plane.pids,
            "crds": len(crds),
            "nodes": [] if args.no_workloads else [n.name for n in LAB_NODES],
            "bin_dir": str(bins.bin_dir),
        }
        tmp = run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(run_dir / STATE_FILE)
        stop.wait()
    except Exception as exc:
        (run_dir / ERROR_FILE).write_text(str(exc))
        return 1
    finally:
        plane.stop()
        (run_dir / STATE_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
