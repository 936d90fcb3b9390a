"""Prometheus metrics, one registry per application instance."""

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPEECH_PATH = "/v1/audio/speech"
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
_RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class ServiceMetrics:
    def __init__(self, engine: str) -> None:
        self.registry = CollectorRegistry()
        self.engine = engine
        self.requests = Counter(
            "tts_requests",
            "Speech requests by outcome.",
            ["engine", "format", "stream_format", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tts_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ["engine"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttfb = Histogram(
            "tts_time_to_first_byte_seconds",
            "Time from request to the first byte of the response body.",
            ["engine"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rtf = Histogram(
            "tts_real_time_factor",
            "Engine synthesis time divided by the duration of the audio produced, per request.",
            ["engine"],
            buckets=_RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "tts_audio_seconds", "Seconds of audio delivered.", ["engine"], registry=self.registry
        )
        self.encode_seconds = Counter(
            "tts_encode_seconds", "Time spent resampling and encoding.", ["format"], registry=self.registry
        )
        self.batch_size = Histogram(
            "tts_batch_size",
            "Chunks per engine call.",
            ["engine"],
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tts_queue_depth",
            "Work waiting: streams for a slot, chunks for the engine.",
            ["stage"],
            registry=self.registry,
        )
        self.inflight = Gauge("tts_inflight_requests", "Streams being synthesised.", registry=self.registry)
        self.ready = Gauge("tts_engine_ready", "1 once the engine is loaded and warmed.", registry=self.registry)

    def observe_batch(self, size: int) -> None:
        self.batch_size.labels(self.engine).observe(size)

    def watch(
        self,
        streams_waiting: Callable[[], float],
        chunks_waiting: Callable[[], float],
        inflight: Callable[[], float],
        ready: Callable[[], float],
    ) -> None:
        self.queue_depth.labels("admission").set_function(streams_waiting)
        self.queue_depth.labels("engine").set_function(chunks_waiting)
        self.inflight.set_function(inflight)
        self.ready.set_function(ready)


class SpeechMetricsMiddleware:
    """Counts every speech response (errors included) and times its first and last body bytes."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SPEECH_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first_byte = False
        metrics = self.metrics

        async def timed_send(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and message.get("body") and not first_byte:
                first_byte = True
                metrics.ttfb.labels(metrics.engine).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            state = scope.get("state", {})
            metrics.requests.labels(
                metrics.engine,
                state.get("tts_format", "unknown"),
                state.get("tts_stream_format", "unknown"),
                str(status) if first_byte or status != 200 else "cancelled",
            ).inc()
            if status == 200:
                metrics.latency.labels(metrics.engine).observe(time.perf_counter() - started)
