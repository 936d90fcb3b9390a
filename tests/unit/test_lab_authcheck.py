"""The lab's ext_authz CheckRequest carries the request time the proxy would stamp, which the expiry rule reads."""

from __future__ import annotations

from tokenlabs.lab import authcheck


def _only(data: bytes, number: int) -> bytes:
    (value,) = [v for n, v in authcheck._fields(data) if n == number]
    assert isinstance(value, bytes)
    return value


def test_the_request_time_is_a_timestamp_in_the_request_attributes() -> None:
    message = authcheck.check_request("cfg", "GET", "/v1/models", "gw", {"authorization": "Bearer x"}, at=1750000000.25)
    request = _only(_only(message, 1), 4)
    stamp = dict(authcheck._fields(_only(request, 1)))
    assert stamp == {1: 1750000000, 2: 250000000}
    http = _only(request, 2)
    assert dict((n, v) for n, v in authcheck._fields(http) if n == 4) == {4: b"/v1/models"}


def test_without_a_time_the_request_is_stamped_now() -> None:
    import time  # noqa: PLC0415

    before = int(time.time())
    message = authcheck.check_request("cfg", "GET", "/", "gw", {})
    stamp = dict(authcheck._fields(_only(_only(_only(message, 1), 4), 1)))
    assert before <= stamp[1] <= int(time.time())
