"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and, for workloads,
kube-controller-manager, kube-scheduler and kwok simulating the inventory's nodes.

Every component is a child process started in its own session and tied to this process with
PR_SET_PDEATHSIG, so nothing outlives the owner: not on a clean stop, not on SIGTERM/SIGINT
(handlers stop every live control plane), not even on SIGKILL (the kernel kills the children).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from tokenlabs.lab import pki as pki_mod
from tokenlabs.lab.nodes import NVIDIA_RUNTIME_CLASS, NodeSpec, node_manifest

_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 90.0
_STOP_GRACE = 10.0
# Stages that make standalone kwok behave like kubelets: nodes initialise and heartbeat,
# scheduled pods become Running/Ready, completed pods finish, deleted pods go away.
_KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become ready."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], bool], timeout: float, proc: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise ControlPlaneError(f"{what}: process exited with {proc.popen.returncode}; log:\n{proc.tail()}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.25)
    tail = f"; log:\n{proc.tail()}" if proc is not None else ""
    raise ControlPlaneError(f"{what}: not ready after {timeout:.0f}s{tail}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Process:
    """Start ``argv`` in its own session, logging to ``log_dir/name.log``, killed if this process dies."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, which is async-signal-safe
        )
    return Process(name, popen, log)


_LIVE: weakref.WeakSet[ControlPlane] = weakref.WeakSet()


def _stop_all() -> None:
    for plane in list(_LIVE):
        plane.stop()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_signal_handlers() -> None:
    """Stop every live control plane on SIGTERM/SIGINT/SIGHUP, then die of the same signal."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)


atexit.register(_stop_all)


@dataclass(eq=False)  # identity semantics: planes are tracked in a WeakSet
class ControlPlane:
    """Loopback control plane owned by this process."""

    bin_dir: Path
    run_dir: Path
    kwok_stages: Path | None = None
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    kubeconfig: Path = field(init=False)
    _etcd_dir: Path | None = None
    _pki: pki_mod.Pki | None = None
    # 127.0/16 and 127.1/16 hold the host's own loopback names; a random /16 keeps two planes apart.
    service_cidr: str = field(default_factory=lambda: f"127.{random.randint(64, 250)}.0.0/16")

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.run_dir / "kubeconfig"

    # --- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> Process:
        proc = spawn(name, [str(self.bin_dir / name), *args], self.run_dir)
        self.processes.append(proc)
        _LIVE.add(self)
        return proc

    @property
    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes if p.popen.poll() is None]

    # --- start -----------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        """Start etcd and kube-apiserver and write the kubeconfig."""
        try:
            self._pki = pki_mod.create(self.run_dir / "pki")
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_etcd(self) -> None:
        base = etcd_data_base()
        sweep_stale_etcd_data(base)
        self._etcd_dir = base / f"{ETCD_DATA_PREFIX}{uuid.uuid4().hex[:12]}"
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                f"--data-dir={self._etcd_dir}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._etcd_url = url

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                return bool(json.load(resp).get("health") == "true")

        wait_for("etcd", healthy, _START_TIMEOUT, proc)

    def _ssl_context(self) -> ssl.SSLContext:
        assert self._pki is not None
        ctx = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        ctx.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        return ctx

    def _start_apiserver(self) -> None:
        assert self._pki is not None
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        proc = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self._etcd_url}",
                f"--cert-dir={self.run_dir / 'pki'}",
                f"--tls-cert-file={self._pki.serving_cert}",
                f"--tls-private-key-file={self._pki.serving_key}",
                f"--client-ca-file={self._pki.ca_cert}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # Loopback ClusterIPs: the lab's kubelet relays them to the controllers it runs (tokenlabs.lab.kubelet).
                f"--service-cluster-ip-range={self.service_cidr}",
                "--allow-privileged=true",
                # No token controller is guaranteed to run, so pods would wait for SA tokens.
                "--disable-admission-plugins=ServiceAccount",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server}/",
                f"--service-account-key-file={self._pki.sa_public}",
                f"--service-account-signing-key-file={self._pki.sa_private}",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--v=0",
            ],
        )
        ctx = self._ssl_context()

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", timeout=5, context=ctx) as resp:
                return resp.status == 200

        wait_for("kube-apiserver /readyz", ready, _START_TIMEOUT, proc)

    def _write_kubeconfig(self) -> None:
        assert self._pki is not None

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "tokenlabs-lab",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self._pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64(self._pki.admin_cert),
                        "client-key-data": b64(self._pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "tokenlabs-lab", "context": {"cluster": "tokenlabs-lab", "user": "admin"}}],
            "current-context": "tokenlabs-lab",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    # --- API helpers -----------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        """Minimal authenticated API call, for the harness's own needs (no client library)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        with urllib.request.urlopen(req, timeout=30, context=self._ssl_context()) as resp:
            return json.load(resp)

    def apply(self, obj: dict[str, Any], path: str) -> Any:
        """Server-side apply ``obj`` at the named-object ``path``."""
        return self.request(
            "PATCH", f"{path}?fieldManager=tokenlabs-lab&force=true", obj, "application/apply-patch+yaml"
        )

    # --- CRDs ------------------------------------------------------------------------------
    def install_crds(self, manifests: Iterable[Path], timeout: float = 60.0) -> list[str]:
        """Apply every CRD found in ``manifests`` and wait until all are Established."""
        names: list[str] = []
        for path in manifests:
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                self.apply(doc, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                names.append(name)
        for name in names:

            def established(crd: str = name) -> bool:
                obj = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
                conds = obj.get("status", {}).get("conditions", [])
                return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

            wait_for(f"CRD {name} Established", established, timeout)
        return names

    # --- workloads -------------------------------------------------------------------------
    def start_workloads(self, nodes: Iterable[NodeSpec], controllers: dict[str, dict[str, Any]] | None = None) -> None:
        """Add controller-manager, scheduler and kwok, create ``nodes`` and wait until they are Ready.

        ``controllers`` (image repository -> binary, from ``tokenlabs.lab.controllers.image_table``) starts the
        lab's kubelet, which runs those binaries behind the pods of those images.
        """
        if self.kwok_stages is None:
            raise ControlPlaneError("kwok needs its stage definitions (kwok_stages) to simulate nodes")
        assert self._pki is not None
        try:
            self._spawn(
                "kube-controller-manager",
                [
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    f"--root-ca-file={self._pki.ca_cert}",
                    f"--service-account-private-key-file={self._pki.sa_private}",
                    "--use-service-account-credentials=false",
                    "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
                ],
            )
            self._spawn(
                "kube-scheduler",
                [
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                ],
            )
            stages = self.run_dir / "kwok-stages.yaml"
            stages.write_text("\n---\n".join((self.kwok_stages / rel).read_text() for rel in _KWOK_STAGE_FILES))
            self._spawn(
                "kwok",
                [
                    f"--kubeconfig={self.kubeconfig}",
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-label-selector=type=kwok",
                    "--cidr=10.244.0.0/16",
                    "--node-ip=10.0.0.1",
                    "--node-lease-duration-seconds=40",
                    f"--server-address=127.0.0.1:{free_port()}",
                    f"--config={stages}",
                ],
            )
            if controllers:
                images = self.run_dir / "kubelet-images.json"
                images.write_text(json.dumps(controllers, indent=2))
                argv = [sys.executable, "-m", "tokenlabs.lab.kubelet", f"--kubeconfig={self.kubeconfig}"]
                argv += [
                    f"--run-dir={self.run_dir / 'kubelet'}",
                    f"--images={images}",
                    f"--service-cidr={self.service_cidr}",
                ]
                self.processes.append(spawn("kubelet", argv, self.run_dir))
            # The GPU Operator creates this on real clusters; GPU pods name it and are refused without it.
            self.apply(NVIDIA_RUNTIME_CLASS, "/apis/node.k8s.io/v1/runtimeclasses/nvidia")
            for node in nodes:
                self.apply(node_manifest(node), f"/api/v1/nodes/{node.name}")
            for node in nodes:
                wait_for(f"node {node.name} Ready", lambda n=node.name: self.node_ready(n), _START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def node_ready(self, name: str) -> bool:
        node = self.request("GET", f"/api/v1/nodes/{name}")
        conds = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    # --- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop components in reverse start order and remove etcd's data."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        if self._etcd_dir is not None:
            shutil.rmtree(self._etcd_dir, ignore_errors=True)
            self._etcd_dir = None
        _LIVE.discard(self)


ETCD_DATA_PREFIX = "tokenlabs-etcd-"


def etcd_data_base() -> Path:
    """Where etcd keeps its data: in memory when /dev/shm is there (a test cluster needs no durability)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def sweep_stale_etcd_data(base: Path) -> list[Path]:
    """Remove etcd data directories no running etcd uses.

    A harness killed outright (SIGKILL) has no chance to remove its own, and in /dev/shm they hold memory.
    """
    in_use: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        in_use.update(a[len(b"--data-dir=") :].decode(errors="replace") for a in args if a.startswith(b"--data-dir="))
    removed = [path for path in base.glob(f"{ETCD_DATA_PREFIX}*") if str(path) not in in_use]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


@contextlib.contextmanager
def running(
    bin_dir: Path, run_dir: Path, *, kwok_stages: Path | None = None, attempts: int = 3
) -> Iterator[ControlPlane]:
    """Start a control plane, retrying with new ports if one was taken in between."""
    for attempt in range(1, attempts + 1):
        plane = ControlPlane(bin_dir, run_dir / f"attempt-{attempt}", kwok_stages=kwok_stages)
        try:
            plane.start()
            break
        except ControlPlaneError:
            if attempt == attempts:
                raise
    try:
        yield plane
    finally:
        plane.stop()
