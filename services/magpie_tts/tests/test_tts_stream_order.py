"""The order in which a stream synthesises and sends: first chunk alone and early, later ones overlapped."""

import asyncio

import pytest
from magpie_tts.admission import Admission
from magpie_tts.metrics import ServiceMetrics
from magpie_tts.synthesis import SpeechJob, SpeechStream
from tts_support import FakeEngine

SENTENCES = tuple(f"Sentence number {n} is long enough to stand alone." for n in range(5))


def _job(chunks: tuple[str, ...] = SENTENCES) -> SpeechJob:
    return SpeechJob(
        chunks=chunks, speaker="aria", language="en", speed=1.0, format="pcm", input_chars=100, request_id="req_test"
    )


async def _events(prefetch: int) -> list[tuple[str, int]]:
    """('sent', engine calls started so far) per yielded piece, with the most calls in flight at the end."""
    engine = FakeEngine(0.01)
    in_flight, most = 0, 0
    synthesize = engine.synthesize

    async def counting(text: str, **kwargs: object) -> object:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await synthesize(text, **kwargs)  # type: ignore[arg-type]
        finally:
            in_flight -= 1

    engine.synthesize = counting  # type: ignore[method-assign]
    admission = Admission(1, 0, 1)
    stream = SpeechStream(engine, _job(), admission.reserve(), ServiceMetrics("fake"), prefetch)
    events = [("sent", engine.started) async for _ in stream.audio()]
    return [*events, ("most_in_flight", most)]


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_first_audio_leaves_before_the_second_chunk_starts(prefetch: int) -> None:
    events = asyncio.run(_events(prefetch))
    assert events[0] == ("sent", 1)
    # The first chunk goes out as a short head and the rest; the second chunk runs while the rest is converted.
    assert events[1] == ("sent", 1 + max(1, prefetch))
    assert events[-1] == ("most_in_flight", max(1, prefetch))


def test_prefetch_bounds_the_chunks_in_flight() -> None:
    assert asyncio.run(_events(8))[-1] == ("most_in_flight", len(SENTENCES) - 1)
