"""Runs the real controllers behind the pods kwok simulates.

kwok makes the charts' pods Running on simulated nodes without running anything. For a container whose image
is one of the lab's controllers (``tokenlabs.lab.controllers``), this process runs that controller's binary
the way a kubelet would run the container:

- in a network namespace of the pod's own (a pause process holds it), so every controller binds the ports
  its chart expects, however many listen on 8080 or 8081;
- in a mount namespace of the container's own, chrooted into a view of the host where the pod's volumes
  (ConfigMaps, Secrets, projected service-account tokens, emptyDirs) are mounted at their ``mountPath``, with
  a private ``/tmp`` and ``/run``, and an ``/etc/hosts`` that resolves the cluster's Service names;
- with the container's command, arguments and environment (``fieldRef``, ``secretKeyRef``,
  ``configMapKeyRef``, ``envFrom``), and in-cluster credentials of its ServiceAccount (a real token from the
  TokenRequest API), so the chart's RBAC is what the controller gets;
- restarted per the pod's ``restartPolicy``; a Job's container runs once (kwok completes the pod itself).

Service ClusterIPs are loopback addresses (the lab's service CIDR is in 127.0.0.0/8): this process listens on
every ClusterIP:port whose Service selects a pod it runs, in the host's network namespace (the API server
calls webhooks there, the lab's checks read controllers there) and in every pod's (controllers call each
other by Service name), and relays each connection into the selected pod's namespace. Pods whose images are
not controllers stay simulated. Needs root (namespaces, mounts).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import fcntl
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tokenlabs.lab.controlplane import spawn

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_TOKEN_SECONDS = 30 * 24 * 3600
_BACKOFF_MAX = 30.0
_POLL = 1.0
_STOP_GRACE = 10.0
_BIN_DIR = "/.tokenlabs"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host directories a pod sees as its own, empty, like a container's.
_PRIVATE_DIRS = ("tmp", "run")
# Where a pod's traffic to Services and to the API server is redirected inside its network namespace.
RELAY_PORT = 15001
_SO_ORIGINAL_DST = 80
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class PodError(RuntimeError):
    """A pod cannot be run as specified (yet)."""


# --- network namespaces ------------------------------------------------------------------------
_NETNS_LOCK = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def _in_netns(netns: Path | None) -> Any:
    """Run the body in ``netns`` (this thread only); sockets made there stay there."""
    if netns is None:
        yield
        return
    with _NETNS_LOCK, open("/proc/thread-self/ns/net") as home, open(netns) as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def _loopback_up(netns: Path) -> None:
    with _in_netns(netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


# --- pod specs -> processes ----------------------------------------------------------------------
def image_repository(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values; $$ escapes."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and (end := value.find(")", i)) != -1 and value[i + 2 : end] in env:
            out.append(env[value[i + 2 : end]])
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _field(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "spec.nodeName": spec.get("nodeName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path in simple:
        return simple[path]
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['"):
            return str(meta.get(source, {}).get(path[len(prefix) + 2 : -2], ""))
    raise PodError(f"fieldRef {path} is not supported")


class Cluster:
    """The reads a pod needs, from the API as the pod's own kubelet would do them."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)

    def data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
        try:
            if kind == "secret":
                obj = self.core.read_namespaced_secret(name, namespace)
                return {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
            obj = self.core.read_namespaced_config_map(name, namespace)
            binary = {k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()}
            return {**{k: v.encode() for k, v in (obj.data or {}).items()}, **binary}
        except ApiException as exc:
            if exc.status == 404 and optional:
                return None
            if exc.status == 404:
                raise PodError(f"{kind} {namespace}/{name} does not exist yet") from exc
            raise

    def token(self, namespace: str, account: str, audiences: list[str] | None, seconds: int) -> str:
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = audiences
        try:
            result = self.core.create_namespaced_service_account_token(account, namespace, {"spec": spec})
        except ApiException as exc:
            raise PodError(f"no token for ServiceAccount {namespace}/{account}: {exc.reason}") from exc
        return str(result.status.token)


def _write_files(directory: Path, files: dict[str, bytes], items: list[dict[str, Any]] | None) -> None:
    selected = {item["key"]: item["path"] for item in items} if items else {key: key for key in files}
    for key, rel in selected.items():
        if key not in files:
            raise PodError(f"key {key} is missing")
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[key])


def _source_files(kind: str, src: dict[str, Any], namespace: str, cluster: Cluster) -> dict[str, bytes] | None:
    name = src.get("secretName") if kind == "secret" and "secretName" in src else src.get("name")
    return cluster.data(kind.lower(), namespace, str(name), bool(src.get("optional")))


def _downward(items: list[dict[str, Any]], pod: dict[str, Any], target: Path) -> None:
    for item in items:
        if "fieldRef" in item:
            (target / item["path"]).write_text(_field(pod, item["fieldRef"]["fieldPath"]))


def _projected(sources: list[dict[str, Any]], pod: dict[str, Any], target: Path, cluster: Cluster) -> None:
    namespace = pod["metadata"]["namespace"]
    for source in sources:
        if "serviceAccountToken" in source:
            tok = source["serviceAccountToken"]
            account = pod["spec"].get("serviceAccountName", "default")
            audience = [tok["audience"]] if tok.get("audience") else None
            (target / tok["path"]).write_text(cluster.token(namespace, account, audience, _TOKEN_SECONDS))
        elif "downwardAPI" in source:
            _downward(source["downwardAPI"].get("items", []), pod, target)
        else:
            kind = "configMap" if "configMap" in source else "secret"
            files = _source_files(kind, source[kind], namespace, cluster)
            if files is not None:
                _write_files(target, files, source[kind].get("items"))


def materialize_volume(volume: dict[str, Any], pod: dict[str, Any], target: Path, cluster: Cluster) -> None:
    """Write what ``volume`` holds into ``target``, as the kubelet's volume plugins would."""
    target.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        return
    if "projected" in volume:
        _projected(volume["projected"].get("sources", []), pod, target, cluster)
    elif "downwardAPI" in volume:
        _downward(volume["downwardAPI"].get("items", []), pod, target)
    elif "configMap" in volume or "secret" in volume:
        kind = "configMap" if "configMap" in volume else "secret"
        files = _source_files(kind, volume[kind], pod["metadata"]["namespace"], cluster)
        if files is not None:
            _write_files(target, files, volume[kind].get("items"))
    else:
        raise PodError(f"volume {volume['name']} is of a kind the lab does not run ({sorted(volume)})")


def container_env(
    container: dict[str, Any], pod: dict[str, Any], cluster: Cluster, base: dict[str, str]
) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom", []):
        kind = "configMap" if "configMapRef" in source else "secret"
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        files = cluster.data(kind.lower(), namespace, ref["name"], bool(ref.get("optional")))
        for key, value in (files or {}).items():
            env[source.get("prefix", "") + key] = value.decode(errors="replace")
    for var in container.get("env", []):
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = _expand(str(var.get("value", "")), env)
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            env[var["name"]] = _field(pod, ref["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in ref or "configMapKeyRef" in ref:
            kind = "secret" if "secretKeyRef" in ref else "configmap"
            key_ref = ref.get("secretKeyRef") or ref["configMapKeyRef"]
            files = cluster.data(kind, namespace, key_ref["name"], bool(key_ref.get("optional")))
            if files is not None and key_ref["key"] in files:
                env[var["name"]] = files[key_ref["key"]].decode(errors="replace")
            elif not key_ref.get("optional"):
                raise PodError(f"{kind} {namespace}/{key_ref['name']} has no key {key_ref['key']}")
        elif "resourceFieldRef" in ref:
            env[var["name"]] = "0"
    return env


def mount_target(path: str) -> str:
    """Where ``path`` lands in the pod's view of the host; refuse what would create a directory on the host."""
    real = os.path.realpath(path)
    top = real.strip("/").split("/", 1)[0]
    host_top = Path("/", top)
    if top in _PRIVATE_DIRS or not host_top.exists() or Path(real).exists():
        return real
    raise PodError(f"mountPath {path} would create {real} on the host")


def mount_script(root: Path, binds: list[tuple[Path, str, bool]], binary: Path, name: str) -> str:
    """Shell that builds the container's root in a private mount namespace, then execs the command there."""
    q = shlex.quote
    lines = [
        "set -eu",
        f"root={q(str(root))}",
        'mount -t tmpfs -o mode=755 tokenlabs-pod "$root"',
        "for entry in /*; do",
        "  name=${entry#/}",
        '  case "$name" in '
        + "|".join(_PRIVATE_DIRS)
        + ') mkdir "$root/$name"; mount -t tmpfs tmpfs "$root/$name"; continue;; esac',
        '  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$root/$name"',
        '  elif [ -d "$entry" ]; then mkdir "$root/$name"; mount --rbind "$entry" "$root/$name"; fi',
        "done",
        f'mkdir -p "$root{_BIN_DIR}"; touch "$root{_BIN_DIR}/{name}"',
        f'mount --bind {q(str(binary))} "$root{_BIN_DIR}/{name}"',
    ]
    for source, target, read_only in sorted(binds, key=lambda b: b[1].count("/")):
        dest = f'"$root"{q(target)}'
        make = f"mkdir -p {dest}" if source.is_dir() else f'mkdir -p "$(dirname {dest})"; [ -e {dest} ] || touch {dest}'
        lines += [make, f"mount --bind {q(str(source))} {dest}"]
        if read_only:
            lines.append(f"mount -o remount,bind,ro {dest}")
    lines.append(
        'cd "$root"; workdir=$1; shift; exec chroot "$root" /bin/sh -c \'cd "$0" && exec "$@"\' "$workdir" "$@"'
    )
    return "\n".join(lines)


@dataclass
class Container:
    name: str
    spec: dict[str, Any]
    binary: Path
    version: str
    entrypoint_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    finished: bool = False


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    pod: dict[str, Any]
    directory: Path
    containers: list[Container]
    pause: subprocess.Popen[bytes] | None = None
    prepared: bool = False

    @property
    def netns(self) -> Path | None:
        return Path(f"/proc/{self.pause.pid}/ns/net") if self.pause and self.pause.poll() is None else None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pod["metadata"].get("labels") or {})

    def container_port(self, target: int | str) -> int | None:
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        for ctr in self.pod["spec"]["containers"]:
            for port in ctr.get("ports", []):
                if port.get("name") == target:
                    return int(port["containerPort"])
        return None


# --- relays ----------------------------------------------------------------------------------------
Route = list[tuple[Path | None, int]]


class Relays:
    """Service addresses, relayed into the network namespace of a pod that backs them.

    In the host's namespace a listener stands on every ClusterIP:port with a backend. In a pod's namespace a
    single listener on ``RELAY_PORT`` receives whatever the pod sends to the service range or to the API server
    (iptables redirects it there, as a service mesh does), so the pod's own wildcard binds never meet a relay.
    """

    def __init__(self, api_port: int) -> None:
        self.api_port = api_port
        self.loop = asyncio.new_event_loop()
        self.listeners: dict[tuple[str, str, int], asyncio.AbstractServer] = {}
        self.routes: dict[tuple[str, int], Route] = {}
        self._rr = itertools.count()
        threading.Thread(target=self.loop.run_forever, name="relays", daemon=True).start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _targets(self, dest: tuple[str, int]) -> Route:
        if dest == ("127.0.0.1", self.api_port):
            return [(None, self.api_port)]
        return self.routes.get(dest) or []

    async def _relay(
        self, dest: tuple[str, int] | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if dest is None:  # redirected: where the pod meant to go
            raw = writer.get_extra_info("socket").getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
            port, packed = struct.unpack("!2xH4s8x", raw)
            dest = (socket.inet_ntoa(packed), port)
        targets = self._targets(dest)
        if not targets:
            writer.close()
            return
        netns, port = targets[next(self._rr) % len(targets)]
        try:
            with _in_netns(netns):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await asyncio.wait_for(self.loop.sock_connect(sock, ("127.0.0.1", port)), 10)
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError):
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _listen(self, netns: Path | None, ip: str, port: int) -> asyncio.AbstractServer:
        with _in_netns(netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        dest = None if netns is not None else (ip, port)
        return await asyncio.start_server(lambda r, w: self._relay(dest, r, w), sock=sock)

    async def _sync(self, pods: dict[str, Path], routes: dict[tuple[str, int], Route]) -> list[str]:
        self.routes = routes
        wanted = {("host", ip, port) for ip, port in routes} | {(uid, "127.0.0.1", RELAY_PORT) for uid in pods}
        errors = []
        for key in set(self.listeners) - wanted:
            self.listeners.pop(key).close()
        for key in sorted(wanted - set(self.listeners)):
            where, ip, port = key
            try:
                self.listeners[key] = await self._listen(pods.get(where), ip, port)
            except OSError as exc:
                errors.append(f"relay {ip}:{port} in {where}: {exc}")
        return errors

    def sync(self, pods: dict[str, Path], routes: dict[tuple[str, int], Route]) -> list[str]:
        """Listen for ``routes`` on the host and for every pod in ``pods`` (uid -> network namespace)."""
        return list(self.call(self._sync(pods, routes)))


# --- the kubelet ---------------------------------------------------------------------------------
@dataclass
class Kubelet:
    api: client.ApiClient
    run_dir: Path
    images: dict[str, dict[str, Any]]
    api_port: int
    service_cidr: str
    pods: dict[str, PodRun] = field(default_factory=dict)
    relays: Relays = field(init=False)
    cluster: Cluster = field(init=False)
    ca_cert: bytes = b""
    _services: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.relays = Relays(self.api_port)
        self.cluster = Cluster(self.api)
        self.core = client.CoreV1Api(self.api)
        # Pods' Secrets and ServiceAccount tokens are written below: for root's eyes only.
        (self.run_dir / "pods").mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)

    def log(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    # pods -------------------------------------------------------------------------------------
    def _runnable(self, pod: dict[str, Any]) -> list[Container]:
        found = []
        for ctr in pod["spec"].get("containers", []):
            entry = self.images.get(image_repository(ctr.get("image", "")))
            if entry:
                args = list(entry.get("entrypoint_args", []))
                found.append(Container(ctr["name"], ctr, Path(entry["binary"]), entry["version"], args))
        return found

    def sync_pods(self, pods: Iterable[dict[str, Any]]) -> None:
        seen = set()
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") or not pod["spec"].get("nodeName"):
                continue
            if pod.get("status", {}).get("phase") not in ("Running", "Succeeded"):
                continue
            containers = self._runnable(pod)
            if not containers:
                continue
            seen.add(meta["uid"])
            if meta["uid"] not in self.pods:
                directory = self.run_dir / "pods" / f"{meta['namespace']}_{meta['name']}"
                self.pods[meta["uid"]] = PodRun(
                    meta["uid"], meta["namespace"], meta["name"], pod, directory, containers
                )
                self.log(f"pod {meta['namespace']}/{meta['name']}: runs {', '.join(c.name for c in containers)}")
        for uid in set(self.pods) - seen:
            self.stop_pod(self.pods.pop(uid))
        for run in self.pods.values():
            self.tend(run)

    def tend(self, run: PodRun) -> None:
        if not run.prepared:
            try:
                self.prepare(run)
            except PodError as exc:
                self.log(f"pod {run.namespace}/{run.name}: waiting: {exc}")
                return
        policy = run.pod["spec"].get("restartPolicy", "Always")
        now = time.monotonic()
        for ctr in run.containers:
            if ctr.proc is not None and ctr.proc.poll() is not None:
                code = ctr.proc.returncode
                self.log(f"pod {run.namespace}/{run.name}: {ctr.name} exited with {code}")
                ctr.proc = None
                if policy == "Never" or (policy == "OnFailure" and code == 0):
                    ctr.finished = True
                else:
                    ctr.restarts += 1
                    ctr.next_start = now + min(_BACKOFF_MAX, 2.0 ** min(ctr.restarts, 5))
            if ctr.proc is None and not ctr.finished and now >= ctr.next_start:
                try:
                    self.start_container(run, ctr)
                except PodError as exc:
                    self.log(f"pod {run.namespace}/{run.name}: {ctr.name} waiting: {exc}")
                    ctr.next_start = now + 2

    def prepare(self, run: PodRun) -> None:
        """Volumes first (a missing Secret keeps the pod waiting, as on a node), then the network namespace."""
        pod = run.pod
        volumes = run.directory / "volumes"
        shutil.rmtree(volumes, ignore_errors=True)
        for volume in pod["spec"].get("volumes", []):
            materialize_volume(volume, pod, volumes / volume["name"], self.cluster)
        if pod["spec"].get("automountServiceAccountToken", True):
            account = volumes / "_serviceaccount"
            account.mkdir(parents=True, exist_ok=True)
            name = pod["spec"].get("serviceAccountName", "default")
            (account / "token").write_text(self.cluster.token(run.namespace, name, None, _TOKEN_SECONDS))
            (account / "ca.crt").write_bytes(self.ca_cert)
            (account / "namespace").write_text(run.namespace)
        (run.directory / "hosts").write_text(self._hosts_for(run.namespace))
        (run.directory / "resolv.conf").write_text(
            f"search {run.namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        )
        run.pause = self._pause(run)
        run.prepared = True

    def _pause(self, run: PodRun) -> subprocess.Popen[bytes]:
        proc = spawn("pause", ["unshare", "--net", "--", "sleep", "infinity"], run.directory, {"PATH": _PATH}).popen
        netns = Path(f"/proc/{proc.pid}/ns/net")
        deadline = time.monotonic() + 5
        with open("/proc/self/ns/net") as mine:
            own = os.fstat(mine.fileno()).st_ino
        while time.monotonic() < deadline and os.stat(netns).st_ino == own:
            time.sleep(0.02)
        _loopback_up(netns)
        redirect = ["-j", "DNAT", "--to-destination", f"127.0.0.1:{RELAY_PORT}"]
        for match in (["-d", self.service_cidr], ["-d", "127.0.0.1", "--dport", str(self.api_port)]):
            rule = ["nsenter", f"--net={netns}", "iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", *match]
            done = subprocess.run([*rule, *redirect], capture_output=True, text=True, env={"PATH": _PATH}, check=False)
            if done.returncode != 0:
                proc.kill()
                raise PodError(f"iptables in the pod's network namespace failed: {done.stderr.strip()}")
        return proc

    def _hosts_for(self, namespace: str) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for svc in self._services:
            meta, ip = svc["metadata"], svc["spec"].get("clusterIP")
            if not ip or ip == "None":
                continue
            names = [
                f"{meta['name']}.{meta['namespace']}.svc.cluster.local",
                f"{meta['name']}.{meta['namespace']}.svc",
                f"{meta['name']}.{meta['namespace']}",
            ]
            if meta["namespace"] == namespace:
                names.append(meta["name"])
            lines.append(f"{ip}\t{' '.join(names)}")
        return "\n".join(lines) + "\n"

    def start_container(self, run: PodRun, ctr: Container) -> None:
        pod, spec = run.pod, ctr.spec
        base = {
            "PATH": _PATH,
            "HOME": "/root",
            "HOSTNAME": run.name,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.api_port),
        }
        env = container_env(spec, pod, self.cluster, base)
        command = [_expand(a, env) for a in spec.get("command", [])]
        args = [_expand(a, env) for a in spec.get("args", [])]
        # The image's only program is the controller: whatever the command names, it is that binary.
        argv = [f"{_BIN_DIR}/{ctr.name}", *(command[1:] if command else ctr.entrypoint_args), *args]
        volumes = run.directory / "volumes"
        binds: list[tuple[Path, str, bool]] = [
            (run.directory / "hosts", "/etc/hosts", True),
            (run.directory / "resolv.conf", "/etc/resolv.conf", True),
        ]
        if (volumes / "_serviceaccount").is_dir():
            binds.append((volumes / "_serviceaccount", mount_target(_SA_DIR), True))
        for mount in spec.get("volumeMounts", []):
            source = volumes / mount["name"]
            if mount.get("subPath"):
                source = source / mount["subPath"]
            binds.append((source, mount_target(mount["mountPath"]), bool(mount.get("readOnly"))))
        root = run.directory / f"root-{ctr.name}"
        root.mkdir(parents=True, exist_ok=True)
        script = mount_script(root, binds, ctr.binary, ctr.name)
        netns = run.netns
        if netns is None:
            raise PodError("its network namespace is gone")
        launcher = [
            "nsenter",
            f"--net={netns}",
            "--",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "tokenlabs-pod",
            spec.get("workingDir") or "/",
            *argv,
        ]
        log_name = f"{ctr.name}.{ctr.restarts}" if ctr.restarts else ctr.name
        ctr.proc = spawn(log_name, launcher, run.directory, env).popen
        self.log(
            f"pod {run.namespace}/{run.name}: started {ctr.name} ({ctr.version}), log {run.directory / log_name}.log"
        )

    def stop_pod(self, run: PodRun) -> None:
        self.log(f"pod {run.namespace}/{run.name}: stopping")
        procs = [c.proc for c in run.containers if c.proc is not None and c.proc.poll() is None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + _STOP_GRACE
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if run.pause is not None and run.pause.poll() is None:
            run.pause.kill()
            run.pause.wait()

    # network ------------------------------------------------------------------------------------
    def sync_network(self, services: list[dict[str, Any]]) -> None:
        routes: dict[tuple[str, int], Route] = {}
        for svc in services:
            spec, meta = svc["spec"], svc["metadata"]
            ip, selector = spec.get("clusterIP"), spec.get("selector")
            if not ip or ip == "None" or not selector:
                continue
            backends = [
                run
                for run in self.pods.values()
                if run.namespace == meta["namespace"]
                and run.netns is not None
                and all(run.labels.get(k) == v for k, v in selector.items())
            ]
            for port in spec.get("ports", []):
                if port.get("protocol", "TCP") != "TCP":
                    continue
                target = port.get("targetPort", port["port"])
                pairs = [(run.netns, p) for run in backends if (p := run.container_port(target)) is not None]
                if pairs:
                    routes[(ip, int(port["port"]))] = pairs
        pods = {run.uid: run.netns for run in self.pods.values() if run.netns is not None}
        for error in self.relays.sync(pods, routes):
            self.log(error)
        for run in self.pods.values():
            hosts = run.directory / "hosts"
            if run.prepared and hosts.exists():
                text = self._hosts_for(run.namespace)
                if hosts.read_text() != text:
                    # In place: the pod's /etc/hosts is a bind mount of this very inode.
                    with hosts.open("r+") as handle:
                        handle.write(text)
                        handle.truncate()

    def assign_load_balancers(self, services: list[dict[str, Any]]) -> None:
        """Give each LoadBalancer Service its ClusterIP as address, where MetalLB gives one from its pool."""
        for svc in services:
            spec, meta = svc["spec"], svc["metadata"]
            if spec.get("type") != "LoadBalancer" or svc.get("status", {}).get("loadBalancer", {}).get("ingress"):
                continue
            ip = spec.get("clusterIP")
            if not ip or ip == "None":
                continue
            body = {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}
            self.core.patch_namespaced_service_status(meta["name"], meta["namespace"], body)
            self.log(f"service {meta['namespace']}/{meta['name']}: load-balancer address {ip}")

    def step(self) -> None:
        pods = self.api.sanitize_for_serialization(self.core.list_pod_for_all_namespaces().items)
        services = self.api.sanitize_for_serialization(self.core.list_service_for_all_namespaces().items)
        self._services = services
        self.sync_pods(pods)
        self.sync_network(services)
        self.assign_load_balancers(services)

    def stop(self) -> None:
        for run in list(self.pods.values()):
            self.stop_pod(run)
        self.pods.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="JSON: image repository -> {name, binary, version}")
    parser.add_argument("--service-cidr", required=True, help="the API server's service range (loopback)")
    args = parser.parse_args(argv)
    api = config.new_client_from_config(config_file=str(args.kubeconfig))
    kubeconfig = yaml.safe_load(args.kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    api_port = int(cluster["server"].rsplit(":", 1)[1])
    kubelet = Kubelet(api, args.run_dir, json.loads(args.images.read_text()), api_port, args.service_cidr)
    kubelet.ca_cert = base64.b64decode(cluster["certificate-authority-data"])
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        kubelet.log(f"stopping on signal {signal.Signals(signum).name}")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        while not stop.is_set():
            try:
                kubelet.step()
            except (ApiException, OSError) as exc:
                kubelet.log(f"API: {exc}")
            except Exception:  # one bad object must not take every controller down with the kubelet
                kubelet.log(f"step failed:\n{traceback.format_exc()}")
            stop.wait(_POLL)
    finally:
        kubelet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
