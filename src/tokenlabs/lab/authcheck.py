"""Ask Authorino for a decision the way Kuadrant's Wasm filter does: an Envoy ext_authz ``Check`` over gRPC.

Kuadrant names each AuthConfig after a hash of the route path it protects and sends that name as the
``host`` context extension; the request's own method, path and headers come with it. The reply is the
decision (gRPC status, denied HTTP status) and the dynamic metadata Authorino adds on success, where the
AuthPolicy's ``response.success.filters`` put the identity (user id, tier) for the rate-limit policies.

The messages are encoded by hand (a few fields of ``envoy.service.auth.v3``); only the ``Struct`` of the
dynamic metadata is decoded with protobuf's own well-known type.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

_METHOD = "/envoy.service.auth.v3.Authorization/Check"
_GRPC_OK = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _string_map(number: int, values: Mapping[str, str]) -> bytes:
    return b"".join(_field(number, _string(1, k) + _string(2, v)) for k, v in values.items())


def _timestamp(number: int, moment: float) -> bytes:
    seconds = int(moment)
    nanos = round((moment - seconds) * 1e9) % 1_000_000_000
    return _field(number, _varint(1 << 3) + _varint(seconds) + _varint(2 << 3) + _varint(nanos))


def check_request(
    auth_config: str, method: str, path: str, host: str, headers: Mapping[str, str], *, at: float | None = None
) -> bytes:
    """A serialized CheckRequest for one HTTP request, aimed at the AuthConfig named ``auth_config``.

    Its ``request.time`` is ``at`` (seconds since the epoch; now when not given), as the proxy stamps every request
    it asks about; the AuthPolicy's expiry rule compares a previous key's expiry with it.
    """
    lowered = {k.lower(): v for k, v in headers.items()} | {":authority": host, ":method": method, ":path": path}
    http = (
        _string(2, method)
        + _string_map(3, lowered)
        + _string(4, path)
        + _string(5, host)
        + _string(6, "https")
        + _string(10, "HTTP/1.1")
    )
    request = _timestamp(1, time.time() if at is None else at) + _field(2, http)
    attributes = _field(4, request) + _string_map(10, {"host": auth_config})
    return _field(1, attributes)


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a serialized message: varints as int, length-delimited as bytes."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            size = varint()
            yield number, data[pos : pos + size]
            pos += size
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _headers(message: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, option in _fields(message):
        if number == 2 and isinstance(option, bytes):  # repeated HeaderValueOption headers
            for inner, header in _fields(option):
                if inner == 1 and isinstance(header, bytes):
                    pair = {n: v for n, v in _fields(header) if isinstance(v, bytes)}
                    found[pair.get(1, b"").decode()] = pair.get(2, b"").decode()
    return found


@dataclass
class Decision:
    allowed: bool
    grpc_code: int
    http_status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_response(data: bytes) -> Decision:
    decision = Decision(allowed=False, grpc_code=-1)
    for number, value in _fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:  # google.rpc.Status
            decision.grpc_code = next((v for n, v in _fields(value) if n == 1 and isinstance(v, int)), 0)
        elif number == 2:  # DeniedHttpResponse
            status = next((v for n, v in _fields(value) if n == 1 and isinstance(v, bytes)), b"")
            decision.http_status = next((v for n, v in _fields(status) if n == 1 and isinstance(v, int)), None)
            decision.headers = _headers(value)
        elif number == 3:  # OkHttpResponse
            decision.headers = _headers(value)
        elif number == 4:  # google.protobuf.Struct dynamic_metadata
            decision.metadata = json_format.MessageToDict(struct_pb2.Struct.FromString(value))
    decision.allowed = decision.grpc_code == _GRPC_OK
    return decision


def check(address: str, request: bytes, timeout: float = 10.0) -> Decision:
    """Send one serialized CheckRequest to Authorino's gRPC ext_authz endpoint (plaintext, as in the lab)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(_METHOD, request_serializer=None, response_deserializer=None)
        return parse_response(call(request, timeout=timeout))
