"""Sentences with no words (`...`, `?!`, `)`) and engine failures: audio or a clean error, per engine."""

import base64
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from magpie_tts.config import Settings
from magpie_tts.dependencies import get_engine
from magpie_tts.engines import EngineAudio, EngineError
from magpie_tts.main import create_app
from tts_support import FakeEngine, decode

REAL = "This sentence has real words in it."
ARABIC_INDIC_THREE = "\u0663"
# Punctuation and symbols of every Unicode class, the way text from a model or a web page has them.
SYMBOLS = st.characters(categories=["Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"])
# At least 12 characters, so that the sentence is not merged into a neighbour and reaches the engine
# on its own (spaces make it several sentences, which the splitter must also survive).
LONE_SENTENCE = st.text(alphabet=SYMBOLS | st.just(" "), min_size=12, max_size=30).filter(str.strip)


@pytest.fixture(params=["espeak", "piper"])
def engine_client(request: pytest.FixtureRequest, espeak_client: TestClient) -> TestClient:
    if request.param == "piper":
        return request.getfixturevalue("piper_client")
    return espeak_client


def speak(client: TestClient, text: str, **extra: str) -> tuple[int, dict[str, str], bytes]:
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav", **extra}
    response = client.post("/v1/audio/speech", json=body)
    return response.status_code, dict(response.headers), response.content


def sse_events(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line[len(b"data: ") :]) for line in data.split(b"\n") if line.startswith(b"data: ")]


def test_speakable() -> None:
    from magpie_tts.text import speakable  # noqa: PLC0415 - the rest of the module runs without it

    assert not any(speakable(text) for text in ("...", "?!", ")", "- * -", "\u201c\u201d", "\u2022"))
    assert all(speakable(text) for text in ("a", "3", "\u0663", "\u00e9t\u00e9", "\u4f60"))


@pytest.mark.parametrize("text", ["...", "?!", ")", "\u2022", "\u2014 \u2014"])
def test_a_sentence_without_words_is_a_short_silence(engine_client: TestClient, text: str) -> None:
    status, _, body = speak(engine_client, text)
    assert status == 200, body[:300]
    assert 0.2 < decode(body, "wav").seconds < 0.4


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_a_sentence_without_words_inside_a_text_is_skipped(engine_client: TestClient, stream_format: str) -> None:
    alone = speak(engine_client, f"{REAL} {REAL}", response_format="pcm")[2]
    status, _, body = speak(
        engine_client, f"{REAL} (...) (...) (...) {REAL}", response_format="pcm", stream_format=stream_format
    )
    assert status == 200
    if stream_format == "sse":
        events = sse_events(body)
        assert events[-1]["type"] == "speech.audio.done"
        body = b"".join(base64.b64decode(str(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
    # piper's durations vary from call to call by a few per cent; a cut-short stream loses half.
    assert decode(body, "pcm").seconds == pytest.approx(decode(alone, "pcm").seconds, rel=0.15)


def test_piper_line_without_audio_is_silence(piper_client: TestClient) -> None:
    # An Arabic-Indic digit is a "word" to the service, but piper's English voice has no sound for it.
    status, _, body = speak(piper_client, f"{REAL} {ARABIC_INDIC_THREE * 12} {REAL}", response_format="pcm")
    assert status == 200
    assert decode(body, "pcm").seconds > 3.0
    assert speak(piper_client, REAL)[0] == 200


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(symbols=LONE_SENTENCE, alone=st.booleans(), stream_format=st.sampled_from(["audio", "sse"]))
def test_fuzz_symbol_sentences(engine_client: TestClient, symbols: str, alone: bool, stream_format: str) -> None:
    text = symbols if alone else f"{REAL} {symbols} {REAL}"
    status, _, body = speak(engine_client, text, stream_format=stream_format)
    assert status in {200, 400}, body[:300]
    if status == 400:
        # Only when cleaning leaves nothing at all (the input was emoji and the like).
        assert json.loads(body)["error"]["code"] == "empty_input"
    elif stream_format == "sse":
        assert sse_events(body)[-1]["type"] == "speech.audio.done"
    else:
        assert decode(body, "wav").seconds > (0.2 if alone else 3.0)


class FailingEngine(FakeEngine):
    """Fails like a crashed engine process: a traceback with server paths in the message."""

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        if "fail" in text:
            raise EngineError('Traceback (most recent call last): File "/srv/engine/secret.py", line 1, in run')
        return await super().synthesize(text, speaker=speaker, language=language, speed=speed)


@pytest.fixture
def failing_client() -> Iterator[TestClient]:
    app = create_app(Settings(engine="espeak"))
    engine = FailingEngine()
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as client:
        yield client


def test_engine_failure_shows_a_request_id_not_the_engine_message(
    failing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        status, headers, body = speak(failing_client, "This one will fail.")
        sse_status, _, sse_body = speak(failing_client, f"{REAL} This one will fail.", stream_format="sse")
    assert status == 500
    error = json.loads(body)["error"]
    request_id = headers["x-request-id"]
    assert (error["code"], headers["x-should-retry"]) == ("synthesis_failed", "false")
    assert request_id in error["message"]
    assert sse_status == 200
    sse_error = json.loads(sse_body.split(b"event: error\ndata: ")[1])["error"]
    assert sse_error["code"] == "synthesis_failed"
    for message in (error["message"], sse_error["message"]):
        assert "Traceback" not in message
        assert "/srv" not in message
    # The detail is in the log, under the id the client was given.
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
    assert "secret.py" in str(logged[0].exc_info[1])
