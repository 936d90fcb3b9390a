"""The magpie engine against a stand-in with NeMo's `MagpieTTSModel` method signatures."""

import asyncio
import json
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from magpie_tts.config import Settings
from magpie_tts.dependencies import get_engine
from magpie_tts.engines.base import EngineError
from magpie_tts.engines.magpie import MagpieEngine, MagpieRuntime, read_revision, read_speaker_map
from magpie_tts.main import create_app
from tts_support import decode

RATE = 22_050
PAD = 1_000  # stand-in outputs carry padding past the valid length, as NeMo's do
SPEAKERS = ["John", "Sofia", "Aria", "Jason", "Leo"]


@dataclass
class InferBatchOutput:
    predicted_audio: np.ndarray
    predicted_audio_lens: np.ndarray


class StandInModel:
    """Same call signatures as nemo_toolkit 3.0.0; audio length encodes the text length."""

    output_sample_rate = RATE
    num_baked_speakers = len(SPEAKERS)

    def __init__(self) -> None:
        self.do_tts_calls: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    @staticmethod
    def samples_for(length: int) -> int:
        return length * 100

    def do_tts(
        self,
        transcript: str,
        language: str = "en",
        apply_TN: bool = False,
        use_cfg: bool = True,
        speaker_index: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("CUDA error: out of memory")
        self.do_tts_calls.append(
            {
                "text": transcript,
                "language": language,
                "apply_TN": apply_TN,
                "use_cfg": use_cfg,
                "speaker": speaker_index,
            }
        )
        n = self.samples_for(len(transcript))
        audio = np.full((1, n + PAD), 0.25, dtype=np.float32)
        audio[0, n:] = 0.9  # garbage past the valid length must be trimmed
        return audio, np.array([n])

    def infer_batch(
        self, batch: dict[str, Any], use_cfg: bool = False, use_local_transformer_for_inference: bool = False
    ) -> InferBatchOutput:
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        self.batches.append({**batch, "use_cfg": use_cfg, "lt": use_local_transformer_for_inference})
        lens = np.array([self.samples_for(int(n)) for n in batch["text_lens"]])
        audio = np.full((len(lens), int(lens.max()) + PAD), 0.9, dtype=np.float32)
        for row, n in enumerate(lens):
            audio[row, :n] = 0.5
        return InferBatchOutput(audio, lens)


def stand_in_runtime(model: StandInModel, normalize: Any = None) -> MagpieRuntime:
    from magpie_tts.engines.base import Speaker  # noqa: PLC0415

    return MagpieRuntime(
        model=model,
        speakers=tuple(Speaker(name.lower(), name, "unknown") for name in SPEAKERS),
        revision="test-revision",
        tokenize=lambda text, language: [*(ord(c) % 100 for c in text), 99],
        pad_id=0,
        to_model=lambda array: array,
        to_numpy=lambda value: np.asarray(value, dtype=np.float32),
        inference_mode=nullcontext,
        normalize=normalize,
    )


def make_engine(model: StandInModel) -> MagpieEngine:
    settings = Settings(engine="magpie", magpie_batch_window_ms=30)
    return MagpieEngine(settings, lambda size: None, loader=lambda _: stand_in_runtime(model))


def test_single_chunk_uses_do_tts_and_trims_to_audio_len() -> None:
    model = StandInModel()

    async def run() -> None:
        engine = make_engine(model)
        await engine.start()
        model.do_tts_calls.clear()
        audio = await engine.synthesize("Hello there.", speaker="aria", language="de", speed=1.0)
        await engine.close()
        assert audio.sample_rate == RATE
        assert len(audio.samples) == model.samples_for(len("Hello there."))
        assert int(audio.samples.max()) == int(0.25 * 32767)
        assert model.do_tts_calls == [
            {"text": "Hello there.", "language": "de", "apply_TN": False, "use_cfg": True, "speaker": 2}
        ]

    asyncio.run(run())
    assert model.threads == {"magpie-gpu_0"}


def test_concurrent_chunks_are_micro_batched_with_per_item_speakers() -> None:
    model = StandInModel()

    async def run() -> None:
        engine = make_engine(model)
        await engine.start()
        model.batches.clear()
        texts = [("One sentence here.", "john"), ("Another, longer sentence.", "leo"), ("Third.", "sofia")]
        results = await asyncio.gather(*(engine.synthesize(t, speaker=s, language="en", speed=1.0) for t, s in texts))
        await engine.close()
        assert len(model.batches) == 1
        batch = model.batches[0]
        lengths = [len(t) + 1 for t, _ in texts]
        assert list(batch["text_lens"]) == lengths
        assert batch["text"].shape == (3, max(lengths))
        assert batch["text"][2, lengths[2] :].tolist() == [0] * (max(lengths) - lengths[2])
        assert batch["speaker_indices"] == [0, 4, 1]
        assert batch["use_cfg"] is True
        assert batch["lt"] is True
        for (text, _), audio in zip(texts, results, strict=True):
            assert len(audio.samples) == model.samples_for(len(text) + 1)
            assert int(audio.samples.max()) == int(0.5 * 32767)

    asyncio.run(run())


def test_languages_are_batched_separately_and_cancelled_chunks_skipped() -> None:
    model = StandInModel()

    async def run() -> None:
        engine = make_engine(model)
        await engine.start()
        model.batches.clear()
        model.do_tts_calls.clear()
        model.gate.clear()
        # Occupy the GPU thread so that the next chunks queue up together.
        blocker = asyncio.create_task(engine.synthesize("Blocking call.", speaker="john", language="en", speed=1.0))
        await asyncio.sleep(0.1)
        english = [engine.synthesize(f"English {i}.", speaker="john", language="en", speed=1.0) for i in range(2)]
        spanish = asyncio.create_task(engine.synthesize("Hola amigo.", speaker="sofia", language="es", speed=1.0))
        dropped = asyncio.create_task(engine.synthesize("Never needed.", speaker="aria", language="en", speed=1.0))
        english_tasks = [asyncio.create_task(c) for c in english]
        await asyncio.sleep(0.05)
        dropped.cancel()
        model.gate.set()
        await asyncio.gather(blocker, spanish, *english_tasks)
        await engine.close()
        synthesised = [c["text"] for c in model.do_tts_calls]
        assert "Blocking call." in synthesised
        assert "Hola amigo." in synthesised  # the lone Spanish chunk went through do_tts
        assert len(model.batches) == 1
        assert model.batches[0]["speaker_indices"] == [0, 0]
        assert "Never needed." not in synthesised

    asyncio.run(run())


def test_text_normalisation_runs_before_synthesis() -> None:
    model = StandInModel()

    async def run() -> None:
        settings = Settings(engine="magpie")
        engine = MagpieEngine(
            settings, lambda _: None, loader=lambda _: stand_in_runtime(model, lambda t, lang: t.replace("3", "three"))
        )
        await engine.start()
        model.do_tts_calls.clear()
        await engine.synthesize("I have 3 cats.", speaker="john", language="en", speed=1.0)
        await engine.close()
        assert model.do_tts_calls[0]["text"] == "I have three cats."

    asyncio.run(run())


def test_model_failure_reaches_every_waiting_request() -> None:
    model = StandInModel()

    async def run() -> None:
        engine = make_engine(model)
        await engine.start()
        model.fail = True
        with pytest.raises(EngineError, match="out of memory"):
            await engine.synthesize("Hello.", speaker="john", language="en", speed=1.0)
        await engine.close()

    asyncio.run(run())


def test_warm_up_covers_every_language_and_the_batched_path() -> None:
    model = StandInModel()

    async def run() -> None:
        engine = make_engine(model)
        assert not engine.ready
        await engine.start()
        assert engine.ready
        await engine.close()

    asyncio.run(run())
    assert {call["language"] for call in model.do_tts_calls} == {"en", "es", "de", "fr", "it", "vi", "zh"}
    assert len(model.batches) == 1


def _write_speakers(directory: Path, names: list[str]) -> None:
    entries = [
        {"index": i, "name": name, "gender": "female" if name in {"Sofia", "Aria"} else "male"}
        for i, name in enumerate(names)
    ]
    (directory / "speakers.json").write_text(json.dumps({"speakers": entries}))


def test_speaker_map_comes_from_the_checkpoint_directory(tmp_path: Path) -> None:
    _write_speakers(tmp_path, SPEAKERS)
    speakers = read_speaker_map(tmp_path, 5)
    assert [s.id for s in speakers] == ["john", "sofia", "aria", "jason", "leo"]
    assert speakers[1].gender == "female"
    with pytest.raises(EngineError, match="6 speakers"):
        read_speaker_map(tmp_path, 6)
    (tmp_path / "speakers.json").unlink()
    with pytest.raises(EngineError, match="missing"):
        read_speaker_map(tmp_path, 5)


def test_revision_pin_is_enforced(tmp_path: Path) -> None:
    assert read_revision(tmp_path, "") == "unknown"
    (tmp_path / "REVISION").write_text("abc123\n")
    assert read_revision(tmp_path, "abc123") == "abc123"
    with pytest.raises(EngineError, match="does not match"):
        read_revision(tmp_path, "def456")


def test_magpie_engine_behind_the_api() -> None:
    model = StandInModel()
    engine = make_engine(model)
    app = create_app(Settings(engine="espeak"))
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as http:
        http.portal.call(engine.start)
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0, http_client=http)
        response = client.audio.speech.create(
            model="tts-1",
            voice="Magpie-Multilingual.FR-FR.Jason",
            input="Bonjour. Comment allez-vous?",
            response_format="wav",
        )
        assert response.response.headers["x-speech-language"] == "fr"
        assert decode(response.content, "wav").sample_rate == 24_000
        voices = http.get("/v1/audio/voices").json()["voices"]
        assert [v["id"] for v in voices] == ["john", "sofia", "aria", "jason", "leo"]
        http.portal.call(engine.close)
    assert model.do_tts_calls[-1]["speaker"] == 3
