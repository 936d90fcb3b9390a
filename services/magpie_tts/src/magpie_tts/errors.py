"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, for every failure."""

import json
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def synthesis_failed(request_id: str, exc: Exception) -> OpenAIError:
    """Log why synthesis failed and return what the client may see.

    The engine's message can hold tracebacks and server paths, so it goes to the log under the
    request id and the client gets only that id.
    """
    log.error("synthesis failed for request %s", request_id, exc_info=exc)
    return OpenAIError(
        500,
        f"The speech engine could not synthesise this input (request id {request_id}).",
        type_="server_error",
        code="synthesis_failed",
        # The same text would fail again: tell the openai client not to retry it.
        headers={"x-should-retry": "false", "x-request-id": request_id},
    )


# Pydantic's type errors, worded as OpenAI words them ("expected a decimal, but got a string").
_EXPECTED = {"float_type": "a decimal", "int_type": "an integer", "string_type": "a string", "bool_type": "a boolean"}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return invalid("We could not parse the JSON body of your request.", None, "invalid_json")
    field = loc[1] if len(loc) > 1 and loc[0] == "body" else (loc[-1] if loc else None)
    if kind == "missing":
        return invalid(f"Missing required parameter: '{field}'.", field, "missing_required_parameter")
    if loc == ["body"]:
        return invalid("The request body must be a JSON object.", None, "invalid_json")
    if kind in _EXPECTED:
        got = _json_type(first.get("input"))
        return invalid(
            f"Invalid type for '{field}': expected {_EXPECTED[kind]}, but got {got} instead.", field, "invalid_type"
        )
    message = str(first.get("msg", "Invalid value"))
    return invalid(f"Invalid value for '{field}': {message}.", field)


async def _on_openai_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenAIError)
    return exc.response()


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _validation_error(exc).response()


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return OpenAIError(exc.status_code, str(exc.detail), code=code, headers=exc.headers).response()


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    # The same input would fail again: tell the openai client not to retry it.
    return OpenAIError(
        500,
        "The server had an error processing your request.",
        type_="server_error",
        code="internal_error",
        headers={"x-should-retry": "false"},
    ).response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenAIError, _on_openai_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


class BodyLimitMiddleware:
    """Reject request bodies over `max_bytes` with 413, whether or not Content-Length is sent.

    The body is buffered (it is small by construction) and replayed to the application, after
    which `receive` is handed back so the application still learns about client disconnects.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = OpenAIError(
            413,
            f"Request body exceeds {self.max_bytes} bytes.",
            code="request_too_large",
            headers={"connection": "close"},
        )
        await error.response()(scope, receive, send)


def sse_error_event(error: OpenAIError) -> bytes:
    return b"event: error\ndata: " + json.dumps({"type": "error", **error.body()}).encode() + b"\n\n"
