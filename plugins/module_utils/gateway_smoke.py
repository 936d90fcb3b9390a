# Copyright: (c) 2026, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end checks of the public gateway, as a client with a tenant key sees it.

Every check returns a CheckResult; ``run_checks`` collects them into the report the ``gateway_smoke``
module returns and ``playbooks/verify.yml`` prints. Only the standard library is used, so the same
code runs in the module and in tests against a stand-in gateway.
"""

from __future__ import annotations

import io
import json
import secrets
import time
import urllib.error
import wave
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

from ansible.module_utils.urls import open_url

ALL_CHECKS = (
    "auth_missing_key",
    "auth_bad_key",
    "tier_keys",
    "models_listed",
    "chat_completions",
    "speech",
    "rate_limit",
    "token_quota",
)


class SmokeError(Exception):
    """A request could not be made at all (connection refused, timeout, bad URL)."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SmokeError(f"HTTP {self.status} body is not JSON: {self.body[:200]!r}") from exc


@dataclass
class CheckResult:
    name: str
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SmokeConfig:
    """What to check. Keys are tenant API keys (``tlabs_sk_...``) of throwaway test tenants."""

    base_url: str
    tier_keys: dict[str, str]
    chat_key: str
    models: list[str]
    rate_limit_key: str | None = None
    rate_limit_per_minute: int = 0
    quota_key: str | None = None
    quota_tokens_per_minute: int = 0
    quota_max_tokens: int = 1200
    quota_max_requests: int = 20
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    tts_input: str = "TokenLabs speech check."
    checks: list[str] = field(default_factory=lambda: list(ALL_CHECKS))
    timeout: float = 60.0


Transport = Callable[[str, str, Dict[str, str], Optional[bytes], float], Response]


def urllib_transport(method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> Response:
    try:
        with open_url(url, data=body, headers=headers, method=method, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), dict(resp.headers.items()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers.items()) if exc.headers else {})
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SmokeError(f"{method} {url}: {exc}") from exc


class Gateway:
    """A client of the gateway's OpenAI-compatible API."""

    def __init__(self, base_url: str, timeout: float, transport: Transport = urllib_transport) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport

    def request(self, method: str, path: str, key: str | None = None, payload: Any = None) -> Response:
        headers = {"Accept": "application/json"}
        body = None
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        return self.transport(method, self.base_url + path, headers, body, self.timeout)

    def chat(
        self, key: str | None, model: str, content: str = "Say OK.", max_tokens: int = 8, **extra: Any
    ) -> Response:
        payload = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
        return self.request("POST", "/v1/chat/completions", key, payload | extra)


def _describe(resp: Response) -> str:
    # An error body usually says why; a success body is just the answer that should not have come.
    text = resp.body[:200].decode("utf-8", "replace").strip() if resp.status >= 300 else ""
    return f"HTTP {resp.status}" + (f" ({text})" if text else "")


def _usage_tokens(resp: Response) -> int:
    usage = resp.json().get("usage") or {}
    return int(usage.get("total_tokens") or 0)


def check_auth_missing_key(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    resp = gw.chat(None, cfg.models[0])
    ok = resp.status == 401
    msg = (
        "request without a key is rejected with 401"
        if ok
        else f"request without a key got {_describe(resp)}, expected 401"
    )
    return CheckResult("auth_missing_key", ok, msg, {"status": resp.status})


def check_auth_bad_key(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    # Shaped like a real key so only its value, not its format, can be what is rejected.
    resp = gw.chat("tlabs_sk_" + secrets.token_hex(24), cfg.models[0])
    ok = resp.status in (401, 403)
    msg = (
        f"unknown key is rejected with {resp.status}"
        if ok
        else f"unknown key got {_describe(resp)}, expected 401 or 403"
    )
    return CheckResult("auth_bad_key", ok, msg, {"status": resp.status})


def check_tier_keys(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    statuses = {tier: gw.request("GET", "/v1/models", key).status for tier, key in sorted(cfg.tier_keys.items())}
    refused = {tier: status for tier, status in statuses.items() if status != 200}
    if not cfg.tier_keys:
        return CheckResult("tier_keys", False, "no tier keys were given", {})
    if refused:
        return CheckResult("tier_keys", False, f"keys of tiers {sorted(refused)} were refused: {refused}", statuses)
    return CheckResult("tier_keys", True, f"a key of every tier is accepted ({', '.join(statuses)})", statuses)


def check_models_listed(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    resp = gw.request("GET", "/v1/models", cfg.chat_key)
    if resp.status != 200:
        return CheckResult("models_listed", False, f"/v1/models got {_describe(resp)}", {"status": resp.status})
    listed = sorted(str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict))
    missing = sorted(set(cfg.models) - set(listed))
    if missing:
        return CheckResult(
            "models_listed", False, f"/v1/models does not list {missing} (lists {listed})", {"listed": listed}
        )
    return CheckResult("models_listed", True, f"/v1/models lists all {len(cfg.models)} models", {"listed": listed})


def check_chat_completions(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    problems: list[str] = []
    usage: dict[str, Any] = {}
    for model in cfg.models:
        resp = gw.chat(cfg.chat_key, model)
        if resp.status != 200:
            problems.append(f"{model}: {_describe(resp)}")
            continue
        data = resp.json()
        choices = data.get("choices") or []
        content = ((choices[0] if choices else {}).get("message") or {}).get("content")
        u = data.get("usage") or {}
        usage[model] = u
        if not content:
            problems.append(f"{model}: no answer in choices[0].message.content")
        total, prompt, completion = (u.get(k) for k in ("total_tokens", "prompt_tokens", "completion_tokens"))
        if not isinstance(total, int) or total <= 0:
            problems.append(f"{model}: no usage.total_tokens in the response (token limits cannot charge it)")
        elif isinstance(prompt, int) and isinstance(completion, int) and prompt + completion != total:
            problems.append(f"{model}: usage does not add up ({prompt} + {completion} != {total})")
        if data.get("model") not in (None, model):
            problems.append(f"{model}: answered by model {data.get('model')!r}")
    if problems:
        return CheckResult("chat_completions", False, "; ".join(problems), {"usage": usage})
    return CheckResult(
        "chat_completions", True, f"every model answers and reports usage ({len(cfg.models)})", {"usage": usage}
    )


def check_speech(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    payload = {"model": cfg.tts_model, "voice": cfg.tts_voice, "input": cfg.tts_input, "response_format": "wav"}
    resp = gw.request("POST", "/v1/audio/speech", cfg.chat_key, payload)
    if resp.status != 200:
        return CheckResult("speech", False, f"/v1/audio/speech got {_describe(resp)}", {"status": resp.status})
    try:
        with wave.open(io.BytesIO(resp.body)) as wav:
            frames, rate, channels = wav.getnframes(), wav.getframerate(), wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        return CheckResult(
            "speech", False, f"/v1/audio/speech did not return a WAV file: {exc}", {"bytes": len(resp.body)}
        )
    details = {"frames": frames, "rate": rate, "channels": channels, "seconds": round(frames / rate, 3) if rate else 0}
    if frames == 0 or rate == 0:
        return CheckResult("speech", False, f"/v1/audio/speech returned an empty WAV file ({details})", details)
    return CheckResult("speech", True, f"/v1/audio/speech returned {details['seconds']} s of {rate} Hz audio", details)


def check_rate_limit(gw: Gateway, cfg: SmokeConfig) -> CheckResult:
    if not cfg.rate_limit_key or cfg.rate_limit_per_minute <= 0:
        return CheckResult("rate_limit", False, "no rate-limit key or requests-per-minute limit was given", {})
    limit = cfg.rate_limit_per_minute
    start = time.monotonic()
    statuses: list[int] = []
    for _request in range(limit + 1):
        statuses.append(gw.chat(cfg.rate_limit_key, cfg.models[0], max_tokens=1).status)
    elapsed = time.monotonic() - start
    details = {"statuses": statuses, "limit": limit, "seconds": round(elapsed, 1)}
    early = [i + 1 for i, status in enumerate(statuses[:limit]) if status != 200]
    if early:
        return CheckResult(
            "rate_limit",
            False,
            f"request {early[0]} of {limit} allowed per minute got HTTP {statuses[early[0] - 1]}",
            details,
        )
    if statuses[limit] != 429:
        if elapsed > 60:
            msg = (
                f"the {limit + 1} requests took {elapsed:.0f} s, longer than the limit's minute; cannot judge the limit"
            )
            return CheckResult("rate_limit", False, msg, details)
        return CheckResult(
            "rate_limit",
            False,
            f"request {limit + 1} within a minute got HTTP {statuses[limit]}, expected 429",
            details,
        )
    return CheckResult("rate_limit", True, f"request {limit + 1} within a minute is refused with 429", details)


def check_token_quota(gw: Gateway, cfg: SmokeConfig) -> CheckResult:  # noqa: PLR0911 - one verdict per outcome
    if not cfg.quota_key or cfg.quota_tokens_per_minute <= 0:
        return CheckResult("token_quota", False, "no quota key or tokens-per-minute limit was given", {})
    limit = cfg.quota_tokens_per_minute
    used = 0
    # ignore_eos makes vLLM generate exactly max_tokens, so each request spends a known amount.
    for request in range(1, cfg.quota_max_requests + 1):
        resp = gw.chat(
            cfg.quota_key,
            cfg.models[0],
            content="Count upwards from one.",
            max_tokens=cfg.quota_max_tokens,
            ignore_eos=True,
        )
        details = {"requests": request, "tokens_used": used, "limit": limit}
        if resp.status == 429:
            if used >= limit:
                return CheckResult(
                    "token_quota", True, f"refused with 429 after {used} of {limit} tokens per minute", details
                )
            msg = f"429 after only {used} of {limit} tokens (request {request}): another limit answered, not the quota"
            return CheckResult("token_quota", False, msg, details)
        if resp.status != 200:
            return CheckResult("token_quota", False, f"request {request} got {_describe(resp)}", details)
        spent = _usage_tokens(resp)
        if spent <= 0:
            return CheckResult(
                "token_quota", False, f"request {request} reported no usage; the quota cannot be charged", details
            )
        if used >= limit:
            msg = f"request {request} was served although {used} tokens were already used of {limit} per minute"
            return CheckResult("token_quota", False, msg, details)
        used += spent
    msg = f"no 429 after {cfg.quota_max_requests} requests and {used} tokens (limit {limit} per minute)"
    return CheckResult(
        "token_quota", False, msg, {"requests": cfg.quota_max_requests, "tokens_used": used, "limit": limit}
    )


CHECKS: dict[str, Callable[[Gateway, SmokeConfig], CheckResult]] = {
    "auth_missing_key": check_auth_missing_key,
    "auth_bad_key": check_auth_bad_key,
    "tier_keys": check_tier_keys,
    "models_listed": check_models_listed,
    "chat_completions": check_chat_completions,
    "speech": check_speech,
    "rate_limit": check_rate_limit,
    "token_quota": check_token_quota,
}


def run_checks(cfg: SmokeConfig, transport: Transport = urllib_transport) -> dict[str, Any]:
    """Run the selected checks in a fixed order; returns ``{ok, failures, checks}``."""
    unknown = sorted(set(cfg.checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}; known: {list(CHECKS)}")
    if not cfg.models:
        raise ValueError("at least one model is needed")
    gw = Gateway(cfg.base_url, cfg.timeout, transport)
    results: list[CheckResult] = []
    for name in _ordered(cfg.checks):
        try:
            results.append(CHECKS[name](gw, cfg))
        except SmokeError as exc:
            results.append(CheckResult(name, False, str(exc)))
    return report(results)


def _ordered(selected: Iterable[str]) -> list[str]:
    # Limits go last: once they trip, the tenant they used is refused for the rest of the minute.
    chosen = set(selected)
    return [name for name in CHECKS if name in chosen]


def report(results: list[CheckResult]) -> dict[str, Any]:
    failures = [{"check": r.name, "message": r.message} for r in results if not r.ok]
    return {"ok": not failures and bool(results), "failures": failures, "checks": [asdict(r) for r in results]}
