"""Text chunking, WAV parsing, conversion and incremental encoding."""

import numpy as np
import pytest
from magpie_tts.audio import OUTPUT_RATE, Converter, Encoder, parse_wav, wav_stream_header
from magpie_tts.text import clean_text, split_chunks
from magpie_tts.voices import normalize_language
from tts_support import decode


def test_clean_text_maps_typography_and_drops_emoji() -> None:
    assert clean_text("\u201cHi\u201d \u2014 it\u2019s\u00a0me \U0001f600\x07!") == '"Hi", it\'s me!'


def test_sentences_are_split_short_fragments_merged_and_long_ones_cut() -> None:
    assert split_chunks("Hi. This is the first sentence! And a second one? Yes.", 400) == [
        "Hi. This is the first sentence!",
        "And a second one? Yes.",
    ]
    long_sentence = ", ".join(["a clause with several words"] * 20) + "."
    chunks = split_chunks(long_sentence, 100)
    assert all(len(chunk) <= 100 for chunk in chunks)
    assert " ".join(chunks).replace(" ", "") == long_sentence.replace(" ", "")
    assert split_chunks("\u4f60\u597d\u3002\u4e16\u754c\u771f\u5927\uff01", 400) == [
        "\u4f60\u597d\u3002\u4e16\u754c\u771f\u5927\uff01"
    ]
    unbroken = "\u5b57" * 250
    assert [len(c) for c in split_chunks(unbroken, 90)] == [90, 90, 70]


@pytest.mark.parametrize(("raw", "expected"), [("en-US", "en"), ("ZH_cn", "zh"), ("cmn", "zh"), ("fr", "fr")])
def test_language_codes(raw: str, expected: str) -> None:
    assert normalize_language(raw) == expected


def test_wav_parser_ignores_bogus_sizes() -> None:
    samples = np.arange(-50, 50, dtype=np.int16)
    data = wav_stream_header(22_050) + samples.tobytes()
    parsed, rate = parse_wav(data)
    assert rate == 22_050
    assert parsed.tolist() == samples.tolist()
    with pytest.raises(ValueError, match="RIFF"):
        parse_wav(b"not audio at all")


@pytest.mark.parametrize("tempo", [0.25, 0.5, 1.0, 1.7, 4.0])
def test_converter_resamples_to_24k_and_changes_tempo(tempo: float) -> None:
    rate = 22_050
    tone = (np.sin(np.arange(rate * 2) * 0.05) * 5000).astype(np.int16)
    converter = Converter(rate, tempo)
    out = np.concatenate([converter.push(part) for part in np.array_split(tone, 7)] + [converter.flush()])
    assert len(out) / OUTPUT_RATE == pytest.approx(2.0 / tempo, rel=0.02)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_encoder_emits_bytes_per_chunk(fmt: str) -> None:
    encoder = Encoder(fmt)  # type: ignore[arg-type]
    second = (np.sin(np.arange(OUTPUT_RATE) * 0.03) * 6000).astype(np.int16)
    pieces = [encoder.encode(second) for _ in range(3)] + [encoder.finish()]
    # Bytes leave as audio arrives (the Ogg muxer holds back at most one page).
    assert all(pieces[1:3])
    assert decode(b"".join(pieces), fmt).seconds == pytest.approx(3.0, abs=0.1)
