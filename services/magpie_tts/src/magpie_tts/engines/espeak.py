"""eSpeak NG (Debian `espeak-ng`), all seven Magpie languages, for development and tests.

espeak-ng is GPL-3.0: it is only ever run as a separate program through a pipe, and it is not
installed in the production image.
"""

import asyncio
import shutil
import subprocess

from ..audio import parse_wav
from .base import BatchObserver, CpuEngine, EngineAudio, EngineError, niced

_VOICES = {"en": "en-us", "es": "es", "de": "de", "fr": "fr-fr", "it": "it", "vi": "vi", "zh": "cmn"}
# Variants make the five speakers distinguishable: two female, three male.
_VARIANTS = {"john": "m3", "sofia": "f3", "aria": "f4", "jason": "m1", "leo": "m5"}
_BASE_WPM = 175
_MIN_WPM, _MAX_WPM = 80, 450


class EspeakEngine(CpuEngine):
    name = "espeak"

    def __init__(self, executable: str, max_parallel: int, on_batch: BatchObserver, nice: int = 0) -> None:
        super().__init__()
        self._executable = executable
        self._nice = nice
        self._slots = asyncio.Semaphore(max_parallel)
        self._on_batch = on_batch

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(_VOICES)

    async def start(self) -> None:
        if shutil.which(self._executable) is None:
            raise EngineError(f"{self._executable} not found; install the Debian package espeak-ng")
        await self.synthesize("Ready.", speaker="john", language="en", speed=1.0)
        self._ready = True

    async def close(self) -> None:
        self._ready = False

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        wpm = min(max(round(_BASE_WPM * speed), _MIN_WPM), _MAX_WPM)
        voice = f"{_VOICES[language]}+{_VARIANTS.get(speaker, 'm3')}"
        await self._wait_for(self._slots.acquire())
        try:
            self._on_batch(1)
            data = await self._run(text, voice, wpm)
        finally:
            self._slots.release()
        samples, rate = parse_wav(data)
        return EngineAudio(samples, rate, speed_applied=wpm / _BASE_WPM)

    async def _run(self, text: str, voice: str, wpm: int) -> bytes:
        # Text goes through stdin so that input starting with "-" is never read as an option.
        command = [self._executable, "--stdout", "--stdin", "-b", "1", "-v", voice, "-s", str(wpm)]
        # A plain Popen waited on in a worker thread: unlike asyncio's subprocess transports it
        # leaves nothing bound to the event loop once the process is done.
        proc = subprocess.Popen(
            niced(command, self._nice), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            out, err = await asyncio.to_thread(proc.communicate, text.encode("utf-8"))
        except asyncio.CancelledError:
            proc.kill()
            raise
        if proc.returncode != 0:
            raise EngineError(f"espeak-ng exited with {proc.returncode}: {err.decode(errors='replace')[:200]}")
        return out
