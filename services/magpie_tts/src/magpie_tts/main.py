"""Application factory."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__
from .admission import Admission
from .config import Settings
from .dependencies import get_settings
from .engines import SpeechEngine, build_engine
from .errors import BodyLimitMiddleware, install_error_handlers
from .metrics import ServiceMetrics, SpeechMetricsMiddleware
from .routers import health, models, speech

log = logging.getLogger(__name__)


async def _load(app: FastAPI, engine: SpeechEngine) -> None:
    started = time.perf_counter()
    try:
        await engine.start()
    except Exception as exc:
        log.exception("the %s engine failed to load", engine.name)
        app.state.engine_error = f"{type(exc).__name__}: {exc}"
        return
    log.info("the %s engine is ready after %.1f s", engine.name, time.perf_counter() - started)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    engine = build_engine(settings, metrics.observe_batch)
    admission = Admission(settings.max_active_streams, settings.max_queued_streams, settings.retry_after_seconds)
    app.state.engine = engine
    app.state.admission = admission
    metrics.watch(
        streams_waiting=lambda: admission.waiting,
        chunks_waiting=engine.pending,
        inflight=lambda: admission.active,
        ready=lambda: float(engine.ready),
    )
    # Loading Magpie takes minutes; it runs in the background so that /health answers from the
    # first second and /ready tells the truth while it happens.
    loader = asyncio.create_task(_load(app, engine), name="engine-load")
    try:
        yield
    finally:
        loader.cancel()
        await engine.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Magpie TTS",
        version=__version__,
        summary="OpenAI-compatible text-to-speech (/v1/audio/speech) on NVIDIA Magpie TTS.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics(settings.engine)
    app.state.engine_error = None
    app.state.started = int(time.time())
    app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    app.add_middleware(SpeechMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(speech.router)
    app.include_router(models.router)
    app.include_router(health.router)
    return app
