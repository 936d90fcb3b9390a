"""Fixtures: servers on loopback (espeak-ng or a fake engine) and an in-process client."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from magpie_tts.config import Settings
from magpie_tts.dependencies import get_engine
from magpie_tts.main import create_app
from tts_support import FakeEngine, LiveServer, piper_installed, serve, serve_process, wait_ready


@pytest.fixture(scope="session")
def espeak_server() -> Iterator[LiveServer]:
    yield from serve(create_app(Settings(engine="espeak")))


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, FakeEngine]]:
    """A server whose engine is a FakeEngine; parametrise with (delay, max_active, max_queued)."""
    delay, max_active, max_queued = getattr(request, "param", (0.0, 8, 16))
    engine = FakeEngine(delay)
    app = create_app(
        Settings(engine="espeak", max_active_streams=max_active, max_queued_streams=max_queued, prefetch_chunks=0)
    )
    app.dependency_overrides[get_engine] = lambda: engine
    for live in serve(app):
        yield live, engine


@pytest.fixture
def espeak_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(engine="espeak"))) as client:
        wait_ready(lambda path: client.get(path).status_code)
        yield client


@pytest.fixture(scope="session")
def espeak_process() -> Iterator[str]:
    """The service in its own process, for tests that must not share an interpreter with it."""
    yield from serve_process({"MAGPIE_TTS_ENGINE": "espeak"})


@pytest.fixture(scope="session")
def piper_client() -> Iterator[TestClient]:
    """The service with the piper engine, in-process (one worker: loading the voice takes seconds)."""
    if not piper_installed():
        pytest.skip("the 'piper' extra is not installed")
    with TestClient(create_app(Settings(engine="piper", piper_processes=1))) as client:
        wait_ready(lambda path: client.get(path).status_code, timeout=60)
        yield client
