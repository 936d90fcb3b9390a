"""Keeps a lab control plane alive in the background until it is told to stop.

``tokenlabs lab up`` starts this module as a detached process; it writes ``state.json`` once the
cluster is ready (or ``error`` when it is not) and tears everything down on SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path

from tokenlabs.lab import controllers, controlplane, sources
from tokenlabs.lab.nodes import LAB_NODES

STATE_FILE = "state.json"
ERROR_FILE = "error"
# espeak-ng covers all seven Magpie languages on CPU; the GPU engine is for the Sparks.
TTS_ENGINE = "espeak"


def start_tts(run_dir: Path) -> tuple[controlplane.Process, str] | None:
    """Serve the speech service on loopback with a CPU engine; None when it is not installed."""
    if importlib.util.find_spec("magpie_tts") is None:
        return None
    port = controlplane.free_port()
    env = {
        **os.environ,
        "MAGPIE_TTS_ENGINE": TTS_ENGINE,
        "MAGPIE_TTS_HOST": "127.0.0.1",
        "MAGPIE_TTS_PORT": str(port),
        "MAGPIE_TTS_LOG_LEVEL": "warning",
    }
    proc = controlplane.spawn("magpie-tts", [sys.executable, "-m", "magpie_tts"], run_dir, env)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as resp:
            return resp.status == 200

    try:
        controlplane.wait_for("magpie-tts /ready", ready, 120, proc)
    except controlplane.ControlPlaneError:
        proc.stop()
        raise
    return proc, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--no-workloads", action="store_true", help="etcd and kube-apiserver only")
    parser.add_argument("--no-tts", action="store_true", help="do not serve the speech service locally")
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
    tts: tuple[controlplane.Process, str] | None = None
    try:
        crds = plane.install_crds(sources.crd_manifests())
        if not args.no_workloads:
            plane.start_workloads(LAB_NODES, controllers.image_table(controllers.ensure()))
        if not args.no_tts:
            tts = start_tts(run_dir)
        state = {
            "pid": os.getpid(),
            "server": plane.server,
            "kubeconfig": str(plane.kubeconfig),
            "component_pids": plane.pids,
            "crds": len(crds),
            "nodes": [] if args.no_workloads else [n.name for n in LAB_NODES],
            "bin_dir": str(bins.bin_dir),
            "tts_url": tts[1] if tts else None,
        }
        tmp = run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(run_dir / STATE_FILE)
        stop.wait()
    except Exception as exc:
        (run_dir / ERROR_FILE).write_text(str(exc))
        return 1
    finally:
        if tts is not None:
            tts[0].stop()
        plane.stop()
        (run_dir / STATE_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
