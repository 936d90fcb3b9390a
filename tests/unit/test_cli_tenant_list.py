"""`tokenlabs tenant list` shows each tenant's pending expiries: previous keys still in their grace period."""

from __future__ import annotations

import datetime
import io

from tokenlabs import cli

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _listed(tenants: list[dict[str, object]]) -> list[str]:
    out = io.StringIO()
    cli._print_tenants(tenants, out, now=NOW)
    return out.getvalue().splitlines()


def test_a_pending_expiry_is_shown_with_its_time_and_what_is_left() -> None:
    header, acme, beta = _listed(
        [
            {
                "name": "acme",
                "tier": "pro",
                "created": "2026-01-01T00:00:00Z",
                "fingerprint": "sha256:1111111111111111",
                "previous_keys": [
                    {"fingerprint": "sha256:2222222222222222", "expires_at": "2026-03-01T12:00:15Z"},
                    {"fingerprint": "sha256:3333333333333333", "expires_at": "2026-03-02T14:30:00Z"},
                    # A hand-over holder is not a previous key and has no expiry of its own.
                    {"fingerprint": "sha256:1111111111111111", "expires_at": None, "handover": True},
                ],
            },
            {"name": "beta", "tier": "free", "created": "2026-01-02T00:00:00Z", "fingerprint": "sha256:4"},
        ]
    )
    assert header.split()[-2:] == ["previous", "keys"]
    assert acme.endswith(
        "sha256:2222222222222222 expires 2026-03-01T12:00:15Z (in 15s), "
        "sha256:3333333333333333 expires 2026-03-02T14:30:00Z (in 1d2h)"
    )
    assert beta.endswith(" -")


def test_an_expired_key_not_yet_removed_says_so() -> None:
    (_header, line) = _listed(
        [
            {
                "name": "acme",
                "tier": "pro",
                "previous_keys": [{"fingerprint": "sha256:2", "expires_at": "2026-03-01T11:59:59Z"}],
            }
        ]
    )
    assert line.endswith("sha256:2 expires 2026-03-01T11:59:59Z (expired, being removed)")
