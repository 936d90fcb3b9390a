"""From sentence chunks to encoded bytes: the per-request streaming pipeline."""

import asyncio
import base64
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .admission import Ticket
from .audio import AudioPipeline, ResponseFormat
from .engines import EngineAudio, EngineError, SpeechEngine
from .errors import sse_error_event, synthesis_failed
from .metrics import ServiceMetrics

# Magpie's codec emits 21.5 frames per second of audio; those frames are the model's output
# tokens, so SSE usage reports them (input tokens are characters, which is how TTS is metered).
CODEC_FRAMES_PER_SECOND = 21.5


# The first chunk is converted in two parts so that its opening leaves before the whole sentence
# has been resampled and encoded.
FIRST_PART_SECONDS = 0.2
# What a request gets when none of its sentences produced audio (all punctuation, say): a
# playable file rather than an error or an empty body.
SILENCE_SECONDS = 0.25


def _head_and_rest(audio: EngineAudio) -> tuple[npt.NDArray[np.int16], ...]:
    head = int(audio.sample_rate * FIRST_PART_SECONDS)
    if len(audio.samples) <= 2 * head:
        return (audio.samples,)
    return audio.samples[:head], audio.samples[head:]


@dataclass(frozen=True)
class SpeechJob:
    chunks: tuple[str, ...]
    speaker: str
    language: str
    speed: float
    format: ResponseFormat
    input_chars: int
    request_id: str


class SpeechStream:
    """Synthesises a job chunk by chunk, `prefetch` chunks ahead, and yields encoded audio.

    Cancelling the consumer (client disconnect) cancels the outstanding engine calls and frees
    the admission slot.
    """

    def __init__(
        self, engine: SpeechEngine, job: SpeechJob, ticket: Ticket, metrics: ServiceMetrics, prefetch: int
    ) -> None:
        self._engine = engine
        self._job = job
        self._ticket = ticket
        self._metrics = metrics
        self._prefetch = prefetch
        self.pipeline = AudioPipeline(job.format, job.speed, time.perf_counter)
        self.engine_seconds = 0.0

    async def _timed(self, text: str) -> tuple[EngineAudio, float]:
        started = time.perf_counter()
        audio = await self._engine.synthesize(
            text, speaker=self._job.speaker, language=self._job.language, speed=self._job.speed
        )
        return audio, time.perf_counter() - started

    async def audio(self) -> AsyncIterator[bytes]:
        job = self._job
        pending: deque[asyncio.Task[tuple[EngineAudio, float]]] = deque()
        remaining = iter(job.chunks)

        def top_up(in_flight: int) -> None:
            while len(pending) < in_flight:
                text = next(remaining, None)
                if text is None:
                    return
                pending.append(asyncio.create_task(self._timed(text)))

        try:
            await self._ticket.acquire()
            first = True
            while True:
                top_up(1)
                if not pending:
                    break
                audio, spent = await pending.popleft()
                self.engine_seconds += spent
                # The first chunk runs alone until its opening has gone out: on a CPU engine a chunk
                # synthesised beside it would slow it down, and time to first byte matters more than
                # throughput. From then on the next chunks overlap with encoding and sending, so a client
                # that reads slowly never holds up synthesis.
                if not first:
                    top_up(self._prefetch)
                for samples in _head_and_rest(audio) if first else (audio.samples,):
                    # Resampling and encoding run off the event loop so health probes stay instant.
                    data = await asyncio.to_thread(self.pipeline.feed, samples, audio.sample_rate, audio.speed_applied)
                    if data:
                        yield data
                    if first:
                        first = False
                        top_up(max(self._prefetch, 1))
            if self.pipeline.output_samples == 0:
                yield await asyncio.to_thread(self.pipeline.silence, SILENCE_SECONDS)
            tail = await asyncio.to_thread(self.pipeline.finish)
            if tail:
                yield tail
            self._record()
        finally:
            for task in pending:
                task.cancel()
            self._ticket.release()

    def _record(self) -> None:
        metrics, seconds = self._metrics, self.pipeline.output_seconds
        metrics.audio_seconds.labels(metrics.engine).inc(seconds)
        metrics.encode_seconds.labels(self._job.format).inc(self.pipeline.encode_seconds)
        if seconds > 0:
            metrics.rtf.labels(metrics.engine).observe(self.engine_seconds / seconds)

    def usage(self) -> dict[str, int]:
        output_tokens = round(self.pipeline.output_seconds * CODEC_FRAMES_PER_SECOND)
        return {
            "input_tokens": self._job.input_chars,
            "output_tokens": output_tokens,
            "total_tokens": self._job.input_chars + output_tokens,
        }

    async def sse(self) -> AsyncIterator[bytes]:
        try:
            async for data in self.audio():
                event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
                yield b"data: " + json.dumps(event).encode() + b"\n\n"
        except EngineError as exc:
            yield sse_error_event(synthesis_failed(self._job.request_id, exc))
            return
        done = {"type": "speech.audio.done", "usage": self.usage()}
        yield b"data: " + json.dumps(done).encode() + b"\n\n"
