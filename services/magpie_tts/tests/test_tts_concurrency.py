"""Parallel streams, cancellation on disconnect, overload and liveness under load."""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from magpie_tts.config import Settings
from magpie_tts.dependencies import get_engine
from magpie_tts.main import create_app
from tts_support import FakeEngine, LiveServer, decode, wait_ready

SENTENCES = " ".join(f"This is sentence number {i} of a longer passage." for i in range(1, 6))


def _stream(api_url: str, text: str, fmt: str = "mp3") -> bytes:
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="aria", input=text, response_format=fmt
    ) as response:
        return b"".join(response.iter_bytes())


def test_eight_parallel_streams_complete(espeak_server: LiveServer) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _stream(espeak_server.api_url, SENTENCES), range(8)))
    durations = [decode(data, "mp3").seconds for data in results]
    assert len(durations) == 8
    # Same text, same voice: every stream carries the whole passage.
    assert max(durations) - min(durations) < 0.05
    assert min(durations) > 10


@pytest.mark.parametrize("fake_server", [(0.2, 1, 0)], indirect=True)
def test_dropped_client_frees_its_slot_and_cancels_work(fake_server: tuple[LiveServer, FakeEngine]) -> None:
    server, engine = fake_server
    text = " ".join(f"Sentence {i} is long enough to be its own chunk." for i in range(20))
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{server.api_url}/audio/speech",
            json={"model": "tts-1", "voice": "leo", "input": text, "response_format": "pcm"},
        ) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())
        # The second sentence starts once the first one's opening has gone out; drop the client while it runs.
        started = time.monotonic()
        while engine.started < 2 and time.monotonic() - started < 5:
            time.sleep(0.005)
        assert engine.started == 2
    # The only slot was held by the dropped stream; a new request must get it, not a 429.
    deadline = time.monotonic() + 5
    while True:
        retry = httpx.post(
            f"{server.api_url}/audio/speech",
            json={"model": "tts-1", "voice": "leo", "input": "Short one, after the drop.", "response_format": "pcm"},
            timeout=10,
        )
        if retry.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert retry.status_code == 200
    assert engine.cancelled >= 1
    assert engine.completed < 20


@pytest.mark.parametrize("fake_server", [(0.3, 1, 0)], indirect=True)
def test_overload_is_429_with_retry_after(fake_server: tuple[LiveServer, FakeEngine]) -> None:
    server, _ = fake_server
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST",
            f"{server.api_url}/audio/speech",
            json={"model": "tts-1", "voice": "leo", "input": SENTENCES, "response_format": "pcm"},
        ) as busy,
    ):
        # Keep the iterator referenced: dropping it closes the response, which frees the slot.
        held = busy.iter_raw()
        next(held)
        client = openai.OpenAI(base_url=server.api_url, api_key="unused", max_retries=0)
        with pytest.raises(openai.RateLimitError) as caught:
            client.audio.speech.create(model="tts-1", voice="aria", input="One more.")
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "server_overloaded"


@pytest.mark.parametrize("fake_server", [(0.3, 1, 1)], indirect=True)
def test_queued_request_waits_for_a_slot(fake_server: tuple[LiveServer, FakeEngine]) -> None:
    server, _ = fake_server
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_stream, server.api_url, "First request, holding the slot.", "wav")
        time.sleep(0.1)
        second = pool.submit(_stream, server.api_url, "Second request, queued.", "wav")
        assert decode(first.result(), "wav").seconds > 1
        assert decode(second.result(), "wav").seconds > 1


def test_health_stays_fast_while_the_engine_is_saturated(espeak_server: LiveServer) -> None:
    long_text = " ".join([SENTENCES] * 6)
    probes: list[float] = []
    inflight_seen = 0.0
    with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=espeak_server.base_url) as probe:
        streams = [pool.submit(_stream, espeak_server.api_url, long_text, "opus") for _ in range(8)]
        time.sleep(0.3)
        for _ in range(15):
            started = time.perf_counter()
            assert probe.get("/health").status_code == 200
            probes.append(time.perf_counter() - started)
            metrics = probe.get("/metrics").text
            inflight = next(line for line in metrics.splitlines() if line.startswith("tts_inflight_requests "))
            inflight_seen = max(inflight_seen, float(inflight.split()[1]))
            time.sleep(0.02)
        for stream in streams:
            assert decode(stream.result(), "opus").seconds > 30
    assert inflight_seen >= 4, "the engine was not saturated while probing"
    assert statistics.median(probes) < 0.050


def test_not_ready_is_503_with_retry_after() -> None:
    class Loading(FakeEngine):
        @property
        def ready(self) -> bool:
            return False

    app = create_app(Settings(engine="espeak"))
    app.dependency_overrides[get_engine] = Loading
    with TestClient(app) as http:
        assert http.get("/ready").status_code == 503
        assert http.get("/health").status_code == 200
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0, http_client=http)
        with pytest.raises(openai.InternalServerError) as caught:
            client.audio.speech.create(model="tts-1", voice="aria", input="Hello.")
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "1"


def test_failed_engine_load_fails_liveness() -> None:
    app = create_app(Settings(engine="espeak", espeak_executable="no-such-espeak"))
    with TestClient(app) as http:
        deadline = time.monotonic() + 5
        while http.get("/health").status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        health = http.get("/health").json()
        assert health["status"] == "failed"
        assert "no-such-espeak" in health["detail"]
        assert http.get("/ready").json()["status"] == "failed"


def test_testclient_with_overridden_engine() -> None:
    app = create_app(Settings(engine="espeak"))
    engine = FakeEngine()
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as http:
        wait_ready(lambda path: http.get(path).status_code)
        response = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "aria", "input": "Twelve chars"})
        assert response.status_code == 200
        assert decode(response.content, "mp3").seconds == pytest.approx(12 * 0.06, abs=0.1)
        assert engine.completed == 1
