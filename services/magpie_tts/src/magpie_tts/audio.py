"""Incremental audio conversion and encoding (PyAV), 24 kHz mono output."""

import itertools
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from av.filter import Graph

OUTPUT_RATE = 24_000
ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

# (muxer, codec, muxer options, codec options). Muxers run on a non-seekable sink, so nothing is
# ever rewritten: no Xing/ID3 header with a zero frame count (players would report a wrong
# duration), and every packet is flushed so bytes leave as soon as a sentence is encoded. The codec
# options trade encoder effort for speed: at speech bitrates they cost little quality and cut the
# encoding time by a third (mp3) to two thirds (opus, aac).
_CODECS: dict[str, tuple[str, str, dict[str, str], dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", {"write_xing": "0", "id3v2_version": "0"}, {"compression_level": "7"}),
    "opus": ("ogg", "libopus", {"page_duration": "100000"}, {"compression_level": "5"}),
    "aac": ("adts", "aac", {}, {"aac_coder": "fast"}),
    "flac": ("flac", "flac", {}, {}),
}
_BITRATES = {"mp3": 64_000, "opus": 32_000, "aac": 64_000}


class _Sink:
    """Write-only file object: PyAV treats it as non-seekable."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def parse_wav(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Read 16-bit mono PCM from a WAV, ignoring size fields (streamed WAVs carry bogus ones)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt_tag, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if fmt_tag != 1 or channels != 1 or bits != 16:
                raise ValueError(f"unsupported WAV layout: format {fmt_tag}, {channels} ch, {bits} bit")
        elif chunk_id == b"data":
            if not rate:
                raise ValueError("WAV data chunk before fmt chunk")
            payload = data[body:]
            payload = payload[: len(payload) - len(payload) % 2]
            return np.frombuffer(payload, dtype="<i2").astype(np.int16), rate
        pos = body + size + (size & 1)
    raise ValueError("WAV stream has no data chunk")


def wav_stream_header(rate: int = OUTPUT_RATE) -> bytes:
    """RIFF header for a stream of unknown length: sizes are 0xFFFFFFFF, as OpenAI sends them."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", unknown))
    )


def _tempo_stages(tempo: float) -> list[float]:
    """Split a tempo factor into atempo stages within [0.5, 2.0], where its quality holds."""
    stages: list[float] = []
    while tempo > 2.0:
        stages.append(2.0)
        tempo /= 2.0
    while tempo < 0.5:
        stages.append(0.5)
        tempo /= 0.5
    if abs(tempo - 1.0) > 1e-6:
        stages.append(tempo)
    return stages


class Converter:
    """Stateful tempo change + resampling to 24 kHz s16 mono, fed chunk by chunk."""

    def __init__(self, input_rate: int, tempo: float = 1.0) -> None:
        self.input_rate = input_rate
        self.tempo = tempo
        self._graph = Graph()
        # The filters here do not thread; a thread pool per graph (FFmpeg's default) only costs
        # milliseconds of set-up and tear-down on every request.
        self._graph.threads = 1
        nodes = [
            self._graph.add_abuffer(
                format="s16", sample_rate=input_rate, layout="mono", time_base=Fraction(1, input_rate)
            )
        ]
        nodes += [self._graph.add("atempo", f"{stage:.6f}") for stage in _tempo_stages(tempo)]
        nodes.append(self._graph.add("aresample", str(OUTPUT_RATE)))
        nodes.append(self._graph.add("aformat", "sample_fmts=s16:channel_layouts=mono"))
        nodes.append(self._graph.add("abuffersink"))
        for upstream, downstream in itertools.pairwise(nodes):
            upstream.link_to(downstream)
        self._graph.configure()
        self._pts = 0

    def push(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        if len(samples) == 0:
            return np.zeros(0, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.input_rate
        frame.time_base = Fraction(1, self.input_rate)
        frame.pts = self._pts
        self._pts += len(samples)
        self._graph.push(frame)
        return self._drain()

    def flush(self) -> npt.NDArray[np.int16]:
        self._graph.push(None)
        return self._drain()

    def _drain(self) -> npt.NDArray[np.int16]:
        out: list[npt.NDArray[np.int16]] = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


class Encoder:
    """Encode 24 kHz s16 mono PCM incrementally into one of OpenAI's response formats."""

    def __init__(self, fmt: ResponseFormat) -> None:
        self.format = fmt
        self._header_pending = fmt == "wav"
        self._sink: _Sink | None = None
        if fmt in _CODECS:
            muxer, codec, options, codec_options = _CODECS[fmt]
            self._sink = _Sink()
            self._container = av.open(self._sink, mode="w", format=muxer, options={**options, "flush_packets": "1"})
            self._stream = self._container.add_stream(codec, rate=OUTPUT_RATE, layout="mono", options=codec_options)
            if fmt in _BITRATES:
                self._stream.bit_rate = _BITRATES[fmt]
            self._pts = 0

    def encode(self, pcm: npt.NDArray[np.int16]) -> bytes:
        if self._sink is None:
            return self._raw(pcm)
        if len(pcm):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = OUTPUT_RATE
            frame.pts = self._pts
            self._pts += len(pcm)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._sink is None:
            return self._raw(np.zeros(0, dtype=np.int16))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()

    def _raw(self, pcm: npt.NDArray[np.int16]) -> bytes:
        head = b""
        if self._header_pending:
            head, self._header_pending = wav_stream_header(), False
        return head + pcm.astype("<i2", copy=False).tobytes()


class AudioPipeline:
    """Engine-rate chunks in, encoded bytes out: one per request, never shared."""

    def __init__(self, fmt: ResponseFormat, speed: float, clock: Callable[[], float]) -> None:
        self._fmt = fmt
        self._speed = speed
        self._clock = clock
        self._converter: Converter | None = None
        self.encoder = Encoder(fmt)
        self.output_samples = 0
        self.encode_seconds = 0.0

    def feed(self, samples: npt.NDArray[np.int16], rate: int, speed_applied: float) -> bytes:
        if self._converter is None:
            self._converter = Converter(rate, self._speed / speed_applied)
        elif self._converter.input_rate != rate:
            raise ValueError("engine changed its sample rate mid-stream")
        start = self._clock()
        pcm = self._converter.push(samples)
        data = self.encoder.encode(pcm)
        self.output_samples += len(pcm)
        self.encode_seconds += self._clock() - start
        return data

    def silence(self, seconds: float) -> bytes:
        """Encoded silence, for a request whose sentences produced no audio: every format stays playable."""
        rate = self._converter.input_rate if self._converter is not None else OUTPUT_RATE
        return self.feed(np.zeros(round(rate * seconds), dtype=np.int16), rate, self._speed)

    def finish(self) -> bytes:
        start = self._clock()
        pcm = self._converter.flush() if self._converter is not None else np.zeros(0, dtype=np.int16)
        data = self.encoder.encode(pcm) + self.encoder.finish()
        self.output_samples += len(pcm)
        self.encode_seconds += self._clock() - start
        return data

    @property
    def output_seconds(self) -> float:
        return self.output_samples / OUTPUT_RATE
