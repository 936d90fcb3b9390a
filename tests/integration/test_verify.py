"""The gateway smoke checks against a stand-in gateway on loopback that answers like vLLM behind Kuadrant.

Each check is shown to pass against a well-behaved stand-in and to fail, for the stated reason, against a
stand-in with exactly that behaviour broken. The last tests drive ``playbooks/verify.yml`` itself.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import REPO_ROOT, Cluster

# The collection's module_utils import as Ansible imports them, through ./collections.
sys.path.insert(0, str(REPO_ROOT / "collections"))
from ansible_collections.tokenlabs.platform.plugins.module_utils.gateway_smoke import (
    ALL_CHECKS,
    SmokeConfig,
    run_checks,
)

MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "nvidia/NVIDIA-Nemotron-Nano-12B-v2-VL-FP8"]
KEYS = {"free": "tlabs_sk_" + "1" * 48, "pro": "tlabs_sk_" + "2" * 48, "enterprise": "tlabs_sk_" + "3" * 48}
QUOTA_KEY = "tlabs_sk_" + "4" * 48
TIERS = {
    "free": {"requests_per_minute": 10, "tokens_per_minute": 5000},
    "pro": {"requests_per_minute": 100, "tokens_per_minute": 50000},
    "enterprise": {"requests_per_minute": 1000, "tokens_per_minute": 500000},
}


@dataclass
class Behaviour:
    """How the stand-in answers; each field breaks one thing the checks must notice."""

    require_key: bool = True
    bad_key_status: int = 403
    listed_models: list[str] = field(default_factory=lambda: list(MODELS))
    report_usage: bool = True
    audio: str = "wav"  # wav | empty | garbage
    enforce_rate_limit: bool = True
    enforce_token_quota: bool = True
    refuse_tier: str | None = None


class StandIn:
    """Kuadrant in front of vLLM and Magpie TTS, reduced to what a client can observe."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        # Key -> tier, as Authorino would resolve it; a test may point it at the API server's Secrets.
        fixed = {key: tier for tier, key in KEYS.items()} | {QUOTA_KEY: "free"}
        self.keys: Callable[[], dict[str, str]] = lambda: fixed

    def answer(self, method: str, path: str, auth: str | None, body: dict[str, Any]) -> tuple[int, str, bytes]:  # noqa: PLR0911
        b = self.behaviour
        key = auth.removeprefix("Bearer ") if auth else None
        if key is None:
            if b.require_key:
                return _json(401, {"error": "missing API key"})
            key = KEYS["enterprise"]
        tier = self.keys().get(key)
        if tier is None or tier == b.refuse_tier:
            return _json(b.bad_key_status, {"error": "invalid API key"})
        if path == "/v1/models" and method == "GET":
            return _json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in b.listed_models]})
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            if b.enforce_rate_limit and self.requests[key] > TIERS[tier]["requests_per_minute"]:
                return _json(429, {"error": "too many requests"})
            if b.enforce_token_quota and self.tokens.get(key, 0) >= TIERS[tier]["tokens_per_minute"]:
                return _json(429, {"error": "token quota exhausted"})
        if path == "/v1/chat/completions" and method == "POST":
            completion = int(body.get("max_tokens", 16)) if body.get("ignore_eos") else 2
            with self.lock:
                self.tokens[key] = self.tokens.get(key, 0) + 10 + completion
            usage = {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}
            answer: dict[str, Any] = {
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
            }
            if b.report_usage:
                answer["usage"] = usage
            return _json(200, answer)
        if path == "/v1/audio/speech" and method == "POST":
            return 200, "audio/wav", _audio(b.audio)
        return _json(404, {"error": f"no route for {method} {path}"})


def _json(status: int, payload: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(payload).encode()


def _audio(kind: str) -> bytes:
    if kind == "garbage":
        return b"ID3\x04not a wav file"
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        if kind == "wav":
            wav.writeframes(b"\x00\x10" * 2205)
    return buffer.getvalue()


@pytest.fixture
def gateway() -> Iterator[tuple[str, StandIn]]:
    """Starts a stand-in; the test sets ``stand_in.behaviour`` before sending anything."""
    stand_in = StandIn(Behaviour())

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            status, ctype, payload = stand_in.answer(self.command, self.path, self.headers.get("Authorization"), body)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stand_in
    finally:
        server.shutdown()
        server.server_close()


def config(base_url: str, checks: list[str] | None = None) -> SmokeConfig:
    return SmokeConfig(
        base_url=base_url,
        tier_keys=dict(KEYS),
        chat_key=KEYS["enterprise"],
        models=list(MODELS),
        rate_limit_key=KEYS["free"],
        rate_limit_per_minute=TIERS["free"]["requests_per_minute"],
        quota_key=QUOTA_KEY,
        quota_tokens_per_minute=TIERS["free"]["tokens_per_minute"],
        quota_max_tokens=1200,
        checks=checks or list(ALL_CHECKS),
        timeout=10,
    )


def test_every_check_passes_against_a_well_behaved_gateway(gateway: tuple[str, StandIn]) -> None:
    url, _ = gateway
    report = run_checks(config(url))
    assert report["ok"], report["failures"]
    assert [c["name"] for c in report["checks"]] == list(ALL_CHECKS)
    assert report["failures"] == []
    quota = next(c for c in report["checks"] if c["name"] == "token_quota")
    assert quota["details"]["tokens_used"] >= TIERS["free"]["tokens_per_minute"]


def test_a_bad_key_refused_with_401_also_passes(gateway: tuple[str, StandIn]) -> None:
    url, stand_in = gateway
    stand_in.behaviour = Behaviour(bad_key_status=401)
    assert run_checks(config(url, ["auth_bad_key"]))["ok"]


BROKEN = [
    pytest.param(
        Behaviour(require_key=False),
        "auth_missing_key",
        "request without a key got HTTP 200, expected 401",
        id="no-auth",
    ),
    pytest.param(Behaviour(bad_key_status=200), "auth_bad_key", "expected 401 or 403", id="bad-key-accepted"),
    pytest.param(Behaviour(refuse_tier="pro"), "tier_keys", "keys of tiers ['pro'] were refused", id="tier-refused"),
    pytest.param(
        Behaviour(listed_models=MODELS[:1]), "models_listed", f"does not list ['{MODELS[1]}']", id="one-pool-listing"
    ),
    # Without usage nothing can be charged, so the quota check fails too (for that same reason).
    pytest.param(Behaviour(report_usage=False), "chat_completions", "no usage.total_tokens", id="no-usage"),
    pytest.param(Behaviour(audio="garbage"), "speech", "did not return a WAV file", id="not-wav"),
    pytest.param(Behaviour(audio="empty"), "speech", "returned an empty WAV file", id="silent-wav"),
    pytest.param(
        Behaviour(enforce_rate_limit=False),
        "rate_limit",
        "request 11 within a minute got HTTP 200, expected 429",
        id="no-rate-limit",
    ),
    pytest.param(Behaviour(enforce_token_quota=False), "token_quota", "was served although", id="no-token-quota"),
]


@pytest.mark.parametrize(("behaviour", "check", "reason"), BROKEN)
def test_each_check_fails_for_its_reason(
    gateway: tuple[str, StandIn], behaviour: Behaviour, check: str, reason: str
) -> None:
    url, stand_in = gateway
    stand_in.behaviour = behaviour
    report = run_checks(config(url))
    assert not report["ok"]
    failed = {f["check"]: f["message"] for f in report["failures"]}
    assert check in failed, report["failures"]
    assert reason in failed[check]
    # The broken behaviour is the only thing wrong, so no other check may fail, except the quota check when
    # usage is missing, which must then say so.
    others = set(failed) - {check}
    if behaviour.report_usage:
        assert not others, report["failures"]
    else:
        assert others == {"token_quota"} and "reported no usage" in failed["token_quota"]


def test_a_request_limit_tripping_before_the_token_quota_is_not_taken_for_it(gateway: tuple[str, StandIn]) -> None:
    url, stand_in = gateway
    stand_in.behaviour = Behaviour()
    cfg = config(url, ["token_quota"])
    cfg.quota_max_tokens = 100  # 110 tokens a request: the 10 requests per minute run out first
    report = run_checks(cfg)
    assert report["failures"][0]["check"] == "token_quota"
    assert "another limit answered" in report["failures"][0]["message"]


def test_an_unreachable_gateway_fails_every_check_with_the_reason() -> None:
    report = run_checks(config("http://127.0.0.1:9", ["auth_missing_key", "models_listed"]))
    assert not report["ok"]
    assert all("127.0.0.1:9" in f["message"] for f in report["failures"])


def _run_verify_playbook(
    url: str, tmp_path: Path, extra: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    report_path = tmp_path / "report.json"
    variables = {
        "verify_base_url": url,
        "verify_manage_tenants": False,
        "verify_api_keys": KEYS,
        "verify_quota_api_key": QUOTA_KEY,
        "verify_report_path": str(report_path),
        "verify_timeout": 10,
    } | extra
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(variables))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/verify.yml", "-e", f"@{extra_file}"],
        cwd=REPO_ROOT,
        env=(env or {}) | {"ANSIBLE_FORCE_COLOR": "0", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc, report_path


def test_verify_playbook_passes_prints_the_report_and_hides_the_keys(
    gateway: tuple[str, StandIn], tmp_path: Path
) -> None:
    url, _ = gateway
    proc, report_path = _run_verify_playbook(url, tmp_path, {})
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["failures"] == []
    assert '\\"ok\\": true' in proc.stdout or '"ok": true' in proc.stdout
    assert all(key not in proc.stdout for key in [*KEYS.values(), QUOTA_KEY])


def test_verify_playbook_fails_naming_the_failed_check(gateway: tuple[str, StandIn], tmp_path: Path) -> None:
    url, stand_in = gateway
    stand_in.behaviour = Behaviour(require_key=False)
    proc, report_path = _run_verify_playbook(url, tmp_path, {"verify_checks": ["auth_missing_key", "models_listed"]})
    assert proc.returncode != 0
    report = json.loads(report_path.read_text())
    assert report["ok"] is False
    assert [f["check"] for f in report["failures"]] == ["auth_missing_key"]
    assert "auth_missing_key: request without a key got HTTP 200, expected 401" in proc.stdout


def _tenant_keys(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Key -> tier of every API-key Secret in the namespace, read the way Authorino selects them."""
    secrets = client.CoreV1Api(cluster.api).list_namespaced_secret(
        namespace, label_selector="authorino.kuadrant.io/managed-by=authorino"
    )
    return {
        base64.b64decode(s.data["api_key"]).decode(): s.metadata.annotations["kuadrant.io/groups"]
        for s in secrets.items
        if s.data and "api_key" in s.data
    }


def test_verify_playbook_makes_and_removes_its_own_tenants(
    gateway: tuple[str, StandIn], k8s_cluster: Cluster, tmp_path: Path
) -> None:
    """With verify_manage_tenants (the default) the role creates a tenant per tier and a fresh quota tenant
    through tokenlabs.platform.tenant on the API server, uses the keys it was handed once, and removes them."""
    url, stand_in = gateway
    namespace = "verify-tenants"
    core = client.CoreV1Api(k8s_cluster.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    seen: set[str] = set()

    def keys() -> dict[str, str]:
        current = _tenant_keys(k8s_cluster, namespace)
        seen.update(current)
        return current

    stand_in.keys = keys
    try:
        proc, report_path = _run_verify_playbook(
            url,
            tmp_path,
            {
                "verify_manage_tenants": True,
                "verify_api_keys": {},
                "verify_quota_api_key": "",
                "verify_tenant_namespace": namespace,
                "tokenlabs_kubeconfig": str(k8s_cluster.kubeconfig),
            },
            env=k8s_cluster.env,
        )
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
        assert json.loads(report_path.read_text())["ok"]
        # One key per tier plus the quota tenant's, all gone afterwards and never printed.
        assert len(seen) == len(TIERS) + 1
        assert _tenant_keys(k8s_cluster, namespace) == {}
        assert core.list_namespaced_secret(namespace, label_selector="tokenlabs.io/tenant").items == []
        assert all(key not in proc.stdout + proc.stderr for key in seen)
    finally:
        core.delete_namespace(namespace)
