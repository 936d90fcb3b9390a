"""The official openai client against the service on loopback (espeak-ng engine)."""

import asyncio
import base64
import functools
import json

import httpx
import openai
import pytest
from magpie_tts.audio import OUTPUT_RATE
from magpie_tts.engines.espeak import EspeakEngine
from magpie_tts.text import clean_text, split_chunks
from tts_support import LiveServer, decode

TEXT = "The quick brown fox jumps over the lazy dog. It was a bright, cold day in April. Nothing happened."
CODECS = {
    "mp3": {"mp3", "mp3float"},
    "opus": {"opus", "libopus"},
    "aac": {"aac"},
    "flac": {"flac"},
    "wav": {"pcm_s16le"},
    "pcm": {"pcm_s16le"},
}


@functools.cache
def reference_seconds(text: str, speaker: str = "aria", language: str = "en") -> float:
    """What espeak-ng produces for the same chunks when called directly."""

    async def run() -> float:
        engine = EspeakEngine("espeak-ng", 1, lambda _: None)
        chunks = split_chunks(clean_text(text), engine.max_chunk_chars(language))
        total = 0.0
        for chunk in chunks:
            audio = await engine.synthesize(chunk, speaker=speaker, language=language, speed=1.0)
            total += audio.seconds
        return total

    return asyncio.run(run())


@pytest.fixture(scope="module")
def client(espeak_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=espeak_server.api_url, api_key="unused", max_retries=0)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format_decodes_at_24khz_with_the_right_duration(client: openai.OpenAI, fmt: str) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format=fmt)
    decoded = decode(response.content, fmt)
    assert decoded.codec in CODECS[fmt]
    assert decoded.sample_rate == OUTPUT_RATE
    # Encoders add up to a few frames of priming/padding; the speech itself must all be there.
    assert decoded.seconds == pytest.approx(reference_seconds(TEXT), abs=0.12)


def test_default_format_is_mp3(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1", voice="nova", input="Hello there, world.")
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert decode(response.content, "mp3").codec in CODECS["mp3"]


def test_streaming_response_arrives_in_pieces_and_wav_header_is_open_ended(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="echo", input=TEXT, response_format="wav"
    ) as response:
        assert response.headers["x-sample-rate"] == str(OUTPUT_RATE)
        pieces = list(response.iter_bytes())
    data = b"".join(pieces)
    assert len([p for p in pieces if p]) >= 2
    assert data[4:8] == b"\xff\xff\xff\xff"
    assert data[40:44] == b"\xff\xff\xff\xff"
    assert decode(data, "wav").seconds == pytest.approx(reference_seconds(TEXT, "jason"), abs=0.05)


def test_sse_stream_has_deltas_then_done_with_usage(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="sage", input=TEXT, response_format="mp3", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "speech.audio.done"
    assert set(kinds[:-1]) == {"speech.audio.delta"}
    assert len(kinds) >= 3
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    assert decode(audio, "mp3").seconds == pytest.approx(reference_seconds(TEXT), abs=0.12)
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(TEXT)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > len(TEXT)


def test_speed_changes_duration(client: openai.OpenAI) -> None:
    normal = decode(
        client.audio.speech.create(model="tts-1", voice="onyx", input=TEXT, response_format="pcm").content, "pcm"
    )
    for speed in (0.25, 2.0, 4.0):
        fast = client.audio.speech.create(model="tts-1", voice="onyx", input=TEXT, response_format="pcm", speed=speed)
        assert decode(fast.content, "pcm").seconds == pytest.approx(normal.seconds / speed, rel=0.15)


def test_voice_object_language_and_nim_names(client: openai.OpenAI) -> None:
    by_object = client.audio.speech.create(
        model="tts-1", voice={"id": "Sofia"}, input="Hola, ¿qué tal?", extra_body={"language": "es-ES"}
    )
    assert by_object.response.headers["x-speech-language"] == "es"
    assert by_object.response.headers["x-speech-voice"] == "sofia"
    nim = client.audio.speech.create(model="tts-1", voice="Magpie-Multilingual.DE-DE.Leo", input="Guten Tag.")
    assert nim.response.headers["x-speech-language"] == "de"
    chinese = client.audio.speech.create(
        model="tts-1", voice="aria", input="你好\uff0c世界。", extra_body={"language": "zh"}
    )
    assert decode(chinese.content, "mp3").seconds > 0.3


def test_instructions_are_accepted(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="coral", input="Hello.", instructions="Speak cheerfully.", response_format="wav"
    )
    assert decode(response.content, "wav").seconds > 0.2


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": "   \n "}, "input"),
        ({"input": "😀😀"}, "input"),
        ({"input": "a" * 4097}, "input"),
        ({"voice": "nobody"}, "voice"),
        ({"voice": {"name": "aria"}}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"speed": 0.1}, "speed"),
        ({"speed": 4.5}, "speed"),
        ({"stream_format": "websocket"}, "stream_format"),
        ({"extra_body": {"language": "klingon"}}, "language"),
    ],
)
def test_bad_input_is_400_in_openai_shape(client: openai.OpenAI, kwargs: dict[str, object], param: str) -> None:
    arguments: dict[str, object] = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(**arguments)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == param
    assert isinstance(error.body, dict)
    assert set(error.body) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(("speed", "got"), [(True, "a boolean"), ("2", "a string"), (None, "null"), ([2], "an array")])
def test_speed_must_be_a_number(client: openai.OpenAI, speed: object, got: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", extra_body={"speed": speed})
    error = caught.value
    assert (error.type, error.param, error.code) == ("invalid_request_error", "speed", "invalid_type")
    assert isinstance(error.body, dict)
    assert error.body["message"] == f"Invalid type for 'speed': expected a decimal, but got {got} instead."


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.speech.create(model="whisper-1", voice="alloy", input="Hello.")
    assert caught.value.code == "model_not_found"


def test_body_too_large_is_413(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", extra_body={"padding": "x" * 70_000})
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


def test_malformed_json_and_chunked_oversized_body(espeak_server: LiveServer) -> None:
    url = f"{espeak_server.api_url}/audio/speech"
    malformed = httpx.post(url, content=b'{"model": "tts-1", "input": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_json"
    not_an_object = httpx.post(url, json=["tts-1"])
    assert not_an_object.status_code == 400
    assert set(not_an_object.json()["error"]) == {"message", "type", "param", "code"}

    def body() -> object:
        for _ in range(100):
            yield b"x" * 1024

    chunked = httpx.post(url, content=body(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_unknown_route_and_method_use_openai_shape(espeak_server: LiveServer) -> None:
    missing = httpx.get(f"{espeak_server.api_url}/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    wrong_method = httpx.get(f"{espeak_server.api_url}/audio/speech")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()


def test_models_voices_and_probes(client: openai.OpenAI, espeak_server: LiveServer) -> None:
    assert [model.id for model in client.models.list()] == ["magpie-tts-multilingual"]
    assert client.models.retrieve("tts-1").id == "tts-1"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    voices = httpx.get(f"{espeak_server.api_url}/audio/voices").json()["voices"]
    assert {voice["id"] for voice in voices} == {"john", "sofia", "aria", "jason", "leo"}
    assert "alloy" in next(voice for voice in voices if voice["id"] == "aria")["aliases"]
    assert httpx.get(f"{espeak_server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{espeak_server.base_url}/ready").json()["engine"] == "espeak"
    metrics = httpx.get(f"{espeak_server.base_url}/metrics").text
    for name in (
        "tts_requests_total",
        "tts_request_duration_seconds",
        "tts_time_to_first_byte_seconds",
        "tts_real_time_factor",
        "tts_audio_seconds_total",
        "tts_queue_depth",
        "tts_inflight_requests",
        "tts_batch_size",
    ):
        assert name in metrics
    assert 'tts_requests_total{engine="espeak",format="mp3",status="200",stream_format="audio"}' in metrics
