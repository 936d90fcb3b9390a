#!/usr/bin/env python3
"""Recording stand-ins for the host tools the bare-metal roles call.

Tests run the roles against three simulated machines on one test host. Each tool the roles call
(`snap`, `microk8s`, `nvidia-smi`, `ss`, `getent`, `timedatectl`) is a link to this file in
``bin/``; the link name selects the tool. The machines live in one JSON state file under
``$TOKENLABS_SHIM_DIR``; the calling machine is ``$TOKENLABS_SHIM_HOST``, which the per-host
interpreter wrapper written by ``shimctl init`` sets (the test inventory points each host's
``ansible_python_interpreter`` at its wrapper, so delegated tasks run as the delegated host).

The state follows what the real tools would do: the installed channel and refresh hold,
enabled addons, join tokens issued, consumed and expired, cluster members, the files the snap
lays down. Every call is appended to ``calls.jsonl`` with ``mutating`` set when the command
changes state on a real machine, whatever it did here, so a test can assert that a run issued
no state-changing command. ``failures`` rules in the state make a matching call fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MICROK8S_PORTS = (16443, 25000, 10250, 19001)
SNAP_VERSIONS = {"1.33": "v1.33.5", "1.34": "v1.34.1", "1.35": "v1.35.0", "1.36": "v1.36.5", "1.37": "v1.37.0"}
KNOWN_ADDONS = {
    "cert-manager", "dns", "ha-cluster", "helm", "helm3", "hostpath-storage", "ingress", "metallb",
    "metrics-server", "nvidia", "gpu", "observability", "rbac", "registry",
}
AMD64_ONLY_ADDONS = {"nvidia", "gpu"}
SNAP_CONTAINERD_TEMPLATE = """\
# Use config version 2 to enable new configuration fields.
version = 2
oom_score = 0

[grpc]
  uid = 0
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  sandbox_image = "registry.k8s.io/pause:3.10"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${SNAPSHOTTER}"
    no_pivot = false
    default_runtime_name = "${RUNTIME}"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${SNAP_DATA}/args/certs.d"
"""
# The GPU Operator's toolkit in drop-in mode (its default, RUNTIME_DROP_IN_CONFIG): the nvidia runtime in its own
# file, and an import of that file's directory added to the top-level config, here MicroK8s's template. Paths on
# a simulated machine live under its root, the import's included.
TOOLKIT_DROP_IN = "etc/containerd/conf.d/99-nvidia.toml"
TOOLKIT_CONTAINERD_DROP_IN = """\
version = 2

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]

    [plugins."io.containerd.grpc.v1.cri".containerd]

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
          privileged_without_host_devices = false
          runtime_engine = ""
          runtime_root = ""
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"
"""
RUNC_TABLE = (
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
    '      runtime_type = "io.containerd.runc.v2"\n\n'
)
CONTAINERD_TEMPLATE_KINDS = ("pristine", "toolkit", "corrupted")


def toolkit_imports(root: Path) -> str:
    return f'imports = ["{(root / TOOLKIT_DROP_IN).parent}/*.toml"]\n'


def containerd_template(kind: str, root: Path) -> str:
    """The snap's template; as the toolkit leaves it (its import added); or the breakage seen on DGX Spark
    (research 3.4): the toolkit's import there and the runc runtime table gone."""
    if kind == "pristine":
        return SNAP_CONTAINERD_TEMPLATE
    if kind == "toolkit":
        return toolkit_imports(root) + SNAP_CONTAINERD_TEMPLATE
    return toolkit_imports(root) + SNAP_CONTAINERD_TEMPLATE.replace(RUNC_TABLE, "")


class ShimError(Exception):
    """A setup problem in the test harness itself (not a simulated tool failure)."""


@dataclass
class Result:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    mutating: bool = False


@dataclass
class Call:
    host: str
    argv: list[str]
    state: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def machine(self) -> dict[str, Any]:
        return self.state["hosts"][self.host]

    @property
    def root(self) -> Path:
        return Path(self.machine["root"])


# --- state -------------------------------------------------------------------------------------


def state_dir() -> Path:
    value = os.environ.get("TOKENLABS_SHIM_DIR")
    if not value:
        raise ShimError("TOKENLABS_SHIM_DIR is not set")
    return Path(value)


@contextlib.contextmanager
def locked_state(directory: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write of the state under an exclusive lock (hosts run in parallel forks)."""
    with (directory / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / "state.json"
        state = json.loads(path.read_text())
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(path)


def record(directory: Path, entry: dict[str, Any]) -> None:
    with (directory / "calls.jsonl").open("a") as log:
        log.write(json.dumps(entry) + "\n")


def snap_paths(root: Path) -> dict[str, Path]:
    return {
        "template": root / "var/snap/microk8s/current/args/containerd-template.toml",
        "pristine": root / "snap/microk8s/current/default-args/containerd-template.toml",
        "lock": root / "var/snap/microk8s/current/var/lock/clustered.lock",
        "launch_config": root / "var/snap/microk8s/common/.microk8s.yaml",
        "drop_in": root / TOOLKIT_DROP_IN,
    }


def lay_down_snap(root: Path, template: str = "pristine") -> None:
    """The snap's files; ``template`` other than pristine also lays down the toolkit's drop-in, as it writes both."""
    paths = snap_paths(root)
    for key in ("template", "pristine"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    paths["pristine"].write_text(SNAP_CONTAINERD_TEMPLATE)
    paths["template"].write_text(containerd_template(template, root))
    if template != "pristine":
        paths["drop_in"].parent.mkdir(parents=True, exist_ok=True)
        paths["drop_in"].write_text(TOOLKIT_CONTAINERD_DROP_IN)


def snap_record(channel: str) -> dict[str, Any]:
    track = channel.split("/", maxsplit=1)[0]
    version = SNAP_VERSIONS.get(track, f"v{track}.0")
    revision = 8000 + int(hashlib.sha256(channel.encode()).hexdigest()[:3], 16)
    return {"channel": channel, "version": version, "revision": revision, "held": False}


# --- snap --------------------------------------------------------------------------------------


@dataclass
class SnapArgs:
    machine: dict[str, Any]
    snaps: dict[str, Any]
    positional: list[str]
    options: dict[str, str]


def parse_snap_args(call: Call) -> SnapArgs:
    args = call.argv[2:]
    return SnapArgs(
        machine=call.machine,
        snaps=call.machine.setdefault("snaps", {}),
        positional=[a for a in args if not a.startswith("-")],
        options={a.split("=", 1)[0]: a.split("=", 1)[1] if "=" in a else "" for a in args if a.startswith("-")},
    )


def snap_version(call: Call, a: SnapArgs) -> Result:
    return Result(stdout="snap    2.68.5\nsnapd   2.68.5\nseries  16\nubuntu  24.04\n")


def snap_list(call: Call, a: SnapArgs) -> Result:
    installed = [n for n in a.positional if n in a.snaps] if a.positional else sorted(a.snaps)
    if not installed:
        return Result(1, stderr="error: no matching snaps installed\n")
    lines = ["Name      Version  Rev   Tracking     Publisher   Notes"]
    for name in installed:
        s = a.snaps[name]
        notes = "classic,held" if s["held"] else "classic"
        lines.append(f"{name}  {s['version']}  {s['revision']}  {s['channel']}  canonical**  {notes}")
    return Result(stdout="\n".join(lines) + "\n")


def snap_get(call: Call, a: SnapArgs) -> Result:
    name, key = [*a.positional, "", ""][:2]
    if name not in a.snaps:
        return Result(1, stderr=f'error: snap "{name}" not found\n')
    value = a.snaps[name].get("options", {}).get(key)
    if value is None:
        return Result(1, stderr=f'error: snap "{name}" has no "{key}" configuration option\n')
    return Result(stdout=value + "\n")


def snap_install(call: Call, a: SnapArgs) -> Result:
    name = a.positional[0]
    if name in a.snaps:
        return Result(stdout=f'snap "{name}" is already installed, see \'snap help refresh\'\n', mutating=True)
    channel = a.options.get("--channel", "latest/stable")
    a.snaps[name] = snap_record(channel)
    if name == "microk8s":
        lay_down_snap(call.root)
        a.machine["microk8s"] = {"running": True, "addons": ["ha-cluster"], "addon_args": {}, "role": "standalone"}
    return Result(stdout=f"{name} ({channel}) {a.snaps[name]['version']} from Canonical** installed\n", mutating=True)


def snap_refresh(call: Call, a: SnapArgs) -> Result:
    name = a.positional[0] if a.positional else ""
    if name not in a.snaps:
        return Result(1, stderr=f'error: snap "{name}" is not installed\n', mutating=True)
    if "--hold" in a.options or "--unhold" in a.options:
        hold = "--hold" in a.options
        a.snaps[name]["held"] = hold
        message = (
            f'General refreshes of "{name}" held indefinitely' if hold
            else f'Removed general refresh hold of "{name}"'
        )
        return Result(stdout=message + "\n", mutating=True)
    channel = a.options.get("--channel", a.snaps[name]["channel"])
    if channel == a.snaps[name]["channel"]:
        return Result(stdout=f'snap "{name}" has no updates available\n', mutating=True)
    a.snaps[name] = {**a.snaps[name], **snap_record(channel), "held": a.snaps[name]["held"]}
    return Result(stdout=f"{name} ({channel}) {a.snaps[name]['version']} from Canonical** refreshed\n", mutating=True)


def snap_set(call: Call, a: SnapArgs) -> Result:
    name = a.positional[0]
    for pair in a.positional[1:]:
        key, _, value = pair.partition("=")
        a.snaps[name].setdefault("options", {})[key] = value
    return Result(mutating=True)


def snap_remove(call: Call, a: SnapArgs) -> Result:
    name = a.positional[0]
    if name not in a.snaps:
        return Result(stdout=f'snap "{name}" is not installed\n', mutating=True)
    del a.snaps[name]
    if name == "microk8s":
        a.machine.pop("microk8s", None)
        forget_member(call.state, a.machine["hostname"])
        # The toolkit's drop-in is not the snap's: it stays, as on a real machine.
        for key, path in snap_paths(call.root).items():
            if key != "drop_in":
                path.unlink(missing_ok=True)
    return Result(stdout=f"{name} removed\n", mutating=True)


def snap_restart(call: Call, a: SnapArgs) -> Result:
    service = a.positional[0] if a.positional else ""
    if service.split(".", maxsplit=1)[0] not in a.snaps:
        return Result(1, stderr=f'error: snap "{service}" not found\n', mutating=True)
    a.machine.setdefault("restarts", []).append(service)
    return Result(stdout="Restarted.\n", mutating=True)


SNAP_COMMANDS: dict[str, Callable[[Call, SnapArgs], Result]] = {
    "version": snap_version,
    "list": snap_list,
    "get": snap_get,
    "install": snap_install,
    "refresh": snap_refresh,
    "set": snap_set,
    "remove": snap_remove,
    "restart": snap_restart,
}


def snap(call: Call) -> Result:
    if not call.machine.get("snapd", True):
        return Result(127, stderr="snap: command not found\n")
    command = SNAP_COMMANDS.get(call.argv[1] if len(call.argv) > 1 else "")
    if command is None:
        return Result(64, stderr=f"snap {call.argv[1:2]}: not simulated\n", mutating=True)
    return command(call, parse_snap_args(call))


# --- microk8s ----------------------------------------------------------------------------------


def control_plane_of(state: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    return state["hosts"].get(machine["microk8s"].get("control_plane", ""), machine)


def forget_member(state: dict[str, Any], hostname: str) -> None:
    for other in state["hosts"].values():
        members = other.get("microk8s", {}).get("members", [])
        if hostname in members:
            members.remove(hostname)


WORKER_REFUSES = {"status", "enable", "disable", "add-node", "config"}


def microk8s(call: Call) -> Result:
    machine = call.machine
    if "microk8s" not in machine.get("snaps", {}):
        return Result(127, stderr="microk8s: command not found\n")
    cmd, args = (call.argv[1], call.argv[2:]) if len(call.argv) > 1 else ("", [])
    if machine["microk8s"].get("role") == "worker" and cmd in WORKER_REFUSES:
        return Result(1, stdout=(
            "This MicroK8s deployment is acting as a node in a cluster. "
            f"Please use the microk8s {cmd} on the master.\n"
        ), mutating=cmd in {"enable", "disable", "add-node"})
    command = MICROK8S_COMMANDS.get(cmd)
    if command is None:
        return Result(64, stderr=f"microk8s {cmd}: not simulated\n", mutating=True)
    return command(call, args)


def status(call: Call, args: list[str]) -> Result:
    mk = call.machine["microk8s"]
    if "--wait-ready" in args:
        if not mk["running"]:
            return Result(1, stdout="microk8s is not running. Use microk8s inspect for a deeper inspection.\n")
        return Result(stdout="microk8s is running\n")
    lines = ["microk8s:", f"  running: {mk['running']}", "high-availability:", "  enabled: False", "addons:"]
    for name in sorted(KNOWN_ADDONS):
        state = "enabled" if name in mk["addons"] else "disabled"
        lines += [f"- name: {name}", "  repository: core", f"  status: {state}"]
    return Result(stdout="\n".join(lines) + "\n")


def disable(call: Call, args: list[str]) -> Result:
    mk = call.machine["microk8s"]
    for name in args:
        if name in mk["addons"]:
            mk["addons"].remove(name)
            mk["addon_args"].pop(name, None)
    return Result(stdout="Disabled.\n", mutating=True)


def leave(call: Call, args: list[str]) -> Result:
    mk = call.machine["microk8s"]
    if mk.get("role") != "worker":
        return Result(1, stdout="This node is not part of a cluster.\n", mutating=True)
    forget_member(call.state, call.machine["hostname"])
    mk["role"] = "standalone"
    mk.pop("control_plane", None)
    snap_paths(call.root)["lock"].unlink(missing_ok=True)
    return Result(stdout="Generating new cluster certificates.\nWaiting for node to start.\n", mutating=True)


def remove_node(call: Call, args: list[str]) -> Result:
    name = args[0] if args else ""
    members = call.machine["microk8s"].setdefault("members", [])
    if name not in members:
        return Result(1, stdout=f"Node {name} does not exist in Kubernetes.\n", mutating=True)
    members.remove(name)
    return Result(mutating=True)


def enable(call: Call, specs: list[str]) -> Result:
    mk = call.machine["microk8s"]
    arch = call.machine.get("facts", {}).get("architecture", "x86_64")
    out = []
    for spec in specs:
        name, _, addon_args = spec.partition(":")
        if name not in KNOWN_ADDONS or (name in AMD64_ONLY_ADDONS and arch != "x86_64"):
            return Result(1, stdout=f"Addon {name} was not found in any repository\n", mutating=True)
        if name in mk["addons"]:
            out.append(f"Addon core/{name} is already enabled")
            continue
        mk["addons"].append(name)
        if addon_args:
            mk["addon_args"][name] = addon_args
        out.append(f"Addon core/{name} is enabled")
    return Result(stdout="\n".join(out) + "\n", mutating=True)


def add_node(call: Call, args: list[str]) -> Result:
    state, machine = call.state, call.machine
    ttl = int(args[args.index("--token-ttl") + 1]) if "--token-ttl" in args else 3600
    state["token_counter"] = serial = state.get("token_counter", 0) + 1
    digest = hashlib.sha256(f"{machine['hostname']}-{serial}".encode()).hexdigest()
    token, check = digest[:32], digest[32:44]
    state.setdefault("tokens", {})[token] = {
        "issuer": call.host,
        "serial": serial,
        "ttl": ttl,
        "consumed": False,
        "expired": serial in state.get("expire_tokens", []),
    }
    info = {"token": f"{token}/{check}", "urls": [f"{machine['address']}:25000/{token}/{check}"]}
    if "--format" in args and args[args.index("--format") + 1] == "json":
        return Result(stdout=json.dumps(info, indent=2) + "\n", mutating=True)
    return Result(stdout=f"microk8s join {info['urls'][0]}\n", mutating=True)


def join(call: Call, args: list[str]) -> Result:
    state, machine = call.state, call.machine
    mk = machine["microk8s"]
    url = next((a for a in args if not a.startswith("-")), "")
    if mk.get("role") == "worker":
        return Result(1, stdout="This MicroK8s deployment is acting as a node in a cluster.\n", mutating=True)
    host_or_address, _, rest = url.partition(":")
    address = machine.get("resolves", {}).get(host_or_address, host_or_address)
    token = rest.split("/")[1] if rest.count("/") >= 1 else ""
    target_name = next((n for n, h in state["hosts"].items() if h["address"] == address), None)
    out = f"Contacting cluster at {address}\n"
    if target_name is None:
        return Result(1, stdout=out + "Connection failed. The joining node could not reach the cluster (timeout).\n",
                      mutating=True)
    issued = state.get("tokens", {}).get(token)
    # The cluster agent consumes a token on the first attempt, whether or not the join succeeds.
    if issued is None or issued["consumed"] or issued["expired"] or issued["issuer"] != target_name:
        if issued is not None:
            issued["consumed"] = True
        return Result(1, stdout=out + "Connection failed. Invalid token (500).\n", mutating=True)
    issued["consumed"] = True
    target = state["hosts"][target_name]
    hostname = machine["hostname"]
    if hostname not in target.get("resolves", {}):
        return Result(1, stdout=out + (
            f"Connection failed. The hostname ({hostname}) of the joining node does not resolve to the IP "
            f"\"{machine['address']}\". Refusing join (400).\n"), mutating=True)
    members = target["microk8s"].setdefault("members", [])
    if hostname not in members:
        members.append(hostname)
    mk["role"] = "worker" if "--worker" in args else "control-plane"
    mk["control_plane"] = target_name
    lock = snap_paths(call.root)["lock"]
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    return Result(stdout=out + "The node has joined the cluster and will appear in the nodes list in a few seconds.\n",
                  mutating=True)


def kubectl(call: Call, args: list[str]) -> Result:
    if args[:2] == ["get", "nodes"] or args[:2] == ["get", "node"]:
        mk = call.machine["microk8s"]
        names = [call.machine["hostname"], *mk.get("members", [])]
        items = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            for name in names
        ]
        return Result(stdout=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}) + "\n")
    return Result(64, stderr=f"kubectl {' '.join(args[:1])}: not simulated (use kubernetes.core)\n", mutating=True)


def kubeconfig(call: Call) -> str:
    """The admin kubeconfig: the test cluster's when one is running, else a stand-in."""
    existing = call.env.get("K8S_AUTH_KUBECONFIG") or call.env.get("KUBECONFIG")
    if existing and Path(existing).is_file():
        return Path(existing).read_text()
    address = call.machine["address"]
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: c2hpbQ==\n"
        f"    server: https://{address}:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n"
        "    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\n"
        "kind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: c2hpbQ==\n"
        "    client-key-data: c2hpbQ==\n"
    )


MICROK8S_COMMANDS: dict[str, Callable[[Call, list[str]], Result]] = {
    "status": status,
    "config": lambda call, _args: Result(stdout=kubeconfig(call)),
    "kubectl": kubectl,
    "enable": enable,
    "disable": disable,
    "add-node": add_node,
    "join": join,
    "leave": leave,
    "remove-node": remove_node,
}


# --- read-only host probes ---------------------------------------------------------------------


def nvidia_smi(call: Call) -> Result:
    machine = call.machine
    if not machine.get("nvidia_smi", True):
        return Result(127, stderr="nvidia-smi: command not found\n")
    if not machine.get("driver_version"):
        return Result(9, stdout=(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n"))
    gpus = machine.get("gpus", [])
    if not gpus:
        return Result(6, stdout="No devices were found\n")
    if "-L" in call.argv:
        return Result(stdout="".join(
            f"GPU {i}: {name} (UUID: GPU-{hashlib.sha256(f'{call.host}{i}'.encode()).hexdigest()[:8]})\n"
            for i, name in enumerate(gpus)))
    query = next((a.partition("=")[2] for a in call.argv if a.startswith("--query-gpu=")), None)
    if query is not None:
        values = {"driver_version": machine["driver_version"]}
        rows = [", ".join(values.get(f, name) if f != "name" else name for f in query.split(",")) for name in gpus]
        return Result(stdout="".join(row + "\n" for row in rows))
    return Result(64, stderr="nvidia-smi: only -L and --query-gpu are simulated\n")


def ss(call: Call) -> Result:
    machine = call.machine
    ports = set(machine.get("listening", []))
    if machine.get("microk8s", {}).get("running"):
        ports |= set(MICROK8S_PORTS)
    lines = [f"LISTEN 0      4096         0.0.0.0:{port}      0.0.0.0:*" for port in sorted(ports)]
    return Result(stdout="\n".join(lines) + ("\n" if lines else ""))


def getent(call: Call) -> Result:
    if call.argv[1:2] != ["hosts"] or len(call.argv) < 3:
        return Result(64, stderr="getent: only 'hosts NAME...' is simulated\n")
    table = call.machine.get("resolves", {})
    found = [f"{table[name]}       {name}\n" for name in call.argv[2:] if name in table]
    # Like glibc getent: print what resolves, exit 2 when any key was not found.
    return Result(0 if len(found) == len(call.argv) - 2 else 2, stdout="".join(found))


def timedatectl(call: Call) -> Result:
    if "--property=NTPSynchronized" in call.argv:
        return Result(stdout="yes\n" if call.machine.get("ntp_synchronized", True) else "no\n")
    return Result(64, stderr="timedatectl: only show --property=NTPSynchronized is simulated\n")


TOOLS: dict[str, Callable[[Call], Result]] = {
    "snap": snap,
    "microk8s": microk8s,
    "nvidia-smi": nvidia_smi,
    "ss": ss,
    "getent": getent,
    "timedatectl": timedatectl,
}


def injected_failure(state: dict[str, Any], host: str, argv: list[str]) -> Result | None:
    for rule in state.get("failures", []):
        if rule.get("host", "*") not in {"*", host} or argv[: len(rule["argv"])] != rule["argv"]:
            continue
        if rule.get("times") is not None:
            if rule["times"] <= 0:
                continue
            rule["times"] -= 1
        return Result(rule.get("rc", 1), rule.get("stdout", ""), rule.get("stderr", ""), mutating=True)
    return None


def run_tool(tool: str, argv: list[str], directory: Path, host: str, env: dict[str, str]) -> Result:
    with locked_state(directory) as state:
        if host not in state["hosts"]:
            raise ShimError(f"unknown simulated host {host!r}")
        call = Call(host, [tool, *argv], state, env)
        result = injected_failure(state, host, call.argv) or TOOLS[tool](call)
        state["call_counter"] = seq = state.get("call_counter", 0) + 1
        record(directory, {"seq": seq, "host": host, "argv": call.argv, "rc": result.rc, "mutating": result.mutating})
    return result


# --- shimctl -----------------------------------------------------------------------------------


def host_defaults(name: str, spec: dict[str, Any], directory: Path) -> dict[str, Any]:
    machine = {
        "hostname": name,
        "snapd": True,
        "ntp_synchronized": True,
        "listening": [22],
        "gpus": [],
        "driver_version": None,
        "nvidia_smi": True,
        "snaps": {},
        **spec,
    }
    machine["root"] = str(directory / name / "fs")
    return machine


def init(directory: Path, seed: dict[str, Any], python: str) -> None:
    """Create the simulated machines of a seed: state, file systems, per-host interpreters."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {name: host_defaults(name, spec, directory) for name, spec in seed["hosts"].items()}
    table = {h["hostname"]: h["address"] for h in hosts.values()}
    for name, machine in hosts.items():
        machine.setdefault("resolves", dict(table))
        root = Path(machine["root"])
        root.mkdir(parents=True, exist_ok=True)
        if "microk8s" in machine["snaps"]:
            machine["snaps"]["microk8s"] = {**snap_record(machine["snaps"]["microk8s"]["channel"]),
                                            **machine["snaps"]["microk8s"]}
            template = machine.pop("containerd_template", "pristine")
            if template not in CONTAINERD_TEMPLATE_KINDS:
                raise ShimError(f"{name}: containerd_template must be one of {CONTAINERD_TEMPLATE_KINDS}")
            lay_down_snap(root, template)
            machine.setdefault("microk8s", {})
            machine["microk8s"] = {"running": True, "addons": ["ha-cluster"], "addon_args": {},
                                   "role": "standalone", **machine["microk8s"]}
            if machine["microk8s"]["role"] == "worker":
                lock = snap_paths(root)["lock"]
                lock.parent.mkdir(parents=True, exist_ok=True)
                lock.write_text("")
        wrapper = directory / name / "python"
        wrapper.write_text(f'#!/bin/sh\nTOKENLABS_SHIM_HOST={name} exec "{python}" "$@"\n')
        wrapper.chmod(0o755)
        (directory / name / "facts.json").write_text(json.dumps(machine.get("facts", {})))
    state = {key: value for key, value in seed.items() if key != "hosts"}
    state["hosts"] = hosts
    (directory / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    (directory / "calls.jsonl").write_text("")


def shimctl(argv: list[str]) -> int:
    usage = "usage: shimctl init SEED.json [PYTHON] | mark LABEL | show"
    directory = state_dir()
    if argv[:1] == ["init"] and len(argv) >= 2:
        init(directory, json.loads(Path(argv[1]).read_text()), argv[2] if len(argv) > 2 else sys.executable)
    elif argv[:1] == ["mark"] and len(argv) == 2:
        with locked_state(directory):
            record(directory, {"mark": argv[1]})
    elif argv[:1] == ["show"]:
        print((directory / "state.json").read_text())
    else:
        print(usage, file=sys.stderr)
        return 64
    return 0


def main() -> int:
    tool = Path(sys.argv[0]).name
    try:
        if tool == "shimctl":
            return shimctl(sys.argv[1:])
        if tool not in TOOLS:
            raise ShimError(f"{tool}: not a simulated tool")
        host = os.environ.get("TOKENLABS_SHIM_HOST")
        if not host:
            raise ShimError(f"{tool}: TOKENLABS_SHIM_HOST is not set (run through a host's interpreter wrapper)")
        result = run_tool(tool, sys.argv[1:], state_dir(), host, dict(os.environ))
    except ShimError as exc:
        print(f"shim: {exc}", file=sys.stderr)
        return 70
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
