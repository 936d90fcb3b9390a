"""The ``tokenlabs`` command: the collection's playbooks behind a few verbs."""

from __future__ import annotations

import argparse
import datetime
import difflib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import config

from tokenlabs import runner
from tokenlabs.lab import checks as lab_checks
from tokenlabs.lab import manager, sources
from tokenlabs.lab import report as lab_report
from tokenlabs.lab.controlplane import install_signal_handlers

REPO_ROOT = runner.REPO_ROOT
LAB_DIR = Path(os.environ.get("TOKENLABS_LAB_DIR", REPO_ROOT / ".lab"))
LAB_INVENTORY = REPO_ROOT / "inventory" / "lab"
PRODUCTION_INVENTORY = REPO_ROOT / "inventory" / "production"
ARTIFACTS_ENV = "TOKENLABS_ARTIFACTS"
TENANT_LOOKUP_TASK = "Tenant | Look the tenant up"
TENANT_APPLY_TASK = "Tenant | Apply the change"
USAGE_QUERY_TASK = "Usage report | Query Prometheus and write the files"

_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class CliError(RuntimeError):
    """A failure worth one line to the operator, not a traceback."""


class TaskFailed(CliError):
    """A playbook task failed: which one, where, and the message it gave."""

    def __init__(self, task: str, host: str, message: str) -> None:
        super().__init__(f"task '{task}' failed on {host}: {message}")
        self.task, self.host, self.message = task, host, message


def progress_printer(stream: TextIO) -> Callable[[dict[str, Any]], None]:
    """A live line per task result: status, host, task."""

    def on_event(event: dict[str, Any]) -> None:
        status = _STATUS.get(event.get("event", ""))
        data = event.get("event_data", {})
        if status is None or not data.get("host"):
            return
        if status == "ok" and data.get("res", {}).get("changed"):
            status = "changed"
        if status == "failed" and data.get("ignore_errors"):
            status = "ignored"
        print(f"  {status:<11} {data['host']:<14} {data.get('task', '')}", file=stream, flush=True)

    return on_event


def print_summary(
    result: runner.PlayResult, *, as_json: bool, extra: dict[str, Any] | None = None, out: TextIO = sys.stdout
) -> None:
    if as_json:
        payload = {
            **(extra or {}),
            "ok": result.ok,
            "rc": result.rc,
            "status": result.status,
            "duration_s": round(result.duration, 1),
            "hosts": result.hosts,
            "failures": result.failures,
            "slowest_tasks": [{**t, "seconds": round(t["seconds"], 1)} for t in result.slowest],
            "artifacts": str(result.artifacts),
        }
        print(json.dumps(payload, indent=2), file=out)
        return
    print(f"\n{'host':<16} {'ok':>5} {'changed':>8} {'failed':>7} {'skipped':>8}", file=out)
    for host, counts in sorted(result.hosts.items()):
        failed = counts.get("failed", 0) + counts.get("unreachable", 0)
        print(
            f"{host:<16} {counts.get('ok', 0):>5} {counts.get('changed', 0):>8} {failed:>7} "
            f"{counts.get('skipped', 0):>8}",
            file=out,
        )
    if result.slowest:
        print("slowest tasks:", file=out)
        for timing in result.slowest:
            print(f"  {timing['seconds']:>7.1f}s  {timing['host']:<14} {timing['task']}", file=out)
    print(f"{result.status} in {result.duration:.1f}s, artifacts in {result.artifacts}", file=out)


def _artifacts_root(inventory: Path) -> Path:
    explicit = os.environ.get(ARTIFACTS_ENV)
    if explicit:
        return Path(explicit)
    return (LAB_DIR if inventory == LAB_INVENTORY else REPO_ROOT / "artifacts") / "runs"


def _lab_env() -> dict[str, str]:
    state = manager.state(LAB_DIR)
    if state is None:
        return {}
    path = os.pathsep.join([str(Path(sys.executable).parent), state["bin_dir"], os.environ.get("PATH", "")])
    return {"K8S_AUTH_KUBECONFIG": state["kubeconfig"], "KUBECONFIG": state["kubeconfig"], "PATH": path}


def _tools_env() -> dict[str, str]:
    """The pinned helm v3 (kubernetes.core.helm drives it) on the PATH, unless the PATH has a helm already."""
    if shutil.which("helm"):
        return {}
    bins = sources.ensure_binaries()
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), str(bins.bin_dir), os.environ.get("PATH", "")])}


def run(
    args: argparse.Namespace,
    playbook: str,
    *,
    extravars: dict[str, Any] | None = None,
    envvars: dict[str, str] | None = None,
    report: Callable[[runner.PlayResult], dict[str, Any]] | None = None,
    capture: tuple[str, ...] = (),
) -> runner.PlayResult:
    """Run a playbook with live progress; raise CliError naming the failing task and host.

    ``report`` adds what it finds after a successful run to the JSON summary.
    """
    inventory = Path(args.inventory).resolve()
    if not inventory.exists():
        raise CliError(f"inventory {inventory} does not exist")
    env = {**(_lab_env() if inventory == LAB_INVENTORY else {}), **(envvars or {})}
    quiet = getattr(args, "json", False)
    result = runner.run_playbook(
        playbook,
        inventory=inventory,
        artifacts_root=_artifacts_root(inventory),
        extravars=extravars,
        envvars=env,
        tags=getattr(args, "tags", None),
        check=getattr(args, "check", False),
        on_event=None if quiet else progress_printer(sys.stderr),
        capture=capture,
    )
    print_summary(result, as_json=quiet, extra=report(result) if report and quiet and result.ok else None)
    if not result.ok:
        if result.failures:
            first = result.failures[0]
            raise TaskFailed(first["task"], first["host"], first["message"])
        raise CliError(f"{playbook} {result.status} (rc {result.rc}); see {result.artifacts}")
    return result


# --- verbs ---------------------------------------------------------------------------------------
def _converge(
    args: argparse.Namespace, keys_dir: Path, report: Callable[[runner.PlayResult], dict[str, Any]] | None = None
) -> None:
    """site.yml, with keys of newly created inventory tenants written to a 0600 file, never to output."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    key_file = keys_dir / "tenant-keys.yml"
    before = key_file.stat().st_mtime if key_file.exists() else None
    # site.yml drives helm; the lab's environment has the pinned one already.
    tools = {} if Path(args.inventory).resolve() == LAB_INVENTORY else _tools_env()
    run(args, "site.yml", extravars={"tokenlabs_tenants_key_file": str(key_file)}, envvars=tools, report=report)
    if key_file.exists() and key_file.stat().st_mtime != before:
        print(f"new tenant keys were written to {key_file} (mode 0600)", file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    _converge(args, _artifacts_root(Path(args.inventory).resolve()).parent)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    extravars = {"verify_base_url": args.base_url} if args.base_url else {}
    run(args, "playbooks/verify.yml", extravars=extravars)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    extravars = {
        "usage_report_start": args.since,
        "usage_report_end": args.until,
        "usage_report_dir": str(Path(args.output).resolve()),
    }
    if args.prometheus_url:
        extravars["usage_report_prometheus_url"] = args.prometheus_url
    try:
        run(args, "playbooks/usage_report.yml", extravars=extravars)
    except TaskFailed as exc:
        # The query's own message names the Prometheus it tried; the task name would only bury it.
        if exc.task == USAGE_QUERY_TASK:
            raise CliError(exc.message) from None
        raise
    return 0


def _tenants_of(result: runner.PlayResult) -> dict[str, Any]:
    return {"tenants": result.captured.get(TENANT_LOOKUP_TASK, {}).get("tenants", [])}


def _print_tenant_diff(diff: dict[str, Any], out: TextIO) -> None:
    """The module's before/after (keys already redacted to fingerprints) as a unified diff."""
    before = json.dumps(diff.get("before") or {}, indent=2, sort_keys=True).splitlines()
    after = json.dumps(diff.get("after") or {}, indent=2, sort_keys=True).splitlines()
    for line in difflib.unified_diff(before, after, "before", "after", lineterm=""):
        print(line, file=out)


def cmd_tenant(args: argparse.Namespace) -> int:
    extravars: dict[str, Any] = {"action": args.action}
    if getattr(args, "tenant", None):
        extravars["tenant"] = args.tenant
    if getattr(args, "tier", None):
        extravars["tier"] = args.tier
    if getattr(args, "previous_key_ttl", None):
        extravars["previous_key_ttl"] = args.previous_key_ttl
    if args.action not in ("list", "show"):
        return _tenant_change(args, extravars)
    result = run(args, "playbooks/tenant.yml", extravars=extravars, capture=(TENANT_LOOKUP_TASK,), report=_tenants_of)
    if not args.json:
        _print_tenants(_tenants_of(result)["tenants"], sys.stdout)
    return 0


def _print_tenants(tenants: list[dict[str, Any]], out: TextIO, now: datetime.datetime | None = None) -> None:
    """One line per tenant; a previous key still in its grace period is a pending expiry, shown with its time."""
    now = now or datetime.datetime.now(datetime.UTC)
    print(f"{'tenant':<24} {'tier':<12} {'created':<22} {'key fingerprint':<25} previous keys", file=out)
    for t in tenants:
        expiries = ", ".join(_expiry_text(p, now) for p in t.get("previous_keys") or [] if p.get("expires_at"))
        line = f"{t['name']:<24} {t['tier']:<12} {t.get('created') or '':<22} {t.get('fingerprint') or '':<25} "
        print((line + (expiries or "-")).rstrip(), file=out)


def _expiry_text(previous: dict[str, Any], now: datetime.datetime) -> str:
    expires = previous["expires_at"]
    try:
        left = (datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) - now).total_seconds()
    except ValueError:
        return f"{previous.get('fingerprint')} expiry unreadable ({expires})"
    # Authorino refuses an expired key at once; its Secret goes moments later, in the cluster.
    when = f"in {_duration(left)}" if left > 0 else "expired, being removed"
    return f"{previous.get('fingerprint')} expires {expires} ({when})"


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.999)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts[:2]) or "0s"


def _tenant_change(args: argparse.Namespace, extravars: dict[str, Any]) -> int:
    """add, retier, rotate, revoke: one run of tenant.yml, its outcome, its diff, and a new key shown once."""
    show_diff = args.diff or args.check
    # Any write but a revocation may hand out a key (a re-tier repairs a corrupted one): it travels only through a
    # 0600 file outside the runner artifacts, written before the server stores it, and is printed once here.
    requested = Path(args.key_file).resolve() if getattr(args, "key_file", None) else None
    with tempfile.TemporaryDirectory(prefix="tokenlabs-key-") as tmp:
        key_file = requested or Path(tmp) / "key"
        if args.action != "revoke":
            extravars["key_file"] = str(key_file)

        def handed_over(done: dict[str, Any]) -> str | None:
            if requested is not None or not done.get("api_key_file") or not key_file.exists():
                return None
            return key_file.read_text().strip()

        def report(result: runner.PlayResult) -> dict[str, Any]:
            # With --json the key goes into the one JSON document on stdout, and nowhere else.
            done = result.captured.get(TENANT_APPLY_TASK, {})
            document: dict[str, Any] = {"tenant": args.tenant, "changed": bool(done.get("changed"))}
            shown = ("existed", "key_action", "api_key_file", *(("diff",) if show_diff else ()))
            document.update({name: done[name] for name in shown if done.get(name) is not None})
            key = handed_over(done)
            if key is not None:
                document["api_key"] = key
                document.pop("api_key_file", None)
            return document

        result = run(
            args,
            "playbooks/tenant.yml",
            extravars=extravars,
            envvars={"ANSIBLE_DIFF_ALWAYS": "true"} if show_diff else {},
            report=report,
            capture=(TENANT_APPLY_TASK,),
        )
        if not args.json:
            done = result.captured.get(TENANT_APPLY_TASK, {})
            _print_tenant_outcome(args, done, show_diff)
            key = handed_over(done)
            if requested is not None and done.get("api_key_file"):
                print(f"the key for {args.tenant} is in {requested} (mode 0600)", file=sys.stderr)
            elif key is not None:
                print(f"API key for {args.tenant} (shown once, store it now): {key}")
    return 0


def _print_tenant_outcome(args: argparse.Namespace, done: dict[str, Any], show_diff: bool) -> None:
    if show_diff and done.get("diff"):
        _print_tenant_diff(done["diff"], sys.stdout)
    if args.action == "revoke" and done.get("existed") is False:
        print(f"tenant {args.tenant} does not exist; nothing to revoke (changed=false)")
    elif args.check:
        print(f"check mode, nothing was changed; would change: {str(bool(done.get('changed'))).lower()}")


def _lab_checks(kubeconfig: str, report: dict[str, Any]) -> dict[str, Any]:
    """The real controllers' statuses and decisions for the lab's tenants (keys from the 0600 key file)."""
    key_file = LAB_DIR / "tenant-keys.yml"
    keys = yaml.safe_load(key_file.read_text()) if key_file.exists() else {}
    tiers = {t["id"]: t["tier"] for t in report["tenants"]}
    table = yaml.safe_load((LAB_INVENTORY / "group_vars" / "all" / "tiers.yml").read_text())["tokenlabs_tiers"]
    api = config.new_client_from_config(config_file=kubeconfig)
    return lab_checks.run(api, {t: k for t, k in (keys or {}).items() if t in tiers}, tiers, table)


def cmd_lab_up(args: argparse.Namespace) -> int:
    print(
        "starting the lab control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, "
        "and the real controllers behind the charts' pods)",
        file=sys.stderr,
    )
    state = manager.up(LAB_DIR)
    print(f"cluster {state['server']}, kubeconfig {state['kubeconfig']}", file=sys.stderr)
    args.inventory = str(LAB_INVENTORY)

    def report(_: runner.PlayResult) -> dict[str, Any]:
        found = lab_report.collect(state["kubeconfig"])
        checked = _lab_checks(state["kubeconfig"], found)
        return {"report": {**found, "tts_url": state["tts_url"]}, "controllers": checked}

    _converge(args, LAB_DIR, report=report)
    if not args.json:
        found = lab_report.collect(state["kubeconfig"])
        print(lab_report.render(found, state["tts_url"]))
        print(lab_checks.render(_lab_checks(state["kubeconfig"], found)))
    return 0


def cmd_lab_down(_args: argparse.Namespace) -> int:
    stopped = manager.down(LAB_DIR)
    # The demo tenants' keys belonged to the cluster just removed; run logs stay for reading.
    (LAB_DIR / "tenant-keys.yml").unlink(missing_ok=True)
    print("lab stopped and removed" if stopped else "no lab running")
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    state = manager.state(LAB_DIR)
    if args.json:
        print(json.dumps({"running": state is not None, **(state or {})}, indent=2))
    elif state is None:
        print("no lab running")
    else:
        print(f"running: {state['server']} (supervisor pid {state['pid']}), nodes: {', '.join(state['nodes'])}")
        print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0


# --- parser --------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, *, inventory: Path = PRODUCTION_INVENTORY) -> None:
    parser.add_argument("-i", "--inventory", default=str(inventory), help=f"inventory (default {inventory})")
    parser.add_argument("--json", action="store_true", help="print one JSON summary instead of progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenlabs", description="Operate the TokenLabs platform.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="converge site.yml: bare metal to a tenant-ready gateway")
    _common(up)
    up.add_argument("--tags", help="run only these phases/roles (comma-separated tags)")
    up.add_argument("--check", action="store_true", help="report what would change, change nothing")
    up.set_defaults(func=cmd_up)

    verify = sub.add_parser("verify", help="post-deploy smoke test through the gateway")
    _common(verify)
    verify.add_argument("--base-url", help="gateway URL (default: from the inventory)")
    verify.set_defaults(func=cmd_verify)

    usage = sub.add_parser("usage", help="per-tenant requests and tokens, for billing")
    _common(usage)
    usage.add_argument("--since", required=True, help="start of the range: RFC 3339 time or a duration back (7d)")
    usage.add_argument("--until", default="now", help="end of the range (default now)")
    usage.add_argument("--output", default="reports", help="directory for the CSV and JSON files")
    usage.add_argument("--prometheus-url", help="Prometheus base URL (default: from the inventory)")
    usage.set_defaults(func=cmd_usage)

    tenant = sub.add_parser("tenant", help="add, re-tier, rotate, revoke, list and show tenants")
    tenant_sub = tenant.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("add", "create a tenant; prints its new key once"),
        ("retier", "move a tenant to another tier (the key is kept)"),
        ("rotate", "issue a new key; prints it once"),
        ("revoke", "delete the tenant and its keys"),
        ("show", "one tenant's tier, creation time and key fingerprint"),
        ("list", "every tenant (optionally of one tier)"),
    ):
        p = tenant_sub.add_parser(action, help=help_text)
        _common(p)
        if action != "list":
            p.add_argument("tenant", help="tenant id (DNS-1123 label)")
        if action in ("add", "retier"):
            p.add_argument("--tier", required=True)
        if action == "list":
            p.add_argument("--tier", help="only tenants of this tier")
        if action in ("add", "rotate"):
            p.add_argument("--key-file", help="write the key to this file (mode 0600) instead of printing it")
        if action == "rotate":
            p.add_argument("--previous-key-ttl", help="keep the old key valid this long, e.g. 24h")
        if action in ("add", "retier", "rotate", "revoke"):
            p.add_argument("--check", action="store_true", help="report what would change, change nothing")
            p.add_argument("--diff", action="store_true", help="show the change (keys only as fingerprints)")
        p.set_defaults(func=cmd_tenant)

    lab = sub.add_parser("lab", help="the local lab: a real control plane with simulated Spark nodes")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    lab_up = lab_sub.add_parser("up", help="start the lab and converge site.yml against it")
    lab_up.add_argument("--tags", help="run only these site.yml tags")
    lab_up.add_argument("--check", action="store_true", help="--check --diff: report, change nothing")
    lab_up.add_argument("--json", action="store_true", help="machine-readable summary")
    lab_up.set_defaults(func=cmd_lab_up)
    lab_sub.add_parser("down", help="stop the lab and remove its data").set_defaults(func=cmd_lab_down)
    status = lab_sub.add_parser("status", help="is the lab running, and where")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_lab_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_signal_handlers()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, manager.LabError) as exc:
        print(f"tokenlabs: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
