"""`POST /v1/audio/speech`, as OpenAI defines it, streamed sentence by sentence."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ..audio import CONTENT_TYPES, OUTPUT_RATE
from ..dependencies import AdmissionDep, EngineDep, MetricsDep, SettingsDep
from ..engines import EngineError
from ..errors import OpenAIError, invalid, synthesis_failed
from ..schemas import SpeechRequest
from ..synthesis import SpeechJob, SpeechStream
from ..text import clean_text, speakable, split_chunks
from ..voices import resolve_language, resolve_voice

router = APIRouter(tags=["speech"])

_ERROR = {"description": "OpenAI error object", "content": {"application/json": {}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Audio in the requested format, or an SSE stream when stream_format is sse.",
        "content": {media: {} for media in {*CONTENT_TYPES.values(), "text/event-stream"}},
    },
    400: _ERROR,
    404: _ERROR,
    413: _ERROR,
    429: _ERROR,
    500: _ERROR,
    503: _ERROR,
}


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _first(chunks: AsyncIterator[bytes], request: Request) -> bytes | None:
    """Wait for the first chunk, or return None if the client leaves first.

    Waiting here, before the status line goes out, lets a failure on the first sentence become a
    proper error response, and lets a client that gives up while queued free its place.
    """
    first = asyncio.ensure_future(anext(chunks))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({first, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not first.done():
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
    if first.cancelled():
        return None
    try:
        return first.result()
    except StopAsyncIteration:
        return b""


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


@router.post("/v1/audio/speech", response_class=StreamingResponse, responses=_RESPONSES)
async def create_speech(
    body: SpeechRequest,
    *,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    admission: AdmissionDep,
    metrics: MetricsDep,
) -> Response:
    request.state.tts_format = body.response_format
    request.state.tts_stream_format = body.stream_format
    if body.model != settings.model_id and body.model not in settings.model_aliases:
        raise OpenAIError(404, f"The model '{body.model}' does not exist.", param="model", code="model_not_found")
    voice_name = body.voice if isinstance(body.voice, str) else body.voice.id
    speaker, implied_language = resolve_voice(voice_name, engine.speakers)
    language = resolve_language(body.language, implied_language, settings.default_language, engine.languages)
    text = clean_text(body.input)
    if not text:
        raise invalid("The input contains no speakable text.", "input", "empty_input")
    if not engine.ready:
        raise OpenAIError(
            503,
            "The speech engine is still loading.",
            type_="server_error",
            code="engine_not_ready",
            headers={"retry-after": str(settings.retry_after_seconds)},
        )
    request_id = f"req_{uuid.uuid4().hex}"
    job = SpeechJob(
        chunks=tuple(chunk for chunk in split_chunks(text, engine.max_chunk_chars(language)) if speakable(chunk)),
        speaker=speaker.id,
        language=language,
        speed=body.speed,
        format=body.response_format,
        input_chars=len(body.input),
        request_id=request_id,
    )
    ticket = admission.reserve()
    stream = SpeechStream(engine, job, ticket, metrics, settings.prefetch_chunks)
    chunks = stream.sse() if body.stream_format == "sse" else stream.audio()
    try:
        first = await _first(chunks, request)
    except EngineError as exc:
        raise synthesis_failed(request_id, exc) from exc
    if first is None:
        return Response(status_code=499)
    media_type = "text/event-stream" if body.stream_format == "sse" else CONTENT_TYPES[body.response_format]
    headers = {
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        "x-sample-rate": str(OUTPUT_RATE),
        "x-audio-format": body.response_format,
        "x-speech-language": language,
        "x-speech-voice": speaker.id,
        "x-request-id": request_id,
    }
    body_iterator = _chain(first, chunks)

    async def cleanup() -> None:
        # Runs after the response, including after a disconnect, when the generators may still be
        # suspended: closing them now cancels outstanding engine work instead of leaving it to GC.
        await body_iterator.aclose()
        await chunks.aclose()
        ticket.release()

    return StreamingResponse(body_iterator, media_type=media_type, headers=headers, background=BackgroundTask(cleanup))
